"""Error reports without secrets: the DEBUG error page and the error e-mails.

Django hides a setting, a request header or an environment variable when its
*name* looks secret (PASSWORD, KEY, TOKEN...). Our secrets also travel inside
values whose names do not: credentials in URLs (`DATABASE_URL`,
`CELERY_BROKER_URL`, `VIBES_DELIVERY_RECEIPT_URL`), and any value can reach a
page through a local variable or an exception message. So the filter also
hides the credentials of every URL it shows, and the reporter removes every
known secret from the finished page or e-mail, wherever it appears.
"""

import html
import re
from urllib.parse import quote, quote_plus, unquote

from django.conf import settings
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute

# scheme://user:password@host: the user and password, up to the last "@"
# before the path (a password typed with a raw "@" is hidden whole).
URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>]*)@", re.IGNORECASE
)
# ?password=...&api_key=...: the values of query parameters with secret names.
QUERY_SECRETS = re.compile(
    r"(?P<name>[?&;][^=&#\s'\"<>]*(?:pass|secret|token|key|signature|auth)[^=&#\s'\"<>]*=)[^&#\s'\"<>]*",
    re.IGNORECASE,
)
# Named like secrets, but they name code.
CODE_SETTINGS = {"AUTHENTICATION_BACKENDS", "AUTH_USER_MODEL", "PASSWORD_HASHERS"}
# Shorter values would be found all over a page by chance; they are still
# hidden wherever their name or their place in a URL says they are secret.
MIN_SECRET_LENGTH = 4


def hide_url_credentials(text: str) -> str:
    text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{SUBSTITUTE}@", text)
    return QUERY_SECRETS.sub(lambda m: f"{m['name']}{SUBSTITUTE}", text)


def _url_secrets(text: str):
    # User names are not secrets (a URL shown in full still hides them with the password).
    secrets = [match["userinfo"].partition(":")[2] for match in URL_CREDENTIALS.finditer(text)]
    secrets += [match.group(0)[len(match["name"]) :] for match in QUERY_SECRETS.finditer(text)]
    for secret in secrets:
        yield secret
        yield unquote(secret)  # as the client that reads the URL holds it


def _collect(name: str, value, found: set, hidden: re.Pattern, inherited=False) -> None:
    sensitive = inherited or bool(name and hidden.search(name))
    if isinstance(value, str):
        if sensitive:
            found.add(value)
        found.update(_url_secrets(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(str(key), item, found, hidden)
    elif isinstance(value, (list, tuple)):
        for item in value:  # SECRET_KEY_FALLBACKS
            _collect("", item, found, hidden, inherited=sensitive)


def known_secrets() -> list[str]:
    """Every secret the settings hold, longest first, in the spellings a page may show them in."""
    found = set()
    hidden = SafeExceptionReporterFilter.hidden_settings
    for name in dir(settings):
        if name.isupper() and name not in CODE_SETTINGS:
            _collect(name, getattr(settings, name), found, hidden)
    spellings = set()
    for secret in found:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]):
            spellings.update((form, html.escape(form)))
    return sorted(spellings, key=len, reverse=True)


def hide_secrets(text: str) -> str:
    for secret in known_secrets():
        text = text.replace(secret, SUBSTITUTE)
    return hide_url_credentials(text)


class SecretHidingReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        # Django relaxes its filter when DEBUG is on; but the DEBUG page is
        # read by whoever reaches a development server, and copied into
        # issues and chats. Variables and POST fields marked sensitive stay hidden.
        return True

    def cleanse_setting(self, key, value):
        # Settings, request headers and (under runserver) environment
        # variables all come through here; dicts and lists item by item.
        cleansed = super().cleanse_setting(key, value)
        return hide_url_credentials(cleansed) if isinstance(cleansed, str) else cleansed


class SecretHidingExceptionReporter(ExceptionReporter):
    def get_traceback_html(self):
        return hide_secrets(str(super().get_traceback_html()))

    def get_traceback_text(self):
        return hide_secrets(str(super().get_traceback_text()))
