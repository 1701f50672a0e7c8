"""The only package that speaks SQL. :class:`Store` is the one doorway to the database.

>>> store = open_store("sqlite://")
>>> store.backend
'sqlite'
"""

from __future__ import annotations

from sentra_graph.store.admin import AdminMixin
from sentra_graph.store.bulk import BulkMixin
from sentra_graph.store.core import POSTGRESQL, SQLITE, StoreError, normalise_url
from sentra_graph.store.explore import ExploreMixin
from sentra_graph.store.locks import LocksMixin
from sentra_graph.store.runs import RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED, RunsMixin
from sentra_graph.store.source import SourceMixin
from sentra_graph.store.window import WindowMixin

__all__ = [
    "POSTGRESQL",
    "RUN_FAILED",
    "RUN_RUNNING",
    "RUN_SUCCEEDED",
    "SQLITE",
    "Store",
    "StoreError",
    "normalise_url",
    "open_store",
]


class Store(BulkMixin, SourceMixin, WindowMixin, RunsMixin, AdminMixin, ExploreMixin, LocksMixin):
    """Schema, bulk loads, window reads, runs, decisions, feedback and job history."""


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: ``SENTRA_DATABASE_URL`` or the embedded file)."""
    if url is None:
        from sentra_graph.config import get_settings

        url = get_settings().database_url
    return Store(url)
