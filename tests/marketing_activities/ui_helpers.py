"""Shared by the interface tests (test_views_*.py)."""

import pytest
from django.urls import reverse

HTMX = {"HX-Request": "true"}


def url(name, *args):
    return reverse(f"marketing_activities:{name}", args=args)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every test logs a user in; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clerk_client(client, django_user_model):
    """Logged in, but not staff: no marketer."""
    client.force_login(django_user_model.objects.create_user("clerk", password="pw-clerk-123"))
    return client
