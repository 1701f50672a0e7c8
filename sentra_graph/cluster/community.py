"""Community detection on the account projection: threshold, split, then Louvain per component.

Weak links are dropped first (``min_edge_weight``), the rest splits into connected components
(scipy, linear time), and Louvain runs inside each component large enough to hold more than
one group: networkx on small components (the reference implementation), networkit's PLM on
large ones (same objective, ~100x faster). Running per component keeps the modularity null
model local, which avoids the resolution limit merging small farms of a large window.

Modularity always finds *some* split, even inside one uniformly dense group (a farm whose
members all share a proxy pool gets cut in two with Q ~ 0.03); a component is therefore only
split when the split is worth it, i.e. its modularity reaches ``min_modularity`` (two groups
joined by a few links score 0.4-0.5).

>>> rows, cols = np.array([0, 1, 3]), np.array([1, 2, 4])
>>> edges = sparse.coo_matrix((np.array([1.0, 1.0, 0.01]), (rows, cols)), shape=(5, 5))
>>> communities(edges, ClusterParams(min_edge_weight=0.1), seed=0).tolist()
[0, 0, 0, 1, 2]
"""

from __future__ import annotations

import networkit as nk
import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from sentra_graph.params import ClusterParams

__all__ = [
    "communities",
    "components",
    "louvain_networkit",
    "louvain_networkx",
    "modularity",
    "relabel",
]


def louvain_networkx(
    n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, resolution: float, seed: int
) -> np.ndarray:
    """Louvain communities of a weighted graph on nodes 0..n-1 (networkx, seeded)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), weights.tolist(), strict=True))
    found = nx.community.louvain_communities(
        graph, weight="weight", resolution=resolution, seed=seed
    )
    labels = np.empty(n, dtype=np.int64)
    for label, members in enumerate(found):
        labels[list(members)] = label
    return labels


def louvain_networkit(
    n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, resolution: float, seed: int
) -> np.ndarray:
    """Louvain communities with networkit's PLM (single-threaded moves, seeded: reproducible)."""
    nk.setSeed(seed, False)
    graph = nk.GraphFromCoo(
        (weights.astype(np.float64), (rows.astype(np.uint64), cols.astype(np.uint64))),
        n=n,
        weighted=True,
        directed=False,
    )
    plm = nk.community.PLM(graph, refine=True, gamma=resolution, par="none")
    plm.run()
    return np.asarray(plm.getPartition().getVector(), dtype=np.int64)


def modularity(
    rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, labels: np.ndarray, resolution: float
) -> float:
    """Weighted modularity of a partition of an undirected graph given as an edge list.

    >>> modularity(np.array([0, 2]), np.array([1, 3]), np.ones(2), np.array([0, 0, 1, 1]), 1.0)
    0.5
    """
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    n_groups = int(labels.max()) + 1
    inside = labels[rows] == labels[cols]
    w_in = np.bincount(labels[rows][inside], weights=weights[inside], minlength=n_groups)
    degree = np.bincount(labels[rows], weights=weights, minlength=n_groups) + np.bincount(
        labels[cols], weights=weights, minlength=n_groups
    )
    return float((w_in / total - resolution * (degree / (2.0 * total)) ** 2).sum())


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels numbered in order of each group's smallest member.

    >>> relabel(np.array([7, 3, 7, 9])).tolist()
    [0, 1, 0, 2]
    """
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def components(edges: sparse.coo_matrix, min_edge_weight: float) -> np.ndarray:
    """Connected components of the graph of links at least ``min_edge_weight`` strong.

    >>> e = sparse.coo_matrix((np.array([1.0, 0.01]), ([0, 2], [1, 3])), shape=(4, 4))
    >>> components(e, 0.1).tolist()
    [0, 0, 1, 2]
    """
    n = edges.shape[0]
    keep = edges.data >= min_edge_weight
    graph = sparse.coo_matrix((edges.data[keep], (edges.row[keep], edges.col[keep])), shape=(n, n))
    return relabel(csgraph.connected_components(graph, directed=False)[1].astype(np.int64))


def communities(edges: sparse.coo_matrix, params: ClusterParams, seed: int) -> np.ndarray:
    """A community label for every account (singletons get their own label).

    edges: upper-triangle projection (any orientation works), shape (n, n).
    """
    n = edges.shape[0]
    keep = edges.data >= params.min_edge_weight
    rows, cols, weights = edges.row[keep], edges.col[keep], edges.data[keep]
    graph = sparse.coo_matrix((weights, (rows, cols)), shape=(n, n))
    n_comp, comp = csgraph.connected_components(graph, directed=False)
    labels = comp.astype(np.int64)
    sizes = np.bincount(comp, minlength=n_comp)
    big = np.flatnonzero(sizes >= max(params.min_split_size, 2))
    if len(big) == 0:
        return relabel(labels)
    edge_comp = comp[rows]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.searchsorted(edge_comp[order], np.arange(n_comp + 1))
    node_order = np.argsort(comp, kind="stable")
    node_bounds = np.searchsorted(comp[node_order], np.arange(n_comp + 1))
    next_label = n_comp
    for c in big:
        nodes = node_order[node_bounds[c] : node_bounds[c + 1]]
        sel = order[bounds[c] : bounds[c + 1]]
        local = np.full(n, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        detect = louvain_networkit if len(nodes) >= params.networkit_min_nodes else louvain_networkx
        r, c, w = local[rows[sel]], local[cols[sel]], weights[sel]
        sub = detect(len(nodes), r, c, w, params.resolution, seed)
        if modularity(r, c, w, sub, params.resolution) < params.min_modularity:
            sub = np.zeros(len(nodes), dtype=np.int64)
        labels[nodes] = sub + next_label
        next_label += int(sub.max()) + 1
    return relabel(labels)
