"""Benchmark the Wait step (benchmarks/waits.py) on a scratch database of N people.

Never touches your database: a scratch SQLite file under var/ (or
--database-url, which must name an empty database), in a child process; prints a table.
"""

import sys

from django.core.management.base import BaseCommand

from benchmarks import harness, waits


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument("--runs", type=int, default=1000, help="waiting runs one scheduler pass claims")
        parser.add_argument("--database-url", help="an empty database instead of a scratch SQLite file")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_wait",
                sys.argv[2:],
                scratch=f"bench-wait-{options['leads']}",
                database_url=options["database_url"],
            )
            return
        self.stdout.write(waits.table(waits.measure(leads=options["leads"], runs=options["runs"])))
