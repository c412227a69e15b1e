from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from smscampaigns.services import leads_import


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file with a header row. Bad rows are reported with their "
        "line number and skipped; good rows are imported; a row whose email matches a lead "
        "updates it. Exits 1 when any row was skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV file (UTF-8, comma, semicolon or tab)")

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file.")
        with (
            file.open(encoding="utf-8-sig", errors="replace", newline="") as handle,
            tqdm(desc="Importing", unit=" rows", disable=options["verbosity"] == 0) as bar,
        ):
            report = leads_import(file=handle, progress=bar.update)
        for problem in report.problems:
            self.stderr.write(f"{file}: {problem}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
        if report.skipped:
            raise CommandError(f"{report.skipped} rows were not imported; see the lines above.", returncode=1)
