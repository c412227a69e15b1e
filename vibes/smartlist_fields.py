"""The smart list filters on Vibes lists: "Member of Vibes list" (now, with
a subscription status) and "Subscribed to Vibes List" (ever, with its "not"
form).

Rule shapes: {"field": "vibes_list", "op": "is" | "is not", "value": <Vibes
list id>, "status": "subscribed" | "pending" | "unsubscribed" | "any"};
{"field": "subscribed_to_vibes_list" | "not_subscribed_to_vibes_list", "op":
"is", "value": <Vibes list id>, "acquisition_campaign": <its id> (optional),
and the date constraint of smscampaigns/smartlists/activity.py}.
"""

import contextlib

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.smartlists import (
    DATE_PARTS,
    IS,
    IS_NOT,
    ActivityField,
    RulePart,
    SmartListField,
    printable,
    register_field,
)

from .models import AcquisitionCampaign, Subscription, SubscriptionChange, VibesList

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


def _list_id(value, where) -> int:
    """The id of the rule's Vibes list, which must exist."""
    try:
        list_id = int(value)
    except (TypeError, ValueError):
        raise ValidationError(_("%(where)s: choose a Vibes list.") % {"where": where}) from None
    if not VibesList.objects.filter(pk=list_id).exists():
        raise ValidationError(
            _("%(where)s: there is no Vibes list with id %(id)s.") % {"where": where, "id": value}
        )
    return list_id


class VibesListMembership(SmartListField):
    ops = (IS, IS_NOT)
    parts = (STATUS,)

    def clean(self, raw, where):
        list_id = _list_id(raw.get("value"), where)
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


# --- Subscribed to Vibes List (ever), from the subscription history ---------------------

ANY_CAMPAIGN = ""


def _acquisition_campaign_choices():
    campaigns = (
        AcquisitionCampaign.objects.active().select_related("vibes_list").order_by("vibes_list__name", "name")
    )
    return [
        (ANY_CAMPAIGN, gettext_lazy("any acquisition campaign")),
        *((str(c.pk), f"{c.vibes_list.name} · {c.name}") for c in campaigns),
    ]


ACQUISITION_CAMPAIGN = RulePart(
    key="acquisition_campaign",
    label=gettext_lazy("Rule %(number)s: acquisition campaign"),
    choices=_acquisition_campaign_choices,
    default=ANY_CAMPAIGN,
)


class SubscribedToVibesList(ActivityField):
    """Whoever ever subscribed to the list, as Marketo's reporting filter has it
    (where "Member of Vibes list" is the status now): a change to subscribed in
    the subscription history, at the change's own time. A change that arrived
    after a newer one (superseded) still happened; one whose person id and
    number disagreed did not."""

    ops = (IS,)
    parts = (*DATE_PARTS, ACQUISITION_CAMPAIGN)
    time_column = "occurred_at"

    def clean_constraints(self, raw, where):
        list_id = _list_id(raw.get("value"), where)
        campaign = raw.get(ACQUISITION_CAMPAIGN.key) or ANY_CAMPAIGN
        if campaign == ANY_CAMPAIGN:
            return {"list_id": list_id, "campaign_id": None}
        campaign_id = int(campaign) if str(campaign).isdecimal() and len(str(campaign)) < 19 else None
        found = (
            AcquisitionCampaign.objects.filter(pk=campaign_id).values_list("vibes_list_id", flat=True).first()
        )
        if campaign_id is None or found is None:
            raise ValidationError(
                _("%(where)s: there is no acquisition campaign with id %(id)s.")
                % {"where": where, "id": printable(str(campaign))[:60]}
            )
        if found != list_id:
            raise ValidationError(
                _("%(where)s: the acquisition campaign with id %(id)s belongs to another Vibes list.")
                % {"where": where, "id": campaign_id}
            )
        return {"list_id": list_id, "campaign_id": campaign_id}

    def activities(self, value):
        changes = SubscriptionChange.objects.filter(
            lead=OuterRef("pk"),
            vibes_list_id=value["list_id"],
            new_status=Subscription.Status.SUBSCRIBED,
            effect__in=(SubscriptionChange.Effect.APPLIED, SubscriptionChange.Effect.SUPERSEDED),
        )
        if value["campaign_id"] is not None:
            changes = changes.filter(acquisition_campaign_id=value["campaign_id"])
        return changes

    value_choices = VibesListMembership.value_choices
    unoffered_label = VibesListMembership.unoffered_label
    stored_value = VibesListMembership.stored_value


register_field(SubscribedToVibesList("subscribed_to_vibes_list", gettext_lazy("Subscribed to Vibes List")))
register_field(
    SubscribedToVibesList(
        "not_subscribed_to_vibes_list", gettext_lazy("Not Subscribed to Vibes List"), negated=True
    )
)
