"""Where background work runs: campaign runs, lead imports, subscriber syncs.

`RUNNER_BACKGROUND` says where: on Celery workers
("celery", or "auto" when a broker is configured), in a thread of this
process (the default without a broker), or "inline", at commit in this
process, for tests.
"""

import logging
import threading
import weakref

from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

# The threads started here that may still run, and the long-lived workers of this
# process that are woken for work (their `wait_idle(timeout)`): the tests wait for
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
    if mode == "celery" or (mode == "auto" and settings.CELERY_BROKER_URL):
        for _ in range(celery_tasks):
            transaction.on_commit(lambda: task.delay(*args))
    elif mode == "inline":
        transaction.on_commit(lambda: task(*args))
    else:
        transaction.on_commit(lambda: _start_thread(task, args, name))


def _start_thread(task, args, name: str) -> None:
    thread = threading.Thread(target=_in_thread, args=(task, args, name), name=name, daemon=True)
    _threads.add(thread)
    thread.start()


def woken_worker_register(worker) -> None:
    """Count `worker` (with a `wait_idle(timeout)` method) among this process's background work."""
    _woken_workers.append(worker)


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
