"""Benchmark the CSV import: N new people, the same file again, and the same people changed.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a JSON report.
The peak RSS is the child's, so runs with different --rows compare. The
benchmark itself is benchmarks/imports.py.
"""

import json

from django.core.management.base import BaseCommand

from benchmarks import harness, imports


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--database-url", help="an empty database, instead of a scratch SQLite file")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_import",
                ["--rows", str(options["rows"])],
                scratch=f"bench-import-{options['rows']}",
                database_url=options["database_url"],
                # DEBUG off, as in production: with it on, Django keeps the last queries in memory.
                env={"DEBUG": "false"},
            )
        else:
            self.stdout.write(json.dumps(imports.measure(rows=options["rows"]), indent=2))
