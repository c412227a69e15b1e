"""The smart list's SMS activity filters, over the runs' records: Was Sent
SMS, SMS Was Delivered, SMS Bounced, Replied to SMS, Clicked Link in SMS, each
with its "not" form.

Rule shape: {"field": "was_sent_sms", "op": "is any" | "is", "value": <SMS
message id, with "is">, the date constraint of smscampaigns/smartlists/activity.py,
and for SMS Bounced "bounce": "any" | "hard" | "soft", for Replied to SMS
"reply": "any" | "contains" | "is" with "text", for Clicked Link in SMS
"link": text the link's web address contains (optional)}.

Each rule is one EXISTS on a lead's result rows. They repeat the condition
of the partial index on a lead's calls (`RunResult.objects.calls()`), so
both databases find a lead's few SMS through it, whatever the size of the runs.
"""

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db.models import OuterRef
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.smartlists import (
    DATE_PARTS,
    IS,
    IS_ANY,
    ActivityField,
    RulePart,
    printable,
    register_field,
)

from .models import (
    CALLS_BELOW,
    HARD_BOUNCE_STATUSES,
    FlowStep,
    LinkClick,
    Outcome,
    RunResult,
    RunStep,
    SmsMessage,
    SmsReply,
)

# Vibes took the SMS, or may have: what a marketer calls "sent" (a bounce
# was sent too). An uncertain SMS counts, so that "Was Not Sent SMS" never
# picks someone who may have it on their phone.
SENT = (Outcome.SENT, Outcome.DELIVERED, Outcome.DELIVERY_FAILED, Outcome.UNCERTAIN)

ANY_BOUNCE = "any"
BOUNCE = RulePart(
    key="bounce",
    label=gettext_lazy("Rule %(number)s: bounce"),
    choices=(
        (ANY_BOUNCE, gettext_lazy("hard or soft")),
        ("hard", gettext_lazy("hard (the carrier refused the number)")),
        ("soft", gettext_lazy("soft (it may pass another time)")),
    ),
    default=ANY_BOUNCE,
)
BOUNCES = ("hard", "soft")

ANY_TEXT = "any"
CONTAINS_TEXT = "contains"
IS_TEXT = "is"
REPLY = RulePart(
    key="reply",
    label=gettext_lazy("Rule %(number)s: reply text"),
    choices=(
        (ANY_TEXT, gettext_lazy("any text")),
        (CONTAINS_TEXT, gettext_lazy("text contains")),
        (IS_TEXT, gettext_lazy("text is")),
    ),
    default=ANY_TEXT,
    redraws=True,
)
TEXT = RulePart(
    key="text",
    label=gettext_lazy("Rule %(number)s: text"),
    placeholder=gettext_lazy("text of the reply"),
    shown_if=("reply", (CONTAINS_TEXT, IS_TEXT)),
)
LINK = RulePart(
    key="link",
    label=gettext_lazy("Rule %(number)s: link"),
    placeholder=gettext_lazy("web address contains (optional)"),
)


def sms_message_choices():
    """The SMS messages as a smart list offers them (filters and triggers alike)."""
    messages = SmsMessage.objects.select_related("program").order_by("program__name", "name", "pk")
    return [(str(message.pk), f"{message.program.name} · {message.name}") for message in messages]


def _send_steps(value):
    """The Send steps of runs (of the rule's message, if it names one), as a subquery.

    As `IN (SELECT …)`, not a join: the database reads the steps once for the
    whole count. Joined, SQLite may read every step for every person when its
    statistics say there are few steps (a step's rows have no index).
    """
    steps = RunStep.objects.filter(action=FlowStep.Action.SEND_SMS)
    if value["message_id"] is not None:
        steps = steps.filter(sms_message_id=value["message_id"])
    return steps.values("pk")


class SmsActivity(ActivityField):
    """An activity of the SMS a Send step sent: "is any" SMS message, or "is" one."""

    ops = (IS_ANY, IS)

    def clean_constraints(self, raw, where):
        if raw.get("op") == IS_ANY:
            return {"message_id": None}
        value = raw.get("value")
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValidationError(_("%(where)s: choose an SMS message.") % {"where": where})
        message_id = int(text) if text.isdecimal() and len(text) < 19 else None
        if message_id is None or not SmsMessage.objects.filter(pk=message_id).exists():
            raise ValidationError(
                _("%(where)s: there is no SMS message with id %(id)s.")
                % {"where": where, "id": printable(text)[:60]}
            )
        return {"message_id": message_id}

    def sms(self, value):
        """The lead's SMS rows, of the rule's message if it names one."""
        return RunResult.objects.calls().filter(lead=OuterRef("pk"), run_step_id__in=_send_steps(value))

    # --- The Smart List tab

    def value_choices(self):
        return sms_message_choices()

    def stored_value(self, text):
        # The message's id, as the admin's JSON would write it.
        return int(text) if str(text).isdecimal() and len(str(text)) < 19 else text


class WasSentSms(SmsActivity):
    # When the call went to Vibes; rows sent before that was recorded have their outcome's time.
    time_column = "sent_at"

    def activities(self, value):
        return self.sms(value).filter(outcome__in=SENT).annotate(sent_at=Coalesce("called_at", "updated_at"))


class SmsWasDelivered(SmsActivity):
    # The receipt's own time.
    time_column = "updated_at"

    def activities(self, value):
        return self.sms(value).filter(outcome=Outcome.DELIVERED)


class SmsBounced(SmsActivity):
    time_column = "updated_at"
    parts: ClassVar[tuple] = (*DATE_PARTS, BOUNCE)

    def clean_constraints(self, raw, where):
        bounce = raw.get(BOUNCE.key) or ANY_BOUNCE
        if bounce != ANY_BOUNCE and bounce not in BOUNCES:
            raise ValidationError(
                _("%(where)s: “%(bounce)s” is not a kind of bounce; use “any”, “hard” or “soft”.")
                % {"where": where, "bounce": printable(str(bounce))[:60]}
            )
        return {**super().clean_constraints(raw, where), "bounce": bounce}

    def activities(self, value):
        rows = self.sms(value).filter(outcome=Outcome.DELIVERY_FAILED)
        if value["bounce"] == "hard":
            rows = rows.filter(delivery_status__in=HARD_BOUNCE_STATUSES)
        elif value["bounce"] == "soft":
            rows = rows.exclude(delivery_status__in=HARD_BOUNCE_STATUSES)
        return rows


class RepliedToSms(SmsActivity):
    """A reply matched to an SMS the person was sent (replies.py), at the reply's own time."""

    time_column = "message__occurred_at"
    parts: ClassVar[tuple] = (*DATE_PARTS, REPLY, TEXT)

    def clean_constraints(self, raw, where):
        reply = raw.get(REPLY.key) or ANY_TEXT
        if reply not in (ANY_TEXT, CONTAINS_TEXT, IS_TEXT):
            raise ValidationError(
                _("%(where)s: “%(reply)s” is not a reply constraint; use “any”, “contains” or “is”.")
                % {"where": where, "reply": printable(str(reply))[:60]}
            )
        text = raw.get(TEXT.key)
        text = str(text).strip() if text is not None else ""
        if reply != ANY_TEXT and not text:
            raise ValidationError(_("%(where)s: enter the text of the reply.") % {"where": where})
        return {**super().clean_constraints(raw, where), "reply": reply, "text": text}

    def activities(self, value):
        replies = SmsReply.objects.filter(
            # The condition of the partial index on a lead's calls, again: every SMS replied to is one.
            result__lead=OuterRef("pk"),
            result__outcome__lt=CALLS_BELOW,
        )
        if value["message_id"] is not None:
            # On the SMS's row, not the reply's own step: by the reply's step, SQLite may
            # read every reply to the message for every person (sms_reply_step_result).
            replies = replies.filter(result__run_step_id__in=_send_steps(value))
        if value["reply"] == CONTAINS_TEXT:
            replies = replies.filter(message__text__icontains=value["text"])
        elif value["reply"] == IS_TEXT:
            replies = replies.filter(message__text__iexact=value["text"])
        return replies


class ClickedLinkInSms(SmsActivity):
    """A click on a tracked link of an SMS the person was sent (links.py), at the click's time.

    Link previews and robots open links nobody clicked: their clicks never count.
    """

    time_column = "clicked_at"
    parts: ClassVar[tuple] = (*DATE_PARTS, LINK)

    def clean_constraints(self, raw, where):
        link = raw.get(LINK.key)
        link = str(link).strip() if link is not None else ""
        if len(link) > 2_000:
            raise ValidationError(
                _("%(where)s: the link is too long (at most 2,000 characters).") % {"where": where}
            )
        return {**super().clean_constraints(raw, where), "link": link}

    def activities(self, value):
        clicks = LinkClick.objects.filter(lead=OuterRef("pk"), by_robot=False)
        if value["message_id"] is not None:
            clicks = clicks.filter(run_step_id__in=_send_steps(value))
        if value["link"]:
            clicks = clicks.filter(link__url__icontains=value["link"])
        return clicks


for _field in (
    WasSentSms("was_sent_sms", gettext_lazy("Was Sent SMS")),
    WasSentSms("was_not_sent_sms", gettext_lazy("Was Not Sent SMS"), negated=True),
    SmsWasDelivered("sms_was_delivered", gettext_lazy("SMS Was Delivered")),
    SmsWasDelivered("sms_was_not_delivered", gettext_lazy("SMS Was Not Delivered"), negated=True),
    SmsBounced("sms_bounced", gettext_lazy("SMS Bounced")),
    SmsBounced("sms_did_not_bounce", gettext_lazy("SMS Did Not Bounce"), negated=True),
    RepliedToSms("replied_to_sms", gettext_lazy("Replied to SMS")),
    RepliedToSms("did_not_reply_to_sms", gettext_lazy("Did Not Reply to SMS"), negated=True),
    ClickedLinkInSms("clicked_link_in_sms", gettext_lazy("Clicked Link in SMS")),
    ClickedLinkInSms("did_not_click_link_in_sms", gettext_lazy("Did Not Click Link in SMS"), negated=True),
):
    register_field(_field)
