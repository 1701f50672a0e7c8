"""Lookups for gateways: one account, or a batch of up to 1000.

Each answer is a dict get on the served snapshot (bodies were encoded when it was built), so
these routes never touch the database and return the prepared bytes as they are.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import KEY_ERRORS, NOT_READY, GatewayKey, StateDep, json_body
from api.schemas import MAX_ID_LENGTH, BatchRequest, BatchResponse, RiskResult

router = APIRouter(prefix="/v1", tags=["lookups"], responses={**KEY_ERRORS, **NOT_READY})


@router.get("/accounts/{account_id}/risk", response_model=RiskResult)
async def account_risk(
    _: GatewayKey,
    state: StateDep,
    account_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
) -> Response:
    """The served decision of one account (allow, known false, score 0 if never seen)."""
    entry = state.served.lookup(account_id)
    state.metrics.decided(entry.decision)
    return json_body(entry.body)


@router.post("/accounts/risk", response_model=BatchResponse)
async def accounts_risk(_: GatewayKey, state: StateDep, batch: BatchRequest) -> Response:
    """Decisions of up to 1000 accounts, in the order asked (422 beyond 1000)."""
    body, counts = state.served.batch_body(batch.account_ids)
    state.metrics.decided_many(counts)
    return json_body(body)
