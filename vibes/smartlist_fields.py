"""The smart list filter "Member of Vibes list", with a subscription status.

Rule shape: {"field": "vibes_list", "op": "is" | "is not", "value": <Vibes
list id>, "status": "subscribed" | "pending" | "unsubscribed" | "any"}.
"""

import contextlib

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.smartlists import IS, IS_NOT, RulePart, SmartListField, register_field

from .models import Subscription, VibesList

ANY_STATUS = "any"
# In the order the Smart List tab offers them: the default first.
STATUS_CHOICES = (
    (Subscription.Status.SUBSCRIBED.value, Subscription.Status.SUBSCRIBED.label),
    (Subscription.Status.PENDING.value, Subscription.Status.PENDING.label),
    (Subscription.Status.UNSUBSCRIBED.value, Subscription.Status.UNSUBSCRIBED.label),
    (ANY_STATUS, gettext_lazy("any status")),
)
STATUSES = [value for value, _label in STATUS_CHOICES]
STATUS = RulePart(
    key="status",
    label=gettext_lazy("Rule %(number)s: subscription status"),
    choices=STATUS_CHOICES,
    default=Subscription.Status.SUBSCRIBED.value,
)


class VibesListMembership(SmartListField):
    ops = (IS, IS_NOT)
    parts = (STATUS,)

    def clean(self, raw, where):
        value = raw.get("value")
        try:
            list_id = int(value)
        except (TypeError, ValueError):
            raise ValidationError(_("%(where)s: choose a Vibes list.") % {"where": where}) from None
        if not VibesList.objects.filter(pk=list_id).exists():
            raise ValidationError(
                _("%(where)s: there is no Vibes list with id %(id)s.") % {"where": where, "id": value}
            )
        status = raw.get("status") or STATUS.default
        if status not in STATUSES:
            raise ValidationError(
                _("%(where)s: “%(status)s” is not a subscription status; use one of %(statuses)s.")
                % {"where": where, "status": status, "statuses": ", ".join(STATUSES)}
            )
        return {"list_id": list_id, "status": status}

    def to_q(self, rule) -> Q:
        subscriptions = Subscription.objects.filter(lead=OuterRef("pk"), vibes_list_id=rule.value["list_id"])
        if rule.value["status"] != ANY_STATUS:
            subscriptions = subscriptions.filter(status=rule.value["status"])
        member = Q(Exists(subscriptions))
        return member if rule.op == IS else ~member

    def value_choices(self):
        return [(str(vibes_list.pk), vibes_list.name) for vibes_list in VibesList.objects.active()]

    def unoffered_label(self, value):
        vibes_list = VibesList.objects.filter(pk=value).first() if value.isdigit() else None
        if vibes_list is not None:
            return _("%(list)s (gone from Vibes)") % {"list": vibes_list.name}
        return super().unoffered_label(value)

    def stored_value(self, text):
        # The list's id, as the admin and the demo store it.
        if str(text).isdecimal():
            with contextlib.suppress(ValueError):  # too many digits: the rule says "no such list"
                return int(text)
        return text


register_field(VibesListMembership("vibes_list", gettext_lazy("Member of Vibes list")))
