"""Detection quality on generated scenarios: precision and recall per farm kind, look-alikes hit.

For every seed and size: generate a scenario, ingest it into a fresh temporary SQLite store,
run detection, and evaluate the served decisions against the generator's truth. Prints one
table per run, the table pooled over all runs, and a last line with the targets and PASS/FAIL
(every run must meet them).

    python bench/quality.py                               # seeds 0-2 x 2,000 and 10,000 accounts
    python bench/quality.py --seeds 1 --sizes 2000
    python bench/quality.py --json bench/out/quality.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from sentra_graph.config import load_settings
from sentra_graph.evaluate import ALL, evaluate, summarise
from sentra_graph.ingest import ingest_frame
from sentra_graph.pipeline import run_detection
from sentra_graph.store import open_store
from sentra_graph.synth import generate

BLOCK_PRECISION = 0.99
BLOCK_RECALL = 0.95


def run_once(n_accounts: int, seed: int, days: float, rpa: float) -> dict:
    """One scenario through ingest and detection; its decisions, truth and timings."""
    timings = {}
    t0 = time.perf_counter()
    scenario = generate(n_accounts, days=days, seed=seed, requests_per_account=rpa)
    timings["generate"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="sentra-quality-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'quality.db'}"
        store = open_store(url)
        store.init()
        t0 = time.perf_counter()
        for kind, frame in (("accounts", scenario.accounts), ("requests", scenario.requests)):
            ingest_frame(store, kind, frame, source=f"<synth seed {seed}>")
        timings["ingest"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = run_detection(
            store, load_settings(database_url=url), window_end=scenario.window_end
        )
        timings["detect"] = time.perf_counter() - t0
        decisions = store.current_decisions()
        store.dispose()
    return {
        "n_accounts": n_accounts,
        "seed": seed,
        "requests": len(scenario.requests),
        "clusters": summary.n_clusters,
        "decisions": decisions,
        "truth": scenario.truth,
        "timings": timings,
    }


def targets(table: pd.DataFrame) -> dict:
    """The figures the targets are about, from one :func:`evaluate` table."""
    farm = table[(table["role"] == "farm") & (table["kind"] == ALL)].iloc[0]
    lookalikes = table[(table["role"] == "lookalike") & (table["kind"] != ALL)]
    return {
        "block_precision": float(farm["precision_block"]),
        "block_recall": float(farm["recall_block"]),
        "lookalikes_blocked": {r.kind: int(r.blocked) for r in lookalikes.itertuples()},
    }


def meets(figures: dict) -> bool:
    """Block precision >= 0.99, block recall >= 0.95 (farms of 5+), no look-alike blocked."""
    precision = figures["block_precision"]
    return (
        precision == precision  # NaN (nothing blocked) fails
        and precision >= BLOCK_PRECISION
        and figures["block_recall"] >= BLOCK_RECALL
        and sum(figures["lookalikes_blocked"].values()) == 0
    )


def _pooled(runs: list[dict]) -> pd.DataFrame:
    """Evaluate all runs as one population (ids and clusters prefixed by their run)."""
    decisions, truth = [], []
    for i, run in enumerate(runs):
        prefix = f"{i}:"
        d = run["decisions"].copy()
        d["account_id"] = prefix + d["account_id"].astype(str)
        d["cluster_id"] = d["cluster_id"].map(lambda c, p=prefix: None if pd.isna(c) else p + c)
        t = run["truth"].copy()
        t["account_id"] = prefix + t["account_id"].astype(str)
        t["group"] = t["group"].map(lambda g, p=prefix: None if pd.isna(g) else p + g)
        decisions.append(d)
        truth.append(t)
    return evaluate(pd.concat(decisions, ignore_index=True), pd.concat(truth, ignore_index=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--requests-per-account", type=float, default=50)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    runs, report = [], []
    for n_accounts in args.sizes:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run = run_once(n_accounts, seed, args.days, args.requests_per_account)
            table = evaluate(run["decisions"], run["truth"])
            figures = targets(table)
            t = run["timings"]
            print(
                f"\n== {n_accounts} accounts, seed {seed}: {run['requests']} requests, "
                f"{run['clusters']} farms found; generate {t['generate']:.1f} s, "
                f"ingest {t['ingest']:.1f} s, detect {t['detect']:.1f} s"
            )
            print(summarise(table))
            print("targets:", "met" if meets(figures) else "missed", json.dumps(figures))
            runs.append(run)
            report.append({"n_accounts": n_accounts, "seed": seed, "timings": t, **figures,
                           "table": table.to_dict("records")})  # fmt: skip

    print(f"\n== pooled over {len(runs)} runs")
    print(summarise(_pooled(runs)))
    worst_precision = min(r["block_precision"] for r in report)
    worst_recall = min(r["block_recall"] for r in report)
    lookalikes = sum(sum(r["lookalikes_blocked"].values()) for r in report)
    verdict = "PASS" if all(meets(r) for r in report) else "FAIL"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    print(
        f"\nTARGETS block precision >= {BLOCK_PRECISION} (worst run {worst_precision:.4f}), "
        f"block recall >= {BLOCK_RECALL} for farms of 5+ (worst run {worst_recall:.4f}), "
        f"no look-alike blocked ({lookalikes} blocked over all runs): {verdict}"
    )


if __name__ == "__main__":
    main()
