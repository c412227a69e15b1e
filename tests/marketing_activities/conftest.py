"""Fixtures for the marketing activities' tests."""

import pytest

from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory


@pytest.fixture
def clerk_client(client, django_user_model):
    """Logged in, but not staff: no marketer."""
    client.force_login(django_user_model.objects.create_user("clerk", password="pw-clerk-123"))
    return client


@pytest.fixture
def news(vibes_simulator):
    """The simulator's seeded list "101" (SMS Newsletter) with its acquisition campaign AC-NEWS-WEB.

    A module whose runs need more extends it under the same name, e.g.
    `def news(news, vibes_live_callbacks)` for callbacks posted to a live app.
    """
    vibes_list = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=vibes_list)
    return vibes_list
