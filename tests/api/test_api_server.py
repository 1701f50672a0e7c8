"""``serve()``: refusing to start without keys, the scheduler as a child process, SIGTERM."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
from api_support import REPO, server_env, start_server


def test_the_server_refuses_to_start_without_keys(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api.server", "--port", "1"],
        cwd=REPO,
        env=server_env(db_url, SENTRA_API_KEYS=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "SENTRA_API_KEYS is empty" in result.stderr.splitlines()[-1]


def test_the_scheduler_runs_in_a_child_process_stopped_with_the_server(
    db_url: str, tmp_path: Path
) -> None:
    banlist = tmp_path / "exports" / "banlist.csv"
    server = start_server(
        db_url,
        tmp_path / "server.log",
        "--with-scheduler",
        SENTRA_EXPORT_PATH=str(banlist),
        SENTRA_RUN_CRON="0 0 1 1 *",  # no detection run during the test
    )
    try:
        found = re.search(r"scheduler started in process (\d+)", server.log_path.read_text())
        assert found, server.log_path.read_text()
        scheduler = psutil.Process(int(found.group(1)))
        assert scheduler.pid != server.process.pid
        assert scheduler.ppid() == server.process.pid
        deadline = time.monotonic() + 60
        while not banlist.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert banlist.read_text().startswith("account_id,decision,score,cluster_id,reasons")
        assert scheduler.is_running()
    finally:
        assert server.stop() == 0, server.log_path.read_text()
    assert not psutil.pid_exists(scheduler.pid)
