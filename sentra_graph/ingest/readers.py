"""Chunked readers of input files: ``.jsonl``, ``.csv``, ``.parquet``, ``.jsonl.gz``, ``.csv.gz``.

A reader yields :class:`Chunk` s of about ``chunk_rows`` records, so memory stays flat however
large the file. Each row keeps its line number for the reject file:

- JSONL: the physical line (blank lines are skipped, not counted as records);
- CSV: the record's row in the file, the header being line 1 (a record whose quoted fields
  span several lines counts once);
- Parquet and in-memory frames: the row index + 1.

Rows that cannot even be parsed into fields (invalid JSON, a CSV row with the wrong number of
fields) come back in :attr:`Chunk.rejects`; a file that cannot be read at all raises
:class:`IngestError` naming the file and the reason.

>>> reader = open_reader(Path("missing.csv"), "accounts", 1000)
Traceback (most recent call last):
...
sentra_graph.ingest.readers.IngestError: missing.csv: cannot read: no such file
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from sentra_graph.ingest.validate import EMBEDDING, FIELDS, INTEGER, field_names

__all__ = [
    "FORMATS",
    "Chunk",
    "IngestError",
    "Reader",
    "frame_reader",
    "open_reader",
    "record_of",
]

FORMATS = {
    ".jsonl.gz": ("jsonl", True),
    ".csv.gz": ("csv", True),
    ".jsonl": ("jsonl", False),
    ".csv": ("csv", False),
    ".parquet": ("parquet", False),
}
"""File name ending -> (format, gzipped)."""

_GZIP_MAGIC = b"\x1f\x8b"
_CSV_BLOCK_BYTES = 2 << 20
_JSON_BLOCK_BYTES = 1 << 20
"""Arrow reads ahead and parses several blocks at once: small blocks keep the peak memory low
(a JSON record longer than a block sends its chunk to the line-by-line path)."""
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    UnicodeDecodeError,
    pa.ArrowException,
)


class IngestError(RuntimeError):
    """A file cannot be read at all; the message names the file and the reason."""


Reject = tuple[int | None, str, object]
"""A record that could not be parsed: (line, reason, raw record)."""


@dataclass
class Chunk:
    """Records read from one part of a file.

    frame: the contract fields of the parsed records, as read (absent fields are missing
        columns or nulls); unknown fields are dropped.
    lines: the line number of each row of ``frame``.
    raw: the record at a row position of ``frame``, as it goes to the reject file.
    rejects: records that could not be parsed into fields.
    position: bytes of the file consumed so far (for progress).
    """

    frame: pd.DataFrame
    lines: np.ndarray
    raw: Callable[[int], object]
    rejects: list[Reject] = field(default_factory=list)
    position: int = 0

    @property
    def records(self) -> int:
        return len(self.frame) + len(self.rejects)


class Reader(Protocol):
    """Something that yields the chunks of one input (a file or a frame)."""

    name: str
    size: int

    def chunks(self) -> Iterator[Chunk]: ...


def open_reader(path: Path, kind: str, chunk_rows: int) -> Reader:
    """A reader for ``path``, chosen by its name's ending; raise :class:`IngestError` if the
    file is missing, of an unknown format, not gzip although named so, or not Parquet."""
    fmt = _format(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise IngestError(f"{path}: cannot read: is a directory")
        with open(path, "rb") as handle:
            head = handle.read(2)
    except FileNotFoundError:
        raise IngestError(f"{path}: cannot read: no such file") from None
    except OSError as error:
        raise IngestError(f"{path}: cannot read: {error.strerror or error}") from None
    name, gzipped = fmt
    if gzipped and head and head != _GZIP_MAGIC:
        raise IngestError(f"{path}: cannot read: not a gzip file")
    if name == "jsonl":
        return _JsonlReader(path, kind, chunk_rows, size, gzipped)
    if name == "csv":
        return _CsvReader(path, kind, chunk_rows, size, gzipped)
    return _ParquetReader(path, kind, chunk_rows, size)


def frame_reader(frame: pd.DataFrame, kind: str, chunk_rows: int, name: str) -> Reader:
    """A reader over an in-memory frame (line = row index + 1)."""
    return _FrameReader(frame, kind, chunk_rows, name)


def _format(path: Path) -> tuple[str, bool]:
    lowered = path.name.lower()
    for ending, fmt in FORMATS.items():
        if lowered.endswith(ending):
            return fmt
    expected = ", ".join(FORMATS)
    raise IngestError(f"{path}: cannot read: unknown format (expected {expected})")


class _FileReader(ABC):
    """Shared by the file readers: turns a read failure into :class:`IngestError`."""

    def __init__(self, path: Path, kind: str, chunk_rows: int, size: int) -> None:
        self.path = path
        self.name = str(path)
        self.kind = kind
        self.fields = field_names(kind)
        self.chunk_rows = chunk_rows
        self.size = size
        self._records = 0

    def chunks(self) -> Iterator[Chunk]:
        try:
            for chunk in self._chunks():
                self._records += chunk.records
                yield chunk
        except _READ_ERRORS as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            where = f" after {self._records} records" if self._records else ""
            raise IngestError(f"{self.path}: cannot read{where}: {reason}") from None

    @abstractmethod
    def _chunks(self) -> Iterator[Chunk]:
        """The chunks of the file; read errors propagate as they are."""


def record_of(frame: pd.DataFrame) -> Callable[[int], dict[str, object]]:
    """The record at a position of ``frame``, as a dict of the fields it gives."""

    def raw(position: int) -> dict[str, object]:
        return {k: v for k, v in frame.iloc[position].items() if not _is_missing(v)}

    return raw


def _is_missing(value: object) -> bool:
    return value is None or (not isinstance(value, list | np.ndarray) and bool(pd.isna(value)))


# ---- JSONL ------------------------------------------------------------------------------------


def _json_schema(kind: str) -> pa.Schema:
    """What the fast JSON parser expects; any deviation sends the chunk to the careful path."""

    def arrow_type(kind_of_field: str) -> pa.DataType:
        if kind_of_field == INTEGER:
            return pa.int64()
        if kind_of_field == EMBEDDING:
            return pa.list_(pa.float64())
        return pa.string()

    return pa.schema([(f.name, arrow_type(f.type)) for f in FIELDS[kind]])


class _JsonlReader(_FileReader):
    def __init__(self, path: Path, kind: str, chunk_rows: int, size: int, gzipped: bool) -> None:
        super().__init__(path, kind, chunk_rows, size)
        self.gzipped = gzipped
        self.schema = _json_schema(kind)

    def _chunks(self) -> Iterator[Chunk]:
        with open(self.path, "rb") as raw_file:
            stream: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=raw_file) if self.gzipped else raw_file
            )
            first_line = 1
            while lines := list(islice(stream, self.chunk_rows)):
                numbers = [first_line + i for i, line in enumerate(lines) if line.strip()]
                records = [line for line in lines if line.strip()]
                first_line += len(lines)
                if records:
                    yield self._parse(records, np.array(numbers), raw_file.tell())

    def _parse(self, records: list[bytes], numbers: np.ndarray, position: int) -> Chunk:
        def raw(position: int) -> object:
            return records[position].decode("utf-8", "replace").rstrip("\r\n")

        try:
            table = pa_json.read_json(
                io.BytesIO(b"".join(records)),
                read_options=pa_json.ReadOptions(block_size=_JSON_BLOCK_BYTES),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=self.schema, unexpected_field_behavior="ignore"
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is not None and table.num_rows == len(records):
            return Chunk(table.to_pandas(), numbers, raw, position=position)
        return self._parse_each(records, numbers, position)

    def _parse_each(self, records: list[bytes], numbers: np.ndarray, position: int) -> Chunk:
        """The careful path, for chunks the fast parser refused: one line at a time."""
        parsed: list[dict] = []
        kept: list[int] = []
        rejects: list[Reject] = []
        for i, line in enumerate(records):
            reason, value = _parse_line(line)
            if reason is None:
                parsed.append(value)
                kept.append(i)
            else:
                rejects.append((int(numbers[i]), reason, _line_text(line)))
        frame = pd.DataFrame.from_records(parsed, columns=self.fields) if parsed else None
        if frame is None:
            frame = pd.DataFrame(columns=self.fields)
        kept_records = [records[i] for i in kept]

        def raw(position: int) -> object:
            return _line_text(kept_records[position])

        return Chunk(frame, numbers[kept], raw, rejects, position)


def _parse_line(line: bytes) -> tuple[str | None, dict]:
    try:
        value = json.loads(line)
    except UnicodeDecodeError:
        return "not UTF-8 text", {}
    except ValueError as error:
        return f"invalid JSON: {error}", {}
    if not isinstance(value, dict):
        return f"not a JSON object (found {type(value).__name__})", {}
    if b"\\ud" in line.lower():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "invalid JSON: unpaired surrogate escape", {}
    return None, value


def _line_text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r\n")


# ---- CSV --------------------------------------------------------------------------------------


class _CsvReader(_FileReader):
    def __init__(self, path: Path, kind: str, chunk_rows: int, size: int, gzipped: bool) -> None:
        super().__init__(path, kind, chunk_rows, size)
        self.gzipped = gzipped

    def _chunks(self) -> Iterator[Chunk]:
        if self.size == 0:
            return
        invalid: list[Reject] = []
        numbering = _RecordNumbers(first=2)

        def on_invalid(row: pa_csv.InvalidRow) -> str:
            reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            invalid.append((row.number, reason, row.text))
            numbering.skip(row.number)
            return "skip"

        with pa.OSFile(str(self.path)) as raw_file:
            stream = pa.CompressedInputStream(raw_file, "gzip") if self.gzipped else raw_file
            try:
                reader = pa_csv.open_csv(
                    stream,
                    # one thread, so that each invalid row comes with its record number
                    read_options=pa_csv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES),
                    parse_options=pa_csv.ParseOptions(
                        newlines_in_values=True, invalid_row_handler=on_invalid
                    ),
                    convert_options=pa_csv.ConvertOptions(
                        column_types={name: pa.string() for name in self.fields},
                        include_columns=self.fields,
                        include_missing_columns=True,
                        null_values=[""],
                        strings_can_be_null=True,
                    ),
                )
            except pa.ArrowInvalid as error:
                if "Empty CSV file" in str(error):
                    return
                raise
            pending: list[tuple[pa.RecordBatch, np.ndarray]] = []
            rows = 0
            for batch in reader:
                pending.append((batch, numbering.take(batch.num_rows)))
                rows += batch.num_rows
                while rows >= self.chunk_rows:
                    batches, pending = _split(pending, self.chunk_rows)
                    rows -= self.chunk_rows
                    yield self._chunk(batches, invalid, raw_file.tell())
            if pending or invalid:
                yield self._chunk(pending, invalid, raw_file.tell())

    def _chunk(
        self, batches: list[tuple[pa.RecordBatch, np.ndarray]], invalid: list[Reject], at: int
    ) -> Chunk:
        table = pa.Table.from_batches([b for b, _ in batches]) if batches else None
        frame = table.to_pandas() if table is not None else pd.DataFrame(columns=self.fields)
        lines = np.concatenate([n for _, n in batches]) if batches else np.array([], dtype=int)
        rejects = list(invalid)
        invalid.clear()
        return Chunk(frame, lines, record_of(frame), rejects, at)


class _RecordNumbers:
    """Numbers the parsed CSV records, skipping the numbers of records the parser rejected.

    >>> numbering = _RecordNumbers(first=2)
    >>> numbering.skip(3)
    >>> numbering.take(2).tolist(), numbering.take(1).tolist()
    ([2, 4], [5])
    """

    def __init__(self, first: int) -> None:
        self.next = first
        self.skipped: list[int] = []

    def skip(self, number: int | None) -> None:
        if number is not None:
            self.skipped.append(number)

    def take(self, count: int) -> np.ndarray:
        skipped = np.array(sorted(n for n in self.skipped if n >= self.next), dtype=np.int64)
        candidates = np.arange(self.next, self.next + count + len(skipped), dtype=np.int64)
        numbers = candidates[~np.isin(candidates, skipped)][:count]
        if count:
            self.next = int(numbers[-1]) + 1
            self.skipped = [n for n in self.skipped if n >= self.next]
        return numbers


def _split(
    pending: list[tuple[pa.RecordBatch, np.ndarray]], rows: int
) -> tuple[list[tuple[pa.RecordBatch, np.ndarray]], list[tuple[pa.RecordBatch, np.ndarray]]]:
    """The first ``rows`` rows of ``pending`` and the rest."""
    head: list[tuple[pa.RecordBatch, np.ndarray]] = []
    need = rows
    for i, (batch, numbers) in enumerate(pending):
        if batch.num_rows < need:
            head.append((batch, numbers))
            need -= batch.num_rows
            continue
        head.append((batch.slice(0, need), numbers[:need]))
        tail = [(batch.slice(need), numbers[need:])] if need < batch.num_rows else []
        return head, tail + pending[i + 1 :]
    return head, []


# ---- Parquet ----------------------------------------------------------------------------------


class _ParquetReader(_FileReader):
    def __init__(self, path: Path, kind: str, chunk_rows: int, size: int) -> None:
        super().__init__(path, kind, chunk_rows, size)
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise IngestError(f"{path}: cannot read: not a Parquet file ({reason})") from None

    def _chunks(self) -> Iterator[Chunk]:
        present = [name for name in self.fields if name in self.file.schema_arrow.names]
        total = max(self.file.metadata.num_rows, 1)
        done = 0
        for batch in self.file.iter_batches(batch_size=self.chunk_rows, columns=present):
            columns = [
                column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
                for column in batch.columns
            ]
            frame = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pandas()
            lines = np.arange(done + 1, done + 1 + len(frame))
            done += len(frame)
            yield Chunk(frame, lines, record_of(frame), position=self.size * done // total)


# ---- frames -----------------------------------------------------------------------------------


class _FrameReader:
    def __init__(self, frame: pd.DataFrame, kind: str, chunk_rows: int, name: str) -> None:
        self.frame = frame.reset_index(drop=True)
        self.fields = field_names(kind)
        self.chunk_rows = chunk_rows
        self.name = name
        self.size = len(frame)

    def chunks(self) -> Iterator[Chunk]:
        present = [name for name in self.fields if name in self.frame.columns]
        for start in range(0, len(self.frame), self.chunk_rows):
            part = self.frame.iloc[start : start + self.chunk_rows][present].reset_index(drop=True)
            lines = np.arange(start + 1, start + 1 + len(part))
            yield Chunk(part, lines, record_of(part), position=start + len(part))
