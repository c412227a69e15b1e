"""Who may post callbacks.

Vibes signs nothing, so the endpoint is protected by HTTP Basic credentials
(in the URL registered with Vibes) and an optional source-IP allowlist.
"""

import base64
import binascii
import hmac
import ipaddress
import logging

from django.conf import settings

logger = logging.getLogger("vibes.callbacks")


def callback_credentials_valid(authorization: str) -> bool:
    """True when the Authorization header carries the configured callback credentials.

    With no VIBES_CALLBACK_PASSWORD every callback is refused: an endpoint
    that changes subscriptions must never be open.
    """
    password = settings.VIBES_CALLBACK_PASSWORD
    if not password:
        logger.warning(
            "Vibes callback refused: VIBES_CALLBACK_PASSWORD is not set, so no callback is accepted."
        )
        return False
    scheme, _sep, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _sep, given = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared in constant time, and both always compared.
    user_ok = hmac.compare_digest(username.encode(), settings.VIBES_CALLBACK_USERNAME.encode())
    password_ok = hmac.compare_digest(given.encode(), password.encode())
    return user_ok and password_ok


def callback_source_allowed(remote_addr: str) -> bool:
    """True when VIBES_CALLBACK_ALLOWED_IPS is empty or holds the address (single IPs or CIDRs).

    The address is the TCP peer (REMOTE_ADDR), never X-Forwarded-For, which
    anyone can write.
    """
    allowed = [entry.strip() for entry in settings.VIBES_CALLBACK_ALLOWED_IPS if entry.strip()]
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            logger.error("VIBES_CALLBACK_ALLOWED_IPS: %r is not an IP address or network; ignored.", entry)
    return False
