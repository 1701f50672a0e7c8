"""Ingest throughput and peak memory, beside a bare PostgreSQL ``COPY`` of the same rows.

Generates ``--rows`` realistic requests (tens of thousands of accounts, shared IPv4 and IPv6
pools, templated prompts of which some carry markers), writes them as CSV and/or JSONL, then
measures, each in a fresh child process (so peak RSS is the run's own):

- ``check only``: reading, checking and marking the file without a store (the Python side);
- ``sqlite`` / ``postgres``: ``ingest_files`` into an empty store (a scratch database);
- ``bare COPY``: psycopg ``COPY ... FROM STDIN (FORMAT csv)`` of the CSV into a plain table
  with the same column types and no keys or indexes;
- ``COPY, indexed``: the same into a table with the ``requests`` keys and indexes.

Each row reports wall time and CPU time (the child's own plus, for PostgreSQL, that of its
server processes read from /proc: the server must run on this machine). On a shared machine
the CPU ratio is the steadier one.

Usage::

    python bench/ingest.py --rows 1000000 --formats csv,jsonl
    python bench/ingest.py --rows 200000 --backends postgres --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BLOCK = 100_000
COLUMNS = (
    "request_id text, ts timestamptz, account_id text, ip text, api_key_id text, "
    "user_agent text, tls_fingerprint text, model text, prompt text, prompt_tokens integer, "
    "completion_tokens integer, status integer"
)
TEMPLATES = [
    "Summarise the following article about {w} in {n} bullet points: {t}",
    "Translate to {w}: {t}",
    "Think step by step and explain your reasoning: what is {n} times {m}? {t}",
    "Rate the following response on a scale of 1 to 10 for {w}. Response: {t}",
    "You have access to the following tools: search, calculator. Use the tool to find {w} {n}",
    "Write a {w} poem about {t}",
    "Fix the bug in this {w} code: def f(x): return x * {n}  # {t}",
    "Which response is better for the question about {w}? Answer A: {t} Answer B: {m}",
    "Explain {w} to a {n} year old.",
    "Give me {n} ideas for a {w} startup, {t}",
]
WORDS = np.array(
    ["python", "rust", "billing", "ocean", "maths", "physics", "history", "tennis", "cooking"]
    + ["finance", "weather", "music", "graphs", "privacy", "networks", "gardens", "trains"]
    + ["chess", "poetry", "security", "databases"]
)
AGENTS = np.array(
    [
        "python-requests/2.31",
        "openai-python/1.30.1",
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "node-fetch/3.3",
        "Go-http-client/2.0",
        "anthropic-typescript/0.20",
        "okhttp/4.12",
    ]
)
TLS = np.array([f"771,4865-4866-4867,{i}-23-65281,29-23-24,0" for i in range(8)])
MODELS = np.array(["model-large", "model-small", "model-code"])


def generate(rows: int, seed: int = 0) -> tuple[list[int], Callable[[int], pd.DataFrame]]:
    """Blocks of generated requests, in time order: a list of block sizes and a maker."""
    rng = np.random.default_rng(seed)
    n_accounts = max(rows // 50, 10)
    v4 = np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 255, (rows // 20 + 1, 4))])
    v6 = np.array([f"2001:db8:{a:x}:{b:x}::{c:x}" for a, b, c in rng.integers(0, 65535, (500, 3))])
    start = np.datetime64("2026-01-01T00:00:00", "us")
    span = 7 * 86_400 * 10**6
    sizes = [min(BLOCK, rows - s) for s in range(0, rows, BLOCK)]

    def block(index: int) -> pd.DataFrame:
        n = sizes[index]
        first = index * BLOCK
        r = np.random.default_rng([seed, index])
        offsets = np.sort(r.integers(first * span // rows, (first + n) * span // rows, n))
        ts = np.datetime_as_string(start + offsets.astype("timedelta64[us]"), unit="us")
        account = r.integers(0, n_accounts, n)
        ip = np.where(r.random(n) < 0.85, v4[r.integers(0, len(v4), n)], v6[r.integers(0, 500, n)])
        template = r.integers(0, len(TEMPLATES), n)
        words = WORDS[r.integers(0, len(WORDS), n)]
        nums = r.integers(2, 500, n)
        tails = r.integers(0, 10**9, n)
        prompts = [
            TEMPLATES[k].format(w=w, n=a, m=a + 7, t=f"ref-{b}")
            for k, w, a, b in zip(template, words, nums, tails, strict=True)
        ]
        return pd.DataFrame(
            {
                "request_id": np.char.add("req-", np.arange(first, first + n).astype(str)),
                "ts": np.char.add(ts, "Z"),
                "account_id": np.char.add("acct-", account.astype(str)),
                "ip": ip,
                "api_key_id": np.char.add(
                    np.char.add("key-", account.astype(str)), r.integers(0, 3, n).astype(str)
                ),
                "user_agent": AGENTS[(account + r.integers(0, 2, n)) % len(AGENTS)],
                "tls_fingerprint": TLS[account % len(TLS)],
                "model": MODELS[r.integers(0, len(MODELS), n)],
                "prompt": prompts,
                "prompt_tokens": r.integers(5, 4000, n),
                "completion_tokens": r.integers(1, 2000, n),
                "status": np.where(r.random(n) < 0.97, 200, 429),
            }
        )

    return sizes, block


def write_files(rows: int, folder: Path, formats: list[str]) -> dict[str, Path]:
    """Write the generated rows once per format; CSV is always written (the COPY baseline)."""
    paths = {fmt: folder / f"requests.{fmt}" for fmt in sorted({"csv", *formats})}
    sizes, block = generate(rows)
    for i in range(len(sizes)):
        frame = block(i)
        if "csv" in paths:
            frame.to_csv(paths["csv"], mode="a", header=i == 0, index=False)
        if "jsonl" in paths:
            with open(paths["jsonl"], "a") as handle:
                handle.write(frame.to_json(orient="records", lines=True))
    return paths


# ---- measurements, each run in a child process ------------------------------------------------


def _peak_mb() -> float:
    """This process's peak RSS. Linux's VmHWM starts afresh at exec, unlike ``ru_maxrss``,
    which would report the (larger) parent's peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(url: str) -> dict[int, float]:
    """CPU seconds used so far by each server process of the database at ``url``, read from
    /proc (the server must run on this machine; else nothing is counted)."""
    import psycopg

    with psycopg.connect(url) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    return {pid: _process_cpu(pid) for pid in pids}


def _server_cpu_since(url: str, before: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in _server_cpu(url).items())


def child_check(path: str) -> dict:
    from sentra_graph.features.markers import prompt_markers
    from sentra_graph.ingest.readers import open_reader
    from sentra_graph.ingest.validate import check_rows

    started, cpu = time.perf_counter(), _own_cpu()
    rows = 0
    for chunk in open_reader(Path(path), "requests", 50_000).chunks():
        checked = check_rows("requests", chunk.frame).rows
        prompt_markers(checked["prompt"])
        rows += len(checked)
    return {"rows": rows, "seconds": time.perf_counter() - started, "cpu": _own_cpu() - cpu}


def child_ingest(path: str, url: str) -> dict:
    from sentra_graph.ingest import ingest_files
    from sentra_graph.store import open_store
    from sentra_graph.store.bulk import RequestLoader

    store = open_store(url)
    store.init()
    server = _server_cpu(store.libpq_url) if store.is_postgres else {}
    loaders = _count_loader_connections(RequestLoader)
    cpu = _own_cpu()
    summary = ingest_files(store, "requests", [path], None, progress=False)
    cpu = _own_cpu() - cpu
    if store.is_postgres:
        cpu += _server_cpu_since(store.libpq_url, server) + sum(loaders)
    store.dispose()
    return {"rows": summary.loaded, "seconds": summary.seconds, "cpu": cpu}


def _count_loader_connections(loader_class: type) -> list[float]:
    """The request loaders open their own (ADBC) connections after the start snapshot and
    close them before the end one: record each one's server CPU as it closes."""
    seconds: list[float] = []
    close = loader_class.close

    def close_counting(self) -> None:  # type: ignore[no-untyped-def]
        if self._adbc is not None:
            with self._adbc.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                (pid,) = cur.fetchone()
            seconds.append(_process_cpu(pid))
        close(self)

    loader_class.close = close_counting
    return seconds


def _process_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_copy(path: str, url: str, indexed: bool) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_plain")
        key = ", PRIMARY KEY (request_id)" if indexed else ""
        conn.execute(f"CREATE TABLE bench_plain ({COLUMNS}{key})")
        if indexed:
            conn.execute("CREATE INDEX ON bench_plain (ts)")
        conn.execute("CHECKPOINT")
        server, cpu = _server_cpu(url), _own_cpu()
        started = time.perf_counter()
        sql = "COPY bench_plain FROM STDIN (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, open(path, "rb") as handle, cur.copy(sql) as copy:
            while data := handle.read(1 << 20):
                copy.write(data)
        seconds = time.perf_counter() - started
        cpu = _own_cpu() - cpu + _server_cpu_since(url, server)
        (rows,) = conn.execute("SELECT count(*) FROM bench_plain").fetchall()[0]
        conn.execute("DROP TABLE bench_plain")
    return {"rows": rows, "seconds": seconds, "cpu": cpu}


def run_child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_main(args: list[str]) -> None:
    what, rest = args[0], args[1:]
    if what == "check":
        result = child_check(*rest)
    elif what == "ingest":
        result = child_ingest(*rest)
    else:
        result = child_copy(rest[0], rest[1], what == "copy-indexed")
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


class ScratchDatabase:
    """A PostgreSQL database created for the benchmark and dropped after it."""

    def __init__(self, admin_url: str) -> None:
        import sqlalchemy as sa

        self.name = f"sentra_bench_{uuid.uuid4().hex[:8]}"
        self.admin = sa.create_engine(
            admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    def __enter__(self) -> ScratchDatabase:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *_exc: object) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv", help="comma-separated: csv, jsonl")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every measurement, interleaved"
    )
    parser.add_argument("--pg-url", default=os.environ.get("SENTRA_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    formats = args.formats.split(",")
    backends = args.backends.split(",")
    rounds: list[list[tuple[str, str, dict]]] = []
    with tempfile.TemporaryDirectory(prefix="sentra-bench-") as folder:
        started = time.perf_counter()
        paths = write_files(args.rows, Path(folder), formats)
        sizes = ", ".join(f"{fmt} {p.stat().st_size / 2**20:,.0f} MB" for fmt, p in paths.items())
        print(
            f"generated {args.rows:,} requests in {time.perf_counter() - started:.0f} s ({sizes})"
        )
        for number in range(args.rounds):
            rounds.append(measure_round(paths, formats, backends, args.pg_url, Path(folder)))
            print(f"round {number + 1} of {args.rounds} done", flush=True)
    report(rounds)


def measure_round(
    paths: dict[str, Path], formats: list[str], backends: list[str], pg_url: str, folder: Path
) -> list[tuple[str, str, dict]]:
    """One measurement of everything, each in a fresh child process and a fresh store."""
    results: list[tuple[str, str, dict]] = []
    for fmt in formats:
        results.append(("check only", fmt, run_child("check", str(paths[fmt]))))
    if "sqlite" in backends:
        for fmt in formats:
            db_path = folder / f"bench-{fmt}.db"
            db_path.unlink(missing_ok=True)
            url = f"sqlite:///{db_path}"
            results.append(("sqlite", fmt, run_child("ingest", str(paths[fmt]), url)))
    if "postgres" in backends:
        with ScratchDatabase(pg_url) as db:
            csv = str(paths["csv"])
            results.append(("bare COPY", "csv", run_child("copy", csv, db.url)))
            results.append(("COPY, indexed", "csv", run_child("copy-indexed", csv, db.url)))
        for fmt in formats:
            with ScratchDatabase(pg_url) as fresh:
                results.append(("postgres", fmt, run_child("ingest", str(paths[fmt]), fresh.url)))
    return results


def report(rounds: list[list[tuple[str, str, dict]]]) -> None:
    """Per row: the median over rounds of wall and CPU time, the largest peak RSS, and the
    median of the round-by-round ratios to that round's bare COPY (a round's measurements
    share the machine's state, so the ratio is steadier than either time).

    Wall time is what a user waits for; CPU time (this process plus, for PostgreSQL, its
    server processes) is the work done, which a busy machine disturbs far less."""
    print(
        f"\n{'what':<14} {'file':<6} {'rows':>10} {'wall s':>7} {'rows/s':>9} {'CPU s':>6} "
        f"{'peak RSS':>9} {'x bare COPY (wall, CPU)':>24}"
    )
    for index, (name, fmt, first) in enumerate(rounds[0]):
        runs = [measured[index][2] for measured in rounds]
        wall = float(np.median([r["seconds"] for r in runs]))
        cpu = float(np.median([r["cpu"] for r in runs]))
        peak = max(r["peak_mb"] for r in runs)
        ratio = ""
        bares = [next((r for n, _, r in measured if n == "bare COPY"), None) for measured in rounds]
        if all(bares) and name != "check only":
            wall_ratio = np.median(
                [r["seconds"] / b["seconds"] for r, b in zip(runs, bares, strict=True)]
            )
            cpu_ratio = np.median([r["cpu"] / b["cpu"] for r, b in zip(runs, bares, strict=True)])
            ratio = f"{wall_ratio:.2f}, {cpu_ratio:.2f}"
        print(
            f"{name:<14} {fmt:<6} {first['rows']:>10,} {wall:>7.2f} {first['rows'] / wall:>9,.0f} "
            f"{cpu:>6.1f} {peak:>7.0f}MB {ratio:>24}"
        )
    spread = [
        f"{r['seconds']:.2f}" for measured in rounds for n, _, r in measured if n == "postgres"
    ]
    print(f"{len(rounds)} rounds; PostgreSQL ingest wall times: {', '.join(spread)}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        main()
