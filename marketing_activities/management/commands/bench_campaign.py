"""Benchmark planning and execution on a synthetic database of N people.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a JSON report.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from marketing_activities import bench
from marketing_activities.models import CampaignRun, RunStep, SmartCampaign
from marketing_activities.runner import run_create, run_execute
from marketing_activities.runner.planner import record_counts, write_plan
from vibes.conf import reset_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument(
            "--rounds", type=int, default=5, help="times the bare query and the planning each run (medians)"
        )
        parser.add_argument("--skip-execute", action="store_true", help="measure planning only")
        parser.add_argument("--limited-calls", type=int, default=3000)
        parser.add_argument("--unlimited-calls", type=int, default=30000)
        parser.add_argument("--concurrency", type=int, default=16)
        parser.add_argument(
            "--build-only", action="store_true", help="only write the synthetic data (in this database)"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if options["build_only"]:
            data = bench.build(leads=options["leads"])
            self.stdout.write(json.dumps(data.__dict__))
            return
        if not options["in_scratch"]:
            return self._spawn(options)
        self.stdout.write(json.dumps(self._measure(options), indent=2))

    def _spawn(self, options):
        url = options["database_url"]
        if not url:
            scratch = Path(settings.BASE_DIR) / "var" / f"bench-{options['leads']}.sqlite3"
            scratch.parent.mkdir(exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{scratch}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{scratch}"
        argv = [sys.executable, "manage.py", "bench_campaign", "--in-scratch", *sys.argv[2:]]
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY}
        code = subprocess.call(argv, env=env, cwd=settings.BASE_DIR)
        if code:
            raise CommandError(f"the benchmark failed (exit {code})", returncode=code)

    def _measure(self, options):
        call_command("migrate", verbosity=0)
        report = {
            "leads": options["leads"],
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        }
        with tqdm(total=options["leads"], desc="Building people", unit=" leads", file=sys.stderr) as bar:
            started = time.perf_counter()
            data = bench.build(
                leads=options["leads"],
                limited_calls=options["limited_calls"],
                unlimited_calls=options["unlimited_calls"],
                progress=bar.update,
            )
        report["build_seconds"] = round(time.perf_counter() - started, 2)

        campaign = SmartCampaign.objects.get(pk=data.plan_campaign_id)
        self._settle_disk()
        bare, plans, count_times = [], [], []
        for _ in range(options["rounds"]):
            # Alternate the two so that both see the same state of the machine.
            bare.append(bench.bare_recipients_query(campaign))
            run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
            step = run.steps.get()
            started = time.perf_counter()
            write_plan(step)  # the result rows and batches, committed
            plans.append(time.perf_counter() - started)
            counts = record_counts(step)
            count_times.append(time.perf_counter() - started - plans[-1])
            bench.finish_run(run.pk)
            self._settle_disk()
        bare_seconds, recipients = statistics.median(t for t, _ in bare), bare[0][1]
        plan_seconds = statistics.median(plans)
        report["plan"] = {
            "bare_query_seconds": round(bare_seconds, 3),
            "plan_seconds": round(plan_seconds, 3),
            "ratio": round(plan_seconds / bare_seconds, 2),
            "count_seconds": round(statistics.median(count_times), 3),
            "bare_query_runs": [round(t, 3) for t, _ in bare],
            "plan_runs": [round(t, 3) for t in plans],
            "recipients": recipients,
            "queued": counts.get("queued", 0),
            "result_rows": sum(counts.values()),
            "counts": counts,
        }
        if recipients != counts.get("queued", 0):
            raise CommandError(
                f"the plan queues {counts.get('queued')} calls, the bare query finds {recipients}"
            )
        if not options["skip_execute"]:
            report["execute_rate_limited"] = self._execute(
                data.limited_campaign_id, options, simulator_limit=100, latency_ms=20, client_limit=100
            )
            report["execute_unlimited"] = self._execute(
                data.unlimited_campaign_id, options, simulator_limit=0, latency_ms=0, client_limit=0
            )
        report["peak_rss_mb"] = round(bench.peak_rss_mb(), 1)
        return report

    def _settle_disk(self):
        """Checkpoint SQLite's log and flush the OS's dirty pages, so that one
        measurement does not pay for the writes of the one before."""
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.sync()
        time.sleep(1)

    def _execute(self, campaign_id, options, *, simulator_limit, latency_ms, client_limit):
        port = _free_port()
        simulator = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "vibes_simulator",
                "--port",
                str(port),
                "--rate-limit",
                str(simulator_limit),
                "--latency-ms",
                str(latency_ms),
                "--company-key",
                "bench",
                "--username",
                "bench",
                "--password",
                "bench-password",
            ],
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    requests.get(f"{url}/_simulator/stats", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            settings.VIBES_PLATFORM_URL = settings.VIBES_CONNECT_URL = url
            settings.VIBES_COMPANY_KEY, settings.VIBES_USERNAME = "bench", "bench"
            settings.VIBES_PASSWORD, settings.VIBES_RATE_LIMIT = "bench-password", client_limit
            settings.VIBES_DELIVERY_RECEIPT_URL = ""
            reset_client()
            run = run_create(
                campaign=SmartCampaign.objects.get(pk=campaign_id), trigger=CampaignRun.Trigger.COMMAND
            )
            with tqdm(
                desc=f"Sending ({'limited' if client_limit else 'unlimited'})", unit=" SMS", file=sys.stderr
            ) as bar:

                def progress(done, total):
                    bar.total = total
                    bar.update(done - bar.n)

                started = time.perf_counter()
                run = run_execute(run=run, progress=progress, concurrency=options["concurrency"])
                total_seconds = time.perf_counter() - started
            step = RunStep.objects.get(run=run)
            execute_seconds = total_seconds - (step.plan_seconds or 0)
            stats = requests.get(f"{url}/_simulator/stats", timeout=5).json()
            return {
                "simulator_rate_limit": simulator_limit,
                "latency_ms": latency_ms,
                "calls": run.progress_done,
                "counts": step.counts,
                "execute_seconds": round(execute_seconds, 2),
                "calls_per_second": round(run.progress_done / execute_seconds, 1),
                "simulator": stats,
            }
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
