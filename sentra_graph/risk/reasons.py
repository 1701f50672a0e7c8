"""Human-readable reasons and evidence dictionaries for farms and their members.

Every reason names checkable evidence (a card fingerprint, an IP count, a template id, a time
window); an analyst can verify it against the raw requests. The per-entity figures are
aggregated once for all farms and accounts; only the final strings are built in Python.

>>> _pct(0.937)
'94%'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.features.markers import COT, MARKER_NAMES, RUBRIC, TOOL
from sentra_graph.graph.entities import ENTITY_TYPES, Incidence
from sentra_graph.risk.evidence import CHANNELS, MARKER_FULL, signature_strength

__all__ = ["Explainer", "ReasonInputs"]

MIN_CHANNEL = 0.2
"""Channels weaker than this are not worth a reason line."""
TOP = 10
"""How many entities of each kind a farm's evidence lists."""
_MARKER_BITS = (COT, RUBRIC, TOOL)
_RATE_COLUMNS = ("cot_rate", "rubric_rate", "tool_rate")


@dataclass(frozen=True)
class ReasonInputs:
    """Everything reasons are written from (per-account arrays indexed by account code).

    rows: shared-entity rows (:func:`~sentra_graph.risk.evidence.entity_sharing`);
    channels: member channels; templates: per-account template features; farms: per-farm
    scores (index = farm label); template_markers: marker rates per template id (index);
    n_requests, created: per account; baseline: the window's chance co-activity (members' own
    chance levels are in ``channels``); bin_minutes, burst_minutes: the time windows used.
    """

    incidence: Incidence
    rows: pd.DataFrame
    channels: pd.DataFrame
    templates: pd.DataFrame
    farms: pd.DataFrame
    template_markers: pd.DataFrame
    n_requests: np.ndarray
    created: np.ndarray
    baseline: float
    bin_minutes: float
    burst_minutes: float


def _pct(x: float) -> str:
    return f"{round(100 * x):d}%"


def _marker_name(rates: np.ndarray) -> tuple[str, float]:
    best = int(np.argmax(rates))
    return MARKER_NAMES[_MARKER_BITS[best]], float(rates[best])


def _strongest(
    rows: pd.DataFrame, kind: str, n: int, by: pd.Series | None = None
) -> dict[str, np.ndarray]:
    """Per account, its shared entity of ``kind`` ranking first by ``by`` (default: volume),
    entity -1 if none: arrays ``entity``, ``members``, ``units``, ``volume``, ``coverage``,
    ``exclusivity`` and ``rank`` (the ``by`` value) indexed by account code."""
    mask = (rows["kind"] == ENTITY_TYPES.index(kind)) & rows["shared"]
    sel = rows[mask].assign(rank=(rows["volume"] if by is None else by)[mask])
    sel = sel.sort_values("rank", ascending=False, kind="stable").drop_duplicates("account")
    acc = sel["account"].to_numpy()
    out: dict[str, np.ndarray] = {"entity": np.full(n, -1, dtype=np.int64)}
    out["entity"][acc] = sel["entity"].to_numpy()
    for column in ("members", "units", "volume", "coverage", "exclusivity", "rank"):
        out[column] = np.zeros(n)
        out[column][acc] = sel[column].to_numpy()
    return out


class Explainer:
    """Reasons for accounts and farms, and the farms' evidence dictionaries.

    Built once per run from :class:`ReasonInputs`; every aggregate it needs is computed in the
    constructor with grouped, vectorised operations.
    """

    def __init__(self, inputs: ReasonInputs) -> None:
        self.inputs = inputs
        n = len(inputs.n_requests)
        rows = inputs.rows
        self.key = inputs.incidence.entity_key
        self.ch = {c: inputs.channels[c].to_numpy() for c in CHANNELS}
        self.coactivity = inputs.channels["coactivity"].to_numpy()
        self.chance = inputs.channels["chance"].to_numpy()
        self.burst = inputs.channels["burst_peers"].to_numpy()
        self.rates = inputs.templates[list(_RATE_COLUMNS)].to_numpy()
        self.parts = {
            kind: _strongest(rows, kind, n)
            for kind in ("payment", "signup_ip", "device", "template")
        }
        self.parts["signature"] = _strongest(rows, "template", n, by=signature_strength(rows))
        templates = rows[(rows["kind"] == ENTITY_TYPES.index("template")) & rows["shared"]]
        self.template_share = np.bincount(
            templates["account"], weights=templates["volume"], minlength=n
        )
        ips = rows[(rows["kind"] == ENTITY_TYPES.index("ip")) & rows["shared"]]
        self.ip_count = np.bincount(ips["account"], minlength=n)
        self.ip_volume = np.bincount(ips["account"], weights=ips["volume"], minlength=n)
        self.tops = self._farm_tops(rows)
        self.farm_rows = inputs.farms.to_dict("index")
        self.template_rates = {
            int(tid): [round(float(r), 3) for r in rates]
            for tid, rates in zip(
                inputs.template_markers.index,
                inputs.template_markers[list(_RATE_COLUMNS)].to_numpy(),
                strict=True,
            )
        }

    def _part(self, kind: str, account: int) -> dict[str, float] | None:
        part = self.parts[kind]
        if part["entity"][account] < 0:
            return None
        return {column: values[account] for column, values in part.items()}

    def account(self, a: int, noun: str = "farm") -> list[str]:
        """Reasons of one member, strongest channel first; ``noun`` names its group ("farm"
        for a blocked one, "group" otherwise)."""
        ch = {c: float(v[a]) for c, v in self.ch.items()}
        lines: list[tuple[float, str]] = []
        card = self._part("payment", a) if ch["payment"] >= MIN_CHANNEL else None
        if card is not None:
            lines.append(
                (
                    ch["payment"],
                    f"card {self.key[int(card['entity'])]} shared with "
                    f"{int(card['members']) - 1} other {noun} accounts "
                    f"({int(card['units'])} orgs in all)",
                )
            )
        if ch["network"] >= MIN_CHANNEL:
            lines.append((ch["network"], self._network(a, noun)))
        device = self._part("device", a) if ch["device"] >= MIN_CHANNEL else None
        if device is not None:
            lines.append(
                (
                    ch["device"],
                    f"device {self.key[int(device['entity'])]} shared with "
                    f"{int(device['members']) - 1} other {noun} accounts",
                )
            )
        if ch["content"] >= MIN_CHANNEL:
            lines.append((ch["content"], self._content(a, noun)))
        if ch["timing"] >= MIN_CHANNEL:
            lines.append(
                (
                    ch["timing"],
                    f"active in the same {self.inputs.bin_minutes:g}-minute windows as the "
                    f"{noun} (co-activity {self.coactivity[a]:.2f}, "
                    f"{self.chance[a]:.2f} by chance)",
                )
            )
        if ch["signup"] >= MIN_CHANNEL:
            lines.append(
                (
                    ch["signup"],
                    f"signed up within {self.inputs.burst_minutes:g} minutes of "
                    f"{int(self.burst[a])} {noun} accounts",
                )
            )
        lines.sort(key=lambda x: -x[0])
        return [text for _, text in lines]

    def _content(self, a: int, noun: str) -> str:
        """The content evidence that weighs most: template share, signature or markers."""
        name, rate = _marker_name(self.rates[a])
        template = self._part("template", a)
        signature = self._part("signature", a)
        share = min(self.template_share[a], 1.0)
        marked = min(rate / MARKER_FULL, 1.0)
        if signature is not None and signature["rank"] >= max(share, marked):
            return (
                f"uses template T{self.key[int(signature['entity'])]} "
                f"({_pct(signature['volume'])} of its prompts), like "
                f"{_pct(signature['coverage'])} of the {noun} ({_pct(signature['exclusivity'])} "
                "of that template's users are members)"
            )
        if template is not None and share >= marked:
            marker = f" ({name})" if rate >= 0.3 else ""
            return (
                f"{_pct(template['volume'])} of prompts in template "
                f"T{self.key[int(template['entity'])]}{marker}"
            )
        return f"{_pct(rate)} of prompts with {name}, like most of the {noun}"

    def _network(self, a: int, noun: str) -> str:
        if self.ip_count[a] > 0:
            return (
                f"{int(self.ip_count[a])} IPs shared with {noun} members "
                f"({_pct(min(self.ip_volume[a], 1.0))} of its requests)"
            )
        signup = self._part("signup_ip", a)
        if signup is not None:
            return (
                f"signed up from {self.key[int(signup['entity'])]}, shared with "
                f"{int(signup['members']) - 1} other {noun} accounts"
            )
        return f"network prefixes shared with {noun} members"

    def _farm_tops(self, rows: pd.DataFrame) -> dict[tuple[int, int], pd.DataFrame]:
        shared = rows[rows["shared"]]
        agg = (
            shared.groupby(["farm", "kind", "entity"], sort=False)
            .agg(accounts=("account", "size"), orgs=("unit", "nunique"))
            .reset_index()
        )
        counts = agg.groupby(["farm", "kind"]).size()
        agg = agg.sort_values(
            ["farm", "kind", "accounts", "orgs", "entity"],
            ascending=[True, True, False, False, True],
        )
        head = agg.groupby(["farm", "kind"], sort=False).head(TOP)
        tops = {key: frame for key, frame in head.groupby(["farm", "kind"], sort=False)}
        self.counts = counts.to_dict()
        return tops

    def _top(self, label: int, kind: str, name: str) -> list[dict]:
        frame = self.tops.get((label, ENTITY_TYPES.index(kind)))
        if frame is None:
            return []
        return [
            {name: str(self.key[e]), "accounts": int(acc), "orgs": int(orgs)}
            for e, acc, orgs in zip(frame["entity"], frame["accounts"], frame["orgs"], strict=True)
        ]

    def farm_evidence(self, label: int, members: np.ndarray) -> dict:
        """The evidence dictionary of one farm (for the API's farm detail)."""
        inputs = self.inputs
        farm = self.farm_rows[label]
        templates = []
        for item in self._top(label, "template", "template_id"):
            rates = self.template_rates.get(int(item["template_id"]), [0.0, 0.0, 0.0])
            templates.append({**item, **dict(zip(_RATE_COLUMNS, rates, strict=True))})
        created = inputs.created[members]
        created = created[~np.isnan(created)]
        kind_count = {
            kind: int(self.counts.get((label, ENTITY_TYPES.index(kind)), 0))
            for kind in ("ip", "prefix")
        }
        return {
            "size": int(farm["size"]),
            "org_units": int(farm["units"]),
            "total_requests": int(inputs.n_requests[members].sum()),
            "channels": {c: round(float(farm[c]), 3) for c in CHANNELS},
            "payment_fingerprints": self._top(label, "payment", "fingerprint"),
            "ips": {"shared": kind_count["ip"], "top": self._top(label, "ip", "ip")},
            "prefixes": {
                "shared": kind_count["prefix"],
                "top": self._top(label, "prefix", "prefix"),
            },
            "signup_ips": self._top(label, "signup_ip", "ip"),
            "devices": self._top(label, "device", "device"),
            "templates": templates,
            "timing": {
                "bin_minutes": inputs.bin_minutes,
                "coactivity": round(float(self.coactivity[members].mean()), 3),
                "baseline": round(float(self.chance[members].mean()), 3) if len(members) else 0.0,
                "sync_score": round(float(farm["timing"]), 3),
            },
            "signup_burst": {
                "window_minutes": inputs.burst_minutes,
                "largest": int(self.burst[members].max()) + 1 if len(members) else 0,
                "first": _iso(created.min()) if len(created) else None,
                "last": _iso(created.max()) if len(created) else None,
            },
        }


def group_line(size: int, org_units: int) -> str:
    """The group's size and how many independent owners it has (an account without an org
    is its own owner): a farm hides one owner behind many.

    >>> group_line(4, 2)
    '4 accounts from 2 unrelated orgs or accounts'
    """
    if org_units == size:
        return f"{size} accounts, no two in the same org"
    return f"{size} accounts from {org_units} unrelated orgs or accounts"


def farm_reasons(evidence: dict) -> list[str]:
    """Reasons of a farm, strongest channel first, from its evidence dictionary.

    >>> ev = {"size": 3, "org_units": 3, "channels": dict.fromkeys(CHANNELS, 0.0)}
    >>> farm_reasons(ev)
    ['3 accounts, no two in the same org']
    >>> farm_reasons({**ev, "org_units": 2})
    ['3 accounts from 2 unrelated orgs or accounts']
    """
    ch = evidence["channels"]
    lines: list[tuple[float, str]] = [(2.0, group_line(evidence["size"], evidence["org_units"]))]
    cards = evidence.get("payment_fingerprints", [])
    if ch["payment"] >= MIN_CHANNEL and cards:
        c = cards[0]
        more = f" (+{len(cards) - 1} more shared cards)" if len(cards) > 1 else ""
        lines.append(
            (
                ch["payment"],
                f"card {c['fingerprint']} shared by {c['accounts']} accounts in "
                f"{c['orgs']} orgs{more}",
            )
        )
    if ch["network"] >= MIN_CHANNEL:
        lines.append((ch["network"], f"{evidence['ips']['shared']} IPs shared by farm members"))
    if ch["device"] >= MIN_CHANNEL and evidence["devices"]:
        d = evidence["devices"][0]
        lines.append((ch["device"], f"device {d['device']} shared by {d['accounts']} accounts"))
    if ch["content"] >= MIN_CHANNEL and evidence["templates"]:
        t = evidence["templates"][0]
        name, rate = _marker_name(np.array([t[c] for c in _RATE_COLUMNS]))
        marker = f", {_pct(rate)} {name}" if rate >= 0.3 else ""
        lines.append(
            (
                ch["content"],
                f"template T{t['template_id']} used by {t['accounts']} accounts{marker}",
            )
        )
    elif ch["content"] >= MIN_CHANNEL:
        lines.append((ch["content"], "members send distillation-style prompts alike"))
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
