"""Executing planned steps: batches of calls to Vibes, recorded before and after.

A worker claims a batch (a slice of a step's result ids), marks its queued
rows `sending` and commits, makes the calls on a thread pool under the
client's rate limit, then records each outcome. A worker that dies leaves
its batch claimed; whoever takes the batch over first settles the rows
still marked `sending`: an SMS with a delivery receipt was sent, one
without is `uncertain` and is only sent again when the operator asks
(`--retry-uncertain`). Unsubscribe calls are simply made again: they text
nobody. What comes after the call (receipts, confirmations) is followup.py's.
"""

import datetime
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from smscampaigns.models import Lead
from vibes import exceptions as vibes_errors
from vibes.models import Subscription
from vibes.subscriptions import subscriptions_set_status

from .. import sms_text
from ..models import CampaignRun, FlowStep, Outcome, RunBatch, RunResult, RunStep
from ..result_details import (
    ALREADY_SUBSCRIBED,
    RETRIED_BY_OPERATOR,
    STOPPED_WHILE_SENDING,
    STOPPED_WHILE_SUBSCRIBING,
    TOO_LONG,
    WAITING_FOR_REPLY,
    result_detail,
)
from .counts import step_counts_add
from .followup import results_settle_by_receipts, settle_outcome
from .planner import PlanningError, count_outcomes, plan_step

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 300


class RunStopped(Exception):
    """The run cannot go on (Vibes refuses our credentials, or is unreachable)."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _worker_is_dead(owner: str) -> bool:
    """True when `owner` was a process on this machine that no longer exists."""
    try:
        host, pid, _ = owner.split(":")
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        # A killed process its parent has not reaped yet is a zombie: dead all the same.
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


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


def _receipt_url(result_id: int) -> str | None:
    base = settings.VIBES_DELIVERY_RECEIPT_URL
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}ref=r{result_id}"


def _short(error) -> str:
    return str(getattr(error, "message", "") or error)[:300]


def call_vibes(client, run_step: RunStep, call: Call) -> CallResult:
    """Make one call for one person and say what came of it."""
    try:
        if run_step.action == FlowStep.Action.SEND_SMS:
            if len(call.text) > sms_text.MAX_LENGTH:
                return CallResult(
                    Outcome.FAILED,
                    error_code="too_long",
                    detail=result_detail(TOO_LONG, length=len(call.text), max=sms_text.MAX_LENGTH),
                )
            sent = client.send_sms(to=call.phone, text=call.text, callback_url=_receipt_url(call.result_id))
            return CallResult(Outcome.SENT, message_id=sent.message_id)
        if run_step.action == FlowStep.Action.SUBSCRIBE:
            result = client.add_participant(
                run_step.acquisition_campaign.vibes_id, mdn=call.phone, external_person_id=str(call.lead_id)
            )
            if result.status == "subscribed":
                return CallResult(
                    Outcome.SUBSCRIBED,
                    detail=ALREADY_SUBSCRIBED if result.already_subscribed else "",
                )
            return CallResult(Outcome.PENDING, detail=WAITING_FOR_REPLY)
        if run_step.action == FlowStep.Action.UNSUBSCRIBE:
            done = client.unsubscribe(
                run_step.vibes_list.vibes_id, external_person_id=str(call.lead_id), mdn=call.phone
            )
            # Vibes' 404: the number was not on the list (any more), whatever the local status said.
            return CallResult(Outcome.UNSUBSCRIBED if done else Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES)
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
        outcome = Outcome.UNCERTAIN if run_step.action == FlowStep.Action.SEND_SMS else Outcome.FAILED
        return CallResult(outcome, error_code="internal_error", detail=_short(error))
    raise ValueError(f"unknown action {run_step.action}")


class Worker:
    """Works on a run until it is done: plans steps, claims and calls batches."""

    def __init__(self, run: CampaignRun, *, client, concurrency=None, progress=None, receipt_grace=None):
        self.run = run
        self.client = client
        self.concurrency = concurrency or settings.RUNNER_CONCURRENCY
        self.progress = progress or (lambda done, total: None)
        self.receipt_grace = settings.RUNNER_RECEIPT_GRACE if receipt_grace is None else receipt_grace
        self.id = worker_id()
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vibes-call")

    def work(self) -> CampaignRun:
        try:
            self._start()
            while True:
                self.run.refresh_from_db()
                if not self.run.is_active:
                    return self.run
                step = (
                    self.run.steps.exclude(status=RunStep.Status.DONE)
                    .select_related("run__campaign__smart_list", "vibes_list", "acquisition_campaign")
                    .order_by("position")
                    .first()
                )
                if step is None:
                    self._finish_run(CampaignRun.Status.COMPLETED)
                    return self.run
                if not self._advance(step):
                    time.sleep(0.2)  # other workers hold this step's last batches
        except RunStopped as error:
            self._finish_run(CampaignRun.Status.FAILED, str(error))
            return self.run
        except Exception as error:
            logger.exception("run %s failed", self.run.pk)
            self._finish_run(CampaignRun.Status.FAILED, f"{type(error).__name__}: {error}")
            raise
        finally:
            self.pool.shutdown(wait=True)
            self._release_claims()

    def _release_claims(self):
        # Whoever takes these batches next settles any row left `sending`.
        RunBatch.objects.filter(claimed_by=self.id, status=RunBatch.Status.CLAIMED).update(
            claim_expires_at=timezone.now()
        )

    # --- run and step transitions ---------------------------------------------

    def _start(self):
        now = timezone.now()
        CampaignRun.objects.filter(pk=self.run.pk, status=CampaignRun.Status.QUEUED).update(
            status=CampaignRun.Status.RUNNING, started_at=now
        )
        CampaignRun.objects.filter(pk=self.run.pk).update(heartbeat_at=now)

    def _finish_run(self, status, error=""):
        CampaignRun.objects.filter(pk=self.run.pk, status__in=CampaignRun.ACTIVE_STATUSES).update(
            status=status, finished_at=timezone.now(), error=error[:2000]
        )
        self.run.refresh_from_db()

    def _advance(self, step: RunStep) -> bool:
        """Do the next piece of work on `step`; False when there was none to take."""
        if step.status == RunStep.Status.PENDING:
            try:
                counts = plan_step(step)
            except PlanningError:
                return True  # another worker planned it first
            called = counts.get(Outcome.QUEUED.code, 0)
            changes = {"progress_total": F("progress_total") + called, "heartbeat_at": timezone.now()}
            if step.position == 0:
                changes["audience"] = sum(counts.values())
            CampaignRun.objects.filter(pk=self.run.pk).update(**changes)
            if self.run.dry_run or not called:
                self._finish_step(step)
            return True
        if self._execute_step(step):
            return True
        if step.batches.exclude(status=RunBatch.Status.DONE).exists():
            return False
        self._finish_step(step)
        return True

    def _finish_step(self, step: RunStep):
        with transaction.atomic():
            # Under the step's lock: a receipt may be changing a row and the counts meanwhile.
            RunStep.objects.select_for_update().filter(pk=step.pk).only("pk").first()
            counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
            now = timezone.now()
            RunStep.objects.filter(pk=step.pk).exclude(status=RunStep.Status.DONE).update(
                status=RunStep.Status.DONE, counts=counts, finished_at=now, counts_updated_at=now
            )

    # --- batches ----------------------------------------------------------------

    def _claim_batch(self, step: RunStep) -> RunBatch | None:
        now = timezone.now()
        with transaction.atomic():
            candidates = (
                RunBatch.objects.select_for_update(skip_locked=True)
                .filter(run_step=step)
                .exclude(status=RunBatch.Status.DONE)
                .order_by("first_result_id")
            )
            for batch in candidates[:20]:
                stale = batch.status == RunBatch.Status.CLAIMED and (
                    batch.claim_expires_at < now or _worker_is_dead(batch.claimed_by)
                )
                if batch.status == RunBatch.Status.PENDING or stale:
                    batch.settle_first = stale  # noqa: B010 (a note for _execute_step, not a field)
                    batch.status = RunBatch.Status.CLAIMED
                    batch.claimed_by = self.id
                    batch.claim_expires_at = now + datetime.timedelta(seconds=CLAIM_SECONDS)
                    batch.save(update_fields=["status", "claimed_by", "claim_expires_at"])
                    return batch
        return None

    def _execute_step(self, step: RunStep) -> bool:
        """Call for every batch of the step this worker can claim; False if it claimed none.

        Two batches are kept in flight: while one batch's answers are being
        recorded, the next one's calls are already on the wire, so the rate
        limit, not the bookkeeping, sets the pace.
        """
        in_flight = deque()
        claimed_any = False
        while True:
            while len(in_flight) < 2:
                batch = self._claim_batch(step)
                if batch is None:
                    break
                claimed_any = True
                if not in_flight and step.status == RunStep.Status.PLANNED:
                    RunStep.objects.filter(pk=step.pk, status=RunStep.Status.PLANNED).update(
                        status=RunStep.Status.EXECUTING
                    )
                if batch.settle_first:
                    self._settle_interrupted(step, batch)
                self._dispatch(step, batch, in_flight, attempt=0)
            if not in_flight:
                return claimed_any
            batch, calls, futures, attempt = in_flight.popleft()
            results = [future.result() for future in futures]
            requeued = self._record(step, calls, results)
            stop = next((result.stop for result in results if result.stop), "")
            if stop:
                # Record what the batch still in flight got back before stopping.
                for _batch, more_calls, more_futures, _attempt in in_flight:
                    self._record(step, more_calls, [future.result() for future in more_futures])
                raise RunStopped(stop)
            if requeued:
                if attempt >= 4:
                    raise RunStopped("Vibes kept refusing or could not be reached; resume the run later.")
                time.sleep(min(30, 2**attempt))  # Vibes was unreachable or kept refusing: let it breathe
                self._dispatch(step, batch, in_flight, attempt=attempt + 1)
            else:
                RunBatch.objects.filter(pk=batch.pk, claimed_by=self.id).update(status=RunBatch.Status.DONE)

    def _dispatch(self, step, batch, in_flight, *, attempt):
        calls = self._mark_sending(step, batch)
        if not calls:
            RunBatch.objects.filter(pk=batch.pk, claimed_by=self.id).update(status=RunBatch.Status.DONE)
            return
        futures = [self.pool.submit(call_vibes, self.client, step, call) for call in calls]
        in_flight.append((batch, calls, futures, attempt))

    def _rows(self, step, batch, outcome):
        return RunResult.objects.filter(
            run_step=step, pk__gte=batch.first_result_id, pk__lte=batch.last_result_id, outcome=outcome
        )

    def _mark_sending(self, step: RunStep, batch: RunBatch) -> list[Call]:
        with transaction.atomic():
            rows = list(
                self._rows(step, batch, Outcome.QUEUED).order_by("pk").values_list("pk", "lead_id", "phone")
            )
            if not rows:
                return []
            if step.action != FlowStep.Action.UNSUBSCRIBE:
                rows = _skip_blocked_since_planning(self.run, step, rows)
                if not rows:
                    return []
            ids = [row[0] for row in rows]
            now = timezone.now()
            RunResult.objects.filter(pk__in=ids).update(
                outcome=Outcome.SENDING, updated_at=now, called_at=now
            )
            step_counts_add(step.pk, {Outcome.QUEUED: -len(ids), Outcome.SENDING: len(ids)})
        if step.action != FlowStep.Action.SEND_SMS:
            return [Call(result_id, lead_id, phone, sent_at=now) for result_id, lead_id, phone in rows]
        leads = Lead.objects.in_bulk([row[1] for row in rows])
        return [
            Call(result_id, lead_id, phone, sms_text.render(step.message_text, leads[lead_id]))
            for result_id, lead_id, phone in rows
        ]

    def _record(self, step: RunStep, calls: list[Call], results: list[CallResult]) -> int:
        """Write each call's outcome; return how many rows went back to the queue."""
        now = timezone.now()
        by_outcome: dict[int, list[int]] = {}
        for call, result in zip(calls, results, strict=True):
            by_outcome.setdefault(int(result.outcome), []).append(call.result_id)
        details = [
            (result.message_id, result.error_code, result.detail, now, call.result_id)
            for call, result in zip(calls, results, strict=True)
            if result.message_id or result.error_code or result.detail
        ]
        table = connection.ops.quote_name(RunResult._meta.db_table)
        delta = Counter()
        with transaction.atomic():
            if details:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"UPDATE {table} SET vibes_message_id = %s, error_code = %s, detail = %s, "
                        f"updated_at = %s WHERE id = %s",
                        details,
                    )
            for outcome, ids in by_outcome.items():
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    changed = RunResult.objects.filter(pk__in=chunk, outcome=Outcome.SENDING).update(
                        outcome=outcome, updated_at=now
                    )
                    delta[Outcome.SENDING] -= changed
                    delta[outcome] += changed
            if step.action == FlowStep.Action.SEND_SMS:
                # A delivery receipt that overtook the runner's own answer (say
                # a 5xx from Vibes after it had sent the SMS) tells what became of it.
                delta.update(results_settle_by_receipts([c.result_id for c in calls], now=now))
            finished = len(calls) - len(by_outcome.get(int(Outcome.QUEUED), []))
            CampaignRun.objects.filter(pk=self.run.pk).update(
                progress_done=F("progress_done") + finished, heartbeat_at=now
            )
            self._apply_subscription_changes(step, calls, results)
            # Last: receipts and confirmations wait for the step's lock, so it
            # is held only until the commit.
            step_counts_add(step.pk, delta)
        run = CampaignRun.objects.only("progress_done", "progress_total").get(pk=self.run.pk)
        self.progress(run.progress_done, run.progress_total)
        return len(by_outcome.get(int(Outcome.QUEUED), []))

    def _apply_subscription_changes(self, step, calls, results):
        if step.action == FlowStep.Action.SEND_SMS:
            return
        groups: dict[int, list[Call]] = {}
        for call, result in zip(calls, results, strict=True):
            groups.setdefault(int(result.outcome), []).append(call)
        note = f"run {self.run.pk}, step {step.number}"
        when = min((c.sent_at for c in calls if c.sent_at), default=None)
        if step.action == FlowStep.Action.SUBSCRIBE:
            for outcome, status in (
                (Outcome.PENDING, Subscription.Status.PENDING),
                (Outcome.SUBSCRIBED, Subscription.Status.SUBSCRIBED),
            ):
                if groups.get(int(outcome)):
                    subscriptions_set_status(
                        lead_ids=[c.lead_id for c in groups[int(outcome)]],
                        vibes_list=step.vibes_list,
                        status=status,
                        source="run",
                        when=when,
                        note=note,
                        acquisition_campaign=step.acquisition_campaign,
                    )
        else:
            # Vibes opts a number out, not a person (R9): everyone with the number is out.
            for outcome, reason, only_from in (
                (Outcome.UNSUBSCRIBED, "api_opt_out", None),
                # Vibes had the number out already: a local subscribed or
                # pending status was stale. Nobody gets a subscription
                # record for a list they were never on.
                (
                    Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES,
                    "",
                    {Subscription.Status.SUBSCRIBED, Subscription.Status.PENDING},
                ),
            ):
                if not groups.get(int(outcome)):
                    continue
                phones = {c.phone for c in groups[int(outcome)]}
                subscriptions_set_status(
                    lead_ids=list(Lead.objects.filter(mobile_phone__in=phones).values_list("pk", flat=True)),
                    vibes_list=step.vibes_list,
                    status=Subscription.Status.UNSUBSCRIBED,
                    source="run",
                    when=when,
                    note=note if only_from is None else f"{note}: not subscribed in Vibes",
                    opt_out_reason=reason,
                    only_from=only_from,
                )

    def _settle_interrupted(self, step: RunStep, batch: RunBatch):
        """Rows a dead worker left `sending`: find out, as far as possible, what happened."""
        sending = self._rows(step, batch, Outcome.SENDING)
        if not sending.exists():
            return
        delta = Counter()
        if step.action == FlowStep.Action.SEND_SMS:
            deadline = time.monotonic() + (self.receipt_grace if settings.VIBES_DELIVERY_RECEIPT_URL else 0)
            while sending.filter(delivery_status="").exists() and time.monotonic() < deadline:
                time.sleep(0.25)  # delivery receipts of SMS sent just before the crash are on their way
            with transaction.atomic():
                # A receipt proves the SMS went out, and says how it fared.
                now = timezone.now()
                by_outcome: dict[Outcome, list[int]] = {}
                for pk, status in sending.exclude(delivery_status="").values_list("pk", "delivery_status"):
                    by_outcome.setdefault(settle_outcome(status, Outcome.SENT), []).append(pk)
                settled = 0
                for outcome, ids in by_outcome.items():
                    moved = sending.filter(pk__in=ids).update(outcome=outcome, updated_at=now)
                    delta[outcome] += moved
                    settled += moved
                unknown = sending.update(
                    outcome=Outcome.UNCERTAIN,
                    error_code="interrupted",
                    detail=STOPPED_WHILE_SENDING,
                    updated_at=now,
                )
                delta.update({Outcome.SENDING: -(settled + unknown), Outcome.UNCERTAIN: unknown})
                step_counts_add(step.pk, delta)
                CampaignRun.objects.filter(pk=self.run.pk).update(
                    progress_done=F("progress_done") + settled + unknown
                )
        elif step.action == FlowStep.Action.UNSUBSCRIBE:
            with transaction.atomic():
                again = sending.update(outcome=Outcome.QUEUED, updated_at=timezone.now())
                step_counts_add(step.pk, {Outcome.SENDING: -again, Outcome.QUEUED: again})
        else:
            with transaction.atomic():
                unknown = sending.update(
                    outcome=Outcome.UNCERTAIN,
                    error_code="interrupted",
                    detail=STOPPED_WHILE_SUBSCRIBING,
                    updated_at=timezone.now(),
                )
                step_counts_add(step.pk, {Outcome.SENDING: -unknown, Outcome.UNCERTAIN: unknown})
                CampaignRun.objects.filter(pk=self.run.pk).update(progress_done=F("progress_done") + unknown)


def _skip_blocked_since_planning(run: CampaignRun, step: RunStep, rows: list[tuple]) -> list[tuple]:
    """R4 holds until the call, not only at planning: of the queued rows
    (id, lead id, number) about to be called, skip those whose person or
    number was blocked since the plan was made, as the planner would have
    skipped them; return the others. One indexed query per batch."""
    lead_ids = {lead_id for _id, lead_id, _phone in rows}
    phones = {phone for _id, _lead_id, phone in rows}
    blocked = (
        Lead.objects.filter(Q(blocklisted=True) | Q(marketing_suspended=True))
        .filter(Q(mobile_phone__in=phones) | Q(pk__in=lead_ids))
        .order_by("-blocklisted", "pk")  # the person named: a blocklisted holder first, then the lowest id
        .values_list("pk", "mobile_phone", "blocklisted")
    )
    own, holders = {}, {}
    for lead_id, phone, blocklisted in blocked:
        own[lead_id] = blocklisted
        if phone:
            holders.setdefault(phone, (lead_id, blocklisted))
    skips: dict[tuple, list[int]] = {}
    keep = []
    for row in rows:
        result_id, lead_id, phone = row
        if lead_id in own:
            key = (Outcome.SKIPPED_BLOCKLISTED if own[lead_id] else Outcome.SKIPPED_MARKETING_SUSPENDED, None)
        elif phone in holders:
            blocker, blocklisted = holders[phone]
            outcome = Outcome.SKIPPED_NUMBER_BLOCKLISTED if blocklisted else Outcome.SKIPPED_NUMBER_SUSPENDED
            key = (outcome, blocker)
        else:
            keep.append(row)
            continue
        skips.setdefault(key, []).append(result_id)
    if skips:
        now = timezone.now()
        delta = Counter()
        for (outcome, blocker), ids in skips.items():
            RunResult.objects.filter(pk__in=ids, outcome=Outcome.QUEUED).update(
                outcome=outcome, blocked_by_id=blocker, updated_at=now
            )
            delta[Outcome.QUEUED] -= len(ids)
            delta[outcome] += len(ids)
        step_counts_add(step.pk, delta)
        skipped = len(rows) - len(keep)
        CampaignRun.objects.filter(pk=run.pk).update(progress_total=F("progress_total") - skipped)
    return keep


def requeue_uncertain(run: CampaignRun) -> int:
    """Put a run's uncertain calls back in the queue (the operator's decision)."""
    total = 0
    with transaction.atomic():
        for step in run.steps.all():
            again = (
                step.results()
                .filter(outcome=Outcome.UNCERTAIN)
                .update(
                    outcome=Outcome.QUEUED,
                    error_code="",
                    detail=RETRIED_BY_OPERATOR,
                    updated_at=timezone.now(),
                )
            )
            if again:
                total += again
                step_counts_add(step.pk, {Outcome.UNCERTAIN: -again, Outcome.QUEUED: again})
                step.batches.all().update(
                    status=RunBatch.Status.PENDING, claimed_by="", claim_expires_at=None
                )
                RunStep.objects.filter(pk=step.pk).update(status=RunStep.Status.EXECUTING, finished_at=None)
        if total:
            CampaignRun.objects.filter(pk=run.pk).update(progress_done=F("progress_done") - total)
    return total
