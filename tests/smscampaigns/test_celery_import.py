"""An upload is imported by a real Celery worker, another process, reading the
file back from the database.

Needs the services of `make test-postgres` (PostgreSQL as the database and
TEST_REDIS_URL); skipped elsewhere.
"""

import os
import subprocess
import sys
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from smscampaigns.celery import app as celery_app
from smscampaigns.models import Lead, LeadImport
from smscampaigns.tasks import lead_import_start
from tests.celery_broker import use_broker

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

pytestmark = [
    pytest.mark.skipif(not REDIS_URL, reason="needs Redis and PostgreSQL (make test-postgres)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]


@pytest.fixture
def worker(settings):
    if connection.vendor != "postgresql":
        pytest.skip("a worker process shares the database on PostgreSQL")
    db = connection.settings_dict
    env = {
        **os.environ,
        "ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": "celery-test-secret",
        "DEBUG": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "smscampaigns", "worker", "--pool=solo", "-n", "importer@%h",
         "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # This process only sends the task; the worker runs it.
    use_broker(REDIS_URL)
    settings.RUNNER_BACKGROUND = "celery"
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()
        use_broker(None)


def test_a_celery_worker_imports_the_stored_upload(worker):
    rows = "\n".join(f"p{n}@example.com,{n % 100},{'yes' if n % 50 == 0 else ''}" for n in range(3000))
    data = f"email,lead_score,blocklisted\n{rows}\n".encode()
    lead_import = lead_import_start(upload=SimpleUploadedFile("leads.csv", data, "text/csv"), user=None)
    deadline = time.monotonic() + 120
    while lead_import.is_active:
        assert time.monotonic() < deadline, f"the import is still {lead_import.status}"
        time.sleep(0.5)
        lead_import.refresh_from_db()
    assert lead_import.status == LeadImport.Status.COMPLETED
    assert lead_import.leads_created == 3000
    assert Lead.objects.filter(blocklisted=True).count() == 60
    assert not lead_import.chunks.exists()
