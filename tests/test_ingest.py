"""Ingestion on both backends: counts, idempotence, rejects, upserts and inferred accounts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from sentra_graph.features.markers import COT, RUBRIC
from sentra_graph.ingest import IngestSummary, ingest_files, ingest_frame
from sentra_graph.ingest.validate import check_rows
from sentra_graph.store import Store
from sentra_graph.store import schema as t


def _request(i: int, **overrides: object) -> dict:
    row = {
        "request_id": f"r{i}",
        "ts": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "account_id": f"a{i % 3}",
        "ip": f"10.0.{i // 250}.{i % 250}",
        "user_agent": "curl/8",
        "prompt": "hello",
        "prompt_tokens": 10 + i,
        "status": 200,
    }
    row.update(overrides)
    return row


def _stored(store: Store, table: sa.Table) -> pd.DataFrame:
    key = list(table.primary_key.columns)[0]
    with store.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(key)).mappings().all()
    frame = pd.DataFrame(rows, columns=list(table.c.keys()))
    for name in ("ts", "created_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def _write_jsonl(path: Path, lines: list[str | dict]) -> Path:
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")
    return path


def _rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_requests_load_once_and_reingest_is_a_no_op(store: Store, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "requests.jsonl", [_request(i) for i in range(40)])
    first = ingest_files(store, "requests", [path], tmp_path / "rej.jsonl", progress=False)
    assert (first.rows_read, first.loaded, first.duplicates, first.rejected) == (40, 40, 0, 0)
    before = _stored(store, t.requests)
    again = ingest_files(store, "requests", [path], tmp_path / "rej.jsonl", chunk_rows=7)
    assert (again.rows_read, again.loaded, again.duplicates, again.rejected) == (40, 0, 40, 0)
    pd.testing.assert_frame_equal(_stored(store, t.requests), before)
    assert len(before) == 40


def test_a_request_id_repeated_in_one_file_keeps_the_first(store: Store, tmp_path: Path) -> None:
    rows = [_request(1, ip="10.9.9.1"), _request(2), _request(1, ip="10.9.9.2")]
    path = _write_jsonl(tmp_path / "requests.jsonl", rows + [_request(1, ip="10.9.9.3")])
    # chunks of 2: the third repeat arrives in a later chunk than the first row
    summary = ingest_files(store, "requests", [path], None, chunk_rows=2, progress=False)
    assert (summary.loaded, summary.duplicates) == (2, 2)
    stored = _stored(store, t.requests).set_index("request_id")
    assert stored.loc["r1", "ip"] == "10.9.9.1"


def test_bad_rows_are_reported_and_every_good_row_loads(store: Store, tmp_path: Path) -> None:
    ingest_frame(store, "requests", pd.DataFrame([_request(100), _request(101)]))
    lines: list[str | dict] = [
        _request(1),
        {k: v for k, v in _request(2).items() if k != "ts"},
        _request(3, ts="2026-02-30T00:00:00Z"),
        _request(4, ip="10.0.0.256"),
        _request(5, prompt_tokens=1.5),
        _request(6, prompt_embedding=[0.1, "x"]),
        '{"request_id": "r7", ',
        _request(8, account_id=""),
        _request(9, prompt_tokens="12"),
        "[1, 2]",
        _request(11, status=2**40),
        _request(12),
    ]
    path = _write_jsonl(tmp_path / "requests.jsonl", lines)
    rejects = tmp_path / "out" / "rejects.jsonl"
    summary = ingest_files(store, "requests", [path], rejects, strict=True, progress=False)
    assert (summary.rows_read, summary.loaded, summary.rejected) == (12, 3, 9)
    assert summary.rows_read == summary.loaded + summary.duplicates + summary.rejected
    assert not summary.ok and summary.strict
    assert "9 rejected" in summary.line() and str(rejects) in summary.line()
    found = {r["line"]: r for r in _rejects(rejects)}
    expected = {
        2: "missing required field 'ts'",
        3: "ts: not an RFC 3339 timestamp",
        4: "ip: not an IP address",
        5: "prompt_tokens: not a 32-bit integer",
        6: "prompt_embedding: not a non-empty array",
        7: "invalid JSON",
        8: "missing required field 'account_id'",
        10: "not a JSON object",
        11: "status: not a 32-bit integer",
    }
    assert sorted(found) == sorted(expected)
    for line, reason in expected.items():
        assert reason in found[line]["reason"], found[line]
        assert found[line]["file"] == str(path)
    assert found[7]["raw"] == '{"request_id": "r7", '
    assert json.loads(found[4]["raw"])["ip"] == "10.0.0.256"
    stored = _stored(store, t.requests)
    assert set(stored["request_id"]) == {"r1", "r9", "r12", "r100", "r101"}
    assert stored.set_index("request_id").loc["r9", "prompt_tokens"] == 12


def test_strict_only_changes_the_verdict(store: Store, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "r.jsonl", [_request(1), _request(2, ts="nope")])
    lenient = ingest_files(store, "requests", [path], tmp_path / "rej.jsonl", progress=False)
    assert lenient.ok and lenient.rejected == 1 and lenient.loaded == 1
    strict = ingest_files(store, "requests", [path], tmp_path / "rej.jsonl", strict=True)
    assert not strict.ok and strict.rejected == 1 and strict.duplicates == 1
    clean = ingest_frame(store, "requests", pd.DataFrame([_request(3)]))
    assert clean.ok and clean.rejects_path is None


def test_values_are_stored_in_canonical_form(store: Store) -> None:
    frame = pd.DataFrame(
        [
            _request(
                1,
                ts="2026-01-01T02:00:00.250+02:00",
                ip="2001:DB8:0::1",
                prompt="Think step by step, then rate the response on a scale of 1 to 10.",
                prompt_embedding="[ 0.5, -1e-3,\n 2 ]",
            ),
            _request(2, ts="2026-01-01 00:00:01", ip="::ffff:192.0.2.7", prompt=None),
        ]
    )
    assert ingest_frame(store, "requests", frame).loaded == 2
    stored = _stored(store, t.requests).set_index("request_id")
    assert stored.loc["r1", "ts"] == pd.Timestamp("2026-01-01T00:00:00.250Z")
    assert stored.loc["r2", "ts"] == pd.Timestamp("2026-01-01T00:00:01Z")
    assert stored.loc["r1", "ip"] == "2001:db8::1"
    assert stored.loc["r2", "ip"] == "192.0.2.7"
    assert stored.loc["r1", "markers"] == COT | RUBRIC
    assert stored.loc["r2", "markers"] == 0
    assert stored.loc["r1", "prompt_embedding"] == "[0.5,-1e-3,2]"
    assert pd.isna(stored.loc["r2", "prompt_embedding"])


def _account(account_id: str, created_at: str, **fields: object) -> dict:
    return {"account_id": account_id, "created_at": created_at, **fields}


def test_accounts_upsert_keeps_fields_a_later_record_leaves_out(store: Store) -> None:
    first = pd.DataFrame(
        [
            _account("a1", "2026-01-01T00:00:00Z", org_id="o1", email_domain="Example.COM"),
            _account("a2", "2026-01-02T00:00:00Z", country="de"),
        ]
    )
    assert ingest_frame(store, "accounts", first).loaded == 2
    later = pd.DataFrame(
        [
            _account("a1", "2026-01-03T00:00:00Z", payment_fingerprint="card-1"),
            _account("a1", "2026-01-04T00:00:00Z", org_id="o2"),
            _account("a3", "2026-01-05T00:00:00Z"),
        ]
    )
    summary = ingest_frame(store, "accounts", later)
    assert (summary.loaded, summary.duplicates, summary.rejected) == (3, 0, 0)
    stored = _stored(store, t.accounts).set_index("account_id")
    assert len(stored) == 3
    a1 = stored.loc["a1"]
    assert a1["created_at"] == pd.Timestamp("2026-01-04T00:00:00Z")
    assert (a1["org_id"], a1["payment_fingerprint"], a1["email_domain"]) == (
        "o2",
        "card-1",
        "example.com",
    )
    assert stored.loc["a2", "country"] == "DE"
    assert not stored["inferred"].astype(bool).any()


def test_requests_of_unknown_accounts_create_inferred_ones(store: Store) -> None:
    ingest_frame(store, "accounts", pd.DataFrame([_account("known", "2026-01-01T12:00:00Z")]))
    requests = pd.DataFrame(
        [
            _request(1, account_id="new", ts="2026-01-02T00:00:00Z"),
            _request(2, account_id="new", ts="2026-01-01T18:00:00Z"),
            _request(3, account_id="known", ts="2026-01-01T06:00:00Z"),
        ]
    )
    ingest_frame(store, "requests", requests)
    stored = _stored(store, t.accounts).set_index("account_id")
    assert bool(stored.loc["new", "inferred"]) is True
    assert stored.loc["new", "created_at"] == pd.Timestamp("2026-01-01T18:00:00Z")
    assert bool(stored.loc["known", "inferred"]) is False
    assert stored.loc["known", "created_at"] == pd.Timestamp("2026-01-01T12:00:00Z")

    earlier = pd.DataFrame([_request(4, account_id="new", ts="2026-01-01T09:00:00Z")])
    ingest_frame(store, "requests", earlier)
    stored = _stored(store, t.accounts).set_index("account_id")
    assert stored.loc["new", "created_at"] == pd.Timestamp("2026-01-01T09:00:00Z")

    record = pd.DataFrame([_account("new", "2026-01-01T10:00:00Z", org_id="o")])
    ingest_frame(store, "accounts", record)
    ingest_frame(
        store, "requests", pd.DataFrame([_request(5, account_id="new", ts="2026-01-01T00:00:00Z")])
    )
    stored = _stored(store, t.accounts).set_index("account_id")
    assert bool(stored.loc["new", "inferred"]) is False
    assert stored.loc["new", "created_at"] == pd.Timestamp("2026-01-01T10:00:00Z")
    assert stored.loc["new", "org_id"] == "o"


def test_one_ingest_lowers_an_inferred_account_from_a_later_chunk(store: Store) -> None:
    """Chunks after the first skip accounts already handled unless they hold an earlier
    request: the earliest request of the whole input still sets ``created_at``."""
    requests = pd.DataFrame(
        [
            _request(1, account_id="a", ts="2026-01-02T10:00:00Z"),
            _request(2, account_id="b", ts="2026-01-02T11:00:00Z"),
            _request(3, account_id="a", ts="2026-01-02T12:00:00Z"),  # later: nothing to do
            _request(4, account_id="c", ts="2026-01-02T12:00:00Z"),
            _request(5, account_id="a", ts="2026-01-01T09:00:00Z"),  # earlier: lowers "a"
            _request(6, account_id="b", ts="2026-01-03T00:00:00Z"),
        ]
    )
    summary = ingest_frame(store, "requests", requests, chunk_rows=2)
    assert summary.loaded == 6
    stored = _stored(store, t.accounts).set_index("account_id")
    assert sorted(stored.index) == ["a", "b", "c"]
    assert stored.loc["a", "created_at"] == pd.Timestamp("2026-01-01T09:00:00Z")
    assert stored.loc["b", "created_at"] == pd.Timestamp("2026-01-02T11:00:00Z")
    assert stored["inferred"].astype(bool).all()


def test_a_chunk_mixing_stored_and_new_requests_counts_exactly(
    store: Store, tmp_path: Path
) -> None:
    first = ingest_frame(store, "requests", pd.DataFrame([_request(i) for i in (0, 2, 4)]))
    assert first.loaded == 3
    both = ingest_frame(store, "requests", pd.DataFrame([_request(i) for i in range(6)]))
    assert (both.loaded, both.duplicates) == (3, 3)
    assert sorted(_stored(store, t.requests)["request_id"]) == [f"r{i}" for i in range(6)]


def test_loads_keep_the_stored_time_range(store: Store) -> None:
    """The window is placed from the stored extent, which every load widens."""
    assert store.data_time_range() == (None, None)
    ingest_frame(store, "requests", pd.DataFrame([_request(5), _request(9)]))
    ingest_frame(store, "requests", pd.DataFrame([_request(1), _request(7)]))
    oldest, newest = store.data_time_range()
    assert oldest == dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert newest == dt.datetime(2026, 1, 1, 0, 0, 9, tzinfo=dt.UTC)


def test_ingest_frame_accepts_typed_columns(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "request_id": ["x1", "x2"],
            "ts": pd.to_datetime(["2026-03-01 10:00", "2026-03-01 11:00"]).tz_localize("UTC"),
            "account_id": [7, 8],
            "ip": ["10.0.0.1", "10.0.0.2"],
            "prompt_tokens": [5, None],
            "prompt_embedding": [[0.25, 1.0], None],
        }
    )
    summary = ingest_frame(store, "requests", frame)
    assert (summary.loaded, summary.rejected) == (2, 0)
    stored = _stored(store, t.requests).set_index("request_id")
    assert list(stored["account_id"]) == ["7", "8"]
    assert stored.loc["x1", "prompt_embedding"] == "[0.25,1.0]"
    assert stored.loc["x1", "prompt_tokens"] == 5 and pd.isna(stored.loc["x2", "prompt_tokens"])


def test_summary_adds_up_and_reads_on_one_line() -> None:
    parts = [
        IngestSummary("accounts", 3, 3, 0, 0, 1.0, None),
        IngestSummary("requests", 10, 6, 3, 1, 1.0, Path("rej.jsonl")),
    ]
    total = IngestSummary.combine("accounts+requests", parts)
    assert (total.rows_read, total.loaded, total.duplicates, total.rejected) == (13, 9, 3, 1)
    assert total.line().count(";") >= 1 and "\n" not in total.line()
    assert total.rejects_path == Path("rej.jsonl")


def test_unknown_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="accounts, requests"):
        ingest_frame(store, "payments", pd.DataFrame())


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.none()
    ),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
    separator=st.sampled_from(["T", " ", "t"]),
    zulu=st.booleans(),
)
def test_timestamps_match_the_standard_library(
    moment: dt.datetime, offset_minutes: int, separator: str, zulu: bool
) -> None:
    zone = dt.UTC if zulu else dt.timezone(dt.timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    text = aware.isoformat(sep=separator)
    if zulu:
        text = text.replace("+00:00", "Z")
    frame = pd.DataFrame({"account_id": ["a"], "created_at": [text]})
    parsed = check_rows("accounts", frame).rows["created_at"].iloc[0]
    assert parsed == pd.Timestamp(aware.astimezone(dt.UTC))


@settings(max_examples=60, deadline=None)
@given(
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    upper=st.booleans(),
    exploded=st.booleans(),
)
def test_ip_addresses_are_normalised_like_ipaddress(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, upper: bool, exploded: bool
) -> None:
    text = address.exploded if exploded else str(address)
    frame = pd.DataFrame(
        {"request_id": ["r"], "ts": ["2026-01-01T00:00:00Z"], "account_id": ["a"]}
    ).assign(ip=text.upper() if upper else text)
    expected = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        expected = address.ipv4_mapped
    checked = check_rows("requests", frame)
    assert checked.rows["ip"].tolist() == [str(expected)]


def test_concurrent_loads_of_one_file_store_each_request_once(store: Store, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = _write_jsonl(tmp_path / "requests.jsonl", [_request(i) for i in range(300)])
    with ThreadPoolExecutor(3) as pool:
        runs = list(
            pool.map(
                lambda _: ingest_files(store, "requests", [path], None, chunk_rows=40), range(3)
            )
        )
    assert sum(r.loaded for r in runs) == 300
    assert sum(r.duplicates for r in runs) == 600
    assert len(_stored(store, t.requests)) == 300


@pytest.mark.postgres
def test_postgres_copy_falls_back_when_requests_are_stored_meanwhile(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COPY path meets stored request_ids: first those it finds, then (as if another writer
    stored one right after the lookup) through staging; every path counts exactly."""
    import sentra_graph.store.bulk as bulk
    from sentra_graph.store import open_store

    store = open_store(postgres_url)
    store.init()
    with store.begin() as conn:
        conn.execute(t.requests.delete())
    ingest_frame(store, "requests", pd.DataFrame([_request(i) for i in (1, 3)]))
    rows = check_rows("requests", pd.DataFrame([_request(i) for i in range(6)])).rows
    rows["markers"] = 0
    with store.begin() as conn, conn.connection.driver_connection.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        assert bulk._pg_insert_new(cur, rows) == 4
        cur.connection.rollback()

    copies = []
    original = bulk._pg_copy_requests

    def copy_racing_another_writer(cur, new):  # type: ignore[no-untyped-def]
        copies.append(len(new))
        if len(copies) == 2:
            with store.begin() as other:
                other.execute(t.requests.insert().values(_request(4, ts=dt.datetime.now(dt.UTC))))
        return original(cur, new)

    monkeypatch.setattr(bulk, "_pg_copy_requests", copy_racing_another_writer)
    with store.begin() as conn, conn.connection.driver_connection.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        assert bulk._pg_insert_new(cur, rows) == 3
    assert copies == [6, 4]
    assert sorted(_stored(store, t.requests)["request_id"]) == [f"r{i}" for i in range(6)]
    store.dispose()


def test_a_chunk_aborted_by_a_deadlock_is_loaded_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaders side by side may deadlock on rows both touch; the aborted one tries again."""
    import psycopg

    import sentra_graph.store.bulk as bulk
    from sentra_graph.store import open_store

    store = open_store(postgres_url)
    store.init()
    with store.begin() as conn:
        conn.execute(t.requests.delete())
    attempts = []
    original = bulk.RequestLoader._pg_load

    def deadlocked_once(self, rows, seen):  # type: ignore[no-untyped-def]
        attempts.append(len(rows))
        if len(attempts) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return original(self, rows, seen)

    monkeypatch.setattr(bulk.RequestLoader, "_pg_load", deadlocked_once)
    summary = ingest_frame(store, "requests", pd.DataFrame([_request(i) for i in range(5)]))
    assert attempts == [5, 5]
    assert summary.loaded == 5
    assert len(_stored(store, t.requests)) == 5

    def always_deadlocked(self, rows, seen):  # type: ignore[no-untyped-def]
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(bulk.RequestLoader, "_pg_load", always_deadlocked)
    with pytest.raises(psycopg.errors.DeadlockDetected):
        ingest_frame(store, "requests", pd.DataFrame([_request(9)]))
    store.dispose()


def test_requests_repeated_across_chunks_loaded_side_by_side_count_once(store: Store) -> None:
    """Chunks in flight together repeat each other's ids in crossed order and name the same
    new accounts: every id is stored once and counted once."""
    ids = list(range(40))
    crossed = ids[:20] + ids[20:][::-1] + ids[::-1]  # 40 new, then all 40 again, reversed
    frame = pd.DataFrame([_request(i, account_id=f"acct{i % 7}") for i in crossed])
    summary = ingest_frame(store, "requests", frame, chunk_rows=10)
    assert (summary.loaded, summary.duplicates) == (40, 40)
    assert sorted(_stored(store, t.requests)["request_id"]) == sorted(f"r{i}" for i in ids)
    assert sorted(_stored(store, t.accounts)["account_id"]) == [f"acct{i}" for i in range(7)]


def test_the_first_occurrence_wins_when_a_later_chunk_loads_first(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks load side by side on PostgreSQL: even when the chunk holding a repeat would
    commit before the chunk holding the first occurrence, the first occurrence is stored."""
    import time

    import sentra_graph.store.bulk as bulk

    original = bulk.RequestLoader.load

    def first_chunk_slow(self, rows):  # type: ignore[no-untyped-def]
        if "10.9.9.1" in set(rows["ip"]):
            time.sleep(0.5)  # the next chunk, with the repeat, gets ahead
        return original(self, rows)

    monkeypatch.setattr(bulk.RequestLoader, "load", first_chunk_slow)
    rows = [_request(1, ip="10.9.9.1"), _request(2), _request(1, ip="10.9.9.2"), _request(3)]
    path = _write_jsonl(tmp_path / "requests.jsonl", rows)
    summary = ingest_files(store, "requests", [path], None, chunk_rows=2, progress=False)
    assert (summary.loaded, summary.duplicates) == (3, 1)
    assert _stored(store, t.requests).set_index("request_id").loc["r1", "ip"] == "10.9.9.1"
