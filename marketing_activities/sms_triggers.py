"""The SMS triggers: "SMS is Delivered", "SMS Message Bounces", "Replies to SMS"
and "Clicks Link in SMS Message".

Their activities are written where the news is applied: a delivery receipt
that moves an SMS's row (runner/followup.py), a reply matched to the SMS it
answers (replies.py), a person's click on a tracked link (links.py). The
receipt's status says whether a bounce is hard or soft
(`HARD_BOUNCE_STATUSES`, as the "SMS Bounced" filter reads it).
"""

from django.utils.translation import gettext_lazy

from smscampaigns.activities import NewActivity, activities_record
from smscampaigns.models import Activity
from smscampaigns.smartlists import SmartListTrigger, TriggerConstraint, register_trigger

from .models import HARD_BOUNCE_STATUSES, Outcome, RunStep
from .smartlist_fields import sms_message_choices

CONTAINS, IS = "contains", "is"


SMS_MESSAGE = TriggerConstraint(
    "sms_message", gettext_lazy("an SMS message"), sms_message_choices, required=False
)
BOUNCE_TYPE = TriggerConstraint(
    "bounce",
    gettext_lazy("a kind of bounce"),
    lambda: [("hard", gettext_lazy("hard bounce")), ("soft", gettext_lazy("soft bounce"))],
    required=False,
)


def _another_message(values: dict, attributes: dict) -> bool:
    """The trigger names an SMS message, and the activity was about another."""
    message = values.get("sms_message")
    return bool(message) and str(attributes.get("sms_message", "")) != message


class RepliesToSms(SmartListTrigger):
    def matches(self, values: dict, attributes: dict, *, campaign_id: int | None = None) -> bool:
        if _another_message(values, attributes):
            return False
        wanted = (values.get("text") or "").casefold()
        if not wanted:
            return True
        reply = str(attributes.get("text", "")).strip().casefold()
        return reply == wanted if values.get("match") == IS else wanted in reply


register_trigger(
    SmartListTrigger(
        name="sms_delivered",
        label=gettext_lazy("SMS is Delivered"),
        activity_kind=Activity.Kind.SMS_DELIVERED,
        constraints=(SMS_MESSAGE,),
    )
)
register_trigger(
    SmartListTrigger(
        name="sms_bounces",
        label=gettext_lazy("SMS Message Bounces"),
        activity_kind=Activity.Kind.SMS_BOUNCED,
        constraints=(SMS_MESSAGE, BOUNCE_TYPE),
    )
)
register_trigger(
    RepliesToSms(
        name="replies_to_sms",
        label=gettext_lazy("Replies to SMS"),
        activity_kind=Activity.Kind.REPLIED_TO_SMS,
        constraints=(
            TriggerConstraint(
                "match",
                gettext_lazy("how the reply's text is compared"),
                lambda: [(CONTAINS, gettext_lazy("text contains")), (IS, gettext_lazy("text is"))],
            ),
            TriggerConstraint("text", gettext_lazy("the text"), None, required=False),
            SMS_MESSAGE,
        ),
    )
)


class ClicksLinkInSms(SmartListTrigger):
    def matches(self, values: dict, attributes: dict, *, campaign_id: int | None = None) -> bool:
        if _another_message(values, attributes):
            return False
        wanted = (values.get("link") or "").casefold()
        return not wanted or wanted in str(attributes.get("link", "")).casefold()


register_trigger(
    ClicksLinkInSms(
        name="clicks_link_in_sms",
        label=gettext_lazy("Clicks Link in SMS Message"),
        activity_kind=Activity.Kind.CLICKED_LINK_IN_SMS,
        constraints=(
            SMS_MESSAGE,
            TriggerConstraint("link", gettext_lazy("the text in the web address"), None, required=False),
        ),
    )
)


def sms_receipt_activity(
    *, result_id: int, lead_id: int, sms_message_id: int | None, outcome, status: str, occurred_at
):
    """The person's activity for a receipt that settled their SMS: delivered, or bounced."""
    activity = sms_receipt_new_activity(
        result_id=result_id,
        lead_id=lead_id,
        sms_message_id=sms_message_id,
        outcome=outcome,
        status=status,
        occurred_at=occurred_at,
    )
    if activity:
        activities_record(activities=[activity])


def sms_receipt_new_activity(
    *, result_id: int, lead_id: int, sms_message_id: int | None, outcome, status: str, occurred_at
) -> NewActivity | None:
    """The activity `sms_receipt_activity` records (None for an outcome that is no
    delivery nor bounce), for a caller that records a batch of them at once."""
    if outcome not in (Outcome.DELIVERED, Outcome.DELIVERY_FAILED):
        return None
    delivered = outcome == Outcome.DELIVERED
    attributes = {"sms_message": sms_message_id or ""}
    if not delivered:
        attributes["bounce"] = "hard" if status in HARD_BOUNCE_STATUSES else "soft"
        attributes["status"] = status[:20]
    return NewActivity(
        kind=Activity.Kind.SMS_DELIVERED if delivered else Activity.Kind.SMS_BOUNCED,
        lead_id=lead_id,
        # One per SMS and final outcome, however often its receipt comes.
        key=f"sms-receipt:{result_id}:{'delivered' if delivered else 'bounced'}",
        occurred_at=occurred_at,
        source="vibes",
        attributes=attributes,
    )


def sms_reply_activity(*, message, lead_id: int, run_step_id: int):
    """The person's activity for a reply matched to the SMS it answers."""
    sms_message = RunStep.objects.filter(pk=run_step_id).values_list("sms_message_id", flat=True).first()
    activities_record(
        activities=[
            NewActivity(
                kind=Activity.Kind.REPLIED_TO_SMS,
                lead_id=lead_id,
                key=f"sms-reply:{message.pk}",
                occurred_at=message.occurred_at,
                source="vibes",
                attributes={"text": (message.text or "")[:300], "sms_message": sms_message or ""},
            )
        ]
    )


def link_click_activity(*, click, sms_message_id: int | None, url: str):
    """The person's activity for a click on a tracked link (never a link preview's)."""
    activities_record(
        activities=[
            NewActivity(
                kind=Activity.Kind.CLICKED_LINK_IN_SMS,
                lead_id=click.lead_id,
                key=f"link-click:{click.pk}",
                occurred_at=click.clicked_at,
                source="click",
                attributes={"sms_message": sms_message_id or "", "link": url[:500]},
            )
        ]
    )
