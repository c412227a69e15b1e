from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from smscampaigns.services import leads_import


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file with a header row (UTF-8, UTF-16 or Windows-1252, detected; comma, "
        "semicolon or tab). Bad rows are reported with their line and column and skipped; good rows are "
        "imported; a row whose email matches a lead updates it, and blank cells change nothing. "
        "Exits 1 when the file or any row was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the CSV file")

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file.")
        with file.open("rb") as handle, tqdm(total=100, unit="%", disable=options["verbosity"] == 0) as bar:

            def progress(lead_import):
                bar.set_description(lead_import.get_status_display().capitalize())
                bar.update(lead_import.progress_percent - bar.n)

            lead_import = leads_import(file=handle, file_name=file.name, progress=progress)
        for problem in lead_import.problems.iterator():
            self.stderr.write(f"{file}: {problem}")
        if lead_import.error:
            raise CommandError(f"{file}: {lead_import.error}")
        self.stdout.write(self.style.SUCCESS(lead_import.summary()))
        for line in lead_import.flag_summary():
            self.stdout.write(f"{line}.")
        if lead_import.rows_refused:
            raise CommandError(
                f"{lead_import.rows_refused} rows were not imported; see the lines above.", returncode=1
            )
