"""The client-side rate limiter: what arrives at Vibes in any one second stays within the limit."""

import bisect
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE
from vibes.conf import build_rate_limiter
from vibes.exceptions import VibesConnectionError
from vibes.ratelimit import WINDOW, RateLimiter, RedisRateLimiter
from vibes.simulator import VibesSimulator

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def busiest(times, window):
    """The most times in any half-open interval of `window` seconds."""
    times = sorted(times)
    return max(index + 1 - bisect.bisect_right(times, at - window) for index, at in enumerate(times))


def call_through(limiters, *, threads, calls, late_every=0):
    """Threads make calls through the limiters (one each, in turn), and every
    `late_every`-th call is held up between being allowed and being written
    out, as a thread descheduled on a busy machine would be. Returns when each
    call was written out (here, its arrival)."""
    arrivals = []
    lock = threading.Lock()

    def work(limiter, index):
        for number in range(calls):
            permit = limiter.acquire()
            if late_every and (index + number) % late_every == 0:
                time.sleep(0.04)
            with lock:
                arrivals.append(time.monotonic() if isinstance(limiter, RateLimiter) else time.time())
            permit.sent()

    workers = [
        threading.Thread(target=work, args=(limiters[index % len(limiters)], index))
        for index in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return arrivals


def test_calls_late_between_their_start_and_the_wire_never_crowd_one_window():
    # Spaced starts alone let the late calls arrive together with the calls
    # after them: more than 20 in some 0.2 s.
    arrivals = call_through([RateLimiter(20, window=0.2)], threads=8, calls=12, late_every=3)
    assert len(arrivals) == 96
    assert busiest(arrivals, 0.2) <= 20


def test_calls_are_spaced_evenly_not_sent_in_a_burst():
    limiter = RateLimiter(200, window=1.0)
    began = time.monotonic()
    arrivals = call_through([limiter], threads=4, calls=10)
    # 40 calls at 200/s: slots 5 ms apart, so the last one no earlier than 39 × 5 ms,
    # though the window alone would let all 40 go at once.
    assert max(arrivals) - began >= 39 / 200 - 0.001


def test_rate_limiter_of_zero_or_none_is_unlimited():
    for limit in (0, None, -1):
        limiter = RateLimiter(limit)
        for _ in range(1000):
            assert limiter.acquire() is None


def test_a_limit_below_one_call_per_second_stretches_the_window():
    limiter = RateLimiter(0.5, window=0.2)
    limiter.acquire().sent()
    began = time.monotonic()
    limiter.acquire().sent()
    # Half a call per 0.2 s is one per 0.4 s: the second waits for the first to leave the window.
    assert time.monotonic() - began >= 0.4 - 0.01


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (make test-postgres)")
def test_limiters_sharing_redis_keep_one_window_together():
    # Two limiters stand for two worker processes: each alone would allow 20 per 0.4 s.
    key = f"test-rate-limit-{time.monotonic_ns()}"
    limiters = [RedisRateLimiter(REDIS_URL, 20, window=0.4, key=key) for _ in range(2)]
    arrivals = call_through(limiters, threads=8, calls=10, late_every=3)
    assert len(arrivals) == 80
    assert busiest(arrivals, 0.4) <= 20
    # 80 calls, 20 per 0.4 s: the last no earlier than three windows after the first.
    assert max(arrivals) - min(arrivals) >= 3 * 0.4 - 0.05


def test_the_client_counts_the_vibes_limit_over_a_second_and_a_network_margin(settings):
    settings.VIBES_RATE_LIMIT = 100
    settings.CELERY_BROKER_URL = ""
    limiter = build_rate_limiter()
    assert isinstance(limiter, RateLimiter)
    assert (limiter.limit, limiter.window) == (100, WINDOW)
    assert 1.0 < WINDOW <= 1.05


def test_with_a_redis_broker_the_limit_is_shared_through_redis(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6399/0"
    settings.VIBES_COMPANY_KEY = "acme"
    limiter = build_rate_limiter()
    assert isinstance(limiter, RedisRateLimiter) and limiter.key == "vibes:rate-limit:acme"
    assert (limiter.limit, limiter.window) == (100, WINDOW)


class RecordingLimiter:
    """Unlimited, but notes whether each call was reported sent, and when."""

    def __init__(self):
        self.reported = threading.Event()

    def acquire(self):
        return self

    def sent(self):
        self.reported.set()


def test_the_client_reports_a_call_sent_once_written_not_once_answered():
    answer = threading.Event()

    class Vibes(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            answer.wait(DEADLINE)  # no answer until the test saw the call reported sent
            body = b'{"message_id": "M1", "status": "accepted"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Vibes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    limiter = RecordingLimiter()
    client = make_client(f"http://127.0.0.1:{server.server_port}", rate_limiter=limiter, read_timeout=60)
    caller = threading.Thread(target=client.send_sms, kwargs={"to": "+15551230001", "text": "Hi"})
    try:
        caller.start()
        assert limiter.reported.wait(DEADLINE), "the call was not reported sent while Vibes had not answered"
    finally:
        answer.set()
        caller.join(DEADLINE)
        server.shutdown()
        server.server_close()


def test_a_call_that_never_reached_vibes_still_counts_as_sent():
    with VibesSimulator() as stopped:
        url = stopped.url  # nobody listens there any more
    limiter = RecordingLimiter()
    client = make_client(url, rate_limiter=limiter, max_attempts=1)
    with pytest.raises(VibesConnectionError):
        client.list_subscription_lists()
    assert limiter.reported.is_set()
