"""The smart list filter "Member of Vibes list", with a subscription status.

Rule shape: {"field": "vibes_list", "op": "is" | "is not", "value": <Vibes
list id>, "status": "subscribed" | "pending" | "unsubscribed" | "any"}.
"""

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.smartlists import IS, IS_NOT, SmartListField, register_field

from .models import Subscription, VibesList

ANY_STATUS = "any"
STATUSES = [s.value for s in Subscription.Status] + [ANY_STATUS]


def _clean_rule(raw, where):
    value = raw.get("value")
    try:
        list_id = int(value)
    except (TypeError, ValueError):
        raise ValidationError(_("%(where)s: choose a Vibes list.") % {"where": where}) from None
    if not VibesList.objects.filter(pk=list_id).exists():
        raise ValidationError(
            _("%(where)s: there is no Vibes list with id %(id)s.") % {"where": where, "id": value}
        )
    status = raw.get("status") or Subscription.Status.SUBSCRIBED
    if status not in STATUSES:
        raise ValidationError(
            _("%(where)s: “%(status)s” is not a subscription status; use one of %(statuses)s.")
            % {"where": where, "status": status, "statuses": ", ".join(STATUSES)}
        )
    return {"list_id": list_id, "status": status}


def _to_q(rule) -> Q:
    subscriptions = Subscription.objects.filter(lead=OuterRef("pk"), vibes_list_id=rule.value["list_id"])
    if rule.value["status"] != ANY_STATUS:
        subscriptions = subscriptions.filter(status=rule.value["status"])
    member = Q(Exists(subscriptions))
    return member if rule.op == IS else ~member


def _choices():
    return [(vl.pk, vl.name) for vl in VibesList.objects.active()]


register_field(
    SmartListField(
        name="vibes_list",
        label=gettext_lazy("Member of Vibes list"),
        kind="vibes_list",
        ops=(IS, IS_NOT),
        to_q=_to_q,
        clean_rule=_clean_rule,
        choices=_choices,
        extra_keys=("status",),
    )
)
