"""Snapshot loads in a child process, so the server's interpreter lock stays with lookups.

Measured on 100k accounts: building a snapshot takes seconds of CPU (reading the decisions,
encoding every answer), and done on a thread of the server it pushed lookup p99 from ~11 ms
to ~250 ms while it lasted. A spawned worker process does that work and exits (no idle
worker holds its ~130-200 MB between loads; starting one takes a second or two, loads are
rare); the server only unpacks a few large buffers, pausing between chunks.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing.process import BaseProcess
from typing import TypeVar

from api.snapshot import Snapshot, in_store_at, read_known, read_packed, unpack, unscored_set
from sentra_graph.store import SQLITE, Store

T = TypeVar("T")


def _yield_gil() -> None:
    time.sleep(0)


def _exit_with(parent: BaseProcess) -> None:
    parent.join()
    os._exit(0)


def _worker_init() -> None:
    """The worker ignores Ctrl-C (the server decides when it stops) and dies with the server.

    A server killed outright (SIGKILL, or a signal uvicorn re-raises after shutdown) never
    tells its pool to stop; without this watch the worker would wait for work forever.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def is_in_memory(store: Store) -> bool:
    """Whether no other process can open ``store`` (an in-memory SQLite database)."""
    database = store.engine.url.database
    return store.backend == SQLITE and (database in (None, "", ":memory:"))


class SnapshotLoader:
    """Builds snapshots of ``store``; in a worker process unless ``isolated`` is False."""

    def __init__(self, store: Store, *, isolated: bool = True) -> None:
        self.store = store
        self.isolated = isolated and not is_in_memory(store)
        self._url = store.engine.url.render_as_string(hide_password=False)
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()

    def _read(self, read: Callable[[Store], T]) -> T:
        if not self.isolated:
            return read(self.store)
        with self._lock:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            executor = self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
            )
        try:
            return executor.submit(partial(in_store_at, self._url, read)).result()
        finally:
            with self._lock:
                self._executor = None
            executor.shutdown(wait=False)

    def snapshot(self) -> Snapshot:
        """The store's served run as a new snapshot (blocking: call from a worker thread)."""
        return unpack(self._read(read_packed), pause=_yield_gil)

    def unscored_known(self, index: Mapping[str, int]) -> set[str]:
        """The store's known accounts that ``index`` does not score (blocking)."""
        return unscored_set(self._read(read_known), index, pause=_yield_gil)

    def shutdown(self) -> None:
        """Let a load in progress finish in its worker; none starts after this."""
        with self._lock:
            executor, self._executor, self._closed = self._executor, None, True
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
