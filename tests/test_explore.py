"""Exploring a run: farm tables, members, requests, shared entities, plots and store reads."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from explore_data import (  # noqa: E402
    F1_CARD,
    F1_DEVICE,
    RUN_ID,
    WINDOW_END,
    WINDOW_START,
    build_accounts,
    build_requests,
    write_farm_run,
)

from sentra_graph.explore import (  # noqa: E402
    ENTITY_COLOURS,
    draw_farm,
    evidence_frames,
    load_run,
    plot_template_mix,
    plot_timeline,
    shared_entities,
    threshold_sweep,
)
from sentra_graph.store import explore as store_explore  # noqa: E402


@pytest.fixture
def farm_store(store):
    ids = write_farm_run(store)
    return store, ids


def test_farms_table_lists_farms_by_score_with_member_decisions(farm_store):
    store, _ = farm_store
    farms = load_run(store).farms()
    assert farms["cluster_id"].tolist() == ["F1", "F2"]
    f1 = farms.iloc[0]
    assert (f1["size"], f1["decision"], f1["blocked"], f1["reviewed"]) == (12, "block", 12, 0)
    assert farms.iloc[1]["reviewed"] == 6
    assert F1_CARD in f1["top_reasons"]


def test_load_run_defaults_to_latest_published_and_explains_absence(store):
    with pytest.raises(LookupError, match="sentra-graph run"):
        load_run(store)
    write_farm_run(store)
    assert load_run(store).run_id == RUN_ID
    with pytest.raises(LookupError, match="no run 'nope'"):
        load_run(store, "nope")
    with pytest.raises(KeyError, match="F9"):
        load_run(store).farm("F9")


def test_farm_members_carry_decisions_and_account_attributes(farm_store):
    store, ids = farm_store
    members = load_run(store).farm("F1").members
    assert sorted(members["account_id"]) == sorted(ids.f1)
    assert members["strength"].is_monotonic_decreasing
    assert set(members["decision"]) == {"block"}
    assert (members["payment_fingerprint"] == F1_CARD).sum() == 8
    assert members["created_at"].dt.tz is not None


def test_farm_requests_are_the_members_requests_in_the_window(farm_store):
    store, ids = farm_store
    requests = load_run(store).farm("F1").requests()
    assert set(requests["account_id"]) == set(ids.f1)
    assert len(requests) == 12 * 24 * 5
    assert requests["ts"].min() >= pd.Timestamp(WINDOW_START)
    assert requests["ts"].max() < pd.Timestamp(WINDOW_END)
    assert requests["ts"].is_monotonic_increasing


def test_farm_evidence_is_tidied_from_the_stored_dict(farm_store):
    store, _ = farm_store
    evidence = load_run(store).farm("F1").evidence
    assert evidence["payment_fingerprints"].set_index("value")["accounts"][F1_CARD] == 8
    assert evidence["summary"].set_index("name")["value"]["burst_sync"] == pytest.approx(0.91)


def test_farm_shared_entities_name_the_shared_card_and_device(farm_store):
    store, _ = farm_store
    shared = load_run(store).farm("F1").shared()
    per_entity = shared.drop_duplicates(["kind", "entity"]).set_index(["kind", "entity"])
    assert per_entity.loc[("card", F1_CARD), "accounts"] == 8
    assert per_entity.loc[("device", F1_DEVICE), "accounts"] == 12
    assert per_entity.loc[("prefix", "198.51.100.0/24"), "accounts"] == 12
    assert ("signup_ip", "203.0.113.0") not in per_entity.index  # each account has its own


def test_prompts_are_capped_per_template_and_name_markers(farm_store):
    store, _ = farm_store
    farm = load_run(store).farm("F1")
    prompts = farm.prompts(per_template=2)
    assert prompts["template_id"].tolist() == [7, 7, 8, 8]  # the most used template first
    assert prompts["markers"].str.contains("chain-of-thought").all()
    assert farm.prompts(per_template=3, templates=1)["template_id"].tolist() == [7, 7, 7]


@pytest.mark.parametrize("seed", range(5))
def test_shared_entities_only_keeps_entities_of_enough_accounts(seed):
    rng = np.random.default_rng(seed)
    n = 200
    requests = pd.DataFrame(
        {
            "account_id": rng.choice([f"a{i}" for i in range(30)], n),
            "ip": rng.choice([f"10.0.{i}.{j}" for i in range(3) for j in range(20)], n),
            "tls_fingerprint": rng.choice(["x", "y", None], n),
            "user_agent": None,
            "template_id": rng.integers(-2, 6, n),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(30)],
            "payment_fingerprint": rng.choice(list("pq"), 30),
        }
    )
    for k in (2, 3, 5):
        edges = shared_entities(accounts, requests, min_accounts=k)
        distinct = edges.groupby(["kind", "entity"])["account_id"].nunique()
        assert (distinct >= k).all()
        assert (edges.groupby(["kind", "entity"])["accounts"].first() == distinct).all()
        ip_users = requests.groupby("ip")["account_id"].nunique()
        assert set(edges.loc[edges["kind"] == "ip", "entity"]) == set(ip_users[ip_users >= k].index)
        assert not edges["entity"].isin(["T-1", "T-2", "no template"]).any()
        assert set(edges["kind"]) <= set(ENTITY_COLOURS)


def test_evidence_frames_tolerate_any_shape():
    frames = evidence_frames(
        {
            "records": [{"a": 1}, {"a": 2}],
            "mapping": {"x": 1, "y": 2},
            "nested": {"c1": {"n": 3}},
            "items": ["p", "q"],
            "score": 0.5,
            "empty": [],
            "ips": {"shared": 3, "top": [{"ip": "1.2.3.4", "accounts": 9}], "deep": {"x": [1]}},
        }
    )
    assert frames["ips"].values.tolist() == [["shared", 3]]
    assert frames["ips.top"].to_dict("records") == [{"ip": "1.2.3.4", "accounts": 9}]
    assert frames["ips.deep.x"]["x"].tolist() == [1]
    assert frames["records"]["a"].tolist() == [1, 2]
    assert frames["mapping"].values.tolist() == [["x", 1], ["y", 2]]
    assert frames["nested"].to_dict("records") == [{"key": "c1", "n": 3}]
    assert frames["items"]["items"].tolist() == ["p", "q"]
    assert frames["summary"].values.tolist() == [["score", 0.5]]
    assert frames["empty"].empty
    assert evidence_frames(None) == {}


def test_timeline_heatmap_counts_every_request_once():
    accounts, ids = build_accounts()
    requests = build_requests(ids)
    farm = requests[requests["account_id"].isin(ids.f1)]
    fig, ax = plt.subplots()
    plot_timeline(farm, ax)
    counts = np.expm1(ax.images[0].get_array())
    assert counts.shape[0] == 12
    assert round(counts.sum()) == len(farm)
    # synchronised bursts: in a busy column most accounts are active at once
    busy = counts[:, counts.sum(axis=0) > 0]
    assert (busy > 0).mean(axis=0).max() == 1.0
    plt.close(fig)


def test_template_mix_bars_sum_to_one_per_account():
    _, ids = build_accounts()
    requests = build_requests(ids)
    fig, ax = plt.subplots()
    plot_template_mix(requests, ax, max_accounts=10)
    widths = (
        pd.DataFrame([(p.get_y(), p.get_width()) for p in ax.patches], columns=["y", "w"])
        .groupby("y")["w"]
        .sum()
    )
    assert len(widths) == 10
    assert np.allclose(widths, 1.0)
    plt.close(fig)


def test_draw_farm_bounds_the_drawing_and_colours_by_kind(farm_store):
    store, _ = farm_store
    farm = load_run(store).farm("F1")
    fig, ax = plt.subplots()
    draw_farm(farm, ax, max_entities=5, max_accounts=6)
    sizes = [len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")]
    drawn_nodes = sum(sizes[1:])  # the first collection holds the edges
    assert drawn_nodes <= 11
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "account (block)" in legend and "card" in legend
    assert "showing" in ax.get_title()
    plt.close(fig)


def test_draw_farm_handles_a_farm_with_nothing_shared():
    fig, ax = plt.subplots()
    empty = shared_entities(pd.DataFrame(columns=["account_id"]), pd.DataFrame())
    draw_farm(empty, ax)
    assert "no shared entity" in ax.get_title()
    plt.close(fig)


# ---- store reads -------------------------------------------------------------------------


def test_account_requests_read_in_chunks_match_pandas(farm_store, monkeypatch):
    store, ids = farm_store
    monkeypatch.setattr(store_explore, "_ID_CHUNK", 5)
    wanted = ids.f1[:7] + ids.legit[:4] + ["missing"]
    start = WINDOW_START + pd.Timedelta(hours=6)
    got = store.account_requests(wanted, start, WINDOW_END)
    expected = build_requests(ids)
    expected = expected[expected["account_id"].isin(wanted) & (expected["ts"] >= start)]
    assert sorted(got["request_id"]) == sorted(expected["request_id"])
    assert "prompt" not in got
    assert "prompt" in store.account_requests(ids.f2[:1], with_prompt=True)


def test_entity_usage_and_users_match_pandas(farm_store, monkeypatch):
    store, ids = farm_store
    monkeypatch.setattr(store_explore, "_ID_CHUNK", 2)
    requests = build_requests(ids)
    ips = ["198.51.100.0", "198.51.100.1", "10.3.0.1", "192.0.2.99"]
    usage = store.entity_usage("ip", ips).set_index("value")
    oracle = requests[requests["ip"].isin(ips)].groupby("ip")
    assert usage["accounts"].to_dict() == oracle["account_id"].nunique().to_dict()
    assert usage["requests"].to_dict() == oracle.size().to_dict()
    devices = ["-|Mozilla/5.0 user 0", "ja3-user-3|Mozilla/5.0 user 3", F1_DEVICE]
    by_device = store.entity_usage("device", devices).set_index("value")["accounts"].to_dict()
    assert by_device == {devices[0]: 1, devices[1]: 1, F1_DEVICE: 12}
    users = store.entity_users("template_id", [np.int32(8)])
    assert set(users["account_id"]) == set(ids.f1)
    assert users["requests"].sum() == (requests["template_id"] == 8).sum()


def test_reads_refuse_columns_outside_the_allow_list(farm_store):
    store, _ = farm_store
    with pytest.raises(ValueError, match="column must be one of"):
        store.accounts_sharing("account_id; drop table accounts", ["x"])
    with pytest.raises(ValueError, match="column must be one of"):
        store.entity_usage("prompt", ["x"])


def test_accounts_sharing_and_account_rows(farm_store):
    store, ids = farm_store
    sharing = store.accounts_sharing("payment_fingerprint", [F1_CARD, "card-farm-C", "none"])
    assert sharing.groupby("value").size().to_dict() == {F1_CARD: 8, "card-farm-C": 6}
    rows = store.account_rows(ids.legit[:3] + ["missing"])
    assert rows["account_id"].tolist() == sorted(ids.legit[:3])


def test_prompt_examples_of_templates_take_the_earliest(farm_store):
    store, ids = farm_store
    got = store.prompt_examples(template_ids=[3, 7], per_template=2)
    requests = build_requests(ids)
    oracle = (
        requests[requests["template_id"].isin([3, 7])]
        .sort_values(["ts", "request_id"])
        .groupby("template_id")
        .head(2)
    )
    assert sorted(got["request_id"]) == sorted(oracle["request_id"])
    with pytest.raises(ValueError, match="account_ids, template_ids"):
        store.prompt_examples()


@pytest.mark.parametrize("seed", range(3))
def test_threshold_sweep_matches_sklearn_confusion(seed):
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    rng = np.random.default_rng(seed)
    n = 300
    truth = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "role": rng.choice(["farm", "lookalike", "legit"], n, p=[0.2, 0.1, 0.7]),
        }
    )
    scored = truth.sample(frac=0.8, random_state=seed)
    scores = pd.DataFrame(
        {
            "account_id": scored["account_id"],
            "score": np.where(
                scored["role"] == "farm", rng.beta(5, 2, len(scored)), rng.beta(2, 5, len(scored))
            ).round(2),
        }
    )
    sweep = threshold_sweep(scores, truth).set_index("threshold")
    full = truth["account_id"].map(scores.set_index("account_id")["score"]).fillna(0.0)
    actual = truth["role"] == "farm"
    for threshold in (0.0, 0.3, 0.5, 0.77, 1.0):
        flagged = full >= threshold
        tn, fp, fn, tp = confusion_matrix(actual, flagged, labels=[False, True]).ravel()
        row = sweep.loc[threshold]
        assert (row.tp, row.fp, row.fn, row.tn) == (tp, fp, fn, tn)
        assert row.recall == pytest.approx(recall_score(actual, flagged))
        if flagged.any():
            assert row.precision == pytest.approx(precision_score(actual, flagged))
        assert row.flagged_lookalike == (flagged & (truth["role"] == "lookalike")).sum()
    assert sweep["recall"].is_monotonic_decreasing


def test_draw_farm_always_shows_the_highlighted_account(farm_store):
    store, _ = farm_store
    farm = load_run(store).farm("F1")
    fig, ax = plt.subplots()
    draw_farm(farm, ax, max_accounts=3, highlight="farm1-11")
    ringed = [c for c in ax.collections if len(c.get_offsets()) == 1 and c.get_linewidths()[0] == 2]
    assert len(ringed) == 1
    assert "showing 3 accounts" in ax.get_title()
    plt.close(fig)


def test_timings_mark_sub_stages_of_their_stage(store):
    write_farm_run(store)
    view = load_run(store)
    view.run["timings"] = {"read": 1.0, "detect": 3.0, "detect.graph": 2.0, "x.y": 0.5}
    timings = view.timings().set_index("stage")
    assert timings["part_of"].isna().to_dict() == {
        "read": True,
        "detect": True,
        "detect.graph": False,
        "x.y": True,
    }
    assert timings.loc["detect.graph", "part_of"] == "detect"
    assert timings.loc["detect.graph", "seconds"] == 2.0
