"""Cross-process locks (PostgreSQL advisory locks; a lock file on SQLite).

A named lock keeps two processes -- two schedulers, a scheduler and an operator's
``sentra-graph run`` -- from doing the same work at once. Taking one never waits: the caller
learns whether it got the lock and skips its work when it did not.

- PostgreSQL: ``pg_try_advisory_lock`` on a connection opened for the lock alone, outside the
  pool, closed on release. The server drops the lock with the session, so a holder that dies
  (even by SIGKILL) never leaves a stale lock.
- SQLite file: ``flock`` on a lock file next to the database file (``<db>.<name>.lock``, on a
  local file system). The kernel drops it with the holder's open file, so it never goes stale
  either; the file itself stays, empty of meaning once unlocked.
- In-memory SQLite: a lock within this process, the only one that can see the database.

Every ``run_lock`` call is a holder of its own: a second call for a lock already held gets
``False``, in another process, another thread or the same thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

from sentra_graph.store.core import StoreCore

__all__ = ["LocksMixin", "advisory_key"]

_MEMORY_DATABASES = (None, "", ":memory:")
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def advisory_key(name: str) -> int:
    """The signed 64-bit PostgreSQL advisory lock key of the lock ``name``.

    Stable across processes and Python versions (unlike ``hash``).

    >>> advisory_key("detection-run") == advisory_key("detection-run")
    True
    >>> -(2**63) <= advisory_key("export") < 2**63
    True
    """
    digest = hashlib.sha256(f"sentra-graph:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _slug(name: str) -> str:
    """A lock name as a safe file-name part.

    >>> _slug("detection-run")
    'detection-run'
    >>> _slug("a/b c")
    'a_b_c'
    """
    if not name:
        raise ValueError("a lock needs a non-empty name")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@contextmanager
def _postgres_lock(libpq_url: str, name: str) -> Iterator[bool]:
    import psycopg

    with psycopg.connect(
        libpq_url, autocommit=True, application_name=f"sentra-graph lock {name}"[:63]
    ) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(name),)).fetchone()
        acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            # Unlock before closing, so the lock is free when this returns (the server ends a
            # closed session a moment later); a lost connection has already dropped it.
            if acquired:
                with suppress(psycopg.OperationalError):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(name),))


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    import fcntl  # POSIX only; imported here so the store still imports elsewhere

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _process_lock(name: str) -> Iterator[bool]:
    with _process_locks_guard:
        lock = _process_locks.setdefault(name, threading.Lock())
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


DETECTION_RUN_LOCK = "detection-run"
"""The lock every detection run holds: runs never overlap, even across processes."""


class LocksMixin(StoreCore):
    def run_lock(self, name: str) -> AbstractContextManager[bool]:
        """Try to take the cross-process lock ``name``, without waiting.

        The context yields True while this caller holds the lock and False when another
        holder has it; the lock is released when the block ends, or when the holding process
        dies.

        :param name: the lock's name, e.g. ``"detection-run"``.

        >>> from sentra_graph.store import open_store
        >>> store = open_store("sqlite://")
        >>> with store.run_lock("detection-run") as acquired:
        ...     with store.run_lock("detection-run") as again:
        ...         (acquired, again)
        (True, False)
        """
        slug = _slug(name)
        if self.is_postgres:
            return _postgres_lock(self.libpq_url, name)
        database = self.engine.url.database
        if database in _MEMORY_DATABASES or str(database).startswith("file::memory:"):
            return _process_lock(name)
        path = Path(str(database)).resolve()
        return _file_lock(path.with_name(f"{path.name}.{slug}.lock"))
