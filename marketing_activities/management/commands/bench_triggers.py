"""Benchmark trigger campaigns: latency from a callback's arrival to the flow's Vibes call.

Never touches your database: it runs in a child process on a scratch SQLite
file under var/ (or on --database-url, which must name an empty database)
and prints a JSON report. The benchmark itself is benchmarks/triggers.py.
"""

import json
import sys

from django.core.management.base import BaseCommand

from benchmarks import harness, triggers


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=50, help="callbacks a second")
        parser.add_argument("--seconds", type=float, default=600, help="how long they arrive")
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_triggers", sys.argv[2:], scratch="bench-triggers", database_url=options["database_url"]
            )
            return
        report = triggers.measure(rate=options["rate"], seconds=options["seconds"])
        triggers.wait_for_background()
        self.stdout.write(json.dumps(report, indent=2))
