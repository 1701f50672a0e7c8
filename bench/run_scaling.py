"""Run time and peak memory of one detection run on PostgreSQL, beside the bare window read.

For each size: generate a scenario, load it into a scratch PostgreSQL database, then in fresh
child processes time (a) the fastest bare read of the window's request columns as stored
(ADBC -> Arrow -> pandas, no template ids), (b) a cold `run_detection`, which also fits the
template model and featurises every request of the window (a one-time cost: each request is
featurised once, ever), and (c) a warm run, as every later scheduled run is (only requests that
arrived since the last run are featurised; here none). Peak RSS is each child's own high-water
mark (VmHWM: Linux; ``ru_maxrss`` would report the parent's RSS when that is larger); CPU is
the child's own (user + system, all its threads; the database server's work is not in it); the
1-minute load average is printed at each child's start and end (the machine may be shared).

    python bench/run_scaling.py                       # 20k/1M and 100k/5M
    python bench/run_scaling.py --sizes 20000:1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

CHILD = r"""
import datetime as dt, json, os, sys, time
from sentra_graph.config import load_settings
from sentra_graph.pipeline import resolve_window, run_detection
from sentra_graph.store import open_store
from sentra_graph.store.window import WINDOW_REQUEST_COLUMNS
url, mode = sys.argv[1], sys.argv[2]
store = open_store(url)
settings = load_settings(database_url=url)
start, end = resolve_window(store, settings.window_days, None)
load = os.getloadavg()[0]
t0, c0 = time.perf_counter(), time.process_time()
if mode == "bare":
    cols = ", ".join(c for c in WINDOW_REQUEST_COLUMNS if c != "template_id")
    frame = store._adbc_frame(f"SELECT {cols} FROM requests WHERE ts >= :start AND ts < :end",
                              {"start": start, "end": end})
    out = {"rows": len(frame)}
else:
    summary = run_detection(store, settings)
    out = {"timings": summary.timings, "accounts": summary.n_accounts,
           "clusters": summary.n_clusters, "decisions": summary.decisions}
out["seconds"] = time.perf_counter() - t0
out["cpu_s"] = time.process_time() - c0
out["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
# VmHWM: this address space's high-water mark. ru_maxrss would not do: it is kept across
# fork and exec, so a child reports at least the RSS its parent had (the generated scenario).
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
out["peak_rss_mb"] = hwm / 1024
print(json.dumps(out))
"""


def _scratch_db() -> str:
    name = f"sentra_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(
        ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _child(url: str, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, mode], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n_accounts: int, n_requests: int, seed: int, keep: bool) -> dict:
    from sentra_graph.ingest import ingest_frame
    from sentra_graph.store import open_store
    from sentra_graph.synth import generate

    url = _scratch_db()
    try:
        t0 = time.perf_counter()
        scenario = generate(
            n_accounts=n_accounts, seed=seed, requests_per_account=n_requests / n_accounts
        )
        generated = time.perf_counter() - t0
        store = open_store(url)
        store.init()
        t0 = time.perf_counter()
        ingest_frame(store, "accounts", scenario.accounts)
        ingest_frame(store, "requests", scenario.requests)
        loaded = time.perf_counter() - t0
        store.dispose()
        bare = _child(url, "bare")
        cold = _child(url, "run")
        run = _child(url, "run")
        return {
            "accounts": n_accounts,
            "requests": len(scenario.requests),
            "generate_s": round(generated, 1),
            "ingest_s": round(loaded, 1),
            "bare_read_s": round(bare["seconds"], 2),
            "bare_peak_rss_mb": round(bare["peak_rss_mb"]),
            "run_s": round(run["seconds"], 2),
            "run_cpu_s": round(run["cpu_s"], 1),
            "ratio": round(run["seconds"] / bare["seconds"], 1),
            "peak_rss_mb": round(run["peak_rss_mb"]),
            "stages": run["timings"],
            "cold_run_s": round(cold["seconds"], 2),
            "cold_cpu_s": round(cold["cpu_s"], 1),
            "cold_peak_rss_mb": round(cold["peak_rss_mb"]),
            "cold_stages": cold["timings"],
            "decisions": run["decisions"],
            "load": {"bare": bare["load"], "cold": cold["load"], "warm": run["load"]},
        }
    finally:
        if not keep:
            _drop(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["20000:1000000", "100000:5000000"],
        help="ACCOUNTS:REQUESTS pairs",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        accounts, requests = (int(x) for x in size.split(":"))
        row = measure(accounts, requests, args.seed, args.keep)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        "\n| accounts | requests | bare read (s) | warm run (s) | warm CPU (s) | warm / bare "
        "| peak RSS (MB) | cold run (s) | cold CPU (s) | cold peak RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['accounts']:,} | {r['requests']:,} | {r['bare_read_s']} | {r['run_s']} "
            f"| {r['run_cpu_s']} | {r['ratio']} | {r['peak_rss_mb']} | {r['cold_run_s']} "
            f"| {r['cold_cpu_s']} | {r['cold_peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
