"""The import benchmark: the CSV import on synthetic files.

`write_file` writes N people the way a marketer's export holds them (names
with accents, numbers written several ways, six countries, 2% without an
email, 2% blocklisted, 1% suspended, blank cells), and `write_changes` the
same people with new values. `import_timed` imports a file along the admin's
path: the upload is stored in the database, then a worker reads it back and
imports it. `measure` imports the new people, the same file again, then the
changed file; `manage.py bench_import` runs it on a scratch database.
"""

import csv
import random
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from django.core.files import File
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from smscampaigns.models import LeadImport
from smscampaigns.tasks import lead_import_start

from .harness import peak_rss_mb, settle_disk

FIRST_NAMES = [
    "Anna", "José", "Åsa", "Jürgen", "Niccolò", "Zoë", "Hélène", "Björn", "Lars", "Emma", "Noah", "Chloé",
    "Sofía", "Lukas", "Giulia", "Daan", "Maël", "Ingrid", "Oliver", "Léa",
]  # fmt: skip
LAST_NAMES = [
    "Müller", "Andersson", "Rossi", "de Vries", "Dupré", "Smith", "Weiß", "Öberg", "Lefèvre", "Jansen",
    "Bianchi", "Johnson", "Schäfer", "Lindström", "Moreau", "Visser",
]  # fmt: skip
COUNTRIES = [("US", 70), ("SE", 8), ("DE", 8), ("FR", 5), ("IT", 5), ("NL", 4)]
CITIES = {
    "US": ["New York", "Austin", "Chicago"],
    "SE": ["Göteborg", "Malmö", "Stockholm"],
    "DE": ["Köln", "München", "Berlin"],
    "FR": ["Besançon", "Orléans", "Paris"],
    "IT": ["Forlì", "Cantù", "Roma"],
    "NL": ["Den Haag", "Utrecht", "Zwolle"],
}
SOURCES = ["Web form", "Trade fair – 2026", "Partner", "Store"]
HEADER = [
    "First Name", "Last Name", "Email", "Mobile Phone", "Country", "City", "Lead Source", "Lead Score",
    "Blocklisted", "Marketing Suspended", "Created",
]  # fmt: skip


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().replace(" ", "").lower()


def _number(index: int, country: str, rng: random.Random) -> str:
    """A number of the country, unique per index, written as people write them."""
    if country == "US":
        area, rest = 212 + index % 7, 2_000_000 + (index // 7) % 8_000_000
        local = f"{area}{rest:07d}"
        style = rng.random()
        if style < 0.3:
            return f"({local[:3]}) {local[3:6]}-{local[6:]}"
        if style < 0.4:
            return f"{local[:3]}.{local[3:6]}.{local[6:]}"
        return f"+1{local}"
    if country == "SE":
        return f"070-{index % 10_000_000:07d}"
    if country == "DE":
        return f"+49 151 {index % 100_000_000:08d}"
    if country == "FR":
        return f"+33 6 {index % 100_000_000:08d}"
    if country == "IT":
        return f"+39 320 {index % 10_000_000:07d}"
    return f"+31 6 {index % 100_000_000:08d}"


def _person(index: int, rng: random.Random) -> list[str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    country = rng.choices([c for c, _w in COUNTRIES], weights=[w for _c, w in COUNTRIES])[0]
    email = "" if rng.random() < 0.02 else f"{_ascii(first)}.{_ascii(last)}.{index}@example.com"
    roll = rng.random()
    blocklisted = "yes" if roll < 0.02 else rng.choice(["", "no", "nein", "non"])
    suspended = "ja" if rng.random() < 0.01 else rng.choice(["", "", "0"])
    created = f"2025-{1 + index % 12:02d}-{1 + index % 28:02d}" if rng.random() < 0.5 else ""
    return [
        first, last, email, _number(index, country, rng), country, rng.choice(CITIES[country]),
        rng.choice(SOURCES), str(rng.randrange(100)), blocklisted, suspended, created,
    ]  # fmt: skip


def write_file(path: Path, *, rows: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in range(rows):
            writer.writerow(_person(index, rng))
    return path


def write_changes(path: Path, *, rows: int, seed: int = 1) -> Path:
    """The same people (same seed), each with a new score; some move, 1% change their block."""
    rng = random.Random(seed)
    changes = random.Random(seed + 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in range(rows):
            person = _person(index, rng)
            person[7] = str((int(person[7]) + 1) % 100)
            if changes.random() < 0.1:
                person[5] = changes.choice(CITIES[person[4]])
            if changes.random() < 0.01:
                person[8] = "no" if person[8] == "yes" else "yes"
            writer.writerow(person)
    return path


def import_timed(path: Path) -> dict:
    """Import `path` as the admin does (store the upload, then a worker imports it), timed."""
    started = time.perf_counter()
    # The worker's part runs here, right after the upload commits.
    with override_settings(RUNNER_BACKGROUND="inline"), path.open("rb") as handle:
        lead_import = lead_import_start(upload=File(handle, name=path.name), user=None)
    seconds = time.perf_counter() - started
    lead_import = LeadImport.objects.get(pk=lead_import.pk)
    import_seconds = (lead_import.finished_at - lead_import.started_at).total_seconds()
    return {
        "status": lead_import.status,
        "summary": lead_import.summary(),
        "seconds": round(seconds, 2),
        "store_upload_seconds": round(seconds - import_seconds, 2),
        "import_seconds": round(import_seconds, 2),
        "rows_per_second": round(lead_import.rows_read / seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def measure(*, rows: int) -> dict:
    """The whole benchmark in this (empty) database: its report."""
    call_command("migrate", verbosity=0)
    report = {"rows": rows, "database": connection.settings_dict["ENGINE"].rsplit(".", 1)[-1]}
    with tempfile.TemporaryDirectory() as folder:
        people = write_file(Path(folder) / "people.csv", rows=rows)
        changed = write_changes(Path(folder) / "people-changed.csv", rows=rows)
        report["file_mb"] = round(people.stat().st_size / 2**20, 1)
        report["peak_rss_mb_before"] = peak_rss_mb()
        for name, path in (("new", people), ("same_again", people), ("updates", changed)):
            settle_disk()
            print(f"Importing {path.name} ({name})…", file=sys.stderr)
            report[name] = import_timed(path)
    return report
