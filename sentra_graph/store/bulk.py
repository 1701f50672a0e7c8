"""Bulk loads of validated accounts and requests.

PostgreSQL: rows are written as CSV by Arrow and sent with ``COPY ... FROM STDIN``; requests
go straight into ``requests`` when none is stored yet, else the stored ones are left out (see
:func:`_pg_insert_new`), and the count of new rows is exact. Accounts go through a temporary
staging table and ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``. SQLite: ``executemany`` in
one transaction per chunk. Every requests load widens ``request_extent`` (oldest and newest
request time) in the same transaction.

Both take rows already checked by :mod:`sentra_graph.ingest.validate`: canonical columns
(timestamps UTC), requests unique by request_id and accounts unique by account_id.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sentra_graph.store import schema as t
from sentra_graph.store.core import StoreCore, StoreError

if TYPE_CHECKING:
    import psycopg

REQUEST_LOAD_COLUMNS = [c.name for c in t.requests.columns if c.name != "template_id"]
"""Columns a load writes: the contract's and ``markers``; ``template_id`` comes later."""
ACCOUNT_LOAD_COLUMNS = [c.name for c in t.accounts.columns if c.name != "inferred"]
_ACCOUNT_OPTIONAL = ACCOUNT_LOAD_COLUMNS[2:]

log = logging.getLogger(__name__)

_PG_STAGE_REQUESTS = """
CREATE TEMP TABLE _stage_requests (
    request_id text, ts timestamptz, account_id text, ip text, api_key_id text,
    user_agent text, tls_fingerprint text, model text, prompt text, prompt_embedding text,
    prompt_tokens integer, completion_tokens integer, status integer, markers smallint
) ON COMMIT DROP
"""
_PG_STAGE_ACCOUNTS = """
CREATE TEMP TABLE _stage_accounts (
    account_id text, created_at timestamptz, org_id text, email_domain text,
    payment_fingerprint text, signup_ip text, country text
) ON COMMIT DROP
"""
_PG_STAGE_SEEN = (
    "CREATE TEMP TABLE _stage_seen (account_id text, first_ts timestamptz) ON COMMIT DROP"
)
_REQUEST_LIST = ", ".join(REQUEST_LOAD_COLUMNS)
_ACCOUNT_LIST = ", ".join(ACCOUNT_LOAD_COLUMNS)
_ACCOUNT_UPDATES = ", ".join(
    ["created_at = excluded.created_at"]
    + [f"{c} = COALESCE(excluded.{c}, accounts.{c})" for c in _ACCOUNT_OPTIONAL]
    + ["inferred = false"]
)

# An account known only from its requests is created with the first request time and
# ``inferred``; a real accounts record later replaces it, an earlier request lowers it.
_NEW_INFERRED = (
    "INSERT INTO accounts (account_id, created_at, inferred) "
    "SELECT account_id, first_ts, true FROM _stage_seen s WHERE NOT EXISTS "
    "(SELECT 1 FROM accounts a WHERE a.account_id = s.account_id) "
    "ORDER BY account_id ON CONFLICT (account_id) DO NOTHING"  # one lock order for all loaders
)
_LOWER_INFERRED = (
    "UPDATE accounts SET created_at = s.first_ts FROM _stage_seen s "
    "WHERE accounts.account_id = s.account_id AND accounts.inferred "
    "AND s.first_ts < accounts.created_at"
)
_SQLITE_INFERRED = (
    "INSERT INTO accounts (account_id, created_at, inferred) VALUES (?, ?, true) "
    "ON CONFLICT (account_id) DO UPDATE SET created_at = excluded.created_at "
    "WHERE accounts.inferred AND excluded.created_at < accounts.created_at"
)


_PG_EXTENT = (  # parameter markers differ between psycopg and ADBC: filled in by format()
    "INSERT INTO request_extent (id, oldest, newest) VALUES (1, {}, {}) "
    "ON CONFLICT (id) DO UPDATE SET oldest = LEAST(request_extent.oldest, excluded.oldest), "
    "newest = GREATEST(request_extent.newest, excluded.newest)"
)
_SQLITE_EXTENT = (
    "INSERT INTO request_extent (id, oldest, newest) VALUES (1, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET oldest = MIN(request_extent.oldest, excluded.oldest), "
    "newest = MAX(request_extent.newest, excluded.newest)"
)


_UNIQUE_VIOLATION = "23505"
_DEADLOCK = "40P01"
_DEADLOCK_ATTEMPTS = 5
_ARROW_TYPES: dict[type, pa.DataType] = {
    sa.Text: pa.string(),
    sa.Integer: pa.int32(),
    sa.SmallInteger: pa.int16(),
    sa.DateTime: pa.timestamp("us", "UTC"),
}
_STAGE_SEEN = sa.Table(
    "_stage_seen",
    sa.MetaData(),
    sa.Column("account_id", sa.Text),
    sa.Column("first_ts", sa.DateTime(timezone=True)),
)


class KnownAccounts:
    """The accounts one ingest has already made sure are stored, each with the earliest request
    time it has handed over for it.

    A later chunk need not stage such an account again unless it holds an earlier request (the
    one case that can still lower an inferred account's ``created_at``). Logs arrive in about
    time order, so after the first chunks almost every account a chunk names is skipped.

    >>> known = KnownAccounts()
    >>> first = pd.Series(pd.to_datetime(["2026-01-02", "2026-01-03"], utc=True), index=["a", "b"])
    >>> known.add(first)
    >>> later = pd.Series(pd.to_datetime(["2026-01-05", "2026-01-01", "2026-01-04"], utc=True),
    ...                   index=["a", "b", "c"])
    >>> list(known.news(later).index)
    ['b', 'c']
    """

    def __init__(self) -> None:
        self._first = pd.Series(dtype="datetime64[us, UTC]")
        self._lock = threading.Lock()  # loaders of one ingest share it

    def news(self, first: pd.Series) -> pd.Series:
        """The entries of ``first`` (account_id -> first request time) not covered yet."""
        known = self._first.reindex(first.index)
        keep = known.isna().to_numpy() | (first < known).to_numpy()
        return first[keep]

    def add(self, first: pd.Series) -> None:
        """Record entries returned by :meth:`news`, once they are committed. An entry
        recorded meanwhile by another loader with an earlier time keeps that time."""
        if first.empty:
            return
        with self._lock:
            known = self._first.reindex(first.index)
            first = first[known.isna().to_numpy() | (first < known).to_numpy()]
            rest = self._first.drop(first.index, errors="ignore")
            self._first = pd.concat([rest, first]) if len(rest) else first.copy()


class RequestLoader:
    """Loads the request chunks of one ingest, one at a time (from any one thread at a time).

    It remembers the accounts it has made sure are stored (:class:`KnownAccounts`) and, on
    PostgreSQL, keeps one ADBC connection for the chunks: a chunk none of whose requests is
    stored yet (the usual case) goes in as Arrow through ADBC's binary COPY, in one
    transaction with its accounts; binary COPY costs the server about a quarter less CPU than
    CSV (no text parsing of times and numbers) and no CSV is formatted in Python. A chunk that
    repeats a stored request_id is rolled back and takes the exact path instead
    (:func:`_pg_insert_new`).
    """

    def __init__(self, store: BulkMixin, known: KnownAccounts | None = None) -> None:
        self.store = store
        self.known = known if known is not None else KnownAccounts()
        self._adbc: Any = None

    def __enter__(self) -> RequestLoader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None

    def load(self, rows: pd.DataFrame) -> int:
        """Load one chunk (see :meth:`BulkMixin.load_requests`); return how many were new."""
        if rows.empty:
            return 0
        seen = self.known.news(_first_seen(rows))
        if not self.store.is_postgres:
            inserted = self.store._sqlite_load_requests(rows, seen)
        else:
            for attempt in itertools.count(1):
                try:
                    inserted = self._pg_load(rows, seen)
                    break
                except Exception as error:
                    # Loaders working side by side can lock the same rows in opposite orders
                    # (a request_id repeated across their chunks, inferred accounts lowered by
                    # both); the server then aborts one of them, which simply tries again.
                    if attempt == _DEADLOCK_ATTEMPTS or _sqlstate(error) != _DEADLOCK:
                        raise
                    log.info("a chunk of requests met a deadlock; loading it again")
        self.known.add(seen)
        return inserted

    def _pg_load(self, rows: pd.DataFrame, seen: pd.Series) -> int:
        if self._load_new(rows, seen):
            return len(rows)
        return self.store._pg_load_requests(rows, seen)

    def _load_new(self, rows: pd.DataFrame, seen: pd.Series) -> bool:
        """Load ``rows`` and their accounts in one transaction; False, with nothing written,
        when a request_id of ``rows`` is stored already."""
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc

        if self._adbc is None:
            self._adbc = adbc.connect(self.store.libpq_url)
        conn = self._adbc
        table = _arrow_table(rows, t.requests, REQUEST_LOAD_COLUMNS)
        try:
            with conn.cursor() as cur:
                try:
                    cur.adbc_ingest("requests", table, mode="append")
                except adbc_driver_manager.IntegrityError as error:
                    if _sqlstate(error) != _UNIQUE_VIOLATION:
                        raise
                    conn.rollback()
                    return False
                if len(seen):
                    stage = _arrow_table(_seen_frame(seen), _STAGE_SEEN, list(_STAGE_SEEN.c.keys()))
                    cur.execute("DROP TABLE IF EXISTS pg_temp._stage_seen")
                    cur.adbc_ingest("_stage_seen", stage, mode="create", temporary=True)
                    cur.execute(_NEW_INFERRED)
                    cur.execute(_LOWER_INFERRED)
                cur.execute(_PG_EXTENT.format("$1", "$2"), _extent(rows))
            conn.commit()
        except BaseException:
            self.close()  # the server rolls back what the closed connection had not committed
            raise
        return True


class BulkMixin(StoreCore):
    def load_requests(self, rows: pd.DataFrame) -> int:
        """Insert checked requests, skip those whose request_id is stored already, and create
        the accounts they name that are not stored yet; return how many requests were new.

        ``rows`` has :data:`REQUEST_LOAD_COLUMNS`, unique request_id, ``ts`` UTC. To load many
        chunks, :meth:`request_loader` keeps what one chunk learnt for the next.
        """
        with self.request_loader() as loader:
            return loader.load(rows)

    def request_loader(self, known: KnownAccounts | None = None) -> RequestLoader:
        """A loader of request chunks (see :class:`RequestLoader`); use it in ``with``.
        Loaders of one ingest working side by side share ``known``."""
        return RequestLoader(self, known)

    def load_accounts(self, rows: pd.DataFrame) -> int:
        """Upsert checked accounts (a field left null keeps its stored value; the account is no
        longer ``inferred``); return how many rows were written.

        ``rows`` has :data:`ACCOUNT_LOAD_COLUMNS`, unique account_id, ``created_at`` UTC.
        """
        if rows.empty:
            return 0
        if self.is_postgres:
            return self._pg_load_accounts(rows)
        return self._sqlite_load_accounts(rows)

    # ---- PostgreSQL ----------------------------------------------------------------------
    def _pg_load_requests(self, rows: pd.DataFrame, seen: pd.Series) -> int:
        """The exact path, for a chunk some of whose requests may be stored already."""
        with self.begin() as conn, _driver_cursor(conn) as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            inserted = _pg_insert_new(cur, rows)
            if len(seen):
                cur.execute(_PG_STAGE_SEEN)
                sql = "COPY _stage_seen (account_id, first_ts) FROM STDIN (FORMAT csv)"
                with cur.copy(sql) as cp:
                    cp.write(_copy_csv(_seen_frame(seen), ["account_id", "first_ts"]))
                cur.execute(_NEW_INFERRED)
                cur.execute(_LOWER_INFERRED)
            cur.execute(_PG_EXTENT.format("%s", "%s"), _extent(rows))
        return inserted

    def _pg_load_accounts(self, rows: pd.DataFrame) -> int:
        data = _copy_csv(rows, ACCOUNT_LOAD_COLUMNS)
        with self.begin() as conn, _driver_cursor(conn) as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute(_PG_STAGE_ACCOUNTS)
            with cur.copy(f"COPY _stage_accounts ({_ACCOUNT_LIST}) FROM STDIN (FORMAT csv)") as cp:
                cp.write(data)
            cur.execute(
                f"INSERT INTO accounts ({_ACCOUNT_LIST}, inferred) "
                f"SELECT {_ACCOUNT_LIST}, false FROM _stage_accounts "
                f"ON CONFLICT (account_id) DO UPDATE SET {_ACCOUNT_UPDATES}"
            )
            written = cur.rowcount
        return int(written)

    # ---- SQLite --------------------------------------------------------------------------
    def _sqlite_load_requests(self, rows: pd.DataFrame, seen: pd.Series) -> int:
        marks = ", ".join("?" * len(REQUEST_LOAD_COLUMNS))
        with self.begin() as conn:
            cur = _driver_cursor(conn)
            cur.executemany(
                f"INSERT INTO requests ({_REQUEST_LIST}) VALUES ({marks}) "
                "ON CONFLICT (request_id) DO NOTHING",
                _python_rows(rows, REQUEST_LOAD_COLUMNS),
            )
            inserted = cur.rowcount
            cur.executemany(
                _SQLITE_INFERRED, _python_rows(_seen_frame(seen), ["account_id", "first_ts"])
            )
            oldest, newest = _extent(rows)
            cur.execute(_SQLITE_EXTENT, (_sqlite_ts(oldest), _sqlite_ts(newest)))
            cur.close()
        return int(inserted)

    def _sqlite_load_accounts(self, rows: pd.DataFrame) -> int:
        marks = ", ".join("?" * len(ACCOUNT_LOAD_COLUMNS))
        with self.begin() as conn:
            cur = _driver_cursor(conn)
            cur.executemany(
                f"INSERT INTO accounts ({_ACCOUNT_LIST}, inferred) VALUES ({marks}, false) "
                f"ON CONFLICT (account_id) DO UPDATE SET {_ACCOUNT_UPDATES}",
                _python_rows(rows, ACCOUNT_LOAD_COLUMNS),
            )
            written = cur.rowcount
            cur.close()
        return int(written)


def _driver_cursor(conn: Connection) -> Any:
    """A cursor of the DBAPI connection under ``conn`` (psycopg or sqlite3)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise StoreError("the store's connection was closed during a load")
    return driver.cursor()


def _pg_insert_new(cur: psycopg.Cursor, rows: pd.DataFrame) -> int:
    """Insert the requests of ``rows`` not stored yet; return how many that was.

    COPY straight into ``requests`` is several times faster than ``INSERT ... SELECT`` (it
    inserts in batches), so it is tried first. If a request_id is stored already, the COPY
    stops at the first batch holding one (at most 1,000 rows or 64 kB), and the stored ids are
    looked up and left out; if another writer stores some of the rest meanwhile, the rows
    go through a staging table and ``ON CONFLICT DO NOTHING``. Each way counts exactly.
    """
    from psycopg.errors import UniqueViolation

    try:
        return _pg_copy_requests(cur, rows)
    except UniqueViolation:
        pass
    cur.execute(
        "SELECT request_id FROM requests WHERE request_id = ANY(%s)",
        (rows["request_id"].tolist(),),
    )
    stored = pa.array([row[0] for row in cur.fetchall()], pa.string())
    new = rows[~pc.is_in(pa.array(rows["request_id"]), value_set=stored).to_numpy(False)]
    if new.empty:
        return 0
    try:
        return _pg_copy_requests(cur, new)
    except UniqueViolation:
        cur.execute(_PG_STAGE_REQUESTS)
        with cur.copy(f"COPY _stage_requests ({_REQUEST_LIST}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(_copy_csv(new, REQUEST_LOAD_COLUMNS))
        cur.execute(
            f"INSERT INTO requests ({_REQUEST_LIST}) SELECT {_REQUEST_LIST} "
            "FROM _stage_requests ON CONFLICT (request_id) DO NOTHING"
        )
        return int(cur.rowcount)


def _pg_copy_requests(cur: psycopg.Cursor, rows: pd.DataFrame) -> int:
    """COPY ``rows`` into ``requests`` inside a savepoint (undone if any is stored already)."""
    data = _copy_csv(rows, REQUEST_LOAD_COLUMNS)
    with (
        cur.connection.transaction(),
        cur.copy(f"COPY requests ({_REQUEST_LIST}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(data)
    return len(rows)


def _first_seen(rows: pd.DataFrame) -> pd.Series:
    """The time of each account's first request among ``rows``, indexed by account_id."""
    return rows.groupby("account_id", sort=False)["ts"].min()


def _seen_frame(seen: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"account_id": seen.index, "first_ts": seen.to_numpy()})


def _extent(rows: pd.DataFrame) -> tuple[dt.datetime, dt.datetime]:
    """The earliest and latest ``ts`` of ``rows`` (UTC)."""
    return rows["ts"].min().to_pydatetime(), rows["ts"].max().to_pydatetime()


def _sqlite_ts(value: dt.datetime) -> str:
    """A UTC time as SQLAlchemy stores it in SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _arrow_column(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """Arrow form of a column; timestamps become naive UTC, which formats fast."""
    array = pa.array(values, from_pandas=True)
    if pa.types.is_timestamp(array.type):
        array = pc.cast(array, pa.timestamp("us"))
    return array


def _copy_csv(rows: pd.DataFrame, columns: list[str]) -> memoryview:
    """The rows as CSV for ``COPY ... (FORMAT csv)`` (null = an unquoted empty field).

    Timestamps are written as naive UTC: the loading transaction sets its time zone to UTC.
    """
    table = pa.table({name: _arrow_column(rows[name]) for name in columns})
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    return buffer.getbuffer()


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error (psycopg, ADBC, or one SQLAlchemy wraps), if any."""
    state = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "orig", None), "sqlstate", None
    )
    return str(state) if state else None


def _arrow_table(rows: pd.DataFrame, table: sa.Table, columns: list[str]) -> pa.Table:
    """``rows`` as Arrow with the exact types of ``table`` 's columns, as a binary COPY into
    it needs them (text, int2, int4, timestamptz)."""
    fields = [pa.field(name, _ARROW_TYPES[type(table.c[name].type)]) for name in columns]
    arrays = [
        pc.cast(pa.array(rows[name], from_pandas=True), f.type)
        for name, f in zip(columns, fields, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _python_rows(
    rows: pd.DataFrame, columns: list[str], batch: int = 5_000
) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples of Python values (None for null) for ``executemany``, made a few
    thousand at a time so that a chunk never exists as Python objects all at once.

    Timestamps become the text SQLAlchemy stores in SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff``.
    """
    arrays = []
    for name in columns:
        array = _arrow_column(rows[name])
        if pa.types.is_timestamp(array.type):
            array = pc.cast(array, pa.string())
        arrays.append(array)
    for start in range(0, len(rows), batch):
        values = [array.slice(start, batch).to_pylist() for array in arrays]
        yield from zip(*values, strict=True)
