"""Incremental reads of gateway and billing tables in place.

A source table lives in the store's own database (PostgreSQL in production; the embedded store
works the same way for tests and demos). Table and column names come from configuration: each
is checked against an allow-list (:data:`IDENTIFIER`) and quoted by SQLAlchemy, never pasted.
The watermark value is a bind parameter.

Values come back in a form the row checks understand: timestamps and integers as they are,
``inet``/``cidr`` as the bare address (``host()``), arrays as JSON text, anything else as text.

>>> split_table_name("gateway.requests")
('gateway', 'requests')
>>> split_table_name("requests; drop table accounts")
Traceback (most recent call last):
...
sentra_graph.store.core.StoreError: source table name 'requests; drop table accounts' is not \
an identifier or schema.identifier (letters, digits and _, not starting with a digit)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from sentra_graph.store.core import StoreCore, StoreError

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""What a configured table, schema or column name may be."""

WATERMARK = "_watermark"
"""The column of :meth:`SourceMixin.read_source` frames holding each row's watermark value."""

_KEEP = (sa.DateTime, sa.Date, sa.Integer)
_ADDRESS = (postgresql.INET, postgresql.CIDR)


def split_table_name(name: str) -> tuple[str | None, str]:
    """``(schema, table)`` of ``table`` or ``schema.table``, each part checked."""
    parts = name.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.fullmatch(part) for part in parts):
        raise StoreError(
            f"source table name {name!r} is not an identifier or schema.identifier "
            "(letters, digits and _, not starting with a digit)"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def check_column_name(name: str) -> str:
    """``name`` if it is an allowed column name, else :class:`StoreError`.

    >>> check_column_name("ts")
    'ts'
    """
    if not IDENTIFIER.fullmatch(name):
        raise StoreError(
            f"source column name {name!r} is not an identifier "
            "(letters, digits and _, not starting with a digit)"
        )
    return name


class SourceMixin(StoreCore):
    def source_columns(self, table: str) -> dict[str, sa.types.TypeEngine]:
        """The columns of an existing source table and their types."""
        schema, name = split_table_name(table)
        inspector = sa.inspect(self.engine)
        if not inspector.has_table(name, schema=schema):
            raise StoreError(f"source table {table!r} does not exist in {self.backend} store")
        return {column["name"]: column["type"] for column in inspector.get_columns(name, schema)}

    def read_source(
        self,
        table: str,
        columns: Mapping[str, str],
        watermark_column: str,
        after: str | None,
        chunk_rows: int,
    ) -> Iterator[pd.DataFrame]:
        """Rows of ``table`` whose ``watermark_column`` is past ``after`` (all rows when None;
        never rows whose watermark is null), oldest first, as frames of at most ``chunk_rows``.

        ``columns`` maps each output name to a source column; frames also hold
        :data:`WATERMARK`. ``after`` is text the database casts to the column's type.
        """
        types = self.source_columns(table)
        for source in [*columns.values(), watermark_column]:
            if check_column_name(source) not in types:
                raise StoreError(f"source table {table!r} has no column {source!r}")
        schema, name = split_table_name(table)
        source_table = sa.table(name, *(sa.column(c) for c in types), schema=schema)
        mark = source_table.c[watermark_column]
        selected = [
            _readable(source_table.c[source], types[source]).label(output)
            for output, source in columns.items()
        ]
        query = sa.select(*selected, mark.label(WATERMARK)).where(mark.is_not(None))
        if after is not None:
            bound: ColumnElement = sa.bindparam("after", after)
            query = query.where(
                mark > (sa.cast(bound, types[watermark_column]) if self.is_postgres else bound)
            )
        query = query.order_by(mark)
        if self.is_postgres:
            yield from self._adbc_chunks(query, chunk_rows)
        else:
            yield from self._streamed_chunks(query, chunk_rows)

    def _adbc_chunks(self, query: sa.Select, chunk_rows: int) -> Iterator[pd.DataFrame]:
        import adbc_driver_postgresql.dbapi as adbc

        compiled = query.compile(dialect=postgresql.psycopg.dialect(paramstyle="numeric_dollar"))
        parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
        with adbc.connect(self.libpq_url) as conn, conn.cursor() as cur:
            cur.execute(str(compiled), parameters=parameters or None)
            for batch in cur.fetch_record_batch():
                for start in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(start, chunk_rows).to_pandas()

    def _streamed_chunks(self, query: sa.Select, chunk_rows: int) -> Iterator[pd.DataFrame]:
        with self.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            names = list(result.keys())
            for rows in result.partitions(chunk_rows):
                yield pd.DataFrame(rows, columns=names)


def _readable(column: ColumnElement, kind: sa.types.TypeEngine) -> ColumnElement:
    """``column`` in a form the row checks read: see the module's docstring."""
    if isinstance(kind, sa.ARRAY):
        return sa.cast(sa.func.array_to_json(column), sa.Text)
    if isinstance(kind, _ADDRESS):
        return sa.func.host(column)
    if isinstance(kind, _KEEP):
        return column
    return sa.cast(column, sa.Text)
