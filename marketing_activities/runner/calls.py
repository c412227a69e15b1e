"""One call to Vibes for one person, and the outcome it means.

Nothing here reads or writes the database: the worker hands in what the
calls of a step need (`StepCalls`) and each person's `Call`, and records the
`CallResult`s (executor.py). Which Vibes errors may be tried again is the
client's business; what each one means for the person's row is decided here.
"""

import datetime
import logging
from dataclasses import dataclass

from vibes import exceptions as vibes_errors
from vibes.client.transport import calls_only_while

from .. import sms_text
from ..models import FlowStep, Outcome
from ..result_details import ALREADY_SUBSCRIBED, TOO_LONG, WAITING_FOR_REPLY, result_detail
from .references import receipt_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepCalls:
    """What the calls of one run step need: its action and where in Vibes they go."""

    action: str
    vibes_list_id: str = ""  # the list's id in Vibes (Unsubscribe)
    acquisition_campaign_id: str = ""  # the acquisition campaign's id in Vibes (Subscribe)


@dataclass(frozen=True)
class Call:
    result_id: int
    lead_id: int
    phone: str
    text: str = ""
    # When its batch went out: what Vibes answers is true from then on, so a
    # subscription change takes effect as of this moment (R9 orders by time).
    sent_at: datetime.datetime | None = None


@dataclass(frozen=True)
class CallResult:
    outcome: int
    message_id: str = ""
    error_code: str = ""
    detail: str = ""
    requeue: bool = False  # surely not processed: try again later
    stop: str = ""  # the run cannot go on (after this batch is recorded)


def _short(error) -> str:
    return str(getattr(error, "message", "") or error)[:300]


CANCELLED = CallResult(Outcome.CANCELLED)


def call_vibes(client, step: StepCalls, call: Call, go_on=None) -> CallResult:
    """Make one call for one person and say what came of it.

    `go_on()` is asked before the call and again when the rate limiter lets
    it go: false (the run was aborted), and the call is not made.
    """
    if go_on is not None and not go_on():
        return CANCELLED
    if go_on is None:
        return _call_vibes(client, step, call)
    with calls_only_while(go_on):
        return _call_vibes(client, step, call)


def _call_vibes(client, step: StepCalls, call: Call) -> CallResult:
    try:
        if step.action == FlowStep.Action.SEND_SMS:
            if len(call.text) > sms_text.MAX_LENGTH:
                return CallResult(
                    Outcome.FAILED,
                    error_code="too_long",
                    detail=result_detail(TOO_LONG, length=len(call.text), max=sms_text.MAX_LENGTH),
                )
            sent = client.send_sms(to=call.phone, text=call.text, callback_url=receipt_url(call.result_id))
            return CallResult(Outcome.SENT, message_id=sent.message_id)
        if step.action == FlowStep.Action.SUBSCRIBE:
            result = client.add_participant(
                step.acquisition_campaign_id, mdn=call.phone, external_person_id=str(call.lead_id)
            )
            if result.status == "subscribed":
                return CallResult(
                    Outcome.SUBSCRIBED,
                    detail=ALREADY_SUBSCRIBED if result.already_subscribed else "",
                )
            return CallResult(Outcome.PENDING, detail=WAITING_FOR_REPLY)
        if step.action == FlowStep.Action.REQUEST_CAMPAIGN:
            # No call: the request is written with the outcome (executor.py).
            return CallResult(Outcome.REQUESTED)
        if step.action == FlowStep.Action.UNSUBSCRIBE:
            done = client.unsubscribe(
                step.vibes_list_id, external_person_id=str(call.lead_id), mdn=call.phone
            )
            # Vibes' 404: the number was not on the list (any more), whatever the local status said.
            return CallResult(Outcome.UNSUBSCRIBED if done else Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES)
    except vibes_errors.VibesCallWithheld:
        return CANCELLED
    except vibes_errors.VibesAuthError as error:
        # Refused before processing: nothing happened, so the call stays queued.
        return CallResult(
            Outcome.QUEUED,
            error_code="auth",
            requeue=True,
            stop=f"Vibes refused the credentials: {_short(error)}",
        )
    except (vibes_errors.VibesConnectionError, vibes_errors.VibesRateLimited) as error:
        return CallResult(Outcome.QUEUED, error_code=type(error).__name__, detail=_short(error), requeue=True)
    except vibes_errors.VibesUncertain as error:
        return CallResult(Outcome.UNCERTAIN, error_code="uncertain", detail=_short(error))
    except vibes_errors.VibesError as error:
        return CallResult(
            Outcome.FAILED, error_code=(error.code or str(error.status or ""))[:40], detail=_short(error)
        )
    except Exception as error:  # a bug of ours must not leave the batch half-recorded
        logger.exception("unexpected error calling Vibes for result %s", call.result_id)
        outcome = Outcome.UNCERTAIN if step.action == FlowStep.Action.SEND_SMS else Outcome.FAILED
        return CallResult(outcome, error_code="internal_error", detail=_short(error))
    raise ValueError(f"unknown action {step.action}")
