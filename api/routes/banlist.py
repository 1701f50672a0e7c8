"""The ban list (contract 2.2) over HTTP, in the same format the export writes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import KEY_ERRORS, AnalystKey, StoreDep
from sentra_graph.banlist import MEDIA_TYPES, banlist_frame, render_banlist

router = APIRouter(prefix="/v1", tags=["analysts"], responses=KEY_ERRORS)

_ROW = {
    "type": "object",
    "properties": {
        "account_id": {"type": "string"},
        "decision": {"type": "string", "enum": ["review", "block"]},
        "score": {"type": "number"},
        "cluster_id": {"type": ["string", "null"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
}


@router.get(
    "/banlist",
    response_class=Response,
    responses={
        200: {
            "description": "CSV with header account_id,decision,score,cluster_id,reasons, "
            "or a JSON array of objects with those keys",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": _ROW}},
            },
        }
    },
)
def banlist(
    _: AnalystKey,
    store: StoreDep,
    fmt: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
    min_decision: Literal["block", "review"] = "block",
) -> Response:
    """Every served account whose decision is at least ``min_decision``, highest score first."""
    text = render_banlist(banlist_frame(store, min_decision), fmt)
    return Response(text, media_type=MEDIA_TYPES[fmt])
