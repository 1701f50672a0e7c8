"""Runs: their lifecycle, their results and the atomic publish of decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from sentra_graph.store import schema as t
from sentra_graph.store.core import StoreCore, as_utc, utcnow

RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"

_WRITE_CHUNK = 5_000


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """DataFrame rows as plain Python dicts (NaN -> None) for executemany."""
    out = frame[columns].astype(object).where(frame[columns].notna(), None)
    return out.to_dict("records")


class RunsMixin(StoreCore):
    def start_run(
        self, run_id: str, window_start: dt.datetime, window_end: dt.datetime, params: dict
    ) -> None:
        with self.begin() as conn:
            conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    status=RUN_RUNNING,
                    started_at=utcnow(),
                    window_start=window_start,
                    window_end=window_end,
                    params=params,
                )
            )

    def fail_run(self, run_id: str, error: str, timings: dict | None = None) -> None:
        """Record why a run failed; whatever it wrote stays unpublished."""
        with self.begin() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_id == run_id)
                .values(
                    status=RUN_FAILED, finished_at=utcnow(), error=error[:4000], timings=timings
                )
            )

    def write_results(
        self,
        run_id: str,
        clusters: pd.DataFrame,
        memberships: pd.DataFrame,
        decisions: pd.DataFrame,
    ) -> None:
        """Store a run's farms, memberships and decisions (not yet served)."""
        tables = [
            (
                t.clusters,
                clusters,
                ["cluster_id", "size", "score", "decision", "reasons", "evidence"],
            ),
            (t.memberships, memberships, ["account_id", "cluster_id", "strength"]),
            (
                t.decisions,
                decisions,
                ["account_id", "score", "decision", "cluster_id", "reasons", "evidence"],
            ),
        ]
        with self.begin() as conn:
            for table, frame, columns in tables:
                rows = _records(frame, columns)
                for row in rows:
                    row["run_id"] = run_id
                for start in range(0, len(rows), _WRITE_CHUNK):
                    conn.execute(table.insert(), rows[start : start + _WRITE_CHUNK])

    def publish_run(
        self,
        run_id: str,
        timings: dict,
        stats: dict,
        expiry: dt.timedelta,
    ) -> dt.datetime:
        """Make ``run_id``'s decisions the served ones, in one transaction.

        Accounts the run scored take its decision; accounts it did not score keep their last
        one until ``expiry`` has passed since it was made.
        """
        now = utcnow()
        d, cur = t.decisions, t.current_decisions
        with self.begin() as conn:
            scored = sa.select(d.c.account_id).where(d.c.run_id == run_id)
            conn.execute(cur.delete().where(cur.c.account_id.in_(scored)))
            conn.execute(
                cur.insert().from_select(
                    [
                        "account_id",
                        "run_id",
                        "score",
                        "decision",
                        "cluster_id",
                        "reasons",
                        "scored_at",
                    ],
                    sa.select(
                        d.c.account_id,
                        d.c.run_id,
                        d.c.score,
                        d.c.decision,
                        d.c.cluster_id,
                        d.c.reasons,
                        sa.literal(now, t.TS),
                    ).where(d.c.run_id == run_id),
                )
            )
            conn.execute(cur.delete().where(cur.c.scored_at < now - expiry))
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_id == run_id)
                .values(
                    status=RUN_SUCCEEDED,
                    finished_at=now,
                    published_at=now,
                    timings=timings,
                    stats=stats,
                )
            )
        return now

    # ---- reads -------------------------------------------------------------------------

    def latest_published_run(self) -> dict | None:
        """The served run (``run_id``, ``published_at``, ...), or None before the first."""
        r = t.runs
        with self.connect() as conn:
            row = (
                conn.execute(
                    sa.select(r)
                    .where(r.c.published_at.is_not(None))
                    .order_by(r.c.published_at.desc(), r.c.run_id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return _run_dict(row) if row else None

    def get_run(self, run_id: str) -> dict | None:
        with self.connect() as conn:
            row = (
                conn.execute(sa.select(t.runs).where(t.runs.c.run_id == run_id)).mappings().first()
            )
        return _run_dict(row) if row else None

    def list_runs(self, limit: int = 50) -> pd.DataFrame:
        with self.connect() as conn:
            rows = conn.execute(
                sa.select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
            ).mappings()
            return pd.DataFrame([_run_dict(row) for row in rows])

    def current_decisions(self, min_decision: str | None = None) -> pd.DataFrame:
        """The served decisions: account_id, run_id, score, decision, cluster_id, reasons,
        scored_at. ``min_decision="review"`` keeps review and block, ``"block"`` block only."""
        cur = t.current_decisions
        query = sa.select(cur).order_by(cur.c.score.desc(), cur.c.account_id)
        if min_decision == "block":
            query = query.where(cur.c.decision == "block")
        elif min_decision == "review":
            query = query.where(cur.c.decision.in_(["review", "block"]))
        with self.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=list(cur.c.keys()))
        frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
        return frame

    def known_accounts(self) -> pd.Series:
        """Every account id the store has ever seen."""
        with self.connect() as conn:
            ids = conn.execute(sa.select(t.accounts.c.account_id)).scalars().all()
        return pd.Series(ids, dtype=object, name="account_id")

    def run_clusters(self, run_id: str) -> pd.DataFrame:
        c = t.clusters
        with self.connect() as conn:
            rows = conn.execute(
                sa.select(c).where(c.c.run_id == run_id).order_by(c.c.score.desc(), c.c.cluster_id)
            ).mappings()
            return pd.DataFrame(rows.all(), columns=list(c.c.keys()))

    def run_memberships(self, run_id: str, cluster_id: str | None = None) -> pd.DataFrame:
        m = t.memberships
        query = sa.select(m).where(m.c.run_id == run_id)
        if cluster_id is not None:
            query = query.where(m.c.cluster_id == cluster_id)
        with self.connect() as conn:
            rows = conn.execute(query.order_by(m.c.cluster_id, m.c.account_id)).mappings()
            return pd.DataFrame(rows.all(), columns=list(m.c.keys()))

    def run_decisions(self, run_id: str) -> pd.DataFrame:
        d = t.decisions
        with self.connect() as conn:
            rows = conn.execute(sa.select(d).where(d.c.run_id == run_id)).mappings()
            return pd.DataFrame(rows.all(), columns=list(d.c.keys()))

    def delete_runs_except(self, keep: int) -> int:
        """Retention: drop all but the newest ``keep`` runs (never the published one)."""
        published = self.latest_published_run()
        with self.begin() as conn:
            ids = (
                conn.execute(sa.select(t.runs.c.run_id).order_by(t.runs.c.started_at.desc()))
                .scalars()
                .all()
            )
            doomed = [
                run_id for run_id in ids[keep:] if not published or run_id != published["run_id"]
            ]
            if doomed:
                for table in (t.clusters, t.memberships, t.decisions, t.runs):
                    conn.execute(table.delete().where(table.c.run_id.in_(doomed)))
        return len(doomed)


def _run_dict(row: Any) -> dict:
    out = dict(row)
    for key in ("started_at", "finished_at", "published_at", "window_start", "window_end"):
        out[key] = as_utc(out.get(key))
    return out
