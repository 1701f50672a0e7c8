"""The entity graph as a networkx graph: the readable model the sparse code is checked against.

Use it on small graphs (a farm's neighbourhood in a notebook, tests); the engine itself works
on :class:`~sentra_graph.graph.entities.Incidence` and scipy.sparse.

>>> from sentra_graph.graph.entities import account_entities, combine
>>> inc = combine([account_entities("payment", np.array([0, 0]), np.array(["fp"]))], 2)
>>> sorted(bipartite_graph(inc).edges(data="volume"))
[(0, 'payment fp', 1.0), (1, 'payment fp', 1.0)]
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from sentra_graph.graph.entities import Incidence

__all__ = ["bipartite_graph", "weighted_projection"]


def bipartite_graph(incidence: Incidence) -> nx.Graph:
    """Accounts (integer nodes, ``bipartite=0``) and entities (labelled nodes, ``bipartite=1``).

    Edges carry ``volume``; entity nodes carry ``kind`` and ``key``.
    """
    graph = nx.Graph()
    graph.add_nodes_from(range(incidence.n_accounts), bipartite=0)
    for entity in range(incidence.n_entities):
        graph.add_node(
            incidence.label(entity),
            bipartite=1,
            kind=int(incidence.entity_type[entity]),
            key=incidence.entity_key[entity],
        )
    for a, e, v in zip(incidence.account, incidence.entity, incidence.volume, strict=True):
        graph.add_edge(int(a), incidence.label(int(e)), volume=float(v))
    return graph


def weighted_projection(
    incidence: Incidence, entity_weight: np.ndarray, org: np.ndarray, same_org_factor: float
) -> nx.Graph:
    """Account projection with networkx's generic weighted projection.

    A pair's weight is the sum over shared entities of ``entity_weight * sqrt(v_a * v_b)``,
    times ``same_org_factor`` for two accounts of the same org; zero-weight pairs are dropped.
    """
    graph = bipartite_graph(incidence)
    weight_by_label = {
        incidence.label(e): float(entity_weight[e]) for e in range(len(entity_weight))
    }

    def pair_weight(g: nx.Graph, u: int, v: int) -> float:
        shared = set(g[u]) & set(g[v])
        total = sum(
            weight_by_label[e] * math.sqrt(g[u][e]["volume"] * g[v][e]["volume"]) for e in shared
        )
        if org[u] >= 0 and org[u] == org[v]:
            total *= same_org_factor
        return total

    accounts = range(incidence.n_accounts)
    projected = nx.bipartite.generic_weighted_projected_graph(graph, accounts, pair_weight)
    projected.remove_edges_from([(u, v) for u, v, w in projected.edges(data="weight") if w <= 0])
    return projected
