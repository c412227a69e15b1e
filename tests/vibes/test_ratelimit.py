"""The client-side rate limiter."""

import threading
import time

from vibes.ratelimit import RateLimiter


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
