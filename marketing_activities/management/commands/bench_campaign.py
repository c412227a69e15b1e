"""Benchmark planning and execution on a synthetic database of N people.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a JSON report.
The benchmark itself is benchmarks/runner.py.
"""

import json
import sys

from django.core.management.base import BaseCommand

from benchmarks import harness, runner


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument(
            "--rounds", type=int, default=5, help="times the bare query and the planning each run (medians)"
        )
        parser.add_argument("--skip-execute", action="store_true", help="measure planning only")
        parser.add_argument("--limited-calls", type=int, default=3000)
        parser.add_argument("--unlimited-calls", type=int, default=30000)
        parser.add_argument("--concurrency", type=int, default=16)
        parser.add_argument(
            "--build-only", action="store_true", help="only write the synthetic data (in this database)"
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if options["build_only"]:
            self.stdout.write(json.dumps(runner.build(leads=options["leads"]).__dict__))
        elif not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_campaign",
                sys.argv[2:],
                scratch=f"bench-{options['leads']}",
                database_url=options["database_url"],
            )
        else:
            report = runner.measure(
                leads=options["leads"],
                rounds=options["rounds"],
                limited_calls=options["limited_calls"],
                unlimited_calls=options["unlimited_calls"],
                concurrency=options["concurrency"],
                skip_execute=options["skip_execute"],
            )
            self.stdout.write(json.dumps(report, indent=2))
