"""Time the SMS figures service on N result rows of Send steps, read from rollups.

By default the benchmark never touches your database: it builds its world in
a scratch SQLite file under var/ (or in --database-url, which must name an
empty database, or one a previous run built with --reuse), runs itself there
in a child process and prints a table of median times. With --reuse a world
already built there is measured again instead of rebuilt.
The benchmark itself is benchmarks/reporting.py.
"""

import json
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from benchmarks import harness, reporting
from smscampaigns.models import Lead


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=10_000_000, help="result rows of Send steps")
        parser.add_argument("--leads", type=int, default=1_000_000)
        parser.add_argument("--database-url", help="a database to use instead of a scratch SQLite file")
        parser.add_argument("--rounds", type=int, default=3, help="calls per figure (the median is shown)")
        parser.add_argument("--reuse", action="store_true", help="measure the world a previous run built")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_reporting",
                sys.argv[2:],
                scratch=f"reporting-{options['rows']}",
                database_url=options["database_url"],
                keep=options["reuse"],
            )
            return
        call_command("migrate", verbosity=0)
        world = reporting.existing_world() if options["reuse"] else None
        if world is None:
            if Lead.objects.exists():
                raise CommandError("the database holds people already: name an empty one, or add --reuse")
            world = reporting.build(rows=options["rows"], leads=options["leads"], progress=self.stderr.write)
        rows = reporting.measure(world, rounds=options["rounds"], progress=self.stderr.write)
        self.stdout.write(reporting.table(rows, world=world))
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
