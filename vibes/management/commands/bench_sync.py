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
(a daily sync). Calls are counted by the simulator. The benchmark itself is
benchmarks/sync.py.
"""

import json
import sys

from django.core.management.base import BaseCommand

from benchmarks import harness, sync
from vibes.subscriber_sync import PAGE_SIZE


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
            harness.run_in_scratch(
                "bench_sync",
                sys.argv[2:],
                scratch=f"bench-sync-{options['leads']}",
                database_url=options["database_url"],
            )
            return
        leads = options["leads"]
        report = sync.measure(
            leads=leads,
            subscribers=options["subscribers"] if options["subscribers"] is not None else leads * 3 // 10,
            stale=options["stale"] if options["stale"] is not None else leads // 1000,
            page_size=options["page_size"],
            rate_limit=options["rate_limit"],
            latency_ms=options["latency_ms"],
        )
        self.stdout.write(json.dumps(report, indent=2))
