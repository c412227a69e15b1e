"""Passwords kept out of what is shown, logged and raised.

A callbacks URL carries the Basic credentials Vibes sends back to the app,
so wherever such a URL appears (an answer Vibes echoes, a request log, the
admin) its password is replaced by "***".
"""

import re
from urllib.parse import urlsplit, urlunsplit

# user:password@ in any URL inside a text.
URL_PASSWORD = re.compile(r"(?P<start>[a-z][a-z0-9+.\-]*://[^\s/?#:@'\"<>]*):[^\s/?#@'\"<>]*@", re.IGNORECASE)


def url_without_password(url: str) -> str:
    """The URL with its password replaced by "***": how a callbacks URL is shown and logged."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def url_passwords_hidden(text: str) -> str:
    """The text with the password of every URL in it replaced by "***"."""
    return URL_PASSWORD.sub(lambda match: f"{match['start']}:***@", text)
