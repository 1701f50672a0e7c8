"""Reads for analysts: a farm's accounts and requests, prompt examples, shared entities.

Every read is columnar (a DataFrame), takes its values as bind parameters and looks columns up
in an allow-list, so no caller-supplied text ever reaches the SQL. Long id lists are read in
chunks to stay under the backends' bind-parameter limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sentra_graph.store import schema as t
from sentra_graph.store.core import StoreCore, as_utc
from sentra_graph.store.window import WINDOW_REQUEST_COLUMNS

EXPLORE_REQUEST_COLUMNS = ["request_id", *WINDOW_REQUEST_COLUMNS]
"""Columns of :meth:`ExploreMixin.account_requests` (plus ``prompt`` when asked for)."""

ACCOUNT_ENTITY_COLUMNS = ("payment_fingerprint", "signup_ip", "org_id", "email_domain")
"""Account attributes that :meth:`ExploreMixin.accounts_sharing` may match on."""

REQUEST_ENTITY_COLUMNS = (
    "ip",
    "device",
    "tls_fingerprint",
    "user_agent",
    "template_id",
    "api_key_id",
)
"""Request attributes that :meth:`ExploreMixin.entity_usage` and ``entity_users`` may group on.
``device`` is the engine's device, ``tls_fingerprint|user_agent`` (``-`` for a missing half)."""

_ID_CHUNK = 900
"""Ids bound per statement: well under SQLite's and psycopg's bind-parameter limits."""


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    """Distinct non-null values as plain Python objects, in lists of at most ``_ID_CHUNK``."""
    native = (v.item() if isinstance(v, np.generic) else v for v in values)
    unique = list(dict.fromkeys(v for v in native if v is not None and not pd.isna(v)))
    for start in range(0, len(unique), _ID_CHUNK):
        yield unique[start : start + _ID_CHUNK]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Timestamps are stored as UTC; bind them in UTC whatever offset the caller used."""
    return None if value is None else value.astimezone(dt.UTC)


_TEMPLATED = t.requests.outerjoin(
    t.request_templates,
    sa.and_(
        t.request_templates.c.ts == t.requests.c.ts,
        t.request_templates.c.request_id == t.requests.c.request_id,
    ),
)
"""Requests with their template (NULL while none is assigned): select request columns
from this with :func:`_request_column`."""


def _request_column(name: str) -> sa.ColumnElement:
    """A column of :data:`_TEMPLATED`: ``template_id`` from ``request_templates``."""
    return t.request_templates.c.template_id if name == "template_id" else t.requests.c[name]


def _column(table: sa.Table, name: str, allowed: tuple[str, ...]) -> sa.ColumnElement:
    if name not in allowed:
        raise ValueError(f"column must be one of {allowed}, found {name!r}")
    if table is t.requests and name == "template_id":
        return _request_column(name)
    if table is t.requests and name == "device":
        missing = sa.literal("-", sa.Text)
        return (
            sa.func.coalesce(table.c.tls_fingerprint, missing)
            + sa.literal("|", sa.Text)
            + sa.func.coalesce(table.c.user_agent, missing)
        )
    return table.c[name]


def _in_window(query: sa.Select, start: dt.datetime | None, end: dt.datetime | None) -> sa.Select:
    r = t.requests
    if start is not None:
        query = query.where(r.c.ts >= _utc(start))
    if end is not None:
        query = query.where(r.c.ts < _utc(end))
    return query


class ExploreMixin(StoreCore):
    def _frame(self, queries: Iterable[sa.Select], columns: list[str]) -> pd.DataFrame:
        rows: list[Any] = []
        with self.connect() as conn:
            for query in queries:
                rows.extend(conn.execute(query).all())
        return pd.DataFrame(rows, columns=columns)

    def account_rows(self, account_ids: Iterable[str]) -> pd.DataFrame:
        """The ``accounts`` rows of ``account_ids`` (unknown ids are simply absent)."""
        a = t.accounts
        columns = list(a.c.keys())
        frame = self._frame(
            (sa.select(a).where(a.c.account_id.in_(chunk)) for chunk in _chunks(account_ids)),
            columns,
        )
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame.sort_values("account_id", ignore_index=True)

    def account_requests(
        self,
        account_ids: Iterable[str],
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        with_prompt: bool = False,
    ) -> pd.DataFrame:
        """Requests of ``account_ids`` with ``start <= ts < end``, sorted by ts.

        Columns: :data:`EXPLORE_REQUEST_COLUMNS`, plus ``prompt`` if ``with_prompt``.
        """
        r = t.requests
        columns = EXPLORE_REQUEST_COLUMNS + (["prompt"] if with_prompt else [])
        selected = sa.select(*(_request_column(name) for name in columns)).select_from(_TEMPLATED)
        frame = self._frame(
            (
                _in_window(selected.where(r.c.account_id.in_(chunk)), start, end)
                for chunk in _chunks(account_ids)
            ),
            columns,
        )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["markers"] = frame["markers"].fillna(0).astype("int16")
        frame["template_id"] = frame["template_id"].astype("Int32")
        return frame.sort_values(["ts", "request_id"], ignore_index=True)

    def prompt_examples(
        self,
        *,
        account_ids: Iterable[str] | None = None,
        template_ids: Iterable[int] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        per_template: int = 3,
    ) -> pd.DataFrame:
        """Up to ``per_template`` earliest prompts per template, of some accounts or templates.

        Columns: template_id, ts, account_id, request_id, prompt, markers. Requests without a
        prompt are skipped; a template id of NULL (not assigned yet) forms one group.
        """
        if account_ids is None and template_ids is None:
            raise ValueError("give account_ids, template_ids or both")
        r = t.requests
        template = _request_column("template_id")
        rank = (
            sa.func.row_number()
            .over(partition_by=template, order_by=(r.c.ts, r.c.request_id))
            .label("rank")
        )
        columns = ["template_id", "ts", "account_id", "request_id", "prompt", "markers"]
        base = _in_window(
            sa.select(*(_request_column(name) for name in columns), rank)
            .select_from(_TEMPLATED)
            .where(r.c.prompt.is_not(None)),
            start,
            end,
        )
        if template_ids is not None:
            base = base.where(template.in_([int(v) for v in template_ids]))

        def ranked(query: sa.Select) -> sa.Select:
            inner = query.subquery()
            return sa.select(*(inner.c[name] for name in columns)).where(
                inner.c.rank <= per_template
            )

        if account_ids is None:
            queries: Iterable[sa.Select] = [ranked(base)]
        else:
            queries = (ranked(base.where(r.c.account_id.in_(c))) for c in _chunks(account_ids))
        frame = self._frame(queries, columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["template_id"] = frame["template_id"].astype("Int32")
        # chunks rank separately; keep the earliest per template overall
        frame = frame.sort_values(["template_id", "ts", "request_id"], na_position="last")
        return frame.groupby("template_id", dropna=False).head(per_template).reset_index(drop=True)

    def accounts_sharing(self, column: str, values: Iterable[str]) -> pd.DataFrame:
        """Every account whose ``column`` (an :data:`ACCOUNT_ENTITY_COLUMNS`) is in ``values``.

        Columns: value, account_id.
        """
        a = t.accounts
        col = _column(a, column, ACCOUNT_ENTITY_COLUMNS)
        frame = self._frame(
            (sa.select(col, a.c.account_id).where(col.in_(chunk)) for chunk in _chunks(values)),
            ["value", "account_id"],
        )
        return frame.sort_values(["value", "account_id"], ignore_index=True)

    def entity_usage(
        self,
        column: str,
        values: Iterable[Any],
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """How many accounts and requests used each of ``values`` of a request ``column``.

        ``column`` is one of :data:`REQUEST_ENTITY_COLUMNS`. Columns: value, accounts, requests.
        """
        r = t.requests
        col = _column(r, column, REQUEST_ENTITY_COLUMNS)
        queries = (
            _in_window(
                sa.select(
                    col,
                    sa.func.count(sa.distinct(r.c.account_id)),
                    sa.func.count(),
                )
                .select_from(_TEMPLATED)
                .where(col.in_(chunk)),
                start,
                end,
            ).group_by(col)
            for chunk in _chunks(values)
        )
        return self._frame(queries, ["value", "accounts", "requests"])

    def entity_users(
        self,
        column: str,
        values: Iterable[Any],
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """Which accounts used each of ``values`` of a request ``column``, and how often.

        Columns: value, account_id, requests.
        """
        r = t.requests
        col = _column(r, column, REQUEST_ENTITY_COLUMNS)
        queries = (
            _in_window(
                sa.select(col, r.c.account_id, sa.func.count())
                .select_from(_TEMPLATED)
                .where(col.in_(chunk)),
                start,
                end,
            ).group_by(col, r.c.account_id)
            for chunk in _chunks(values)
        )
        return self._frame(queries, ["value", "account_id", "requests"])

    def decision_rows(self, run_id: str, account_ids: Iterable[str]) -> pd.DataFrame:
        """A run's decisions (with evidence) for ``account_ids``."""
        d = t.decisions
        return self._frame(
            (
                sa.select(d).where(d.c.run_id == run_id, d.c.account_id.in_(chunk))
                for chunk in _chunks(account_ids)
            ),
            list(d.c.keys()),
        )

    def current_decision_of(self, account_id: str) -> dict | None:
        """The served decision of one account, or None if it has none."""
        cur = t.current_decisions
        with self.connect() as conn:
            row = (
                conn.execute(sa.select(cur).where(cur.c.account_id == account_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        out = dict(row)
        out["scored_at"] = as_utc(out["scored_at"])
        return out

    def run_cluster(self, run_id: str, cluster_id: str) -> dict | None:
        """One farm of a run (size, score, decision, reasons, evidence), or None."""
        c = t.clusters
        with self.connect() as conn:
            row = (
                conn.execute(sa.select(c).where(c.c.run_id == run_id, c.c.cluster_id == cluster_id))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def decision_counts(self, run_id: str) -> pd.DataFrame:
        """Accounts per (cluster_id, decision) in a run; cluster_id is None outside farms."""
        d = t.decisions
        query = (
            sa.select(d.c.cluster_id, d.c.decision, sa.func.count())
            .where(d.c.run_id == run_id)
            .group_by(d.c.cluster_id, d.c.decision)
        )
        return self._frame([query], ["cluster_id", "decision", "accounts"])
