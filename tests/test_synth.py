"""The synthetic traffic generator: reproducible, contract-shaped, every kind present, farms
hidden in structure rather than vocabulary."""

from __future__ import annotations

import collections
import datetime as dt
import ipaddress
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentra_graph.synth import FARM_KINDS, LOOKALIKE_KINDS, Scenario, generate
from sentra_graph.synth.grammar import Grammar

ACCOUNT_COLUMNS = [
    "account_id", "created_at", "org_id", "email_domain", "payment_fingerprint", "signup_ip",
    "country",
]  # fmt: skip
REQUEST_COLUMNS = [
    "request_id", "ts", "account_id", "ip", "api_key_id", "user_agent", "tls_fingerprint",
    "model", "prompt", "prompt_embedding", "prompt_tokens", "completion_tokens", "status",
]  # fmt: skip


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(1000, days=2, seed=4, requests_per_account=8)


@pytest.fixture(scope="module")
def joined(scenario: Scenario) -> pd.DataFrame:
    return scenario.requests.merge(scenario.truth, on="account_id")


def _words(prompts: pd.Series) -> collections.Counter:
    return collections.Counter(w for p in prompts for w in re.findall(r"[a-z]+", p.lower()))


def test_same_seed_same_scenario_other_seed_differs() -> None:
    a = generate(200, days=1, seed=11, requests_per_account=5)
    b = generate(200, days=1, seed=11, requests_per_account=5)
    c = generate(200, days=1, seed=12, requests_per_account=5)
    pd.testing.assert_frame_equal(a.accounts, b.accounts)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.requests["prompt"].equals(c.requests["prompt"])
    assert set(a.accounts["account_id"]).isdisjoint(c.accounts["account_id"])


def test_contract_columns_and_types(scenario: Scenario) -> None:
    accounts, requests = scenario.accounts, scenario.requests
    assert list(accounts.columns) == ACCOUNT_COLUMNS
    assert list(requests.columns) == REQUEST_COLUMNS
    assert str(accounts["created_at"].dt.tz) == "UTC"
    assert str(requests["ts"].dt.tz) == "UTC"
    assert accounts["account_id"].is_unique
    assert requests["request_id"].is_unique
    assert requests["account_id"].isin(accounts["account_id"]).all()
    assert requests["prompt_embedding"].isna().all()
    assert requests["prompt"].str.len().gt(0).all()
    assert requests["status"].isin([200, 400, 429, 500]).all()
    assert (requests["prompt_tokens"] > 0).all() and (requests["completion_tokens"] >= 0).all()
    for ip in pd.concat([requests["ip"], accounts["signup_ip"].dropna()]).unique():
        ipaddress.ip_address(ip)
    assert scenario.truth["account_id"].tolist() == accounts["account_id"].tolist()


def test_requests_fall_in_the_window_after_sign_up(scenario: Scenario) -> None:
    requests = scenario.requests.merge(scenario.accounts, on="account_id")
    start = scenario.window_end - dt.timedelta(days=2)
    assert requests["ts"].ge(start).all() and requests["ts"].lt(scenario.window_end).all()
    assert requests["ts"].ge(requests["created_at"]).all()
    assert scenario.accounts["created_at"].lt(scenario.window_end).all()
    assert scenario.accounts["created_at"].lt(start).mean() > 0.7


def test_every_kind_present_with_plausible_sizes(scenario: Scenario) -> None:
    truth = scenario.truth
    sizes = truth.groupby(["kind", "group"]).size()
    assert set(FARM_KINDS) <= set(truth.loc[truth["role"] == "farm", "kind"])
    assert set(LOOKALIKE_KINDS) <= set(truth.loc[truth["role"] == "lookalike", "kind"])
    assert sizes["cell"].between(5, 15).all()
    assert sizes["enterprise"].between(20, 60).all()
    assert (sizes["benchmark"] == 1).all()
    assert sizes["hydra"].min() >= 40
    assert sizes["family"].between(2, 4).all()
    assert 0.08 <= truth["role"].eq("farm").mean() <= 0.25
    assert truth.loc[truth["role"] == "legit", "group"].isna().all()


def test_volume_tracks_requests_per_account() -> None:
    small = generate(1000, days=2, seed=4, requests_per_account=4)
    large = generate(1000, days=2, seed=4, requests_per_account=16)
    ratio = len(large.requests) / len(small.requests)
    assert 3 < ratio < 5
    assert 0.6 < len(large.requests) / (1000 * 16) < 1.5


def test_look_alikes_carry_their_signals(scenario: Scenario, joined: pd.DataFrame) -> None:
    accounts = scenario.accounts.merge(scenario.truth, on="account_id")
    enterprise = accounts[accounts["kind"] == "enterprise"].groupby("group")
    assert (enterprise["org_id"].nunique() == 1).all()
    assert (enterprise["payment_fingerprint"].nunique() == 1).all()
    ide = joined[joined["kind"] == "ide_plugin"]
    assert ide["user_agent"].value_counts(normalize=True).iloc[0] > 0.5
    campus = joined[joined["kind"] == "campus"]
    prefix = campus["ip"].str.rsplit(".", n=1).str[0]
    assert (
        campus.groupby(prefix)["account_id"].nunique().max() >= 0.8 * campus["account_id"].nunique()
    )
    volume = joined.groupby("account_id").size()
    bench = joined.loc[joined["kind"] == "benchmark", "account_id"].iloc[0]
    assert volume[bench] > 10 * volume.median()


def test_hydra_shares_proxies_cards_and_one_tls_stack(scenario: Scenario, joined: pd.DataFrame):
    hydra = joined[joined["kind"] == "hydra"]
    per_ip = hydra.groupby("ip")["account_id"].nunique()
    assert per_ip.mean() > 2
    assert hydra["tls_fingerprint"].nunique() == 1
    assert hydra["user_agent"].nunique() > 10 * hydra["tls_fingerprint"].nunique()
    accounts = scenario.accounts.merge(scenario.truth, on="account_id")
    cards = accounts.loc[accounts["kind"] == "hydra", "payment_fingerprint"].dropna()
    assert cards.nunique() < len(cards) / 4


def test_farm_prompts_use_legit_vocabulary(joined: pd.DataFrame) -> None:
    farm = _words(joined.loc[joined["role"] == "farm", "prompt"])
    legit = _words(joined.loc[joined["kind"] == "organic", "prompt"])
    top = [w for w, _ in farm.most_common(200)]
    assert sum(w in legit for w in top) >= 190


def test_farms_repeat_skeletons_across_accounts(joined: pd.DataFrame) -> None:
    """A few openings cover most of a templated farm's prompts, not an organic crowd's."""

    def top_openings(frame: pd.DataFrame) -> float:
        opening = frame["prompt"].str.lower().str.split().str[:4].str.join(" ")
        return float(opening.value_counts(normalize=True).iloc[:3].sum())

    farms = joined[joined["kind"].isin(["hydra", "slow_low", "rubric"])]
    farm_share = np.mean([top_openings(group) for _, group in farms.groupby("group")])
    organic = joined[joined["kind"] == "organic"]
    crowd = organic[organic["account_id"].isin(organic["account_id"].unique()[:150])]
    assert farm_share > 3 * top_openings(crowd)


@pytest.mark.parametrize("fmt", ["jsonl", "csv.gz", "parquet"])
def test_write_round_trips(tmp_path: Path, fmt: str) -> None:
    s = generate(120, days=1, seed=2, requests_per_account=3)
    paths = s.write(tmp_path, fmt=fmt)
    assert set(paths) == {"accounts", "requests", "truth"}
    if fmt == "parquet":
        back = pd.read_parquet(paths["requests"])
        ts = back["ts"]
    elif fmt == "jsonl":
        back = pd.read_json(paths["requests"], lines=True, dtype=False)
        ts = pd.to_datetime(back["ts"], utc=True, format="ISO8601")
    else:
        back = pd.read_csv(paths["requests"])
        ts = pd.to_datetime(back["ts"], utc=True, format="ISO8601")
    assert len(back) == len(s.requests)
    assert back["request_id"].tolist() == s.requests["request_id"].tolist()
    assert (ts.to_numpy() == s.requests["ts"].to_numpy()).all()
    assert back["prompt"].tolist() == s.requests["prompt"].tolist()


def test_write_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt must be one of"):
        generate(50, days=1, seed=0, requests_per_account=2).write(tmp_path, fmt="xml")


def test_grammar_keys_fix_phrasing_but_not_slots() -> None:
    g = Grammar({"p": ["{{Solve|Compute|Find}} <<n>> {{now|today}}"], "n": ["##1-1000000##"]})
    rng = np.random.default_rng(0)
    keyed = g.expand("p", 50, rng, np.full(50, 9, dtype=np.uint64)).to_pylist()
    free = g.expand("p", 50, rng).to_pylist()
    assert len({(s.split()[0], s.split()[2]) for s in keyed}) == 1
    assert len({s.split()[1] for s in keyed}) > 40
    assert len({(s.split()[0], s.split()[2]) for s in free}) == 6
