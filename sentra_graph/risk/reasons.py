"""Human-readable reasons and evidence dictionaries for farms and their members.

Every reason names checkable evidence (a card fingerprint, an IP count, a template id, a time
window); an analyst can verify it against the raw requests.

>>> _pct(0.937)
'94%'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.features.markers import MARKER_NAMES
from sentra_graph.graph.entities import ENTITY_TYPES, Incidence
from sentra_graph.risk.evidence import CHANNELS

__all__ = ["ReasonInputs", "account_reasons", "farm_evidence", "farm_reasons"]

MIN_CHANNEL = 0.2
"""Channels weaker than this are not worth a reason line."""
TOP = 10
"""How many entities of each kind a farm's evidence lists."""


@dataclass(frozen=True)
class ReasonInputs:
    """Everything reasons are written from (frames indexed by account code unless noted).

    rows: shared-entity rows (:func:`~sentra_graph.risk.evidence.entity_sharing`);
    channels: member channels; templates: per-account template features; farms: per-farm
    scores (index = farm label); farm_ids: id per farm label; template_markers: per template
    id (index) its cot/rubric/tool rates; n_requests: per account; baseline: chance
    co-activity; bin_minutes, burst_minutes: the time windows used.
    """

    incidence: Incidence
    rows: pd.DataFrame
    channels: pd.DataFrame
    templates: pd.DataFrame
    farms: pd.DataFrame
    farm_ids: list[str]
    template_markers: pd.DataFrame
    n_requests: np.ndarray
    created: np.ndarray
    baseline: float
    bin_minutes: float
    burst_minutes: float


def _pct(x: float) -> str:
    return f"{round(100 * x):d}%"


def _kind(name: str) -> int:
    return ENTITY_TYPES.index(name)


def _marker_name(cot: float, rubric: float, tool: float) -> tuple[str, float]:
    rates = {1: cot, 2: rubric, 4: tool}
    bit = max(rates, key=lambda b: rates[b])
    return MARKER_NAMES[bit], rates[bit]


def _shared(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    return rows[(rows["kind"] == _kind(kind)) & rows["shared"]]


def account_reasons(inputs: ReasonInputs, accounts: np.ndarray) -> dict[int, list[str]]:
    """Reasons (strongest channel first) for the given farm members, keyed by account code."""
    inc, rows, ch = inputs.incidence, inputs.rows, inputs.channels
    rows = rows[np.isin(rows["account"].to_numpy(), accounts)]
    card = _shared(rows, "payment").drop_duplicates("account").set_index("account")
    ips = _shared(rows, "ip").groupby("account")["volume"].agg(["size", "sum"])
    signup_ip = _shared(rows, "signup_ip").drop_duplicates("account").set_index("account")
    device = (
        _shared(rows, "device").sort_values("volume", ascending=False).drop_duplicates("account")
    ).set_index("account")
    tpl = (
        _shared(rows, "template").sort_values("volume", ascending=False).drop_duplicates("account")
    ).set_index("account")
    out: dict[int, list[str]] = {}
    for a in accounts.tolist():
        lines: list[tuple[float, str]] = []
        if ch.at[a, "payment"] >= MIN_CHANNEL and a in card.index:
            r = card.loc[a]
            lines.append(
                (
                    ch.at[a, "payment"],
                    f"card {inc.entity_key[r['entity']]} shared with {int(r['members']) - 1} "
                    f"farm accounts in {int(r['units'])} orgs",
                )
            )
        if ch.at[a, "network"] >= MIN_CHANNEL:
            if a in ips.index:
                lines.append(
                    (
                        ch.at[a, "network"],
                        f"{int(ips.at[a, 'size'])} IPs shared with farm members "
                        f"({_pct(min(ips.at[a, 'sum'], 1.0))} of its requests)",
                    )
                )
            elif a in signup_ip.index:
                r = signup_ip.loc[a]
                lines.append(
                    (
                        ch.at[a, "network"],
                        f"signed up from {inc.entity_key[r['entity']]}, shared with "
                        f"{int(r['members']) - 1} farm accounts",
                    )
                )
            else:
                lines.append((ch.at[a, "network"], "network prefixes shared with farm members"))
        if ch.at[a, "device"] >= MIN_CHANNEL and a in device.index:
            r = device.loc[a]
            lines.append(
                (
                    ch.at[a, "device"],
                    f"device {inc.entity_key[r['entity']]} shared with "
                    f"{int(r['members']) - 1} farm accounts",
                )
            )
        if ch.at[a, "content"] >= MIN_CHANNEL and a in tpl.index:
            r = tpl.loc[a]
            t = inputs.templates.loc[a]
            name, rate = _marker_name(t["cot_rate"], t["rubric_rate"], t["tool_rate"])
            marker = f" ({name})" if rate >= 0.3 else ""
            lines.append(
                (
                    ch.at[a, "content"],
                    f"{_pct(r['volume'])} of prompts in template "
                    f"T{inc.entity_key[r['entity']]}{marker}",
                )
            )
        if ch.at[a, "timing"] >= MIN_CHANNEL:
            lines.append(
                (
                    ch.at[a, "timing"],
                    f"active in the same {inputs.bin_minutes:g}-minute windows as the farm "
                    f"(co-activity {ch.at[a, 'coactivity']:.2f}, {inputs.baseline:.2f} by chance)",
                )
            )
        if ch.at[a, "signup"] >= MIN_CHANNEL:
            lines.append(
                (
                    ch.at[a, "signup"],
                    f"signed up within {inputs.burst_minutes:g} minutes of "
                    f"{int(ch.at[a, 'burst_peers'])} farm accounts",
                )
            )
        lines.sort(key=lambda x: -x[0])
        out[a] = [text for _, text in lines]
    return out


def farm_evidence(inputs: ReasonInputs, label: int, members: np.ndarray) -> dict:
    """The evidence dictionary of one farm (for the API's farm detail)."""
    inc = inputs.incidence
    rows = inputs.rows[inputs.rows["farm"] == label]
    farm = inputs.farms.loc[label]

    def top(kind: str, key: str) -> list[dict]:
        sel = rows[(rows["kind"] == _kind(kind)) & rows["shared"]]
        agg = sel.groupby("entity").agg(accounts=("account", "size"), orgs=("unit", "nunique"))
        agg = agg.sort_values(["accounts", "orgs"], ascending=False).head(TOP)
        return [
            {key: str(inc.entity_key[e]), "accounts": int(r.accounts), "orgs": int(r.orgs)}
            for e, r in agg.iterrows()
        ]

    def count(kind: str) -> int:
        return int(rows.loc[(rows["kind"] == _kind(kind)) & rows["shared"], "entity"].nunique())

    templates = []
    for item in top("template", "template_id"):
        tid = int(item["template_id"])
        rates = (
            inputs.template_markers.loc[tid]
            if tid in inputs.template_markers.index
            else pd.Series({"cot_rate": 0.0, "rubric_rate": 0.0, "tool_rate": 0.0})
        )
        templates.append(
            {
                **item,
                "cot_rate": round(float(rates["cot_rate"]), 3),
                "rubric_rate": round(float(rates["rubric_rate"]), 3),
                "tool_rate": round(float(rates["tool_rate"]), 3),
            }
        )
    ch = inputs.channels.loc[members]
    created = inputs.created[members]
    created = created[~np.isnan(created)]
    return {
        "size": int(farm["size"]),
        "org_units": int(farm["units"]),
        "total_requests": int(inputs.n_requests[members].sum()),
        "channels": {c: round(float(farm[c]), 3) for c in CHANNELS},
        "payment_fingerprints": top("payment", "fingerprint"),
        "ips": {"shared": count("ip"), "top": top("ip", "ip")},
        "prefixes": {"shared": count("prefix"), "top": top("prefix", "prefix")},
        "signup_ips": top("signup_ip", "ip"),
        "devices": top("device", "device"),
        "templates": templates,
        "timing": {
            "bin_minutes": inputs.bin_minutes,
            "coactivity": round(float(ch["coactivity"].mean()), 3),
            "baseline": round(inputs.baseline, 3),
            "sync_score": round(float(farm["timing"]), 3),
        },
        "signup_burst": {
            "window_minutes": inputs.burst_minutes,
            "largest": int(ch["burst_peers"].max()) + 1 if len(ch) else 0,
            "first": _iso(created.min()) if len(created) else None,
            "last": _iso(created.max()) if len(created) else None,
        },
    }


def farm_reasons(evidence: dict) -> list[str]:
    """Reasons of a farm, strongest channel first, from its evidence dictionary."""
    ch = evidence["channels"]
    lines: list[tuple[float, str]] = [
        (2.0, f"{evidence['size']} accounts in {evidence['org_units']} orgs")
    ]
    cards = evidence["payment_fingerprints"]
    if ch["payment"] >= MIN_CHANNEL and cards:
        c = cards[0]
        lines.append(
            (
                ch["payment"],
                f"card {c['fingerprint']} shared by {c['accounts']} accounts in {c['orgs']} orgs"
                + (f" (+{len(cards) - 1} more shared cards)" if len(cards) > 1 else ""),
            )
        )
    if ch["network"] >= MIN_CHANNEL:
        lines.append((ch["network"], f"{evidence['ips']['shared']} IPs shared by farm members"))
    if ch["device"] >= MIN_CHANNEL and evidence["devices"]:
        d = evidence["devices"][0]
        lines.append((ch["device"], f"device {d['device']} shared by {d['accounts']} accounts"))
    if ch["content"] >= MIN_CHANNEL and evidence["templates"]:
        t = evidence["templates"][0]
        name, rate = _marker_name(t["cot_rate"], t["rubric_rate"], t["tool_rate"])
        marker = f", {_pct(rate)} {name}" if rate >= 0.3 else ""
        lines.append(
            (
                ch["content"],
                f"template T{t['template_id']} used by {t['accounts']} accounts{marker}",
            )
        )
    if ch["timing"] >= MIN_CHANNEL:
        tm = evidence["timing"]
        lines.append(
            (
                ch["timing"],
                f"members active in the same {tm['bin_minutes']:g}-minute windows "
                f"(co-activity {tm['coactivity']:.2f}, {tm['baseline']:.2f} by chance)",
            )
        )
    if ch["signup"] >= MIN_CHANNEL:
        sb = evidence["signup_burst"]
        lines.append(
            (
                ch["signup"],
                f"{sb['largest']} accounts signed up within {sb['window_minutes']:g} minutes",
            )
        )
    lines.sort(key=lambda x: -x[0])
    return [text for _, text in lines]


def _iso(epoch: float) -> str:
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()
