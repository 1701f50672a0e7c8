"""The weighted account projection of the entity graph, built with sparse matrices.

Two accounts are linked by every entity they share. Entity ``e`` contributes
``w(e) * sqrt(v_ae * v_be)`` to the pair, where ``v`` are the accounts' volumes on ``e`` (so
two accounts spreading their traffic the same way over 20 proxy IPs are as linked as two on one
IP) and ``w(e)`` is the entity type's weight times a rarity factor
``(units(e) - 1) ** -rarity_power``: an entity behind thousands of unrelated accounts is a weak
link, one card behind a handful is a strong one. ``units`` counts *org units* (an org, or an
account without org), so an org's own accounts make a card no more shared. Entities behind more
than ``max_degree`` accounts, or whose weight falls below ``min_entity_weight``, link nobody
(they stay in the graph as evidence). Links between accounts of the same org are expected
(an open relationship) and are multiplied by ``same_org_factor`` (default 0). Pairs weaker than
``min_link`` are dropped: they could neither join a community nor move a score.

The whole projection is ``B @ B.T`` with ``B[a, e] = sqrt(w(e) * v_ae)``; its cost grows with
the sum over entities of degree squared, which ``max_degree`` bounds. It is computed in blocks
of rows (about ``pair_block`` pairs each), each block filtered before the next, so memory
stays bounded by the links kept.

>>> from sentra_graph.graph.entities import account_entities, combine
>>> inc = combine([account_entities("payment", np.array([0, 0, 1]), np.array(["a", "b"]))], 3)
>>> p = project(inc, units=np.arange(3), org=np.full(3, -1), params=GraphParams())
>>> p.row.tolist(), p.col.tolist(), p.data.tolist()
([0], [1], [1.0])
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from sentra_graph.graph.entities import ENTITY_TYPES, Incidence
from sentra_graph.params import GraphParams

__all__ = ["entity_units", "entity_weights", "project", "type_weights"]


def type_weights(params: GraphParams) -> np.ndarray:
    """Weight of each entity type, in the order of :data:`ENTITY_TYPES`."""
    return np.array([getattr(params, f"w_{kind}") for kind in ENTITY_TYPES], dtype=np.float64)


def entity_units(incidence: Incidence, units: np.ndarray) -> np.ndarray:
    """Number of distinct org units behind each entity.

    units: org-unit code per account (the org, or the account itself when it has none).
    """
    n_entities = incidence.n_entities
    if len(incidence.entity) == 0:
        return np.zeros(n_entities, dtype=np.int64)
    unit = units[incidence.account]
    alone = np.bincount(units)[unit] == 1  # the unit's only account: counts once per entity
    out = np.bincount(incidence.entity[alone], minlength=n_entities)
    width = np.int64(units.max()) + 1
    shared = np.unique(incidence.entity[~alone] * width + unit[~alone])
    return out + np.bincount(shared // width, minlength=n_entities)


def entity_weights(incidence: Incidence, units: np.ndarray, params: GraphParams) -> np.ndarray:
    """Link weight of each entity: type weight x rarity, 0 when shared by too many accounts.

    >>> from sentra_graph.graph.entities import account_entities, combine
    >>> codes = np.array([0, 0, 0, 0, 0, 1, 1])
    >>> inc = combine([account_entities("payment", codes, np.array(["a", "b"]))], 7)
    >>> entity_weights(inc, np.arange(7), GraphParams(rarity_power=1.0)).tolist()
    [0.25, 1.0]
    """
    n_units = entity_units(incidence, units)
    weight = type_weights(params)[incidence.entity_type]
    rarity = np.maximum(n_units - 1, 1).astype(np.float64) ** -params.rarity_power
    weight = weight * rarity
    degree = incidence.degree()
    weight[(degree > params.max_degree) | (weight < params.min_entity_weight)] = 0.0
    return _within_pair_budget(weight, degree, params.max_pairs)


def _within_pair_budget(weight: np.ndarray, degree: np.ndarray, max_pairs: int) -> np.ndarray:
    """Zero the most shared entities until the projection's pair count fits ``max_pairs``."""
    pairs = np.where(weight > 0, degree * (degree - 1) / 2.0, 0.0)
    if pairs.sum() <= max_pairs:
        return weight
    order = np.argsort(degree, kind="stable")
    over = np.cumsum(pairs[order]) > max_pairs
    weight = weight.copy()
    weight[order[over]] = 0.0
    return weight


def project(
    incidence: Incidence,
    *,
    units: np.ndarray,
    org: np.ndarray,
    params: GraphParams,
    weights: np.ndarray | None = None,
) -> sparse.coo_matrix:
    """Upper triangle (row < col) of the weighted account projection.

    units: org-unit code per account; org: org code per account (-1 none); weights: per-entity
    link weight (default :func:`entity_weights`).
    """
    n = incidence.n_accounts
    w = entity_weights(incidence, units, params) if weights is None else weights
    row_w = w[incidence.entity]
    keep = row_w > 0
    b = sparse.csr_matrix(
        (
            np.sqrt(row_w[keep] * incidence.volume[keep]),
            (incidence.account[keep], incidence.entity[keep]),
        ),
        shape=(n, incidence.n_entities),
    )
    degree = np.diff(b.tocsc().indptr).astype(np.float64)
    n_blocks = max(1, int(np.ceil((degree * degree).sum() / 2.0 / params.pair_block)))
    bounds = np.linspace(0, n, n_blocks + 1).astype(np.int64)
    floor = max(params.min_link, np.finfo(float).tiny)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        block = (b[lo:hi] @ b[lo:].T).tocoo()
        rows, cols = block.row.astype(np.int64) + lo, block.col.astype(np.int64) + lo
        upper = rows < cols
        rows, cols, data = rows[upper], cols[upper], block.data[upper]
        same_org = (org[rows] >= 0) & (org[rows] == org[cols])
        data = np.where(same_org, data * params.same_org_factor, data)
        kept = data >= floor
        parts.append((rows[kept], cols[kept], data[kept]))
    rows, cols, data = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return sparse.coo_matrix((data, (rows, cols)), shape=(n, n))
