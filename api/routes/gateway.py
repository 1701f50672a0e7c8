"""The allow/deny hook for nginx ``auth_request`` and Envoy ``ext_authz`` (HTTP service).

Like the other lookups it checks the key with :func:`~api.deps.authorize` and reads its header
itself (no FastAPI dependency or parameter: they cost more than the lookup).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from api.auth import GATEWAY
from api.deps import BEARER_SECURITY, KEY_ERRORS, NOT_READY, authorize, json_body
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

    async def gateway_check(request: Request) -> Response:
        """200 for allow and review, 403 for block; decision and score in response headers.

        The body is the account's risk object; ``X-Sentra-Decision`` and ``X-Sentra-Score``
        carry the decision and score for the proxy to log or forward.
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

    header_parameter = {
        "name": account_header,
        "in": "header",
        "required": True,
        "description": "the account the proxied request belongs to",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
    }
    router.add_api_route(
        "/gateway/check",
        gateway_check,
        methods=["GET"],
        response_model=RiskResult,
        openapi_extra={"parameters": [header_parameter], **BEARER_SECURITY},
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
