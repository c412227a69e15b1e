"""Waiting in tests: for a state, up to a deadline, never one short timeout.

The suite runs on small machines that are rarely idle: a server may take many
seconds to start or to answer its first request (gunicorn accepts connections
before its workers have loaded Django), and a callback may take a while to
arrive. So every wait polls the state it needs until a generous deadline, and
only a state that never comes fails the test, with a message that says which.
"""

import subprocess
import time

import requests

# Long enough for a process to start on a fully loaded machine; a test that
# passes never waits for it.
DEADLINE = 60.0

# One attempt of a readiness probe: an answer slower than this is asked for again.
PROBE_TIMEOUT = 10.0

# For the simulator to deliver the callbacks of a whole run: thousands of
# delivery receipts, each written by the app, queue up on a loaded machine.
CALLBACKS_DEADLINE = 300.0


def wait_until(condition, *, what: str = "the condition", timeout: float = DEADLINE, interval: float = 0.1):
    """Call `condition` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_for_server(
    url: str, *, process: subprocess.Popen | None = None, timeout: float = DEADLINE
) -> requests.Response:
    """Wait until `url` answers at all (any status), and return the answer.

    Connection errors and timeouts are tried again until the deadline; a
    `process` that exits meanwhile fails the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{url}: the server exited with status {process.returncode} before answering"
            )
        remaining = deadline - time.monotonic()
        try:
            return requests.get(url, timeout=max(1.0, min(PROBE_TIMEOUT, remaining)), allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as error:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"gave up after {timeout:g} s waiting for {url} to answer ({error})"
                ) from None
        time.sleep(0.1)


def stop(*processes: subprocess.Popen, timeout: float = DEADLINE) -> None:
    """Stop the processes (SIGTERM) and wait for them; kill any still running at the deadline."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def simulator_delivered_callbacks(simulator_url: str, *, timeout: float = CALLBACKS_DEADLINE) -> bool:
    """Wait until a simulator in another process delivered every callback due so
    far (delivery receipts included); False if it still had some at the deadline."""
    answer = requests.post(
        f"{simulator_url}/_simulator/drain", json={"timeout": timeout}, timeout=timeout + DEADLINE
    )
    return answer.json() == {"drained": True}
