"""SQLite's writers queue for its write lock instead of polling for it (smscampaigns/db/sqlite3)."""

import threading

import pytest
from django.db import connection, connections, transaction

from smscampaigns.db.sqlite3.base import ProcessesLock, WriteTurns, _turns_for
from smscampaigns.models import Lead
from tests.waiting import wait_until


def _in_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _waiting(turns: WriteTurns) -> int:
    with turns._guard:
        return len(turns._waiting)


def test_the_writers_of_a_process_get_their_turn_in_the_order_they_asked():
    turns = WriteTurns(None)
    order = []

    def write(name):
        assert turns.acquire(60)
        order.append(name)
        turns.release()

    assert turns.acquire(60)
    threads = []
    for n, name in enumerate(["first", "second", "third"]):
        threads.append(_in_thread(write, name))
        wait_until(lambda n=n: _waiting(turns) == n + 1, what=f"{name} to queue")
    turns.release()
    for thread in threads:
        thread.join(60)
    assert order == ["first", "second", "third"]


def test_the_writer_whose_turn_it_is_may_take_it_again_and_keeps_it_until_it_lets_go_as_often():
    turns = WriteTurns(None)
    taken = threading.Event()
    assert turns.acquire(60) and turns.acquire(60)
    thread = _in_thread(lambda: turns.acquire(60) and taken.set())
    wait_until(lambda: _waiting(turns) == 1, what="the other writer to queue")
    turns.release()
    assert not taken.is_set() and _waiting(turns) == 1
    turns.release()
    thread.join(60)
    assert taken.is_set()


def test_a_writer_that_waited_its_timeout_goes_ahead_without_its_turn_and_leaves_the_queue():
    turns = WriteTurns(None)
    assert turns.acquire(60)
    assert turns.acquire(0.01) is True  # the same thread: its own turn
    turns.release()
    outcome = []
    _in_thread(lambda: outcome.append(turns.acquire(0.05))).join(60)
    assert outcome == [False]
    assert _waiting(turns) == 0
    turns.release()
    _in_thread(lambda: outcome.append(turns.acquire(60))).join(60)
    assert outcome == [False, True]


def test_processes_wait_for_the_lock_on_the_file_beside_the_database(tmp_path):
    # Two descriptors of one file conflict as two processes do.
    mine, theirs = ProcessesLock(str(tmp_path / "db-lock")), ProcessesLock(str(tmp_path / "db-lock"))
    assert mine.acquire(60)
    got = []
    thread = _in_thread(lambda: got.append(theirs.acquire(60)))
    mine.release()
    thread.join(60)
    assert got == [True]
    assert not mine.acquire(0.05)  # held by the other one
    theirs.release()
    assert mine.acquire(60)  # the abandoned wait gave it back at once
    mine.release()


@pytest.mark.skipif("connection.vendor != 'sqlite'")
@pytest.mark.django_db(transaction=True)
def test_a_write_outside_a_transaction_waits_for_the_transaction_that_has_the_turn_and_a_read_does_not():
    turns = _turns_for(str(connection.settings_dict["NAME"]))
    done = []

    def other(work):
        try:
            done.append(work())
        finally:
            connections.close_all()

    with transaction.atomic():
        Lead.objects.create(email="first@example.com")
        _in_thread(other, lambda: Lead.objects.filter(email="first@example.com").count()).join(60)
        assert done == [0]  # a read: at once, without the uncommitted row
        writer = _in_thread(other, lambda: Lead.objects.create(email="second@example.com").email)
        wait_until(lambda: _waiting(turns) == 1, what="the write to queue for its turn")
    writer.join(60)
    assert done == [0, "second@example.com"]
    assert Lead.objects.count() == 2
