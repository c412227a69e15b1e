"""Writes to the people database: importing leads from CSV, blocklisting."""

import io
import logging
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .imports import lead_import_execute, lead_import_fail
from .models import FLAGS, LeadFlagChange, LeadImport, LeadImportChunk, flag_changes_by

logger = logging.getLogger(__name__)

# The pieces an upload is kept in: one row each, read back one at a time.
CHUNK_SIZE = 1 << 20
# An active import whose progress has not moved for this long lost its worker.
STALLED_AFTER = timedelta(minutes=5)


def _size_of(file: BinaryIO) -> int:
    file.seek(0, io.SEEK_END)
    size = file.tell()
    file.seek(0)
    return size


def leads_import(*, file: BinaryIO, file_name: str, user=None, progress=None) -> LeadImport:
    """Import a CSV file of leads in this process (`manage.py import_leads`).

    `file` is binary and seekable: its encoding is detected, not assumed.
    The returned import holds the counts and the problems, line by line.
    """
    lead_import = LeadImport.objects.create(file_name=file_name[:255], size=_size_of(file), created_by=user)
    return lead_import_execute(lead_import=lead_import, file=file, progress=progress)


@transaction.atomic
def lead_import_create(*, upload: UploadedFile, user) -> LeadImport:
    """Keep an uploaded file in the database, for a worker to import (`tasks.lead_import_start`)."""
    lead_import = LeadImport.objects.create(
        file_name=Path(upload.name or "leads.csv").name[:255],
        size=upload.size or 0,
        created_by=user,
        language=translation.get_language() or "",
    )
    # One piece at a time: bulk_create would hold the whole file in memory.
    for position, data in enumerate(upload.chunks(CHUNK_SIZE)):
        LeadImportChunk.objects.create(lead_import=lead_import, position=position, data=data)
    return lead_import


class StoredFile(io.RawIOBase):
    """An uploaded file read back from its chunks in the database, one chunk in memory at a time."""

    def __init__(self, lead_import: LeadImport):
        super().__init__()
        self.chunk_ids = list(lead_import.chunks.order_by("position").values_list("pk", flat=True))
        self.seek(0)

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        # Only rewinding is needed: the file is read once to detect its encoding, then imported.
        if (offset, whence) not in ((0, io.SEEK_SET), (0, io.SEEK_CUR)):
            raise io.UnsupportedOperation("a stored file can only be rewound")
        if whence == io.SEEK_SET:
            self.next_chunk, self.data, self.offset, self.position = 0, b"", 0, 0
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        while self.offset >= len(self.data):
            if self.next_chunk >= len(self.chunk_ids):
                return 0
            self.data = bytes(
                LeadImportChunk.objects.values_list("data", flat=True).get(pk=self.chunk_ids[self.next_chunk])
            )
            self.next_chunk += 1
            self.offset = 0
        count = min(len(buffer), len(self.data) - self.offset)
        buffer[:count] = self.data[self.offset : self.offset + count]
        self.offset += count
        self.position += count
        return count


def lead_import_run(*, lead_import: LeadImport) -> LeadImport:
    """Import an uploaded file from the database (the background worker's entry point).

    An import that was interrupted starts again from the beginning, which is
    safe: what was saved before changes nothing the second time.
    """
    if lead_import.status in (LeadImport.Status.COMPLETED, LeadImport.Status.REFUSED):
        return lead_import
    try:
        with io.BufferedReader(StoredFile(lead_import), CHUNK_SIZE) as file:
            lead_import_execute(lead_import=lead_import, file=file)
    except Exception:
        # The admin sees the import failed; the details go to the log.
        logger.exception("lead import %s failed", lead_import.pk)
        lead_import_fail(lead_import)
    return lead_import


class ImportCannotRestart(Exception):
    pass


def lead_import_requeue(*, lead_import: LeadImport) -> None:
    """Queue a failed or stalled import again, to start over from its stored file."""
    lead_import.refresh_from_db()
    stalled = lead_import.is_active and lead_import.updated_at < timezone.now() - STALLED_AFTER
    if lead_import.status != LeadImport.Status.FAILED and not stalled:
        raise ImportCannotRestart(
            _("%(import)s is %(status)s; only a failed or stalled import can be started again.")
            % {"import": lead_import, "status": lead_import.get_status_display()}
        )
    if not lead_import.chunks.exists():
        raise ImportCannotRestart(
            _("%(import)s was imported from the command line; run the command again.")
            % {"import": lead_import}
        )
    LeadImport.objects.filter(pk=lead_import.pk).update(
        status=LeadImport.Status.QUEUED, error="", updated_at=timezone.now()
    )


def leads_set_flag(
    *, leads, flag: str, value: bool, user=None, source: str = LeadFlagChange.Source.ADMIN_ACTION
) -> int:
    """Blocklist / unblocklist or suspend / unsuspend people; returns how many changed.

    Each change is recorded in the people's history with `source` and `user`.
    """
    if flag not in FLAGS:
        raise ValueError(f"not a lead flag: {flag}")
    with flag_changes_by(source, user=user):
        return leads.exclude(**{flag: value}).update(**{flag: value})
