import pytest

pytest_plugins = ["tests.vibes.fixtures"]


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in marketer (staff, all permissions)."""
    user = django_user_model.objects.create_superuser("marketer", "marketer@example.com", "pw-marketer-1")
    client.force_login(user)
    client.user = user
    return client
