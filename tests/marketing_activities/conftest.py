"""Fixtures for the marketing activities' tests."""

import pytest


@pytest.fixture
def clerk_client(client, django_user_model):
    """Logged in, but not staff: no marketer."""
    client.force_login(django_user_model.objects.create_user("clerk", password="pw-clerk-123"))
    return client
