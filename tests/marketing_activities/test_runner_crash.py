"""A runner killed with SIGKILL mid-run, then resumed: every eligible number
gets exactly one SMS and every person ends with a final outcome.

Everything here is a real process: the app (receiving delivery receipts),
the Vibes simulator, and `manage.py run_campaign`, on a SQLite file of their
own.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.waiting import DEADLINE, simulator_delivered_callbacks, stop, wait_for_server, wait_until

pytestmark = pytest.mark.timeout(300)

PASSWORD = "crash-test-callbacks"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def system(tmp_path):
    """The app, the simulator and a database, each in its own process or file."""
    app_port, simulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "ENV_FILE": str(tmp_path / "no.env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crash.sqlite3'}",
        "SECRET_KEY": "crash-test-secret",
        "DEBUG": "true",
        "VIBES_PLATFORM_URL": f"http://127.0.0.1:{simulator_port}",
        "VIBES_CONNECT_URL": f"http://127.0.0.1:{simulator_port}",
        "VIBES_COMPANY_KEY": "crash",
        "VIBES_USERNAME": "crash",
        "VIBES_PASSWORD": "crash-password",
        "VIBES_RATE_LIMIT": "0",
        "VIBES_CALLBACK_PASSWORD": PASSWORD,
        "VIBES_DELIVERY_RECEIPT_URL": f"http://vibes:{PASSWORD}@127.0.0.1:{app_port}/vibes/callbacks/",
        "RUNNER_RECEIPT_GRACE": "5",
        "RUNNER_CONCURRENCY": "8",
    }
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]

    def run(*args, check=True):
        return subprocess.run(
            [*manage, *args], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=check
        )

    run("migrate", "-v0")
    data = json.loads(run("bench_campaign", "--build-only", "--leads", "3000").stdout)
    processes = [
        subprocess.Popen(
            [
                *manage,
                "vibes_simulator",
                "--port",
                str(simulator_port),
                "--latency-ms",
                "15",
                "--company-key",
                "crash",
                "--username",
                "crash",
                "--password",
                "crash-password",
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{app_port}"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_for_server(f"http://127.0.0.1:{simulator_port}/_simulator/stats", process=processes[0])
        wait_for_server(f"http://127.0.0.1:{app_port}/vibes/callbacks/", process=processes[1])
        yield {
            "run": run,
            "manage": manage,
            "env": env,
            "db": tmp_path / "crash.sqlite3",
            "campaign_id": data["plan_campaign_id"],
            "simulator": f"http://127.0.0.1:{simulator_port}",
        }
    finally:
        stop(*processes)


def query(db, sql):
    with closing(sqlite3.connect(db, timeout=30)) as connection:
        return connection.execute(sql).fetchall()


def test_a_killed_run_resumes_without_sending_anything_twice(system):
    runner = subprocess.Popen(
        [*system["manage"], "run_campaign", str(system["campaign_id"]), "-v0"],
        env=system["env"],
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def a_third_done():
        done = query(
            system["db"], "SELECT progress_done, progress_total FROM marketing_activities_campaignrun"
        )
        return done and done[0][1] and done[0][0] >= done[0][1] * 0.3

    wait_until(a_third_done, what="the run to be a third done", interval=0.05)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    [(run_id, status)] = query(system["db"], "SELECT id, status FROM marketing_activities_campaignrun")
    assert status == "running"
    sent_before = len(requests.get(f"{system['simulator']}/_simulator/messages", timeout=DEADLINE).json())
    assert 0 < sent_before
    # The receipts of the SMS sent just before the crash reach the app before the resume looks for them.
    assert simulator_delivered_callbacks(system["simulator"])

    resumed = system["run"]("run_campaign", "--resume", str(run_id), "-v0", check=False)
    assert resumed.returncode == 0, resumed.stderr
    # As an operator would, let the receipts of SMS that left just before the
    # kill arrive first: they settle their rows, and only the rest is retried.
    assert simulator_delivered_callbacks(system["simulator"])
    counts = dict(
        query(system["db"], "SELECT outcome, COUNT(*) FROM marketing_activities_runresult GROUP BY outcome")
    )
    if counts.get(21):
        # SMS in flight when the runner died, with no delivery receipt: their
        # fate was unknown, so only the operator's retry sends them again.
        retried = system["run"]("run_campaign", "--retry-uncertain", str(run_id), "-v0", check=False)
        assert retried.returncode == 0, retried.stderr

    rows = query(system["db"], "SELECT outcome, phone FROM marketing_activities_runresult")
    assert not [row for row in rows if row[0] in (0, 1, 21)], "every person has a final outcome"
    # Sent, and perhaps already delivered or failed by its receipt.
    eligible = Counter(phone for outcome, phone in rows if outcome in (10, 14, 22))
    messages = requests.get(f"{system['simulator']}/_simulator/messages", timeout=DEADLINE).json()
    assert Counter(message["to"] for message in messages) == eligible
    assert max(eligible.values()) == 1
    [(audience,)] = query(system["db"], "SELECT audience FROM marketing_activities_campaignrun")
    assert len(rows) == audience == 3000
    # The SMS figures kept through the kill, the takeover and the retry equal a recount.
    checked = system["run"]("check_sms_figures", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
