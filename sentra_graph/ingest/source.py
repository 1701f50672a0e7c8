"""Read what is new in the gateway and billing tables, through the same checks and loads as files.

Configured by ``SENTRA_SOURCE_ACCOUNTS_TABLE`` / ``SENTRA_SOURCE_REQUESTS_TABLE`` (``table`` or
``schema.table``), ``SENTRA_SOURCE_*_COLUMNS`` (JSON object: contract column -> source column;
a contract column not mapped is read from the source column of the same name when there is
one) and ``SENTRA_SOURCE_WATERMARK_COLUMN`` (a time or monotonic id column; an accounts table
without it is read by its ``created_at`` column). Each sync reads only rows whose watermark is
past the one stored by the previous sync, accounts first, and stores the new watermark once
every row read is loaded; a sync that fails leaves the watermark where it was, and the next one
reads those rows again (loading is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentra_graph.config import ConfigError, Settings
from sentra_graph.ingest.readers import Chunk, record_of
from sentra_graph.ingest.service import IngestSummary, ingest_readers
from sentra_graph.ingest.validate import ACCOUNTS, FIELDS, REQUESTS, field_names
from sentra_graph.store import Store
from sentra_graph.store.source import WATERMARK

__all__ = ["SourcePlan", "plan_sources", "sync_source", "watermark_key"]


@dataclass(frozen=True)
class SourcePlan:
    """What to read for one record kind: the table, contract -> source columns, watermark."""

    kind: str
    table: str
    columns: dict[str, str]
    watermark_column: str


def watermark_key(plan: SourcePlan) -> str:
    """The name the store keeps this source's watermark under.

    >>> watermark_key(SourcePlan("requests", "gw.calls", {}, "ts"))
    'requests:gw.calls'
    """
    return f"{plan.kind}:{plan.table}"


def sync_source(store: Store, settings: Settings, *, progress: bool = False) -> IngestSummary:
    """Load the rows added to the configured source tables since the last sync.

    Raises :class:`~sentra_graph.config.ConfigError` when no source table is configured or a
    column cannot be resolved; rejected rows go to ``settings.rejects_path``.
    """
    plans = plan_sources(store, settings)
    rejects = Path(settings.rejects_path)
    parts = []
    for i, plan in enumerate(plans):
        key = watermark_key(plan)
        reader = _SourceReader(store, plan, store.get_watermark(key), settings.ingest_chunk_rows)
        parts.append(
            ingest_readers(
                store, plan.kind, [reader], rejects, progress=progress, unit="rows", append=i > 0
            )
        )
        if reader.watermark is not None:
            store.set_watermark(key, reader.watermark)
    return IngestSummary.combine("+".join(plan.kind for plan in plans), parts)


def plan_sources(store: Store, settings: Settings) -> list[SourcePlan]:
    """The configured source tables (accounts first), with every column resolved."""
    configured = [
        (ACCOUNTS, settings.source_accounts_table, settings.source_accounts_columns),
        (REQUESTS, settings.source_requests_table, settings.source_requests_columns),
    ]
    plans = [
        _plan(store, kind, table, mapping, settings.source_watermark_column)
        for kind, table, mapping in configured
        if table
    ]
    if not plans:
        raise ConfigError(
            "nothing to sync: set SENTRA_SOURCE_REQUESTS_TABLE and/or SENTRA_SOURCE_ACCOUNTS_TABLE"
        )
    return plans


def _plan(
    store: Store, kind: str, table: str, mapping: dict[str, str], watermark: str
) -> SourcePlan:
    setting = f"SENTRA_SOURCE_{kind.upper()}_COLUMNS"
    contract = field_names(kind)
    unknown = sorted(set(mapping) - set(contract))
    if unknown:
        raise ConfigError(
            f"{setting}: {', '.join(unknown)} not {kind} columns (expected some of "
            f"{', '.join(contract)})"
        )
    available = store.source_columns(table)
    columns: dict[str, str] = {}
    for name in contract:
        source = mapping.get(name, name if name in available else None)
        if source is None:
            continue
        if source not in available:
            raise ConfigError(f"{setting}: {name} -> {source!r}, but {table} has no such column")
        columns[name] = source
    missing = [f.name for f in FIELDS[kind] if f.required and f.name not in columns]
    if missing:
        raise ConfigError(
            f"{table} has no column for {', '.join(missing)}: map it in {setting} "
            f'(a JSON object such as {{"{missing[0]}": "source_column"}})'
        )
    if watermark in available:
        mark = watermark
    elif kind == ACCOUNTS:
        mark = columns["created_at"]
    else:
        raise ConfigError(
            f"SENTRA_SOURCE_WATERMARK_COLUMN: {table} has no column {watermark!r} "
            "(name a time or monotonically increasing id column)"
        )
    return SourcePlan(kind, table, columns, mark)


class _SourceReader:
    """A :class:`~sentra_graph.ingest.readers.Reader` over a source table's new rows; a row's
    line is its rank in this sync."""

    def __init__(self, store: Store, plan: SourcePlan, after: str | None, chunk_rows: int):
        self.store = store
        self.plan = plan
        self.after = after
        self.chunk_rows = chunk_rows
        self.name = f"table {plan.table}"
        self.size = 0
        self.watermark: str | None = None

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        frames = self.store.read_source(
            self.plan.table,
            self.plan.columns,
            self.plan.watermark_column,
            self.after,
            self.chunk_rows,
        )
        for frame in frames:
            marks = frame.pop(WATERMARK)
            lines = np.arange(done + 1, done + 1 + len(frame))
            done += len(frame)
            if len(marks):
                self.watermark = watermark_text(marks.max())

            yield Chunk(frame, lines, _raw_with_watermark(frame, marks), position=done)


def _raw_with_watermark(frame: pd.DataFrame, marks: pd.Series) -> Callable[[int], object]:
    record = record_of(frame)

    def raw(position: int) -> object:
        return {**record(position), WATERMARK: watermark_text(marks.iloc[position])}

    return raw


def watermark_text(value: object) -> str:
    """How a watermark value is stored: ISO 8601 for times, digits for integers.

    >>> watermark_text(pd.Timestamp("2026-01-02 03:04:05.5", tz="UTC"))
    '2026-01-02T03:04:05.500000+00:00'
    >>> watermark_text(np.int64(42))
    '42'
    """
    if isinstance(value, pd.Timestamp):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
