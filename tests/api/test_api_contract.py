"""Contract 2.3 against a real server process (uvicorn on a free port, SQLite store)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from api_support import (
    ADMIN_KEY,
    ANALYST_KEY,
    GATEWAY_KEY,
    RUN1,
    RUN1_DECISIONS,
    RUN1_EVIDENCE,
    LiveServer,
    auth,
    start_server,
)

from api.schemas import MAX_BATCH, MAX_ID_LENGTH
from sentra_graph.store import open_store

RISK_KEYS = [
    "account_id", "known", "score", "decision", "cluster_id", "reasons", "run_id", "scored_at",
]  # fmt: skip


def test_single_lookup_answers_served_decisions(live_server: LiveServer) -> None:
    with live_server.client() as http:
        for account_id, score, decision, cluster_id, reasons in RUN1_DECISIONS:
            response = http.get(f"/v1/accounts/{account_id}/risk", headers=auth(GATEWAY_KEY))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert list(body) == RISK_KEYS
            assert body["known"] is True
            assert (body["score"], body["decision"], body["cluster_id"]) == (
                score,
                decision,
                cluster_id,
            )
            assert body["reasons"] == reasons
            assert body["run_id"] == RUN1
            assert body["scored_at"].endswith("Z")


def test_unknown_and_unscored_accounts_are_allowed(live_server: LiveServer) -> None:
    with live_server.client() as http:
        unscored = http.get("/v1/accounts/a4/risk", headers=auth(GATEWAY_KEY)).json()
        unknown = http.get("/v1/accounts/never-seen/risk", headers=auth(GATEWAY_KEY)).json()
    for body, known in ((unscored, True), (unknown, False)):
        assert list(body) == RISK_KEYS
        assert body["known"] is known
        assert (body["score"], body["decision"], body["cluster_id"]) == (0, "allow", None)
        assert body["reasons"] == []


def test_batch_keeps_order_and_matches_single_lookups(live_server: LiveServer) -> None:
    ids = ["a3", "nobody", "a1", "a4", "a2", "a1"]
    with live_server.client() as http:
        response = http.post(
            "/v1/accounts/risk", json={"account_ids": ids}, headers=auth(GATEWAY_KEY)
        )
        assert response.status_code == 200
        results = response.json()["results"]
        singles = [
            http.get(f"/v1/accounts/{a}/risk", headers=auth(GATEWAY_KEY)).json() for a in ids
        ]
    assert [r["account_id"] for r in results] == ids
    assert results == singles


def test_batch_accepts_up_to_the_limit_and_refuses_beyond(live_server: LiveServer) -> None:
    ids = [f"acct-{i}" for i in range(MAX_BATCH)]
    with live_server.client() as http:
        full = http.post("/v1/accounts/risk", json={"account_ids": ids}, headers=auth(GATEWAY_KEY))
        over = http.post(
            "/v1/accounts/risk",
            json={"account_ids": [*ids, "one-more"]},
            headers=auth(GATEWAY_KEY),
        )
    assert full.status_code == 200
    assert [r["account_id"] for r in full.json()["results"]] == ids
    assert over.status_code == 422


def test_clusters_list_and_detail(live_server: LiveServer) -> None:
    with live_server.client() as http:
        listing = http.get("/v1/clusters", headers=auth(ANALYST_KEY)).json()
        detail = http.get("/v1/clusters/F-1", headers=auth(ANALYST_KEY)).json()
        missing = http.get("/v1/clusters/F-404", headers=auth(ANALYST_KEY))
    assert listing["run_id"] == RUN1
    assert listing["total"] == 1
    (farm,) = listing["clusters"]
    assert (farm["cluster_id"], farm["size"], farm["score"]) == ("F-1", 2, 0.93)
    assert farm["evidence"] == RUN1_EVIDENCE
    assert detail["evidence"] == RUN1_EVIDENCE
    members = {m["account_id"]: m for m in detail["members"]}
    assert set(members) == {"a1", "a2"}
    assert (members["a1"]["decision"], members["a2"]["decision"]) == ("block", "review")
    assert missing.status_code == 404


def test_banlist_csv_and_json(live_server: LiveServer) -> None:
    with live_server.client() as http:
        blocked = http.get("/v1/banlist", headers=auth(ANALYST_KEY))
        reviewed = http.get(
            "/v1/banlist",
            params={"format": "json", "min_decision": "review"},
            headers=auth(ANALYST_KEY),
        )
        bad = http.get("/v1/banlist", params={"format": "xml"}, headers=auth(ANALYST_KEY))
    assert blocked.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(blocked.text)))
    assert rows[0] == ["account_id", "decision", "score", "cluster_id", "reasons"]
    assert [row[:2] for row in rows[1:]] == [["a1", "block"]]
    assert rows[1][4] == "; ".join(RUN1_DECISIONS[0][4])
    listed = json.loads(reviewed.text)
    assert [(r["account_id"], r["decision"]) for r in listed] == [
        ("a1", "block"),
        ("a2", "review"),
    ]
    assert bad.status_code == 422


def test_healthz_needs_no_key_and_names_the_served_run(live_server: LiveServer) -> None:
    published = open_store(live_server.db_url).latest_published_run()
    with live_server.client() as http:
        body = http.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["run_id"] == RUN1
    assert published is not None
    assert body["published_at"].replace("Z", "+00:00") == published["published_at"].isoformat()


def test_healthz_before_the_first_run_has_nulls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).init()
    server = start_server(url, tmp_path / "server.log")
    try:
        with server.client() as http:
            health = http.get("/healthz").json()
            lookup = http.get("/v1/accounts/a1/risk", headers=auth(GATEWAY_KEY)).json()
            clusters = http.get("/v1/clusters", headers=auth(ADMIN_KEY)).json()
    finally:
        assert server.stop() == 0
    assert (health["status"], health["run_id"], health["published_at"]) == ("ok", None, None)
    assert (lookup["decision"], lookup["known"]) == ("allow", False)
    assert clusters == {"run_id": None, "total": 0, "clusters": []}


@pytest.mark.parametrize("account_id", ["a1", "a2", "a3", "unknown-1"])
def test_gateway_check(live_server: LiveServer, account_id: str) -> None:
    expected = {d[0]: d for d in RUN1_DECISIONS}.get(account_id)
    decision = expected[2] if expected else "allow"
    with live_server.client() as http:
        response = http.get(
            "/v1/gateway/check", headers={**auth(GATEWAY_KEY), "X-Account-Id": account_id}
        )
    assert response.status_code == (403 if decision == "block" else 200)
    assert response.headers["X-Sentra-Decision"] == decision
    assert float(response.headers["X-Sentra-Score"]) == (expected[1] if expected else 0.0)


def test_gateway_check_without_the_header_is_a_bad_request(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert http.get("/v1/gateway/check", headers=auth(GATEWAY_KEY)).status_code == 400


def test_overlong_account_ids_are_refused(live_server: LiveServer) -> None:
    long_id = "x" * (MAX_ID_LENGTH + 1)
    with live_server.client() as http:
        single = http.get(f"/v1/accounts/{long_id}/risk", headers=auth(GATEWAY_KEY))
        batch = http.post(
            "/v1/accounts/risk", json={"account_ids": ["a1", long_id]}, headers=auth(GATEWAY_KEY)
        )
        fits = http.get(f"/v1/accounts/{long_id[:-1]}/risk", headers=auth(GATEWAY_KEY))
    assert single.status_code == batch.status_code == 422
    assert single.json()["detail"][0]["loc"] == ["path", "account_id"]
    assert batch.json()["detail"][0]["loc"] == ["account_ids", 1]
    assert fits.status_code == 200
