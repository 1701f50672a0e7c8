"""Incremental reads of gateway and billing tables in place."""

from __future__ import annotations

from sentra_graph.store.core import StoreCore


class SourceMixin(StoreCore):
    pass
