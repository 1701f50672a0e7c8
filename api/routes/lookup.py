"""Lookups for gateways: one account, or a batch of up to 1000.

Each answer is a dict get on the served snapshot (bodies were encoded when it was built), so
these routes never touch the database and return the prepared bytes as they are. They check
the key with :func:`~api.deps.authorize` instead of a dependency (see :mod:`api.deps`), and the
batch reads its body only once the key is admitted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.auth import GATEWAY
from api.deps import BEARER_SECURITY, KEY_ERRORS, NOT_READY, authorize, json_body
from api.schemas import MAX_ID_LENGTH, BatchRequest, BatchResponse, RiskResult

router = APIRouter(prefix="/v1", tags=["lookups"], responses={**KEY_ERRORS, **NOT_READY})

AccountPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]

BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": BatchRequest.model_json_schema()}},
    },
    **BEARER_SECURITY,
}


@router.get("/accounts/{account_id}/risk", response_model=RiskResult, openapi_extra=BEARER_SECURITY)
async def account_risk(request: Request, account_id: AccountPath) -> Response:
    """The served decision of one account (allow, known false, score 0 if never seen)."""
    state = authorize(request, GATEWAY)
    entry = state.served.lookup(account_id)
    state.metrics.decided(entry.decision)
    return json_body(entry.body)


@router.post("/accounts/risk", response_model=BatchResponse, openapi_extra=BATCH_BODY)
async def accounts_risk(request: Request) -> Response:
    """Decisions of up to 1000 accounts (``{"account_ids": [...]}``), in the order asked.

    More than 1000 ids is a 422.
    """
    state = authorize(request, GATEWAY)
    try:
        batch = BatchRequest.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None
    body, counts = state.served.batch_body(batch.account_ids)
    state.metrics.decided_many(counts)
    return json_body(body)
