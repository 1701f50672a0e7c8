"""The ban list: the contract's exact CSV and JSON shapes on both backends, and atomic writes."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from sentra_graph.banlist import BANLIST_COLUMNS, banlist_frame, render_banlist, write_banlist
from sentra_graph.store import Store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# account -> (score, decision, cluster_id, reasons)
DECISIONS = {
    "acct-1": (0.97, "block", "F-1", ["shares a card with 11 accounts", "sign-up burst"]),
    "acct-2": (0.91, "block", None, ['prompt template "rubric, v2" reused']),
    "acct-3": (0.62, "review", "F-2", ["shares a /24 prefix; 40 accounts"]),
    "acct-4": (0.10, "allow", None, []),
}


def _publish(store: Store, decisions=DECISIONS, run_id: str = "r1") -> None:
    frame = pd.DataFrame(
        [
            {
                "account_id": account,
                "score": score,
                "decision": decision,
                "cluster_id": cluster,
                "reasons": reasons,
                "evidence": None,
            }
            for account, (score, decision, cluster, reasons) in decisions.items()
        ]
    )
    in_cluster = frame.dropna(subset=["cluster_id"])
    clusters = pd.DataFrame(
        {
            "cluster_id": in_cluster["cluster_id"],
            "size": 1,
            "score": in_cluster["score"],
            "decision": in_cluster["decision"],
            "reasons": [["farm"]] * len(in_cluster),
            "evidence": [{}] * len(in_cluster),
        }
    )
    memberships = in_cluster[["account_id", "cluster_id"]].assign(strength=1.0)
    store.start_run(run_id, T0, T0 + dt.timedelta(days=7), {})
    store.write_results(run_id, clusters, memberships, frame)
    store.publish_run(run_id, {}, {}, dt.timedelta(days=30))


def test_frame_has_the_contract_columns_highest_score_first(store: Store) -> None:
    _publish(store)
    frame = banlist_frame(store)
    assert list(frame.columns) == list(BANLIST_COLUMNS)
    assert list(frame["account_id"]) == ["acct-1", "acct-2"]
    assert frame.loc[1, "cluster_id"] is None
    assert frame.loc[0, "reasons"] == DECISIONS["acct-1"][3]
    review = banlist_frame(store, "review")
    assert list(review["account_id"]) == ["acct-1", "acct-2", "acct-3"]
    assert set(review["decision"]) == {"block", "review"}


def test_csv_is_exactly_the_contract_format(store: Store) -> None:
    _publish(store)
    text = render_banlist(banlist_frame(store, "review"), "csv")
    assert text == (
        "account_id,decision,score,cluster_id,reasons\n"
        "acct-1,block,0.97,F-1,shares a card with 11 accounts; sign-up burst\n"
        'acct-2,block,0.91,,"prompt template ""rubric, v2"" reused"\n'
        "acct-3,review,0.62,F-2,shares a /24 prefix; 40 accounts\n"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1]["reasons"] == DECISIONS["acct-2"][3][0]
    assert rows[1]["cluster_id"] == ""


def test_json_is_an_array_of_contract_objects(store: Store) -> None:
    _publish(store)
    records = json.loads(render_banlist(banlist_frame(store, "review"), "json"))
    assert [list(record) for record in records] == [list(BANLIST_COLUMNS)] * 3
    by_id = {record["account_id"]: record for record in records}
    for account, record in by_id.items():
        score, decision, cluster, reasons = DECISIONS[account]
        assert record == {
            "account_id": account,
            "decision": decision,
            "score": score,
            "cluster_id": cluster,
            "reasons": reasons,
        }
    assert by_id["acct-2"]["cluster_id"] is None


def test_empty_ban_list(store: Store) -> None:
    _publish(store, {"acct-4": DECISIONS["acct-4"]})
    frame = banlist_frame(store)
    assert render_banlist(frame, "csv") == ",".join(BANLIST_COLUMNS) + "\n"
    assert json.loads(render_banlist(frame, "json")) == []


def test_unknown_format_or_threshold_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_decision must be one of block, review"):
        banlist_frame(store, "allow")
    with pytest.raises(ValueError, match="format must be one of csv, json"):
        render_banlist(banlist_frame(store), "xml")
    with pytest.raises(ValueError, match="format"):
        write_banlist(store, tmp_path / "out.xml", "xml")
    assert not (tmp_path / "out.xml").exists()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_write_matches_render_and_counts_rows(store: Store, tmp_path: Path, fmt: str) -> None:
    _publish(store)
    target = tmp_path / "exports" / f"banlist.{fmt}"
    assert write_banlist(store, target, fmt, "review") == 3
    assert target.read_text(encoding="utf-8") == render_banlist(banlist_frame(store, "review"), fmt)
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_rewrite_keeps_the_file_mode(sqlite_store: Store, tmp_path: Path) -> None:
    _publish(sqlite_store)
    target = tmp_path / "banlist.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    assert write_banlist(sqlite_store, target) == 2
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.read_text().startswith("account_id,")


# A writer exporting a ban list far too large to finish before it is killed.
_HUGE_WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from sentra_graph.banlist import write_banlist

    class HugeStore:
        def current_decisions(self, min_decision):
            n = 1_000_000
            ids = pd.RangeIndex(n).astype(str)
            return pd.DataFrame({
                "account_id": "acct-" + ids, "decision": "block", "score": 0.99,
                "cluster_id": "F-" + ids, "reasons": [["shares a card"]] * n,
            })

    write_banlist(HugeStore(), sys.argv[1])
    """
)


def _bytes_on_disk(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):  # renamed away while listing
            total += path.stat().st_size
    return total


@pytest.mark.parametrize("previous", [b"account_id,decision\nold,block\n", None])
def test_killed_writer_leaves_old_file_or_none(tmp_path: Path, previous: bytes | None) -> None:
    target = tmp_path / "banlist.csv"
    if previous is not None:
        target.write_bytes(previous)
    writer = subprocess.Popen([sys.executable, "-c", _HUGE_WRITER, str(target)])
    try:
        deadline = time.monotonic() + 60
        while _bytes_on_disk(tmp_path) < len(previous or b"") + 1_000_000:
            assert writer.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline, "the writer never wrote a megabyte"
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == -signal.SIGKILL
    if previous is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == previous
    assert _bytes_on_disk(tmp_path) > len(previous or b"") + 1_000_000  # killed mid-write
