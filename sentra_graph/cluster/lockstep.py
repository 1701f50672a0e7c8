"""Lockstep groups: accounts active in the same short time windows, found with HDBSCAN.

Each account's activity histogram (requests per 5-15 minute bin) is weighted like TF-IDF
(bins where everybody is active, e.g. office hours, say little) and L2-normalised, so the dot
product of two accounts is their co-activity cosine. HDBSCAN runs on a bounded sample of those
vectors reduced by a Gaussian random projection (which, unlike truncated SVD, keeps the
closeness of a small group whose pattern is not among the window's dominant ones); every
candidate group it finds is then checked in the full space: an account belongs to a group when
its mean cosine with the group's members exceeds the window's baseline (the mean cosine of two
random accounts) by ``min_sync`` of the way to 1.
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

__all__ = ["NO_GROUP", "activity_vectors", "baseline_cosine", "lockstep_groups"]

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


def _group_sums(vectors: sparse.csr_matrix, labels: np.ndarray, n_groups: int) -> np.ndarray:
    members = np.flatnonzero(labels >= 0)
    indicator = sparse.csr_matrix(
        (np.ones(len(members)), (labels[members], members)), shape=(n_groups, vectors.shape[0])
    )
    return np.asarray((indicator @ vectors).todense())


def _internal_cosine(vectors: sparse.csr_matrix, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean pairwise cosine inside each group."""
    sums = _group_sums(vectors, labels, n_groups)
    m = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    pairs = m * (m - 1)
    return np.divide((sums * sums).sum(axis=1) - m, pairs, out=np.zeros(n_groups), where=pairs > 0)


def _member_cosine(vectors: sparse.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """Mean cosine of each row with the other members of its group (0 outside groups)."""
    out = np.zeros(vectors.shape[0])
    members = np.flatnonzero(labels >= 0)
    if not len(members):
        return out
    n_groups = int(labels.max()) + 1
    sums = _group_sums(vectors, labels, n_groups)
    sizes = np.bincount(labels[members], minlength=n_groups).astype(np.float64)
    own = vectors[members]
    dots = np.asarray(own.multiply(sums[labels[members]]).sum(axis=1)).ravel()
    dots -= np.asarray(own.multiply(own).sum(axis=1)).ravel()
    peers = sizes[labels[members]] - 1.0
    out[members] = np.divide(dots, peers, out=np.zeros(len(members)), where=peers > 0)
    return out


def _trim(
    vectors: sparse.csr_matrix, labels: np.ndarray, cut: float, rounds: int = 3
) -> np.ndarray:
    """Candidate groups stripped of the members that are not co-active with the rest.

    HDBSCAN in the reduced space may put a synchronised core together with accounts that only
    sit near it there; their mean cosine with the candidate dilutes the core's below ``cut``,
    and the whole candidate would be lost. Each round drops the members whose mean cosine with
    their candidate is below ``cut`` and below the candidate's average: a core (far above the
    average) survives, a uniform candidate loses its weaker half, a synchronised one nobody.

    >>> v = sparse.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    >>> _trim(v, np.zeros(5, dtype=np.int64), cut=0.3).tolist()
    [0, 0, 0, -1, -1]
    """
    labels = labels.copy()
    for _ in range(rounds):
        members = np.flatnonzero(labels >= 0)
        if not len(members):
            break
        cosine = _member_cosine(vectors, labels)[members]
        group = labels[members]
        average = np.bincount(group, weights=cosine) / np.maximum(np.bincount(group), 1)
        drop = cosine < np.minimum(cut, average[group])
        if not drop.any():
            break
        labels[members[drop]] = NO_GROUP
    return _compact(labels)


def _best_group(
    vectors: sparse.csr_matrix, labels: np.ndarray, n_groups: int, chunk: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """For every row: the group with the highest mean cosine to its members (self excluded)."""
    sums = _group_sums(vectors, labels, n_groups)
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    best = np.zeros(vectors.shape[0], dtype=np.int64)
    best_cos = np.zeros(vectors.shape[0])
    for lo in range(0, vectors.shape[0], chunk):
        rows = np.arange(lo, min(lo + chunk, vectors.shape[0]))
        dots = np.asarray(vectors[rows] @ sums.T)
        peers = np.broadcast_to(sizes, dots.shape).copy()
        own = np.flatnonzero(labels[rows] >= 0)
        dots[own, labels[rows][own]] -= 1.0
        peers[own, labels[rows][own]] -= 1.0
        cos = np.divide(dots, peers, out=np.zeros_like(dots), where=peers > 0)
        best[rows] = cos.argmax(axis=1)
        best_cos[rows] = cos[np.arange(len(rows)), best[rows]]
    return best, best_cos


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
    cut = base + params.min_sync * (1.0 - base)
    n_found = int(found.max()) + 1
    if n_found == 0:
        return labels, strength
    found = _trim(vectors[sample], found, cut)
    n_found = int(found.max()) + 1
    synced = np.flatnonzero(_internal_cosine(vectors[sample], found, n_found) >= cut)
    current = np.full(len(eligible), NO_GROUP, dtype=np.int64)
    in_sample = np.searchsorted(eligible, sample)
    current[in_sample] = _compact(np.where(np.isin(found, synced), found, NO_GROUP))
    rows = vectors[eligible]
    best_cos = np.zeros(len(eligible))
    for _ in range(2):
        n_groups = int(current.max()) + 1
        if n_groups == 0:
            break
        best, best_cos = _best_group(rows, current, n_groups)
        new = np.where(best_cos >= cut, best, NO_GROUP)
        sizes = np.bincount(new[new >= 0], minlength=n_groups)
        new[(new >= 0) & (sizes[np.maximum(new, 0)] < params.min_cluster_size)] = NO_GROUP
        current = _join_alike(rows, _compact(new), cut)
    labels[eligible] = current
    strength[eligible] = np.where(current >= 0, (best_cos - base) / (1.0 - base), 0.0)
    return labels, np.clip(strength, 0.0, 1.0)


def _join_alike(vectors: sparse.csr_matrix, labels: np.ndarray, cut: float) -> np.ndarray:
    """Join groups whose members are as co-active across groups as a group's members are
    (one large lockstep farm found as several pieces in the sample)."""
    n_groups = int(labels.max()) + 1
    if n_groups < 2:
        return labels
    sums = _group_sums(vectors, labels, n_groups)
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups).astype(np.float64)
    cross = (sums @ sums.T) / np.outer(sizes, sizes)
    np.fill_diagonal(cross, 0.0)
    _, joined = csgraph.connected_components(sparse.csr_matrix(cross >= cut), directed=False)
    return np.where(labels >= 0, joined[np.maximum(labels, 0)], NO_GROUP)


def _compact(labels: np.ndarray) -> np.ndarray:
    out = np.full(len(labels), NO_GROUP, dtype=np.int64)
    present = labels >= 0
    if present.any():
        _, out[present] = np.unique(labels[present], return_inverse=True)
    return out
