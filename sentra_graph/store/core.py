"""The store's doorway: one engine, the backend's name, schema migration.

Every other module of the package reaches the database through a :class:`Store`; the
algorithm packages never do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


class StoreError(RuntimeError):
    """A store operation failed; the message says which and why."""


def normalise_url(url: str) -> str:
    """Return a SQLAlchemy URL that uses psycopg 3 for PostgreSQL.

    >>> normalise_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> normalise_url("sqlite:///x.db")
    'sqlite:///x.db'
    """
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back without an offset; they are UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StoreCore:
    """Connection handling shared by every part of :class:`~sentra_graph.store.Store`."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine: Engine = sa.create_engine(self.url, future=True, pool_pre_ping=True)
        if self.backend == SQLITE:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.backend == POSTGRESQL

    @property
    def libpq_url(self) -> str:
        """The URL in the form libpq, psycopg and ADBC understand (PostgreSQL only)."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def init(self) -> str:
        """Create or upgrade the schema to the latest revision; return that revision."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            revision = MigrationContext.configure(conn).get_current_revision()
        return revision or ""

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def require_schema(self) -> None:
        """Fail with the fix named when `init` has not been run on this store."""
        if self.schema_revision() is None:
            raise StoreError(
                f"the store at {self.engine.url.render_as_string()} has no schema: "
                "run `sentra-graph init` first"
            )

    def dispose(self) -> None:
        self.engine.dispose()
