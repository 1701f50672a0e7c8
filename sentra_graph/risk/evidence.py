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
  a farm's skeleton), or how much of a signature its farm's most common such template is, or
  its rate of a distillation marker (chain-of-thought, rubric, tool-use; full from
  ``MARKER_FULL``) that a good part of the farm carries too;
- ``timing``: excess co-activity with peers in short time bins over chance (the window's
  baseline, more for busy accounts: :func:`~sentra_graph.risk.timing.peer_chance`);
- ``signup``: peers created within the burst window, beyond what chance would put there.

>>> CHANNELS
('payment', 'network', 'device', 'content', 'timing', 'signup')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from sentra_graph.cluster.lockstep import excess_cosine
from sentra_graph.graph.entities import ENTITY_TYPES, Incidence
from sentra_graph.graph.projection import entity_units
from sentra_graph.params import RiskParams
from sentra_graph.risk.timing import peer_chance, peer_coactivity, signup_peers

__all__ = [
    "CHANNELS",
    "FarmInputs",
    "binomial_surprise",
    "entity_sharing",
    "member_channels",
    "signature_strength",
]

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
REACH_MIN = 0.2
"""Channel strength from which a channel ties a member to the peers it measures."""
SIGNATURE_COVERAGE = 0.5
"""Least share of a farm's org units using a template for it to be the farm's signature."""
SIGNATURE_EXCLUSIVE = 0.5
"""Share of a template's users inside the farm from which it fully counts as a signature."""
UNIVERSAL_COVERAGE = 0.8
"""Share of a farm's org units using a template for its improbability to count."""
SURPRISE_FROM = 6.0
"""Binomial surprise (-log10 chance) below which a universally used template is not evidence."""
SURPRISE_SPAN = 4.0
"""Orders of magnitude above ``SURPRISE_FROM`` at which it is full evidence."""
HEAVY_USE = 0.2
"""Share of an account's prompts in one template from which it uses the template heavily:
people spread their prompts over many phrasings, a script sends its wrapper again and again."""


@dataclass(frozen=True)
class FarmInputs:
    """What the evidence is computed from (arrays indexed by account code).

    labels: farm per account (-1 none); units: org unit; incidence: the entity graph;
    vectors / baseline: activity vectors and their baseline cosine; created: sign-up epoch
    seconds (NaN unknown); markers: per-account marker rates, one column per marker kind
    (chain-of-thought, rubric, tool-use); prompts: prompts per account (None: unknown), which
    make a busy account's use of a common template less surprising.
    """

    labels: np.ndarray
    units: np.ndarray
    incidence: Incidence
    vectors: sparse.csr_matrix
    baseline: float
    created: np.ndarray
    markers: np.ndarray
    prompts: np.ndarray | None = None


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
    rows["coverage"] = rows["units"] / farm_units.reindex(rows["farm"]).to_numpy()
    rows["exclusivity"] = share_in_farm
    rows["surprise"] = _surprise(rows, inputs, farm_units, is_template.to_numpy())
    improbable = (rows["coverage"] >= UNIVERSAL_COVERAGE) & (rows["surprise"] >= SURPRISE_FROM)
    farm_template = (rows["units"] >= template_cut) & (
        (share_in_farm >= params.template_concentration) | improbable
    )
    rows["shared"] = np.where(is_template, farm_template, shared)
    return rows


def binomial_surprise(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """-log10 of the chance of at least ``k`` successes in ``n`` draws of probability ``p``.

    >>> k, n = np.array([0, 3, 3]), np.array([5, 3, 3])
    >>> binomial_surprise(k, n, np.array([0.5, 0.1, 0.5])).round(2).tolist()
    [0.0, 3.0, 0.9]
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    tail = stats.binom.sf(np.asarray(k) - 1, n, p)
    return np.maximum(-np.log10(np.clip(tail, 1e-300, 1.0)), 0.0)


def _surprise(
    rows: pd.DataFrame, inputs: FarmInputs, farm_units: pd.Series, which: np.ndarray
) -> np.ndarray:
    """How improbable the farm's use of each entity is, 0 where not computed.

    The larger of two binomial surprises (:func:`binomial_surprise`): as many of the farm's
    org units using the entity if each unit picked it independently at its window-wide rate
    (or, for farms of busy accounts, at the rate an account sending the farm's mean number of
    prompts uses it: ``1 - (1 - q) ** m`` for a template holding a share ``q`` of all
    prompts), and, for the members that use it *heavily* themselves (for :data:`HEAVY_USE`
    of their prompts), as many heavy users at the window-wide rate of heavy use. A template
    that many send now and then can still be one that only a script sends most of the time.
    """
    out = np.zeros(len(rows))
    if not which.any():
        return out
    inc = inputs.incidence
    n_units = max(len(np.unique(inputs.units)), 1)
    sel = np.flatnonzero(which)
    farm = rows["farm"].to_numpy()[sel]
    entity = rows["entity"].to_numpy()[sel]
    n = farm_units.reindex(farm).to_numpy()
    rate = entity_units(inc, inputs.units) / n_units
    p = rate[entity]
    used = np.isin(inc.entity, np.unique(entity))
    if inputs.prompts is not None and inputs.prompts.sum() > 0:
        sent = np.bincount(
            inc.entity[used],
            weights=inc.volume[used] * inputs.prompts[inc.account[used]],
            minlength=inc.n_entities,
        )
        share = np.clip(sent / inputs.prompts.sum(), 0.0, 1.0)
        members = inputs.labels >= 0
        mean_prompts = np.bincount(
            inputs.labels[members], weights=inputs.prompts[members]
        ) / np.bincount(inputs.labels[members])
        p = np.maximum(
            p, -np.expm1(mean_prompts[farm] * np.log1p(-np.minimum(share[entity], 1 - 1e-12)))
        )
    out[sel] = binomial_surprise(rows["units"].to_numpy()[sel], n, p)
    heavy_rows = used & (inc.volume >= HEAVY_USE)
    heavy_rate = entity_units(inc.without(~heavy_rows), inputs.units) / n_units
    picked = rows.iloc[sel]
    heavy = picked[picked["volume"].to_numpy() >= HEAVY_USE]
    k_heavy = (
        heavy.groupby(["farm", "entity"])["unit"]
        .nunique()
        .reindex(pd.MultiIndex.from_arrays([farm, entity]), fill_value=0)
    ).to_numpy()
    heavy_surprise = binomial_surprise(k_heavy, n, heavy_rate[entity])
    uses_heavily = picked["volume"].to_numpy() >= HEAVY_USE
    out[sel] = np.maximum(out[sel], np.where(uses_heavily, heavy_surprise, 0.0))
    return out


def _signature_templates(rows: pd.DataFrame, n: int) -> np.ndarray:
    """Per member: how much its farm's templates are the farm's signature.

    A template that most of the farm uses (coverage >= 1/2) and few outsiders use is strong
    evidence even when it carries a minority of each member's prompts: the strength is the
    coverage times the exclusivity (share of the template's users inside the farm, full at 1/2),
    the best over the member's shared templates.
    """
    sel = rows[(rows["kind"] == ENTITY_TYPES.index("template")) & rows["shared"]]
    out = np.zeros(n)
    np.maximum.at(out, sel["account"].to_numpy(), signature_strength(sel).to_numpy())
    return out


def signature_strength(rows: pd.DataFrame) -> pd.Series:
    """Per shared-entity row: how much of a signature of its farm the entity is.

    Either coverage x exclusivity (full at 1/2) for an entity half the farm uses, or, for one
    that nearly all of it uses (coverage >= :data:`UNIVERSAL_COVERAGE`), how improbable that
    is by chance (binomial surprise, none below :data:`SURPRISE_FROM`, full
    :data:`SURPRISE_SPAN` orders of magnitude above): fourteen unrelated accounts all using
    a template that one account in seventy uses is no coincidence.
    """
    exclusive = np.clip(rows["exclusivity"] / SIGNATURE_EXCLUSIVE, 0.0, 1.0)
    shared = (rows["coverage"] * exclusive).where(rows["coverage"] >= SIGNATURE_COVERAGE, 0.0)
    improbable = np.clip((rows["surprise"] - SURPRISE_FROM) / SURPRISE_SPAN, 0.0, 1.0)
    universal = improbable.where(rows["coverage"] >= UNIVERSAL_COVERAGE, 0.0)
    return np.maximum(shared, universal)


def _per_account(rows: pd.DataFrame, kind: str, n: int, how: str) -> np.ndarray:
    sel = rows[(rows["kind"] == ENTITY_TYPES.index(kind)) & rows["shared"]]
    out = np.zeros(n)
    if how == "sum":
        np.add.at(out, sel["account"].to_numpy(), sel["volume"].to_numpy())
    else:
        out[sel["account"].to_numpy()] = 1.0
    return np.clip(out, 0.0, 1.0)


def _marker_sharing(inputs: FarmInputs, min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Per member: its marker evidence and how many farm peers carry the same markers.

    For each marker kind (columns of ``inputs.markers``) a farm counts as marked when at
    least two members and ``min_share`` of them reach :data:`MARKED`; a member's evidence is
    its own rate of a marker kind its farm is marked with (full at :data:`MARKER_FULL`).
    """
    labels = inputs.labels
    n = len(labels)
    members = labels >= 0
    evidence = np.zeros(n)
    peers = np.zeros(n)
    if not members.any():
        return evidence, peers
    size = np.bincount(labels[members])
    for column in range(inputs.markers.shape[1]):
        rate = inputs.markers[:, column]
        marked = (rate >= MARKED) & members
        hits = np.bincount(labels[marked], minlength=len(size))
        farm_ok = (hits >= 2) & (hits >= min_share * size)
        ok = members & farm_ok[np.maximum(labels, 0)]
        strength = np.where(ok, np.clip(rate / MARKER_FULL, 0.0, 1.0), 0.0)
        evidence = np.maximum(evidence, strength)
        mates = np.where(ok, hits[np.maximum(labels, 0)] - marked, 0).astype(np.float64)
        peers = np.maximum(peers, np.where(strength >= REACH_MIN, mates, 0.0))
    return evidence, peers


def _reach(
    rows: pd.DataFrame,
    n: int,
    labels: np.ndarray,
    timing: np.ndarray,
    burst_peers: np.ndarray,
    marked_peers: np.ndarray,
) -> np.ndarray:
    """How many peers each member's evidence reaches: the most org units behind one shared
    entity, the farm when its timing is synchronised, its sign-up burst, its marked peers."""
    shared = rows[rows["shared"]]
    out = np.zeros(n)
    np.maximum.at(out, shared["account"].to_numpy(), shared["units"].to_numpy() - 1.0)
    members = labels >= 0
    size = np.bincount(labels[members], minlength=int(labels.max()) + 1 if members.any() else 0)
    farm_peers = np.where(members, size[np.maximum(labels, 0)] - 1.0, 0.0)
    out = np.maximum(out, np.where(timing >= REACH_MIN, farm_peers, 0.0))
    out = np.maximum(out, np.where(burst_peers > 0, burst_peers, 0.0))
    return np.maximum(out, marked_peers)


def member_channels(inputs: FarmInputs, rows: pd.DataFrame, params: RiskParams) -> pd.DataFrame:
    """Channel strengths per account (0 outside farms), plus raw timing and burst figures.

    rows: output of :func:`entity_sharing`. Columns: the :data:`CHANNELS`, ``coactivity``
    (mean cosine with peers), ``chance`` (what chance gives it, see
    :func:`~sentra_graph.risk.timing.peer_chance`), ``burst_peers`` (peers signed up within the
    burst window), ``reach`` (how many peers its evidence ties it to, see :func:`_reach`).
    """
    n = len(inputs.labels)
    labels = inputs.labels
    ip = _per_account(rows, "ip", n, "sum")
    prefix = _per_account(rows, "prefix", n, "sum")
    signup_ip = _per_account(rows, "signup_ip", n, "any")
    signup_prefix = _per_account(rows, "signup_prefix", n, "any")
    template = _per_account(rows, "template", n, "sum")
    markers_part, marked_peers = _marker_sharing(inputs, params.template_min_share)
    coactivity = peer_coactivity(inputs.vectors, labels, inputs.units)
    chance = peer_chance(inputs.vectors, labels, inputs.units, inputs.baseline)
    timing = np.clip(excess_cosine(coactivity, chance) / SYNC_FULL, 0.0, 1.0)
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
            "content": np.maximum.reduce(
                [
                    template,
                    _signature_templates(rows, n),
                    markers_part,
                ]
            ),
            "timing": timing,
            "signup": signup,
            "coactivity": coactivity,
            "chance": chance,
            "burst_peers": burst_peers,
        }
    )
    out["reach"] = _reach(rows, n, labels, timing, burst_peers * (signup > 0), marked_peers)
    out.loc[~members, list(CHANNELS)] = 0.0
    return out
