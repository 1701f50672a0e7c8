"""Ingestion: files, frames and gateway tables -> checked rows -> the store.

>>> import pandas as pd
>>> from sentra_graph.store import open_store
>>> store = open_store("sqlite://"); _ = store.init()
>>> frame = pd.DataFrame({"request_id": ["r1", "r2"], "ts": ["2026-01-01T00:00:00Z", "later"],
...                       "account_id": ["a", "a"], "ip": ["10.0.0.1", "10.0.0.2"]})
>>> summary = ingest_frame(store, "requests", frame)
>>> summary.loaded, summary.rejected, summary.first_rejects[0].reason
(1, 1, "ts: not an RFC 3339 timestamp: 'later'")
"""

from __future__ import annotations

from sentra_graph.ingest.readers import IngestError
from sentra_graph.ingest.service import IngestSummary, Reject, ingest_files, ingest_frame

__all__ = ["IngestError", "IngestSummary", "Reject", "ingest_files", "ingest_frame"]
