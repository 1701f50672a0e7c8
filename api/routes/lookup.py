"""Lookups for gateways: one account, a batch of up to 1000, and the proxy's allow/deny check.

Each answer is a dict get on the served snapshot (bodies were encoded when it was built), so
these routes never touch the database and return the prepared bytes as they are.

They are the hot path, and FastAPI's conveniences cost more CPU than the lookup itself
(measured on FastAPI 0.165, in-process, per request: a constant endpoint 35 us; a lookup 43 us
as written here, 51 us through an included router, 62 us with FastAPI's path validation and
three dependencies on top). So they are registered on the app itself ahead of the included
routers, check the key with :func:`~api.deps.authorize` instead of a dependency, read their
path parameter, header or body themselves (the batch only once the key is admitted), and
declare all of it to OpenAPI by hand.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.auth import GATEWAY
from api.deps import BEARER_SECURITY, KEY_ERRORS, NOT_READY, Responses, authorize, json_body
from api.schemas import (
    MAX_ID_LENGTH,
    BatchRequest,
    BatchResponse,
    InvalidRequest,
    Problem,
    RiskResult,
)

DECISION_HEADER = "X-Sentra-Decision"
SCORE_HEADER = "X-Sentra-Score"
BLOCK = "block"

PROXY_METHODS = ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
"""Methods a proxy may forward besides GET: Envoy's ``ext_authz`` keeps the client's method."""

ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
ERRORS: Responses = {
    **KEY_ERRORS,
    **NOT_READY,
    422: {"model": InvalidRequest, "description": "the request does not validate"},
}


def _too_long(where: str, name: str, value: str) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "string_too_long",
                "loc": (where, name),
                "msg": f"String should have at most {MAX_ID_LENGTH} characters",
                "input": value,
            }
        ]
    )


async def account_risk(request: Request) -> Response:
    """The served decision of one account (allow, known false, score 0 if never seen)."""
    state = authorize(request, GATEWAY)
    account_id: str = request.path_params["account_id"]
    if len(account_id) > MAX_ID_LENGTH:
        raise _too_long("path", "account_id", account_id)
    entry = state.served.lookup(account_id)
    state.metrics.decided(entry.decision)
    return json_body(entry.body)


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


def add_lookup_routes(app: FastAPI, account_header: str) -> None:
    """Register the lookups on ``app``; the gateway check reads ``account_header``."""

    async def gateway_check(request: Request) -> Response:
        """200 for allow and review, 403 for block; decision and score in response headers.

        For nginx ``auth_request`` and Envoy ``ext_authz``. The body is the account's risk
        object; ``X-Sentra-Decision`` and ``X-Sentra-Score`` carry the decision and score for
        the proxy to log or forward.
        """
        state = authorize(request, GATEWAY)
        account_id = request.headers.get(account_header)
        if not account_id or len(account_id) > MAX_ID_LENGTH:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"send the account id (1 to {MAX_ID_LENGTH} characters) in {account_header}",
            )
        entry = state.served.lookup(account_id)
        state.metrics.decided(entry.decision)
        return json_body(
            entry.body,
            status.HTTP_403_FORBIDDEN if entry.decision == BLOCK else status.HTTP_200_OK,
            {DECISION_HEADER: entry.decision, SCORE_HEADER: repr(entry.score)},
        )

    def parameter(name: str, where: str, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": where,
            "required": True,
            "description": description,
            "schema": ID_SCHEMA,
        }

    common: dict[str, Any] = {"tags": ["lookups"], "responses": ERRORS}
    app.add_api_route(
        "/v1/accounts/{account_id}/risk",
        account_risk,
        methods=["GET"],
        response_model=RiskResult,
        openapi_extra={
            "parameters": [parameter("account_id", "path", "the account to look up")],
            **BEARER_SECURITY,
        },
        **common,
    )
    app.add_api_route(
        "/v1/accounts/risk",
        accounts_risk,
        methods=["POST"],
        response_model=BatchResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": BatchRequest.model_json_schema()}},
            },
            **BEARER_SECURITY,
        },
        **common,
    )
    app.add_api_route(
        "/v1/gateway/check",
        gateway_check,
        methods=["GET"],
        response_model=RiskResult,
        openapi_extra={
            "parameters": [parameter(account_header, "header", "the proxied request's account")],
            **BEARER_SECURITY,
        },
        tags=["lookups"],
        responses={
            **ERRORS,
            400: {
                "model": Problem,
                "description": f"the {account_header} header is missing or too long",
            },
            403: {
                "model": RiskResult | Problem,
                "description": "the account is blocked (its risk object), "
                "or the key lacks the gateway scope",
            },
        },
    )
    # The same check under any method and any path below /v1/gateway/check/ (not in the
    # OpenAPI document): Envoy's ext_authz appends the client's path and keeps its method.
    app.add_api_route(
        "/v1/gateway/check", gateway_check, methods=PROXY_METHODS, include_in_schema=False
    )
    app.add_api_route(
        "/v1/gateway/check/{original_path:path}",
        gateway_check,
        methods=["GET", *PROXY_METHODS],
        include_in_schema=False,
    )
