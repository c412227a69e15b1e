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
a client that waits for it.

It prints, per rate: the rate achieved, p50, p95, p99 and the slowest
answer, errors, the CPU the client used (of one core), and the CPU the web
workers and the database used per callback (a cost the machine's load
changes less than it changes the latencies). Then it checks that every
event is stored exactly once (repeats counted as deliveries), every receipt
moved its row once (the step's counts agree with its rows) and wrote its
person's activity once, and every subscription event changed its number
once; with Celery it prints the CPU applying took per event.
"""

import argparse
import asyncio
import json
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

from . import posting

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
    parser.add_argument(
        "--applying",
        type=int,
        default=0,
        metavar="N",
        help="instead: apply N waiting receipts one at a time, then N in batches, then N/4 subscription "
        "events, in this process, and compare",
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
        if args.applying:
            return _applying(args)
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
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        )
        if event_type:
            head += f"X-Vibes-Event-Type: {event_type}\r\n"
        return (head + "\r\n").encode() + data


# --- The client -----------------------------------------------------------------------------------------


@dataclass
class Stage:
    rate: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    oks: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    # CPU seconds used meanwhile by the web workers, the database and the appliers
    server_cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)


async def _stage(port: int, rate: int, requests: list[bytes], connections: int, probe) -> Stage:
    stage = Stage(rate)
    server_before = probe()
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def sender():
        connection = None
        while True:
            item = await queue.get()
            if item is None:
                return
            due, request = item
            try:
                status, connection = await posting.post(port, connection, request)
            except (OSError, asyncio.IncompleteReadError) as error:
                connection = None
                stage.errors[type(error).__name__] = stage.errors.get(type(error).__name__, 0) + 1
                continue
            stage.latencies.append(loop.time() - due)
            if status == 200:
                stage.oks += 1
            else:
                stage.errors[str(status)] = stage.errors.get(str(status), 0) + 1

    senders = [asyncio.create_task(sender()) for _ in range(connections)]
    cpu_before = posting.cpu()
    start = loop.time()
    for index, request in enumerate(requests):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, request))
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    stage.elapsed = loop.time() - start
    stage.client_cpu = (posting.cpu() - cpu_before) / stage.elapsed
    stage.server_cpu = tuple(after - before for after, before in zip(probe(), server_before, strict=True))
    return stage


class CpuProbe:
    """CPU seconds used so far by the web workers, this benchmark's database
    backends and the Celery workers: per callback, a cost that the machine's
    load does not change as much as it changes the latencies."""

    def __init__(self, server: subprocess.Popen, appliers: list[subprocess.Popen]):
        self.server, self.appliers = server, appliers

    def __call__(self) -> tuple[float, float, float]:
        web = [self.server.pid, *_children(self.server.pid)]
        appliers = [pid for worker in self.appliers for pid in (worker.pid, *_children(worker.pid))]
        return _cpu_of(web), _cpu_of(_database_backends()), _cpu_of(appliers)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in _children(child)]


def _database_backends() -> list[int]:
    """The PostgreSQL backends of this benchmark's database (their titles name it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {DATABASE} ".encode() in title:
            pids.append(int(cmdline.parent.name))
    return pids


def _cpu_of(pids) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- The server -----------------------------------------------------------------------------------------


def _gunicorn(args) -> tuple[subprocess.Popen, int]:
    from benchmarks.harness import free_port
    from tests.waiting import wait_for_server

    port = free_port()
    log = BASE_DIR / "var" / "bench-callbacks-gunicorn.log"
    log.parent.mkdir(exist_ok=True)
    argv = [
        sys.executable, "-m", "gunicorn", "smscampaigns.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
        "--backlog", "2048",
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(argv, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT)
    wait_for_server(f"http://127.0.0.1:{port}/vibes/callbacks/", process=server)
    return server, port


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


# --- Applying alone: one at a time, or in batches -----------------------------------------------------


def _applying(args) -> int:
    """The same waiting events applied one event a transaction (as before) and in
    batches (as now), on the same machine at the same moment: time, CPU of this
    process and of the database, statements."""
    from django.db import connection

    from vibes.callbacks.applying import callback_event_apply, callbacks_apply_waiting
    from vibes.callbacks.receiving import dedupe_key
    from vibes.models import CallbackEvent

    count = args.applying
    world = _build(max(args.leads, 2 * count + 2 * (count // 4) + 10))
    rows, numbers = iter(world.row_ids), iter(reversed(world.numbers))

    def waiting(kind: str) -> list[int]:
        events = []
        for second in range(count if kind == "delivery_receipt" else count // 4):
            if kind == "delivery_receipt":
                row_id = next(rows)
                payload = {
                    "message_id": f"M{row_id}",
                    "status": "delivered",
                    "occurred_at": "2026-11-01T09:00:00Z",
                }
                events.append((kind, payload, f"r{row_id}"))
            else:
                payload = {
                    "subscription_list": {"id": LIST_ID},
                    "mobile_phone": {"mdn": next(numbers)},
                    "opt_out_date": f"2026-11-01T10:{second // 60 % 60:02d}:{second % 60:02d}Z",
                }
                events.append((kind, payload, ""))
        made = CallbackEvent.objects.bulk_create(
            CallbackEvent(
                event_type=kind,
                dedupe_key=dedupe_key(kind, payload, reference),
                payload=payload,
                reference=reference or None,
                outcome=CallbackEvent.Outcome.RECEIVED,
            )
            for kind, payload, reference in events
        )
        return [event.pk for event in made]

    def one_at_a_time():
        for event_id in ids:
            callback_event_apply(event_id=event_id)

    statements = 0

    def counted(execute, sql, params, many, context):
        nonlocal statements
        statements += "SAVEPOINT" not in sql
        return execute(sql, params, many, context)

    print(
        f"{'events':<20} {'applied':<24} {'count':>6} {'seconds':>8} {'events/s':>9} {'CPU ms/event':>13} "
        f"{'db CPU ms/event':>16} {'statements/event':>17} {'load':>5}"
    )
    for kind, name, apply in (
        ("delivery_receipt", "one at a time (before)", one_at_a_time),
        ("delivery_receipt", "in batches (now)", callbacks_apply_waiting),
        ("subscription_removed", "one at a time (both)", callbacks_apply_waiting),
    ):
        ids = waiting(kind)
        connection.close()
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        statements = 0
        db_before, cpu_before, started = _cpu_of([backend]), posting.cpu(), time.perf_counter()
        with connection.execute_wrapper(counted):
            apply()
        elapsed = time.perf_counter() - started
        cpu, db = posting.cpu() - cpu_before, _cpu_of([backend]) - db_before
        left = CallbackEvent.objects.filter(pk__in=ids, outcome=CallbackEvent.Outcome.RECEIVED).count()
        print(
            f"{kind:<20} {name:<24} {len(ids):>6} {elapsed:>8.2f} {len(ids) / elapsed:>9.0f} "
            f"{cpu * 1000 / len(ids):>13.2f} {db * 1000 / len(ids):>16.2f} {statements / len(ids):>17.2f} "
            f"{os.getloadavg()[0]:>5.1f}" + (f"  ({left} left waiting!)" if left else ""),
            flush=True,
        )
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
    probe = CpuProbe(server, workers)
    try:
        _warm_up(port, args.workers)
        for rate, requests in zip(rates, stages_requests, strict=True):
            stages.append(asyncio.run(_stage(port, rate, requests, args.connections, probe)))
            _print_stage(stages[-1], first=len(stages) == 1)
            time.sleep(1)
        before_drain = probe()
        problems = _check(world, plan, sum(stage.oks for stage in stages), timeout=args.drain_timeout)
        _print_cpu(stages, before_drain, probe(), plan.unique_events, args.apply)
    finally:
        stop(server, *workers)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
    if problems:
        print("\n".join(["Problems:", *problems]), file=sys.stderr)
        return 1
    print(
        f"Checked: {plan.unique_events:,} events stored exactly once ({sum(s.oks for s in stages):,} "
        f"answered 200, repeats counted as deliveries), {len(plan.receipts):,} receipts each applied once "
        "(its activity written once), "
        f"{plan.subscription_events:,} subscription events each applied once."
    )
    return 0


def _print_stage(stage: Stage, *, first: bool) -> None:
    if first:
        print(f"{'rate /s':>8} {'achieved':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'errors':>7} {'client CPU':>10} {'load':>5} {'web CPU ms/cb':>14} "
              f"{'db CPU ms/cb':>13}")  # fmt: skip
    ms = [latency * 1000 for latency in stage.latencies]
    errors = sum(stage.errors.values())
    web, database, _appliers = stage.server_cpu
    p50, p95, p99 = (posting.percentile(ms, share) for share in (0.50, 0.95, 0.99))
    print(
        f"{stage.rate:>8} {len(stage.latencies) / stage.elapsed:>9.0f} {p50:>7.1f} "
        f"{p95:>7.1f} {p99:>7.1f} {max(ms, default=0):>7.1f} "
        f"{errors:>7} {stage.client_cpu:>9.0%} {os.getloadavg()[0]:>5.1f} "
        f"{web * 1000 / max(1, len(ms)):>14.2f} {database * 1000 / max(1, len(ms)):>13.2f}"
        + (f"  {stage.errors}" if errors else ""),
        flush=True,
    )


def _print_cpu(stages: list[Stage], before_drain, after_drain, events: int, apply: str) -> None:
    """What applying cost: the appliers' CPU per event (the database's is left out here:
    its backends come and go while the appliers catch up, and take their counts along)."""
    if apply != "celery":
        return
    applying = sum(stage.server_cpu[2] for stage in stages) + after_drain[2] - before_drain[2]
    print(
        f"Applying: the Celery workers used {applying:.1f} s of CPU for {events:,} events "
        f"({applying * 1000 / max(1, events):.2f} ms an event)."
    )


def _check(world: World, plan: Plan, oks: int, timeout: float) -> list[str]:
    """What is not as it must be once every callback is in: [] when all is well.

    Waits (up to `timeout`) for events still being applied off the request.
    """
    from django.db.models import Count, Sum

    from marketing_activities.models import Outcome, RunResult, RunStep
    from smscampaigns.models import Activity
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
    # A receipt's activity (SMS is Delivered) is written once, when its row moves.
    activities = Activity.objects.filter(kind=Activity.Kind.SMS_DELIVERED, key__startswith="sms-receipt:")
    if activities.count() != len(plan.receipts):
        problems.append(f"{activities.count():,} delivery activities for {len(plan.receipts):,} receipts")
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
