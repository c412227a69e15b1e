"""Client-side rate limiting for Vibes calls.

Vibes allows 100 requests/s per company and answers 429 with no Retry-After
above that, so the client paces itself. A limiter is anything with one
method, `acquire()`, which blocks until the next call may start; the client
calls it before every attempt, retries included. `RateLimiter` paces the
threads of one process; a limiter shared by several processes (e.g. on Redis)
only has to offer the same method.
"""

import threading
import time
from typing import Protocol


class Limiter(Protocol):
    def acquire(self) -> None: ...


class RateLimiter:
    """At most `rate_per_second` calls start in any one-second window, in this process.

    A token bucket holding a single token: call starts are spaced
    1/rate apart, so there is no burst above the rate after an idle spell.
    Callers are served in the order they arrive. A rate of 0, less, or None
    means unlimited.
    """

    def __init__(self, rate_per_second: float | None):
        self.rate = rate_per_second if rate_per_second and rate_per_second > 0 else None
        self._interval = 1.0 / self.rate if self.rate else 0.0
        self._next_start = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        # Sleep outside the lock: each caller has reserved its own slot.
        if start > now:
            time.sleep(start - now)

    def __repr__(self):
        return f"RateLimiter(rate_per_second={self.rate})"


# Reserve the next start slot atomically on the Redis server's clock, so every
# process on every machine shares one pace. Same scheme as RateLimiter: the
# key holds the time the next call may start.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local next_start = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, next_start)
redis.call('SET', KEYS[1], start + interval, 'PX', math.ceil(interval / 1000) + 60000)
return start - now
"""


class RedisRateLimiter:
    """At most `rate_per_second` call starts per second across all processes sharing `key`."""

    def __init__(self, url: str, rate_per_second: float | None, *, key: str = "vibes:rate-limit"):
        import redis

        self.rate = rate_per_second if rate_per_second and rate_per_second > 0 else None
        self.key = key
        self._interval_us = int(1_000_000 / self.rate) if self.rate else 0
        self._redis = redis.Redis.from_url(url)
        self._reserve = self._redis.register_script(_RESERVE_SLOT)

    def acquire(self) -> None:
        if not self.rate:
            return
        wait_us = int(self._reserve(keys=[self.key], args=[self._interval_us]))
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)

    def __repr__(self):
        return f"RedisRateLimiter(rate_per_second={self.rate}, key={self.key!r})"
