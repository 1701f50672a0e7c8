"""Administration: detection runs (each in its own process) and run-time API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from api.deps import CONFLICT, KEY_ERRORS, NOT_FOUND, AdminKey, StateDep, StoreDep
from api.queries import get_job, key_list, recent_runs
from api.runs import RunInProgress, RunUnavailable
from api.schemas import JobInfo, JobRef, KeyCreated, KeyIn, KeyList, Problem, RunList

router = APIRouter(prefix="/v1", tags=["admin"], responses=KEY_ERRORS)

KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")]


@router.post(
    "/runs",
    response_model=JobRef,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"model": Problem, "description": "a detection run is already in progress"},
        503: {"model": Problem, "description": "the run command could not be started"},
    },
)
async def start_run(principal: AdminKey, state: StateDep, response: Response) -> JobRef:
    """Start a detection run in a separate process; follow it at the returned ``href``."""
    try:
        job_id = await state.launcher.launch(requested_by=f"key:{principal.key_id}")
    except RunInProgress as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    except RunUnavailable as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
    href = f"/v1/runs/jobs/{job_id}"
    response.headers["Location"] = href
    return JobRef(job_id=job_id, status="running", href=href)


@router.get("/runs", response_model=RunList)
def runs(_: AdminKey, store: StoreDep, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> RunList:
    """The newest detection runs (status, window, timings, stats) and the newest jobs."""
    return recent_runs(store, limit)


@router.get("/runs/jobs/{job_id}", response_model=JobInfo, responses=NOT_FOUND)
def job(_: AdminKey, store: StoreDep, job_id: Annotated[int, Path(ge=1)]) -> JobInfo:
    """One job of the history: a run started over HTTP, or a scheduled job."""
    found = get_job(store, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id} in the recent history")
    return found


@router.get("/keys", response_model=KeyList)
def keys(_: AdminKey, state: StateDep) -> KeyList:
    """Every key by its digest and scopes (the keys themselves are never stored)."""
    return key_list(state.store, state.configured_keys)


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def add_key(_: AdminKey, state: StateDep, body: KeyIn) -> KeyCreated:
    """Create a random key with the given scopes; it is returned once and stored hashed."""
    return state.add_key(body.scopes, body.note)


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def remove_key(_: AdminKey, state: StateDep, key_id: KeyId) -> None:
    """Revoke a key added at run time; every server drops it within refresh_seconds."""
    if key_id in state.configured_keys:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "that key is configured in SENTRA_API_KEYS; remove it there"
        )
    if not state.remove_key(key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no stored key with that id")
