"""Evidence channels, farm and account scores, feedback and allow-lists."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

from sentra_graph.graph.entities import account_entities, combine, request_entities
from sentra_graph.params import RiskParams
from sentra_graph.risk.evidence import (
    CHANNELS,
    FarmInputs,
    binomial_surprise,
    entity_sharing,
    member_channels,
)
from sentra_graph.risk.feedback import (
    allowlist_sets,
    allowlisted_reasons,
    farm_pull,
    latest_labels,
)
from sentra_graph.risk.model import UNLABELLED, supervised_scores
from sentra_graph.risk.scoring import (
    account_scores,
    decide,
    farm_scores,
    independent,
    size_factor,
)
from sentra_graph.risk.scoring import (
    combine as combine_channels,
)
from sentra_graph.risk.timing import peer_coactivity, signup_peers

P = RiskParams()


def channel_frame(rows: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c, 0.0) for c in CHANNELS} for r in rows])


def score_of(channels: dict[str, float], size: int) -> float:
    frame = channel_frame([channels] * size)
    farms = farm_scores(frame, np.zeros(size, dtype=np.int64), np.arange(size), P)
    return float(farms["score"].iloc[0])


@pytest.mark.parametrize("channel", CHANNELS)
def test_one_shared_attribute_never_reaches_review_however_large_the_group(channel: str) -> None:
    assert score_of({channel: 1.0}, 500) < 0.5


def test_infrastructure_channels_count_once() -> None:
    # shared IPs and a shared device stack move together behind a NAT: one signal, not two
    assert score_of({"network": 1.0, "device": 1.0}, 200) < 0.5


def test_conjunctions_block_farms_but_not_families() -> None:
    two = {"payment": 1.0, "network": 1.0}
    three = {"payment": 1.0, "network": 1.0, "content": 0.9}
    assert score_of(two, 4) < 0.5  # a family: card and home IP
    assert score_of(two, 8) >= 0.8
    assert score_of(three, 6) >= 0.8
    assert score_of(three, 4) < 0.8


def test_score_rises_with_every_added_channel() -> None:
    present: dict[str, float] = {}
    last = 0.0
    for channel in ("payment", "content", "timing", "signup"):
        present[channel] = 1.0
        now = score_of(present, 10)
        assert now >= last
        last = now


def test_members_without_the_conjunction_neither_inflate_nor_inherit() -> None:
    family = [{"payment": 1.0, "network": 1.0}] * 4
    neighbours = [{"network": 1.0}] * 6
    frame = channel_frame(family + neighbours)
    labels = np.zeros(10, dtype=np.int64)
    farms = farm_scores(frame, labels, np.arange(10), P)
    assert farms["score"].iloc[0] < 0.5
    assert farms["core"].iloc[0] == 4
    own = np.zeros(10)
    scores, strength = account_scores(frame, labels, farms, own, P)
    assert (scores[4:] <= scores[0]).all()
    assert (strength[:4] == 1.0).all() and (strength[4:] < 1.0).all()


def test_one_org_is_an_open_relationship() -> None:
    frame = channel_frame([{"payment": 1.0, "network": 1.0, "content": 1.0}] * 20)
    farms = farm_scores(frame, np.zeros(20, dtype=np.int64), np.zeros(20, dtype=np.int64), P)
    assert farms["score"].iloc[0] == 0.0


def test_combine_and_independent_are_consistent() -> None:
    row = np.array([[1.0, 0.3, 0.9, 0.2, 0.0, 0.0]])
    grouped = independent(row, P.channel_groups)
    assert grouped.tolist() == [[1.0, 0.9, 0.2, 0.0, 0.0]]
    assert combine_channels(grouped, (0.5, 0.5), full=1.0)[0] == pytest.approx(0.95)


def test_size_factor_is_increasing() -> None:
    values = size_factor(np.arange(1, 12), P.size_mid, P.size_width)
    assert (np.diff(values) > 0).all() and values[-1] > 0.99


def test_decide_uses_the_thresholds() -> None:
    assert decide(np.array([0.79, 0.8, 0.49]), 0.8, 0.5).tolist() == ["review", "block", "allow"]


def test_peer_coactivity_matches_brute_force_with_org_units() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((12, 30)) * (rng.random((12, 30)) < 0.3)
    dense[5] = 0.0  # an inactive account
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    dense = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, -1, -1, 1])
    units = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5])
    ours = peer_coactivity(sparse.csr_matrix(dense), labels, units)
    active = norms[:, 0] > 0
    for a in range(12):
        peers = [
            b
            for b in range(12)
            if labels[b] == labels[a] >= 0 and units[b] != units[a] and active[b]
        ]
        expected = np.mean([dense[a] @ dense[b] for b in peers]) if peers and active[a] else 0.0
        assert ours[a] == pytest.approx(expected)


def test_signup_peers_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    created = rng.uniform(0, 20_000, 40)
    created[3] = np.nan
    labels = rng.integers(-1, 3, 40)
    units = rng.integers(0, 25, 40)
    ours = signup_peers(created, labels, units, 1_800.0)
    for a, b_range in itertools.product(range(40), [range(40)]):
        if labels[a] < 0 or np.isnan(created[a]):
            assert ours[a] == 0
            continue
        expected = sum(
            1
            for b in b_range
            if b != a
            and labels[b] == labels[a]
            and units[b] != units[a]
            and abs(created[b] - created[a]) <= 1_800.0
        )
        assert ours[a] == expected


def farm_inputs(cards: np.ndarray, units: np.ndarray, labels: np.ndarray) -> FarmInputs:
    n = len(cards)
    labels_txt = np.array([f"card{i}" for i in range(cards.max() + 1)])
    acc = np.repeat(np.arange(n), 4)
    ips = np.repeat(np.arange(n) % 2, 4)  # two IPs, each used by half the accounts
    parts = [
        account_entities("payment", cards, labels_txt),
        request_entities("ip", acc, ips, np.array(["ip0", "ip1"]), np.full(n, 4.0)),
    ]
    return FarmInputs(
        labels=labels,
        units=units,
        incidence=combine(parts, n),
        vectors=sparse.csr_matrix((n, 10)),
        baseline=0.0,
        created=np.full(n, np.nan),
        markers=np.zeros((n, 3)),
    )


def test_sharing_inside_one_org_is_not_evidence() -> None:
    cards = np.array([0, 0, 0, 1, 1, 1])
    # accounts 0-2 are one org; 3-5 are three unrelated accounts sharing card 1
    units = np.array([0, 0, 0, 1, 2, 3])
    inputs = farm_inputs(cards, units, np.zeros(6, dtype=np.int64))
    channels = member_channels(inputs, entity_sharing(inputs, P), P)
    assert channels["payment"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert (channels["network"] == 1.0).all()  # each IP is used across org units


def test_ip_shared_mostly_outside_the_farm_is_not_evidence() -> None:
    cards = np.arange(8)
    labels = np.array([0, 0, -1, -1, -1, -1, -1, -1])  # only two of the IP's users are members
    inputs = farm_inputs(cards, np.arange(8), labels)
    rows = entity_sharing(inputs, RiskParams(ip_concentration=0.5))
    channels = member_channels(inputs, rows, RiskParams(ip_concentration=0.5))
    assert (channels["network"] == 0.0).all()


def test_farm_pull_reaches_linked_accounts_and_farm_mates() -> None:
    proj = sparse.coo_matrix(
        (np.array([1.0, 1.0, 3.0]), (np.array([0, 1, 3]), np.array([1, 2, 4]))), shape=(6, 6)
    )
    confirmed = np.array([True, False, False, False, False, False])
    labels = np.array([-1, -1, -1, 0, 0, 0])
    pull = farm_pull(proj, confirmed, labels)
    assert pull[1] == pytest.approx(0.5) and pull[2] == 0.0 and pull[0] == 0.0
    confirmed_farm = farm_pull(proj, np.array([False, False, False, True, False, False]), labels)
    assert confirmed_farm[4] == 1.0 and confirmed_farm[5] == 1.0


def test_feedback_keeps_the_last_label_and_allowlists_explain_themselves() -> None:
    fb = pd.DataFrame({"account_id": ["a", "b", "a"], "label": ["legit", "farm", "farm"]})
    assert latest_labels(fb) == {"a": "farm", "b": "farm"}
    sets = allowlist_sets(pd.DataFrame({"kind": ["account", "org"], "value": ["x", "acme"]}))
    reasons = allowlisted_reasons(
        np.array(["x", "y", "z", "w"]),
        np.array([None, "acme", None, "other"], dtype=object),
        np.array([False, False, True, False]),
        sets,
    )
    assert reasons == [
        "allow-listed account",
        "allow-listed org acme",
        "all requests from allow-listed IPs",
        None,
    ]


def test_supervised_model_needs_enough_labels_of_each_class() -> None:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"payment": rng.random(60), "content": rng.random(60)})
    y = np.full(60, UNLABELLED)
    y[:5] = 1
    y[5:40] = 0
    assert supervised_scores(features, y, min_labels=10, seed=0) is None
    y[:25] = (features["payment"].to_numpy()[:25] > 0.5).astype(int)
    fit = supervised_scores(features, y, min_labels=5, seed=0)
    assert fit is not None
    high = features["payment"].to_numpy() > 0.8
    assert fit.scores[high].mean() > fit.scores[features["payment"].to_numpy() < 0.2].mean()
    assert all(e.startswith("supervised model p=") for e in fit.explanations)


def test_families_joined_by_a_neighbour_stay_families() -> None:
    # two families (3 and 2 accounts): each member shares a card and a home IP with its own
    # family only, so its evidence reaches two peers at most, however big the cluster
    family = {"payment": 1.0, "network": 1.0}
    frame = channel_frame([family] * 5 + [{"network": 0.6}])
    frame["reach"] = [2, 2, 2, 1, 1, 2]
    farms = farm_scores(frame, np.zeros(6, dtype=np.int64), np.arange(6), P)
    assert farms["score"].iloc[0] < 0.5
    # the same channels reaching the whole group are a farm
    frame["reach"] = 5
    assert farm_scores(frame, np.zeros(6, dtype=np.int64), np.arange(6), P)["score"].iloc[0] >= 0.8


def test_marker_evidence_needs_the_farm_to_carry_the_same_marker() -> None:
    cards = np.arange(6)
    labels = np.zeros(6, dtype=np.int64)
    inputs = farm_inputs(cards, np.arange(6), labels)
    rates = np.zeros((6, 3))
    rates[:5, 0] = 0.6  # five members send chain-of-thought prompts
    rates[5, 2] = 0.6  # the sixth sends tool-use prompts
    inputs = dataclasses.replace(inputs, markers=rates)
    channels = member_channels(inputs, entity_sharing(inputs, P), P)
    assert (channels["content"][:5] == 1.0).all()
    assert channels["content"][5] == 0.0
    assert (channels["reach"][:5] >= 4).all()


def template_farm(users_in_farm: int) -> FarmInputs:
    """A farm of ten accounts among 1000; 100 accounts use template 0, of which some members."""
    n = 1000
    users = np.r_[np.arange(users_in_farm), np.arange(10, 10 + 100 - users_in_farm)]
    acc = np.repeat(users, 2)
    part = request_entities("template", acc, np.zeros(len(acc), dtype=np.int64),
                            np.array(["0"]), np.full(n, 2.0))  # fmt: skip
    return FarmInputs(
        labels=np.r_[np.zeros(10, dtype=np.int64), np.full(n - 10, -1)],
        units=np.arange(n),
        incidence=combine([part], n),
        vectors=sparse.csr_matrix((n, 4)),
        baseline=0.0,
        created=np.full(n, np.nan),
        markers=np.zeros((n, 3)),
    )


def test_a_template_nearly_all_members_use_is_evidence_when_chance_cannot_explain_it() -> None:
    everyone = template_farm(10)  # 10 of 10 members, rate 1 in 10: chance 1e-10
    channels = member_channels(everyone, entity_sharing(everyone, P), P)
    assert (channels["content"][:10] == 1.0).all()
    half = template_farm(5)  # 5 of 10 members on a template 95 outsiders use: no evidence
    channels = member_channels(half, entity_sharing(half, P), P)
    assert (channels["content"][:10] == 0.0).all()


def test_dormant_members_inherit_their_farm_through_a_sign_up_tie() -> None:
    farm = {"payment": 1.0, "network": 1.0, "content": 1.0, "timing": 1.0}
    frame = channel_frame([farm] * 8 + [{"network": 1.0}, {"network": 1.0}])
    labels = np.zeros(10, dtype=np.int64)
    farms = farm_scores(frame, labels, np.arange(10), P)
    dormant = np.r_[np.zeros(9, dtype=bool), [True]]  # account 9 never sent a request
    scores, _ = account_scores(frame, labels, farms, np.zeros(10), P, dormant)
    assert scores[9] == pytest.approx(farms["score"].iloc[0] * P.dormant_share)
    assert scores[8] < 0.5  # the same tie on an active account with nothing else: no


def test_network_and_sign_up_burst_alone_are_one_coincidence() -> None:
    assert score_of({"network": 1.0, "signup": 1.0}, 30) < 0.5
    assert score_of({"network": 1.0, "signup": 1.0, "timing": 1.0}, 30) >= 0.8
    assert score_of({"network": 1.0, "signup": 1.0, "payment": 1.0}, 30) >= 0.8


def heavy_template_farm(member_share: float) -> FarmInputs:
    """A farm of ten accounts among 1000; 400 outsiders send 1 of their 20 prompts in
    template 0, the members ``member_share`` of theirs."""
    n, per = 1000, 20
    outsiders = np.arange(10, 410)
    member_hits = int(round(member_share * per))
    acc = np.r_[np.repeat(np.arange(10), member_hits), outsiders]
    part = request_entities("template", acc, np.zeros(len(acc), dtype=np.int64),
                            np.array(["0"]), np.full(n, float(per)))  # fmt: skip
    return dataclasses.replace(template_farm(10), incidence=combine([part], n))


def test_a_template_only_the_members_use_heavily_is_evidence() -> None:
    # 410 of 1000 accounts use the template: all ten members doing so is no surprise (1e-4);
    # all ten sending it most of the time, when nobody else does, is
    heavy = heavy_template_farm(0.6)
    channels = member_channels(heavy, entity_sharing(heavy, P), P)
    assert (channels["content"][:10] == 1.0).all()
    light = heavy_template_farm(0.05)
    channels = member_channels(light, entity_sharing(light, P), P)
    assert (channels["content"][:10] == 0.0).all()


def test_binomial_surprise_matches_the_tail_probability() -> None:
    k, n, p = np.array([1, 4, 10]), np.array([10, 10, 10]), np.array([0.1, 0.3, 0.01])
    want = [-np.log10(1 - 0.9**10), -np.log10(stats.binom.sf(3, 10, 0.3)), 20.0]
    assert binomial_surprise(k, n, p) == pytest.approx(want, rel=1e-6)
    assert binomial_surprise(np.array([0]), np.array([5]), np.array([0.5])).tolist() == [0.0]


def test_busy_accounts_all_touching_a_common_template_is_no_surprise() -> None:
    # ten members send 2,000 prompts each, two of them in template 0; 90 of the 990 others
    # (20 prompts each) use it too: one account in ten uses it, but a busy one nearly surely does
    n = 1000
    prompts = np.r_[np.full(10, 2000.0), np.full(n - 10, 20.0)]
    users = np.r_[np.arange(10), np.arange(10, 100)]
    acc = np.repeat(users, 2)
    part = request_entities("template", acc, np.zeros(len(acc), dtype=np.int64),
                            np.array(["0"]), prompts)  # fmt: skip
    inputs = dataclasses.replace(template_farm(10), incidence=combine([part], n))
    blind = member_channels(inputs, entity_sharing(inputs, P), P)
    assert (blind["content"][:10] == 1.0).all()  # 10 of 10 at a rate of 1 in 10: 1e-10
    aware = dataclasses.replace(inputs, prompts=prompts)
    channels = member_channels(aware, entity_sharing(aware, P), P)
    assert (channels["content"][:10] == 0.0).all()
