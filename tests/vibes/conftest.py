"""Fixtures for the Vibes tests: the app's callbacks configured."""

import pytest

from tests.vibes.simulated import APP_URL, CALLBACK_PASSWORD, CALLBACK_USERNAME


@pytest.fixture
def configured(settings, vibes_simulator):
    """The simulator, and the app's callbacks configured: their credentials, and
    `APP_URL` (`tests.vibes.simulated`) as the URL Vibes posts them to."""
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    settings.VIBES_DELIVERY_RECEIPT_URL = APP_URL
    return vibes_simulator
