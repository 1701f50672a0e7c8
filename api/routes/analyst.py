"""Analyst actions: labels on accounts and allow-lists (read by the next detection run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError

from api.deps import KEY_ERRORS, NOT_FOUND, AnalystKey, StoreDep
from api.queries import add_allow_entry, allow_entries
from api.schemas import (
    AllowEntry,
    AllowIn,
    AllowKind,
    AllowList,
    FeedbackIn,
    FeedbackOut,
    canonical_allow_value,
)

router = APIRouter(prefix="/v1", tags=["analysts"], responses=KEY_ERRORS)


@router.post("/feedback", response_model=FeedbackOut, status_code=status.HTTP_201_CREATED)
def feedback(principal: AnalystKey, store: StoreDep, body: FeedbackIn) -> FeedbackOut:
    """Label an account farm or legit; the author is recorded as the key's id."""
    author = f"key:{principal.key_id}"
    feedback_id = store.add_feedback(body.account_id, body.label, body.note, author=author)
    return FeedbackOut(feedback_id=feedback_id, author=author, **body.model_dump())


@router.get("/allowlist", response_model=AllowList)
def allowlist(_: AnalystKey, store: StoreDep) -> AllowList:
    """Every allow-list entry (accounts, orgs, IPs or networks)."""
    return allow_entries(store)


@router.post("/allowlist", response_model=AllowEntry, status_code=status.HTTP_201_CREATED)
def allow(_: AnalystKey, store: StoreDep, body: AllowIn) -> AllowEntry:
    """Add (or replace) an entry; an IP is stored in its canonical form."""
    return add_allow_entry(store, body.kind, body.value, body.note)


@router.delete("/allowlist", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def disallow(
    _: AnalystKey,
    store: StoreDep,
    kind: AllowKind,
    value: Annotated[str, Query(min_length=1, max_length=512)],
) -> None:
    """Remove an entry (404 if there is none)."""
    try:
        value = canonical_allow_value(kind, value)
    except ValueError as error:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "value"), "msg": str(error), "input": value}]
        ) from None
    if not store.remove_allow(kind, value):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no allow-list entry {kind} {value!r}")
