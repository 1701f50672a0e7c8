"""Store reads shaped into response models, for the analyst and admin routes.

Each function is blocking (the routes that call them are plain ``def`` and run in the thread
pool); lookups never come here, they read the in-memory snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from api.schemas import (
    AllowEntry,
    AllowList,
    ClusterDetail,
    ClusterList,
    ClusterMember,
    ClusterSummary,
    JobInfo,
    KeyInfo,
    KeyList,
    RunInfo,
    RunList,
)
from api.snapshot import Snapshot
from sentra_graph.store import Store
from sentra_graph.store.core import as_utc

AT_LEAST = {
    "block": ("block",),
    "review": ("review", "block"),
    "allow": ("allow", "review", "block"),
}
"""Decisions kept by a ``min_decision`` filter."""


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts, missing values as None and timestamps as aware datetimes.

    >>> records(pd.DataFrame({"a": [1.5, None]}))
    [{'a': 1.5}, {'a': None}]
    """
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
            if isinstance(value, dt.datetime):
                row[key] = as_utc(row[key])
    return rows


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cluster_id": row["cluster_id"],
        "size": int(row["size"]),
        "score": float(row["score"]),
        "decision": row["decision"],
        "reasons": list(row["reasons"] or ()),
        "evidence": row["evidence"],
    }


def list_clusters(
    store: Store, run_id: str | None, min_decision: str, limit: int, offset: int
) -> ClusterList:
    """A run's farms, highest score first, filtered to ``min_decision`` and paged."""
    if run_id is None:
        return ClusterList(run_id=None, total=0, clusters=[])
    frame = store.run_clusters(run_id)
    frame = frame[frame["decision"].isin(AT_LEAST[min_decision])]
    page = records(frame.iloc[offset : offset + limit])
    return ClusterList(
        run_id=run_id,
        total=len(frame),
        clusters=[ClusterSummary(**_summary(row)) for row in page],
    )


def cluster_detail(
    store: Store, snapshot: Snapshot, run_id: str | None, cluster_id: str
) -> ClusterDetail | None:
    """One farm with its members; each member's served score and decision come from memory."""
    if run_id is None:
        return None
    clusters = store.run_clusters(run_id)
    found = records(clusters[clusters["cluster_id"] == cluster_id])
    if not found:
        return None
    members = []
    for row in records(store.run_memberships(run_id, cluster_id)):
        entry = snapshot.scored_entry(row["account_id"])
        members.append(
            ClusterMember(
                account_id=row["account_id"],
                strength=float(row["strength"]),
                score=entry.score if entry else None,
                decision=entry.decision if entry else None,  # type: ignore[arg-type]
            )
        )
    return ClusterDetail(run_id=run_id, members=members, **_summary(found[0]))


def recent_runs(store: Store, limit: int) -> RunList:
    """The newest runs with their timings, and the newest jobs (runs, exports) of any origin."""
    fields = set(RunInfo.model_fields)
    runs = [
        RunInfo(**{k: v for k, v in row.items() if k in fields})
        for row in records(store.list_runs(limit))
    ]
    jobs = [_job(row) for row in records(store.job_history(limit))]
    return RunList(runs=runs, jobs=jobs)


def _job(row: Mapping[str, Any]) -> JobInfo:
    return JobInfo(
        job_id=int(row["job_run_id"]),
        job=row["job"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        details=row["details"],
    )


def get_job(store: Store, job_id: int) -> JobInfo | None:
    row = store.get_job(job_id)
    return _job(row) if row else None


def allow_entries(store: Store) -> AllowList:
    return AllowList(entries=[AllowEntry(**row) for row in records(store.allowlist())])


def add_allow_entry(store: Store, kind: str, value: str, note: str | None) -> AllowEntry:
    """Add or replace an allow-list entry and return it as stored."""
    store.add_allow(kind, value, note)
    stored = store.allowlist()
    row = stored[(stored["kind"] == kind) & (stored["value"] == value)]
    return AllowEntry(**records(row)[0])


def key_list(store: Store, configured: Mapping[str, frozenset[str]]) -> KeyList:
    """Configured keys (source ``config``) and keys added at run time (source ``store``)."""
    keys = [
        KeyInfo(key_id=digest, scopes=sorted(scopes), note=None, created_at=None, source="config")
        for digest, scopes in configured.items()
    ]
    for row in records(store.api_keys()):
        keys.append(
            KeyInfo(
                key_id=row["key_hash"],
                scopes=sorted(str(row["scopes"]).split("+")),
                note=row["note"],
                created_at=row["created_at"],
                source="store",
            )
        )
    return KeyList(keys=keys)
