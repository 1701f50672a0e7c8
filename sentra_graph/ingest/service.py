"""Ingest service: read chunks, check them, load the valid rows, report the rest.

Every valid row of a file is loaded; each rejected row goes to the reject file (one JSON object
per line: ``file``, ``line``, ``reason``, ``raw``) and is counted. Chunks load in worker
threads while the next chunk is read and checked (the database and the Python side each keep a
core busy); at most three chunks are in memory (see :class:`_Loader`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from sentra_graph.features.markers import prompt_markers
from sentra_graph.ingest.readers import Chunk, Reader, frame_reader, open_reader
from sentra_graph.ingest.validate import REQUESTS, Checked, check_kind, check_rows
from sentra_graph.store import Store
from sentra_graph.store.bulk import KnownAccounts, RequestLoader

__all__ = [
    "IngestSummary",
    "Reject",
    "RejectSink",
    "ingest_files",
    "ingest_frame",
    "ingest_readers",
]

DEFAULT_CHUNK_ROWS = 50_000
KEPT_REJECTS = 5
"""How many rejects a summary carries for display (all of them go to the reject file)."""


@dataclass(frozen=True)
class Reject:
    """One rejected record: where it was, why, and the record as read."""

    file: str
    line: int | None
    reason: str
    raw: Any = None


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest did. ``rows_read == loaded + duplicates + rejected``.

    duplicates: requests whose request_id was stored already or repeated earlier in the input
        (always 0 for accounts, where a later record updates the earlier one).
    strict: the caller asked for a strict load; :attr:`ok` is then false if any row was
        rejected (the valid rows are loaded all the same).
    first_rejects: the first few rejects, for display.
    parts: the summaries this one adds up (a source sync of accounts and requests).

    >>> IngestSummary("requests", 10, 7, 2, 1, 0.5, None).line()
    'requests: 10 rows read, 7 loaded, 2 duplicates, 1 rejected (20 rows/s, 0.5 s)'
    """

    kind: str
    rows_read: int
    loaded: int
    duplicates: int
    rejected: int
    seconds: float
    rejects_path: Path | None
    strict: bool = False
    first_rejects: tuple[Reject, ...] = ()
    parts: tuple[IngestSummary, ...] = ()

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """False when the load was strict and some row was rejected."""
        return not (self.strict and self.rejected)

    def line(self) -> str:
        """One line for a terminal: counts, throughput and where the rejects went."""
        if self.parts:
            return "; ".join(part.line() for part in self.parts)
        text = (
            f"{self.kind}: {self.rows_read:,} rows read, {self.loaded:,} loaded, "
            f"{self.duplicates:,} duplicates, {self.rejected:,} rejected "
            f"({self.rows_per_second:,.0f} rows/s, {self.seconds:.1f} s)"
        )
        if self.rejected and self.first_rejects:
            first = self.first_rejects[0]
            where = f"line {first.line}" if first.line is not None else "a record"
            text += f"; first: {first.file} {where}: {first.reason}"
        if self.rejected and self.rejects_path is not None:
            text += f"; all rejects in {self.rejects_path}"
        return text

    @classmethod
    def combine(cls, kind: str, parts: Iterable[IngestSummary]) -> IngestSummary:
        """One summary adding up ``parts`` (which it keeps for :meth:`line`)."""
        parts = tuple(parts)
        return cls(
            kind=kind,
            rows_read=sum(p.rows_read for p in parts),
            loaded=sum(p.loaded for p in parts),
            duplicates=sum(p.duplicates for p in parts),
            rejected=sum(p.rejected for p in parts),
            seconds=sum(p.seconds for p in parts),
            rejects_path=next((p.rejects_path for p in parts if p.rejects_path), None),
            strict=any(p.strict for p in parts),
            first_rejects=tuple(r for p in parts for r in p.first_rejects)[:KEPT_REJECTS],
            parts=parts,
        )


class RejectSink:
    """Writes rejects to a JSONL file (replaced at the start of each ingest unless ``append``)
    and keeps the first few; with no path it only counts them."""

    def __init__(self, path: Path | None, append: bool = False) -> None:
        self.path = path
        self.append = append
        self.count = 0
        self.first: list[Reject] = []
        self._handle: IO[str] | None = None

    def __enter__(self) -> RejectSink:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a" if self.append else "w", encoding="utf-8")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def add(self, reject: Reject) -> None:
        self.count += 1
        if len(self.first) < KEPT_REJECTS:
            self.first.append(reject)
        if self._handle is not None:
            record = {
                "file": reject.file,
                "line": reject.line,
                "reason": reject.reason,
                "raw": reject.raw,
            }
            self._handle.write(json.dumps(record, default=_plain, ensure_ascii=False) + "\n")


def _plain(value: object) -> object:
    """JSON form of the values a raw record may hold (NumPy scalars and arrays, timestamps)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def ingest_files(
    store: Store,
    kind: str,
    paths: Iterable[str | Path],
    rejects_path: str | Path | None,
    *,
    strict: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = True,
) -> IngestSummary:
    """Load the ``kind`` records ("accounts" or "requests") of ``paths`` into ``store``.

    Every file is opened before anything loads, so a missing file, an unknown ending, a
    ``.gz`` that is not gzip or a broken Parquet footer raise
    :class:`~sentra_graph.ingest.readers.IngestError` with nothing loaded. Rejected rows go to
    ``rejects_path`` (replaced; no file when None). ``strict`` is recorded in the summary
    (``summary.ok``), the valid rows load either way. ``progress`` shows a bar on stderr when
    it is a terminal.
    """
    check_kind(kind)
    readers = [open_reader(Path(path), kind, chunk_rows) for path in paths]
    sink_path = Path(rejects_path) if rejects_path is not None else None
    return ingest_readers(store, kind, readers, sink_path, strict=strict, progress=progress)


def ingest_frame(
    store: Store,
    kind: str,
    frame: pd.DataFrame,
    *,
    source: str = "<frame>",
    rejects_path: str | Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestSummary:
    """Load the ``kind`` records of ``frame`` (contract columns) exactly as files are loaded.

    >>> from sentra_graph.store import open_store
    >>> store = open_store("sqlite://"); _ = store.init()
    >>> frame = pd.DataFrame({"account_id": ["a"], "created_at": ["2026-01-01T00:00:00Z"]})
    >>> ingest_frame(store, "accounts", frame).loaded
    1
    """
    check_kind(kind)
    reader = frame_reader(frame, kind, chunk_rows, source)
    sink_path = Path(rejects_path) if rejects_path is not None else None
    return ingest_readers(store, kind, [reader], sink_path, progress=False)


def ingest_readers(
    store: Store,
    kind: str,
    readers: list[Reader],
    rejects_path: Path | None,
    *,
    strict: bool = False,
    progress: bool = False,
    unit: str = "B",
    append: bool = False,
) -> IngestSummary:
    """The loop shared by files, frames and source tables: check, load, count, report.

    ``unit`` is what the readers' ``size`` and chunk ``position`` count (bytes for files);
    ``append`` adds to the reject file instead of replacing it.
    """
    started = time.perf_counter()
    tally = _Tally()
    total = sum(reader.size for reader in readers) or None
    with (
        RejectSink(rejects_path, append) as sink,
        _progress_bar(progress, total, kind, unit) as bar,
        _Loader(store, kind) as loader,
    ):
        for reader in readers:
            last = 0
            for chunk in reader.chunks():
                checked = check_rows(kind, chunk.frame)
                if kind == REQUESTS:
                    checked.rows["markers"] = prompt_markers(checked.rows["prompt"])
                _report(reader.name, chunk, checked, sink)
                tally.add(chunk, checked)
                loader.load(checked, tally.loaded_callback(kind, checked))
                bar.update(chunk.position - last)
                last = chunk.position
                bar.set_postfix(rows=f"{tally.rows_read:,}", refresh=False)
    return IngestSummary(
        kind=kind,
        rows_read=tally.rows_read,
        loaded=tally.loaded,
        duplicates=tally.duplicates,
        rejected=sink.count,
        seconds=time.perf_counter() - started,
        rejects_path=rejects_path,
        strict=strict,
        first_rejects=tuple(sink.first),
    )


def _report(name: str, chunk: Chunk, checked: Checked, sink: RejectSink) -> None:
    for line, reason, raw in chunk.rejects:
        sink.add(Reject(name, line, reason, raw))
    for position, reason in checked.reasons.items():
        sink.add(Reject(name, int(chunk.lines[position]), reason, chunk.raw(position)))


@dataclass
class _Tally:
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0

    def add(self, chunk: Chunk, checked: Checked) -> None:
        self.rows_read += chunk.records
        self.duplicates += checked.duplicates

    def loaded_callback(self, kind: str, checked: Checked) -> Callable[[int], None]:
        """What to count once the store says how many of ``checked.rows`` it wrote."""

        def count(written: int) -> None:
            if kind == REQUESTS:
                self.loaded += written
                self.duplicates += len(checked.rows) - written
            else:
                self.loaded += checked.valid

        return count


class _Loader:
    """Hands checked rows to the store in worker threads, so that the next chunk is read and
    checked meanwhile. Requests on PostgreSQL load two chunks at a time, each worker through a
    connection of its own: the server's work on a chunk (mostly keeping the primary key) then
    runs beside the other chunk's and beside the checks. Other loads go one at a time (SQLite
    writes one transaction at a time anyway; an in-memory SQLite store loads in the calling
    thread, since each thread would see its own empty database).
    """

    def __init__(self, store: Store, kind: str) -> None:
        self.store = store
        self.kind = kind
        in_memory = not store.is_postgres and store.engine.url.database in (None, "", ":memory:")
        self.workers = 0 if in_memory else (2 if store.is_postgres and kind == REQUESTS else 1)
        self.pool = ThreadPoolExecutor(self.workers, "sentra-load") if self.workers else None
        self.pending: deque[tuple[Future[int], Callable[[int], None]]] = deque()
        self.known = KnownAccounts()
        self.local = threading.local()
        self.loaders: list[RequestLoader] = []
        self.in_flight_ids: pa.Array | None = None

    def __enter__(self) -> _Loader:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        try:
            if exc_type is None:
                self.wait()
            else:
                for future, _ in self.pending:
                    future.exception()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            for loader in self.loaders:
                loader.close()

    def load(self, checked: Checked, done: Callable[[int], None]) -> None:
        while len(self.pending) >= max(self.workers, 1):
            self._finish_one()
        rows = checked.rows
        if self.workers > 1 and self.kind == REQUESTS and not rows.empty:
            rows = self._not_in_flight(rows)
        if rows.empty:
            done(0)
        elif self.pool is None:
            done(self._load_rows(rows))
        else:
            self.pending.append((self.pool.submit(self._load_rows, rows), done))

    def _not_in_flight(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` less the request_ids of the chunk still loading beside it (every older
        chunk is committed: its ids make this chunk's COPY fail and take the exact path).
        Without this, a later chunk could store a repeated id before the earlier chunk that
        holds its first occurrence, and the first occurrence would not win."""
        ids = pa.array(rows["request_id"], type=pa.string(), from_pandas=True)
        previous, self.in_flight_ids = self.in_flight_ids, ids
        if previous is None or not self.pending:
            return rows
        repeated = pc.is_in(ids, value_set=previous).to_numpy(zero_copy_only=False)
        return rows[~repeated] if repeated.any() else rows

    def wait(self) -> None:
        while self.pending:
            self._finish_one()

    def _finish_one(self) -> None:
        future, done = self.pending.popleft()
        done(future.result())

    def _load_rows(self, rows: pd.DataFrame) -> int:
        if self.kind != REQUESTS:
            return self.store.load_accounts(rows)
        loader = getattr(self.local, "loader", None)
        if loader is None:  # one per worker thread, each with its own connection
            loader = self.local.loader = self.store.request_loader(self.known)
            self.loaders.append(loader)
        return loader.load(rows)


@contextmanager
def _progress_bar(enabled: bool, total: int | None, kind: str, unit: str) -> Iterator[tqdm]:
    bar = tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        desc=f"ingest {kind}",
        file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()),
        leave=False,
    )
    try:
        yield bar
    finally:
        bar.close()
