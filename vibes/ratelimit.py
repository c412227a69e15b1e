"""Client-side rate limiting for Vibes calls.

Vibes allows 100 requests per second per company, counted where they arrive,
in any one-second window, and answers 429 with no Retry-After above that. A
limiter is anything with a method `acquire()` that blocks until the next
call may go and returns a `Permit` (or None); the client calls it before
every attempt, retries included, and calls the permit's `sent()` once the
request has been written to the connection. `RateLimiter` keeps the limit
for the threads of one process, `RedisRateLimiter` for every process that
shares its Redis key.

Both count what Vibes counts: arrivals. A request leaves some time after it
was allowed to go (building it, connecting, a thread descheduled in between
on a busy machine), and arrives a network delay after it left. So a call
counts from the moment it is allowed until it was written out (in flight),
and then for `window` seconds (sent); a call may go only while fewer than
`limit` calls are in flight or sent. Then no one-second window of arrivals
holds more than `limit` calls, however late any thread is, as long as the
network delay varies by less than `window` - 1 seconds. Spacing starts
`window` / `limit` apart, without counting, did not hold: a thread that woke
late from its slot went out together with the threads whose slots came
after it.

Calls are also spaced out: each reserves the next slot, `window` / `limit`
seconds after the one before, and waits for it, so they go out evenly and
there is no burst after an idle spell.
"""

import math
import threading
import time
import uuid
from collections import deque
from typing import Protocol

# Vibes counts one second. Calls written out a second apart can arrive a
# little closer together when the network delay varies: 20 ms more cover
# that (on loopback nothing more is needed), for a pace of 98% of the limit.
WINDOW = 1.02


class Permit(Protocol):
    def sent(self) -> None:
        """The request was written to the connection (or failed): from now on it counts as sent.

        Only the first call counts; later ones do nothing.
        """


class Limiter(Protocol):
    def acquire(self) -> Permit | None: ...


def _window_shape(limit: float, window: float) -> tuple[int, float]:
    """(calls, seconds): a whole number of calls, and the window that keeps their rate."""
    calls = max(1, math.floor(limit))
    return calls, window * calls / limit


class _Permit:
    def __init__(self, on_sent):
        self._on_sent = on_sent

    def sent(self) -> None:
        on_sent, self._on_sent = self._on_sent, None
        if on_sent is not None:
            on_sent()


# Looked at again this often while every place in the window is in flight
# (only possible with more threads than the limit).
_IN_FLIGHT_POLL = 0.002


class RateLimiter:
    """At most `limit` calls per `window` seconds, in flight or sent, in this process.

    A limit of 0, less, or None means unlimited.
    """

    def __init__(self, limit: float | None, *, window: float = WINDOW):
        self.limit = limit if limit and limit > 0 else None
        self.window = window
        self._calls, self._seconds = _window_shape(self.limit, window) if self.limit else (0, 0.0)
        self._next_slot = 0.0
        self._sent: deque[float] = deque()  # when the calls of the last window were sent, oldest first
        self._in_flight = 0
        self._lock = threading.Lock()

    def acquire(self) -> Permit | None:
        if not self.limit:
            return None
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._seconds / self._calls
        # Sleep outside the lock: each caller has reserved its own slot.
        if slot > now:
            time.sleep(slot - now)
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self._seconds:
                    self._sent.popleft()
                if len(self._sent) + self._in_flight < self._calls:
                    self._in_flight += 1
                    return _Permit(self._record_sent)
                wait = self._sent[0] + self._seconds - now if self._sent else _IN_FLIGHT_POLL
            time.sleep(wait)

    def _record_sent(self):
        with self._lock:
            self._in_flight -= 1
            self._sent.append(time.monotonic())

    def __repr__(self):
        return f"RateLimiter(limit={self.limit}, window={self.window})"


# The scripts run on the Redis server's clock (microseconds), so every process
# on every machine shares one pace and one window.
#
# The next slot: KEYS[1] holds the time the next call may start.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local spacing = tonumber(ARGV[1])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_slot)
redis.call('SET', KEYS[1], slot + spacing, 'PX', math.ceil(spacing / 1000) + 60000)
return slot - now
"""

# Allowed to go? KEYS[1]: sorted set of calls in flight, by the time they were
# allowed; KEYS[2]: of calls sent, by the time they were sent. ARGV: calls per
# window, the window, how long a call may stay in flight before it is taken for
# lost (its process died), the call's id. Returns 0 when the call may go (it
# is then in flight), else the microseconds to wait before asking again.
_GO = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local calls, window, lost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lost)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= calls then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if oldest[2] then
    return math.max(1, tonumber(oldest[2]) + window - now)
  end
  return tonumber(ARGV[5])
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(lost / 1000))
return 0
"""

# Sent: the call ARGV[1] moves from in flight (KEYS[1]) to sent (KEYS[2]), now.
_SENT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) / 1000) + 60000)
return 0
"""

# A call in flight longer than this was lost with its process; a live one
# is sent or has failed long before (connect and read timeouts).
LOST_AFTER = 120.0


class RedisRateLimiter:
    """At most `limit` calls per `window` seconds, in flight or sent, across all processes sharing `key`."""

    def __init__(
        self, url: str, limit: float | None, *, window: float = WINDOW, key: str = "vibes:rate-limit"
    ):
        import redis

        self.limit = limit if limit and limit > 0 else None
        self.window = window
        self.key = key
        calls, seconds = _window_shape(self.limit, window) if self.limit else (0, 0.0)
        self._calls, self._window_us = calls, int(seconds * 1_000_000)
        self._spacing_us = int(seconds * 1_000_000 / calls) if calls else 0
        self._keys = [f"{key}:in-flight", f"{key}:sent"]
        self._redis = redis.Redis.from_url(url)
        self._reserve = self._redis.register_script(_RESERVE_SLOT)
        self._go = self._redis.register_script(_GO)
        self._sent = self._redis.register_script(_SENT)

    def acquire(self) -> Permit | None:
        if not self.limit:
            return None
        wait_us = int(self._reserve(keys=[f"{self.key}:next"], args=[self._spacing_us]))
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)
        call = uuid.uuid4().hex
        arguments = [
            self._calls,
            self._window_us,
            int(LOST_AFTER * 1_000_000),
            call,
            int(_IN_FLIGHT_POLL * 1e6),
        ]
        while wait_us := int(self._go(keys=self._keys, args=arguments)):
            time.sleep(wait_us / 1_000_000)
        return _Permit(lambda: self._sent(keys=self._keys, args=[call, self._window_us]))

    def __repr__(self):
        return f"RedisRateLimiter(limit={self.limit}, window={self.window}, key={self.key!r})"
