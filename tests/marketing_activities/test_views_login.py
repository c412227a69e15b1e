"""The login page shows the demo login that seed_demo created, in development only."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.urls import reverse

from marketing_activities.demo import DEMO_PASSWORD, DEMO_USERNAME, seed_demo
from marketing_activities.models import DemoLogin

pytestmark = pytest.mark.django_db

HINT = "Log in as <code>demo</code> with the password <code>demo-password</code>."


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


@pytest.fixture
def demo():
    seed_demo(people=0)  # the tree, the lists and the demo login; no people needed here
    return get_user_model().objects.get(username=DEMO_USERNAME)


def login_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    return response.content.decode()


def test_the_login_page_shows_the_demo_login_in_development(client, debug, demo):
    html = login_page(client)
    assert "The demo data is loaded." in html and HINT in html


def test_the_demo_login_shown_logs_in(client, debug, demo):
    response = client.post(reverse("login"), {"username": DEMO_USERNAME, "password": DEMO_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("marketing_activities:index")


def test_the_demo_login_is_never_shown_in_production(client, settings, demo):
    settings.DEBUG = False
    assert "demo-password" not in login_page(client)


def test_the_demo_login_is_not_shown_once_its_password_changed(client, debug, demo):
    demo.set_password("a-secret-of-my-own-1")
    demo.save()
    assert "demo-password" not in login_page(client)


def test_setting_the_demo_password_again_by_hand_does_not_bring_the_hint_back(client, debug, demo):
    # A new hash (new salt) is a change: only seed_demo, which checks the password, marks it again.
    demo.set_password(DEMO_PASSWORD)
    demo.save()
    assert "demo-password" not in login_page(client)
    seed_demo(people=0)
    assert HINT in login_page(client)


def test_seed_demo_again_drops_the_marker_of_a_changed_password(client, debug, demo):
    demo.set_password("a-secret-of-my-own-1")
    demo.save()
    seed_demo(people=0)
    assert not DemoLogin.objects.exists()
    assert "demo-password" not in login_page(client)


def test_an_inactive_demo_user_is_not_shown(client, debug, demo):
    demo.is_active = False
    demo.save()
    assert "demo-password" not in login_page(client)


def test_without_the_demo_data_nothing_is_shown(client, debug, django_user_model):
    # A user called "demo" that seed_demo did not create is somebody's real account.
    django_user_model.objects.create_user(DEMO_USERNAME, password=DEMO_PASSWORD)
    assert "demo-password" not in login_page(client)


class CountingHasher(MD5PasswordHasher):
    """The tests' fast hasher, counting how often a password is hashed."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


def test_the_hint_costs_the_login_page_one_query_and_no_hashing(
    client, debug, demo, settings, django_assert_num_queries
):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0
    with django_assert_num_queries(1):
        html = login_page(client)
    assert HINT in html
    assert CountingHasher.calls == 0
    assert get_user_model().objects.get(username=DEMO_USERNAME).check_password(DEMO_PASSWORD)
    assert CountingHasher.calls == 1  # the counter sees a check when there is one
