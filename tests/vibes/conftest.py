"""Fixtures for the Vibes tests: a client for the simulator, and a catcher of its callbacks."""

import pytest

from tests.vibes.simulated import CallbackCatcher, make_client
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
