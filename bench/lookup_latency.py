"""Lookup latency and throughput of the HTTP API, measured with ``wrk`` on loopback.

Fills a SQLite store with a published run of ``--accounts`` scored accounts and starts the API
twice (one uvicorn worker each; one without the metrics middleware, to show what metrics
cost), with an extra bare endpoint returning a constant. ``wrk`` (``apt-get install -y wrk``)
then runs, in interleaved rounds whose best is kept (the machine is shared): single lookups
and the bare endpoint at 4 and 64 connections, gateway checks, batches of 1000 ids. Last,
single lookups while a new run of every account is published and loaded. Prints req/s, p50
and p99 per scenario against the targets: single/bare throughput >= 0.8, p99 <= 2 ms at 4
connections, a 1000-id batch in <= 20 ms of server time.

    python bench/lookup_latency.py                   # 100k accounts, 3 rounds of 5 s
    python bench/lookup_latency.py --accounts 1000000 --rounds 5
    python bench/lookup_latency.py --thread-loads    # snapshots built in a thread, to compare
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, Response

KEY = "bench-gateway-key"
BARE_PATH = "/bench/bare"
BARE_BODY = b'{"status":"ok"}'
KNOWN_ID = "acct-0000000"
LOOKUP_SAMPLE = 20_000
"""Distinct ids the single-lookup script cycles through (10% of them unknown accounts)."""


# ---- the store -------------------------------------------------------------------------------


def no_farms() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty cluster and membership frames: lookups do not read them."""
    return (
        pd.DataFrame(columns=["cluster_id", "size", "score", "decision", "reasons", "evidence"]),
        pd.DataFrame(columns=["account_id", "cluster_id", "strength"]),
    )


def fill_store(url: str, n_accounts: int, seed: int = 0) -> None:
    """A store with ``n_accounts`` accounts and one published run scoring all of them."""
    from sentra_graph.store import open_store
    from sentra_graph.store import schema as t

    rng = random.Random(seed)
    store = open_store(url)
    store.init()
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = [f"acct-{i:07d}" for i in range(n_accounts)]
    with store.begin() as conn:
        for start in range(0, n_accounts, 20_000):
            conn.execute(
                t.accounts.insert(),
                [{"account_id": a, "created_at": created} for a in ids[start : start + 20_000]],
            )
    kinds = rng.choices(["allow", "review", "block"], weights=[90, 7, 3], k=n_accounts)
    scores = [{"allow": 0.1, "review": 0.6, "block": 0.9}[k] + rng.random() * 0.09 for k in kinds]
    clusters = [f"F-{rng.randrange(500)}" if k != "allow" else None for k in kinds]
    reasons = [
        ["shares a payment card with 14 accounts", "prompt template 17 in 92% of requests"]
        if k != "allow"
        else []
        for k in kinds
    ]
    decisions = pd.DataFrame(
        {
            "account_id": ids,
            "score": scores,
            "decision": kinds,
            "cluster_id": clusters,
            "reasons": reasons,
            "evidence": [None] * n_accounts,
        }
    )
    store.start_run("bench-run", created, created + dt.timedelta(days=7), {})
    store.write_results("bench-run", *no_farms(), decisions)
    store.publish_run("bench-run", {}, {}, dt.timedelta(days=3650))
    store.dispose()


# ---- the server (child process) ----------------------------------------------------------------


def bench_app(url: str, metrics: bool, isolate_loads: bool) -> FastAPI:
    """The API over ``url`` plus the bare endpoint, matched just ahead of the lookups."""
    from api.app import create_app
    from api.middleware import MetricsMiddleware
    from sentra_graph.config import load_settings
    from sentra_graph.store import open_store

    settings = load_settings(database_url=url, api_keys=f"{KEY}:gateway")
    app = create_app(settings, open_store(url), isolate_loads=isolate_loads)
    if not metrics:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not MetricsMiddleware]

    @app.get(BARE_PATH, include_in_schema=False)
    async def bare() -> Response:
        return Response(BARE_BODY, media_type="application/json")

    # Routes match in order: the bare one goes just ahead of the lookups, after FastAPI's own
    # documentation routes, so both pay the same matching (last, it would pay for them all).
    routes = app.router.routes
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    first = next(i for i, route in enumerate(routes) if getattr(route, "path", None) not in docs)
    routes.insert(first, routes.pop())
    return app


def serve_child(url: str, port: int, metrics: bool, isolate_loads: bool) -> None:
    """The bench app in this process, under one uvicorn worker."""
    import uvicorn

    app = bench_app(url, metrics, isolate_loads)
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


class _Exchange:
    """The client side of in-process ASGI calls: one request body, the statuses seen."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.statuses: set[int] = set()

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.add(message["status"])


def cpu_per_request(url: str, ids: list[str], rounds: int = 5) -> dict[str, float]:
    """Server CPU per request in microseconds: ASGI calls in this process, without network,
    uvicorn or wrk (best of ``rounds``), so other load on the machine matters little."""
    app = bench_app(url, metrics=True, isolate_loads=False)
    plain = bench_app(url, metrics=False, isolate_loads=False)
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {KEY}".encode())]
    batch = json.dumps({"account_ids": ids[:1000]}).encode()
    cases = {
        "bare": ("GET", BARE_PATH, [], b""),
        "single": ("GET", f"/v1/accounts/{KNOWN_ID}/risk", [], b""),
        "single, unknown id": ("GET", "/v1/accounts/never-seen/risk", [], b""),
        "gateway": ("GET", "/v1/gateway/check", [(b"x-account-id", KNOWN_ID.encode())], b""),
        "batch1000": ("POST", "/v1/accounts/risk", [(b"content-type", b"application/json")], batch),
        "single, no metrics": ("GET", f"/v1/accounts/{KNOWN_ID}/risk", [], b""),
    }

    async def measure() -> dict[str, float]:
        await app.state.api.refresh()
        await plain.state.api.refresh()
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, (method, path, extra, body) in cases.items():
                scope = {
                    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "method": method, "scheme": "http", "path": path,
                    "raw_path": path.encode(), "query_string": b"", "root_path": "",
                    "headers": headers + extra, "client": ("127.0.0.1", 1),
                    "server": ("127.0.0.1", 80),
                }  # fmt: skip
                exchange = _Exchange(body)
                target = plain if name.endswith("no metrics") else app
                n = 200 if name == "batch1000" else 3000
                started = time.process_time()
                for _ in range(n):
                    await target(dict(scope), exchange.receive, exchange.send)
                elapsed = (time.process_time() - started) / n * 1e6
                assert exchange.statuses <= {200, 403}, (name, exchange.statuses)
                best[name] = min(best.get(name, elapsed), elapsed)
        return best

    return asyncio.run(measure())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A child server process, ready when ``/readyz`` answers 200."""

    def __init__(self, url: str, metrics: bool, thread_loads: bool) -> None:
        self.port = free_port()
        command = [sys.executable, __file__, "--serve", url, "--port", str(self.port)]
        if not metrics:
            command.append("--no-metrics")
        if thread_loads:
            command.append("--thread-loads")
        self.process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the server exited before it was ready")
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready within 300 s")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


# ---- wrk -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNIT_MS[unit]


def parse_wrk(name: str, connections: int, output: str) -> Result:
    """Requests/s and the p50/p99 latency of ``wrk --latency`` output."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Result(
        name,
        connections,
        float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        errors,
        int(non_2xx.group(1)) if non_2xx else 0,
    )


def lua_scripts(directory: Path, ids: list[str]) -> dict[str, Path]:
    """wrk scripts: cycling single lookups, gateway checks and bare requests; a 1000-id batch."""
    auth = f'wrk.headers["Authorization"] = "Bearer {KEY}"\n'
    id_table = "local ids = {" + ",".join(json.dumps(i) for i in ids) + "}\n"
    cycle = "local n = 0\nlocal function next_id()\n  n = n % #ids + 1\n  return ids[n]\nend\n"
    scripts = {
        "single": auth
        + id_table
        + cycle
        + 'request = function()\n  return wrk.format("GET", "/v1/accounts/" .. next_id() .. '
        '"/risk")\nend\n',
        "gateway": auth
        + id_table
        + cycle
        + 'request = function()\n  return wrk.format("GET", "/v1/gateway/check", '
        '{["X-Account-Id"] = next_id()})\nend\n',
        "batch": auth
        + 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + f"wrk.body = {json.dumps(json.dumps({'account_ids': ids[:1000]}))}\n",
        "bare": auth  # the same request work as a lookup for wrk, to a constant endpoint
        + id_table
        + cycle
        + "request = function()\n"
        + f'  return wrk.format("GET", "{BARE_PATH}?id=" .. next_id())\nend\n',
    }
    paths = {}
    for name, text in scripts.items():
        paths[name] = directory / f"{name}.lua"
        paths[name].write_text(text)
    return paths


def run_wrk(
    base: str, name: str, script: Path, connections: int, seconds: int, path: str = "/"
) -> Result:
    url = base + (BARE_PATH if name == "bare" else path)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(name, connections, output)


# ---- main ------------------------------------------------------------------------------------


def republish(url: str, run_id: str) -> None:
    """Publish a new run rescoring every account (as a detection run would)."""
    from sentra_graph.store import open_store

    store = open_store(url)
    decisions = store.run_decisions("bench-run")
    columns = ["account_id", "score", "decision", "cluster_id", "reasons", "evidence"]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    store.start_run(run_id, start, start + dt.timedelta(days=7), {})
    store.write_results(run_id, *no_farms(), decisions[columns])
    store.publish_run(run_id, {}, {}, dt.timedelta(days=3650))
    store.dispose()


def served_run(base: str) -> str | None:
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        run_id: str | None = json.loads(response.read())["run_id"]
        return run_id


def swap_under_load(url: str, server: Server, script: Path, seconds: int) -> tuple[Result, float]:
    """Single lookups for ``seconds`` from the moment a new run of every account is published
    (the server then loads it); and the seconds from the publish until it is served."""
    republish(url, "bench-run-2")
    published = time.monotonic()
    swapped: list[float] = []

    def watch() -> None:
        while served_run(server.base) != "bench-run-2" and time.monotonic() - published < 300:
            time.sleep(0.2)
        swapped.append(time.monotonic() - published)

    thread = threading.Thread(target=watch)
    thread.start()
    result = run_wrk(server.base, "single, during swap", script, 4, seconds)
    thread.join()
    return result, swapped[0]


def best(results: list[Result]) -> list[Result]:
    """Per scenario, the best of its rounds (highest req/s, lowest p50 and p99)."""
    grouped: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        grouped.setdefault((r.name, r.connections), []).append(r)
    return [
        Result(
            name,
            connections,
            max(r.rps for r in runs),
            min(r.p50_ms for r in runs),
            min(r.p99_ms for r in runs),
            sum(r.errors for r in runs),
            sum(r.non_2xx for r in runs),
        )
        for (name, connections), runs in grouped.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best is kept")
    parser.add_argument("--swap-seconds", type=int, default=12, help="lookups after a publish")
    parser.add_argument("--thread-loads", action="store_true", help="build snapshots in a thread")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-metrics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.port, not args.no_metrics, not args.thread_loads)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="sentra-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        fill_store(url, args.accounts)
        print(f"store: {args.accounts} accounts scored ({time.perf_counter() - started:.1f} s)")
        rng = random.Random(1)
        ids = [
            f"acct-{rng.randrange(args.accounts):07d}" if rng.random() < 0.9 else f"new-{i}"
            for i in range(LOOKUP_SAMPLE)
        ]
        scripts = lua_scripts(Path(tmp), ids)
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared)")
        cpu = cpu_per_request(url, ids)

        d = args.duration
        results: list[Result] = []
        server = Server(url, metrics=True, thread_loads=args.thread_loads)
        plain = Server(url, metrics=False, thread_loads=args.thread_loads)
        try:
            run_wrk(server.base, "bare", scripts["bare"], 4, 2)  # warm-up
            run_wrk(plain.base, "single", scripts["single"], 4, 2)
            for _ in range(args.rounds):
                for connections in (4, 64):
                    results.append(run_wrk(server.base, "bare", scripts["bare"], connections, d))
                    results.append(
                        run_wrk(server.base, "single", scripts["single"], connections, d)
                    )
                    unmetered = run_wrk(plain.base, "single", scripts["single"], connections, d)
                    unmetered.name = "single, no metrics"
                    results.append(unmetered)
                results.append(
                    run_wrk(server.base, "gateway", scripts["gateway"], 4, d, "/v1/gateway/check")
                )
                for connections in (1, 4):
                    results.append(
                        run_wrk(
                            server.base,
                            "batch1000",
                            scripts["batch"],
                            connections,
                            d,
                            "/v1/accounts/risk",
                        )  # fmt: skip
                    )
            with urllib.request.urlopen(f"{server.base}/metrics") as response:
                exposition = response.read().decode()
            plain.stop()
            swap, swap_seconds = swap_under_load(url, server, scripts["single"], args.swap_seconds)
        finally:
            server.stop()
            plain.stop()
        print(f"load average after: {os.getloadavg()[0]:.2f}")

    report(best(results), swap, swap_seconds, exposition, args)
    print("\nserver CPU per request, in-process ASGI calls (no network, uvicorn or wrk):")
    for name, micros in cpu.items():
        print(f"  {name:<20} {micros:8.1f} us")
    print(f"  single/bare CPU: {cpu['bare'] / cpu['single']:.2f}")
    print(f"  metrics cost: {cpu['single'] / cpu['single, no metrics'] - 1:+.1%} of a lookup's CPU")


def report(
    results: list[Result],
    swap: Result,
    swap_seconds: float,
    exposition: str,
    args: argparse.Namespace,
) -> None:
    print(f"\nbest of {args.rounds} rounds of {args.duration} s each")
    print(
        f"{'scenario':<22} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'non-2xx':>8}"
    )
    for r in [*results, swap]:
        print(
            f"{r.name:<22} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors:>6} {r.non_2xx:>8}"
        )
    print("(gateway non-2xx are the 403 answers for blocked accounts)")
    by = {(r.name, r.connections): r for r in results}
    print()
    for connections in (4, 64):
        ratio = by[("single", connections)].rps / by[("bare", connections)].rps
        print(f"single/bare throughput at {connections} connections: {ratio:.2f} (target >= 0.80)")
        cost = 1 - by[("single", connections)].rps / by[("single, no metrics", connections)].rps
        print(f"metrics cost at {connections} connections: {cost:+.1%} of lookup throughput")
    print(f"single p99 at 4 connections: {by[('single', 4)].p99_ms:.2f} ms (target <= 2 ms)")
    pattern = (
        r'sentra_http_request_duration_seconds_{}\{{method="POST",'
        r'route="/v1/accounts/risk"\}} ([\d.e+-]+)'
    )
    total = re.search(pattern.format("sum"), exposition)
    count = re.search(pattern.format("count"), exposition)
    if total and count:
        mean_ms = 1000 * float(total.group(1)) / float(count.group(1))
        print(f"batch of 1000, mean server time (metrics histogram): {mean_ms:.2f} ms")
    print(
        f"batch of 1000 at 1 connection: p50 {by[('batch1000', 1)].p50_ms:.2f} ms, "
        f"p99 {by[('batch1000', 1)].p99_ms:.2f} ms (target <= 20 ms)"
    )
    where = "a thread" if args.thread_loads else "a worker process"
    print(
        f"new run served {swap_seconds:.1f} s after it was published (snapshot built in "
        f"{where}); lookups during the {args.swap_seconds} s after the publish: "
        f"p99 {swap.p99_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
