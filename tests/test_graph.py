"""The entity graph and its sparse account projection, checked against networkx."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from sentra_graph.graph.entities import (
    ENTITY_TYPES,
    account_entities,
    combine,
    ip_prefix,
    request_entities,
)
from sentra_graph.graph.projection import entity_units, entity_weights, project
from sentra_graph.graph.reference import bipartite_graph, weighted_projection
from sentra_graph.graph.window import build_incidence, encode_window, only_from_ips
from sentra_graph.params import GraphParams


def random_incidence(seed: int, n_accounts: int = 40):
    """Accounts with cards, sign-up IPs and request IPs drawn from small pools."""
    rng = np.random.default_rng(seed)
    cards = rng.integers(-1, 12, n_accounts)
    signup = rng.integers(-1, 20, n_accounts)
    n_req = 400
    acc = rng.integers(0, n_accounts, n_req)
    ips = rng.integers(0, 25, n_req)
    n_requests = np.bincount(acc, minlength=n_accounts).astype(float)
    parts = [
        account_entities("payment", cards, np.array([f"c{i}" for i in range(12)])),
        account_entities("signup_ip", signup, np.array([f"s{i}" for i in range(20)])),
        request_entities("ip", acc, ips, np.array([f"10.0.0.{i}" for i in range(25)]), n_requests),
    ]
    org = np.where(rng.random(n_accounts) < 0.3, rng.integers(0, 3, n_accounts), -1)
    units = np.where(org >= 0, org, 3 + np.arange(n_accounts))
    return combine(parts, n_accounts), org, units


def as_dict(coo: sparse.coo_matrix) -> dict[tuple[int, int], float]:
    return {
        (min(int(r), int(c)), max(int(r), int(c))): float(w)
        for r, c, w in zip(coo.row, coo.col, coo.data, strict=True)
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("same_org_factor", [0.0, 0.5])
def test_sparse_projection_matches_networkx(seed: int, same_org_factor: float) -> None:
    inc, org, units = random_incidence(seed)
    params = GraphParams(same_org_factor=same_org_factor, max_degree=10, min_link=0.0)
    weights = entity_weights(inc, units, params)
    ours = as_dict(project(inc, units=units, org=org, params=params))
    oracle = weighted_projection(inc, weights, org, same_org_factor)
    expected = {(min(u, v), max(u, v)): w for u, v, w in oracle.edges(data="weight")}
    assert ours.keys() == expected.keys()
    for pair, w in expected.items():
        assert ours[pair] == pytest.approx(w, rel=1e-9)


def test_projection_in_blocks_equals_projection_at_once() -> None:
    inc, org, units = random_incidence(5, 200)
    whole = as_dict(project(inc, units=units, org=org, params=GraphParams(pair_block=10**9)))
    blocks = as_dict(project(inc, units=units, org=org, params=GraphParams(pair_block=50)))
    assert whole.keys() == blocks.keys()
    assert all(whole[k] == pytest.approx(blocks[k]) for k in whole)


def test_negligible_links_are_dropped() -> None:
    inc, org, units = random_incidence(4)
    full = as_dict(project(inc, units=units, org=org, params=GraphParams(min_link=0.0)))
    kept = as_dict(project(inc, units=units, org=org, params=GraphParams(min_link=0.1)))
    assert kept == {pair: w for pair, w in full.items() if w >= 0.1}
    assert len(kept) < len(full)


def test_same_org_links_vanish_and_other_links_stay() -> None:
    # accounts 0, 1, 2 share one card; 0 and 1 are the same org, 2 is an outsider
    inc = combine([account_entities("payment", np.array([0, 0, 0]), np.array(["card"]))], 3)
    org = np.array([5, 5, -1])
    units = np.array([0, 0, 1])
    pairs = as_dict(project(inc, units=units, org=org, params=GraphParams()))
    assert (0, 1) not in pairs
    assert pairs[(0, 2)] > 0 and pairs[(1, 2)] > 0


def test_rarity_counts_org_units_not_accounts() -> None:
    # one card behind an org of 50 accounts is as rare as a card behind one account
    codes = np.zeros(51, dtype=np.int64)
    inc = combine([account_entities("payment", codes, np.array(["card"]))], 51)
    units = np.concatenate([np.zeros(50, dtype=np.int64), [1]])
    assert entity_units(inc, units).tolist() == [2]
    assert entity_weights(inc, units, GraphParams(max_degree=100))[0] == pytest.approx(1.0)


def test_rarity_weakens_widely_shared_entities() -> None:
    codes = np.concatenate([np.zeros(3), np.ones(300)]).astype(np.int64)
    inc = combine([account_entities("signup_ip", codes, np.array(["a", "b"]))], 303)
    weights = entity_weights(inc, np.arange(303), GraphParams(max_degree=1000))
    assert weights[0] > 5 * weights[1] > 0


def test_entities_beyond_max_degree_link_nobody() -> None:
    codes = np.concatenate([np.zeros(5), np.ones(50)]).astype(np.int64)
    inc = combine([account_entities("payment", codes, np.array(["small", "big"]))], 55)
    proj = project(inc, units=np.arange(55), org=np.full(55, -1), params=GraphParams(max_degree=20))
    assert proj.nnz == 10  # only the pairs of the 5-account card
    assert proj.row.max() < 5 and proj.col.max() < 5


def test_pair_budget_drops_the_most_shared_entities_first() -> None:
    codes = np.concatenate([np.zeros(5), np.ones(30)]).astype(np.int64)
    inc = combine([account_entities("payment", codes, np.array(["small", "big"]))], 35)
    params = GraphParams(max_degree=100, max_pairs=50)
    weights = entity_weights(inc, np.arange(35), params)
    assert weights[0] > 0 and weights[1] == 0


def test_request_volumes_are_shares_of_the_account_traffic() -> None:
    acc = np.array([0, 0, 0, 1])
    ips = np.array([0, 0, 1, 1])
    part = request_entities("ip", acc, ips, np.array(["x", "y"]), np.array([3.0, 1.0]))
    inc = combine([part], 2)
    rows = zip(inc.account, inc.entity, inc.volume, strict=True)
    shares = {(int(a), inc.entity_key[e]): v for a, e, v in rows}
    assert shares == {(0, "x"): pytest.approx(2 / 3), (0, "y"): pytest.approx(1 / 3), (1, "y"): 1.0}
    assert ENTITY_TYPES[inc.entity_type[0]] == "ip"


def test_bipartite_graph_holds_every_incidence_row() -> None:
    inc, _, _ = random_incidence(3)
    graph = bipartite_graph(inc)
    assert graph.number_of_edges() == len(inc.account)
    accounts = [n for n, d in graph.nodes(data="bipartite") if d == 0]
    assert len(accounts) == inc.n_accounts


def test_ip_prefix_handles_both_families_and_garbage() -> None:
    ips = pd.Series(["192.168.7.9", "192.168.7.200", "2001:db8:abcd:12::1", "::1", "nope", None])
    assert ip_prefix(ips).tolist() == [
        "192.168.7.0/24",
        "192.168.7.0/24",
        "2001:db8:abcd::/48",
        "::/48",
        None,
        None,
    ]


def small_window() -> tuple[pd.DataFrame, pd.DataFrame]:
    accounts = pd.DataFrame(
        {
            "account_id": ["b", "a"],
            "created_at": pd.to_datetime(["2025-01-01", "2025-01-02"], utc=True),
            "org_id": ["acme", None],
            "payment_fingerprint": ["card", "card"],
            "signup_ip": ["10.0.0.9", "10.0.0.8"],
        }
    )
    requests = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2025-01-03 00:00", "2025-01-03 01:00", "2025-01-04 00:00"], utc=True
            ),
            "account_id": ["a", "ghost", "b"],
            "ip": ["10.0.0.1", "10.0.0.1", "2001:db8::1"],
            "tls_fingerprint": ["t1", None, "t1"],
            "user_agent": ["ua", "ua", None],
            "template_id": [1_000_007, 1_000_007, 3],
            "markers": [1, 0, 0],
        }
    )
    return accounts, requests


def test_encode_window_codes_every_column_and_adds_unknown_accounts() -> None:
    win = encode_window(*small_window())
    assert win.account_ids.tolist() == ["a", "b", "ghost"]
    assert win.acc.tolist() == [0, 2, 1]
    assert win.units[0] != win.units[1] != win.units[2]
    assert win.created[2] == pd.Timestamp("2025-01-03T01:00", tz="UTC").timestamp()
    assert [win.device_labels[d] for d in win.device] == ["t1|ua", "-|ua", "t1|-"]
    assert win.prefix_labels[win.prefix].tolist() == ["10.0.0.0/24", "10.0.0.0/24", "2001:db8::/48"]
    assert win.template.tolist() == [1_000_007, 1_000_007, 3]


def test_build_incidence_uses_template_ids_as_given_and_drops_allowlisted_links() -> None:
    win = encode_window(*small_window())
    n_req = np.bincount(win.acc, minlength=win.n).astype(float)
    inc = build_incidence(win, n_req, n_req, set(), set())
    labels = {inc.label(e) for e in range(inc.n_entities)}
    assert {"template 1000007", "payment card", "ip 10.0.0.1"} <= labels
    assert "template 3" not in labels  # one account's template links nobody: left out
    cut = build_incidence(win, n_req, n_req, {"10.0.0.1"}, {"acme"})
    kept = {inc.label(e) for e in cut.entity}
    assert "ip 10.0.0.1" not in kept
    assert not (cut.account == 1).any()  # b is in the allow-listed org: it links nobody
    assert only_from_ips(win, {"10.0.0.1"}).tolist() == [True, False, True]
