"""Why did an account get its decision? The served decision, its farm and the shared evidence.

:func:`explain_account` gathers, for one account, the served decision and reasons, the farm
it was grouped into, and what it shares with other accounts in the run's window: cards,
sign-up IPs, request IPs, devices (TLS fingerprint and user agent) and prompt templates,
each with how many other accounts (and how many farm members) share it.
:func:`render_explanation` prints that with rich tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sentra_graph.explore import device_labels, evidence_frames

if TYPE_CHECKING:
    from sentra_graph.store import Store

__all__ = [
    "EVIDENCE_KINDS",
    "NEIGHBOUR_CAP",
    "Explanation",
    "explain_account",
    "render_explanation",
]

EVIDENCE_KINDS = {
    "cards": ("account", "payment_fingerprint"),
    "signup_ips": ("account", "signup_ip"),
    "ips": ("request", "ip"),
    "devices": ("request", "device"),
    "templates": ("request", "template_id"),
}
"""Evidence table name -> (where the entity lives, its column)."""

KIND_LABELS = {
    "cards": "card",
    "signup_ips": "sign-up IP",
    "ips": "IP",
    "devices": "device",
    "templates": "template",
}

NEIGHBOUR_CAP = 200
"""An entity shared with more accounts than this (a popular user agent, a campus NAT) is too
common to make its users neighbours; it still appears in the evidence tables with its count."""

MAX_ROWS = 20
"""Rows kept per evidence table and neighbour table, most telling first."""

RENDER_ROWS = 8
"""Rows per kind that :func:`render_explanation` prints (the explanation holds more)."""

EVIDENCE_COLUMNS = ["entity", "requests", "other_accounts", "farm_members"]
NEIGHBOUR_COLUMNS = ["account_id", "shared", "n_shared", "in_farm", "decision", "score"]

_DECISION_STYLE = {"block": "bold red", "review": "bold dark_orange", "allow": "green"}


@dataclass
class Explanation:
    """Everything known about one account's decision.

    ``evidence`` maps each of :data:`EVIDENCE_KINDS` to a frame (entity, requests: the
    account's own requests with it, other_accounts: other accounts sharing it,
    farm_members: how many of those are in the account's farm), most shared first.
    ``neighbours``: accounts sharing at least one entity (account_id, shared, n_shared,
    in_farm, decision, score). ``engine_evidence``: the engine's stored evidence, tidied.
    """

    account_id: str
    known: bool
    decision: str
    score: float
    cluster_id: str | None
    reasons: list[str]
    run_id: str | None = None
    scored_at: dt.datetime | None = None
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    account: dict | None = None
    farm: dict | None = None
    evidence: dict[str, pd.DataFrame] = field(default_factory=dict)
    engine_evidence: dict[str, pd.DataFrame] = field(default_factory=dict)
    neighbours: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=NEIGHBOUR_COLUMNS)
    )
    requests: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> str:
        """One line: account, decision, score and farm.

        >>> Explanation("acct-1", True, "block", 0.91, "F7", []).summary()
        'acct-1: block (score 0.91) in farm F7'
        """
        where = f" in farm {self.cluster_id}" if self.cluster_id else ""
        known = "" if self.known else " (never seen)"
        return f"{self.account_id}: {self.decision} (score {self.score:.2f}){where}{known}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (tables as lists of records)."""

        def records(frame: pd.DataFrame) -> list[dict]:
            clean = frame.astype(object).where(frame.notna(), None)
            return clean.to_dict("records")

        return {
            "account_id": self.account_id,
            "known": self.known,
            "decision": self.decision,
            "score": self.score,
            "cluster_id": self.cluster_id,
            "reasons": self.reasons,
            "run_id": self.run_id,
            "scored_at": self.scored_at.isoformat() if self.scored_at else None,
            "farm": _jsonable(self.farm),
            "account": _jsonable(self.account),
            "evidence": {kind: records(frame) for kind, frame in self.evidence.items()},
            "neighbours": records(self.neighbours),
        }


def _jsonable(row: dict | None) -> dict | None:
    if row is None:
        return None
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime | pd.Timestamp):
            value = value.isoformat()
        elif not isinstance(value, list | dict) and pd.isna(value):
            value = None
        out[key] = value
    return out


def explain_account(store: Store, account_id: str) -> Explanation:
    """Explain the served decision of ``account_id`` with the evidence of its run's window.

    An account never seen gets ``allow`` with ``known=False``; a known account without a
    served decision gets ``allow`` and the evidence of the latest published run's window.
    """
    rows = store.account_rows([account_id])
    known = not rows.empty
    served = store.current_decision_of(account_id)
    if not known and served is None:
        return Explanation(account_id, False, "allow", 0.0, None, [])
    run_id = served["run_id"] if served else None
    run = store.get_run(run_id) if run_id else store.latest_published_run()
    window = (run["window_start"], run["window_end"]) if run else (None, None)
    cluster_id = served.get("cluster_id") if served else None
    expl = Explanation(
        account_id=account_id,
        known=known,
        decision=served["decision"] if served else "allow",
        score=float(served["score"]) if served else 0.0,
        cluster_id=cluster_id,
        reasons=list(served.get("reasons") or []) if served else [],
        run_id=run_id,
        scored_at=served["scored_at"] if served else None,
        window=window,
        account=rows.iloc[0].to_dict() if known else None,
    )
    members: list[str] = []
    if run_id and cluster_id:
        cluster = store.run_cluster(run_id, cluster_id) or {}
        memberships = store.run_memberships(run_id, cluster_id)
        members = memberships["account_id"].tolist()
        strength = memberships.loc[memberships["account_id"] == account_id, "strength"]
        expl.farm = {
            "cluster_id": cluster_id,
            "size": cluster.get("size", len(members)),
            "score": cluster.get("score"),
            "decision": cluster.get("decision"),
            "reasons": list(cluster.get("reasons") or []),
            "strength": float(strength.iloc[0]) if len(strength) else None,
        }
    if run_id:
        own = store.decision_rows(run_id, [account_id])
        if len(own):
            expl.engine_evidence = evidence_frames(own.iloc[0]["evidence"])
    expl.requests = _with_device(store.account_requests([account_id], *window))
    farm_requests = (
        _with_device(store.account_requests(members, *window)) if members else expl.requests
    )
    users = _gather_evidence(store, expl, set(members), farm_requests)
    expl.neighbours = _neighbours(store, users, set(members), run_id)
    return expl


def _with_device(requests: pd.DataFrame) -> pd.DataFrame:
    return requests.assign(device=device_labels(requests))


def _gather_evidence(
    store: Store, expl: Explanation, members: set[str], farm_requests: pd.DataFrame
) -> pd.DataFrame:
    """Fill ``expl.evidence``; return the (kind, entity, account_id) links to neighbours."""
    me, start, end = expl.account_id, *expl.window
    links = []
    for kind, (where, column) in EVIDENCE_KINDS.items():
        if where == "account":
            value = (expl.account or {}).get(column)
            values = [] if value is None or pd.isna(value) else [value]
            sharing = store.accounts_sharing(column, values)
            others = sharing[sharing["account_id"] != me]
            frame = pd.DataFrame(
                {
                    "entity": values,
                    "requests": 0,
                    "other_accounts": len(others),
                    "farm_members": int(others["account_id"].isin(members).sum()),
                }
            )
            if 0 < len(others) <= NEIGHBOUR_CAP:
                links.append(others.assign(kind=kind))
        else:
            own = expl.requests[column].dropna()
            if column == "template_id":
                own = own[own >= 0]
            counts = own.value_counts()
            usage = store.entity_usage(column, counts.index.tolist(), start, end)
            usage = usage.set_index("value")["accounts"].reindex(counts.index, fill_value=1)
            in_farm = farm_requests[
                farm_requests[column].isin(counts.index)
                & farm_requests["account_id"].isin(members - {me})
            ]
            farm_counts = in_farm.groupby(column)["account_id"].nunique()
            frame = pd.DataFrame(
                {
                    "entity": counts.index,
                    "requests": counts.to_numpy(),
                    "other_accounts": (usage.to_numpy() - 1).clip(min=0),
                    "farm_members": farm_counts.reindex(counts.index, fill_value=0).to_numpy(),
                }
            )
            linkable = frame.loc[frame["other_accounts"].between(1, NEIGHBOUR_CAP), "entity"]
            if len(linkable):
                users = store.entity_users(column, linkable.tolist(), start, end)
                links.append(users[users["account_id"] != me].assign(kind=kind))
            if column == "template_id":
                frame["entity"] = frame["entity"].map(lambda v: f"T{int(v)}")
        frame = frame.sort_values(
            ["farm_members", "other_accounts", "requests"], ascending=[False, False, False]
        )
        expl.evidence[kind] = frame[EVIDENCE_COLUMNS].head(MAX_ROWS).reset_index(drop=True)
    if not links:
        return pd.DataFrame(columns=["kind", "value", "account_id"])
    return pd.concat(links, ignore_index=True)[["kind", "value", "account_id"]]


def _neighbours(
    store: Store, links: pd.DataFrame, members: set[str], run_id: str | None
) -> pd.DataFrame:
    """Accounts linked by at least one entity, most entities shared first."""
    if links.empty:
        return pd.DataFrame(columns=NEIGHBOUR_COLUMNS)
    grouped = links.groupby("account_id")
    frame = pd.DataFrame(
        {
            "shared": grouped["kind"].agg(lambda kinds: ", ".join(_kind_counts(kinds))),
            "n_shared": grouped.size(),
        }
    ).reset_index()
    frame["in_farm"] = frame["account_id"].isin(members)
    frame = frame.sort_values(
        ["n_shared", "in_farm", "account_id"], ascending=[False, False, True]
    ).head(MAX_ROWS)
    decided = (
        store.decision_rows(run_id, frame["account_id"])[["account_id", "decision", "score"]]
        if run_id
        else pd.DataFrame(columns=["account_id", "decision", "score"])
    )
    frame = frame.merge(decided, on="account_id", how="left")
    return frame[NEIGHBOUR_COLUMNS].reset_index(drop=True)


def _kind_counts(kinds: pd.Series) -> list[str]:
    counts = kinds.value_counts(sort=False)
    order = [k for k in EVIDENCE_KINDS if k in counts]
    return [
        KIND_LABELS[kind] if counts[kind] == 1 else f"{KIND_LABELS[kind]} x{counts[kind]}"
        for kind in order
    ]


# ---- rendering ---------------------------------------------------------------------------


def _table(title: str, frame: pd.DataFrame) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", expand=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(column.replace("_", " "), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.2f}"
    if value is None or (not isinstance(value, list | dict | str) and pd.isna(value)):
        return ""
    return str(value)


def render_explanation(expl: Explanation, console: Console | None = None) -> None:
    """Print an explanation: the decision, its reasons, the farm, evidence and neighbours."""
    console = console or Console()
    style = _DECISION_STYLE.get(expl.decision, "bold")
    head = Text.assemble(
        (expl.account_id, "bold"), "  ", (expl.decision.upper(), style), f"  score {expl.score:.2f}"
    )
    lines: list[Any] = [head]
    if not expl.known:
        lines.append(Text("never seen: no request or account record in the store", "dim"))
    if expl.run_id:
        when = expl.scored_at.strftime("%Y-%m-%d %H:%M UTC") if expl.scored_at else "?"
        lines.append(Text(f"run {expl.run_id}, scored {when}", "dim"))
    elif expl.known:
        lines.append(Text("not scored by any published run", "dim"))
    if expl.farm:
        farm = expl.farm
        score = f"{farm['score']:.2f}" if farm.get("score") is not None else "?"
        strength = f", membership {farm['strength']:.2f}" if farm.get("strength") else ""
        lines.append(
            Text(
                f"farm {farm['cluster_id']}: {farm['size']} accounts, score {score}, "
                f"{farm.get('decision')}{strength}",
                "bold",
            )
        )
    for i, reason in enumerate(expl.reasons, start=1):
        lines.append(Text(f"{i}. {reason}"))
    channels = expl.engine_evidence.get("channels")
    if channels is not None and len(channels):
        strengths = ", ".join(f"{k} {_cell(v)}" for k, v in zip(*channels.values.T, strict=True))
        lines.append(Text(f"evidence channels: {strengths}", "dim"))
    console.print(Panel(Group(*lines), title="decision", expand=False))
    if expl.farm and expl.farm["reasons"]:
        console.print(Text("farm reasons: " + "; ".join(expl.farm["reasons"]), "italic"))
    shared = _shared_rows(expl.evidence)
    if len(shared):
        console.print(_table("shared with other accounts", shared))
    elif expl.known:
        console.print(Text("shares no card, IP, device or template with another account", "dim"))
    if len(expl.neighbours):
        console.print(_table("neighbours (accounts sharing an entity)", expl.neighbours))


def _shared_rows(evidence: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The evidence tables stacked with a ``kind`` column: the :data:`RENDER_ROWS` most shared
    entities of each kind, entities nobody else uses dropped."""
    frames = [
        frame[frame["other_accounts"] > 0].head(RENDER_ROWS).assign(kind=KIND_LABELS[kind])
        for kind, frame in evidence.items()
    ]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=["kind", *EVIDENCE_COLUMNS])
    return pd.concat(frames, ignore_index=True)[["kind", *EVIDENCE_COLUMNS]]
