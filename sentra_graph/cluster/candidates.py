"""Candidate farms: graph communities joined by lockstep groups, with ids stable across runs.

A lockstep group absorbs every community it makes up at least half of (a large farm that
Louvain cut into pieces comes back whole; its unlinked members join it), and leaves alone the
communities where it is a minority. Farm ids are inherited from the previous run's cluster
with the highest member overlap (Jaccard >= ``min_jaccard``, one-to-one, best first); a new
farm gets ``F-`` and a short hash of its smallest member id, so the same farm found twice
from scratch also gets the same id.

>>> merge_lockstep(np.array([0, 0, 1, 2, 3]), np.array([-1, -1, 0, 0, -1])).tolist()
[0, 0, 1, 1, 2]
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from sentra_graph.cluster.community import relabel

__all__ = [
    "NO_CLUSTER",
    "choose_level",
    "farm_ids",
    "merge_lockstep",
    "new_farm_id",
    "small_to_none",
]

NO_CLUSTER = -1
"""Label of an account that belongs to no reported cluster."""


def merge_lockstep(
    communities: np.ndarray, lockstep: np.ndarray, min_overlap: float = 0.5
) -> np.ndarray:
    """Join communities through the lockstep groups that make up >= ``min_overlap`` of them.

    communities: a label per account (every account labelled); lockstep: group per account or
    -1. Returns consecutive labels.
    """
    n_comm = int(communities.max()) + 1 if len(communities) else 0
    in_group = lockstep >= 0
    if n_comm == 0 or not in_group.any():
        return relabel(communities) if len(communities) else communities
    n_groups = int(lockstep.max()) + 1
    pair = pd.DataFrame({"c": communities[in_group], "g": lockstep[in_group]}).value_counts()
    size = np.bincount(communities, minlength=n_comm)
    comm = pair.index.get_level_values("c").to_numpy()
    group = pair.index.get_level_values("g").to_numpy()
    joined = pair.to_numpy() >= min_overlap * size[comm]
    links = sparse.coo_matrix(
        (np.ones(int(joined.sum())), (comm[joined], n_comm + group[joined])),
        shape=(n_comm + n_groups, n_comm + n_groups),
    )
    _, merged = csgraph.connected_components(links, directed=False)
    return relabel(merged[communities])


def choose_level(
    fine: np.ndarray, coarse: np.ndarray, fine_score: np.ndarray, coarse_score: np.ndarray
) -> np.ndarray:
    """Keep a coarse group whole where it scores above every fine group it overlaps.

    A farm with several cards, each shared by a handful of its accounts, splits into one
    community per card while its proxy pool still ties it together: scored whole it shows the
    proxies and the scale that no single card group does. Where the pieces score higher (a
    farm inside a large component of unrelated accounts), the fine groups stay.

    fine, coarse: labels per account (-1 none); fine_score, coarse_score: score per label.

    >>> choose_level(np.array([0, 0, 1, 1, 2]), np.array([0, 0, 0, 0, 1]),
    ...              np.array([0.3, 0.4, 0.9]), np.array([0.8, 0.5])).tolist()
    [0, 0, 0, 0, 1]
    """
    n_coarse = len(coarse_score)
    best_fine = np.zeros(n_coarse)
    both = (fine >= 0) & (coarse >= 0)
    np.maximum.at(best_fine, coarse[both], fine_score[fine[both]])
    whole = coarse_score > best_fine
    out = np.where(fine >= 0, fine, NO_CLUSTER).astype(np.int64)
    take = (coarse >= 0) & whole[np.maximum(coarse, 0)]
    out[take] = len(fine_score) + coarse[take]
    result = np.full(len(out), NO_CLUSTER, dtype=np.int64)
    if (out >= 0).any():
        result[out >= 0] = relabel(out[out >= 0])
    return result


def small_to_none(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels of groups smaller than ``min_size`` replaced by :data:`NO_CLUSTER`, renumbered.

    >>> small_to_none(np.array([0, 0, 1, 2, 2]), 2).tolist()
    [0, 0, -1, 1, 1]
    """
    size = np.bincount(labels[labels >= 0], minlength=int(labels.max()) + 1)
    keep = (labels >= 0) & (size[np.maximum(labels, 0)] >= min_size)
    out = np.full(len(labels), NO_CLUSTER, dtype=np.int64)
    if keep.any():
        out[keep] = relabel(labels[keep])
    return out


def new_farm_id(smallest_member: str, length: int = 8) -> str:
    """Deterministic id of a farm seen for the first time.

    >>> new_farm_id("acct-1")
    'F-6f795e0e'
    """
    return "F-" + hashlib.sha1(smallest_member.encode("utf-8")).hexdigest()[:length]


def farm_ids(
    labels: np.ndarray,
    account_ids: np.ndarray,
    previous: pd.DataFrame,
    min_jaccard: float,
) -> list[str]:
    """An id for each cluster label 0..k-1, inherited from ``previous`` where members overlap.

    previous: columns account_id, cluster_id (the last published memberships).
    """
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    if n_clusters <= 0:
        return []
    members = labels >= 0
    current = pd.DataFrame({"account_id": account_ids[members], "label": labels[members]})
    size = np.bincount(labels[members], minlength=n_clusters)
    ids: list[str | None] = [None] * n_clusters
    taken: set[str] = set()
    if len(previous):
        prev = previous[["account_id", "cluster_id"]].dropna().astype({"cluster_id": str})
        prev_size = prev["cluster_id"].value_counts()
        overlap = current.merge(prev, on="account_id").value_counts(["label", "cluster_id"])
        if len(overlap):
            frame = overlap.rename("inter").reset_index()
            union = size[frame["label"]] + prev_size.loc[frame["cluster_id"]].to_numpy()
            frame["jaccard"] = frame["inter"] / (union - frame["inter"])
            frame = frame[frame["jaccard"] >= min_jaccard].sort_values(
                ["jaccard", "label", "cluster_id"], ascending=[False, True, True]
            )
            for label, cluster_id in zip(frame["label"], frame["cluster_id"], strict=True):
                if ids[label] is None and cluster_id not in taken:
                    ids[label] = cluster_id
                    taken.add(cluster_id)
        taken |= set(prev["cluster_id"])
    smallest = current.groupby("label")["account_id"].min()
    for label in range(n_clusters):
        if ids[label] is not None:
            continue
        length = 8
        candidate = new_farm_id(smallest.loc[label], length)
        while candidate in taken:
            length += 2
            candidate = new_farm_id(smallest.loc[label], length)
        ids[label] = candidate
        taken.add(candidate)
    return [str(i) for i in ids]
