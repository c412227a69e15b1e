"""Benchmark the list-driven subscriber sync: N leads, S subscribers on one list, against the simulator.

By default it never touches your database: it creates a scratch SQLite file
under var/ (or uses --database-url, which must name an empty database), runs
itself there in a child process, starts the simulator in another (limited to
--rate-limit requests/s, with --latency-ms added to every answer), and prints
a JSON report.

The list's subscribers, a third each: people the app subscribed (their leads
subscribed locally, Vibes knows their lead id), keyword subscribers whose
number a lead has (unknown to the app), and keyword subscribers whose number
no lead has (to be created). Besides, --stale leads are subscribed locally but
gone from Vibes (opt-outs whose callbacks were missed). The sync runs twice:
the first brings everything in line, the second finds everything in line
(a daily sync). Calls are counted by the simulator.
"""

import json
import math
import os
import random
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from smscampaigns.models import Lead
from vibes.conf import get_client, reset_client
from vibes.models import Subscription, VibesList
from vibes.subscriber_sync import PAGE_SIZE, subscribers_sync

LIST_ID = "101"  # the simulator's seeded "SMS Newsletter"
CHUNK = 20_000
SEED_CHUNK = 10_000
SYNC_COUNTS = ("subscribers", "linked", "created", "changed", "unsubscribed", "unchanged", "superseded")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument("--subscribers", type=int, help="on the list in Vibes (default: 30%% of --leads)")
        parser.add_argument(
            "--stale", type=int, help="leads subscribed locally only (default: 0.1%% of --leads)"
        )
        parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
        parser.add_argument("--rate-limit", type=float, default=100, help="requests/s, client and simulator")
        parser.add_argument("--latency-ms", type=float, default=20)
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            return self._spawn(options)
        self.stdout.write(json.dumps(self._measure(options), indent=2))

    def _spawn(self, options):
        url = options["database_url"]
        if not url:
            scratch = Path(settings.BASE_DIR) / "var" / f"bench-sync-{options['leads']}.sqlite3"
            scratch.parent.mkdir(exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{scratch}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{scratch}"
        argv = [sys.executable, "manage.py", "bench_sync", "--in-scratch", *sys.argv[2:]]
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY}
        code = subprocess.call(argv, env=env, cwd=settings.BASE_DIR)
        if code:
            raise CommandError(f"the benchmark failed (exit {code})", returncode=code)

    def _measure(self, options):
        call_command("migrate", verbosity=0)
        leads = options["leads"]
        subscribers = options["subscribers"] if options["subscribers"] is not None else leads * 3 // 10
        stale = options["stale"] if options["stale"] is not None else leads // 1000
        started = time.perf_counter()
        vibes_list, seed = build(leads=leads, subscribers=subscribers, stale=stale)
        report = {
            "leads": leads,
            "subscribers": subscribers,
            "stale": stale,
            "page_size": options["page_size"],
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "build_seconds": round(time.perf_counter() - started, 1),
            "paging_calls_needed": math.ceil(subscribers / options["page_size"]) + 1,
        }
        with Simulator(options) as simulator:
            simulator.seed(seed)
            del seed
            report["peak_rss_before_syncing_mb"] = peak_rss_mb()
            for name in ("first_sync", "second_sync"):
                report[name] = simulator.measure(vibes_list, options)
        report["leads_after"] = Lead.objects.count()
        # The peak of this process, building the data included: the syncs
        # raised it only if it is above the one before them.
        report["peak_rss_mb"] = peak_rss_mb()
        return report


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def build(*, leads: int, subscribers: int, stale: int, seed: int = 1):
    """The leads and their local subscriptions (plain multi-row inserts), and the simulator's subscribers."""
    rng = random.Random(seed)
    vibes_list, _ = VibesList.objects.get_or_create(vibes_id=LIST_ID, defaults={"name": "SMS Newsletter"})
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    subscription_table = connection.ops.quote_name(Subscription._meta.db_table)
    now = timezone.now()
    numbers, previous = {}, ""  # number -> its first lead
    with connection.cursor() as cursor, tqdm(total=leads, desc="Building leads", file=sys.stderr) as bar:
        for start in range(1, leads + 1, CHUNK):
            rows = []
            for lead_id in range(start, min(start + CHUNK, leads + 1)):
                roll = rng.random()
                # 5% without a number, 10% sharing the number of the lead before.
                phone = "" if roll < 0.05 else previous if roll < 0.15 and previous else f"+1212{lead_id:07d}"
                if phone:
                    previous = phone
                    numbers.setdefault(phone, lead_id)
                rows.append(
                    (lead_id, "Pat", "Doe", f"p{lead_id}@bench.invalid", phone, "US", "bench", now, now)
                )
            with transaction.atomic():
                cursor.executemany(
                    f"INSERT INTO {lead_table} (id, first_name, last_name, email, mobile_phone, country, "
                    f"city, state, lead_source, lead_score, blocklisted, marketing_suspended, created_at, "
                    f"updated_at) VALUES (%s, %s, %s, %s, %s, %s, '', '', %s, 0, false, false, %s, %s)",
                    rows,
                )
            bar.update(len(rows))
        distinct = list(numbers)
        rng.shuffle(distinct)
        third = subscribers // 3
        through_app, by_keyword = distinct[:third], distinct[third : 2 * third]
        gone = distinct[2 * third : 2 * third + stale]
        new_numbers = [f"+1646{n:07d}" for n in range(subscribers - 2 * third)]
        local = [(numbers[n], vibes_list.pk, "subscribed", "", "", now, now) for n in through_app + gone]
        with transaction.atomic():
            cursor.executemany(
                f"INSERT INTO {subscription_table} (lead_id, vibes_list_id, status, vibes_person_key, "
                f"opt_out_reason, status_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                local,
            )
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{Lead._meta.db_table}', 'id'), "
                f"(SELECT MAX(id) FROM {lead_table}))"
            )
        cursor.execute("ANALYZE")
    seed_rows = (
        [{"mdn": n, "external_person_id": str(numbers[n])} for n in through_app]
        + [{"mdn": n} for n in by_keyword]
        + [{"mdn": n, "custom_fields": {"first_name": "Kim"}} for n in new_numbers]
    )
    rng.shuffle(seed_rows)  # people join in no particular order
    return vibes_list, seed_rows


class Simulator:
    """The simulator in its own process, so that serving pages does not share this one's CPU time."""

    def __init__(self, options):
        self.options = options
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "vibes_simulator",
                "--port",
                str(self.port),
                "--rate-limit",
                str(self.options["rate_limit"]),
                "--latency-ms",
                str(self.options["latency_ms"]),
                "--company-key",
                "bench",
                "--username",
                "bench",
                "--password",
                "bench-password",
                "--callback-url",
                "",
            ],
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.url}/_simulator/stats", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise CommandError("the simulator did not answer within 60 s") from None
                time.sleep(0.2)
        settings.VIBES_PLATFORM_URL = settings.VIBES_CONNECT_URL = self.url
        settings.VIBES_COMPANY_KEY, settings.VIBES_USERNAME = "bench", "bench"
        settings.VIBES_PASSWORD, settings.VIBES_RATE_LIMIT = "bench-password", self.options["rate_limit"]
        reset_client()
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)

    def seed(self, rows):
        for start in tqdm(range(0, len(rows), SEED_CHUNK), desc="Seeding Vibes", file=sys.stderr):
            response = requests.post(
                f"{self.url}/_simulator/subscribers",
                json={"list_id": LIST_ID, "subscribers": rows[start : start + SEED_CHUNK]},
                timeout=120,
            )
            response.raise_for_status()

    def stats(self):
        return requests.get(f"{self.url}/_simulator/stats", timeout=30).json()

    def measure(self, vibes_list, options):
        before = self.stats()
        pages_done = []  # when the last page was taken: the checks come after it

        def progress(sync, done, total):
            if sync.phase == sync.Phase.PAGES:
                pages_done[:] = [time.perf_counter()]
                bar.update(done - bar.n)

        with tqdm(desc="Syncing", unit=" subscribers", file=sys.stderr) as bar:
            started = time.perf_counter()
            sync = subscribers_sync(
                vibes_list=vibes_list, client=get_client(), page_size=options["page_size"], progress=progress
            )
            seconds = time.perf_counter() - started
        pages_seconds = (pages_done[0] if pages_done else started) - started
        after = self.stats()
        by_status = {
            status: count - before["by_status"].get(status, 0)
            for status, count in after["by_status"].items()
            if count != before["by_status"].get(status, 0)
        }
        return {
            "seconds": round(seconds, 1),
            "pages_seconds": round(pages_seconds, 1),
            "checks_seconds": round(seconds - pages_seconds, 1),
            "calls": after["requests"] - before["requests"],
            "calls_by_status": by_status,
            "pages": sync.next_page,  # the pages read, and the empty one after them
            "checks": sync.calls - sync.next_page,
            "calls_per_second": round((after["requests"] - before["requests"]) / seconds, 1),
            "max_requests_per_second_seen_by_vibes": after["max_requests_per_second"],
            **{name: getattr(sync, name) for name in SYNC_COUNTS},
        }
