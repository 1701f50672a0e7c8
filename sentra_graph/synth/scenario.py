"""Assemble a scenario: plan the cohorts, generate them, give ids, render prompts, write files."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sentra_graph.synth import farms, legit
from sentra_graph.synth.cohort import Cohort, Ctx, Pools
from sentra_graph.synth.network import block_ips, hex_ids, residential_ips
from sentra_graph.synth.prompts import KIND, render
from sentra_graph.synth.timing import DAY

__all__ = ["DEFAULT_END", "FARM_KINDS", "LOOKALIKE_KINDS", "Scenario", "generate"]

DEFAULT_END = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
"""Default end of the generated traffic: fixed, so that a seed always yields the same data."""

FARM_KINDS = ("hydra", "mixed", "slow_low", "rubric", "cell")
LOOKALIKE_KINDS = ("enterprise", "campus", "mobile_nat", "ide_plugin", "benchmark", "family")
ACCOUNT_COLUMNS = [
    "account_id", "created_at", "org_id", "email_domain", "payment_fingerprint", "signup_ip",
    "country",
]  # fmt: skip
REQUEST_COLUMNS = [
    "request_id", "ts", "account_id", "ip", "api_key_id", "user_agent", "tls_fingerprint",
    "model", "prompt", "prompt_embedding", "prompt_tokens", "completion_tokens", "status",
]  # fmt: skip
FORMATS = ("jsonl", "jsonl.gz", "csv", "csv.gz", "parquet")
_CHUNK = 500_000


@dataclass
class Scenario:
    """Generated traffic with its ground truth.

    accounts: contract 1.1 columns. requests: contract 1.2 columns (``prompt_embedding`` None).
    truth: account_id, role ("farm", "lookalike", "legit"), kind, group (instance id or None).
    window_end: the end of the generated period: every request and sign-up is before it.
    Timestamps are tz-aware UTC with microsecond resolution.
    """

    accounts: pd.DataFrame
    requests: pd.DataFrame
    truth: pd.DataFrame
    window_end: dt.datetime

    def write(self, directory: str | Path, fmt: str = "jsonl") -> dict[str, Path]:
        """Write ``accounts``, ``requests`` and ``truth`` files in ``fmt`` into ``directory``.

        ``fmt`` is one of :data:`FORMATS`; timestamps are RFC 3339 in text formats.
        Returns the path of each file by name.
        """
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, frame in (
            ("accounts", self.accounts),
            ("requests", self.requests),
            ("truth", self.truth),
        ):
            path = out / f"{name}.{fmt}"
            _write_frame(frame, path, fmt)
            paths[name] = path
        return paths


def _rfc3339(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write one frame, in chunks for the text formats so memory stays flat."""
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if "prompt_embedding" in frame:
            idx = table.schema.get_field_index("prompt_embedding")
            embedding = table.column(idx).cast(pa.list_(pa.float32()))
            table = table.set_column(idx, "prompt_embedding", embedding)
        pq.write_table(table, path)
        return
    opener = gzip.open if fmt.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        for begin in range(0, max(len(frame), 1), _CHUNK):
            part = _rfc3339(frame.iloc[begin : begin + _CHUNK])
            if fmt.startswith("jsonl"):
                if len(part):
                    fh.write(part.to_json(orient="records", lines=True, force_ascii=False))
            else:
                part.to_csv(fh, index=False, header=begin == 0)


# ---- planning -----------------------------------------------------------------------------

Builder = Callable[[Ctx, int, str], Cohort]

_FARM_PLAN: list[tuple[str, Builder, float, int, int]] = [
    # kind, builder, share of accounts, smallest and largest instance
    ("hydra", farms.hydra, 0.065, 40, 600),
    ("mixed", farms.mixed, 0.025, 15, 150),
    ("slow_low", farms.slow_low, 0.03, 20, 400),
    ("rubric", farms.rubric, 0.015, 10, 120),
]
_LOOKALIKE_PLAN: list[tuple[str, Builder, float, int, int]] = [
    ("campus", legit.campus, 0.06, 40, 600),
    ("mobile_nat", legit.mobile_nat, 0.04, 30, 500),
    ("ide_plugin", legit.ide_plugin, 0.05, 30, 1000),
]


def _instances(total: float, smallest: int, largest: int) -> list[int]:
    """Split ``total`` accounts into instances between ``smallest`` and ``largest``."""
    k = max(1, math.ceil(total / largest))
    size = max(smallest, round(total / k))
    return [size] * k


def plan(n_accounts: int, rng: np.random.Generator) -> list[tuple[str, Builder, int, str]]:
    """The cohorts of a scenario: (kind, builder, size, group id), organic excluded.

    Shares vary per seed by +-25%. Below 1,000 accounts, kinds that do not fit in half of the
    accounts are left out; from 1,000 on every kind is present.
    """
    items: list[tuple[str, Builder, int, str]] = []
    for kind, builder, share, smallest, largest in _FARM_PLAN + _LOOKALIKE_PLAN:
        total = n_accounts * share * rng.uniform(0.75, 1.25)
        for i, size in enumerate(_instances(total, smallest, largest)):
            items.append((kind, builder, size, f"{kind}-{i}"))
    n_cells = max(1, round(n_accounts * 0.025 * rng.uniform(0.75, 1.25) / 10))
    for i in range(n_cells):
        items.append(("cell", farms.cell, int(rng.integers(5, 16)), f"cell-{i}"))
    for i in range(max(1, round(n_accounts / 4000 * rng.uniform(0.75, 1.25)))):
        size = int(rng.integers(20, 61))
        items.append(("enterprise", legit.enterprise, size, f"enterprise-{i}"))
    for i in range(max(1, round(n_accounts / 5000))):
        items.append(("benchmark", _benchmark, 1, f"benchmark-{i}"))
    family_accounts = max(2, round(n_accounts * 0.03 * rng.uniform(0.75, 1.25)))
    items.append(("family", _families, family_accounts, "family"))
    if n_accounts < 1000:
        order = rng.permutation(len(items))
        kept, used = [], 0
        for i in order:
            if used + items[i][2] <= n_accounts // 2:
                kept.append(items[i])
                used += items[i][2]
        items = [item for item in items if item in kept]
    return items


def _benchmark(ctx: Ctx, size: int, group: str) -> Cohort:
    return legit.benchmark_user(ctx, group)


def _families(ctx: Ctx, size: int, group: str) -> Cohort:
    return legit.families(ctx, size, 0)


# ---- generation ---------------------------------------------------------------------------


def _pools(rng: np.random.Generator, n_accounts: int) -> Pools:
    carriers = [block_ips(int(rng.integers(4, 11)), rng) for _ in range(3)]
    paas = block_ips(int(rng.integers(8, 21)), rng, cloud=True)
    proxies = residential_ips(max(50, n_accounts // 10), rng)
    return Pools(carriers=carriers, paas=paas, proxies=proxies)


def _tokens(
    rng: np.random.Generator, prompts: pa.ChunkedArray, req: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Prompt tokens from the text length; completion tokens by kind (reasoning runs long)."""
    length = pc.utf8_length(prompts).to_numpy().astype(np.float64)
    prompt_tokens = np.ceil(length / 4 * rng.uniform(0.9, 1.1, len(length))).astype(np.int64) + 5
    median = np.full(len(length), 220.0)
    kind = req["kind"]
    median[kind == KIND["chat"]] = 80
    median[(kind == KIND["reasoning"]) | req["cot"]] = 700
    median[(kind == KIND["eval"]) | (kind == KIND["exam"])] = 120
    completion = np.round(median * rng.lognormal(0, 0.6, len(length))).astype(np.int64)
    completion[req["status"] != 200] = 0
    return prompt_tokens, completion


def generate(
    n_accounts: int = 2000,
    days: float = 7,
    seed: int = 0,
    *,
    end: dt.datetime | None = None,
    requests_per_account: float = 50,
) -> Scenario:
    """Generate realistic API traffic with farms and legit look-alikes, and its ground truth.

    Args:
        n_accounts: accounts in the scenario (farm, look-alike and organic together).
        days: length of the traffic window.
        seed: everything random follows from it; the same arguments give the same scenario.
        end: end of the window (tz-aware; default :data:`DEFAULT_END`).
        requests_per_account: mean requests per account over the window.

    >>> s = generate(300, days=2, seed=1, requests_per_account=10)
    >>> len(s.accounts) == len(s.truth) == 300, s.requests["ts"].max() < s.window_end
    (True, True)
    """
    if n_accounts < 10:
        raise ValueError(f"n_accounts must be at least 10, got {n_accounts}")
    end = DEFAULT_END if end is None else end
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    rng = np.random.default_rng(seed)
    end_ns = pd.Timestamp(end).as_unit("ns").value
    start_ns = end_ns - int(days * DAY)
    ctx = Ctx(rng, n_accounts, start_ns, end_ns, float(requests_per_account),
              _pools(rng, n_accounts))  # fmt: skip
    cohorts = [builder(ctx, size, group) for _, builder, size, group in plan(n_accounts, rng)]
    used = sum(len(c.accounts) for c in cohorts)
    cohorts.append(legit.organic(ctx, n_accounts - used))
    return _assemble(ctx, cohorts, end, seed)


def _assemble(ctx: Ctx, cohorts: list[Cohort], end: dt.datetime, seed: int) -> Scenario:
    """Give ids, order requests by time, render prompts and build the contract frames."""
    rng = ctx.rng
    offsets = np.cumsum([0] + [len(c.accounts) for c in cohorts])
    accounts = pd.concat([c.accounts for c in cohorts], ignore_index=True)
    n = len(accounts)
    ids = hex_ids("acct_", n, rng)
    accounts.insert(0, "account_id", ids)
    req = {col: np.concatenate([c.requests[col] for c in cohorts]) for col in cohorts[0].requests}
    req["account"] = np.concatenate(
        [c.requests["account"] + off for c, off in zip(cohorts, offsets[:-1], strict=True)]
    )
    del cohorts
    order = np.argsort(req["ts"], kind="stable")
    req = {col: values[order] for col, values in req.items()}
    account = req["account"]
    chunks = []
    for begin in range(0, len(account), _CHUNK):
        p = {
            c: req[c][begin : begin + _CHUNK] for c in ("kind", "key", "pre", "cot", "fmt", "noise")
        }
        chunks.append(render(p["kind"], p["key"], p["pre"], p["cot"], p["fmt"], p["noise"], rng))
    prompts = pa.chunked_array(chunks, type=pa.string())
    prompt_tokens, completion_tokens = _tokens(rng, prompts, req)
    tag = hashlib.blake2b(f"{seed}:{end.isoformat()}".encode(), digest_size=4).hexdigest()
    request_ids = pc.binary_join_element_wise(
        pa.scalar(f"req_{tag}_"), pa.array(np.arange(len(account))).cast(pa.string()), ""
    )
    keys = hex_ids("key_", 3 * n, rng).reshape(n, 3)
    columns = {
        "request_id": pd.array(request_ids, dtype="str"),
        "ts": pd.to_datetime(req.pop("ts") // 1000 * 1000, utc=True),
        "account_id": _str(ids[account]),
        "ip": _str(req.pop("ip")),
        "api_key_id": _str(keys[account, req.pop("api_key")]),
    }
    del request_ids
    for col in ("user_agent", "tls_fingerprint", "model"):
        columns[col] = _str(req.pop(col))
    columns["prompt"] = pd.array(prompts, dtype="str")
    columns["prompt_embedding"] = np.full(len(account), None, dtype=object)
    columns["prompt_tokens"] = prompt_tokens
    columns["completion_tokens"] = completion_tokens
    columns["status"] = req.pop("status").astype(np.int64)
    del req, prompts
    requests = pd.DataFrame(columns, copy=False)
    created = accounts["created_at"].to_numpy() // 1000 * 1000
    accounts["created_at"] = pd.to_datetime(created, utc=True)
    for col in ("org_id", "email_domain", "payment_fingerprint", "signup_ip", "country", "group"):
        accounts[col] = accounts[col].astype("str")
    accounts = accounts.sample(frac=1.0, random_state=rng.integers(2**31)).reset_index(drop=True)
    truth = accounts[["account_id", "role", "kind", "group"]].copy()
    return Scenario(accounts[ACCOUNT_COLUMNS].copy(), requests, truth, end)


def _str(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Object array of strings -> pandas' Arrow-backed string array."""
    return pd.array(pa.array(values, type=pa.string()), dtype="str")
