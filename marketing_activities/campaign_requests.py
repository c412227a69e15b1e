"""Requesting a campaign for people: "Campaign is Requested" and the flow step "Request Campaign".

A request is an activity of the person (kind "campaign_requested") naming
the campaign requested; that campaign's trigger "Campaign is Requested"
(source optional: a flow step, the command) fires for it alone.
Requests come from another campaign's Request Campaign step (written with
the step's outcome, runner/executor.py), from the admin's action on leads
"Request campaign…", and from `manage.py request_campaign`.
"""

import uuid

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.activities import NewActivity, activities_record
from smscampaigns.models import Activity, Lead
from smscampaigns.smartlists import SmartListTrigger, TriggerConstraint, register_trigger

from .models import SmartCampaign

REQUESTED_BY_FLOW, REQUESTED_BY_COMMAND, REQUESTED_BY_ADMIN = "flow", "command", "admin"


class CampaignIsRequested(SmartListTrigger):
    def matches(self, values: dict, attributes: dict, *, campaign_id: int | None = None) -> bool:
        if campaign_id is None or str(attributes.get("campaign", "")) != str(campaign_id):
            return False  # a request names the one campaign it is for
        return not values.get("source") or attributes.get("source") == values["source"]


REQUESTED = register_trigger(
    CampaignIsRequested(
        name="campaign_requested",
        label=gettext_lazy("Campaign is Requested"),
        activity_kind=Activity.Kind.CAMPAIGN_REQUESTED,
        constraints=(
            TriggerConstraint(
                "source",
                gettext_lazy("where the request comes from"),
                lambda: [
                    (REQUESTED_BY_FLOW, gettext_lazy("a Request Campaign flow step")),
                    (REQUESTED_BY_COMMAND, gettext_lazy("the request_campaign command")),
                    (REQUESTED_BY_ADMIN, gettext_lazy("the admin's action on leads")),
                ],
                required=False,
            ),
        ),
    )
)


def campaign_requests_record(
    *, campaign_id: int, requests, source: str, requested_by: int | None = None
) -> None:
    """Write a request of the campaign for each (lead id, key of the request)."""
    activities_record(
        activities=[
            NewActivity(
                kind=Activity.Kind.CAMPAIGN_REQUESTED,
                lead_id=lead_id,
                key=f"campaign-request:{key}",
                source=source,
                attributes={"campaign": campaign_id, "source": source, "requested_by": requested_by or ""},
            )
            for lead_id, key in requests
        ]
    )


def campaign_request(
    *, campaign: SmartCampaign, lead_ids, source: str = REQUESTED_BY_COMMAND, requested_by: int | None = None
) -> int:
    """Request the campaign for these people (its trigger "Campaign is Requested"
    runs it for each); returns how many were requested. Unknown ids are refused.
    `requested_by`: the id of the user who asked, from the admin."""
    lead_ids = list(dict.fromkeys(int(pk) for pk in lead_ids))
    found = set(Lead.objects.filter(pk__in=lead_ids).values_list("pk", flat=True))
    missing = [pk for pk in lead_ids if pk not in found]
    if missing:
        raise ValidationError(
            _("No lead has the id %(ids)s.") % {"ids": ", ".join(str(pk) for pk in missing[:20])}
        )
    # Each request is its own: asking again requests again.
    batch = uuid.uuid4().hex
    campaign_requests_record(
        campaign_id=campaign.pk,
        requests=[(pk, f"{batch}:{pk}") for pk in lead_ids],
        source=source,
        requested_by=requested_by,
    )
    return len(lead_ids)
