"""Migrations: the schema they build is the one the code reads, and upgrades keep data usable."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from sentra_graph.store import Store, open_store
from sentra_graph.store import schema as t
from sentra_graph.store.core import MIGRATIONS_DIR


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on a database of its own with no schema at all."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield store
        store.dispose()
        return
    session_url = sa.engine.make_url(request.getfixturevalue("postgres_url"))
    name = f"sentra_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(session_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    store = open_store(session_url.set(database=name).render_as_string(hide_password=False))
    yield store
    store.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(store: Store, step: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic ``step`` (``command.upgrade`` or ``command.downgrade``) to ``revision``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        step(cfg, revision)


def _upgrade(store: Store, revision: str) -> None:
    _migrate(store, command.upgrade, revision)


def test_migrations_build_the_schema_the_code_declares(empty_store: Store) -> None:
    empty_store.init()
    with empty_store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert differences == []


def test_upgrading_a_store_with_requests_records_their_time_range(empty_store: Store) -> None:
    _upgrade(empty_store, "0002")
    times = [dt.datetime(2026, 1, day, 12, tzinfo=dt.UTC) for day in (3, 1, 7)]
    with empty_store.begin() as conn:
        conn.execute(
            t.requests.insert(),
            [
                {"request_id": f"r{i}", "ts": ts, "account_id": "a", "ip": "10.0.0.1"}
                for i, ts in enumerate(times)
            ],
        )
    empty_store.init()
    assert empty_store.data_time_range() == (min(times), max(times))
    if empty_store.is_postgres:
        with empty_store.connect() as conn:
            method = conn.execute(
                sa.text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_requests_ts'"
                )
            ).scalar_one()
        assert method == "brin"


def _downgrade(store: Store, revision: str) -> None:
    _migrate(store, command.downgrade, revision)


def test_template_ids_move_to_their_own_table_and_back(empty_store: Store) -> None:
    _upgrade(empty_store, "0003")
    ts = dt.datetime(2026, 1, 5, 8, 30, 0, 250_000, tzinfo=dt.UTC)
    insert = sa.text(
        "INSERT INTO requests (request_id, ts, account_id, ip, template_id) "
        "VALUES (:rid, :ts, 'a', '10.0.0.1', :tid)"
    )
    with empty_store.begin() as conn:
        conn.execute(
            insert, [{"rid": "r1", "ts": ts, "tid": 4}, {"rid": "r2", "ts": ts, "tid": None}]
        )
    empty_store.init()
    with empty_store.connect() as conn:
        moved = conn.execute(sa.select(t.request_templates)).all()
        columns = [c["name"] for c in sa.inspect(conn).get_columns("requests")]
    assert [(row.request_id, row.template_id) for row in moved] == [("r1", 4)]
    assert "template_id" not in columns
    _, window = empty_store.read_window(ts, ts + dt.timedelta(seconds=1))
    templates = window.set_index("request_id")["template_id"]
    assert templates["r1"] == 4 and math.isnan(templates["r2"])

    _downgrade(empty_store, "0003")
    with empty_store.connect() as conn:
        back = conn.execute(
            sa.text("SELECT request_id, template_id FROM requests ORDER BY 1")
        ).all()
    assert [tuple(row) for row in back] == [("r1", 4), ("r2", None)]
