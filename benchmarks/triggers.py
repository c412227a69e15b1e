"""The trigger benchmark: how long from a callback's arrival to the flow's Vibes call.

A scratch database holds one active trigger campaign ("Subscribes to Vibes
List" → Send SMS Message) and a person per event. gunicorn serves the app
(`--web-workers` workers: sync, or gthread with `--threads`, the default on
SQLite), and a poster of its own (`posting.py`: one
asyncio loop, keep-alive connections, every body written beforehand) posts
one `subscription_added` callback per person on a fixed schedule (50 a
second by default), as Vibes would. The dispatcher works in a thread of each
web worker (no broker: the in-process dispatcher), or, with
`celery_workers`, on that many Celery worker processes on the broker of
CELERY_BROKER_URL. A person's latency runs from the moment their callback
was due to be posted (an open loop: a poster that falls behind cannot hide
it) to the moment their SMS's row turned `sending`, just before the call to
Vibes (`RunResult.called_at`). A callback the server has no room for a
minute after its time is not posted (counted): a saturated machine gives a
report after ten minutes, not hours. The simulator runs in a process of its
own, with 20 ms of latency and no rate limit.
"""

import asyncio
import base64
import contextlib
import os
import statistics
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from marketing_activities import services
from marketing_activities.models import (
    CampaignRun,
    FlowStep,
    Folder,
    Program,
    RunResult,
    SmartCampaign,
    SmsMessage,
    TriggerFiring,
)
from smscampaigns.models import Activity, Lead
from tests.waiting import stop, wait_until
from vibes.models import CallbackEvent, VibesList

from . import posting, write_lock
from .harness import SimulatorProcess

CALLBACK_USERNAME, CALLBACK_PASSWORD = "vibes", "bench-callback-password"
# On SQLite gunicorn runs gthread workers, as a deployment on SQLite would: a
# callback waiting its turn at the write lock holds a thread, not the worker.
SQLITE_THREADS = 8


def build(*, people: int) -> SmartCampaign:
    call_command("migrate", verbosity=0)
    news = VibesList.objects.create(vibes_id="101", name="SMS Newsletter")
    program = Program.objects.create(name="Welcome", folder=Folder.objects.create(name="Bench"))
    message = SmsMessage.objects.create(program=program, name="Welcome", text="Welcome to the newsletter!")
    campaign = SmartCampaign.objects.create(
        program=program, name="Welcome", qualification_rule=SmartCampaign.QualificationRule.EVERY_TIME
    )
    campaign.smart_list.definition = {
        "logic": "all",
        "rules": [],
        "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": str(news.pk)}],
    }
    campaign.smart_list.save()
    FlowStep.objects.create(
        campaign=campaign, action=FlowStep.Action.SEND_SMS, sms_message=message, vibes_list=news
    )
    Lead.objects.bulk_create(
        (Lead(email=f"p{n}@bench.invalid", mobile_phone=number(n)) for n in range(people)), batch_size=5_000
    )
    services.campaign_set_active(campaign=campaign, active=True)
    return campaign


def number(n: int) -> str:
    return f"+1212{n:07d}"


def measure(
    *,
    rate: float,
    seconds: float,
    drain_seconds: float = 300,
    celery_workers: int = 0,
    web_workers: int = 2,
    threads: int | None = None,
    connections: int = 16,
    give_up_after: float = 60,
    trace_write_lock: bool = False,
) -> dict:
    """Post `rate` callbacks a second for `seconds` to gunicorn, wait for the calls,
    and report the latencies."""
    if threads is None:
        threads = SQLITE_THREADS if connection.vendor == "sqlite" else 0
    people = int(rate * seconds)
    campaign = build(people=people)
    auth = "Basic " + base64.b64encode(f"{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}".encode()).decode()
    # Every body written beforehand, so that the poster only keeps its schedule.
    requests = [
        posting.http_request(
            "/vibes/callbacks/",
            {
                "subscription_list": {"id": "101"},
                "mobile_phone": {"mdn": number(n)},
                "opt_in_date": timezone.now().isoformat(),
                "event_id": f"bench-{n}",
            },
            auth=auth,
            event_type="subscription_added",
        )
        for n in range(people)
    ]
    load_before = os.getloadavg()
    with SimulatorProcess(rate_limit=0, latency_ms=20) as simulator, contextlib.ExitStack() as cleanup:
        env = _app_env(simulator.url, celery=bool(celery_workers))
        if celery_workers:
            cleanup.callback(stop, *celery_workers_start(celery_workers, env=env))
        if trace_write_lock:
            write_lock.clear()
        server, port = posting.gunicorn_start(
            workers=web_workers,
            worker_class="gthread" if threads else "sync",
            threads=threads or 1,
            log_name="bench-triggers-gunicorn",
            env=env,
            config="python:benchmarks.write_lock" if trace_write_lock else "",
        )
        cleanup.callback(stop, server)
        web_cpu = _web_cpu(server)
        stage = asyncio.run(
            posting.post_on_schedule(port, rate, requests, connections, give_up_after=give_up_after)
        )
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            if RunResult.objects.filter(called_at__isnull=False).count() >= stage.oks:
                break
            time.sleep(0.5)
        load_during = os.getloadavg()
        web_cpu = _web_cpu(server) - web_cpu
    called = dict(RunResult.objects.filter(called_at__isnull=False).values_list("phone", "called_at"))
    # The people whose callback was answered 200: each must be texted once.
    latencies = sorted(
        called[number(n)].timestamp() - stage.due_at(n) for n in stage.answered_ok if number(n) in called
    )
    answers = [latency * 1000 for latency in stage.latencies]
    stages = _stages(stage, called)
    return {
        "database": "sqlite3" if connection.vendor == "sqlite" else connection.vendor,
        "dispatcher": f"celery ({celery_workers} workers)" if celery_workers else "thread of each web worker",
        "web": f"gunicorn, {web_workers} gthread workers × {threads} threads"
        if threads
        else f"gunicorn, {web_workers} sync workers",
        "callbacks_applied": env.get("VIBES_CALLBACKS_APPLY") or "default (VIBES_CALLBACKS_APPLY)",
        "rate_per_s": rate,
        "seconds": seconds,
        "events": people,
        "posted_per_s": round(len(stage.latencies) / stage.elapsed, 1),
        "posting_s": round(stage.elapsed, 1),
        "posts_sent_late": stage.sent_late,
        "posts_given_up": stage.given_up,
        "answered_200": stage.oks,
        # The web workers' CPU (the callbacks, and here also the applier, dispatcher and runs).
        "web_cpu_ms_per_event": round(web_cpu / people * 1000, 2),
        "non_200": people - stage.oks - stage.given_up,
        "answer_p50_ms": round(posting.percentile(answers, 0.50), 1),
        "answer_p95_ms": round(posting.percentile(answers, 0.95), 1),
        "answer_max_ms": round(max(answers, default=0), 1),
        "activities": Activity.objects.count(),
        # Stored and answered, not applied yet when the benchmark stopped waiting:
        # not lost (the minute's sweep applies them), but not called either.
        "callbacks_still_waiting": CallbackEvent.objects.filter(
            outcome=CallbackEvent.Outcome.RECEIVED
        ).count(),
        "runs": CampaignRun.objects.filter(campaign=campaign).count(),
        "called": len(latencies),
        "lost": stage.oks - len(latencies),
        "texted_twice": RunResult.objects.filter(called_at__isnull=False).count() - len(called),
        "latency_p50_s": _quantile(latencies, 0.50),
        "latency_p95_s": _quantile(latencies, 0.95),
        "latency_p99_s": _quantile(latencies, 0.99),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        **stages,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_at_end": [round(x, 2) for x in load_during],
    }


def _web_cpu(server) -> float:
    """CPU seconds gunicorn and its workers used so far."""
    from .callbacks import _children, _cpu_of

    return _cpu_of([server.pid, *_children(server.pid)])


def _stages(stage, called: dict) -> dict:
    """Where each person's latency went, p50 and p95 of each stage: the callback
    stored (from its due time), applied (its activity recorded), in a run (the
    run created), called (the SMS's row turned `sending`)."""
    stored = dict(CallbackEvent.objects.values_list("mdn", "received_at"))
    recorded = dict(Activity.objects.values_list("lead__mobile_phone", "recorded_at"))
    in_run = dict(
        TriggerFiring.objects.filter(status=TriggerFiring.Status.MEMBER).values_list(
            "lead__mobile_phone", "run__created_at"
        )
    )
    spans: dict[str, list[float]] = {"stored": [], "applied": [], "in_run": [], "called": []}
    for n in stage.answered_ok:
        phone = number(n)
        if not all(phone in times for times in (stored, recorded, in_run, called)):
            continue
        moments = [stage.due_at(n)] + [
            times[phone].timestamp() for times in (stored, recorded, in_run, called)
        ]
        for name, start, end in zip(spans, moments, moments[1:], strict=False):
            spans[name].append(end - start)
    return {
        f"stage_{name}_{label}_s": _quantile(sorted(values), q)
        for name, values in spans.items()
        for label, q in (("p50", 0.50), ("p95", 0.95))
    }


def _app_env(simulator_url: str, *, celery: bool) -> dict:
    """The environment of the app's processes (gunicorn, Celery workers): this
    database, the simulator as Vibes, the callbacks' credentials, and where the
    dispatcher runs (Celery, or a thread of each web worker)."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "ERROR",
        "VIBES_PLATFORM_URL": simulator_url,
        "VIBES_CONNECT_URL": simulator_url,
        "VIBES_COMPANY_KEY": settings.VIBES_COMPANY_KEY,
        "VIBES_USERNAME": settings.VIBES_USERNAME,
        "VIBES_PASSWORD": settings.VIBES_PASSWORD,
        "VIBES_RATE_LIMIT": str(settings.VIBES_RATE_LIMIT),
        "VIBES_DELIVERY_RECEIPT_URL": "",
        "VIBES_CALLBACK_USERNAME": CALLBACK_USERNAME,
        "VIBES_CALLBACK_PASSWORD": CALLBACK_PASSWORD,
        "VIBES_CALLBACK_ALLOWED_IPS": "",
        "RUNNER_BACKGROUND": "celery" if celery else "thread",
        # The latency at any hour: the people's fictional numbers place them
        # in no time zone, so outside 08:00–21:00 every SMS would be deferred.
        "QUIET_HOURS_ENABLED": "false",
    }
    if not celery:
        env.pop("CELERY_BROKER_URL", None)
    return env


def celery_workers_start(count: int, *, env: dict) -> list[subprocess.Popen]:
    """Celery workers (one process each) on this database and broker, in the environment `env`."""
    from smscampaigns.celery import app

    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smscampaigns",
                "worker",
                "--pool=solo",
                "-n",
                f"triggers{n}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]
    try:
        wait_until(
            lambda: len(app.control.ping(timeout=1.0) or []) >= count,
            what="the Celery workers to answer a ping",
        )
    except AssertionError:
        stop(*workers)
        raise
    return workers


def _quantile(values, q):
    if len(values) < 2:
        return round(values[0], 3) if values else None
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 3)


STAGE_COLUMNS = (
    ("web_cpu_ms_per_event", "web CPU ms / event"),
    ("stage_stored_p95_s", "stored p95 s"),
    ("stage_applied_p95_s", "applied p95 s"),
    ("stage_in_run_p95_s", "in a run p95 s"),
    ("stage_called_p95_s", "called p95 s"),
)

TABLE_COLUMNS = (
    ("database", "database"),
    ("dispatcher", "dispatcher"),
    ("web", "web"),
    ("events", "events"),
    ("answered_200", "answered 200"),
    ("posts_given_up", "not posted"),
    ("posted_per_s", "posted / s"),
    ("answer_p95_ms", "answer p95 ms"),
    ("runs", "runs"),
    ("lost", "lost"),
    ("texted_twice", "twice"),
    ("latency_p50_s", "p50 s"),
    ("latency_p95_s", "p95 s"),
    ("latency_p99_s", "p99 s"),
    ("latency_max_s", "max s"),
)


def table(report: dict) -> str:
    """The report as a Markdown table (the README's), the load beside it."""
    header = [label for _key, label in TABLE_COLUMNS] + ["load (1 min) start → end"]
    loads = f"{report['load_average_before'][0]} → {report['load_average_at_end'][0]}"
    row = [str(report[key]) for key, _label in TABLE_COLUMNS] + [loads]
    stages = ["database"] + [label for _key, label in STAGE_COLUMNS]
    stage_row = [report["database"]] + [str(report[key]) for key, _label in STAGE_COLUMNS]
    return "\n\n".join(
        "\n".join(f"| {' | '.join(cells)} |" for cells in (head, ["---"] * len(head), body))
        for head, body in ((header, row), (stages, stage_row))
    )


def profile(*, people: int = 2000, batch: int = 200, singles: int = 30) -> None:
    """Where a trigger's time goes, in this process (no gunicorn, no dispatcher
    thread): a callback through Django's whole stack, one run of `batch`
    people, and `singles` runs of one person each (cProfile)."""
    import cProfile
    import pstats

    from django.test import Client

    from marketing_activities.triggers import triggers_dispatch
    from smscampaigns.activities import activities_recorded

    # The dispatcher is called by hand here, never kicked by a new activity.
    activities_recorded.receivers = []
    settings.VIBES_CALLBACK_USERNAME, settings.VIBES_CALLBACK_PASSWORD = CALLBACK_USERNAME, CALLBACK_PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []
    build(people=people)
    auth = "Basic " + base64.b64encode(f"{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}".encode()).decode()
    client = Client(HTTP_HOST="localhost")

    def post(n: int) -> None:
        body = {
            "subscription_list": {"id": "101"},
            "mobile_phone": {"mdn": number(n)},
            "opt_in_date": timezone.now().isoformat(),
            "event_id": f"bench-{n}",
        }
        response = client.post(
            "/vibes/callbacks/",
            body,
            content_type="application/json",
            headers={"Authorization": auth, "X-Vibes-Event-Type": "subscription_added"},
        )
        assert response.status_code == 200, response.content

    with SimulatorProcess(rate_limit=0, latency_ms=20):
        post(0)
        triggers_dispatch()  # the first of each loads what the later ones reuse
        started = time.perf_counter()
        for n in range(1, batch + 1):
            post(n)
        print(f"a callback: {(time.perf_counter() - started) / batch * 1000:.1f} ms")
        started = time.perf_counter()
        report = triggers_dispatch()
        print(f"one run of {batch} people: {time.perf_counter() - started:.2f} s ({report})")
        profiler = cProfile.Profile()
        started = time.perf_counter()
        for n in range(batch + 1, batch + 1 + singles):
            post(n)
            profiler.enable()
            triggers_dispatch()
            profiler.disable()
        each = (time.perf_counter() - started) / singles
        print(f"a callback and a run of its one person: {each * 1000:.0f} ms")
        print(f"load average {os.getloadavg()[0]:.1f}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
