"""Community detection, lockstep groups, candidate farms and stable farm ids."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from sentra_graph.cluster.candidates import farm_ids, merge_lockstep, new_farm_id, small_to_none
from sentra_graph.cluster.community import (
    communities,
    louvain_networkit,
    louvain_networkx,
    modularity,
)
from sentra_graph.cluster.lockstep import (
    NO_GROUP,
    _member_excess,
    _trim,
    activity_density,
    activity_vectors,
    baseline_cosine,
    chance_cosine,
    excess_cosine,
    lockstep_groups,
)
from sentra_graph.params import ClusterParams, LockstepParams


def planted(groups: int, size: int, p_in: float, p_out: float, seed: int):
    graph = nx.planted_partition_graph(groups, size, p_in, p_out, seed=seed)
    edges = np.array(graph.edges())
    weights = np.random.default_rng(seed).uniform(0.5, 1.0, len(edges))
    truth = np.repeat(np.arange(groups), size)
    return graph.number_of_nodes(), edges[:, 0], edges[:, 1], weights, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_both_louvain_backends_recover_planted_groups_and_agree(seed: int) -> None:
    n, rows, cols, w, truth = planted(30, 12, 0.7, 0.003, seed)
    a = louvain_networkx(n, rows, cols, w, 1.0, seed)
    b = louvain_networkit(n, rows, cols, w, 1.0, seed)
    assert adjusted_rand_score(truth, a) >= 0.9
    assert adjusted_rand_score(truth, b) >= 0.9
    assert normalized_mutual_info_score(a, b) >= 0.9


def test_louvain_is_reproducible_with_a_seed() -> None:
    n, rows, cols, w, _ = planted(20, 10, 0.5, 0.02, 3)
    for detect in (louvain_networkx, louvain_networkit):
        assert (detect(n, rows, cols, w, 1.0, 7) == detect(n, rows, cols, w, 1.0, 7)).all()


def test_communities_is_a_partition_that_cuts_weak_links() -> None:
    n, rows, cols, w, truth = planted(10, 8, 0.9, 0.0, 4)
    # two strong groups joined by a weak bridge, plus isolated accounts
    bridge = (np.array([0]), np.array([8]), np.array([0.01]))
    rows = np.concatenate([rows, bridge[0]])
    cols = np.concatenate([cols, bridge[1]])
    w = np.concatenate([w, bridge[2]])
    edges = sparse.coo_matrix((w, (rows, cols)), shape=(n + 5, n + 5))
    labels = communities(edges, ClusterParams(min_edge_weight=0.1, min_split_size=5), seed=0)
    assert len(labels) == n + 5
    assert adjusted_rand_score(truth, labels[:n]) >= 0.95
    assert labels[0] != labels[8]
    assert len(set(labels[n:].tolist())) == 5  # isolated accounts are singletons


def test_networkit_path_matches_networkx_path_on_the_same_graph() -> None:
    n, rows, cols, w, truth = planted(25, 10, 0.8, 0.01, 5)
    edges = sparse.coo_matrix((w, (rows, cols)), shape=(n, n))
    small = communities(edges, ClusterParams(networkit_min_nodes=10**9), seed=0)
    large = communities(edges, ClusterParams(networkit_min_nodes=2), seed=0)
    assert normalized_mutual_info_score(small, large) >= 0.9
    assert adjusted_rand_score(truth, large) >= 0.9


def lockstep_activity(seed: int, n_random: int = 200, n_sync: int = 12, n_bins: int = 1000):
    """Random accounts active in random bins, plus a group active in the same bins."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for a in range(n_random):
        bins = rng.choice(n_bins, rng.integers(10, 60), replace=False)
        rows += [a] * len(bins)
        cols += bins.tolist()
    campaign = rng.choice(n_bins, 80, replace=False)
    for a in range(n_random, n_random + n_sync):
        bins = rng.choice(campaign, 60, replace=False)
        rows += [a] * len(bins)
        cols += bins.tolist()
    n = n_random + n_sync
    counts = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n_bins)).tocsr()
    truth = np.r_[np.zeros(n_random, dtype=bool), np.ones(n_sync, dtype=bool)]
    return counts, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_lockstep_groups_find_the_synchronised_accounts_only(seed: int) -> None:
    counts, truth = lockstep_activity(seed)
    vectors = activity_vectors(counts, min_active_bins=6)
    labels, strength = lockstep_groups(vectors, LockstepParams(), seed)
    grouped = labels != NO_GROUP
    assert (grouped & truth).sum() >= 0.9 * truth.sum()
    assert (grouped & ~truth).sum() == 0
    assert len(set(labels[truth & grouped].tolist())) == 1
    assert (strength[truth & grouped] > 0.3).all()


def test_lockstep_sample_bound_still_assigns_every_account() -> None:
    counts, truth = lockstep_activity(2, n_random=300, n_sync=30)
    vectors = activity_vectors(counts, min_active_bins=6)
    labels, _ = lockstep_groups(vectors, LockstepParams(sample_size=200), seed=0)
    assert ((labels != NO_GROUP) & truth).sum() >= 27


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trimming_keeps_the_synchronised_core_of_a_diluted_candidate(seed: int) -> None:
    # one candidate holding eight synchronised accounts among sixty that merely sat near them
    counts, truth = lockstep_activity(seed, n_random=60, n_sync=8)
    vectors = activity_vectors(counts, min_active_bins=1)
    base, root = baseline_cosine(vectors), np.sqrt(activity_density(vectors))
    sync = LockstepParams().min_sync
    candidate = np.zeros(len(truth), dtype=np.int64)
    assert (_member_excess(vectors, candidate, root, base)[truth] < sync).all()  # diluted
    trimmed = _trim(vectors, candidate, root, base, sync)
    assert np.array_equal(trimmed >= 0, truth)
    assert (_member_excess(vectors, trimmed, root, base)[truth] >= sync).all()
    # a candidate of unrelated accounts keeps no synchronised core
    rest = ~truth
    loose = _trim(vectors[rest], np.zeros(int(rest.sum()), dtype=np.int64), root[rest], base, sync)
    assert (_member_excess(vectors[rest], loose, root[rest], base)[loose >= 0] < sync).all()


def test_member_excess_matches_brute_force() -> None:
    counts, _ = lockstep_activity(4, n_random=20, n_sync=6)
    vectors = activity_vectors(counts, min_active_bins=1)
    labels = np.random.default_rng(0).integers(-1, 3, vectors.shape[0])
    dense, root = vectors.toarray(), np.sqrt(activity_density(vectors))
    ours = _member_excess(vectors, labels, root, 0.05)
    for a in range(len(labels)):
        peers = [b for b in range(len(labels)) if b != a and labels[b] == labels[a]]
        if labels[a] < 0 or not peers:
            assert ours[a] == 0.0
            continue
        cosine = np.mean([dense[a] @ dense[b] for b in peers])
        chance = max(0.05, root[a] * np.mean(root[peers]))
        assert ours[a] == pytest.approx((cosine - chance) / (1 - chance))


def test_chance_cosine_predicts_independent_accounts() -> None:
    # accounts active in random bins: the busier two are, the more they overlap by chance
    rng = np.random.default_rng(5)
    n_bins, rows, cols = 1000, [], []
    busy = np.r_[np.full(100, 20), np.full(100, 300)]  # active bins per account
    for a, k in enumerate(busy):
        cols += rng.choice(n_bins, k, replace=False).tolist()
        rows += [a] * k
    counts = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(200, n_bins)).tocsr()
    vectors = activity_vectors(counts, min_active_bins=1)
    dense, root = vectors.toarray(), np.sqrt(activity_density(vectors))
    for group in (np.arange(100), np.arange(100, 200)):
        sims = dense[group] @ dense[group].T
        observed = (sims.sum() - np.trace(sims)) / (len(group) * (len(group) - 1))
        predicted = chance_cosine(root[group], root[group].mean(), 0.0).mean()
        assert observed == pytest.approx(predicted, rel=0.25)
    assert excess_cosine(np.array([0.3]), 0.3).tolist() == [0.0]


def test_baseline_cosine_matches_brute_force() -> None:
    counts, _ = lockstep_activity(3, n_random=40, n_sync=5)
    vectors = activity_vectors(counts, min_active_bins=1)
    dense = vectors.toarray()
    sims = dense @ dense.T
    n = len(dense)
    brute = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    assert baseline_cosine(vectors) == pytest.approx(brute)


def test_activity_vectors_drop_accounts_with_too_little_activity() -> None:
    counts = sparse.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=float))
    vectors = activity_vectors(counts, min_active_bins=2)
    assert np.diff(vectors.indptr).tolist() == [3, 0]
    assert np.linalg.norm(vectors.toarray()[0]) == pytest.approx(1.0)


def test_lockstep_group_absorbs_communities_it_dominates_only() -> None:
    # communities: {0,1,2} {3,4} {5,6,7,8}; lockstep group: 0, 1, 3, 4, 5
    comm = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    lock = np.array([0, 0, -1, 0, 0, 0, -1, -1, -1])
    merged = merge_lockstep(comm, lock)
    assert merged[0] == merged[3]  # 2/3 and 2/2 of those communities are in the group
    assert merged[5] != merged[0]  # 1/4 is a minority: that community stays apart


def test_small_groups_are_not_clusters() -> None:
    out = small_to_none(np.array([0, 0, 0, 1, 1, 2]), 3)
    assert out.tolist() == [0, 0, 0, -1, -1, -1]


def test_farm_ids_are_stable_and_inherited_by_overlap() -> None:
    ids = np.array([f"a{i:02d}" for i in range(20)])
    labels = np.array([0] * 8 + [1] * 6 + [-1] * 6)
    first = farm_ids(labels, ids, pd.DataFrame(columns=["account_id", "cluster_id"]), 0.3)
    again = farm_ids(labels, ids, pd.DataFrame(columns=["account_id", "cluster_id"]), 0.3)
    assert first == again
    assert first[0] == new_farm_id("a00") and first[1] == new_farm_id("a08")
    # next run: farm 0 lost two members and gained one, and now has a new smallest member
    previous = pd.DataFrame(
        {"account_id": ids[labels >= 0], "cluster_id": np.array(first)[labels[labels >= 0]]}
    )
    moved = labels.copy()
    moved[[0, 1]] = -1
    moved[19] = 0
    second = farm_ids(moved, ids, previous, 0.3)
    assert second == first
    # a farm that no longer overlaps gets a fresh id, never a previous one
    fresh = farm_ids(np.array([-1] * 14 + [0] * 6), ids, previous, 0.3)
    assert fresh[0] not in first


def test_farm_ids_never_repeat_within_a_run() -> None:
    ids = np.array(["x1", "x2", "x3", "x4"])
    previous = pd.DataFrame({"account_id": ["x9"], "cluster_id": [new_farm_id("x1")]})
    out = farm_ids(np.array([0, 0, 1, 1]), ids, previous, 0.3)
    assert len(set(out)) == 2 and new_farm_id("x1") not in out


@pytest.mark.parametrize("resolution", [1.0, 2.0])
def test_modularity_matches_networkx(resolution: float) -> None:
    n, rows, cols, w, truth = planted(6, 7, 0.6, 0.05, 6)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), w.tolist(), strict=True))
    groups = [set(np.flatnonzero(truth == g).tolist()) for g in range(6)]
    expected = nx.community.modularity(graph, groups, weight="weight", resolution=resolution)
    assert modularity(rows, cols, w, truth, resolution) == pytest.approx(expected)


def test_a_uniformly_dense_component_is_not_cut() -> None:
    graph = nx.gnp_random_graph(30, 0.8, seed=2)
    edges = np.array(graph.edges())
    w = np.random.default_rng(2).uniform(0.5, 1.0, len(edges))
    coo = sparse.coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(30, 30))
    assert len(set(communities(coo, ClusterParams(), seed=0).tolist())) == 1


def test_activity_on_a_single_day_is_no_timing_evidence() -> None:
    # both accounts active in six bins; only the second spreads them over two days
    one_day = np.zeros(288)
    one_day[[1, 2, 3, 4, 5, 6]] = 1
    two_days = np.zeros(288)
    two_days[[1, 2, 3, 150, 151, 152]] = 1
    counts = sparse.csr_matrix(np.vstack([one_day, two_days]))
    vectors = activity_vectors(counts, 6, bins_per_day=144, min_active_days=2)
    assert np.diff(vectors.indptr).tolist() == [0, 6]
