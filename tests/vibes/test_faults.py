"""Under faults (5xx, 429 above a rate) every call ends done or with a typed
error, and no POST is ever processed twice."""

import itertools
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from tests.vibes.simulated import make_client
from vibes.exceptions import VibesError, VibesRateLimited, VibesUncertain
from vibes.ratelimit import RateLimiter


def test_mixed_calls_under_5xx_and_429_end_cleanly_and_posts_are_never_processed_twice(vibes_simulator):
    for n in range(40):
        vibes_simulator.add_subscriber("101", f"+1555300{n:04d}", external_person_id=f"sub-{n}")
    vibes_simulator.set_faults(error_rate=0.2, rate_limit=50)
    # Limited above the simulator's rate on purpose, so 429s happen.
    client = make_client(
        vibes_simulator.url, rate_limiter=RateLimiter(80), max_attempts=8, backoff_base=0.02, backoff_max=0.2
    )
    calls = (
        [("POST", lambda n=n: client.send_sms(to=f"+1555400{n:04d}", text=f"message {n}")) for n in range(80)]
        + [
            (
                "POST",
                lambda n=n: client.add_participant(
                    "AC-NEWS-WEB", mdn=f"+1555500{n:04d}", external_person_id=f"new-{n}"
                ),
            )
            for n in range(50)
        ]
        + [
            ("GET", lambda n=n: client.get_subscription("101", external_person_id=f"sub-{n}"))
            for n in range(40)
        ]
        + [("GET", lambda n=n: client.find_person(f"+1555300{n:04d}")) for n in range(20)]
        + [
            (
                "DELETE",
                lambda n=n: client.unsubscribe("101", external_person_id=f"sub-{n}", mdn=f"+1555300{n:04d}"),
            )
            for n in range(20, 40)
        ]
    )
    # Interleave the kinds of call, as a campaign run with several steps would.
    calls = [
        c for c in itertools.chain.from_iterable(itertools.zip_longest(*[calls[i::5] for i in range(5)])) if c
    ]

    def run(call):
        method, fn = call
        try:
            fn()
            return method, None
        except VibesError as error:
            return method, error

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(run, calls))

    assert len(outcomes) == 210
    errors = [(method, error) for method, error in outcomes if error is not None]
    # A POST fails only as uncertain (5xx after sending) or, rarely, still rate limited.
    assert all(isinstance(e, (VibesUncertain, VibesRateLimited)) for m, e in errors if m == "POST")
    assert not any(isinstance(e, VibesUncertain) for m, e in errors if m != "POST")

    log = vibes_simulator.requests_log()
    assert any(entry["status"] == 429 for entry in log), "the rate limit was exercised"
    assert any(entry["status"] >= 500 for entry in log), "server errors were exercised"
    posts = defaultdict(list)
    for entry in log:
        if entry["method"] == "POST":
            posts[json.dumps(json.loads(entry["body"]), sort_keys=True)].append(entry)
    for body, attempts in posts.items():
        assert sum(a["processed"] for a in attempts) <= 1, f"processed twice: {body}"
        # Every attempt but the last was refused with 429 before processing.
        assert all(a["status"] == 429 and not a["processed"] for a in attempts[:-1]), attempts
    uncertain = sum(isinstance(e, VibesUncertain) for _, e in errors)
    assert uncertain == sum(attempts[-1]["status"] >= 500 for attempts in posts.values())
    assert len(vibes_simulator.messages()) == sum(
        attempts[-1]["processed"] for body, attempts in posts.items() if '"text"' in body
    )
