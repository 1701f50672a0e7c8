"""Every input format loads the same rows; line numbers point at the right records; files that
cannot be read fail with the file named and nothing loaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from sentra_graph.ingest import IngestError, ingest_files
from sentra_graph.store import Store
from sentra_graph.store import schema as t

N = 60


def _rows() -> list[dict]:
    rows = []
    for i in range(N):
        row = {
            "request_id": f"r{i:03d}",
            "ts": f"2026-01-0{1 + i % 3}T10:{i % 60:02d}:00+01:00",
            "account_id": f"acct-{i % 7}",
            "ip": f"192.0.2.{i}" if i % 4 else f"2001:db8::{i:x}",
            "api_key_id": f"k{i % 5}",
            "model": "m-large" if i % 2 else None,
            "prompt": f'line one {i}\nline two, with "quotes"' if i % 5 == 0 else f"p{i}",
            "prompt_embedding": [0.5, i / 4] if i % 3 == 0 else None,
            "prompt_tokens": i * 3,
            "status": 200 if i % 9 else 429,
            "extra_column": "ignored",
        }
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        text = "".join(
            json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows
        )
        data = text.encode()
    elif name.endswith((".csv", ".csv.gz")):
        frame = pd.DataFrame(rows)
        frame["prompt_embedding"] = [json.dumps(v) if v else None for v in frame.prompt_embedding]
        data = frame.to_csv(index=False).encode()
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=17)
        return path
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def _stored(store: Store) -> pd.DataFrame:
    with store.connect() as conn:
        rows = conn.execute(sa.select(t.requests).order_by(t.requests.c.request_id)).all()
    frame = pd.DataFrame(rows, columns=list(t.requests.c.keys()))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame


FORMATS = ["jsonl", "jsonl.gz", "csv", "csv.gz", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_the_same_rows(store: Store, tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / f"requests.{fmt}", _rows())
    summary = ingest_files(store, "requests", [path], tmp_path / "rej.jsonl", chunk_rows=16)
    assert (summary.rows_read, summary.loaded, summary.rejected) == (N, N, 0)
    stored = _stored(store)
    assert len(stored) == N
    first = stored.iloc[0]
    assert first["ts"] == pd.Timestamp("2026-01-01T09:00:00Z")
    assert first["ip"] == "2001:db8::"
    assert first["prompt"] == 'line one 0\nline two, with "quotes"'
    assert json.loads(first["prompt_embedding"]) == [0.5, 0.0]
    assert pd.isna(first["model"]) and stored.iloc[1]["model"] == "m-large"
    assert stored["prompt_tokens"].tolist() == [i * 3 for i in range(N)]
    assert (stored["status"] == 429).sum() == len(range(0, N, 9))
    again = ingest_files(store, "requests", [path], None, chunk_rows=16, progress=False)
    assert (again.loaded, again.duplicates) == (0, N)


def test_formats_agree_value_for_value(store: Store, tmp_path: Path) -> None:
    frames = []
    for fmt in FORMATS:
        rows = [{**r, "request_id": f"{fmt}-{r['request_id']}"} for r in _rows()]
        ingest_files(store, "requests", [_write(tmp_path / f"x.{fmt}", rows)], None)
    stored = _stored(store)
    stored["n"] = stored["request_id"].str.split("-").str[-1]
    for fmt in FORMATS:
        part = stored[stored["request_id"].str.startswith(f"{fmt}-")]
        frames.append(part.drop(columns="request_id").set_index("n").sort_index())
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_csv_lines_count_records_and_the_header(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(
        "request_id,ts,account_id,ip,prompt\n"  # line 1
        'r1,2026-01-01T00:00:00Z,a,10.0.0.1,"two\nlines"\n'  # line 2 (one record)
        "r2,2026-01-01T00:00:00Z,a,10.0.0.1,too,many,fields\n"  # line 3
        "r3,2026-01-01T00:00:00Z,a,not-an-ip,x\n"  # line 4
        "r4,2026-01-01T00:00:00Z,a,10.0.0.4,x\n"  # line 5
        "r5,,a,10.0.0.5,x\n"  # line 6
    )
    rejects = tmp_path / "rej.jsonl"
    summary = ingest_files(store, "requests", [path], rejects, chunk_rows=2, progress=False)
    assert (summary.rows_read, summary.loaded, summary.rejected) == (5, 2, 3)
    found = {r["line"]: r for r in map(json.loads, rejects.read_text().splitlines())}
    assert sorted(found) == [3, 4, 6]
    assert "expected 5 fields, found 7" in found[3]["reason"]
    assert found[4]["raw"]["ip"] == "not-an-ip"
    assert found[6]["reason"] == "missing required field 'ts'"


def test_jsonl_lines_are_physical_lines(store: Store, tmp_path: Path) -> None:
    good = {"request_id": "r", "ts": "2026-01-01T00:00:00Z", "account_id": "a", "ip": "10.0.0.1"}
    lines = ["", json.dumps(good), "   ", json.dumps({**good, "request_id": "s", "ip": "x"})]
    path = tmp_path / "requests.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    rejects = tmp_path / "rej.jsonl"
    summary = ingest_files(store, "requests", [path], rejects, progress=False)
    assert (summary.rows_read, summary.loaded, summary.rejected) == (2, 1, 1)
    assert [json.loads(r)["line"] for r in rejects.read_text().splitlines()] == [4]


def test_parquet_lines_are_row_numbers(store: Store, tmp_path: Path) -> None:
    rows = _rows()[:20]
    rows[13]["ts"] = "13 o'clock"
    path = _write(tmp_path / "requests.parquet", rows)
    rejects = tmp_path / "rej.jsonl"
    summary = ingest_files(store, "requests", [path], rejects, chunk_rows=5, progress=False)
    assert (summary.loaded, summary.rejected) == (19, 1)
    assert json.loads(rejects.read_text())["line"] == 14


def test_empty_files_load_nothing(store: Store, tmp_path: Path) -> None:
    empty = [tmp_path / "a.csv", tmp_path / "b.jsonl", tmp_path / "c.csv.gz"]
    empty[0].write_text("")
    empty[1].write_text("\n\n")
    empty[2].write_bytes(gzip.compress(b"request_id,ts,account_id,ip\n"))
    summary = ingest_files(store, "requests", empty, None, progress=False)
    assert (summary.rows_read, summary.loaded) == (0, 0)


def _broken(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "nope.jsonl"
    if kind == "extension":
        path = tmp_path / "requests.txt"
        path.write_text("x")
        return path
    if kind == "not gzip":
        path = tmp_path / "requests.csv.gz"
        path.write_text("request_id,ts\n")
        return path
    if kind == "parquet":
        path = tmp_path / "requests.parquet"
        path.write_bytes(b"PAR1 this is not parquet")
        return path
    path = tmp_path / "folder.csv"
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["missing", "extension", "not gzip", "parquet", "directory"])
def test_an_unreadable_file_fails_before_anything_loads(
    store: Store, tmp_path: Path, kind: str
) -> None:
    good = _write(tmp_path / "good.jsonl", _rows())
    bad = _broken(tmp_path, kind)
    with pytest.raises(IngestError) as raised:
        ingest_files(store, "requests", [good, bad], None, progress=False)
    message = str(raised.value)
    assert str(bad) in message and "\n" not in message
    assert _stored(store).empty


def test_a_truncated_gzip_fails_naming_the_file(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "requests.jsonl.gz", _rows())
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(IngestError, match="requests.jsonl.gz: cannot read"):
        ingest_files(store, "requests", [path], None, progress=False)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_record_larger_than_a_read_block_loads(store: Store, tmp_path: Path, fmt: str) -> None:
    rows = _rows()[:3]
    rows[1]["prompt"] = "long prompt " * 250_000  # 3 MB, above Arrow's read blocks
    path = _write(tmp_path / f"requests.{fmt}", rows)
    summary = ingest_files(store, "requests", [path], None, progress=False)
    assert (summary.loaded, summary.rejected) == (3, 0)
    assert len(_stored(store).iloc[1]["prompt"]) == len(rows[1]["prompt"])
