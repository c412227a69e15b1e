"""Celery tasks of the people database, and where a lead import runs.

Services never import this module: what is started in the background is
started from here (the admin calls `lead_import_start`, `lead_import_restart`).
"""

from celery import shared_task
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from .background import background_run
from .models import LeadImport
from .services import lead_import_create, lead_import_requeue, lead_import_run


@shared_task(acks_late=True)
def import_leads_task(import_id: int) -> str:
    """Import an uploaded file; a worker lost mid-way has the task again, and it starts over safely."""
    return lead_import_run(lead_import=LeadImport.objects.get(pk=import_id)).status


def lead_import_dispatch(lead_import: LeadImport) -> None:
    """Have the import worked on in the background once the transaction commits,
    where campaign runs go: Celery with a broker, else a thread of this process."""
    background_run(import_leads_task, lead_import.pk, name=f"lead-import-{lead_import.pk}")


@transaction.atomic
def lead_import_start(*, upload: UploadedFile, user) -> LeadImport:
    """Keep an uploaded file in the database and have it imported in the background.

    The web request only stores the file; a worker reads it back, so a large
    file never runs into the web server's timeout.
    """
    lead_import = lead_import_create(upload=upload, user=user)
    lead_import_dispatch(lead_import)
    return lead_import


def lead_import_restart(*, lead_import: LeadImport) -> LeadImport:
    """Start a failed or stalled import again from its stored file (ImportCannotRestart otherwise)."""
    with transaction.atomic():
        lead_import_requeue(lead_import=lead_import)
        lead_import_dispatch(lead_import)
    lead_import.refresh_from_db()
    return lead_import
