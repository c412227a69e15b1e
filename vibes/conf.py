"""The Vibes client built from settings: one per process, so one Session and
one connection pool and rate limiter shared by every thread.

This is the only Django-aware piece of the client.
"""

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .client import VibesClient
from .ratelimit import RateLimiter, RedisRateLimiter

_client: VibesClient | None = None
_lock = threading.Lock()


def build_rate_limiter():
    """Vibes' limit is per company: with workers on a Redis broker the pace is
    kept in Redis, shared by every process; otherwise within this process."""
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")):
        key = f"vibes:rate-limit:{settings.VIBES_COMPANY_KEY}"
        return RedisRateLimiter(broker, settings.VIBES_RATE_LIMIT, key=key)
    return RateLimiter(settings.VIBES_RATE_LIMIT)


def build_client(**overrides) -> VibesClient:
    """A new client from the VIBES_* settings; keyword arguments override them."""
    options = {
        "platform_url": settings.VIBES_PLATFORM_URL,
        "connect_url": settings.VIBES_CONNECT_URL,
        "company_key": settings.VIBES_COMPANY_KEY,
        "username": settings.VIBES_USERNAME,
        "password": settings.VIBES_PASSWORD,
        "short_code": settings.VIBES_SHORT_CODE,
        "rate_limiter": build_rate_limiter(),
        "connect_timeout": settings.VIBES_CONNECT_TIMEOUT,
        "read_timeout": settings.VIBES_READ_TIMEOUT,
    }
    options.update(overrides)
    return VibesClient(**options)


def get_client() -> VibesClient:
    """The process's client, created on first use."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = build_client()
            client = _client
    return client


def reset_client() -> None:
    """Forget the process's client, so the next get_client() reads the settings again."""
    global _client
    with _lock:
        _client = None


@receiver(setting_changed)
def _reset_on_vibes_setting(*, setting, **kwargs):
    # Lets tests override VIBES_* with the `settings` fixture or override_settings.
    if setting.startswith("VIBES_") or setting == "CELERY_BROKER_URL":
        reset_client()
