"""Analyst routes: feedback, allow-lists, clusters of a chosen run."""

from __future__ import annotations

from api_support import ANALYST_KEY, RUN1, auth
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import hash_key


def test_feedback_is_stored_with_the_key_as_author(client: TestClient, app: FastAPI) -> None:
    response = client.post(
        "/v1/feedback",
        json={"account_id": "a2", "label": "legit", "note": "known university lab"},
        headers=auth(ANALYST_KEY),
    )
    assert response.status_code == 201
    body = response.json()
    author = f"key:{hash_key(ANALYST_KEY)[:12]}"
    assert (body["account_id"], body["label"], body["author"]) == ("a2", "legit", author)
    labels = app.state.api.store.feedback_labels()
    row = labels[labels["account_id"] == "a2"].iloc[0]
    assert (row["label"], row["note"], row["author"]) == ("legit", "known university lab", author)


def test_feedback_refuses_unknown_labels(client: TestClient) -> None:
    for body in (
        {"account_id": "a2", "label": "spam"},
        {"account_id": "", "label": "farm"},
        {"account_id": "a2", "label": "farm", "extra": 1},
    ):
        assert client.post("/v1/feedback", json=body, headers=auth(ANALYST_KEY)).status_code == 422


def test_allowlist_add_list_remove(client: TestClient) -> None:
    headers = auth(ANALYST_KEY)
    added = client.post(
        "/v1/allowlist", json={"kind": "ip", "value": " 2001:DB8::0:1 ", "note": "office"},
        headers=headers,
    )  # fmt: skip
    assert added.status_code == 201
    assert (added.json()["value"], added.json()["note"]) == ("2001:db8::1", "office")
    assert added.json()["created_at"] is not None
    client.post("/v1/allowlist", json={"kind": "org", "value": "org-7"}, headers=headers)
    client.post("/v1/allowlist", json={"kind": "ip", "value": "10.1.2.3/8"}, headers=headers)
    entries = client.get("/v1/allowlist", headers=headers).json()["entries"]
    assert {(e["kind"], e["value"]) for e in entries} == {
        ("ip", "2001:db8::1"),
        ("ip", "10.0.0.0/8"),
        ("org", "org-7"),
    }
    removed = client.delete(
        "/v1/allowlist", params={"kind": "ip", "value": "2001:db8:0::1"}, headers=headers
    )
    assert removed.status_code == 204
    again = client.delete(
        "/v1/allowlist", params={"kind": "ip", "value": "2001:db8::1"}, headers=headers
    )
    assert again.status_code == 404
    remaining = client.get("/v1/allowlist", headers=headers).json()["entries"]
    assert len(remaining) == 2


def test_allowlist_refuses_a_malformed_ip(client: TestClient) -> None:
    headers = auth(ANALYST_KEY)
    bad = client.post("/v1/allowlist", json={"kind": "ip", "value": "10.0.0.300"}, headers=headers)
    assert bad.status_code == 422
    gone = client.delete("/v1/allowlist", params={"kind": "ip", "value": "x"}, headers=headers)
    assert gone.status_code == 422
    kind = client.post("/v1/allowlist", json={"kind": "asn", "value": "1"}, headers=headers)
    assert kind.status_code == 422


def test_clusters_filter_page_and_pick_a_run(client: TestClient) -> None:
    headers = auth(ANALYST_KEY)
    blocked = client.get("/v1/clusters", params={"min_decision": "block"}, headers=headers)
    assert [c["cluster_id"] for c in blocked.json()["clusters"]] == ["F-1"]
    paged = client.get("/v1/clusters", params={"offset": 1}, headers=headers).json()
    assert (paged["total"], paged["clusters"]) == (1, [])
    chosen = client.get("/v1/clusters/F-1", params={"run_id": RUN1}, headers=headers)
    assert chosen.json()["run_id"] == RUN1
    other = client.get("/v1/clusters", params={"run_id": "no-such-run"}, headers=headers)
    assert other.json() == {"run_id": "no-such-run", "total": 0, "clusters": []}
