"""Jobs and the scheduler: job history, the export webhook, firing, no overlap, clean stop."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.scheduler import MISFIRE_GRACE_SECONDS, build_scheduler
from jobs.tasks import DETECTION_JOB, EXPORT_JOB, detection_run_job, export_banlist_job
from sentra_graph.banlist import banlist_frame, render_banlist
from sentra_graph.config import ConfigError, Settings, load_settings
from sentra_graph.pipeline import RUN_LOCK, RunSummary, run_detection
from sentra_graph.store import Store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SECOND = 1 / 60  # settings count minutes


def _settings(store: Store, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": store.url,
        "export_path": str(tmp_path / "banlist.csv"),
    }
    return load_settings(**(values | overrides))


def _publish(store: Store, run_id: str, decisions: dict[str, str]) -> RunSummary:
    """A run scoring ``decisions`` (account -> decision), published like the pipeline does."""
    frame = pd.DataFrame(
        {
            "account_id": list(decisions),
            "score": [0.9 if d == "block" else 0.1 for d in decisions.values()],
            "decision": list(decisions.values()),
            "cluster_id": None,
            "reasons": [["shares a card"]] * len(decisions),
            "evidence": None,
        }
    )
    empty_clusters = pd.DataFrame(
        columns=["cluster_id", "size", "score", "decision", "reasons", "evidence"]
    )
    empty_memberships = pd.DataFrame(columns=["account_id", "cluster_id", "strength"])
    store.start_run(run_id, T0, T0 + dt.timedelta(days=7), {})
    store.write_results(run_id, empty_clusters, empty_memberships, frame)
    published = store.publish_run(run_id, {}, {}, dt.timedelta(days=30))
    counts = frame["decision"].value_counts()
    return RunSummary(run_id, "succeeded", published, T0, T0, len(frame), 0, counts.to_dict(), {})


def _history(store: Store, job: str) -> pd.DataFrame:
    frame = store.job_history(limit=1000)
    frame = frame[frame["job"] == job].sort_values("job_run_id").reset_index(drop=True)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


# ---- the scheduler's configuration ------------------------------------------------------


def test_jobs_are_registered_on_intervals(sqlite_store: Store, tmp_path: Path) -> None:
    settings = _settings(
        sqlite_store, tmp_path, run_interval_minutes=90, export_interval_minutes=0.5
    )
    jobs = {job.id: job for job in build_scheduler(settings).get_jobs()}
    assert set(jobs) == {DETECTION_JOB, EXPORT_JOB}
    assert isinstance(jobs[DETECTION_JOB].trigger, IntervalTrigger)
    assert jobs[DETECTION_JOB].trigger.interval == dt.timedelta(minutes=90)
    assert jobs[EXPORT_JOB].trigger.interval == dt.timedelta(seconds=30)
    for job in jobs.values():
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
        assert job.args == (settings,)
        assert job.next_run_time <= dt.datetime.now(dt.UTC)  # fires once at start


def test_cron_expressions_replace_intervals(sqlite_store: Store, tmp_path: Path) -> None:
    settings = _settings(sqlite_store, tmp_path, run_cron="0 */6 * * *", export_cron="*/5 * * * *")
    jobs = {job.id: job for job in build_scheduler(settings).get_jobs()}
    trigger = jobs[DETECTION_JOB].trigger
    assert isinstance(trigger, CronTrigger)
    after = dt.datetime(2026, 3, 1, 7, 31, tzinfo=dt.UTC)
    assert trigger.get_next_fire_time(None, after) == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert jobs[EXPORT_JOB].trigger.get_next_fire_time(None, after) == after.replace(minute=35)
    assert not hasattr(jobs[DETECTION_JOB], "next_run_time")  # waits for its first time


def test_a_wrong_cron_expression_names_the_setting(sqlite_store: Store, tmp_path: Path) -> None:
    settings = _settings(sqlite_store, tmp_path, export_cron="every five minutes")
    with pytest.raises(ConfigError, match="SENTRA_EXPORT_CRON.*'every five minutes'"):
        build_scheduler(settings)


# ---- the detection job --------------------------------------------------------------------


def test_detection_job_records_the_run_and_applies_retention(store: Store, tmp_path: Path) -> None:
    for number in range(3):
        _publish(store, f"old-{number}", {"a": "allow"})
    settings = _settings(store, tmp_path, retention_runs=2)
    status = detection_run_job(
        settings, run=lambda s, _: _publish(s, "new", {"a": "block", "b": "allow"})
    )
    assert status == "succeeded"
    [row] = _history(store, DETECTION_JOB).to_dict("records")
    assert row["status"] == "succeeded" and row["error"] is None
    assert row["started_at"] <= row["finished_at"]
    details = row["details"]
    assert details["run_id"] == "new" and details["pid"] == os.getpid()
    assert details["decisions"] == {"block": 1, "allow": 1}
    assert details["runs_deleted"] == 2
    assert len(store.list_runs()) == 2


def test_detection_job_records_a_failure_and_reraises(store: Store, tmp_path: Path) -> None:
    def broken(store: Store, settings: Settings) -> RunSummary:
        raise ValueError("bad window")

    with pytest.raises(ValueError, match="bad window"):
        detection_run_job(_settings(store, tmp_path), run=broken)
    [row] = _history(store, DETECTION_JOB).to_dict("records")
    assert row["status"] == "failed"
    assert row["error"] == "ValueError: bad window"
    assert row["finished_at"] >= row["started_at"]


def test_detection_job_is_skipped_while_a_run_holds_the_lock(store: Store, tmp_path: Path) -> None:
    with store.run_lock(RUN_LOCK) as acquired:
        assert acquired
        status = detection_run_job(_settings(store, tmp_path), run=run_detection)
    assert status == "skipped"
    [row] = _history(store, DETECTION_JOB).to_dict("records")
    assert row["status"] == "skipped" and pd.notna(row["finished_at"])
    assert "lock" in row["details"]["reason"]
    assert store.list_runs().empty


# ---- the export job -----------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records each POST; answers with the status its path names (e.g. ``/500``)."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(int(urlsplit(self.path).path.strip("/")))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """The base URL of a local webhook receiver, and what it received."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_job_writes_the_ban_list_and_posts_it(
    store: Store, tmp_path: Path, webhook: tuple[str, list], fmt: str
) -> None:
    _publish(store, "r1", {"a": "block", "b": "review", "c": "allow"})
    url, received = webhook
    path = tmp_path / f"out.{fmt}"
    settings = _settings(
        store,
        tmp_path,
        export_path=str(path),
        export_format=fmt,
        export_min_decision="review",
        export_webhook_url=f"{url}/204",
    )
    assert export_banlist_job(settings) == "succeeded"
    assert path.read_text() == render_banlist(banlist_frame(store, "review"), fmt)
    assert received == [
        (
            "/204",
            "text/csv; charset=utf-8" if fmt == "csv" else "application/json",
            path.read_bytes(),
        )
    ]
    [row] = _history(store, EXPORT_JOB).to_dict("records")
    assert row["status"] == "succeeded" and row["error"] is None
    assert row["details"]["rows"] == 2 and row["details"]["webhook"] == "delivered"


def test_a_failing_webhook_does_not_fail_the_export(
    store: Store, tmp_path: Path, webhook: tuple[str, list]
) -> None:
    _publish(store, "r1", {"a": "block"})
    url, received = webhook
    settings = _settings(store, tmp_path, export_webhook_url=f"{url}/500?token=secret")
    assert export_banlist_job(settings) == "succeeded"
    assert (tmp_path / "banlist.csv").read_text().count("\n") == 2
    assert len(received) == 1
    [row] = _history(store, EXPORT_JOB).to_dict("records")
    assert row["status"] == "succeeded" and row["details"]["webhook"] == "failed"
    assert row["error"] == "webhook to 127.0.0.1 failed: HTTP 500"


def test_a_failed_export_is_recorded(store: Store, tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    settings = _settings(store, tmp_path, export_path=str(tmp_path / "not-a-dir" / "x.csv"))
    with pytest.raises(OSError):
        export_banlist_job(settings)
    [row] = _history(store, EXPORT_JOB).to_dict("records")
    assert row["status"] == "failed" and "Error" in row["error"]


# ---- the scheduler running ----------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_jobs_fire_repeatedly_and_failures_are_recorded(store: Store, tmp_path: Path) -> None:
    _publish(store, "r1", {"a": "block"})

    def broken(store: Store, settings: Settings) -> RunSummary:
        raise RuntimeError("engine crashed")

    settings = _settings(
        store, tmp_path, run_interval_minutes=0.2 * SECOND, export_interval_minutes=0.2 * SECOND
    )
    scheduler = build_scheduler(settings, detection_job=partial(detection_run_job, run=broken))
    thread = threading.Thread(target=scheduler.start)
    thread.start()
    try:

        def fired_twice() -> bool:
            history = store.job_history(limit=1000)
            finished = history[history["status"] != "running"]
            return (finished["job"].value_counts().reindex([DETECTION_JOB, EXPORT_JOB]) >= 2).all()

        _wait_for(fired_twice, 30, "both jobs to run twice")
    finally:
        scheduler.shutdown(wait=True)
        thread.join(30)
    runs = _history(store, DETECTION_JOB)
    assert set(runs["status"]) == {"failed"}
    assert (runs["error"] == "RuntimeError: engine crashed").all()
    exports = _history(store, EXPORT_JOB)
    assert set(exports["status"]) == {"succeeded"}
    assert (tmp_path / "banlist.csv").read_text().splitlines()[1].startswith("a,block,")


# Runs one scheduler with a slow detection service that keeps the pipeline's lock contract.
_SCHEDULER_PROCESS = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from functools import partial

    from jobs.scheduler import build_scheduler, run_scheduler
    from jobs.tasks import detection_run_job
    from sentra_graph.config import load_settings
    from sentra_graph.pipeline import RUN_LOCK, RunAlreadyInProgress, RunSummary, new_run_id

    def slow_run(store, settings):
        with store.run_lock(RUN_LOCK) as acquired:
            if not acquired:
                raise RunAlreadyInProgress("another detection run holds the lock")
            run_id = new_run_id()
            now = dt.datetime.now(dt.UTC)
            store.start_run(run_id, now, now, {})
            time.sleep(0.4)
            published = store.publish_run(run_id, {}, {}, dt.timedelta(days=30))
            return RunSummary(run_id, "succeeded", published, now, now, 0, 0)

    url, export_path = sys.argv[1:3]
    settings = load_settings(
        database_url=url, export_path=export_path, retention_runs=1000,
        run_interval_minutes=0.2 / 60, export_interval_minutes=0.5 / 60,
    )
    job = partial(detection_run_job, run=slow_run)
    run_scheduler(settings, build_scheduler(settings, detection_job=job))
    """
)


def test_two_schedulers_never_overlap_and_stop_cleanly_on_sigterm(
    store: Store, tmp_path: Path
) -> None:
    _publish(store, "seed", {"a": "block"})
    logs = [tmp_path / f"scheduler-{n}.log" for n in range(2)]
    processes = []
    for log in logs:
        with log.open("w") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SCHEDULER_PROCESS, store.url, str(tmp_path / "b.csv")],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:

        def contended_and_running() -> bool:
            runs = _history(store, DETECTION_JOB)
            counts = runs["status"].value_counts()
            return (
                counts.get("succeeded", 0) >= 2
                and counts.get("skipped", 0) >= 1
                and (counts.get("running", 0) >= 1)
            )

        _wait_for(contended_and_running, 60, "contended detection runs")
        running = _history(store, DETECTION_JOB).query("status == 'running'")["job_run_id"]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    output = "\n".join(log.read_text()[-2000:] for log in logs)
    assert codes == [0, 0], output
    assert "scheduler stopped" in output

    history = store.job_history(limit=10_000)
    assert "running" not in set(history["status"]), "a job was left unfinished"
    detection = _history(store, DETECTION_JOB).set_index("job_run_id")
    assert set(detection.loc[running, "status"]) <= {"succeeded", "skipped"}
    assert set(detection["status"]) == {"succeeded", "skipped"}
    assert {details["pid"] for details in detection["details"]} == {p.pid for p in processes}

    runs = store.list_runs(limit=1000)
    runs = runs[runs["run_id"] != "seed"].sort_values("started_at")
    assert len(runs) >= 2 and set(runs["status"]) == {"succeeded"}
    starts, ends = runs["started_at"].iloc[1:].to_numpy(), runs["finished_at"].iloc[:-1].to_numpy()
    assert (starts >= ends).all(), "two detection runs overlapped"
    assert (tmp_path / "b.csv").read_text().startswith("account_id,decision,score")
