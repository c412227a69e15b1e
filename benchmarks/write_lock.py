"""Who holds SQLite's write lock, and for how long (the trigger benchmark's `--trace-write-lock`).

On SQLite one connection at a time may write. With `transaction_mode`
IMMEDIATE every `transaction.atomic()` takes the write lock at its BEGIN and
holds it to its COMMIT; a write outside a transaction (the callbacks' one
INSERT) holds it for its statement. `install` (in each web worker, by
gunicorn's `post_fork`: `gunicorn -c python:benchmarks.write_lock`) times
both: how long each waited for the lock and held it, and where in this
project's code it was taken, written to var/write-lock/<pid>.jsonl.
`report` sums them up by place, the longest holders first.
"""

import atexit
import json
import os
import sys
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
TRACE_DIR = BASE_DIR / "var" / "write-lock"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _where() -> str:
    """The innermost three frames of this project's own code, innermost first."""
    frames = []
    for frame in reversed(traceback.extract_stack(limit=40)[:-3]):
        name = frame.filename
        if not name.startswith(str(BASE_DIR)) or "/.venv/" in name or name.endswith("write_lock.py"):
            continue
        frames.append(f"{Path(name).relative_to(BASE_DIR).with_suffix('')}.{frame.name}:{frame.lineno}")
        if len(frames) == 3:
            break
    return " < ".join(frames) or "?"


class _Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.records: list[list] = []
        atexit.register(self.flush)

    def add(self, record: list) -> None:
        with self.lock:
            self.records.append(record)
            if len(self.records) >= 500:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if self.records:
            with self.path.open("a") as out:
                out.writelines(json.dumps(record) + "\n" for record in self.records)
            self.records = []


def install() -> None:
    """Time every write transaction and every write outside one, in this process."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    DatabaseWrapper = type(connections["default"])  # noqa: N806 (the configured backend's class)

    TRACE_DIR.mkdir(parents=True, exist_ok=True)
    recorder = _Recorder(TRACE_DIR / f"{os.getpid()}.jsonl")
    begin, commit, rollback = (
        DatabaseWrapper._start_transaction_under_autocommit,
        DatabaseWrapper._commit,
        DatabaseWrapper._rollback,
    )

    def traced_begin(self):
        asked = time.time()
        begin(self)
        self._write_lock = (asked, time.time(), _where(), threading.current_thread().name)

    def ended(self, how):
        taken = getattr(self, "_write_lock", None)
        if taken:
            self._write_lock = None
            asked, got, where, thread = taken
            recorder.add([how, where, thread, asked, got - asked, time.time() - got])

    def traced_commit(self):
        try:
            return commit(self)
        finally:
            ended(self, "commit")

    def traced_rollback(self):
        try:
            return rollback(self)
        finally:
            ended(self, "rollback")

    def outside_transaction(execute, sql, params, many, context):
        connection = context["connection"]
        if connection.in_atomic_block or not sql.lstrip().upper().startswith(WRITES):
            return execute(sql, params, many, context)
        asked = time.time()
        try:
            return execute(sql, params, many, context)
        finally:
            # The wait and the hold of one statement cannot be told apart: all counted as held.
            recorder.add(
                ["statement", _where(), threading.current_thread().name, asked, 0.0, time.time() - asked]
            )

    def wrap(connection, **_kwargs):
        if outside_transaction not in connection.execute_wrappers:
            connection.execute_wrappers.append(outside_transaction)

    DatabaseWrapper._start_transaction_under_autocommit = traced_begin
    DatabaseWrapper._commit = traced_commit
    DatabaseWrapper._rollback = traced_rollback
    connection_created.connect(wrap, weak=False)
    threading.Thread(target=_flush_every_second, args=(recorder,), daemon=True).start()


def _flush_every_second(recorder: _Recorder) -> None:
    while True:
        time.sleep(1)
        recorder.flush()


def post_fork(server, worker):  # gunicorn's hook: this module is also its config
    install()


def report(*, since: float = 0.0, top: int = 25) -> str:
    """The write transactions traced so far, summed by place: a Markdown table."""
    places = defaultdict(lambda: [0, 0.0, 0.0, 0.0, []])
    first, last = None, None
    for path in TRACE_DIR.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            how, where, thread, asked, waited, held = json.loads(line)
            if asked < since:
                continue
            first = asked if first is None else min(first, asked)
            last = asked + waited + held if last is None else max(last, asked + waited + held)
            place = places[(how if how == "statement" else "transaction", thread.split("-")[0], where)]
            place[0] += 1
            place[1] += held
            place[2] = max(place[2], held)
            place[3] += waited
            place[4].append(held)
    if not places:
        return "no write traced"
    span = last - first
    held = sum(place[1] for place in places.values())
    lines = [
        f"{sum(place[0] for place in places.values())} writes over {span:.1f} s; the lock held "
        f"{held:.1f} s ({held / span:.0%} of the time)",
        "",
        "| kind | thread | where | count | held s | held / s of run | mean ms | p95 ms | max ms | waited s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (kind, thread, where), (count, total, longest, waited, helds) in sorted(
        places.items(), key=lambda item: -item[1][1]
    )[:top]:
        helds.sort()
        lines.append(
            f"| {kind} | {thread} | {where} | {count} | {total:.2f} | {total / span:.3f} | "
            f"{total / count * 1000:.1f} | {helds[int(0.95 * (len(helds) - 1))] * 1000:.1f} | "
            f"{longest * 1000:.1f} | {waited:.2f} |"
        )
    return "\n".join(lines)


def clear() -> None:
    for path in TRACE_DIR.glob("*.jsonl"):
        path.unlink()


if __name__ == "__main__":
    print(report(top=int(sys.argv[1]) if len(sys.argv) > 1 else 25))
