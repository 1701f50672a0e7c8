"""One detection run end to end, on both backends: publish, failure half-way, locking."""

from __future__ import annotations

import pandas as pd
import pytest

from sentra_graph import pipeline
from sentra_graph.config import load_settings
from sentra_graph.ingest import ingest_frame
from sentra_graph.params import EngineParams
from sentra_graph.pipeline import RunAlreadyInProgress, run_detection
from sentra_graph.store import RUN_FAILED, Store
from sentra_graph.synth import Scenario, generate


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(n_accounts=600, seed=3, requests_per_account=20)


def _load(store: Store, scenario: Scenario) -> None:
    ingest_frame(store, "accounts", scenario.accounts)
    ingest_frame(store, "requests", scenario.requests)


def _settings(store: Store):  # type: ignore[no-untyped-def]
    return load_settings(database_url=store.engine.url.render_as_string(hide_password=False))


def test_run_scores_the_window_and_publishes(store: Store, scenario: Scenario) -> None:
    _load(store, scenario)
    stages: list[str] = []
    summary = run_detection(store, _settings(store), progress=stages.append)
    assert {"templates", "read", "detect", "write", "publish"} <= set(stages)
    published = store.latest_published_run()
    assert published is not None and published["run_id"] == summary.run_id
    assert set(summary.timings) >= {"templates", "read", "detect", "write", "publish"}
    current = store.current_decisions()
    window_accounts = set(scenario.requests["account_id"]) | set(
        scenario.accounts.loc[scenario.accounts["created_at"] >= summary.window_start, "account_id"]
    )
    assert set(current["account_id"]) == window_accounts
    assert current["decision"].isin(["allow", "review", "block"]).all()
    assert current["score"].between(0, 1).all()
    blocked = current[current["decision"] == "block"]
    assert blocked["reasons"].map(len).gt(0).all()
    assert blocked["cluster_id"].notna().all()
    # every request was given its template exactly once
    assert store.count_pending_prompts(summary.window_start, summary.window_end) == 0


def test_farm_ids_are_stable_across_runs(store: Store, scenario: Scenario) -> None:
    _load(store, scenario)
    first = run_detection(store, _settings(store))
    second = run_detection(store, _settings(store))
    a = store.run_memberships(first.run_id).set_index("account_id")["cluster_id"]
    b = store.run_memberships(second.run_id).set_index("account_id")["cluster_id"]
    common = a.index.intersection(b.index)
    assert len(common) > 0
    assert (a[common] == b[common]).mean() >= 0.95


def test_a_run_failing_half_way_leaves_the_previous_run_served(
    store: Store, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(store, scenario)
    good = run_detection(store, _settings(store))
    before = store.current_decisions().set_index("account_id")[["decision", "run_id"]]

    real_write = store.write_results

    def write_then_crash(run_id, clusters, memberships, decisions):  # type: ignore[no-untyped-def]
        flipped = decisions.assign(decision="allow", score=0.0)
        real_write(run_id, clusters, memberships, flipped)
        raise OSError("disk full after writing results")

    monkeypatch.setattr(store, "write_results", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        run_detection(store, _settings(store))
    assert store.latest_published_run()["run_id"] == good.run_id
    failed = store.list_runs().iloc[0]
    assert failed["status"] == RUN_FAILED and "disk full" in failed["error"]
    after = store.current_decisions().set_index("account_id")[["decision", "run_id"]]
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_detect_crash_is_recorded(
    store: Store, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(store, scenario)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("bad window")

    monkeypatch.setattr(pipeline, "detect", broken)
    with pytest.raises(ValueError):
        run_detection(store, _settings(store))
    assert store.latest_published_run() is None
    assert "bad window" in store.list_runs().iloc[0]["error"]


def test_runs_never_overlap(store: Store, scenario: Scenario) -> None:
    _load(store, scenario)
    with store.run_lock(pipeline.RUN_LOCK) as acquired:
        assert acquired
        with pytest.raises(RunAlreadyInProgress):
            run_detection(store, _settings(store))
    assert store.latest_published_run() is None


def test_templates_filled_in_the_window_are_the_stored_ones(
    store: Store, scenario: Scenario
) -> None:
    _load(store, scenario)
    start, end = pipeline.resolve_window(store, 7, scenario.window_end)
    _, window = store.read_window(start, end)
    assert window["template_id"].isna().all()
    assigned = pipeline.assign_templates(store, window, start, end, EngineParams())
    assert assigned == len(window)
    _, stored = store.read_window(start, end)
    filled = window.set_index("request_id")["template_id"]
    pd.testing.assert_series_equal(
        filled.sort_index(), stored.set_index("request_id")["template_id"].sort_index()
    )
    assert store.count_pending_prompts(start, end) == 0
    assert pipeline.assign_templates(store, stored, start, end, EngineParams()) == 0


def test_the_next_run_assigns_new_and_late_requests_and_keeps_the_rest(
    store: Store, scenario: Scenario
) -> None:
    requests = scenario.requests
    later = requests["ts"] >= requests["ts"].quantile(0.9)
    late = requests[~later].sample(40, random_state=0)  # older requests that arrive late
    first = requests[~later].drop(late.index)
    ingest_frame(store, "accounts", scenario.accounts)
    ingest_frame(store, "requests", first)
    summary = run_detection(store, _settings(store), window_end=scenario.window_end)
    _, window = store.read_window(summary.window_start, summary.window_end)
    before = window.set_index("request_id")["template_id"]
    assert before.notna().all()

    ingest_frame(store, "requests", pd.concat([requests[later], late]))
    again = run_detection(store, _settings(store), window_end=scenario.window_end)
    assert store.count_pending_prompts(again.window_start, again.window_end) == 0
    _, window = store.read_window(again.window_start, again.window_end)
    after = window.set_index("request_id")["template_id"]
    assert after.notna().all() and len(after) == len(before) + later.sum() + len(late)
    pd.testing.assert_series_equal(after[before.index], before)
