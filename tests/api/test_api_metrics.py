"""Prometheus metrics: per-route counts and latencies, the served run, decisions by kind."""

from __future__ import annotations

from api_support import ANALYST_KEY, GATEWAY_KEY, RUN1, auth
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_and_timed_per_route_template(client: TestClient) -> None:
    for account_id in ("a1", "a2", "a3", "nobody"):
        client.get(f"/v1/accounts/{account_id}/risk", headers=auth(GATEWAY_KEY))
    client.get("/v1/accounts/a1/risk")
    client.get("/no/such/path")
    got = samples(client)
    route = "/v1/accounts/{account_id}/risk"
    ok = (("method", "GET"), ("route", route), ("status", "200"))
    denied = (("method", "GET"), ("route", route), ("status", "401"))
    assert got[("sentra_http_requests_total", ok)] == 4
    assert got[("sentra_http_requests_total", denied)] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert got[("sentra_http_requests_total", unmatched)] == 1
    timing = (("method", "GET"), ("route", route))
    assert got[("sentra_http_request_duration_seconds_count", timing)] == 5
    assert 0 < got[("sentra_http_request_duration_seconds_sum", timing)] < 5


def test_decisions_served_and_answered_by_kind(client: TestClient) -> None:
    client.post(
        "/v1/accounts/risk",
        json={"account_ids": ["a1", "a1", "a2", "x", "y"]},
        headers=auth(GATEWAY_KEY),
    )
    client.get("/v1/gateway/check", headers={**auth(GATEWAY_KEY), "X-Account-Id": "a1"})
    client.get("/v1/clusters", headers=auth(ANALYST_KEY))
    got = samples(client)
    answered = {
        d: got[("sentra_lookup_decisions_total", (("decision", d),))]
        for d in ("allow", "review", "block")
    }
    assert answered == {"allow": 2, "review": 1, "block": 3}
    served = {d: got[("sentra_served_decisions", (("decision", d),))] for d in answered}
    assert served == {"allow": 1, "review": 1, "block": 1}
    assert got[("sentra_published_run_info", (("run_id", RUN1),))] == 1
    assert 0 <= got[("sentra_published_run_age_seconds", ())] < 600
    assert got[("sentra_known_accounts", ())] == 4
    assert got[("sentra_snapshot_loaded", ())] == 1
