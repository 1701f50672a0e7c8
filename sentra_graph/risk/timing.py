"""Timing evidence inside candidate farms: co-activity with peers and sign-up bursts.

A member's *peers* are the other members of its farm outside its own org unit (accounts of one
org acting together is expected). Both measures are vectorised over all farms at once.

>>> v = sparse.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
>>> peer_coactivity(v, np.array([0, 0, 0]), np.arange(3)).round(2).tolist()
[0.5, 0.5, 0.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from sentra_graph.cluster.lockstep import activity_density, chance_cosine

__all__ = ["peer_chance", "peer_coactivity", "signup_peers", "unit_groups"]


def unit_groups(labels: np.ndarray, units: np.ndarray) -> np.ndarray:
    """A group code per (farm, org unit) pair of each member; -1 outside farms."""
    out = np.full(len(labels), -1, dtype=np.int64)
    members = labels >= 0
    if members.any():
        out[members] = pd.factorize(
            labels[members].astype(np.int64) * (int(units.max()) + 1) + units[members]
        )[0]
    return out


def _dot_with_group_sum(vectors: sparse.csr_matrix, group: np.ndarray) -> np.ndarray:
    """For each row a in a group g: v_a . (sum of the rows of g). 0 outside groups."""
    n, n_bins = vectors.shape
    out = np.zeros(n)
    rows = np.flatnonzero(group >= 0)
    if len(rows) == 0:
        return out
    n_groups = int(group.max()) + 1
    indicator = sparse.csr_matrix((np.ones(len(rows)), (group[rows], rows)), shape=(n_groups, n))
    sums = (indicator @ vectors).tocsr()
    sums.sort_indices()
    sum_keys = np.repeat(np.arange(n_groups, dtype=np.int64), np.diff(sums.indptr)) * n_bins
    sum_keys += sums.indices
    own = vectors[rows].tocoo()
    query = group[rows][own.row].astype(np.int64) * n_bins + own.col
    pos = np.searchsorted(sum_keys, query)
    found = sums.data[np.minimum(pos, len(sum_keys) - 1)]
    found = np.where(sum_keys[np.minimum(pos, len(sum_keys) - 1)] == query, found, 0.0)
    out[rows] = np.bincount(own.row, weights=own.data * found, minlength=len(rows))
    return out


def peer_coactivity(
    vectors: sparse.csr_matrix, labels: np.ndarray, units: np.ndarray
) -> np.ndarray:
    """Mean co-activity cosine of each farm member with its active peers (0 if none).

    vectors: L2-normalised activity rows (empty rows for accounts with too little activity);
    labels: farm per account (-1 none); units: org unit per account.
    """
    by_unit = unit_groups(labels, units)
    dots = _dot_with_group_sum(vectors, labels) - _dot_with_group_sum(vectors, by_unit)
    active = (np.diff(vectors.indptr) > 0).astype(np.float64)
    members = labels >= 0
    farm_active = np.bincount(labels[members], weights=active[members])
    unit_active = np.bincount(by_unit[members], weights=active[members])
    peers = np.zeros(len(labels))
    peers[members] = farm_active[labels[members]] - unit_active[by_unit[members]]
    out = np.divide(dots, peers, out=np.zeros(len(labels)), where=(peers > 0) & (active > 0))
    return np.clip(out, 0.0, 1.0)


def peer_chance(
    vectors: sparse.csr_matrix, labels: np.ndarray, units: np.ndarray, base: float
) -> np.ndarray:
    """Co-activity each farm member would show with its active peers by chance.

    ``base`` (the window's mean cosine of two accounts), or more for busy accounts:
    ``sqrt(d_a) * mean(sqrt(d_b))`` over its active peers, d being the share of bins an account
    is active in (see :func:`~sentra_graph.cluster.lockstep.chance_cosine`).

    >>> v = sparse.csr_matrix(np.array([[1.0, 1.0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0, 1.0]]))
    >>> peer_chance(v, np.array([0, 0, 0]), np.arange(3), 0.1).round(2).tolist()
    [0.43, 0.43, 0.35]
    """
    root = np.sqrt(activity_density(vectors))
    members = labels >= 0
    out = np.full(len(labels), float(base))
    if not members.any():
        return out
    by_unit = unit_groups(labels, units)
    active = (root > 0).astype(np.float64)
    farm_root = np.bincount(labels[members], weights=root[members])
    unit_root = np.bincount(by_unit[members], weights=root[members])
    farm_active = np.bincount(labels[members], weights=active[members])
    unit_active = np.bincount(by_unit[members], weights=active[members])
    peers = farm_active[labels[members]] - unit_active[by_unit[members]]
    peer_root = np.divide(
        farm_root[labels[members]] - unit_root[by_unit[members]],
        peers,
        out=np.zeros(int(members.sum())),
        where=peers > 0,
    )
    out[members] = chance_cosine(root[members], peer_root, base)
    return out


def _within(keys: np.ndarray, window: float) -> np.ndarray:
    """How many other keys lie within ``window`` of each key (keys need not be sorted)."""
    ordered = np.sort(keys)
    hi = np.searchsorted(ordered, keys + window, side="right")
    lo = np.searchsorted(ordered, keys - window, side="left")
    return hi - lo - 1


def signup_peers(
    created: np.ndarray, labels: np.ndarray, units: np.ndarray, window_seconds: float
) -> np.ndarray:
    """Number of each member's peers created within ``window_seconds`` of it.

    created: sign-up time per account in epoch seconds (NaN unknown).

    >>> signup_peers(np.array([0.0, 60.0, 9e4]), np.array([0, 0, 0]), np.arange(3), 600.0)
    array([1, 1, 0])
    """
    out = np.zeros(len(labels), dtype=np.int64)
    rows = np.flatnonzero((labels >= 0) & ~np.isnan(created))
    if len(rows) == 0:
        return out
    t = created[rows] - created[rows].min()
    stride = float(t.max()) + 2.0 * window_seconds + 1.0
    by_unit = unit_groups(labels, units)[rows]
    in_farm = _within(labels[rows] * stride + t, window_seconds)
    in_unit = _within(by_unit * stride + t, window_seconds)
    out[rows] = in_farm - in_unit
    return out
