"""Admin runs: each in its own process, one at a time, tracked in the job history."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from api_support import ADMIN_KEY, auth, in_process_app, settings_for, wait_ready
from fastapi.testclient import TestClient

from api.runs import RUN_JOB, RUN_LOCK
from sentra_graph.store import open_store

SLOW_RUN = [sys.executable, "-c", "import os, time; print(os.getpid()); time.sleep(1.5)"]
FAILING_RUN = [sys.executable, "-c", "import sys; sys.exit('the window is empty')"]


@contextmanager
def serving(db_url: str, command: list[str] | None) -> Iterator[TestClient]:
    """The app in-process, starting ``command`` for each run (None: the real one)."""
    app = in_process_app(settings_for(db_url), run_command=command)
    with TestClient(app) as client:
        wait_ready(client.get)
        yield client


def _wait_job(client: TestClient, href: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(href, headers=auth(ADMIN_KEY)).json()
        if job["status"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {href} still running after {timeout} s")


def test_a_run_starts_in_its_own_process_and_only_one_at_a_time(db_url: str) -> None:
    with serving(db_url, SLOW_RUN) as client:
        started = client.post("/v1/runs", headers=auth(ADMIN_KEY))
        assert started.status_code == 202
        ref = started.json()
        assert started.headers["Location"] == ref["href"] == f"/v1/runs/jobs/{ref['job_id']}"
        busy = client.post("/v1/runs", headers=auth(ADMIN_KEY))
        assert busy.status_code == 409
        assert "in progress" in busy.json()["detail"]
        assert client.get("/v1/accounts/a1/risk", headers=auth(ADMIN_KEY)).status_code == 200

        job = _wait_job(client, ref["href"])
        assert (job["status"], job["job"]) == ("succeeded", RUN_JOB)
        child_pid = int(job["details"]["output"])
        assert child_pid != os.getpid()
        listed = client.get("/v1/runs", headers=auth(ADMIN_KEY)).json()
        assert ref["job_id"] in [j["job_id"] for j in listed["jobs"]]
        assert client.post("/v1/runs", headers=auth(ADMIN_KEY)).status_code == 202


def test_a_failed_run_is_recorded_with_its_reason(db_url: str) -> None:
    with serving(db_url, FAILING_RUN) as client:
        ref = client.post("/v1/runs", headers=auth(ADMIN_KEY)).json()
        job = _wait_job(client, ref["href"])
    assert job["status"] == "failed"
    assert job["error"] == "the window is empty"
    assert job["details"]["returncode"] == 1


def test_a_run_holding_the_store_lock_elsewhere_is_a_conflict(db_url: str) -> None:
    store = open_store(db_url)
    with serving(db_url, SLOW_RUN) as client:
        with store.run_lock(RUN_LOCK) as acquired:
            assert acquired
            response = client.post("/v1/runs", headers=auth(ADMIN_KEY))
        assert response.status_code == 409
        assert "another process" in response.json()["detail"]
        history = client.get("/v1/runs", headers=auth(ADMIN_KEY)).json()["jobs"]
        assert history == []


def test_the_lock_name_is_the_pipelines() -> None:
    from sentra_graph.pipeline import RUN_LOCK as PIPELINE_RUN_LOCK

    assert RUN_LOCK == PIPELINE_RUN_LOCK


def test_stopping_the_server_stops_its_run(db_url: str) -> None:
    endless = [sys.executable, "-c", "import time; time.sleep(120)"]
    with serving(db_url, endless) as client:
        ref = client.post("/v1/runs", headers=auth(ADMIN_KEY)).json()
        stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 15
    history = open_store(db_url).job_history()
    job = history[history["job_run_id"] == ref["job_id"]].iloc[0]
    assert job["status"] == "failed"
    assert job["details"]["returncode"] < 0


@pytest.mark.slow
def test_the_default_command_runs_detection_on_the_servers_store(db_url: str) -> None:
    with serving(db_url, None) as client:
        ref = client.post("/v1/runs", headers=auth(ADMIN_KEY)).json()
        job = _wait_job(client, ref["href"], timeout=300)
        runs = client.get("/v1/runs", headers=auth(ADMIN_KEY)).json()["runs"]
    assert (job["status"] == "succeeded") == (job["details"]["returncode"] == 0)
    if job["status"] == "succeeded":
        assert len(runs) == 2 and runs[0]["status"] == "succeeded"
    else:
        assert job["error"]
