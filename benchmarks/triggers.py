"""The trigger benchmark: how long from a callback's arrival to the flow's Vibes call.

A scratch database holds one active trigger campaign ("Subscribes to Vibes
List" → Send SMS Message) and a person per event. The benchmark posts one
`subscription_added` callback per person at a steady rate (50 a second by
default) to the app's callback view in this process, as Vibes would, and
the dispatcher works where `RUNNER_BACKGROUND` says (a thread of this
process without a broker; with `celery_workers`, that many Celery worker
processes on the broker of CELERY_BROKER_URL). The latency of a person is from the start of
their callback's request to the moment their SMS's row turned `sending`,
just before the call to Vibes (`RunResult.called_at`). The simulator runs in
a process of its own, with 20 ms of latency and no rate limit.
"""

import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
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
)
from smscampaigns.models import Activity, Lead
from tests.waiting import stop, wait_until
from vibes.models import VibesList

from .harness import SimulatorProcess

CALLBACK_USERNAME, CALLBACK_PASSWORD = "vibes", "bench-callback-password"


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


def measure(*, rate: float, seconds: float, drain_seconds: float = 120, celery_workers: int = 0) -> dict:
    """Post `rate` callbacks a second for `seconds`, wait for the calls, and report the latencies."""
    people = int(rate * seconds)
    campaign = build(people=people)
    settings.VIBES_CALLBACK_USERNAME, settings.VIBES_CALLBACK_PASSWORD = CALLBACK_USERNAME, CALLBACK_PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []
    auth = base64.b64encode(f"{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}".encode()).decode()
    client, url = Client(HTTP_HOST="localhost"), reverse("vibes:callbacks")
    arrivals, late, statuses = {}, 0, []
    with SimulatorProcess(rate_limit=0, latency_ms=20) as simulator, contextlib.ExitStack() as cleanup:
        if celery_workers:
            cleanup.callback(stop, *celery_workers_start(celery_workers, simulator_url=simulator.url))
        start = time.perf_counter()
        wall = timezone.now()
        for n in range(people):
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            else:
                late += pause < -0.1  # the poster itself fell behind (counted, not hidden)
            arrivals[number(n)] = wall + timezone.timedelta(seconds=time.perf_counter() - start)
            response = client.post(
                url,
                json.dumps(
                    {
                        "subscription_list": {"id": "101"},
                        "mobile_phone": {"mdn": number(n)},
                        "opt_in_date": timezone.now().isoformat(),
                        "event_id": f"bench-{n}",
                    }
                ),
                content_type="application/json",
                headers={"Authorization": f"Basic {auth}", "X-Vibes-Event-Type": "subscription_added"},
            )
            statuses.append(response.status_code)
        posting = time.perf_counter() - start
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            called = RunResult.objects.filter(called_at__isnull=False).count()
            if called >= people:
                break
            time.sleep(0.5)
    called = dict(RunResult.objects.filter(called_at__isnull=False).values_list("phone", "called_at"))
    latencies = sorted(
        (called[phone] - arrived).total_seconds() for phone, arrived in arrivals.items() if phone in called
    )
    return {
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "background": f"celery ({celery_workers} workers)" if celery_workers else settings.RUNNER_BACKGROUND,
        "rate_per_s": rate,
        "seconds": seconds,
        "events": people,
        "posting_s": round(posting, 1),
        "posts_behind_schedule": late,
        "non_200": sum(status != 200 for status in statuses),
        "activities": Activity.objects.count(),
        "runs": CampaignRun.objects.filter(campaign=campaign).count(),
        "called": len(latencies),
        "lost": people - len(latencies),
        "texted_twice": RunResult.objects.filter(called_at__isnull=False).count() - len(called),
        "latency_p50_s": _quantile(latencies, 0.50),
        "latency_p95_s": _quantile(latencies, 0.95),
        "latency_p99_s": _quantile(latencies, 0.99),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def celery_workers_start(count: int, *, simulator_url: str) -> list[subprocess.Popen]:
    """Celery workers (one process each) on this database and broker, calling the simulator."""
    from smscampaigns.celery import app

    env = {
        **os.environ,
        "VIBES_PLATFORM_URL": simulator_url,
        "VIBES_CONNECT_URL": simulator_url,
        "VIBES_COMPANY_KEY": settings.VIBES_COMPANY_KEY,
        "VIBES_USERNAME": settings.VIBES_USERNAME,
        "VIBES_PASSWORD": settings.VIBES_PASSWORD,
        "VIBES_RATE_LIMIT": str(settings.VIBES_RATE_LIMIT),
        "VIBES_DELIVERY_RECEIPT_URL": "",
        "RUNNER_BACKGROUND": "celery",
    }
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


# Threads the dispatcher starts must be done before the scratch database goes away.
def wait_for_background(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(t.name == "triggers" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.2)
