"""Replies: a text from a number belongs to the SMS sent to that number last
before it, whatever the campaign; that campaign's Results show it.

A reply is matched when it arrives (Vibes' inbound message callbacks), by
its own time, so a late delivery still finds the SMS it answered and not a
newer one. The SMS is looked up through the leads that have the number and
the index of a lead's calls, never by reading a run's rows.
"""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import Coalesce

from vibes.models import InboundMessage

from .models import FlowStep, Outcome, RunResult, SmsReply
from .reporting.rollups import sms_rollups_following
from .sms_triggers import sms_reply_activity

# An SMS that went out, or may have: Vibes accepted or delivered it, the call is in
# flight, or its fate is unknown. A refused SMS (failed) reached nobody.
SMS_OUT = (Outcome.SENDING, Outcome.SENT, Outcome.DELIVERED, Outcome.UNCERTAIN)


def reply_match(message: InboundMessage) -> bool:
    """Record `message` as the reply to the SMS sent to its number last before
    it; False when no SMS of a run went to the number before it."""
    if not message.mdn:
        return False
    lead_ids = list(message.leads.values_list("pk", flat=True))
    if not lead_ids:
        return False
    # Vibes may give the time to the second only, so the SMS sent within that second counts as before.
    cutoff = message.occurred_at.replace(microsecond=0) + timedelta(seconds=1)
    sms = (
        # .calls(), though SMS_OUT says more: so that SQLite uses the partial index on a lead's calls.
        RunResult.objects.calls()
        .filter(
            lead_id__in=lead_ids,
            outcome__in=SMS_OUT,
            phone=message.mdn,
            run_step__action=FlowStep.Action.SEND_SMS,
        )
        # Rows sent before called_at existed have only the time of their outcome.
        .annotate(sent=Coalesce("called_at", "updated_at"))
        .filter(sent__lt=cutoff)
        .order_by("-sent", "-pk")
        .values_list("pk", "run_step_id", "lead_id")
        .first()
    )
    if sms is None:
        return False
    # The SMS's figures count its first reply (reporting/rollups.py).
    with sms_rollups_following([sms[0]], lock=True):
        SmsReply.objects.get_or_create(message=message, defaults={"result_id": sms[0], "run_step_id": sms[1]})
    # "Replies to SMS": the person the answered SMS went to.
    sms_reply_activity(message=message, lead_id=sms[2], run_step_id=sms[1])
    return True


def replied_counts(step_ids) -> dict[int, int]:
    """{step id: people who replied} for these steps, from the replies' index alone."""
    rows = (
        SmsReply.objects.filter(run_step_id__in=list(step_ids))
        .values("run_step_id")
        .annotate(people=Count("result_id", distinct=True))
        .order_by()
    )
    return {row["run_step_id"]: row["people"] for row in rows}


def replies_by_result(result_ids) -> dict[int, list[InboundMessage]]:
    """{result id: its replies, oldest first} for these result rows (a page of them)."""
    return _by_result(SmsReply.objects.filter(result_id__in=list(result_ids)))


def replies_in_range(first_id: int, last_id: int) -> dict[int, list[InboundMessage]]:
    """{result id: its replies, oldest first} for the result rows in this id range.

    For an export read in id order: a range costs what the replies in it
    cost, where a list of ids probes the index once for every row, though
    most rows have no reply.
    """
    return _by_result(SmsReply.objects.filter(result_id__gte=first_id, result_id__lte=last_id))


def _by_result(replies) -> dict[int, list[InboundMessage]]:
    found = defaultdict(list)
    for reply in replies.select_related("message").order_by("message__occurred_at", "message_id"):
        found[reply.result_id].append(reply.message)
    return found


def replied_result_ids(step_ids):
    """The result rows of these steps that got a reply, as a subquery."""
    return SmsReply.objects.filter(run_step_id__in=list(step_ids)).values("result_id")
