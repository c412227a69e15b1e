"""Vibes callbacks at volume: gunicorn on PostgreSQL, posted to at rising rates.

    bin/with-test-services .venv/bin/python -m benchmarks.callbacks
    make bench-callbacks                      # the same, with RATES and SECONDS

On the PostgreSQL server of DATABASE_URL it creates a database of its own
(dropped at the end), writes LEADS people (a third subscribed to the list)
and a finished run whose Send step has a `sent` row per person, awaiting
its delivery receipt. Then gunicorn (4 workers) serves the app, and a client
in this process posts callbacks at each rate for SECONDS seconds: 80%
delivery receipts (each naming its row, as the SMS's callback URL does), 20%
subscription events (opt-ins and opt-outs of distinct numbers), and 2% of
them delivered a second time, as Vibes does on a timeout. The client is one
asyncio loop with keep-alive connections and every body written beforehand;
its requests are due on a fixed schedule (an open loop), and a latency runs
from the moment a request was due, so that a slow server cannot hide behind
a client that waits for it (`posting.py`, shared with the trigger benchmark).

It prints, per rate: the rate achieved, p50, p95, p99 and the slowest
answer, errors, and the CPU the client used (of one core). Then it checks
that every event is stored exactly once (repeats counted as deliveries),
every receipt moved its row once (the step's counts agree with its rows),
and every subscription event changed its number once.
"""

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.parse
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import posting
from benchmarks.posting import percentile

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "smscampaigns_bench_callbacks"
USERNAME, PASSWORD = "vibes", "bench-callback-password"
LIST_ID = "101"
RECEIPT_SHARE = 0.8
REPEAT_SHARE = 0.02


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.callbacks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rates", default="100,200,300,500,700", help="callbacks per second, in turn")
    parser.add_argument("--seconds", type=float, default=10, help="how long each rate is kept up")
    parser.add_argument("--leads", type=int, default=100_000, help="people, and rows awaiting receipts")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--connections", type=int, default=64, help="client connections at most")
    parser.add_argument(
        "--apply",
        choices=("request", "thread", "celery"),
        default="celery" if os.environ.get("TEST_REDIS_URL") else "thread",
        help="where callbacks are applied: in the request, by a thread of each web worker, or by Celery "
        "workers (on TEST_REDIS_URL; the default when it is set)",
    )
    parser.add_argument(
        "--celery-workers", type=int, default=1, help="Celery worker processes (--apply celery)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=600, help="seconds to wait for the last events to be applied"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (to look at it afterwards)")
    parser.add_argument(
        "--profile", action="store_true", help="instead: profile one receipt and one opt-out, in this process"
    )
    args = parser.parse_args(argv)
    # Stopped (Ctrl-C, kill): still stop gunicorn and the workers, and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rates = [int(rate) for rate in args.rates.split(",")]

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "This benchmark needs PostgreSQL: run it as `bin/with-test-services .venv/bin/python -m "
            "benchmarks.callbacks`, or with DATABASE_URL=postgres://… naming a server it may create "
            "a database on.",
            file=sys.stderr,
        )
        return 2
    bench_url = _database_create(url)
    os.environ.update(
        DATABASE_URL=bench_url,
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-secret-key",
        SECURE_SSL_REDIRECT="false",
        VIBES_CALLBACK_USERNAME=USERNAME,
        VIBES_CALLBACK_PASSWORD=PASSWORD,
        VIBES_CALLBACK_ALLOWED_IPS="",
        VIBES_DELIVERY_RECEIPT_URL="",
        LOG_LEVEL="ERROR",
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["VIBES_CALLBACKS_APPLY"] = "request" if args.apply == "request" else "background"
    if args.apply == "celery":
        os.environ.update(CELERY_BROKER_URL=os.environ["TEST_REDIS_URL"], RUNNER_BACKGROUND="celery")
    else:
        os.environ["RUNNER_BACKGROUND"] = "thread"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smscampaigns.settings")
    try:
        import django

        django.setup()
        return _profile(args) if args.profile else _bench(args, rates)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _database_drop(url)


def _server_dsn(url: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path="/postgres").geturl()


def _database_create(url: str) -> str:
    import psycopg

    with psycopg.connect(_server_dsn(url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return urllib.parse.urlsplit(url)._replace(path=f"/{DATABASE}").geturl()


def _database_drop(url: str) -> None:
    import psycopg

    with psycopg.connect(_server_dsn(url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


# --- The world: people, a list, a run awaiting its receipts ---------------------------------------------


@dataclass
class World:
    step_id: int
    row_ids: list[int]
    numbers: list[str]


def _build(leads: int) -> World:
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from marketing_activities.models import (
        CampaignRun,
        FlowStep,
        Folder,
        Outcome,
        Program,
        RunResult,
        RunStep,
        SmartCampaign,
    )
    from marketing_activities.runner.planner import count_outcomes
    from smscampaigns.models import Lead
    from vibes.models import Subscription, VibesList

    call_command("migrate", verbosity=0)
    since = timezone.now().replace(year=2026, month=1, day=1)
    with transaction.atomic():
        vibes_list = VibesList.objects.create(vibes_id=LIST_ID, name="SMS Newsletter")
        numbers = [f"+1212{n:07d}" for n in range(leads)]
        people = Lead.objects.bulk_create(
            (Lead(email=f"p{n}@bench.invalid", mobile_phone=numbers[n]) for n in range(leads)),
            batch_size=5_000,
        )
        Subscription.objects.bulk_create(
            (
                Subscription(lead=lead, vibes_list=vibes_list, status="subscribed", status_at=since)
                for lead in people[::3]
            ),
            batch_size=5_000,
        )
        folder = Folder.objects.create(name="Benchmark")
        program = Program.objects.create(name="Benchmark", folder=folder)
        campaign = SmartCampaign.objects.create(program=program, name="Receipts at volume")
        run = CampaignRun.objects.create(
            campaign=campaign,
            trigger=CampaignRun.Trigger.COMMAND,
            status=CampaignRun.Status.COMPLETED,
            started_at=since,
        )
        step = RunStep.objects.create(
            run=run, position=0, action=FlowStep.Action.SEND_SMS, vibes_list=vibes_list, planned_at=since
        )
        rows = RunResult.objects.bulk_create(
            (
                RunResult(
                    run_step=step, lead=lead, phone=lead.mobile_phone, outcome=Outcome.SENT, updated_at=since
                )
                for lead in people
            ),
            batch_size=5_000,
        )
        step.first_result_id, step.last_result_id = rows[0].pk, rows[-1].pk
        step.counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
        step.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return World(step.pk, [row.pk for row in rows], numbers)


# --- The callbacks, written beforehand ------------------------------------------------------------------


@dataclass
class Plan:
    requests: list[bytes]  # per rate, in the order they are due
    receipts: set[int] = field(default_factory=set)  # row ids
    subscription_events: int = 0
    unique_events: int = 0


class Events:
    """Hands out the callbacks: receipts for rows not yet receipted, subscription
    events for numbers not yet used, and now and then one already posted."""

    def __init__(
        self, world: World, *, receipt_share=RECEIPT_SHARE, repeat_share=REPEAT_SHARE, seed: int = 1
    ):
        self.rng = random.Random(seed)
        self.receipt_share, self.repeat_share = receipt_share, repeat_share
        self.rows = iter(world.row_ids)
        # Subscription events take the numbers from the end, receipts the rows from the start.
        self.numbers = iter(reversed(world.numbers))
        self.posted: list[bytes] = []
        self.auth = "Basic " + b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        self.second = 0

    def next(self, plan: Plan) -> bytes:
        if self.posted and self.rng.random() < self.repeat_share:
            return self.rng.choice(self.posted)
        if self.rng.random() < self.receipt_share:
            row_id = next(self.rows)
            plan.receipts.add(row_id)
            body = {"message_id": f"M{row_id}", "status": "delivered", "occurred_at": "2026-11-01T09:00:00Z"}
            request = self._request(f"/vibes/callbacks/?ref=r{row_id}", body, event_type="")
        else:
            number = next(self.numbers)
            self.second += 1
            moment = f"2026-11-{1 + self.second // 86400:02d}T{self.second % 86400 // 3600:02d}:" + (
                f"{self.second % 3600 // 60:02d}:{self.second % 60:02d}Z"
            )
            opt_in = self.rng.random() < 0.5
            body = {"subscription_list": {"id": LIST_ID}, "mobile_phone": {"mdn": number}}
            body["opt_in_date" if opt_in else "opt_out_date"] = moment
            event_type = "subscription_added" if opt_in else "subscription_removed"
            request = self._request("/vibes/callbacks/", body, event_type=event_type)
            plan.subscription_events += 1
        plan.unique_events += 1
        self.posted.append(request)
        return request

    def _request(self, path: str, body: dict, *, event_type: str) -> bytes:
        return posting.http_request(path, body, auth=self.auth, event_type=event_type)


# --- The server -----------------------------------------------------------------------------------------


def _gunicorn(args) -> tuple[subprocess.Popen, int]:
    return posting.gunicorn_start(
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
        log_name="bench-callbacks-gunicorn",
    )


def _celery_workers(count: int) -> list[subprocess.Popen]:
    """Celery workers (one process each) that apply the callbacks, at a lower priority
    than the web workers: answering Vibes comes first, applying may lag and catch up."""
    from smscampaigns.celery import app
    from tests.waiting import wait_until

    workers = [
        subprocess.Popen(
            [
                "nice",
                "-n",
                "10",
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smscampaigns",
                "worker",
                "--pool=solo",
                "-n",
                f"bench{n}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ],
            cwd=BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for n in range(count)
    ]
    wait_until(
        lambda: len(app.control.ping(timeout=1.0) or []) >= count, what="the Celery workers to answer a ping"
    )
    return workers


def _warm_up(port: int, workers: int) -> None:
    """Every worker answers a first callback (loading the app, opening its connection) before any timing."""
    import requests

    for _ in range(workers * 4):
        requests.post(
            f"http://127.0.0.1:{port}/vibes/callbacks/",
            data=b"{}",
            headers={"Content-Type": "application/json", "X-Vibes-Event-Type": "bench_warm_up"},
            auth=(USERNAME, PASSWORD),
            timeout=60,
        )


# --- One request, profiled -----------------------------------------------------------------------------


def _profile(args) -> int:
    """Each kind of callback through Django's whole stack (its middleware included)
    in this process: its queries, and where its time goes (cProfile)."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    world = _build(min(args.leads, 20_000))
    plan = Plan([])
    client = Client(SERVER_NAME="127.0.0.1")

    def post(request: bytes):
        head, _, body = request.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        headers = dict(line.split(": ", 1) for line in lines[1:])
        extra = (
            {"HTTP_X_VIBES_EVENT_TYPE": headers["X-Vibes-Event-Type"]}
            if "X-Vibes-Event-Type" in headers
            else {}
        )
        response = client.generic(
            "POST", path, body, "application/json", HTTP_AUTHORIZATION=headers["Authorization"], **extra
        )
        assert response.status_code == 200, response.content

    for kind, receipt_share in (("receipt", 1.0), ("subscription event", 0.0)):
        events = Events(world, receipt_share=receipt_share, repeat_share=0.0)
        requests = [events.next(plan) for _ in range(301)]
        post(requests[0])  # the first request of a process loads what every later one reuses
        with CaptureQueriesContext(connection) as queries:
            post(requests[1])
        print(f"\n=== One {kind}: {len(queries)} queries ===")
        for query in queries:
            print(f"  {query['time']:>6}s  {query['sql'][:150]}")
        started, cpu = time.perf_counter(), time.process_time()
        for request in requests[2:102]:
            post(request)
        print(
            f"\n{kind}: {(time.perf_counter() - started) * 10:.2f} ms a request, "
            f"{(time.process_time() - cpu) * 10:.2f} ms of it this process's CPU (100 in a row, unprofiled; "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        profiler = cProfile.Profile()
        profiler.enable()
        for request in requests[102:]:
            post(request)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return 0


# --- The run --------------------------------------------------------------------------------------------


def _bench(args, rates: list[int]) -> int:
    from tests.waiting import stop

    started = time.monotonic()
    world = _build(args.leads)
    needed = sum(int(rate * args.seconds) for rate in rates)
    if needed * RECEIPT_SHARE * 1.1 > len(world.row_ids) or needed * 0.3 > len(world.numbers) / 2:
        print(f"--leads {args.leads} is too few for {needed} callbacks; give more.", file=sys.stderr)
        return 2
    events = Events(world)
    plan = Plan([])
    stages_requests = [[events.next(plan) for _ in range(int(rate * args.seconds))] for rate in rates]
    print(
        f"Built {args.leads:,} leads and a step of {len(world.row_ids):,} sent SMS in "
        f"{time.monotonic() - started:.0f} s; gunicorn: {args.workers} {args.worker_class} workers"
        + (f" × {args.threads} threads" if args.worker_class == "gthread" else "")
        + f"; callbacks applied: {args.apply}"
        + f"; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    server, port = _gunicorn(args)
    workers = _celery_workers(args.celery_workers) if args.apply == "celery" else []
    stages = []
    try:
        _warm_up(port, args.workers)
        for rate, requests in zip(rates, stages_requests, strict=True):
            stages.append(asyncio.run(posting.post_on_schedule(port, rate, requests, args.connections)))
            _print_stage(stages[-1], first=len(stages) == 1)
            time.sleep(1)
        problems = _check(world, plan, sum(stage.oks for stage in stages), timeout=args.drain_timeout)
    finally:
        stop(server, *workers)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
    if problems:
        print("\n".join(["Problems:", *problems]), file=sys.stderr)
        return 1
    print(
        f"Checked: {plan.unique_events:,} events stored exactly once ({sum(s.oks for s in stages):,} "
        f"answered 200, repeats counted as deliveries), {len(plan.receipts):,} receipts each applied once, "
        f"{plan.subscription_events:,} subscription events each applied once."
    )
    return 0


def _print_stage(stage: posting.Stage, *, first: bool) -> None:
    if first:
        print(f"{'rate /s':>8} {'achieved':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'errors':>7} {'client CPU':>10} {'load':>5}")  # fmt: skip
    ms = [latency * 1000 for latency in stage.latencies]
    errors = sum(stage.errors.values())
    print(
        f"{stage.rate:>8} {len(stage.latencies) / stage.elapsed:>9.0f} {percentile(ms, 0.50):>7.1f} "
        f"{percentile(ms, 0.95):>7.1f} {percentile(ms, 0.99):>7.1f} {max(ms, default=0):>7.1f} "
        f"{errors:>7} {stage.client_cpu:>9.0%} {os.getloadavg()[0]:>5.1f}"
        + (f"  {stage.errors}" if errors else ""),
        flush=True,
    )


def _check(world: World, plan: Plan, oks: int, timeout: float) -> list[str]:
    """What is not as it must be once every callback is in: [] when all is well.

    Waits (up to `timeout`) for events still being applied off the request.
    """
    from django.db.models import Count, Sum

    from marketing_activities.models import Outcome, RunResult, RunStep
    from tests.waiting import wait_until
    from vibes.models import CallbackEvent, SubscriptionChange

    events = CallbackEvent.objects.exclude(event_type="bench_warm_up")
    problems = []
    stored = events.count()
    if stored != plan.unique_events:
        problems.append(f"{stored:,} events stored for {plan.unique_events:,} distinct events posted")
    deliveries = events.aggregate(total=Sum("deliveries"))["total"] or 0
    if deliveries != oks:
        problems.append(f"{deliveries:,} deliveries counted for {oks:,} callbacks answered 200")
    posted = time.monotonic()
    waiting = events.filter(outcome=CallbackEvent.Outcome.RECEIVED)
    try:
        wait_until(
            lambda: not waiting.exists(), what="every event to be applied", timeout=timeout, interval=0.5
        )
    except AssertionError as error:
        return [*problems, f"{error}: {waiting.count():,} of {stored:,} still waiting"]
    print(f"Every event applied {time.monotonic() - posted:.1f} s after the last was posted.")
    step_rows = RunResult.objects.filter(run_step_id=world.step_id)
    delivered = set(step_rows.filter(outcome=Outcome.DELIVERED).values_list("pk", flat=True))
    if delivered != plan.receipts:
        problems.append(
            f"{len(delivered ^ plan.receipts):,} rows disagree with their receipts "
            f"({len(delivered):,} delivered for {len(plan.receipts):,} receipts)"
        )
    counts = RunStep.objects.get(pk=world.step_id).counts
    by_rows = dict(step_rows.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    by_rows = {Outcome(outcome).code: n for outcome, n in by_rows.items()}
    if counts != by_rows:
        problems.append(f"the step's counts {counts} disagree with its rows {by_rows}")
    # One lead per number: an event applied once changed (or kept in the history) at most one subscription.
    changes = SubscriptionChange.objects.filter(callback_event__isnull=False)
    twice = changes.values("callback_event").annotate(n=Count("pk")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice:,} subscription events changed a subscription more than once")
    subscription_events = events.filter(event_type__in=("subscription_added", "subscription_removed"))
    unapplied = subscription_events.exclude(outcome=CallbackEvent.Outcome.APPLIED).count()
    if unapplied or subscription_events.count() != plan.subscription_events:
        problems.append(
            f"{unapplied:,} of {subscription_events.count():,} subscription events not applied "
            f"({plan.subscription_events:,} posted)"
        )
    return problems


if __name__ == "__main__":
    sys.exit(main())
