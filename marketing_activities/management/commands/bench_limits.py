"""Benchmark the communication limits: planning with and without them, and the
check just before the call, on a synthetic database of N people.

Like bench_campaign, it never touches your database: a scratch SQLite file
under var/ (or --database-url, an empty database), in a child process. It
prints a Markdown table and the JSON report. The benchmark is benchmarks/limits.py.
"""

import json
import sys

from django.core.management.base import BaseCommand

from benchmarks import harness, limits


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument("--rounds", type=int, default=5, help="plans of each kind (medians)")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_limits",
                sys.argv[2:],
                scratch=f"bench-limits-{options['leads']}",
                database_url=options["database_url"],
            )
            return
        report = limits.measure(leads=options["leads"], rounds=options["rounds"])
        self.stdout.write(limits.table(report))
        self.stdout.write(json.dumps(report, indent=2))
