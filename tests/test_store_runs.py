"""Run lifecycle on both backends: publish is atomic, unscored accounts keep their decision."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from sentra_graph.store import RUN_FAILED, RUN_SUCCEEDED, Store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


def _results(decisions: dict[str, tuple[float, str, str | None]]):
    frame = pd.DataFrame(
        [
            {
                "account_id": a,
                "score": s,
                "decision": d,
                "cluster_id": c,
                "reasons": [f"reason for {a}"],
                "evidence": None,
            }
            for a, (s, d, c) in decisions.items()
        ]
    )
    clusters = (
        frame.dropna(subset=["cluster_id"])
        .groupby("cluster_id")
        .agg(size=("account_id", "size"), score=("score", "max"))
        .reset_index()
    )
    clusters["decision"] = "block"
    clusters["reasons"] = [["shared card"] for _ in range(len(clusters))]
    clusters["evidence"] = [{"ips": []} for _ in range(len(clusters))]
    memberships = frame.dropna(subset=["cluster_id"])[["account_id", "cluster_id"]].assign(
        strength=1.0
    )
    return clusters, memberships, frame


def _publish(store: Store, run_id: str, decisions, expiry=dt.timedelta(days=30)) -> None:
    store.start_run(run_id, T0, T0 + WEEK, {"k": 1})
    store.write_results(run_id, *_results(decisions))
    store.publish_run(run_id, {"detect": 1.0}, {"accounts": len(decisions)}, expiry)


def test_publish_serves_decisions(store: Store) -> None:
    assert store.latest_published_run() is None
    _publish(store, "r1", {"a": (0.9, "block", "F-1"), "b": (0.1, "allow", None)})
    run = store.latest_published_run()
    assert run is not None and run["run_id"] == "r1" and run["status"] == RUN_SUCCEEDED
    assert run["published_at"].tzinfo is not None
    current = store.current_decisions().set_index("account_id")
    assert current.loc["a", "decision"] == "block"
    assert current.loc["a", "reasons"] == ["reason for a"]
    assert pd.isna(current.loc["b", "cluster_id"])
    assert list(store.current_decisions("block")["account_id"]) == ["a"]
    clusters = store.run_clusters("r1")
    assert clusters.loc[0, "evidence"] == {"ips": []}


def test_unscored_accounts_keep_their_last_decision(store: Store) -> None:
    _publish(store, "r1", {"a": (0.9, "block", "F-1"), "b": (0.6, "review", None)})
    _publish(store, "r2", {"b": (0.1, "allow", None), "c": (0.95, "block", "F-2")})
    current = store.current_decisions().set_index("account_id")
    assert current.loc["a", "run_id"] == "r1"  # not in r2's window: kept
    assert current.loc["b", "decision"] == "allow"  # rescored by r2
    assert set(current.index) == {"a", "b", "c"}


def test_expired_decisions_are_dropped(store: Store) -> None:
    _publish(store, "r1", {"a": (0.9, "block", "F-1")})
    _publish(store, "r2", {"c": (0.9, "block", "F-2")}, expiry=dt.timedelta(microseconds=1))
    assert set(store.current_decisions()["account_id"]) == {"c"}


def test_failed_run_is_recorded_and_not_served(store: Store) -> None:
    _publish(store, "r1", {"a": (0.9, "block", "F-1")})
    store.start_run("r2", T0, T0 + WEEK, {})
    store.write_results("r2", *_results({"a": (0.0, "allow", None)}))
    store.fail_run("r2", "RuntimeError: disk full")
    assert store.latest_published_run()["run_id"] == "r1"
    assert store.get_run("r2")["status"] == RUN_FAILED
    assert store.get_run("r2")["error"] == "RuntimeError: disk full"
    assert store.current_decisions().set_index("account_id").loc["a", "decision"] == "block"


def test_retention_keeps_newest_and_published(store: Store) -> None:
    for i in range(4):
        _publish(store, f"r{i}", {"a": (0.9, "block", "F-1")})
    removed = store.delete_runs_except(2)
    assert removed == 2
    assert set(store.list_runs()["run_id"]) == {"r2", "r3"}
    assert store.run_decisions("r0").empty


@pytest.mark.parametrize("label", ["farm", "legit"])
def test_feedback_latest_label_wins(store: Store, label: str) -> None:
    other = "legit" if label == "farm" else "farm"
    store.add_feedback("a", other)
    store.add_feedback("a", label, note="checked")
    labels = store.feedback_labels()
    assert labels.set_index("account_id").loc["a", "label"] == label
    with pytest.raises(ValueError, match="label"):
        store.add_feedback("a", "maybe")


def test_allowlist_round_trip(store: Store) -> None:
    store.add_allow("org", "acme")
    store.add_allow("org", "acme", note="again")
    store.add_allow("ip", "10.0.0.1")
    assert len(store.allowlist()) == 2
    assert store.remove_allow("org", "acme")
    assert not store.remove_allow("org", "acme")
    with pytest.raises(ValueError, match="kind"):
        store.add_allow("card", "x")
