"""The DEBUG error page and the error e-mails show no secret, also none inside a URL."""

import html
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.test import override_settings
from django.urls import path

from smscampaigns.error_reports import SUBSTITUTE

# Characters a page escapes, and a URL must encode, in one of them.
CALLBACK_PASSWORD = "cb/p@ss&w0rd<7730>"
SECRETS = {
    "SECRET_KEY": "secret-key-of-the-error-page-test-9d1f",
    "VIBES_PASSWORD": "vibes-api-pw-4821",
    "VIBES_CALLBACK_PASSWORD": CALLBACK_PASSWORD,
    "broker": "broker/pw 5512",
    "platform": "platform-pw-6604",
    "database": "db-pw-3390",
}
SETTINGS = {
    "SECRET_KEY": SECRETS["SECRET_KEY"],
    "VIBES_PASSWORD": SECRETS["VIBES_PASSWORD"],
    "VIBES_CALLBACK_PASSWORD": CALLBACK_PASSWORD,
    "VIBES_DELIVERY_RECEIPT_URL": (
        f"https://vibes:{quote(CALLBACK_PASSWORD, safe='')}@sms.example.com/vibes/callbacks/"
    ),
    "CELERY_BROKER_URL": f"redis://:{quote(SECRETS['broker'], safe='')}@redis.example.com:6379/0",
    "VIBES_PLATFORM_URL": f"https://sms-app:{SECRETS['platform']}@platform.vibes.example/",
}
# What a development server passes on from its environment into request.META.
ENVIRONMENT = {
    "DATABASE_URL": f"postgres://sms:{SECRETS['database']}@db.example.com:5432/sms",
    "CELERY_BROKER_URL": SETTINGS["CELERY_BROKER_URL"],
    "VIBES_DELIVERY_RECEIPT_URL": SETTINGS["VIBES_DELIVERY_RECEIPT_URL"],
    "VIBES_PASSWORD": SECRETS["VIBES_PASSWORD"],
    "SECRET_KEY": SECRETS["SECRET_KEY"],
    "HTTP_AUTHORIZATION": "Basic dmliZXM6Y2ItcGFzc3dvcmQ=",
}


@login_not_required
def failing_view(request):
    # Locals and the exception message, as a failing Vibes call would have them.
    receipt_url = settings.VIBES_DELIVERY_RECEIPT_URL
    credentials = (settings.VIBES_USERNAME, settings.VIBES_PASSWORD)
    broker = {"host": "redis.example.com", "password": unquote(urlsplit(settings.CELERY_BROKER_URL).password)}
    raise ConnectionError(
        f"cannot reach {settings.CELERY_BROKER_URL} ({broker}) for {receipt_url} as {credentials}"
    )


urlpatterns = [path("fails/", failing_view)]


@pytest.fixture
def secret_settings():
    databases = {
        **settings.DATABASES,
        "reporting": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "sms",
            "USER": "sms",
            "PASSWORD": SECRETS["database"],
            "HOST": "db.example.com",
            "OPTIONS": {"passfile": "/run/secrets/pgpass", "sslpassword": SECRETS["database"]},
        },
    }
    # Django warns that DATABASES overrides may surprise; only the page reads this copy.
    with pytest.warns(UserWarning, match="DATABASES"), override_settings(**SETTINGS, DATABASES=databases):
        yield


def spellings(secret):
    return {secret, html.escape(secret), quote(secret, safe=""), html.escape(quote(secret, safe=""))}


def assert_no_secret(report: str):
    for name, secret in SECRETS.items():
        for spelling in spellings(secret):
            assert spelling not in report, f"{name} shown as {spelling!r}"


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("secret_settings")
def test_the_debug_error_page_shows_no_secret(client):
    client.raise_request_exception = False
    with override_settings(DEBUG=True):
        response = client.get("/fails/", **ENVIRONMENT)
    page = response.content.decode()
    assert response.status_code == 500
    assert "ConnectionError" in page  # the technical page, not the plain one
    assert_no_secret(page)
    # The rest of each URL stays, to tell which server was meant.
    assert f"redis://{SUBSTITUTE}@redis.example.com:6379/0" in page
    assert f"postgres://{SUBSTITUTE}@db.example.com:5432/sms" in page
    assert "sms.example.com/vibes/callbacks/" in page


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("secret_settings")
def test_the_debug_error_page_as_text_shows_no_secret(client):
    client.raise_request_exception = False
    with override_settings(DEBUG=True):
        response = client.get("/fails/", headers={"Accept": "text/plain"}, **ENVIRONMENT)
    report = response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert "ConnectionError" in report
    assert_no_secret(report)


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("secret_settings")
def test_the_error_email_shows_no_secret(client, mailoutbox):
    client.raise_request_exception = False
    with override_settings(DEBUG=False, ADMINS=["ops@example.com"]):
        client.get("/fails/", **ENVIRONMENT)
    [email] = mailoutbox
    assert "ConnectionError" in email.body
    for report in (email.body, *(content for content, _mimetype in email.alternatives)):
        assert_no_secret(report)
