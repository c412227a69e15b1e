"""Two real Celery workers on a Redis broker share one run on PostgreSQL, and
the runs of a trigger campaign.

Needs the services of `make test-postgres` (PostgreSQL as the database and
TEST_REDIS_URL); skipped elsewhere.
"""

import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter

import pytest
import requests
from django.db import connection
from django.utils import timezone

from benchmarks import runner as bench
from benchmarks import triggers as trigger_bench
from marketing_activities.models import SMS_SENT, CampaignRun, RunBatch, SmartCampaign, TriggerFiring
from marketing_activities.runner import run_abort, run_create, run_retry_uncertain
from marketing_activities.runner.executor import CLAIM_SECONDS
from marketing_activities.tasks import run_dispatch
from smscampaigns.celery import app as celery_app
from smscampaigns.models import Activity
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

    def celery(*args):
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "smscampaigns", *args, "--loglevel=WARNING"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_worker(name):
        workers[name] = celery(
            "worker", "--pool=solo", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"
        )
        return workers[name]

    others = []

    def start_beat(schedule_file):
        """Celery beat, as a production install runs it: the minute task looks after what was left."""
        others.append(celery("beat", "-s", str(schedule_file)))

    workers = {}
    for name in ("one", "two"):
        start_worker(name)
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
        yield {
            "workers": workers,
            "simulator": simulator_url,
            "callbacks": receipts,
            "start_worker": start_worker,
            "start_beat": start_beat,
        }
        # Give the last delivery receipts a minute to reach the app before its
        # database goes away; the simulator drops whatever it still holds then.
        simulator_delivered_callbacks(simulator_url, timeout=DEADLINE)
    finally:
        stop(*workers.values(), *others, simulator)
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


def faults(cluster, **switches):
    requests.post(
        f"{cluster['simulator']}/_simulator/faults", json=switches, timeout=DEADLINE
    ).raise_for_status()


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


def test_a_worker_killed_while_trigger_runs_go_loses_no_activity_and_texts_nobody_twice(cluster, tmp_path):
    """Issue 16: 200 people subscribe (a third of the callbacks delivered twice)
    while "Subscribes to Vibes List" → Send SMS is active; a worker is killed in
    the middle of a trigger run and started again, and beat runs as in production."""
    people = 200
    campaign = trigger_bench.build(people=people)
    cluster["start_beat"](tmp_path / "beat-schedule")
    callbacks = cluster["callbacks"]
    deliveries = [*range(people), *range(0, people, 3)]  # Vibes delivers at least once
    posted = []

    def subscribe_everyone():
        with requests.Session() as session:
            for n in deliveries:
                answer = session.post(
                    callbacks,
                    json={
                        "subscription_list": {"id": "101"},
                        "mobile_phone": {"mdn": trigger_bench.number(n)},
                        "opt_in_date": f"2026-12-01T10:00:{n % 60:02d}Z",
                        "event_id": f"sigkill-{n}",
                    },
                    headers={"X-Vibes-Event-Type": "subscription_added"},
                    timeout=DEADLINE,
                )
                posted.append(answer.status_code)

    poster = threading.Thread(target=subscribe_everyone)
    poster.start()
    wait_until(lambda: len(posted) > people // 3, what="a third of the callbacks posted", timeout=120)
    # Vibes answers slowly for a moment, so the worker is surely killed with its calls in flight.
    faults(cluster, latency_ms=2000)
    slow_since = timezone.now() + datetime.timedelta(seconds=CLAIM_SECONDS)

    def batch_in_flight():
        return (
            RunBatch.objects.filter(
                status=RunBatch.Status.CLAIMED,
                claim_expires_at__gt=slow_since,
                run_step__run__campaign=campaign,
            )
            .values_list("pk", "claimed_by")
            .first()
        )

    interrupted, owner = wait_until(
        batch_in_flight, what="a worker to call Vibes for a trigger run", timeout=120
    )
    # The worker that finishes a trigger run starts the next: either may hold it.
    name, killed = next((n, w) for n, w in cluster["workers"].items() if f":{w.pid}:" in owner)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    faults(cluster, latency_ms=10)
    cluster["start_worker"](name)
    poster.join()
    assert posted == [200] * len(deliveries)

    def all_dispatched_and_run():
        return (
            not Activity.objects.filter(dispatched_at__isnull=True).exists()
            and not TriggerFiring.objects.filter(status=TriggerFiring.Status.WAITING).exists()
            and not campaign.runs.active().exists()
        )

    # A run the killed worker held is taken over once it has shown no progress
    # for a while, by the next dispatcher: beat's minute task starts one.
    wait_until(all_dispatched_and_run, what="every activity dispatched and run", timeout=300, interval=0.5)
    assert simulator_delivered_callbacks(cluster["simulator"])
    for run in campaign.runs.all():
        if run.steps.get().counts.get("uncertain"):
            # Left `sending` by the killed worker with no receipt to prove they went
            # out (most were still queued in it): never resent on a guess, the operator's call.
            run_retry_uncertain(run=run)
            run_dispatch(run)
            wait_for_run(run)

    numbers = [trigger_bench.number(n) for n in range(people)]
    assert Activity.objects.filter(kind=Activity.Kind.SUBSCRIBED_TO_VIBES_LIST).count() == people
    firings = TriggerFiring.objects.filter(campaign=campaign)
    assert Counter(firings.values_list("status", flat=True)) == {TriggerFiring.Status.MEMBER: people}
    assert messages(cluster) == Counter(numbers), "every person texted exactly once"
    runs = list(campaign.runs.all())
    assert {run.status for run in runs} == {CampaignRun.Status.COMPLETED}
    assert sum(run.audience for run in runs) == people
    assert all(firings.filter(run=run).count() == run.audience for run in runs)
    counts = Counter()
    for run in runs:
        counts.update(run.steps.get().counts)
    assert sum(counts[o.code] for o in SMS_SENT) == sum(counts.values()) == people
    assert sum(sent_numbers(run).total() for run in runs) == people
    # The killed worker's batch was finished by another.
    batch = RunBatch.objects.get(pk=interrupted)
    assert batch.status == RunBatch.Status.DONE
    assert f":{killed.pid}:" not in batch.claimed_by


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
