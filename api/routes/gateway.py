"""The allow/deny hook for nginx ``auth_request`` and Envoy ``ext_authz`` (HTTP service).

No ``from __future__ import annotations`` here: the header's name is a closure variable, which
FastAPI can only see in an annotation evaluated when the route is defined.
"""

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status

from api.deps import KEY_ERRORS, NOT_READY, GatewayKey, StateDep, json_body
from api.schemas import MAX_ID_LENGTH, Problem, RiskResult

DECISION_HEADER = "X-Sentra-Decision"
SCORE_HEADER = "X-Sentra-Score"
BLOCK = "block"


PROXY_METHODS = ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
"""Methods a proxy may forward besides GET: Envoy's ``ext_authz`` keeps the client's method."""


def gateway_router(account_header: str) -> APIRouter:
    """``GET /v1/gateway/check`` reading the account id from the header ``account_header``.

    The same check answers under any method and any path below ``/v1/gateway/check/`` (kept
    out of the OpenAPI document): Envoy's ``ext_authz`` appends the client's path to its
    ``path_prefix`` and keeps the client's method.
    """
    router = APIRouter(prefix="/v1", tags=["lookups"])

    async def gateway_check(
        _: GatewayKey,
        state: StateDep,
        account_id: Annotated[str | None, Header(alias=account_header)] = None,
    ) -> Response:
        """200 for allow and review, 403 for block; decision and score in response headers.

        The body is the account's risk object; ``X-Sentra-Decision`` and ``X-Sentra-Score``
        carry the decision and score for the proxy to log or forward.
        """
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

    router.add_api_route(
        "/gateway/check",
        gateway_check,
        methods=["GET"],
        response_model=RiskResult,
        responses={
            **KEY_ERRORS,
            **NOT_READY,
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
    router.add_api_route(
        "/gateway/check", gateway_check, methods=PROXY_METHODS, include_in_schema=False
    )
    router.add_api_route(
        "/gateway/check/{original_path:path}",
        gateway_check,
        methods=["GET", *PROXY_METHODS],
        include_in_schema=False,
    )
    return router
