"""Celery tasks: thin wrappers that take ids and call the services."""

from celery import shared_task

from .models import LeadImport
from .services import lead_import_run


@shared_task(acks_late=True)
def import_leads_task(import_id: int) -> str:
    """Import an uploaded file; a worker lost mid-way has the task again, and it starts over safely."""
    return lead_import_run(lead_import=LeadImport.objects.get(pk=import_id)).status
