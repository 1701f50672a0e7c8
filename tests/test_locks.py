"""Run locks: one holder at a time across threads and processes, released when a holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest

from sentra_graph.store import Store, open_store

# Takes the lock, prints whether it got it, then holds it until killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from sentra_graph.store import open_store

    with open_store(sys.argv[1]).run_lock(sys.argv[2]) as acquired:
        print(acquired, flush=True)
        if acquired:
            time.sleep(120)
    """
)


def _in_thread(lock: AbstractContextManager[bool]) -> bool:
    """Whether another thread of this process gets ``lock``."""
    result: list[bool] = []

    def take() -> None:
        with lock as acquired:
            result.append(acquired)

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(30)
    return result[0]


def test_one_holder_at_a_time(store: Store) -> None:
    with store.run_lock("detection-run") as first:
        assert first
        with store.run_lock("detection-run") as second:
            assert not second
        assert not _in_thread(store.run_lock("detection-run"))
        with store.run_lock("export") as other_name:
            assert other_name
    with store.run_lock("detection-run") as again:
        assert again


def test_released_when_the_block_raises(store: Store) -> None:
    with pytest.raises(RuntimeError), store.run_lock("detection-run") as acquired:
        assert acquired
        raise RuntimeError("run failed")
    assert _in_thread(store.run_lock("detection-run"))


def test_in_memory_sqlite_lock_is_process_local() -> None:
    store = open_store("sqlite://")
    with store.run_lock("detection-run") as first:
        assert first
        assert not _in_thread(open_store("sqlite://").run_lock("detection-run"))
    assert _in_thread(store.run_lock("detection-run"))


def test_an_empty_name_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        store.run_lock("")


@pytest.fixture
def holders(store: Store) -> Iterator[list[subprocess.Popen[str]]]:
    """Two processes started together, each trying to take and hold the store's lock."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, store.url, "detection-run"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


def _acquired_within(store: Store, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with store.run_lock("detection-run") as acquired:
            if acquired:
                return True
        time.sleep(0.05)
    return False


def test_processes_contend_and_a_dead_holder_releases(
    store: Store, holders: list[subprocess.Popen[str]]
) -> None:
    answers = []
    for process in holders:
        assert process.stdout is not None
        answers.append(process.stdout.readline().strip())
    assert sorted(answers) == ["False", "True"]
    winner = holders[answers.index("True")]
    loser = holders[answers.index("False")]
    assert loser.wait(30) == 0
    with store.run_lock("detection-run") as acquired:
        assert not acquired  # still held by the live process
    os.kill(winner.pid, signal.SIGKILL)
    winner.wait(10)
    assert _acquired_within(store, 10)
