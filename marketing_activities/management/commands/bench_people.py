"""Time a person's activity log at ten million result rows and View Qualified
People at a million people (issue 18).

By default the benchmark never touches your database: it builds its world in
a scratch SQLite file under var/ (or in --database-url, which must name an
empty database, or one a previous run built with --reuse), runs itself there
in a child process and prints a table of median times. The benchmark itself
is benchmarks/people.py.
"""

import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from benchmarks import harness, people, scale
from smscampaigns.models import Lead


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=1_000_000)
        parser.add_argument("--results", type=int, default=10_000_000, help="result rows of SMS sent")
        parser.add_argument("--database-url", help="a database to use instead of a scratch SQLite file")
        parser.add_argument("--rounds", type=int, default=5, help="requests per screen (the median is shown)")
        parser.add_argument("--reuse", action="store_true", help="measure the world a previous run built")
        parser.add_argument("--only", default="", help="only the screens whose name contains this")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            harness.run_in_scratch(
                "bench_people",
                sys.argv[2:],
                scratch=f"people-{options['leads']}-{options['results']}",
                database_url=options["database_url"],
                keep=options["reuse"],
            )
            return
        call_command("migrate", verbosity=0)
        world = people.existing_world() if options["reuse"] else None
        if world is None:
            if Lead.objects.exists():
                raise CommandError("the database holds people already: name an empty one, or add --reuse")
            world = people.build(
                leads=options["leads"], results=options["results"], progress=self.stderr.write
            )
        rows = people.measure(
            world, rounds=options["rounds"], only=options["only"], progress=self.stderr.write
        )
        self.stdout.write(people.describe(world))
        self.stdout.write(scale.table(rows, world=world))
