"""Cross-process locks (PostgreSQL advisory locks; a lock file on SQLite)."""

from __future__ import annotations

from sentra_graph.store.core import StoreCore


class LocksMixin(StoreCore):
    pass
