"""Farm and account scores from channel evidence, and the decisions they lead to.

A farm's channels are the means of its members' channels. Channels that measure the same thing
are reduced to one independent signal (``RiskParams.channel_groups``); the signals are sorted
strongest first and combined with decreasing weights (``RiskParams.channel_weights``), so the
score is driven by the *conjunction* of independent signals: one shared attribute, however
strong, stays below review; two strong independent signals reach block only in a group larger
than a family, three do so comfortably. The result is scaled by a size factor (pairs, trios and
quartets are families more often than farms) and an org-diversity factor (a group made of one
org is an open relationship, not a concealed one).

>>> combine(np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]),
...         (0.36, 0.32, 0.22, 0.1, 0.05, 0.05)).round(2).tolist()
[0.36, 0.9]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sentra_graph.params import RiskParams
from sentra_graph.risk.evidence import CHANNELS

__all__ = [
    "DECISIONS",
    "account_scores",
    "behaviour_score",
    "colocation",
    "combine",
    "decide",
    "diversity_factor",
    "farm_scores",
    "size_factor",
]

DECISIONS = ("allow", "review", "block")
"""Decisions ordered from mildest to harshest."""


def combine(
    channels: np.ndarray, weights: tuple[float, ...], full: float = 1.0, floor: float = 0.0
) -> np.ndarray:
    """Weighted sum of each row's channel strengths sorted strongest first, clipped to [0, 1].

    Strengths are first mapped to presence: 0 up to ``floor`` (noise), 1 from ``full`` on,
    linear in between.
    """
    presence = np.clip((channels - floor) / (full - floor), 0.0, 1.0)
    ordered = -np.sort(-presence, axis=1)
    w = np.zeros(channels.shape[1])
    w[: min(len(weights), len(w))] = weights[: len(w)]
    return np.clip(ordered @ w, 0.0, 1.0)


def independent(channels: np.ndarray, groups: tuple[tuple[str, ...], ...]) -> np.ndarray:
    """Channels (columns in :data:`CHANNELS` order) reduced to independent signals.

    Channels of one group measure the same thing (IPs and devices are both infrastructure, and
    move together for NAT-ed populations); each group counts once, with its strongest channel.

    >>> independent(np.array([[0.2, 0.9, 0.5, 0, 0, 0]]), (("payment",), ("network", "device")))
    array([[0.2, 0.9]])
    """
    index = {name: i for i, name in enumerate(CHANNELS)}
    return np.column_stack([channels[:, [index[c] for c in group]].max(axis=1) for group in groups])


def colocation(signals: np.ndarray, columns: list[int]) -> np.ndarray:
    """Where-and-when signals (shared network, synchronised timing, sign-up burst) of a
    co-located cohort count as one signal, and as two only when all of them agree.

    A class signing up together from the campus network shares a place and a moment; that is
    one coincidence, not two independent ones. The strongest of ``columns`` stays, the
    weakest becomes the second signal, the others are dropped.

    >>> colocation(np.array([[1.0, 0.9, 0.8, 0.0], [1.0, 1.0, 0.0, 1.0]]), [0, 1, 2]).tolist()
    [[1.0, 0.8, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]]
    """
    if len(columns) < 2:
        return signals
    out = signals.copy()
    ordered = -np.sort(-signals[:, columns], axis=1)
    out[:, columns] = 0.0
    out[:, columns[0]] = ordered[:, 0]
    out[:, columns[1]] = ordered[:, -1]
    return out


def _combine(channels: np.ndarray, params: RiskParams) -> np.ndarray:
    signals = independent(channels, params.channel_groups)
    first = [group[0] for group in params.channel_groups]
    columns = [first.index(name) for name in params.colocated if name in first]
    return combine(
        colocation(signals, columns),
        params.channel_weights,
        params.channel_full,
        params.channel_floor,
    )


def size_factor(size: np.ndarray, mid: float, width: float) -> np.ndarray:
    """Logistic in the group size: 1/2 at ``mid`` accounts, near 1 a few ``width`` above.

    >>> size_factor(np.array([2, 4, 5, 8]), 4.0, 0.5).round(2).tolist()
    [0.02, 0.5, 0.88, 1.0]
    """
    return 1.0 / (1.0 + np.exp(-(np.asarray(size, dtype=np.float64) - mid) / width))


def diversity_factor(units: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Share of a group's accounts in distinct org units, saturating at one half.

    >>> diversity_factor(np.array([1, 2, 10]), np.array([50, 100, 10])).round(2).tolist()
    [0.0, 0.02, 1.0]
    """
    units = np.asarray(units, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64)
    spread = np.divide(units - 1.0, size - 1.0, out=np.zeros(len(size)), where=size > 1)
    return np.clip(spread / 0.5, 0.0, 1.0)


def farm_scores(
    channels: pd.DataFrame, labels: np.ndarray, units: np.ndarray, params: RiskParams
) -> pd.DataFrame:
    """One row per farm: size, units, core, core_units, core-mean channels, evidence, score.

    A farm is as suspicious as the largest set of members that *each* show the conjunction and
    whose evidence reaches that many peers: for k = 1, 2, ..., ``size_cap`` the candidates are
    the members whose evidence reaches at least k - 1 peers (``reach`` column), ``e_k`` is the
    k-th strongest candidate's own evidence, and the farm scores the best
    ``size_factor(k) x diversity(top k) x e_k``. Four family members sharing a card and a home
    IP stay a family even when an account on their IP links them to another family: each
    member's evidence reaches three peers only. The core is the candidates at the best k with
    evidence at least ``e_k``; ``evidence`` is ``e_k``.

    channels: per account (output of :func:`~sentra_graph.risk.evidence.member_channels`);
    labels: farm per account (-1 none); units: org unit per account.
    """
    members = np.flatnonzero(labels >= 0)
    columns = [*CHANNELS, "size", "units", "core", "core_units", "evidence", "score"]
    if len(members) == 0:
        return pd.DataFrame(columns=columns, dtype=float)
    n_farms = int(labels.max()) + 1
    values = channels[list(CHANNELS)].to_numpy()
    mine = _combine(values, params)
    reach = channels["reach"].to_numpy() if "reach" in channels else np.full(len(labels), 1e9)
    frame = pd.DataFrame(
        {
            "farm": labels[members],
            "unit": units[members],
            "e": mine[members],
            "g": np.minimum(reach[members] + 1.0, params.size_cap),
            "row": members,
        }
    ).sort_values(["farm", "e"], ascending=[True, False], kind="stable")
    best = np.zeros(n_farms)
    best_k = np.ones(n_farms, dtype=np.int64)
    best_e = np.zeros(n_farms)
    best_units = np.ones(n_farms, dtype=np.int64)
    for k in range(1, params.size_cap + 1):
        candidates = frame[frame["g"] >= k]
        rank = candidates.groupby("farm").cumcount().to_numpy() + 1
        top = candidates[rank <= k]
        kth = top[(rank[rank <= k]) == k]
        if kth.empty:
            break
        farm = kth["farm"].to_numpy()
        units_k = top.groupby("farm")["unit"].nunique().reindex(farm).to_numpy()
        value = (
            kth["e"].to_numpy()
            * size_factor(np.full(len(farm), k), params.size_mid, params.size_width)
            * diversity_factor(units_k, np.full(len(farm), k))
        )
        better = value > best[farm]
        best[farm[better]] = value[better]
        best_k[farm[better]] = k
        best_e[farm[better]] = kth["e"].to_numpy()[better]
        best_units[farm[better]] = units_k[better]
    in_core = (frame["g"].to_numpy() >= best_k[frame["farm"]]) & (
        frame["e"].to_numpy() >= best_e[frame["farm"]]
    )
    core = frame[in_core]
    out = (
        pd.DataFrame(values[core["row"]], columns=list(CHANNELS))
        .groupby(core["farm"].to_numpy())
        .mean()
        .reindex(range(n_farms), fill_value=0.0)
    )
    out["size"] = np.bincount(labels[members], minlength=n_farms)
    out["units"] = pd.Series(units[members]).groupby(labels[members]).nunique()
    out["core"] = np.bincount(core["farm"], minlength=n_farms)
    out["core_units"] = best_units
    out["evidence"] = best_e
    out["score"] = np.clip(best, 0.0, 1.0)
    return out[columns]


def behaviour_score(templates: pd.DataFrame, behaviour: pd.DataFrame) -> np.ndarray:
    """How much an account's own traffic looks like distillation, in [0, 1].

    Distillation markers times template concentration times a volume factor (saturating at
    1,000 requests in the window).
    """
    marker = templates[["cot_rate", "rubric_rate", "tool_rate"]].max(axis=1).to_numpy()
    concentration = templates["top_template_share"].to_numpy()
    volume = np.clip(np.log10(np.maximum(behaviour["n_requests"].to_numpy(), 1.0)) / 3.0, 0, 1)
    return np.clip(marker * (0.5 + 0.5 * concentration) * volume, 0.0, 1.0)


def account_scores(
    channels: pd.DataFrame,
    labels: np.ndarray,
    farms: pd.DataFrame,
    own: np.ndarray,
    params: RiskParams,
    dormant: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-account score and membership strength.

    A member scores the lower of its farm's score and its own evidence (its channels against its
    peers, combined): an account hanging on to a farm by one shared IP does not inherit the
    farm's score. The exception is a *dormant* member (no request in the window: a reserve
    signed up and kept for later), which has nothing but its sign-up to show: tied to its farm
    by the farm's card, sign-up IP or sign-up burst, it scores the farm's score times that tie
    times ``dormant_share``. Strength is its evidence relative to the farm's core. ``own``
    behaviour alone reaches at most ``behaviour_cap``.
    """
    n = len(labels)
    members = labels >= 0
    mine = _combine(channels[list(CHANNELS)].to_numpy(), params)
    strength = np.zeros(n)
    score = np.zeros(n)
    if members.any():
        farm_evidence = farms["evidence"].reindex(labels[members]).to_numpy(dtype=float)
        farm_score = farms["score"].reindex(labels[members]).to_numpy(dtype=float)
        strength[members] = np.clip(
            np.divide(
                mine[members], farm_evidence, out=np.zeros(members.sum()), where=farm_evidence > 0
            ),
            0.0,
            1.0,
        )
        score[members] = np.minimum(farm_score, mine[members])
        if dormant is not None:
            tie = channels[["payment", "network", "signup"]].to_numpy().max(axis=1)[members]
            reserve = farm_score * tie * params.dormant_share
            score[members] = np.where(
                dormant[members], np.maximum(score[members], reserve), score[members]
            )
    score = np.maximum(score, params.behaviour_cap * own)
    return np.clip(score, 0.0, 1.0), strength


def decide(score: np.ndarray, block: float, review: float) -> np.ndarray:
    """Decision per score: block at or above ``block``, review at or above ``review``.

    >>> decide(np.array([0.1, 0.6, 0.9]), 0.8, 0.5).tolist()
    ['allow', 'review', 'block']
    """
    allow, review_d, block_d = DECISIONS
    return np.where(score >= block, block_d, np.where(score >= review, review_d, allow))
