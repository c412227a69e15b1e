"""Executing planned steps: batches of calls to Vibes, recorded before and after.

A worker claims a batch (a slice of a step's result ids), marks its queued
rows `sending` and commits, makes the calls on a thread pool under the
client's rate limit (calls.py), then records each outcome. A worker that
dies leaves its batch claimed; whoever takes the batch over first settles
the rows still marked `sending` (uncertain.py). What comes after the call
(receipts, confirmations) is followup.py's.
"""

import datetime
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from vibes.models import Subscription, SubscriptionChange
from vibes.subscriptions import subscriptions_opt_out_numbers, subscriptions_set_status

from ..campaign_requests import REQUESTED_BY_FLOW, campaign_requests_record
from ..links import sms_texts_for_calls
from ..models import CampaignRun, FlowStep, Outcome, RunBatch, RunResult, RunStep, SmartCampaign
from ..reporting.rollups import sms_rollups_after, sms_rollups_before
from .calls import CANCELLED, Call, CallResult, StepCalls, call_vibes
from .counts import step_counts_add
from .deferral import (
    WaitingForQuietHours,
    batches_reopen_queued,
    quiet_hours_defer,
    run_wait_for_quiet_hours,
    step_waits_for_quiet_hours,
)
from .followup import results_settle_by_receipts
from .limits import NOT_SENT, marketing_sms_claim, marketing_sms_forget
from .person_limit import PersonLimitRefused
from .planner import PlanningError, count_outcomes, plan_step
from .rules import blocked_since_planning
from .uncertain import batch_rows, batch_settle_interrupted
from .waits import wait_step_pass

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 300
# How often a worker waiting for its calls looks whether the run was aborted.
ABORT_POLL_SECONDS = 0.2


class RunStopped(Exception):
    """The run cannot go on (Vibes refuses our credentials, or is unreachable)."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _worker_is_dead(owner: str) -> bool:
    """True when `owner` was a process on this machine that no longer exists.

    Both are needed: a claim expires after CLAIM_SECONDS; this takes a killed worker's batch over at once.
    """
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


def _run_aborted(run_id: int) -> bool:
    return CampaignRun.objects.filter(pk=run_id, status=CampaignRun.Status.CANCELLED).exists()


def _run_locked_if_active(run_id: int) -> bool:
    """Lock the run's row for this transaction; True when the run is still active."""
    status = (
        CampaignRun.objects.select_for_update().filter(pk=run_id).values_list("status", flat=True).first()
    )
    return status in CampaignRun.ACTIVE_STATUSES


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
        # Set once this worker saw the run aborted (in the database, whichever
        # process aborted it): the calls still waiting for their turn are not made.
        self.aborted = threading.Event()

    def _go_on(self) -> bool:
        return not self.aborted.is_set()

    def _results(self, futures) -> list[CallResult]:
        """The answers of a batch's calls, looking meanwhile whether the run was aborted."""
        while True:
            _done, pending = wait(futures, timeout=ABORT_POLL_SECONDS)
            if not pending:
                return [future.result() for future in futures]
            if not self.aborted.is_set() and _run_aborted(self.run.pk):
                self.aborted.set()

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
                if step.action == FlowStep.Action.WAIT and not self.run.dry_run:
                    self._plan_wait_step(step)
                    if not wait_step_pass(run=self.run, step=step):
                        self.run.refresh_from_db()
                        return self.run  # in the Wait step: the scheduler resumes it (waits.py)
                    continue
                if not self._advance(step):
                    time.sleep(0.2)  # other workers hold this step's last batches
        except WaitingForQuietHours:
            # Active still: the scheduler hands the run back when a window opens (deferral.py).
            run_wait_for_quiet_hours(self.run)
            self.run.refresh_from_db()
            return self.run
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

    def _plan_wait_step(self, step: RunStep) -> None:
        """Plan a Wait step as it is reached (its `waited` rows; its planned_at starts the wait)."""
        if step.status != RunStep.Status.PENDING:
            return
        try:
            counts = plan_step(step)
        except PlanningError:
            pass  # another worker planned it first: the same wait, from its planned_at
        else:
            if step.position == 0:
                CampaignRun.objects.filter(pk=self.run.pk).update(audience=sum(counts.values()))
        step.refresh_from_db()

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
            except PersonLimitRefused as error:
                # Nothing was written: the run fails with the reason, before any call.
                raise RunStopped(str(error)) from None
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
        if self._quiet_hours_left(step):
            return True
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

    def _claim_batch(self, step: RunStep) -> tuple[RunBatch | None, bool]:
        """A batch of the step to call for, and whether it was taken over from
        a worker that is gone (its rows left `sending` are settled first)."""
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
                    batch.status = RunBatch.Status.CLAIMED
                    batch.claimed_by = self.id
                    batch.claim_expires_at = now + datetime.timedelta(seconds=CLAIM_SECONDS)
                    batch.save(update_fields=["status", "claimed_by", "claim_expires_at"])
                    return batch, stale
        return None, False

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
                batch, stale = self._claim_batch(step)
                if batch is None:
                    break
                claimed_any = True
                if not in_flight and step.status == RunStep.Status.PLANNED:
                    RunStep.objects.filter(pk=step.pk, status=RunStep.Status.PLANNED).update(
                        status=RunStep.Status.EXECUTING
                    )
                if stale:
                    batch_settle_interrupted(
                        run=self.run, step=step, batch=batch, receipt_grace=self.receipt_grace
                    )
                self._dispatch(step, batch, in_flight, attempt=0)
            if not in_flight:
                return claimed_any
            batch, calls, futures, attempt = in_flight.popleft()
            results = self._results(futures)
            requeued = self._record(step, calls, results)
            stop = next((result.stop for result in results if result.stop), "")
            if stop:
                # Record what the batch still in flight got back before stopping.
                for _batch, more_calls, more_futures, _attempt in in_flight:
                    self._record(step, more_calls, self._results(more_futures))
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
        target = StepCalls(
            action=step.action,
            vibes_list_id=step.vibes_list.vibes_id if step.vibes_list else "",
            acquisition_campaign_id=step.acquisition_campaign.vibes_id if step.acquisition_campaign else "",
        )
        futures = [self.pool.submit(call_vibes, self.client, target, call, self._go_on) for call in calls]
        in_flight.append((batch, calls, futures, attempt))

    def _mark_sending(self, step: RunStep, batch: RunBatch) -> list[Call]:
        with transaction.atomic():
            # Under the run's lock, which an abort takes too: either the abort
            # comes first and cancels these rows, or they are marked `sending`
            # first and the abort waits for their calls to be recorded.
            if not _run_locked_if_active(self.run.pk):
                self.aborted.set()
                return []
            rows = list(
                batch_rows(step, batch, Outcome.QUEUED).order_by("pk").values_list("pk", "lead_id", "phone")
            )
            if not rows:
                return []
            if step.action not in (FlowStep.Action.UNSUBSCRIBE, FlowStep.Action.REQUEST_CAMPAIGN):
                rows = self._skip_blocked_since_planning(step, rows)
                rows = self._skip_over_communication_limit(step, rows)
                if not rows:
                    return []
            rows = self._defer_for_quiet_hours(step, rows)
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
        texts = sms_texts_for_calls(step=step, rows=rows)
        return [Call(result_id, lead_id, phone, texts[result_id]) for result_id, lead_id, phone in rows]

    def _record(self, step: RunStep, calls: list[Call], results: list[CallResult]) -> int:
        """Write each call's outcome; return how many rows went back to the queue."""
        now = timezone.now()
        with transaction.atomic():
            if any(result.requeue for result in results) and not _run_locked_if_active(self.run.pk):
                # Aborted: what was to be tried again is never called.
                self.aborted.set()
                results = [CANCELLED if result.requeue else result for result in results]
            self._write_outcomes(step, calls, results, now)
        run = CampaignRun.objects.only("progress_done", "progress_total").get(pk=self.run.pk)
        self.progress(run.progress_done, run.progress_total)
        return sum(1 for result in results if result.outcome == Outcome.QUEUED)

    def _write_outcomes(self, step, calls, results, now):
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
            # The SMS figures of the calls' hour follow their rows (reporting/rollups.py).
            sms_ids = [c.result_id for c in calls] if step.action == FlowStep.Action.SEND_SMS else []
            figures_before = sms_rollups_before(sms_ids)
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
                marketing_sms_forget(result_ids=[i for o in NOT_SENT for i in by_outcome.get(int(o), [])])
            cancelled = len(by_outcome.get(int(Outcome.CANCELLED), []))
            finished = len(calls) - len(by_outcome.get(int(Outcome.QUEUED), [])) - cancelled
            CampaignRun.objects.filter(pk=self.run.pk).update(
                progress_done=F("progress_done") + finished,
                progress_total=F("progress_total") - cancelled,
                heartbeat_at=now,
            )
            self._apply_subscription_changes(step, calls, results)
            if step.action == FlowStep.Action.REQUEST_CAMPAIGN:
                # With the outcome, so that a request is never lost nor made twice (R8).
                campaign_requests_record(
                    campaign_id=step.requested_campaign_id,
                    requests=[
                        (call.lead_id, f"run-result:{call.result_id}")
                        for call, result in zip(calls, results, strict=True)
                        if result.outcome == Outcome.REQUESTED
                    ],
                    source=REQUESTED_BY_FLOW,
                    requested_by=self.run.campaign_id,
                )
            # Last: the hour's SMS figures and the step's counts are rows that the
            # other workers and the receipts' applier share, so their locks are
            # held only until the commit (the figures first, as every writer takes them).
            sms_rollups_after(sms_ids, figures_before)
            step_counts_add(step.pk, delta)

    def _apply_subscription_changes(self, step, calls, results):
        if step.action == FlowStep.Action.SEND_SMS:
            return
        groups: dict[int, list[Call]] = {}
        for call, result in zip(calls, results, strict=True):
            groups.setdefault(int(result.outcome), []).append(call)
        note = f"run {self.run.pk}, step {step.number}"
        when = min((c.sent_at for c in calls if c.sent_at), default=None)
        run = SubscriptionChange.Source.RUN
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
                        source=run,
                        when=when,
                        note=note,
                        acquisition_campaign=step.acquisition_campaign,
                    )
            return
        # Vibes opts a number out, not a person (R9): everyone with the number is out.
        for outcome, reason, why, only_from in (
            (Outcome.UNSUBSCRIBED, "api_opt_out", "", None),
            # Vibes had the number out already: a local subscribed or pending
            # status was stale. Nobody gets a subscription record for a list
            # they were never on.
            (
                Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES,
                "",
                ": not subscribed in Vibes",
                {Subscription.Status.SUBSCRIBED, Subscription.Status.PENDING},
            ),
        ):
            if groups.get(int(outcome)):
                subscriptions_opt_out_numbers(
                    mdns={c.phone for c in groups[int(outcome)]},
                    vibes_list=step.vibes_list,
                    reason=reason,
                    source=run,
                    when=when,
                    note=f"{note}{why}",
                    only_from=only_from,
                )

    def _skip_blocked_since_planning(self, step: RunStep, rows: list[tuple]) -> list[tuple]:
        """Skip the queued rows (id, lead id, number) whose person or number was
        blocked since the plan was made, as the planner would have (R4 holds
        until the call); return the others."""
        skips = blocked_since_planning(rows)
        if not skips:
            return rows
        now = timezone.now()
        delta = Counter()
        for (outcome, blocker), ids in skips.items():
            RunResult.objects.filter(pk__in=ids, outcome=Outcome.QUEUED).update(
                outcome=outcome, blocked_by_id=blocker, updated_at=now
            )
            delta[Outcome.QUEUED] -= len(ids)
            delta[outcome] += len(ids)
        step_counts_add(step.pk, delta)
        skipped = {result_id for ids in skips.values() for result_id in ids}
        CampaignRun.objects.filter(pk=self.run.pk).update(progress_total=F("progress_total") - len(skipped))
        return [row for row in rows if row[0] not in skipped]

    def _skip_over_communication_limit(self, step: RunStep, rows: list[tuple]) -> list[tuple]:
        """Skip the queued rows whose number had its share of marketing SMS
        since the plan was made (another campaign texted it meanwhile), and
        count the others' SMS, in this transaction; return the others."""
        if step.action != FlowStep.Action.SEND_SMS or not rows:
            return rows
        # Read now, not at planning: an operational campaign neither obeys nor uses the limits.
        if SmartCampaign.objects.filter(pk=self.run.campaign_id, operational=True).exists():
            return rows
        over = marketing_sms_claim(rows=rows)
        if not over:
            return rows
        RunResult.objects.filter(pk__in=over, outcome=Outcome.QUEUED).update(
            outcome=Outcome.SKIPPED_COMMUNICATION_LIMIT, updated_at=timezone.now()
        )
        step_counts_add(step.pk, {Outcome.QUEUED: -len(over), Outcome.SKIPPED_COMMUNICATION_LIMIT: len(over)})
        CampaignRun.objects.filter(pk=self.run.pk).update(progress_total=F("progress_total") - len(over))
        skipped = set(over)
        return [row for row in rows if row[0] not in skipped]

    def _defer_for_quiet_hours(self, step: RunStep, rows: list[tuple]) -> list[tuple]:
        """Defer the rows whose recipient's sending window is closed now; return the others.

        Only Send SMS Message texts at this moment: Subscribe's confirmation
        text is Vibes' own, and Unsubscribe and Request Campaign text nobody.
        """
        if step.action != FlowStep.Action.SEND_SMS:
            return rows
        return quiet_hours_defer(step=step, rows=rows, at=timezone.now())

    def _quiet_hours_left(self, step: RunStep) -> bool:
        """Before a step is done: True when rows released from quiet hours
        meanwhile are to be called first; a step whose only rows left are
        deferred waits for their window (WaitingForQuietHours)."""
        if batches_reopen_queued(step):
            return True
        if step_waits_for_quiet_hours(step):
            raise WaitingForQuietHours
        return False
