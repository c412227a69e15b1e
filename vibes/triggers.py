"""The smart list triggers about Vibes lists: "Subscribes to Vibes List" (list;
acquisition campaign optional) and "Unsubscribes from Vibes List" (list).

They fire on the activities `vibes.subscriptions` writes for every change
of a subscription that takes effect, whatever its source (a callback, a
keyword subscriber found by the sync, a run's Subscribe step).
"""

from django.utils.translation import gettext_lazy

from smscampaigns.models import Activity
from smscampaigns.smartlists import SmartListTrigger, TriggerConstraint, register_trigger

from .models import AcquisitionCampaign, VibesList


def _lists():
    return [(str(pk), name) for pk, name in VibesList.objects.order_by("name").values_list("pk", "name")]


def _acquisition_campaigns():
    return [
        (str(campaign.pk), f"{campaign.vibes_list.name}: {campaign.name}")
        for campaign in AcquisitionCampaign.objects.select_related("vibes_list").order_by(
            "vibes_list__name", "name"
        )
    ]


VIBES_LIST = TriggerConstraint("vibes_list", gettext_lazy("a Vibes list"), _lists)

SUBSCRIBES = register_trigger(
    SmartListTrigger(
        name="subscribes_vibes_list",
        label=gettext_lazy("Subscribes to Vibes List"),
        activity_kind=Activity.Kind.SUBSCRIBED_TO_VIBES_LIST,
        constraints=(
            VIBES_LIST,
            TriggerConstraint(
                "acquisition_campaign",
                gettext_lazy("an acquisition campaign"),
                _acquisition_campaigns,
                required=False,
            ),
        ),
    )
)

UNSUBSCRIBES = register_trigger(
    SmartListTrigger(
        name="unsubscribes_vibes_list",
        label=gettext_lazy("Unsubscribes from Vibes List"),
        activity_kind=Activity.Kind.UNSUBSCRIBED_FROM_VIBES_LIST,
        constraints=(VIBES_LIST,),
    )
)
