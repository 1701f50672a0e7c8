"""Operations: liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import StateDep
from api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz(state: StateDep) -> Health:
    """Alive; the served run (``run_id``, ``published_at``), or nulls before the first."""
    snapshot = state.snapshot
    if snapshot is None:
        return Health(status="ok", run_id=None, published_at=None)
    return Health(
        status="ok",
        run_id=snapshot.run_id,
        published_at=snapshot.published_at,
        scored_accounts=snapshot.scored,
        snapshot_loaded_at=snapshot.loaded_at,
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready, with the reason"}},
)
async def readyz(state: StateDep, response: Response) -> Readiness:
    """Ready once decisions are loaded and while the store answers; else 503 and why."""
    snapshot = state.snapshot
    problem = "decisions are still loading" if snapshot is None else await state.ping()
    if problem:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="not ready", reason=problem)
    return Readiness(status="ready", run_id=snapshot.run_id if snapshot else None)


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text exposition: requests and latency per route, served run, decisions."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
