"""Benchmark the CSV import: N new people, the same file again, and the same people changed.

By default the benchmark never touches your database: it creates a scratch
SQLite file under var/ (or uses --database-url, which must name an empty
database), runs itself there in a child process, and prints a JSON report.
The peak RSS is the child's, so runs with different --rows compare.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from smscampaigns import bench


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--database-url", help="an empty database, instead of a scratch SQLite file")
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            return self._spawn(options)
        self.stdout.write(json.dumps(self._measure(options["rows"]), indent=2))

    def _spawn(self, options):
        url = options["database_url"]
        if not url:
            scratch = Path(settings.BASE_DIR) / "var" / f"bench-import-{options['rows']}.sqlite3"
            scratch.parent.mkdir(exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{scratch}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{scratch}"
        argv = [sys.executable, "manage.py", "bench_import", "--in-scratch", "--rows", str(options["rows"])]
        # DEBUG off, as in production: with it on, Django keeps the last queries in memory.
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY, "DEBUG": "false"}
        code = subprocess.call(argv, env=env, cwd=settings.BASE_DIR)
        if code:
            raise CommandError(f"the benchmark failed (exit {code})", returncode=code)

    def _measure(self, rows: int) -> dict:
        call_command("migrate", verbosity=0)
        report = {"rows": rows, "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]}
        with tempfile.TemporaryDirectory() as folder:
            people = bench.write_file(Path(folder) / "people.csv", rows=rows)
            changed = bench.write_changes(Path(folder) / "people-changed.csv", rows=rows)
            report["file_mb"] = round(people.stat().st_size / 2**20, 1)
            report["peak_rss_mb_before"] = round(bench.peak_rss_mb(), 1)
            for name, path in (("new", people), ("same_again", people), ("updates", changed)):
                bench.settle_disk()
                self.stderr.write(f"Importing {path.name} ({name})…")
                report[name] = bench.measure(path)
        return report
