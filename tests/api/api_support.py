"""Helpers of the API tests: keys, a store with published runs, a real server process.

The store is filled through the store API (``start_run``, ``write_results``, ``publish_run``);
accounts are inserted into their table directly, as an ingest would leave them.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from fastapi import FastAPI

from api.app import create_app
from api.auth import hash_key
from sentra_graph.config import Settings, load_settings
from sentra_graph.store import Store
from sentra_graph.store import schema as t

REPO = Path(__file__).resolve().parents[2]

GATEWAY_KEY = "gw-test-key"
ANALYST_KEY = "an-test-key"
ADMIN_KEY = "ad-test-key"
# The admin key is configured by its digest, as an operator keeping secrets out of config would.
API_KEYS = f"{GATEWAY_KEY}:gateway,{ANALYST_KEY}:analyst,sha256:{hash_key(ADMIN_KEY)}:admin"
REFRESH_SECONDS = 0.5

WINDOW = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 8, tzinfo=dt.UTC))

# The first published run: a1 and a2 form farm F-1; a3 is scored allow; a4 is known, unscored.
ACCOUNTS = ["a1", "a2", "a3", "a4"]
RUN1 = "r1-first"
RUN1_DECISIONS = [
    ("a1", 0.93, "block", "F-1", ["shares a payment card with 1 account", "burst sign-up"]),
    ("a2", 0.62, "review", "F-1", ["shares a payment card with 1 account"]),
    ("a3", 0.05, "allow", None, []),
]
RUN1_EVIDENCE = {"payment_fingerprints": ["card-9"], "ips": ["203.0.113.7"], "templates": [3]}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def add_accounts(store: Store, ids: list[str]) -> None:
    with store.begin() as conn:
        conn.execute(t.accounts.insert(), [{"account_id": a, "created_at": WINDOW[0]} for a in ids])


def publish(
    store: Store,
    run_id: str,
    decisions: list[tuple[str, float, str, str | None, list[str]]],
    evidence: dict | None = None,
) -> None:
    """Write and publish a run whose farms are the decisions' cluster ids."""
    frame = pd.DataFrame(
        decisions, columns=["account_id", "score", "decision", "cluster_id", "reasons"]
    )
    frame["evidence"] = None
    farmed = frame[frame["cluster_id"].notna()]
    clusters = pd.DataFrame(
        [
            {
                "cluster_id": cluster_id,
                "size": len(group),
                "score": float(group["score"].max()),
                "decision": group.sort_values("score")["decision"].iloc[-1],
                "reasons": ["accounts share a payment card"],
                "evidence": evidence,
            }
            for cluster_id, group in farmed.groupby("cluster_id")
        ],
        columns=["cluster_id", "size", "score", "decision", "reasons", "evidence"],
    )
    memberships = pd.DataFrame(
        {"account_id": farmed["account_id"], "cluster_id": farmed["cluster_id"], "strength": 0.8}
    )
    store.start_run(run_id, *WINDOW, params={})
    store.write_results(run_id, clusters, memberships, frame)
    store.publish_run(run_id, timings={"total": 1.0}, stats={}, expiry=dt.timedelta(days=30))


def in_process_app(settings: Settings, **options: Any) -> FastAPI:
    """The app for a test process: snapshots built in a thread, the heap left unfrozen."""
    return create_app(settings, isolate_loads=False, freeze_heap=False, **options)


def settings_for(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"api_keys": API_KEYS, "refresh_seconds": REFRESH_SECONDS}
    return load_settings(database_url=url, **{**values, **overrides})


def wait_ready(get: Callable[[str], httpx.Response], timeout: float = 20.0) -> None:
    """Poll ``/readyz`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the API was not ready within {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A real ``python -m api.server`` process on a free port."""

    process: subprocess.Popen[bytes]
    base_url: str
    db_url: str
    log_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)

    def stop(self) -> int:
        """SIGTERM, then the exit status (uvicorn shuts down cleanly)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def server_env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SENTRA_DATABASE_URL": url,
        "SENTRA_API_KEYS": API_KEYS,
        "SENTRA_REFRESH_SECONDS": str(REFRESH_SECONDS),
        **extra,
    }


def start_server(url: str, log_path: Path, *args: str, **env: str) -> LiveServer:
    """``python -m api.server`` on a free port, once ready; ``env`` adds SENTRA_* variables."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.server", "--port", str(port), *args],
            cwd=REPO,
            env=server_env(url, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", url, log_path)
    with server.client() as http:
        try:
            wait_ready(http.get)
        except AssertionError:
            server.stop()
            raise AssertionError(log_path.read_text()) from None
    return server
