"""Two real Celery workers on a Redis broker share one run on PostgreSQL.

Needs the services of `make test-postgres` (PostgreSQL as the database and
TEST_REDIS_URL); skipped elsewhere.
"""

import os
import signal
import socket
import subprocess
import sys
from collections import Counter

import pytest
import requests
from django.db import connection

from benchmarks import runner as bench
from marketing_activities.models import SMS_SENT, CampaignRun, SmartCampaign
from marketing_activities.runner import run_abort, run_create, run_retry_uncertain
from marketing_activities.tasks import run_dispatch
from smscampaigns.celery import app as celery_app
from tests.celery_broker import use_broker
from tests.waiting import DEADLINE, simulator_delivered_callbacks, stop, wait_for_server, wait_until

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

pytestmark = [
    pytest.mark.skipif(not REDIS_URL, reason="needs Redis and PostgreSQL (make test-postgres)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

CALLBACK_PASSWORD = "celery-test-callbacks"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster(live_server, settings):
    """The simulator limited to 100 requests/s, and two Celery workers."""
    if connection.vendor != "postgresql":
        pytest.skip("runs split across workers are tested on PostgreSQL")
    db = connection.settings_dict
    port = free_port()
    simulator_url = f"http://127.0.0.1:{port}"
    receipts = f"http://vibes:{CALLBACK_PASSWORD}@{live_server.thread.host}:{live_server.thread.port}/vibes/callbacks/"
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    env = {
        **os.environ,
        "ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": "celery-test-secret",
        "DEBUG": "true",
        "VIBES_PLATFORM_URL": simulator_url,
        "VIBES_CONNECT_URL": simulator_url,
        "VIBES_COMPANY_KEY": "celery",
        "VIBES_USERNAME": "celery",
        "VIBES_PASSWORD": "celery-password",
        "VIBES_RATE_LIMIT": "100",
        "VIBES_DELIVERY_RECEIPT_URL": receipts,
        "RUNNER_RECEIPT_GRACE": "5",
    }
    simulator = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "vibes_simulator",
            "--port",
            str(port),
            "--rate-limit",
            "100",
            "--latency-ms",
            "10",
            "--company-key",
            "celery",
            "--username",
            "celery",
            "--password",
            "celery-password",
        ],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smscampaigns",
                "worker",
                "--pool=solo",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("one", "two")
    }
    # This process only sends tasks; the workers run them.
    use_broker(REDIS_URL)
    settings.RUNNER_BACKGROUND = "celery"
    settings.RUNNER_PARALLEL_TASKS = 2
    try:
        wait_for_server(f"{simulator_url}/_simulator/stats", process=simulator)
        # Both workers take tasks from the start, so both share the run.
        wait_until(
            lambda: workers_answering(workers) == set(workers), what="both Celery workers to answer a ping"
        )
        yield {"workers": workers, "simulator": simulator_url}
        # Give the last delivery receipts a minute to reach the app before its
        # database goes away; the simulator drops whatever it still holds then.
        simulator_delivered_callbacks(simulator_url, timeout=DEADLINE)
    finally:
        stop(*workers.values(), simulator)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()
        use_broker(None)


def workers_answering(workers) -> set[str]:
    for name, process in workers.items():
        assert process.poll() is None, f"Celery worker {name} exited with status {process.returncode}"
    replies = celery_app.control.ping(timeout=1.0)
    return {node.partition("@")[0] for reply in replies for node in reply}


def wait_for_run(run, timeout=300):
    def finished():
        run.refresh_from_db()
        return not run.is_active

    wait_until(finished, what=f"run {run.pk} to finish", timeout=timeout, interval=0.5)
    return run


def sent_numbers(run):
    step = run.steps.get()
    # Sent, and perhaps already delivered or failed by its receipt.
    return Counter(step.results().filter(outcome__in=SMS_SENT).values_list("phone", flat=True))


def messages(cluster):
    return Counter(
        m["to"] for m in requests.get(f"{cluster['simulator']}/_simulator/messages", timeout=DEADLINE).json()
    )


def test_two_workers_share_a_run_within_the_rate_limit(cluster):
    data = bench.build(leads=10_000)
    run = run_create(
        campaign=SmartCampaign.objects.get(pk=data.plan_campaign_id), trigger=CampaignRun.Trigger.UI
    )
    run_dispatch(run)
    run = wait_for_run(run)
    assert run.status == CampaignRun.Status.COMPLETED
    step = run.steps.get()
    assert sum(step.counts.values()) == run.audience == 10_000
    assert messages(cluster) == sent_numbers(run)
    assert max(messages(cluster).values()) == 1
    assert len(messages(cluster)) == sum(step.counts.get(o.code, 0) for o in SMS_SENT) == run.progress_total
    # What Vibes would count: arrivals in any one second, 429s included (there are none).
    stats = requests.get(f"{cluster['simulator']}/_simulator/stats", timeout=DEADLINE).json()
    assert stats["max_requests_per_second"] <= 100
    assert stats["by_status"] == {"200": stats["requests"]}
    workers = set(step.batches.values_list("claimed_by", flat=True))
    assert len({owner.split(":")[1] for owner in workers}) == 2, "both workers took batches"


def test_a_worker_killed_mid_run_leaves_the_other_to_finish_without_double_sends(cluster):
    data = bench.build(leads=10_000)
    run = run_create(
        campaign=SmartCampaign.objects.get(pk=data.plan_campaign_id), trigger=CampaignRun.Trigger.UI
    )
    run_dispatch(run)

    def a_third_done():
        run.refresh_from_db()
        return run.progress_total and run.progress_done > run.progress_total * 0.3

    wait_until(a_third_done, what="the run to be a third done", timeout=120, interval=0.2)
    cluster["workers"]["one"].send_signal(signal.SIGKILL)
    run = wait_for_run(run)
    assert run.status == CampaignRun.Status.COMPLETED
    # Receipts lag behind the sends on a busy machine: an SMS the killed worker
    # sent is uncertain until its receipt arrives, and only then is it clear
    # which ones never went out. The operator retries only those.
    assert simulator_delivered_callbacks(cluster["simulator"])
    if run.steps.get().counts.get("uncertain"):
        # In flight when the worker died and no receipt came: the operator's call.
        run_retry_uncertain(run=run)
        run_dispatch(run)
        run = wait_for_run(run)
    step = run.steps.get()
    assert set(step.counts) <= {o.code for o in SMS_SENT} | {
        c for c in step.counts if c.startswith("skipped_")
    }
    assert messages(cluster) == sent_numbers(run)
    assert max(messages(cluster).values()) == 1


def test_an_abort_stops_both_workers_through_the_database(cluster):
    data = bench.build(leads=10_000)
    run = run_create(
        campaign=SmartCampaign.objects.get(pk=data.plan_campaign_id), trigger=CampaignRun.Trigger.UI
    )
    run_dispatch(run)

    def some_texted():
        run.refresh_from_db()
        return run.progress_done >= 200

    wait_until(some_texted, what="the run to text 200 people", timeout=120, interval=0.2)
    run = run_abort(run=run)
    texted = messages(cluster)
    calls = requests.get(f"{cluster['simulator']}/_simulator/stats", timeout=DEADLINE).json()["requests"]
    assert run.status == CampaignRun.Status.CANCELLED
    step = run.steps.get()
    assert step.counts.get("cancelled", 0) > 0
    assert "queued" not in step.counts and "sending" not in step.counts
    assert texted == sent_numbers(run)
    # Both workers are still alive: they only stopped calling for this run.
    workers_answering(cluster["workers"])
    assert (
        requests.get(f"{cluster['simulator']}/_simulator/stats", timeout=DEADLINE).json()["requests"] == calls
    )
