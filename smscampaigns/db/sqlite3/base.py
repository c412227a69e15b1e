"""SQLite whose writers take turns in the order they came (the database ENGINE on SQLite).

SQLite lets one connection at a time write. A writer that finds the lock
taken is left to SQLite's busy handler, which sleeps and tries again: 1 ms,
then longer, then every 100 ms. Under a steady stream of short transactions
(callbacks stored, the applier, the trigger dispatcher and runs, each in a
thread of its own) a writer that has waited a while keeps missing the
moments the lock is free, while newer ones take it: callbacks waited tens of
seconds for a one-statement insert. Here writers queue for the lock instead
of polling for it:

- the writers of one process in the order they came, each handing the turn
  to the next the moment it commits (`WriteTurns`);
- processes at a lock on a file beside the database (`<database>-lock`,
  `flock`), which the one writer of a process whose turn it is waits for
  in the kernel: released at every commit, it goes to a process waiting
  for it as readily as to the next writer of the same process, and the
  kernel releases it when a process dies.

What takes a turn: a transaction (its BEGIN IMMEDIATE to its COMMIT or
ROLLBACK) and a write outside one (an INSERT, UPDATE or DELETE in autocommit).
Reads never wait here. A writer that waited the connection's `timeout`
goes ahead without its turn and meets SQLite's lock as before: a writer
that never ends cannot hang the others past what SQLite itself allowed.
"""

import collections
import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class ProcessesLock:
    """A lock on a file shared by the processes writing to one database. Only the
    writer of this process whose turn it is asks for it (one at a time)."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._held_by = -1  # the file descriptor holding the lock

    def acquire(self, timeout: float) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._held_by = self._fd
            return True
        # Waited for in the kernel, by a helper thread on a descriptor of its
        # own, so that the wait can end at the deadline: a lock that comes
        # after it is given back at once.
        request = _Request(os.open(self.path, os.O_RDWR | os.O_CLOEXEC))
        threading.Thread(target=request.wait_for_lock, daemon=True, name="sqlite-write-lock").start()
        if request.granted.wait(timeout) or not request.abandon():
            self._held_by = request.fd
            return True
        return False

    def release(self) -> None:
        fd, self._held_by = self._held_by, -1
        if fd == self._fd:
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif fd >= 0:
            os.close(fd)  # the lock goes with its own descriptor


class _Request:
    def __init__(self, fd: int):
        self.fd = fd
        self.granted = threading.Event()
        self._guard = threading.Lock()
        self._abandoned = False

    def wait_for_lock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        with self._guard:
            if self._abandoned:
                os.close(self.fd)
                return
            self.granted.set()

    def abandon(self) -> bool:
        """Give up waiting; False when the lock came meanwhile (it is then held)."""
        with self._guard:
            if self.granted.is_set():
                return False
            self._abandoned = True
            return True


class WriteTurns:
    """Turns at writing to one database: this process's writers in the order they
    asked (re-entrant for the one whose turn it is), then the lock across processes."""

    def __init__(self, processes: ProcessesLock | None):
        self._guard = threading.Lock()
        self._waiting: collections.deque[tuple[threading.Event, int]] = collections.deque()
        self._owner: int | None = None
        self._depth = 0
        self._processes = processes

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None:
                self._owner, self._depth = me, 1
                turn = None
            else:
                turn = (threading.Event(), me)
                self._waiting.append(turn)
        if turn is not None and not turn[0].wait(timeout):
            with self._guard:
                if not turn[0].is_set():
                    self._waiting.remove(turn)
                    return False
            # handed over just as the wait ran out
        if self._processes is None or self._processes.acquire(max(0.0, deadline - time.monotonic())):
            return True
        self._hand_over()
        return False

    def release(self) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
        if self._processes is not None:
            # Let go across processes first: a writer of another process that
            # waits gets it as readily as the next one of this process.
            self._processes.release()
        self._hand_over()

    def _hand_over(self) -> None:
        with self._guard:
            if self._waiting:
                # The next in line owns the turn from now: nobody can take it in between.
                event, self._owner = self._waiting.popleft()
                self._depth = 1
                event.set()
            else:
                self._owner, self._depth = None, 0


# One per database file in this process; a forked child makes its own.
_turns: dict[str, WriteTurns] = {}
_turns_guard = threading.Lock()


def _turns_for(name: str) -> WriteTurns:
    with _turns_guard:
        if name not in _turns:
            processes = None
            if name != ":memory:" and "mode=memory" not in name:
                try:
                    processes = ProcessesLock(f"{name}-lock")
                except OSError:  # a folder this process cannot write to: SQLite's busy handler alone
                    processes = None
            _turns[name] = WriteTurns(processes)
        return _turns[name]


def _forget_turns():
    global _turns_guard
    _turns.clear()
    _turns_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_turns)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._holds_turn = False

    @property
    def _write_turns(self) -> WriteTurns:
        return _turns_for(str(self.settings_dict["NAME"]))

    def _turn_timeout(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def _take_turn(self) -> None:
        if not self._holds_turn and self._write_turns.acquire(self._turn_timeout()):
            self._holds_turn = True

    def _end_turn(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            self._write_turns.release()

    def _start_transaction_under_autocommit(self):
        self._take_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            if self.connection is None or not self.connection.in_transaction:
                self._end_turn()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            if self.connection is None or not self.connection.in_transaction:
                self._end_turn()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._end_turn()

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=WriteTurnCursor)
        cursor.wrapper = self
        return cursor


class WriteTurnCursor(base.SQLiteCursorWrapper):
    """A write outside a transaction waits for its turn (inside one, the transaction has it)."""

    wrapper: DatabaseWrapper

    def execute(self, query, params=None):
        if self.connection.in_transaction or not query.lstrip()[:7].upper().startswith(WRITES):
            return super().execute(query, params)
        return self._in_turn(super().execute, query, params)

    def executemany(self, query, param_list):
        if self.connection.in_transaction or not query.lstrip()[:7].upper().startswith(WRITES):
            return super().executemany(query, param_list)
        return self._in_turn(super().executemany, query, param_list)

    def _in_turn(self, execute, *args):
        wrapper = self.wrapper
        if wrapper._holds_turn:
            return execute(*args)
        wrapper._take_turn()
        try:
            return execute(*args)
        finally:
            wrapper._end_turn()
