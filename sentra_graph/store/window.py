"""Columnar reads of a run's window, and the per-request template ids (``request_templates``).

PostgreSQL is read through ADBC straight into Arrow (3.4 M rows/s measured, against 0.27 M for
``pd.read_sql``), streamed (see :func:`_inline_times`); template ids are appended by binary
COPY. The embedded SQLite store uses ``pd.read_sql`` and ``executemany``, which are fine at its
scale. Both run the same queries. Why template ids have a table of their own:
``docs/storage.md``, "Prompt templates: the featurize stage".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from sentra_graph.store import schema as t
from sentra_graph.store.core import StoreCore, as_utc

WINDOW_REQUEST_COLUMNS = [
    "ts",
    "account_id",
    "ip",
    "api_key_id",
    "user_agent",
    "tls_fingerprint",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "status",
    "markers",
    "template_id",
]
REPEATED_REQUEST_COLUMNS = (
    "account_id",
    "ip",
    "api_key_id",
    "user_agent",
    "tls_fingerprint",
    "model",
)
"""Text columns of the window read as categoricals: few distinct values, repeated over many
requests (a window of 5.4 M requests takes 0.4 GB this way instead of 1.0 GB)."""
ACCOUNT_COLUMNS = [c.name for c in t.accounts.columns]


class WindowMixin(StoreCore):
    def data_time_range(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Earliest and latest request time (falls back to account creation times).

        Loads keep both in ``request_extent``; requests written some other way (none of this
        package's paths) are found by reading ``requests`` itself when that row is missing.
        """
        with self.connect() as conn:
            row = conn.execute(
                sa.select(t.request_extent.c.oldest, t.request_extent.c.newest).where(
                    t.request_extent.c.id == 1
                )
            ).one_or_none()
            if row is None:
                row = conn.execute(
                    sa.select(sa.func.min(t.requests.c.ts), sa.func.max(t.requests.c.ts))
                ).one()
            lo, hi = row
            if hi is None:
                lo, hi = conn.execute(
                    sa.select(
                        sa.func.min(t.accounts.c.created_at), sa.func.max(t.accounts.c.created_at)
                    )
                ).one()
        return _parse_ts(lo), _parse_ts(hi)

    def read_window(
        self, start: dt.datetime, end: dt.datetime
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Accounts active or created in ``[start, end)``, and the window's requests.

        Returns ``(accounts, requests)``; ``requests`` has ``request_id`` and
        :data:`WINDOW_REQUEST_COLUMNS` (no prompt text: the run works from per-request derived
        features), ``template_id`` NaN where none is assigned yet, the
        :data:`REPEATED_REQUEST_COLUMNS` as categoricals, sorted by ts (stably, on the client:
        the server's row order is whatever its plan gives).
        """
        params = {"start": start, "end": end}
        if self.is_postgres:
            requests = self._pg_window_requests(params)
            accounts = self._adbc_frame(_ACCOUNTS_SQL, params)
        else:
            with self.connect() as conn:
                requests = pd.read_sql(sa.text(_WINDOW_SQL), conn, params=_sqlite_params(params))
                accounts = pd.read_sql(sa.text(_ACCOUNTS_SQL), conn, params=_sqlite_params(params))
            requests["ts"] = pd.to_datetime(requests["ts"], utc=True, format="ISO8601")
            requests = requests.sort_values("ts", kind="stable", ignore_index=True)
            requests = requests.astype({c: "category" for c in REPEATED_REQUEST_COLUMNS})
        requests["template_id"] = requests["template_id"].astype("float64")
        accounts["created_at"] = pd.to_datetime(accounts["created_at"], utc=True, format="ISO8601")
        accounts["inferred"] = accounts["inferred"].astype(bool)
        return accounts, requests

    def _pg_window_requests(self, params: dict) -> pd.DataFrame:
        """Stream the window's requests, dictionary-encoding repeated text batch by batch (the
        plain text of a whole window never sits in memory), then sort by ts and convert to
        pandas one column at a time (at most one column exists twice)."""
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(self.libpq_url) as conn, conn.cursor() as cur:
            cur.execute(_inline_times(_WINDOW_SQL, params))
            reader = cur.fetch_record_batch()
            batches = [_encode_repeated(batch) for batch in reader]
            schema = _encoded_schema(reader.schema)
        table = pa.Table.from_batches(batches, schema=schema).unify_dictionaries()
        del batches
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        order = np.argsort(ts, kind="stable") if (ts[1:] < ts[:-1]).any() else None
        columns = {}
        for name in schema.names:
            column = table.column(name)
            table = table.drop_columns(name)
            if order is not None:
                column = column.take(order)
            columns[name] = column.to_pandas()
            del column
        pa.default_memory_pool().release_unused()
        return pd.DataFrame(columns, copy=False)

    def _adbc_table(self, sql: str, params: dict) -> pa.Table:
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(self.libpq_url) as conn, conn.cursor() as cur:
            cur.execute(_inline_times(sql, params))
            return cur.fetch_arrow_table()

    def _adbc_frame(self, sql: str, params: dict) -> pd.DataFrame:
        return self._adbc_table(sql, params).to_pandas()

    # ---- per-request derived features --------------------------------------------------
    def iter_pending_prompts(
        self, start: dt.datetime, end: dt.datetime, batch_rows: int
    ) -> Iterator[pd.DataFrame]:
        """Stream the window's requests without a template yet, in batches of about
        ``batch_rows``: request_id, ts, prompt, prompt_embedding (JSON text).

        One query is streamed (ADBC record batches on PostgreSQL), so a large backlog is read
        once, not rescanned batch after batch; assignments may be written while it streams.
        """
        params = {"start": start, "end": end}
        if not self.is_postgres:
            with self.connect() as conn:
                pending = pd.read_sql(sa.text(_PENDING_SQL), conn, params=_sqlite_params(params))
            for first in range(0, len(pending), batch_rows):
                yield pending.iloc[first : first + batch_rows].reset_index(drop=True)
            return
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(self.libpq_url) as conn, conn.cursor() as cur:
            cur.execute(_inline_times(_PENDING_SQL, params))
            reader = cur.fetch_record_batch()
            buffered: list[pa.RecordBatch] = []
            rows = 0
            for record_batch in reader:
                buffered.append(record_batch)
                rows += record_batch.num_rows
                if rows >= batch_rows:
                    table = pa.Table.from_batches(buffered)
                    for first in range(0, table.num_rows, batch_rows):
                        yield table.slice(first, batch_rows).to_pandas()
                    buffered, rows = [], 0
            if rows:
                yield pa.Table.from_batches(buffered).to_pandas()

    def count_pending_prompts(self, start: dt.datetime, end: dt.datetime) -> int:
        """How many of the window's requests have no template yet."""
        sql = sa.text(_PENDING_SQL.replace(_PENDING_COLUMNS, "count(*)"))
        params = {"start": start, "end": end}
        with self.connect() as conn:
            bound = params if self.is_postgres else _sqlite_params(params)
            return int(conn.execute(sql, bound).scalar_one())

    def sample_prompts(self, start: dt.datetime, end: dt.datetime, n: int) -> pd.DataFrame:
        """A uniform sample of up to ``n`` window requests with a prompt or embedding (for
        fitting). The random pick sorts request ids only, then reads the picked rows by key: a
        sort of whole rows spills to disk (13.8 s against 5.4 s at 5.4 M requests, measured)."""
        r = t.requests
        in_window = (r.c.ts >= start, r.c.ts < end)
        has_prompt = sa.or_(r.c.prompt.is_not(None), r.c.prompt_embedding.is_not(None))
        picked = (
            sa.select(r.c.request_id)
            .where(has_prompt, *in_window)
            .order_by(sa.func.random())
            .limit(n)
        )
        query = sa.select(r.c.request_id, r.c.prompt, r.c.prompt_embedding).where(
            r.c.request_id.in_(picked.scalar_subquery()), *in_window
        )
        with self.connect() as conn:
            return pd.DataFrame(
                conn.execute(query).all(), columns=["request_id", "prompt", "prompt_embedding"]
            )

    def set_template_ids(self, assigned: pd.DataFrame) -> None:
        """Record the templates of requests: ``assigned`` has request_id, ts (the request's, as
        read by :meth:`iter_pending_prompts`) and template_id. A request that has one already
        keeps it."""
        if assigned.empty:
            return
        if self.is_postgres:
            self._pg_set_template_ids(assigned)
            return
        rows = [
            {"rid": rid, "tid": int(tid)}
            for rid, tid in zip(assigned["request_id"], assigned["template_id"], strict=True)
        ]
        # the request's own ts text, so that joins on (ts, request_id) match byte for byte
        stmt = sa.text(
            "INSERT INTO request_templates (ts, request_id, template_id) "
            "SELECT ts, request_id, :tid FROM requests WHERE request_id = :rid "
            "ON CONFLICT DO NOTHING"
        )
        with self.begin() as conn:
            conn.execute(stmt, rows)

    def _pg_set_template_ids(self, assigned: pd.DataFrame) -> None:
        """Binary COPY straight into ``request_templates`` (ADBC); should any be stored
        already (only a caller outside the run lock could do that), through a temporary table
        and ``ON CONFLICT DO NOTHING`` instead."""
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc

        table = _template_table(assigned)
        with adbc.connect(self.libpq_url) as conn, conn.cursor() as cur:
            try:
                cur.adbc_ingest("request_templates", table, mode="append")
                conn.commit()
                return
            except adbc_driver_manager.IntegrityError as error:
                if getattr(error, "sqlstate", None) != _UNIQUE_VIOLATION:
                    raise
                conn.rollback()
            cur.adbc_ingest("_tpl", table, mode="create", temporary=True)
            cur.execute(
                "INSERT INTO request_templates (ts, request_id, template_id) "
                "SELECT ts, request_id, template_id FROM _tpl ON CONFLICT DO NOTHING"
            )
            conn.commit()


_ACCOUNTS_SQL = (
    f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts "
    "WHERE (created_at >= :start AND created_at < :end) "
    "OR account_id IN (SELECT DISTINCT account_id FROM requests WHERE ts >= :start AND ts < :end)"
)
_REQUEST_COLUMNS = [c for c in WINDOW_REQUEST_COLUMNS if c != "template_id"]
_WINDOW_SQL = (
    f"SELECT r.request_id, {', '.join(f'r.{c}' for c in _REQUEST_COLUMNS)}, s.template_id "
    "FROM requests r LEFT JOIN request_templates s "
    "ON s.ts = r.ts AND s.request_id = r.request_id AND s.ts >= :start AND s.ts < :end "
    "WHERE r.ts >= :start AND r.ts < :end"
)
"""The window's requests with their templates. The join repeats the window on
``request_templates`` so that only its window part is read."""
_PENDING_COLUMNS = "r.request_id, r.ts, r.prompt, r.prompt_embedding"
_PENDING_SQL = (
    f"SELECT {_PENDING_COLUMNS} FROM requests r WHERE r.ts >= :start AND r.ts < :end "
    "AND NOT EXISTS (SELECT 1 FROM request_templates s WHERE s.ts = r.ts "
    "AND s.request_id = r.request_id AND s.ts >= :start AND s.ts < :end)"
)
"""The window's requests without a template (an anti-join bounded to the window on both
sides)."""
_UNIQUE_VIOLATION = "23505"


def _template_table(assigned: pd.DataFrame) -> pa.Table:
    """``assigned`` as Arrow with the types of ``request_templates`` (for a binary COPY)."""
    return pa.table(
        {
            "ts": pc.cast(pa.array(assigned["ts"], from_pandas=True), pa.timestamp("us", "UTC")),
            "request_id": pc.cast(pa.array(assigned["request_id"], from_pandas=True), pa.string()),
            "template_id": pc.cast(pa.array(assigned["template_id"]), pa.int32()),
        }
    )


def _encode_repeated(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary-encode the :data:`REPEATED_REQUEST_COLUMNS` of a batch and copy the other
    columns: a column still pointing into the driver's batch would keep the whole batch, its
    text included, alive (1.9 GB against 1.0 GB of RSS for a 5.4 M-request window)."""
    columns = [
        pc.dictionary_encode(column)
        if name in REPEATED_REQUEST_COLUMNS
        else pa.concat_arrays([column])  # a copy
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=_encoded_schema(batch.schema))


def _encoded_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the :data:`REPEATED_REQUEST_COLUMNS` as dictionaries."""
    return pa.schema(
        [
            pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable)
            if f.name in REPEATED_REQUEST_COLUMNS
            else f
            for f in schema
        ]
    )


def _inline_times(sql: str, params: dict[str, dt.datetime]) -> str:
    """Write the ``:name`` timestamps of ``sql`` as literals, for an ADBC read that streams.

    ADBC's PostgreSQL driver streams a query's result through ``COPY ... TO STDOUT`` only when
    the query has no bind parameters; with any, libpq holds the whole result in memory first
    (3.4 GB for a 5.4 M-request window). Only datetimes are accepted, rendered from the value
    itself (``isoformat`` holds digits, ``-``, ``:``, ``.``, ``+`` and a space), so nothing
    given as text reaches the SQL.

    >>> _inline_times("ts >= :start", {"start": dt.datetime(2025, 3, 1, tzinfo=dt.UTC)})
    "ts >= '2025-03-01 00:00:00+00:00'::timestamptz"
    """
    for name in sorted(params, key=len, reverse=True):
        value = params[name]
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise TypeError(f"{name} must be a timezone-aware datetime, got {value!r}")
        literal = value.astimezone(dt.UTC).isoformat(sep=" ")
        sql = sql.replace(f":{name}", f"'{literal}'::timestamptz")
    return sql


def _sqlite_params(params: dict) -> dict:
    """SQLite stores naive UTC text; compare in that form."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
            out[key] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            out[key] = value
    return out


def _parse_ts(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return as_utc(value)
