"""Delayed jobs of the simulator: delivery receipts, auto-confirmations, expiries."""

import heapq
import itertools
import logging
import threading
import time
from collections import Counter

logger = logging.getLogger("vibes.simulator")


class Scheduler:
    """One thread running delayed jobs, not a Timer each.

    Jobs carry a tag; `count(tag)` says how many are waiting or running, so
    `wait_for_callbacks` can wait for receipts that are not queued yet.
    """

    def __init__(self):
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._tags: Counter = Counter()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="vibes-sim-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, tag: str, fn, *args):
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), tag, fn, args))
            self._tags[tag] += 1
            self._cond.notify()

    def count(self, tag: str) -> int:
        with self._cond:
            return self._tags[tag]

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {tag: n for tag, n in self._tags.items() if n}

    def clear(self):
        with self._cond:
            for _, _, tag, _, _ in self._heap:
                self._tags[tag] -= 1
            self._heap.clear()

    def stop(self):
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, tag, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:  # a job's failure must not stop the scheduler
                logger.exception("Vibes simulator: scheduled job failed")
            finally:
                with self._cond:
                    self._tags[tag] -= 1
