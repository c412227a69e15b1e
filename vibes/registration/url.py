"""The callbacks URL this app registers with Vibes, with the credentials the endpoint accepts."""

import hashlib
import hmac
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.conf import settings
from django.utils.translation import gettext as _

from ..redaction import url_without_password


class CallbacksNotConfigured(Exception):
    """The settings give no URL that Vibes could post to with credentials the endpoint accepts."""


def callbacks_url() -> str:
    """The callbacks URL to register, with its Basic credentials: VIBES_DELIVERY_RECEIPT_URL,
    given VIBES_CALLBACK_USERNAME and VIBES_CALLBACK_PASSWORD when it carries none."""
    url = settings.VIBES_DELIVERY_RECEIPT_URL.strip()
    if not url:
        raise CallbacksNotConfigured(
            _(
                "VIBES_DELIVERY_RECEIPT_URL is not set: set it to this app's callbacks URL as Vibes "
                "reaches it, for example https://sms.example.com/vibes/callbacks/."
            )
        )
    if not settings.VIBES_CALLBACK_PASSWORD:
        raise CallbacksNotConfigured(
            _(
                "VIBES_CALLBACK_PASSWORD is not set, and without it the callbacks endpoint "
                "refuses every event."
            )
        )
    try:
        parts = urlsplit(url)
        username, password, host = parts.username, parts.password, parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise CallbacksNotConfigured(
            _("VIBES_DELIVERY_RECEIPT_URL (%(url)s) is not an http or https URL.")
            % {"url": url_without_password(url)}
        )
    if username is None and password is None:
        userinfo = (
            f"{quote(settings.VIBES_CALLBACK_USERNAME, safe='')}:"
            f"{quote(settings.VIBES_CALLBACK_PASSWORD, safe='')}"
        )
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    if (unquote(username or ""), unquote(password or "")) != (
        settings.VIBES_CALLBACK_USERNAME,
        settings.VIBES_CALLBACK_PASSWORD,
    ):
        raise CallbacksNotConfigured(
            _(
                "The credentials in VIBES_DELIVERY_RECEIPT_URL are not VIBES_CALLBACK_USERNAME and "
                "VIBES_CALLBACK_PASSWORD, so the callbacks endpoint would refuse every event Vibes posts."
            )
        )
    return url


def place(url: str) -> tuple:
    """Where a URL leads, credentials and query aside: what makes a registration ours."""
    try:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.hostname, parts.port, parts.path.rstrip("/"))
    except ValueError:
        return ("", url)


def digest(url: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), url.encode(), hashlib.sha256).hexdigest()
