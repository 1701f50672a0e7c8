"""Fixtures for the HTTP API: a store with a published run, the app in-process, a real server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    ACCOUNTS,
    RUN1,
    RUN1_DECISIONS,
    RUN1_EVIDENCE,
    LiveServer,
    add_accounts,
    in_process_app,
    publish,
    settings_for,
    start_server,
    wait_ready,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sentra_graph.store import open_store


def published_store(path: Path) -> str:
    """A SQLite store at ``path`` with accounts a1..a4 and run r1 published; its URL."""
    url = f"sqlite:///{path}"
    store = open_store(url)
    store.init()
    add_accounts(store, ACCOUNTS)
    publish(store, RUN1, RUN1_DECISIONS, RUN1_EVIDENCE)
    store.dispose()
    return url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return published_store(tmp_path / "api.db")


@pytest.fixture
def app(db_url: str) -> FastAPI:
    """The app in-process; snapshots load in a thread (the real server tests use a process),
    and the test process's heap is not frozen (the real servers' is)."""
    return in_process_app(
        settings_for(db_url), run_command=[sys.executable, "-c", "print('run done')"]
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in-process (lifespan running), once its first snapshot is loaded."""
    with TestClient(app) as test_client:
        wait_ready(test_client.get)
        yield test_client


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server over a store with r1 published, shared by a module's read-only tests."""
    tmp_path = tmp_path_factory.mktemp("live")
    server = start_server(published_store(tmp_path / "api.db"), tmp_path / "server.log")
    yield server
    assert server.stop() == 0, server.log_path.read_text()
