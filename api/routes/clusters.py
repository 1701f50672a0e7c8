"""Farms for analysts: the list of a run's clusters and one cluster with its members."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import KEY_ERRORS, NOT_FOUND, NOT_READY, AnalystKey, StateDep
from api.queries import cluster_detail, list_clusters
from api.schemas import MAX_ID_LENGTH, ClusterDetail, ClusterList

router = APIRouter(prefix="/v1", tags=["analysts"], responses={**KEY_ERRORS, **NOT_READY})

RunQuery = Annotated[
    str | None,
    Query(max_length=MAX_ID_LENGTH, description="a run id; default: the served run"),
]


@router.get("/clusters", response_model=ClusterList)
def clusters(
    _: AnalystKey,
    state: StateDep,
    run_id: RunQuery = None,
    min_decision: Literal["allow", "review", "block"] = "allow",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ClusterList:
    """Farms of a run, highest score first, with their size, score, reasons and evidence."""
    return list_clusters(state.store, run_id or state.served.run_id, min_decision, limit, offset)


@router.get("/clusters/{cluster_id}", response_model=ClusterDetail, responses=NOT_FOUND)
def cluster(
    _: AnalystKey, state: StateDep, cluster_id: str, run_id: RunQuery = None
) -> ClusterDetail:
    """One farm: size, score, reasons, shared evidence and members with their decisions."""
    snapshot = state.served
    found = cluster_detail(state.store, snapshot, run_id or snapshot.run_id, cluster_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cluster {cluster_id!r} in that run")
    return found
