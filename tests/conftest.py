import shutil
import subprocess

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.catalogues import LOCALE_DIR

pytest_plugins = ["tests.vibes.fixtures"]

# Property tests check what holds, not how fast: on a loaded machine one
# example can take any time, so no example has a deadline and slow data
# generation is no failure.
hypothesis_settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("suite")


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues():
    """The compiled catalogues (.mo) are built, not committed: `make test` compiles
    them, and so does this when pytest runs alone and a catalogue changed since."""
    if shutil.which("msgfmt") is None:
        return
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/django.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run(["msgfmt", "--check-format", "-o", str(mo), str(po)], check=True)


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in marketer (staff, all permissions)."""
    user = django_user_model.objects.create_superuser("marketer", "marketer@example.com", "pw-marketer-1")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def marketers_group(db):
    """The "Marketers" group of the data migration (tests/marketers.py)."""
    from tests.marketers import marketers_group

    return marketers_group()
