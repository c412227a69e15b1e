"""Fault injection: how the simulator misbehaves like a real service under load.

The switches: a share of 5xx answers (half before the request is processed,
half after), 429 above a rate of requests, added latency, requests that hang
past the client's read timeout after being processed, and, like carriers, a
share of SMS whose delivery receipt says "failed".

The rate is counted as Vibes counts it: by the time requests arrived, in any
one-second window.
"""

import bisect
from dataclasses import dataclass

# The switches' names, as `set_faults` and `POST /_simulator/faults` take them.
SWITCHES = ("error_rate", "rate_limit", "latency_ms", "timeout_rate", "hang_seconds", "receipt_failure_rate")


@dataclass(frozen=True)
class Verdict:
    """What the switches make of one API request, decided as it arrives."""

    rate_limited: bool  # refused with 429 before processing
    error_before: bool  # a 503 before processing
    error_after: bool  # a 500 after processing
    hangs: bool  # processed, then answered later than the client waits
    latency_ms: float
    hang_seconds: float


class RateWindows:
    """The arrivals of every API request, and of those not refused with 429."""

    def __init__(self):
        self.arrivals = ArrivalWindow()
        self.admitted = ArrivalWindow()

    def judge(self, arrived: float, faults: dict, random) -> Verdict:
        """Count a request's arrival and decide its faults; call with the simulator's lock held."""
        self.arrivals.add(arrived)
        # Like Vibes: refused when admitting it would put more than the
        # limit in some one-second window of arrivals.
        limited = bool(faults["rate_limit"]) and self.admitted.busiest(arrived) >= faults["rate_limit"]
        if not limited:
            self.admitted.add(arrived)
        roll, timeout_roll = random.random(), random.random()
        return Verdict(
            rate_limited=limited,
            error_before=roll < faults["error_rate"] / 2,
            error_after=roll < faults["error_rate"],
            hangs=timeout_roll < faults["timeout_rate"],
            latency_ms=faults["latency_ms"],
            hang_seconds=faults["hang_seconds"],
        )


class ArrivalWindow:
    """Arrival times, and the busiest one-second window among them.

    Handler threads record requests in the order they get to them, not the
    order they arrived, so times are kept sorted and each carries the number
    of arrivals in the second up to it (a busiest window ends at an arrival).
    A late recording adds one to the seconds it falls in. Times older than
    KEEP seconds before the newest are forgotten.
    """

    KEEP = 10.0

    def __init__(self):
        self._times: list[float] = []
        self._counts: list[int] = []  # for each time t, the arrivals in (t - 1 s, t]
        self.peak = 0

    def _later_seconds(self, at: float) -> range:
        """The indexes of the times whose second, ending there, holds `at`."""
        first = bisect.bisect_left(self._times, at)
        return range(first, bisect.bisect_left(self._times, at, lo=first, key=_second_before))

    def _second_up_to(self, at: float) -> int:
        return bisect.bisect_right(self._times, at) - bisect.bisect_right(self._times, _second_before(at))

    def busiest(self, at: float) -> int:
        """The most arrivals in any one-second window that would hold `at`, without it."""
        return max([self._second_up_to(at), *(self._counts[index] for index in self._later_seconds(at))])

    def add(self, at: float) -> None:
        times, counts = self._times, self._counts
        later = self._later_seconds(at)
        for index in later:
            counts[index] += 1
            self.peak = max(self.peak, counts[index])
        count = self._second_up_to(at) + 1
        times.insert(later.start, at)
        counts.insert(later.start, count)
        self.peak = max(self.peak, count)
        if times[0] < times[-1] - 2 * self.KEEP:
            keep = bisect.bisect_left(times, times[-1] - self.KEEP)
            del times[:keep], counts[:keep]


def _second_before(at: float) -> float:
    return at - 1.0
