"""Reading gateway tables in place: only rows past the stored watermark, names never pasted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from sentra_graph.config import ConfigError, Settings, load_settings
from sentra_graph.ingest.source import sync_source
from sentra_graph.store import Store, StoreError, open_store
from sentra_graph.store import schema as t


def _settings(store: Store, tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(
        database_url=store.url, rejects_path=str(tmp_path / "rejects.jsonl"), **overrides
    )


def _count(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _gateway_rows(start: int, stop: int) -> list[dict]:
    return [
        {
            "call_id": start + i,
            "at": f"2026-01-01 00:{(start + i) % 60:02d}:00",
            "customer": f"c{(start + i) % 4}",
            "client_ip": f"10.1.0.{start + i}",
            "ua": "sdk/1",
        }
        for i in range(stop - start)
    ]


@pytest.fixture
def gateway(store: Store) -> Iterator[str]:
    """A plain gateway table in the store's own database, with its own column names."""
    with store.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS gw_calls"))
        conn.execute(
            sa.text(
                "CREATE TABLE gw_calls (call_id integer, at text, customer text, "
                "client_ip text, ua text, prompt_tokens integer)"
            )
        )
    yield "gw_calls"
    with store.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS gw_calls"))


def _insert(store: Store, rows: list[dict]) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO gw_calls (call_id, at, customer, client_ip, ua) "
                "VALUES (:call_id, :at, :customer, :client_ip, :ua)"
            ),
            rows,
        )


MAPPING = {"request_id": "call_id", "ts": "at", "account_id": "customer", "ip": "client_ip"}


def test_sync_reads_only_rows_past_the_watermark(
    store: Store, gateway: str, tmp_path: Path
) -> None:
    settings = _settings(
        store,
        tmp_path,
        source_requests_table=gateway,
        source_requests_columns={**MAPPING, "user_agent": "ua"},
        source_watermark_column="call_id",
    )
    _insert(store, _gateway_rows(0, 10))
    first = sync_source(store, settings)
    assert (first.rows_read, first.loaded, first.rejected) == (10, 10, 0)
    assert store.get_watermark(f"requests:{gateway}") == "9"
    assert sync_source(store, settings).rows_read == 0

    bad = {**_gateway_rows(12, 13)[0], "client_ip": "bogus"}
    _insert(store, _gateway_rows(10, 12) + [bad])
    second = sync_source(store, settings)
    assert (second.rows_read, second.loaded, second.rejected) == (3, 2, 1)
    assert store.get_watermark(f"requests:{gateway}") == "12"
    reject = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert reject["file"] == f"table {gateway}" and "ip: not an IP address" in reject["reason"]
    assert reject["raw"]["_watermark"] == "12"
    assert _count(store, t.requests) == 12
    with store.connect() as conn:
        agents = conn.execute(sa.select(t.requests.c.user_agent).distinct()).scalars().all()
    assert agents == ["sdk/1"]
    assert _count(store, t.accounts) == 4  # inferred from the requests


def test_accounts_sync_first_and_fall_back_to_created_at(
    store: Store, gateway: str, tmp_path: Path
) -> None:
    with store.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS billing_accounts"))
        conn.execute(sa.text("CREATE TABLE billing_accounts (id text, signup text, card text)"))
        conn.execute(
            sa.text("INSERT INTO billing_accounts VALUES ('c0', '2025-12-01 00:00:00', 'k1')")
        )
    _insert(store, _gateway_rows(0, 4))
    settings = _settings(
        store,
        tmp_path,
        source_accounts_table="billing_accounts",
        source_accounts_columns={
            "account_id": "id",
            "created_at": "signup",
            "payment_fingerprint": "card",
        },
        source_requests_table=gateway,
        source_requests_columns=MAPPING,
        source_watermark_column="call_id",
    )
    summary = sync_source(store, settings)
    assert [p.kind for p in summary.parts] == ["accounts", "requests"]
    assert (summary.parts[0].loaded, summary.parts[1].loaded) == (1, 4)
    assert store.get_watermark("accounts:billing_accounts") == "2025-12-01 00:00:00"
    with store.connect() as conn:
        query = sa.select(t.accounts.c.account_id, t.accounts.c.inferred)
        inferred = {account: bool(flag) for account, flag in conn.execute(query)}
    assert not inferred.pop("c0") and all(inferred.values()) and len(inferred) == 3
    with store.begin() as conn:
        conn.execute(sa.text("DROP TABLE billing_accounts"))


def test_configuration_mistakes_are_named(store: Store, gateway: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to sync"):
        sync_source(store, _settings(store, tmp_path))
    with pytest.raises(StoreError, match="is not an identifier"):
        sync_source(store, _settings(store, tmp_path, source_requests_table="gw; DROP TABLE x"))
    with pytest.raises(StoreError, match="does not exist"):
        sync_source(store, _settings(store, tmp_path, source_requests_table="nowhere"))
    with pytest.raises(ConfigError, match="SENTRA_SOURCE_REQUESTS_COLUMNS: colour"):
        sync_source(
            store,
            _settings(
                store,
                tmp_path,
                source_requests_table=gateway,
                source_requests_columns={"colour": "x"},
            ),
        )
    with pytest.raises(ConfigError, match="no column for request_id, ts, account_id, ip"):
        sync_source(store, _settings(store, tmp_path, source_requests_table=gateway))
    with pytest.raises(ConfigError, match="SENTRA_SOURCE_WATERMARK_COLUMN"):
        sync_source(
            store,
            _settings(
                store, tmp_path, source_requests_table=gateway, source_requests_columns=MAPPING
            ),
        )
    assert _count(store, t.requests) == 0


@pytest.mark.postgres
def test_postgres_gateway_schema_with_native_types(postgres_url: str, tmp_path: Path) -> None:
    """A schema-qualified, mixed-case table with timestamptz, inet and float8[] columns."""
    store = open_store(postgres_url)
    store.init()
    with store.begin() as conn:
        for table in (t.requests, t.accounts, t.source_state):
            conn.execute(table.delete())
        conn.execute(sa.text("DROP SCHEMA IF EXISTS gateway CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA gateway"))
        conn.execute(
            sa.text(
                'CREATE TABLE gateway."Calls" (id bigserial, ts timestamptz NOT NULL, '
                "account text, ip inet, embedding float8[], tokens bigint)"
            )
        )

    def add(values: str) -> None:
        with store.begin() as conn:
            conn.execute(
                sa.text(
                    'INSERT INTO gateway."Calls" (ts, account, ip, embedding, tokens) '
                    f"VALUES {values}"
                )
            )

    add(
        "('2026-01-01 10:00+02', 'a', '10.0.0.1', '{0.5,1}', 7), "
        "('2026-01-01 09:00+00', 'b', '2001:db8::1', NULL, NULL)"
    )
    settings = _settings(
        store,
        tmp_path,
        source_requests_table="gateway.Calls",
        source_requests_columns={
            "request_id": "id",
            "account_id": "account",
            "prompt_embedding": "embedding",
            "prompt_tokens": "tokens",
        },
        source_watermark_column="ts",
    )
    assert sync_source(store, settings).loaded == 2
    assert store.get_watermark("requests:gateway.Calls") == "2026-01-01T09:00:00.000000+00:00"
    add(
        "('2026-01-01 08:59+00', 'late', '10.0.0.9', NULL, 1), "
        "('2026-01-02', 'c', '10.0.0.3', NULL, 2)"
    )
    second = sync_source(store, settings)
    assert (second.rows_read, second.loaded) == (1, 1)  # the late row is behind the watermark
    with store.connect() as conn:
        stored = pd.DataFrame(
            conn.execute(
                sa.select(
                    t.requests.c.account_id, t.requests.c.ip, t.requests.c.prompt_embedding
                ).order_by(t.requests.c.account_id)
            ).all()
        )
    assert stored["account_id"].tolist() == ["a", "b", "c"]
    assert stored["ip"].tolist() == ["10.0.0.1", "2001:db8::1", "10.0.0.3"]
    assert stored["prompt_embedding"].iloc[0] == "[0.5,1]"
    with store.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA gateway CASCADE"))
    store.dispose()
