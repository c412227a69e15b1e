"""Benchmark what "once every N" and the person limits cost a plan, on N synthetic people.

As bench_campaign, it never touches your database: a scratch SQLite file
under var/ (or --database-url, an empty database), in a child process. It
prints a table and the JSON report. The benchmark is benchmarks/campaign_controls.py.
"""

import json
import sys

from django.core.management.base import BaseCommand

from benchmarks import campaign_controls, harness


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument("--rounds", type=int, default=3, help="plans of each variant (medians)")
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_campaign_controls",
                sys.argv[2:],
                scratch=f"bench-controls-{options['leads']}",
                database_url=options["database_url"],
            )
            return
        report = campaign_controls.measure(leads=options["leads"], rounds=options["rounds"])
        self.stdout.write(campaign_controls.table(report))
        self.stdout.write(json.dumps(report, indent=2))
