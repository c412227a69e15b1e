"""Benchmark the Smart List tab's live count with each SMS activity filter, on N synthetic people.

Like bench_campaign, it never touches your database: it runs in a child
process on a scratch SQLite file under var/ (or on --database-url, which must
name an empty database), and prints a table of medians. The benchmark itself
is benchmarks/smartlist_filters.py.
"""

import json

from django.core.management.base import BaseCommand

from benchmarks import harness, smartlist_filters


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument("--rounds", type=int, default=5, help="counts of each smart list (medians)")
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_smartlist_filters",
                ["--leads", str(options["leads"]), "--rounds", str(options["rounds"])],
                scratch=f"bench-filters-{options['leads']}",
                database_url=options["database_url"],
            )
            return
        report = smartlist_filters.measure(leads=options["leads"], rounds=options["rounds"])
        self.stdout.write(report.pop("table"))
        self.stdout.write(json.dumps(report, indent=2))
