"""Shared fixtures: the same tests run on the embedded store and on a real PostgreSQL.

PostgreSQL tests use ``SENTRA_TEST_POSTGRES_URL`` (default: the local server at
127.0.0.1:5432, user postgres, database test). Each test session creates its own scratch
database there and drops it at the end. Without a reachable server they are skipped with the
reason; CI sets ``SENTRA_REQUIRE_POSTGRES=1`` so a skip becomes a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sentra_graph.store import Store, open_store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _admin_url() -> str:
    return os.environ.get("SENTRA_TEST_POSTGRES_URL", DEFAULT_PG)


def _postgres_problem() -> str | None:
    try:
        engine = sa.create_engine(open_store(_admin_url()).url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as error:  # any failure to connect means: no server to test against
        return f"PostgreSQL not reachable at {_admin_url()}: {str(error).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a scratch database on the test server, dropped after the session."""
    problem = _postgres_problem()
    if problem:
        if os.environ.get("SENTRA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SENTRA_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    name = f"sentra_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(open_store(_admin_url()).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(open_store(_admin_url()).url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset(store: Store) -> None:
    from sentra_graph.store.schema import metadata

    with store.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An initialised, empty store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sentra.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    store.init()
    _reset(store)
    yield store
    store.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'sentra.db'}")
    store.init()
    yield store
    store.dispose()
