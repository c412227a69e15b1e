"""Fixtures for the Vibes tests: a client for the simulator, a catcher of its
callbacks, and the app's callbacks configured."""

import pytest

from tests.vibes.simulated import APP_URL, CALLBACK_PASSWORD, CALLBACK_USERNAME, CallbackCatcher, make_client
from vibes.client import VibesClient


@pytest.fixture
def vibes_client(vibes_simulator) -> VibesClient:
    """A `vibes.client.VibesClient` for the simulator (`make_client`)."""
    client = make_client(vibes_simulator.url)
    yield client
    client.session.close()


@pytest.fixture
def callback_catcher():
    """A `CallbackCatcher` on 127.0.0.1: `url`, `received`, `wait_for(count, timeout=30)`."""
    catcher = CallbackCatcher()
    yield catcher
    catcher.close()


@pytest.fixture
def configured(settings, vibes_simulator):
    """The simulator, and the app's callbacks configured: their credentials, and
    `APP_URL` (`tests.vibes.simulated`) as the URL Vibes posts them to."""
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    settings.VIBES_DELIVERY_RECEIPT_URL = APP_URL
    return vibes_simulator
