"""The client-side rate limiter."""

import os
import threading
import time

import pytest

from vibes.conf import build_rate_limiter
from vibes.ratelimit import RateLimiter, RedisRateLimiter


def test_rate_limiter_is_thread_safe_and_paces_calls():
    limiter = RateLimiter(200)
    starts = []
    lock = threading.Lock()

    def work():
        for _ in range(10):
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert len(starts) == 40
    # 40 calls at 200/s take at least 39 intervals of 5 ms.
    assert starts[-1] - began >= 39 / 200 - 0.01
    window = [s for s in starts if s < starts[0] + 0.1]
    assert len(window) <= 21


def test_rate_limiter_of_zero_or_none_is_unlimited():
    for rate in (0, None, -1):
        limiter = RateLimiter(rate)
        for _ in range(1000):
            limiter.acquire()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (make test-postgres)")
def test_limiters_sharing_redis_keep_one_pace_together():
    # Two limiters stand for two worker processes: each alone would allow 50/s.
    key = f"test-rate-limit-{time.monotonic_ns()}"
    limiters = [RedisRateLimiter(REDIS_URL, 50, key=key) for _ in range(2)]
    starts = []
    lock = threading.Lock()

    def work(limiter):
        for _ in range(15):
            limiter.acquire()
            with lock:
                starts.append(time.time())

    threads = [threading.Thread(target=work, args=(limiters[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    # 60 calls at 50/s together take at least 59 intervals of 20 ms.
    assert starts[-1] - starts[0] >= 59 / 50 - 0.05
    assert max(sum(1 for s in starts if start <= s < start + 1) for start in starts) <= 51


def test_the_client_keeps_headroom_below_the_vibes_limit(settings):
    settings.VIBES_RATE_LIMIT = 100
    settings.CELERY_BROKER_URL = ""
    limiter = build_rate_limiter()
    assert isinstance(limiter, RateLimiter) and limiter.rate == pytest.approx(97)


def test_with_a_redis_broker_the_limit_is_shared_through_redis(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6399/0"
    settings.VIBES_COMPANY_KEY = "acme"
    limiter = build_rate_limiter()
    assert isinstance(limiter, RedisRateLimiter) and limiter.key == "vibes:rate-limit:acme"
