"""The sentra-graph command as a user runs it: exit codes, one-line reasons, the main verbs."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_graph.synth import generate


def _cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTRA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    env.pop("SENTRA_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "sentra_graph", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    generate(n_accounts=400, seed=5, requests_per_account=15).write(folder, fmt="jsonl")
    return folder


def _one(folder: Path, kind: str) -> Path:
    return next(p for p in folder.iterdir() if p.name.startswith(kind))


def test_help_on_every_verb(tmp_path: Path) -> None:
    for verb in (
        "init",
        "ingest",
        "run",
        "serve",
        "schedule",
        "export-banlist",
        "demo",
        "explain",
        "report",
        "sync",
        "feedback",
        "allow",
        "runs",
    ):
        assert "Usage" in _cli(tmp_path, verb, "--help").stdout


def test_ingest_run_export_explain(tmp_path: Path, files: Path) -> None:
    _cli(tmp_path, "init")
    out = _cli(tmp_path, "ingest", "accounts", str(_one(files, "accounts"))).stdout
    assert "loaded" in out
    _cli(tmp_path, "ingest", "requests", str(_one(files, "requests")))
    again = _cli(tmp_path, "ingest", "requests", str(_one(files, "requests"))).stdout
    assert "duplicates" in again
    assert "published" in _cli(tmp_path, "run").stdout
    _cli(tmp_path, "export-banlist", "--out", "ban.csv", "--min-decision", "review")
    with open(tmp_path / "ban.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["account_id", "decision", "score", "cluster_id", "reasons"]
    assert len(rows) > 1 and {r[1] for r in rows[1:]} <= {"review", "block"}
    _cli(tmp_path, "export-banlist", "--out", "ban.json", "--format", "json")
    banned = json.loads((tmp_path / "ban.json").read_text())
    assert all(item["decision"] == "block" for item in banned)
    if banned:
        explained = _cli(tmp_path, "explain", banned[0]["account_id"]).stdout
        assert banned[0]["cluster_id"] in explained


def test_bad_rows_are_reported_and_strict_fails(tmp_path: Path) -> None:
    _cli(tmp_path, "init")
    path = tmp_path / "requests.jsonl.gz"
    rows = [
        {"request_id": "r1", "ts": "2026-01-01T00:00:00Z", "account_id": "a", "ip": "10.0.0.1"},
        {"request_id": "r2", "ts": "yesterday", "account_id": "a", "ip": "10.0.0.1"},
        {"request_id": "r3", "ts": "2026-01-01T00:01:00Z", "account_id": "b", "ip": "10.0.0.2"},
    ]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(json.dumps(r) for r in rows) + "\n")
    done = _cli(tmp_path, "ingest", "requests", str(path), "--rejects", "rej.jsonl")
    assert "rejected" in done.stdout
    reject = json.loads((tmp_path / "rej.jsonl").read_text().splitlines()[0])
    assert reject["line"] == 2
    strict = _cli(tmp_path, "ingest", "requests", str(path), "--strict", check=False)
    assert strict.returncode != 0


def test_unreadable_file_fails_with_one_line(tmp_path: Path) -> None:
    _cli(tmp_path, "init")
    missing = _cli(tmp_path, "ingest", "requests", "nope.jsonl", check=False)
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "nope.jsonl" in missing.stderr


def test_commands_before_init_say_how_to_fix(tmp_path: Path) -> None:
    done = _cli(tmp_path, "run", check=False)
    assert done.returncode != 0
    assert "sentra-graph init" in done.stderr


def test_demo_runs_on_the_embedded_store(tmp_path: Path) -> None:
    done = _cli(tmp_path, "demo", "--accounts", "800")
    assert "Farms found" in done.stdout + done.stderr
    assert (tmp_path / "sentra-demo.db").exists()
