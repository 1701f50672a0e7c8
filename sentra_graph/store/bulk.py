"""Bulk loads of validated accounts and requests (COPY on PostgreSQL)."""

from __future__ import annotations

from sentra_graph.store.core import StoreCore


class BulkMixin(StoreCore):
    pass
