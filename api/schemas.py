"""Request and response bodies of the HTTP API (input and output models kept apart)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_BATCH = 1000
"""Most account ids one ``POST /v1/accounts/risk`` may ask about (contract 2.3)."""

MAX_ID_LENGTH = 256
"""Longest account id a lookup accepts; longer ones cannot be real ids."""

Decision = Literal["allow", "review", "block"]
DECISIONS: tuple[str, ...] = get_args(Decision)
"""Decisions from mildest to harshest (as :data:`sentra_graph.detect.DECISIONS`, whose module
is not imported here: it loads the whole engine)."""
AccountId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class Problem(BaseModel):
    """An error: what went wrong and, where it helps, what to do."""

    detail: str


class InvalidRequest(BaseModel):
    """A request that does not validate: one entry per problem (FastAPI's format)."""

    detail: list[dict[str, Any]]


class RiskResult(BaseModel):
    """One account's served decision (contract 2.3, key order as documented)."""

    account_id: str
    known: bool
    score: float = Field(ge=0, le=1)
    decision: Decision
    cluster_id: str | None
    reasons: list[str]
    run_id: str | None
    scored_at: dt.datetime | None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_ids: list[AccountId] = Field(max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    results: list[RiskResult]


class Health(BaseModel):
    status: Literal["ok"]
    run_id: str | None
    published_at: dt.datetime | None
    scored_accounts: int = 0
    snapshot_loaded_at: dt.datetime | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    reason: str | None = None
    run_id: str | None = None


class ClusterSummary(BaseModel):
    cluster_id: str
    size: int
    score: float
    decision: Decision
    reasons: list[str]
    evidence: dict[str, Any] | None


class ClusterList(BaseModel):
    run_id: str | None
    total: int
    clusters: list[ClusterSummary]


class ClusterMember(BaseModel):
    account_id: str
    strength: float
    score: float | None
    decision: Decision | None


class ClusterDetail(ClusterSummary):
    run_id: str
    members: list[ClusterMember]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: AccountId
    label: Literal["farm", "legit"]
    note: str | None = Field(None, max_length=4000)


class FeedbackOut(BaseModel):
    feedback_id: int
    account_id: str
    label: Literal["farm", "legit"]
    note: str | None
    author: str


AllowKind = Literal["account", "org", "ip"]


def canonical_allow_value(kind: str, value: str) -> str:
    """An allow-list value as stored: stripped; an IP or network in canonical form.

    >>> canonical_allow_value("ip", " 2001:DB8::0:1 "), canonical_allow_value("ip", "10.1.2.3/8")
    ('2001:db8::1', '10.0.0.0/8')
    """
    value = value.strip()
    if kind != "ip":
        return value
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"expected an IP address or network, found {value!r}") from None


class AllowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AllowKind
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
    note: str | None = Field(None, max_length=4000)

    @model_validator(mode="after")
    def _canonical(self) -> AllowIn:
        self.value = canonical_allow_value(self.kind, self.value)
        return self


class AllowEntry(BaseModel):
    kind: AllowKind
    value: str
    note: str | None
    created_at: dt.datetime | None


class AllowList(BaseModel):
    entries: list[AllowEntry]


class RunInfo(BaseModel):
    run_id: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    published_at: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    timings: dict[str, Any] | None
    stats: dict[str, Any] | None
    error: str | None


class JobInfo(BaseModel):
    job_id: int
    job: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    details: dict[str, Any] | None


class RunList(BaseModel):
    runs: list[RunInfo]
    jobs: list[JobInfo]


class JobRef(BaseModel):
    job_id: int
    status: str
    href: str


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[Literal["gateway", "analyst", "admin"]] = Field(min_length=1)
    note: str | None = Field(None, max_length=4000)


class KeyInfo(BaseModel):
    key_id: str = Field(description="hex SHA-256 of the key; names it for DELETE /v1/keys")
    scopes: list[str]
    note: str | None
    created_at: dt.datetime | None
    source: Literal["config", "store"] = Field(
        description="config: SENTRA_API_KEYS (change it there); store: added by POST /v1/keys"
    )


class KeyCreated(KeyInfo):
    key: str = Field(description="the new key; shown once, only its digest is stored")


class KeyList(BaseModel):
    keys: list[KeyInfo]
