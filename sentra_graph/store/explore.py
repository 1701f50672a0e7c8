"""Reads for analysts: farm neighbourhoods, timelines, prompt examples."""

from __future__ import annotations

from sentra_graph.store.core import StoreCore


class ExploreMixin(StoreCore):
    pass
