"""Where background work runs: campaign runs, lead imports, subscriber syncs.

`RUNNER_BACKGROUND` says where: on Celery workers
("celery", or "auto" when a broker is configured), in a thread of this
process (the default without a broker), or "inline", at commit in this
process, for tests.
"""

import logging
import os
import threading
import time
import weakref

from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

# The threads started here that may still run, and the long-lived threads of this
# process that are woken for work (WokenThread): the tests wait for
# both before they empty the database, which a thread still writing to it would
# deadlock, and before the next test, which a leftover write would disturb.
_threads = weakref.WeakSet()
_woken_workers = []


def background_run(task, *args, name: str, celery_tasks: int = 1) -> None:
    """Have the Celery task `task(*args)` run in the background once the transaction commits.

    `name` names the thread it runs in, when it runs in one. On Celery,
    `celery_tasks` copies of the task are queued, for work that several
    workers share (a campaign run's batches).
    """
    mode = settings.RUNNER_BACKGROUND
    if runs_on_celery():
        for _ in range(celery_tasks):
            transaction.on_commit(lambda: task.delay(*args))
    elif mode == "inline":
        transaction.on_commit(lambda: task(*args))
    else:
        transaction.on_commit(lambda: _start_thread(task, args, name))


def runs_on_celery() -> bool:
    """True when background work goes to Celery workers (RUNNER_BACKGROUND)."""
    mode = settings.RUNNER_BACKGROUND
    return mode == "celery" or (mode == "auto" and bool(settings.CELERY_BROKER_URL))


def _start_thread(task, args, name: str) -> None:
    thread = threading.Thread(target=_in_thread, args=(task, args, name), name=name, daemon=True)
    _threads.add(thread)
    thread.start()


def background_threads_join(timeout: float = 60.0) -> None:
    """Wait until the background work started so far has finished (each up to `timeout`):
    the threads started here, and the woken workers' rounds, which may start threads."""
    for _ in range(3):
        for worker in _woken_workers:
            worker.wait_idle(timeout)
        for thread in list(_threads):
            thread.join(timeout)
        if not any(thread.is_alive() for thread in list(_threads)):
            return


def _in_thread(task, args, name: str) -> None:
    close_old_connections()
    try:
        task(*args)
    except Exception:
        logger.exception("background work %s failed", name)
    finally:
        close_old_connections()


class WokenThread:
    """One thread of this process that does its work when woken, and once more when
    woken meanwhile: work that starts after every wake-up, never one per wake-up
    (the callbacks' applier, the senders of the applier's and the dispatcher's
    Celery tasks).

    Started on the first wake-up (again in a forked worker: a thread does not
    survive a fork). `pause`: seconds it rests after each round.
    """

    def __init__(self, name: str, work, *, pause: float = 0.0):
        self.name, self.work, self.pause = name, work, pause
        self.woken = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0
        # Set while no round runs (tests wait for it before they empty the database).
        self.idle = threading.Event()
        self.idle.set()
        _woken_workers.append(self)

    def wake(self) -> None:
        with self.lock:
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.woken, self.pid = threading.Event(), os.getpid()
                self.thread = threading.Thread(
                    target=self._run, args=(self.woken,), name=self.name, daemon=True
                )
                self.thread.start()
            self.idle.clear()
            self.woken.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until no round runs or is due; True when none does."""
        thread = self.thread
        if thread is None or self.pid != os.getpid() or not thread.is_alive():
            return True
        deadline = time.monotonic() + timeout
        while not self.idle.wait(max(0.0, deadline - time.monotonic())) or self.woken.is_set():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self, woken: threading.Event) -> None:
        while True:
            woken.wait()
            # Cleared before the work: a wake-up meanwhile makes another round.
            woken.clear()
            try:
                self.work()
            except Exception:
                logger.exception("background work %s failed; the periodic job does what waits", self.name)
            # Idle: the connection is checked (or closed past its age) before the next round.
            close_old_connections()
            if self.pause:
                time.sleep(self.pause)
            with self.lock:
                if not woken.is_set():
                    self.idle.set()
