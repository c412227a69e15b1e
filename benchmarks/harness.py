"""What the benchmarks share: a scratch database in a child process, the
simulator in a process of its own, and a machine settled between measurements."""

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

from smscampaigns.models import Lead
from vibes.conf import reset_client

# The credentials the simulator and the client agree on.
COMPANY_KEY = USERNAME = "bench"
PASSWORD = "bench-password"


def run_in_scratch(
    command: str,
    args: list[str],
    *,
    scratch: str,
    database_url: str | None = None,
    env=None,
    keep: bool = False,
) -> None:
    """Run `manage.py <command> --in-scratch <args>` in a child process on
    `database_url`, or on a new SQLite file var/<scratch>.sqlite3 (never the
    developer's database; `keep`: the one a previous run left), and fail as
    the child failed."""
    if not database_url:
        path = Path(settings.BASE_DIR) / "var" / f"{scratch}.sqlite3"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            if not keep:
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        database_url = f"sqlite:///{path}"
    argv = [sys.executable, "manage.py", command, "--in-scratch", *args]
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": settings.SECRET_KEY, **(env or {})}
    code = subprocess.call(argv, env=env, cwd=settings.BASE_DIR)
    if code:
        raise CommandError(f"the benchmark failed (exit {code})", returncode=code)


def after_inserting_leads(cursor) -> None:
    """After leads were written with ids of their own: PostgreSQL's id
    sequence goes on after them, and the query planner knows the new tables."""
    if connection.vendor == "postgresql":
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{Lead._meta.db_table}', 'id'), "
            f"(SELECT MAX(id) FROM {connection.ops.quote_name(Lead._meta.db_table)}))"
        )
    cursor.execute("ANALYZE")


def settle_disk() -> None:
    """Checkpoint SQLite's log and flush the OS's dirty pages, so that one
    measurement does not pay for the writes of the one before."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    time.sleep(1)


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> bool:
    """Start measuring the peak resident memory afresh (Linux: `clear_refs` 5),
    so that a phase is measured without what came before it, such as building
    the data; False where the system cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_since_reset_mb() -> float | None:
    """The peak resident memory since `reset_peak_rss` (Linux's VmHWM); None where unknown."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimulatorProcess:
    """`manage.py vibes_simulator` in a process of its own, so that serving
    requests does not share the benchmark's CPU time, with this process's
    Vibes settings pointing at it and its client keeping the same rate limit
    (0: none). It posts no callbacks: the benchmarks measure the calls, not an
    app receiving them.

    with SimulatorProcess(rate_limit=100, latency_ms=20) as simulator:
        ...  # get_client() talks to it; simulator.stats() is what it saw
    """

    def __init__(self, *, rate_limit: float, latency_ms: float):
        self.rate_limit, self.latency_ms = rate_limit, latency_ms
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        argv = [
            sys.executable, "manage.py", "vibes_simulator", "--port", str(self.port),
            "--rate-limit", str(self.rate_limit), "--latency-ms", str(self.latency_ms),
            "--company-key", COMPANY_KEY, "--username", USERNAME, "--password", PASSWORD,
            "--callback-url", "",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.stats()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise CommandError("the simulator did not answer within 60 s") from None
                time.sleep(0.2)
        settings.VIBES_PLATFORM_URL = settings.VIBES_CONNECT_URL = self.url
        settings.VIBES_COMPANY_KEY, settings.VIBES_USERNAME = COMPANY_KEY, USERNAME
        settings.VIBES_PASSWORD = PASSWORD
        settings.VIBES_RATE_LIMIT = self.rate_limit
        settings.VIBES_DELIVERY_RECEIPT_URL = ""
        reset_client()
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)

    def stats(self) -> dict:
        """What the simulator counted: requests by status, the busiest second, messages..."""
        return requests.get(f"{self.url}/_simulator/stats", timeout=30).json()
