"""Time the admin's large lists (leads, their changes, subscriptions, callbacks,
messages, run results) on a synthetic database of N people, built with
set-based SQL in seconds.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a table of the
median and fastest server time and the queries of each page, then the JSON
report. The benchmark itself is benchmarks/admin_lists.py.
"""

import json

from django.core.management.base import BaseCommand

from benchmarks import admin_lists, harness


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=1_000_000)
        parser.add_argument("--database-url", help="an empty database, instead of a scratch SQLite file")
        parser.add_argument("--rounds", type=int, default=5, help="requests per page (medians)")
        parser.add_argument(
            "--time-only",
            action="store_true",
            help="time the pages of a world built before in this database (DATABASE_URL), building nothing",
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if options["in_scratch"] or options["time_only"]:
            report = admin_lists.measure(
                leads=options["leads"], rounds=options["rounds"], build=not options["time_only"]
            )
            self.stdout.write(admin_lists.table(report["pages"]))
            self.stdout.write(json.dumps(report, indent=2))
        else:
            harness.run_in_scratch(
                "bench_admin",
                ["--leads", str(options["leads"]), "--rounds", str(options["rounds"])],
                scratch=f"bench-admin-{options['leads']}",
                database_url=options["database_url"],
            )
