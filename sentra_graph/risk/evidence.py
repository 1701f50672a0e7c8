"""Group evidence: what each farm member shares with its peers, channel by channel.

Six channels, each in [0, 1] per member (peers = farm members of other org units):

- ``payment``: its payment fingerprint is used by a peer;
- ``network``: share of its traffic on IPs used by peers (IPs mostly used inside the farm),
  half credit for shared /24 or /48 prefixes, full credit for a sign-up IP shared with a peer,
  half credit for a shared sign-up prefix;
- ``device``: share of its traffic on device fingerprints (TLS + user agent, or a TLS stack
  alone) used by peers and mostly inside the farm;
- ``content``: share of its prompts in the farm's templates (templates used by a good part of
  the farm's org units, and mostly inside the farm: a template everybody uses is grammar, not
  a farm's skeleton), or its distillation-marker rate (chain-of-thought, rubric, tool-use;
  full from ``MARKER_FULL``) when a good part of the farm carries such markers too;
- ``timing``: excess co-activity with peers in short time bins over the window's baseline;
- ``signup``: peers created within the burst window, beyond what chance would put there.

>>> CHANNELS
('payment', 'network', 'device', 'content', 'timing', 'signup')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from sentra_graph.graph.entities import ENTITY_TYPES, Incidence
from sentra_graph.params import RiskParams
from sentra_graph.risk.timing import peer_coactivity, signup_peers

__all__ = ["CHANNELS", "FarmInputs", "entity_sharing", "member_channels"]

CHANNELS = ("payment", "network", "device", "content", "timing", "signup")
_CONCENTRATED = ("signup_ip", "signup_prefix", "ip", "prefix", "device", "tls")
SYNC_FULL = 0.5
"""Excess co-activity cosine that counts as full timing evidence."""
BURST_FULL = 10
"""Peers signed up in the same burst that count as full sign-up evidence."""
MARKED = 0.2
"""Marker rate above which an account counts as sending distillation-style prompts (ordinary
traffic carries a few percent)."""
MARKER_FULL = 0.5
"""Marker rate that counts as full content evidence."""


@dataclass(frozen=True)
class FarmInputs:
    """What the evidence is computed from (arrays indexed by account code).

    labels: farm per account (-1 none); units: org unit; incidence: the entity graph;
    vectors / baseline: activity vectors and their baseline cosine; created: sign-up epoch
    seconds (NaN unknown); markers: per-account max marker rate (0..1).
    """

    labels: np.ndarray
    units: np.ndarray
    incidence: Incidence
    vectors: sparse.csr_matrix
    baseline: float
    created: np.ndarray
    markers: np.ndarray


def entity_sharing(inputs: FarmInputs, params: RiskParams) -> pd.DataFrame:
    """Incidence rows of farm members with how the entity is shared inside the farm.

    Columns: account, entity, kind, volume, farm, members (farm accounts using it), units
    (farm org units using it), degree (all accounts using it), shared (counts as evidence).
    """
    inc, labels = inputs.incidence, inputs.labels
    in_farm = labels[inc.account] >= 0
    rows = pd.DataFrame(
        {
            "account": inc.account[in_farm],
            "entity": inc.entity[in_farm],
            "kind": inc.entity_type[inc.entity[in_farm]],
            "volume": inc.volume[in_farm],
        }
    )
    rows["farm"] = labels[rows["account"].to_numpy()]
    rows["unit"] = inputs.units[rows["account"].to_numpy()]
    grouped = rows.groupby(["farm", "entity"], sort=False)
    rows["members"] = grouped["account"].transform("size")
    rows["units"] = grouped["unit"].transform("nunique")
    rows["degree"] = inc.degree()[rows["entity"].to_numpy()]
    farm_units = pd.Series(inputs.units[labels >= 0]).groupby(labels[labels >= 0]).nunique()
    concentrated = np.isin(rows["kind"], [ENTITY_TYPES.index(k) for k in _CONCENTRATED])
    share_in_farm = rows["members"] / rows["degree"]
    shared = (rows["units"] >= 2) & (~concentrated | (share_in_farm >= params.ip_concentration))
    is_template = rows["kind"] == ENTITY_TYPES.index("template")
    template_cut = np.maximum(
        2.0, params.template_min_share * farm_units.reindex(rows["farm"]).to_numpy()
    )
    farm_template = (rows["units"] >= template_cut) & (
        share_in_farm >= params.template_concentration
    )
    rows["shared"] = np.where(is_template, farm_template, shared)
    return rows


def _per_account(rows: pd.DataFrame, kind: str, n: int, how: str) -> np.ndarray:
    sel = rows[(rows["kind"] == ENTITY_TYPES.index(kind)) & rows["shared"]]
    out = np.zeros(n)
    if how == "sum":
        np.add.at(out, sel["account"].to_numpy(), sel["volume"].to_numpy())
    else:
        out[sel["account"].to_numpy()] = 1.0
    return np.clip(out, 0.0, 1.0)


def _shared_markers(inputs: FarmInputs, min_share: float) -> np.ndarray:
    """Each member's marker rate where enough of its farm carries markers too, else 0."""
    labels = inputs.labels
    members = labels >= 0
    out = np.zeros(len(labels))
    if not members.any():
        return out
    marked = (inputs.markers >= MARKED) & members
    size = np.bincount(labels[members])
    hits = np.bincount(labels[marked], minlength=len(size))
    farm_ok = (hits >= 2) & (hits >= min_share * size)
    ok = members & farm_ok[np.maximum(labels, 0)]
    out[ok] = np.clip(inputs.markers[ok] / MARKER_FULL, 0.0, 1.0)
    return out


def member_channels(inputs: FarmInputs, rows: pd.DataFrame, params: RiskParams) -> pd.DataFrame:
    """Channel strengths per account (0 outside farms), plus raw timing and burst figures.

    rows: output of :func:`entity_sharing`. Columns: the :data:`CHANNELS`, ``coactivity``
    (mean cosine with peers), ``burst_peers`` (peers signed up within the burst window).
    """
    n = len(inputs.labels)
    labels = inputs.labels
    ip = _per_account(rows, "ip", n, "sum")
    prefix = _per_account(rows, "prefix", n, "sum")
    signup_ip = _per_account(rows, "signup_ip", n, "any")
    signup_prefix = _per_account(rows, "signup_prefix", n, "any")
    template = _per_account(rows, "template", n, "sum")
    coactivity = peer_coactivity(inputs.vectors, labels, inputs.units)
    base = inputs.baseline
    timing = np.clip((coactivity - base) / max(1.0 - base, 1e-9) / SYNC_FULL, 0.0, 1.0)
    burst_peers = signup_peers(
        inputs.created, labels, inputs.units, params.signup_burst_minutes * 60.0
    )
    members = labels >= 0
    size = np.bincount(labels[members], minlength=int(labels.max()) + 1 if members.any() else 0)
    peers = np.where(members, size[np.maximum(labels, 0)] - 1, 0).astype(np.float64)
    known = inputs.created[~np.isnan(inputs.created)]
    span = float(known.max() - known.min()) if len(known) else 0.0
    window = 2.0 * params.signup_burst_minutes * 60.0
    expected = peers * min(1.0, window / max(span, window))
    needed = np.clip(0.25 * peers, 2.0, BURST_FULL)
    signup = np.clip((burst_peers - expected) / needed, 0.0, 1.0)
    out = pd.DataFrame(
        {
            "payment": _per_account(rows, "payment", n, "any"),
            "network": np.maximum.reduce([ip, 0.5 * prefix, signup_ip, 0.5 * signup_prefix]),
            "device": np.maximum(
                _per_account(rows, "device", n, "sum"), _per_account(rows, "tls", n, "sum")
            ),
            "content": np.maximum(template, _shared_markers(inputs, params.template_min_share)),
            "timing": timing,
            "signup": signup,
            "coactivity": coactivity,
            "burst_peers": burst_peers,
        }
    )
    out.loc[~members, list(CHANNELS)] = 0.0
    return out
