"""Time the SMS dashboards and the people behind their figures on a synthetic
database of N SMS (result rows, with their receipts, replies, clicks and
unsubscriptions), built with set-based SQL.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a table of each
page's median and fastest time, CPU and SQL time and queries, then the JSON
report. The benchmark itself is benchmarks/dashboards.py.
"""

import json

from django.core.management.base import BaseCommand

from benchmarks import dashboards, harness


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--sms", type=int, default=100_000, help="SMS result rows (default 100,000)")
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
            report = dashboards.measure(
                sms=options["sms"], rounds=options["rounds"], build=not options["time_only"]
            )
            self.stdout.write(
                f"{report['sms']:,} SMS on {report['database']}, load average {report['load_average']}"
            )
            self.stdout.write(dashboards.table(report["pages"]))
            self.stdout.write(json.dumps(report, indent=2))
        else:
            harness.run_in_scratch(
                "bench_dashboards",
                ["--sms", str(options["sms"]), "--rounds", str(options["rounds"])],
                scratch=f"bench-dashboards-{options['sms']}",
                database_url=options["database_url"],
            )
