"""API keys: parsing, the route-by-route auth matrix, insecure dev mode, keys made at run time."""

from __future__ import annotations

import logging

import pytest
from api_support import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEYS,
    GATEWAY_KEY,
    auth,
    in_process_app,
    settings_for,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import KeyConfigError, KeyRing, hash_key, parse_api_keys
from sentra_graph.config import ConfigError

# Every operation of the OpenAPI document and the scope it needs (None: no key needed). A new
# route fails test_every_route_is_in_the_matrix until it is added here.
REQUIRED: dict[tuple[str, str], str | None] = {
    ("GET", "/v1/accounts/{account_id}/risk"): "gateway",
    ("POST", "/v1/accounts/risk"): "gateway",
    ("GET", "/v1/gateway/check"): "gateway",
    ("GET", "/v1/clusters"): "analyst",
    ("GET", "/v1/clusters/{cluster_id}"): "analyst",
    ("GET", "/v1/banlist"): "analyst",
    ("POST", "/v1/feedback"): "analyst",
    ("GET", "/v1/allowlist"): "analyst",
    ("POST", "/v1/allowlist"): "analyst",
    ("DELETE", "/v1/allowlist"): "analyst",
    ("POST", "/v1/runs"): "admin",
    ("GET", "/v1/runs"): "admin",
    ("GET", "/v1/runs/jobs/{job_id}"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("POST", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key_id}"): "admin",
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
}
SAMPLE_PATH = {
    "{account_id}": "a1",
    "{cluster_id}": "F-1",
    "{job_id}": "1",
    "{key_id}": "0" * 64,
}
KEY_SCOPES = {GATEWAY_KEY: "gateway", ANALYST_KEY: "analyst", ADMIN_KEY: "admin"}
PROTECTED = [op for op, scope in REQUIRED.items() if scope]


def concrete(path: str) -> str:
    for template, value in SAMPLE_PATH.items():
        path = path.replace(template, value)
    return path


def call(client: TestClient, op: tuple[str, str], headers: dict[str, str]) -> int:
    method, path = op
    return client.request(method, concrete(path), headers=headers).status_code


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    documented = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    assert documented == set(REQUIRED)


@pytest.mark.parametrize("op", PROTECTED, ids=" ".join)
def test_without_or_with_a_wrong_key_is_401(client: TestClient, op: tuple[str, str]) -> None:
    for headers in (
        {},
        auth("not-a-key"),
        {"Authorization": f"Basic {GATEWAY_KEY}"},
        {"Authorization": "Bearer"},
        auth(hash_key(ADMIN_KEY)),  # the digest itself is not a key
    ):
        method, path = op
        response = client.request(method, concrete(path), headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("op", PROTECTED, ids=" ".join)
def test_scopes(client: TestClient, op: tuple[str, str]) -> None:
    needed = REQUIRED[op]
    for key, scope in KEY_SCOPES.items():
        status = call(client, op, auth(key))
        if scope == needed or scope == "admin":
            assert status not in (401, 403), (key, status)
        else:
            assert status == 403, (key, status)


@pytest.mark.parametrize("op", [op for op, scope in REQUIRED.items() if not scope])
def test_operations_endpoints_need_no_key(client: TestClient, op: tuple[str, str]) -> None:
    assert call(client, op, {}) == 200


def test_the_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    json_type = {"Content-Type": "application/json"}
    refused = client.post("/v1/accounts/risk", content=b"{not json", headers=json_type)
    admitted = client.post(
        "/v1/accounts/risk", content=b"{not json", headers={**json_type, **auth(GATEWAY_KEY)}
    )
    assert (refused.status_code, admitted.status_code) == (401, 422)


def test_keys_are_never_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for key in (GATEWAY_KEY, ANALYST_KEY, ADMIN_KEY, "wrong-key-value"):
            client.get("/v1/accounts/a1/risk", headers=auth(key))
            client.get("/v1/clusters", headers=auth(key))
        created = client.post("/v1/keys", json={"scopes": ["gateway"]}, headers=auth(ADMIN_KEY))
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (GATEWAY_KEY, ANALYST_KEY, ADMIN_KEY, "wrong-key-value", created.json()["key"]):
        assert secret not in text


# ---- parsing SENTRA_API_KEYS ------------------------------------------------------------------


def test_parse_plain_and_hashed_keys() -> None:
    keys = parse_api_keys(f" one:gateway , sha256:{hash_key('two').upper()}:analyst+admin ,")
    assert keys == {
        hash_key("one"): frozenset({"gateway"}),
        hash_key("two"): frozenset({"analyst", "admin"}),
    }
    ring = KeyRing(keys)
    one, two = ring.authenticate("one"), ring.authenticate("two")
    assert one is not None and two is not None
    assert two.allows("gateway")  # admin implies every scope
    assert not one.allows("analyst")
    assert ring.authenticate("three") is None


def test_a_key_may_contain_colons() -> None:
    assert parse_api_keys("a:b:c:gateway") == {hash_key("a:b:c"): frozenset({"gateway"})}


@pytest.mark.parametrize(
    "text",
    [
        "topsecret-value",
        "topsecret-value:",
        "topsecret-value:superuser",
        "topsecret-value:gateway+root",
        ":gateway",
        "sha256:topsecret-value:gateway",
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(KeyConfigError) as error:
        parse_api_keys(text)
    assert "SENTRA_API_KEYS entry 1" in str(error.value)
    assert "topsecret" not in str(error.value)


def test_the_server_refuses_to_start_without_keys(db_url: str) -> None:
    with pytest.raises(ConfigError, match="SENTRA_API_KEYS is empty.*--insecure-dev"):
        create_app(settings_for(db_url, api_keys=""))
    with pytest.raises(ConfigError, match="SENTRA_API_KEYS entry 4"):
        create_app(settings_for(db_url, api_keys=f"{API_KEYS},bad"))


def test_insecure_dev_mode_is_open_and_says_so(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = in_process_app(settings_for(db_url, api_keys=""), insecure_dev=True)
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        lookup = client.get("/v1/accounts/a1/risk")
        keys = client.get("/v1/keys")
        health = client.get("/healthz")
    assert "INSECURE DEV MODE" in caplog.text
    assert keys.status_code == 200
    for response in (lookup, keys, health):
        assert "x-sentra-insecure-dev" in response.headers


def test_insecure_dev_flag_does_not_open_a_server_that_has_keys(db_url: str) -> None:
    app = in_process_app(settings_for(db_url), insecure_dev=True)
    with TestClient(app) as client:
        response = client.get("/v1/clusters")
    assert response.status_code == 401
    assert "x-sentra-insecure-dev" not in response.headers


# ---- keys made at run time ----------------------------------------------------------------------


def test_created_key_works_for_its_scopes_until_deleted(client: TestClient) -> None:
    created = client.post(
        "/v1/keys", json={"scopes": ["analyst"], "note": "ops laptop"}, headers=auth(ADMIN_KEY)
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key_id"] == hash_key(body["key"])
    assert (body["scopes"], body["note"], body["source"]) == (["analyst"], "ops laptop", "store")
    new_key = body["key"]
    assert client.get("/v1/clusters", headers=auth(new_key)).status_code == 200
    assert client.get("/v1/accounts/a1/risk", headers=auth(new_key)).status_code == 403
    listed = client.get("/v1/keys", headers=auth(ADMIN_KEY)).json()["keys"]
    assert {k["key_id"]: k["source"] for k in listed}[body["key_id"]] == "store"
    assert all("key" not in k for k in listed)

    deleted = client.delete(f"/v1/keys/{body['key_id']}", headers=auth(ADMIN_KEY))
    assert deleted.status_code == 204
    assert client.get("/v1/clusters", headers=auth(new_key)).status_code == 401
    again = client.delete(f"/v1/keys/{body['key_id']}", headers=auth(ADMIN_KEY))
    assert again.status_code == 404


def test_configured_keys_cannot_be_deleted_over_http(client: TestClient) -> None:
    response = client.delete(f"/v1/keys/{hash_key(GATEWAY_KEY)}", headers=auth(ADMIN_KEY))
    assert response.status_code == 409
    assert client.get("/v1/accounts/a1/risk", headers=auth(GATEWAY_KEY)).status_code == 200


def test_a_key_stored_by_another_server_is_admitted_after_a_poll(
    client: TestClient, app: FastAPI
) -> None:
    state = app.state.api
    state.store.add_api_key(hash_key("from-elsewhere"), "gateway", None)
    client.portal.call(state.refresh)  # type: ignore[union-attr]
    assert client.get("/v1/accounts/a1/risk", headers=auth("from-elsewhere")).status_code == 200
