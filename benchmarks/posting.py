"""Posting to the app over HTTP as Vibes does: gunicorn serving it, and a client
that keeps a fixed schedule.

The client is one asyncio loop with keep-alive connections and every request
written beforehand (`http_request`); `post_on_schedule` makes request i due
at `start + i / rate` (an open loop) and times each answer from the moment it
was due, so that a slow server cannot hide behind a client that waits for it.
Used by the callbacks benchmark (`callbacks.py`) and the trigger benchmark
(`triggers.py`).
"""

import asyncio
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def http_request(path: str, body: dict, *, auth: str, event_type: str = "") -> bytes:
    """The bytes of a callback's POST: JSON `body`, Basic `auth` (the header's value)."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    )
    if event_type:
        head += f"X-Vibes-Event-Type: {event_type}\r\n"
    return (head + "\r\n").encode() + data


@dataclass
class Stage:
    """What one rate's requests came to. Request i was due at `started_at + i / rate` (wall clock)."""

    rate: float
    latencies: list[float] = field(default_factory=list)  # answers, in the order they came
    errors: dict[str, int] = field(default_factory=dict)
    oks: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    started_at: float = 0.0  # time.time() when request 0 was due
    sent_late: int = 0  # requests sent more than 0.1 s after they were due (every connection busy)
    answered_ok: list[int] = field(default_factory=list)  # the indexes of the requests answered 200
    given_up: int = 0  # requests never sent: still waiting for a connection `give_up_after` s after due

    def due_at(self, index: int) -> float:
        return self.started_at + index / self.rate


async def post(port: int, connection, request: bytes):
    """One request on a kept-alive connection (opened again when the server closed it):
    (status, the connection to use next)."""
    for attempt in (1, 2):
        if connection is None:
            connection = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = connection
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            connection = None
            if attempt == 2:
                raise
            continue  # a kept-alive connection the server had closed: nothing was read
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0"):
            writer.close()
            connection = None
        return status, connection
    raise AssertionError("unreachable")


async def post_on_schedule(
    port: int, rate: float, requests: list[bytes], connections: int, *, give_up_after: float | None = None
) -> Stage:
    """Post `requests` at `rate` a second, request i due at start + i / rate, on at
    most `connections` connections at once. `give_up_after`: a request not sent
    that many seconds after it was due is not sent (counted), so that a server
    far behind cannot stretch a run of minutes into hours."""
    stage = Stage(rate)
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def sender():
        connection = None
        while True:
            item = await queue.get()
            if item is None:
                return
            index, due, request = item
            if give_up_after is not None and loop.time() - due > give_up_after:
                stage.given_up += 1
                continue
            stage.sent_late += loop.time() - due > 0.1
            try:
                status, connection = await post(port, connection, request)
            except (OSError, asyncio.IncompleteReadError) as error:
                connection = None
                stage.errors[type(error).__name__] = stage.errors.get(type(error).__name__, 0) + 1
                continue
            stage.latencies.append(loop.time() - due)
            if status == 200:
                stage.oks += 1
                stage.answered_ok.append(index)
            else:
                stage.errors[str(status)] = stage.errors.get(str(status), 0) + 1

    senders = [asyncio.create_task(sender()) for _ in range(connections)]
    cpu_before = cpu()
    start = loop.time()
    stage.started_at = time.time()
    for index, request in enumerate(requests):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, due, request))
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    stage.elapsed = loop.time() - start
    stage.client_cpu = (cpu() - cpu_before) / stage.elapsed
    return stage


def cpu() -> float:
    """CPU seconds this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def gunicorn_start(
    *, workers: int, log_name: str, worker_class: str = "sync", threads: int = 1, env=None, config: str = ""
) -> tuple[subprocess.Popen, int]:
    """gunicorn serving the app on a free loopback port (its output in var/<log_name>.log),
    once it answers: (the process, its port). `env`: the environment of its workers."""
    from benchmarks.harness import free_port
    from tests.waiting import wait_for_server

    port = free_port()
    log = BASE_DIR / "var" / f"{log_name}.log"
    log.parent.mkdir(exist_ok=True)
    argv = [
        sys.executable, "-m", "gunicorn", "smscampaigns.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
        "--backlog", "2048",
    ]  # fmt: skip
    if config:
        argv += ["--config", config]
    with log.open("w") as out:
        server = subprocess.Popen(argv, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_for_server(f"http://127.0.0.1:{port}/vibes/callbacks/", process=server)
    return server, port
