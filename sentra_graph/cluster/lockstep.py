"""Lockstep groups: accounts active in the same short time windows, found with HDBSCAN.

Each account's activity histogram (requests per 5-15 minute bin) is weighted like TF-IDF
(bins where everybody is active, e.g. office hours, say little) and L2-normalised, so the dot
product of two accounts is their co-activity cosine. HDBSCAN runs on a bounded sample of those
vectors reduced by a Gaussian random projection (which, unlike truncated SVD, keeps the
closeness of a small group whose pattern is not among the window's dominant ones); every
candidate group it finds is then checked in the full space: an account belongs to a group when
its mean cosine with the group's members exceeds what chance gives by ``min_sync`` of the way
to 1. Chance is the window's baseline (the mean cosine of two random accounts) or, for accounts
active in many bins, the cosine their activity alone gives two independent accounts (about
``sqrt(d_a * d_b)`` for accounts active in shares ``d_a`` and ``d_b`` of the bins, see
:func:`chance_cosine`): two accounts busy all day overlap whether or not they act together.
The check, not HDBSCAN, decides membership, so chance look-alikes in the reduced space do not
make a group, and every account (not only the sample) gets assigned.

>>> x = sparse.csr_matrix(np.array([[1, 0, 2], [0, 0, 0]]))
>>> activity_vectors(x, min_active_bins=1).toarray().round(2).tolist()
[[0.53, 0.0, 0.85], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import hdbscan
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.preprocessing import normalize
from sklearn.random_projection import GaussianRandomProjection

from sentra_graph.params import LockstepParams

__all__ = [
    "NO_GROUP",
    "activity_density",
    "activity_vectors",
    "baseline_cosine",
    "chance_cosine",
    "excess_cosine",
    "lockstep_groups",
]

NO_GROUP = -1
"""Label of an account in no lockstep group (HDBSCAN's noise label, kept for the same reason)."""


def activity_vectors(
    activity: sparse.csr_matrix,
    min_active_bins: int,
    *,
    bins_per_day: int = 0,
    min_active_days: int = 1,
) -> sparse.csr_matrix:
    """TF-IDF weighted, L2-normalised activity rows.

    activity: requests per account and bin. Rows with fewer than ``min_active_bins`` active
    bins, or active on fewer than ``min_active_days`` distinct days (``bins_per_day`` bins
    each), come back empty: too little activity to say anything about timing. Lockstep means
    *repeated* synchronised sessions; accounts that signed up an hour before the window ends
    are all active in its last bins, which says nothing.
    """
    counts = activity.tocsr().astype(np.float64)
    keep = np.diff(counts.indptr) >= min_active_bins
    if bins_per_day > 0 and min_active_days > 1:
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        days = np.unique(
            rows.astype(np.int64) * (counts.shape[1] + 1) + counts.indices // bins_per_day
        )
        keep &= (
            np.bincount(days // (counts.shape[1] + 1), minlength=counts.shape[0]) >= min_active_days
        )
    counts = sparse.diags(keep.astype(np.float64)) @ counts
    counts.eliminate_zeros()
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    n_active = max(int((np.diff(counts.indptr) > 0).sum()), 1)
    idf = np.log((1.0 + n_active) / (1.0 + df)) + 1.0
    weighted = counts.copy()
    weighted.data = np.log1p(weighted.data) * idf[weighted.indices]
    return normalize(weighted, norm="l2", axis=1).tocsr()


def baseline_cosine(vectors: sparse.csr_matrix) -> float:
    """Mean cosine between two distinct non-empty rows (computed from the row sum, O(nnz)).

    >>> baseline_cosine(sparse.csr_matrix(np.eye(3)))
    0.0
    """
    nonempty = np.diff(vectors.indptr) > 0
    m = int(nonempty.sum())
    if m < 2:
        return 0.0
    total = np.asarray(vectors[nonempty].sum(axis=0)).ravel()
    return float((total @ total - m) / (m * (m - 1)))


def activity_density(vectors: sparse.csr_matrix) -> np.ndarray:
    """Share of the window's bins each row is active in.

    >>> activity_density(sparse.csr_matrix(np.array([[1.0, 0, 0, 2.0], [0, 0, 0, 0]]))).tolist()
    [0.5, 0.0]
    """
    return np.diff(vectors.indptr) / max(vectors.shape[1], 1)


def chance_cosine(root_a: np.ndarray, root_b: np.ndarray | float, base: float) -> np.ndarray:
    """Co-activity cosine of independent accounts: the window's baseline, or more for busy ones.

    root_a, root_b: square roots of the accounts' activity densities (:func:`activity_density`;
    for a set of accounts, the mean of theirs). Two accounts active in random bins, shares d_a
    and d_b of them, have a cosine of about ``sqrt(d_a * d_b)``.

    >>> chance_cosine(np.array([0.1, 0.5]), 0.4, base=0.02).round(2).tolist()
    [0.04, 0.2]
    """
    return np.maximum(base, np.asarray(root_a, dtype=np.float64) * root_b)


def excess_cosine(cosine: np.ndarray, chance: np.ndarray | float) -> np.ndarray:
    """How far cosines are above their chance level, as a share of the way to 1.

    >>> excess_cosine(np.array([0.6, 0.1]), np.array([0.2, 0.2])).round(2).tolist()
    [0.5, -0.12]
    """
    chance = np.minimum(chance, 1.0 - 1e-9)
    return (np.asarray(cosine, dtype=np.float64) - chance) / (1.0 - chance)


def _group_means(values: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    members = labels >= 0
    total = np.bincount(labels[members], weights=values[members], minlength=n_groups)
    return total / np.maximum(np.bincount(labels[members], minlength=n_groups), 1)


def _group_sums(vectors: sparse.csr_matrix, labels: np.ndarray, n_groups: int) -> np.ndarray:
    members = np.flatnonzero(labels >= 0)
    indicator = sparse.csr_matrix(
        (np.ones(len(members)), (labels[members], members)), shape=(n_groups, vectors.shape[0])
    )
    return np.asarray((indicator @ vectors).todense())


def _internal_excess(
    vectors: sparse.csr_matrix, labels: np.ndarray, n_groups: int, root: np.ndarray, base: float
) -> np.ndarray:
    """Mean pairwise cosine inside each group, in excess of its pairs' chance cosine."""
    sums = _group_sums(vectors, labels, n_groups)
    members = labels >= 0
    m = np.bincount(labels[members], minlength=n_groups).astype(np.float64)
    pairs = m * (m - 1)
    cosine = np.divide(
        (sums * sums).sum(axis=1) - m, pairs, out=np.zeros(n_groups), where=pairs > 0
    )
    root_sum = np.bincount(labels[members], weights=root[members], minlength=n_groups)
    root_sq = np.bincount(labels[members], weights=root[members] ** 2, minlength=n_groups)
    pair_root = np.divide(root_sum**2 - root_sq, pairs, out=np.zeros(n_groups), where=pairs > 0)
    return excess_cosine(cosine, np.maximum(base, pair_root))


def _member_excess(
    vectors: sparse.csr_matrix, labels: np.ndarray, root: np.ndarray, base: float
) -> np.ndarray:
    """Mean cosine of each row with the other members of its group, in excess of chance (0
    outside groups)."""
    out = np.zeros(vectors.shape[0])
    members = np.flatnonzero(labels >= 0)
    if not len(members):
        return out
    n_groups = int(labels.max()) + 1
    group = labels[members]
    sums = _group_sums(vectors, labels, n_groups)
    sizes = np.bincount(group, minlength=n_groups).astype(np.float64)
    own = vectors[members]
    dots = np.asarray(own.multiply(sums[group]).sum(axis=1)).ravel()
    dots -= np.asarray(own.multiply(own).sum(axis=1)).ravel()
    peers = sizes[group] - 1.0
    cosine = np.divide(dots, peers, out=np.zeros(len(members)), where=peers > 0)
    root_sum = np.bincount(group, weights=root[members], minlength=n_groups)
    peer_root = np.divide(
        root_sum[group] - root[members], peers, out=np.zeros(len(members)), where=peers > 0
    )
    chance = chance_cosine(root[members], peer_root, base)
    out[members] = np.where(peers > 0, excess_cosine(cosine, chance), 0.0)
    return out


def _trim(
    vectors: sparse.csr_matrix,
    labels: np.ndarray,
    root: np.ndarray,
    base: float,
    min_sync: float,
    rounds: int = 3,
) -> np.ndarray:
    """Candidate groups stripped of the members that are not co-active with the rest.

    HDBSCAN in the reduced space may put a synchronised core together with accounts that only
    sit near it there; their mean cosine with the candidate dilutes the core's below the cut,
    and the whole candidate would be lost. Each round drops the members whose excess cosine
    with their candidate (see :func:`excess_cosine`) is below ``min_sync`` and below the
    candidate's average: a core (far above the average) survives, a uniform candidate loses its
    weaker half, a synchronised one nobody.

    >>> v = sparse.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    >>> root = np.sqrt(activity_density(v))
    >>> _trim(v, np.zeros(5, dtype=np.int64), root, base=0.0, min_sync=0.3).tolist()
    [0, 0, 0, -1, -1]
    """
    labels = labels.copy()
    for _ in range(rounds):
        members = np.flatnonzero(labels >= 0)
        if not len(members):
            break
        excess = _member_excess(vectors, labels, root, base)[members]
        group = labels[members]
        average = np.bincount(group, weights=excess) / np.maximum(np.bincount(group), 1)
        drop = excess < np.minimum(min_sync, average[group])
        if not drop.any():
            break
        labels[members[drop]] = NO_GROUP
    return _compact(labels)


def _best_group(
    vectors: sparse.csr_matrix,
    labels: np.ndarray,
    n_groups: int,
    root: np.ndarray,
    base: float,
    chunk: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """For every row: the group whose members it is most co-active with beyond chance (self
    excluded), and that excess cosine."""
    sums = _group_sums(vectors, labels, n_groups)
    members = labels >= 0
    sizes = np.bincount(labels[members], minlength=n_groups).astype(np.float64)
    root_sums = np.bincount(labels[members], weights=root[members], minlength=n_groups)
    best = np.zeros(vectors.shape[0], dtype=np.int64)
    best_excess = np.zeros(vectors.shape[0])
    for lo in range(0, vectors.shape[0], chunk):
        rows = np.arange(lo, min(lo + chunk, vectors.shape[0]))
        dots = np.asarray(vectors[rows] @ sums.T)
        peers = np.broadcast_to(sizes, dots.shape).copy()
        peer_root = np.broadcast_to(root_sums, dots.shape).copy()
        own = np.flatnonzero(labels[rows] >= 0)
        dots[own, labels[rows][own]] -= 1.0
        peers[own, labels[rows][own]] -= 1.0
        peer_root[own, labels[rows][own]] -= root[rows][own]
        cos = np.divide(dots, peers, out=np.zeros_like(dots), where=peers > 0)
        peer_root = np.divide(peer_root, peers, out=np.zeros_like(dots), where=peers > 0)
        excess = excess_cosine(cos, chance_cosine(root[rows][:, None], peer_root, base))
        excess = np.where(peers > 0, excess, -np.inf)
        best[rows] = excess.argmax(axis=1)
        best_excess[rows] = excess[np.arange(len(rows)), best[rows]]
    return best, best_excess


def lockstep_groups(
    vectors: sparse.csr_matrix, params: LockstepParams, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lockstep group label per account (:data:`NO_GROUP` if none) and membership strength.

    vectors: output of :func:`activity_vectors`. Strength is the account's excess mean cosine
    with its group, in [0, 1].
    """
    n = vectors.shape[0]
    labels = np.full(n, NO_GROUP, dtype=np.int64)
    strength = np.zeros(n)
    eligible = np.flatnonzero(np.diff(vectors.indptr) > 0)
    if len(eligible) < max(params.min_cluster_size, params.dims + 1):
        return labels, strength
    rng = np.random.default_rng(seed)
    sample = eligible
    if len(sample) > params.sample_size:
        sample = np.sort(rng.choice(eligible, params.sample_size, replace=False))
    projector = GaussianRandomProjection(params.dims, random_state=seed)
    reduced = projector.fit_transform(vectors[sample])
    found = hdbscan.HDBSCAN(
        min_cluster_size=params.seed_size,
        min_samples=params.min_samples,
        cluster_selection_method=params.selection,
        core_dist_n_jobs=1,
    ).fit_predict(normalize(reduced))
    base = baseline_cosine(vectors)
    root = np.sqrt(activity_density(vectors))
    sync = params.min_sync
    n_found = int(found.max()) + 1
    if n_found == 0:
        return labels, strength
    found = _trim(vectors[sample], found, root[sample], base, sync)
    n_found = int(found.max()) + 1
    internal = _internal_excess(vectors[sample], found, n_found, root[sample], base)
    synced = np.flatnonzero(internal >= sync)
    current = np.full(len(eligible), NO_GROUP, dtype=np.int64)
    in_sample = np.searchsorted(eligible, sample)
    current[in_sample] = _compact(np.where(np.isin(found, synced), found, NO_GROUP))
    rows, rows_root = vectors[eligible], root[eligible]
    best_excess = np.zeros(len(eligible))
    for _ in range(2):
        n_groups = int(current.max()) + 1
        if n_groups == 0:
            break
        best, best_excess = _best_group(rows, current, n_groups, rows_root, base)
        new = np.where(best_excess >= sync, best, NO_GROUP)
        sizes = np.bincount(new[new >= 0], minlength=n_groups)
        new[(new >= 0) & (sizes[np.maximum(new, 0)] < params.min_cluster_size)] = NO_GROUP
        current = _join_alike(rows, _compact(new), rows_root, base, sync)
    labels[eligible] = current
    strength[eligible] = np.where(current >= 0, best_excess, 0.0)
    return labels, np.clip(strength, 0.0, 1.0)


def _join_alike(
    vectors: sparse.csr_matrix, labels: np.ndarray, root: np.ndarray, base: float, min_sync: float
) -> np.ndarray:
    """Join groups whose members are as co-active across groups as a group's members are
    (one large lockstep farm found as several pieces in the sample)."""
    n_groups = int(labels.max()) + 1
    if n_groups < 2:
        return labels
    sums = _group_sums(vectors, labels, n_groups)
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    cross = (sums @ sums.T) / np.outer(sizes, sizes)
    mean_root = _group_means(root, labels, n_groups)
    excess = excess_cosine(cross, chance_cosine(mean_root[:, None], mean_root[None, :], base))
    np.fill_diagonal(excess, -np.inf)
    _, joined = csgraph.connected_components(sparse.csr_matrix(excess >= min_sync), directed=False)
    return np.where(labels >= 0, joined[np.maximum(labels, 0)], NO_GROUP)


def _compact(labels: np.ndarray) -> np.ndarray:
    out = np.full(len(labels), NO_GROUP, dtype=np.int64)
    present = labels >= 0
    if present.any():
        _, out[present] = np.unique(labels[present], return_inverse=True)
    return out
