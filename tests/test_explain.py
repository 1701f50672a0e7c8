"""Explaining one account's decision: its farm, the shared evidence and its neighbours."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from explore_data import F1_CARD, F1_DEVICE, RUN_ID, write_farm_run
from rich.console import Console

from sentra_graph import explain as explain_module
from sentra_graph.explain import explain_account, render_explanation
from sentra_graph.store import schema as t


@pytest.fixture
def farm_store(store):
    return store, write_farm_run(store)


def _rendered(expl) -> str:
    console = Console(record=True, width=140)
    render_explanation(expl, console)
    return console.export_text()


def test_blocked_member_names_its_farm_and_the_shared_evidence(farm_store):
    store, ids = farm_store
    expl = explain_account(store, "farm1-03")
    assert (expl.known, expl.decision, expl.cluster_id, expl.run_id) == (
        True,
        "block",
        "F1",
        RUN_ID,
    )
    assert expl.farm["size"] == 12 and expl.farm["decision"] == "block"
    assert expl.farm["strength"] == pytest.approx(0.87)
    assert any(F1_CARD in reason for reason in expl.reasons)

    cards = expl.evidence["cards"].set_index("entity")
    assert cards.loc[F1_CARD, "other_accounts"] == 7
    assert cards.loc[F1_CARD, "farm_members"] == 7
    devices = expl.evidence["devices"].set_index("entity")
    assert devices.loc[F1_DEVICE, "farm_members"] == 11
    assert devices.loc[F1_DEVICE, "requests"] == 24 * 5
    templates = expl.evidence["templates"].set_index("entity")
    assert templates.loc["T7", "requests"] == 24 * 4
    ips = expl.evidence["ips"].set_index("entity")
    assert ips.loc["198.51.100.3", "other_accounts"] == 2  # farm1-07 and farm1-11

    neighbours = expl.neighbours.set_index("account_id")
    assert set(neighbours.index) == set(ids.f1) - {"farm1-03"}
    assert neighbours["in_farm"].all()
    assert neighbours.loc["farm1-07", "n_shared"] > neighbours.loc["farm1-08", "n_shared"]
    assert "card" in neighbours.loc["farm1-00", "shared"]
    assert "card" not in neighbours.loc["farm1-08", "shared"]  # it pays with the other card

    text = _rendered(expl)
    for needle in ("farm F1", "BLOCK", F1_CARD, F1_DEVICE, "198.51.100.3", "farm1-07"):
        assert needle in text


def test_independent_account_is_allowed_and_shares_nothing(farm_store):
    store, _ = farm_store
    expl = explain_account(store, "user-04")
    assert (expl.decision, expl.cluster_id, expl.farm) == ("allow", None, None)
    assert all((frame["other_accounts"] == 0).all() for frame in expl.evidence.values())
    assert expl.neighbours.empty
    assert len(expl.requests) == 15
    assert "shares no card" in _rendered(expl)


def test_never_seen_account_is_allowed_and_unknown(farm_store):
    store, _ = farm_store
    expl = explain_account(store, "ghost")
    assert (expl.known, expl.decision, expl.score, expl.cluster_id) == (False, "allow", 0.0, None)
    assert "never seen" in _rendered(expl)
    assert json.loads(json.dumps(expl.to_dict()))["known"] is False


def test_known_account_without_a_served_decision(farm_store):
    store, _ = farm_store
    with store.begin() as conn:
        conn.execute(
            t.accounts.insert().values(
                account_id="late-signup",
                created_at=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
                payment_fingerprint=F1_CARD,
                inferred=False,
            )
        )
    expl = explain_account(store, "late-signup")
    assert (expl.known, expl.decision, expl.run_id) == (True, "allow", None)
    assert expl.evidence["cards"].set_index("entity").loc[F1_CARD, "other_accounts"] == 8
    assert "not scored" in _rendered(expl)


def test_common_entities_do_not_make_neighbours(farm_store, monkeypatch):
    store, _ = farm_store
    monkeypatch.setattr(explain_module, "NEIGHBOUR_CAP", 5)
    expl = explain_account(store, "farm1-03")
    # only the request IP (shared with two accounts) is specific enough under a cap of 5
    assert set(expl.neighbours["account_id"]) == {"farm1-07", "farm1-11"}
    assert expl.evidence["devices"].set_index("entity").loc[F1_DEVICE, "other_accounts"] == 11


def test_explanation_is_json_ready(farm_store):
    store, _ = farm_store
    data = json.loads(json.dumps(explain_account(store, "farm2-01").to_dict()))
    assert data["decision"] == "review" and data["cluster_id"] == "F2"
    assert data["farm"]["size"] == 6
    card = data["evidence"]["cards"][0]
    assert (card["entity"], card["farm_members"]) == ("card-farm-C", 5)
    assert data["account"]["payment_fingerprint"] == "card-farm-C"
