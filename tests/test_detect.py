"""End to end: a hand-built window with one farm among look-alikes and ordinary users."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sentra_graph.detect import DECISIONS, DetectContext, Detection, detect
from sentra_graph.features.behaviour import NO_PROMPT, NO_TEMPLATE
from sentra_graph.features.markers import COT, TOOL
from sentra_graph.features.skeletons import SKELETON_ID_OFFSET
from sentra_graph.params import EngineParams, RiskParams

END = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
START = END - dt.timedelta(days=7)
BIN = 600.0


class Window:
    """Accumulates accounts and requests of a hand-built window."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.accounts: list[dict] = []
        self.requests: list[dict] = []
        self.kind: dict[str, str] = {}

    def account(self, account_id: str, kind: str, created: dt.datetime, **attrs: object) -> None:
        self.kind[account_id] = kind
        self.accounts.append(
            {
                "account_id": account_id,
                "created_at": created,
                "org_id": attrs.get("org"),
                "email_domain": "example.com",
                "payment_fingerprint": attrs.get("card"),
                "signup_ip": attrs.get("signup_ip"),
                "country": "US",
                "inferred": False,
            }
        )

    def traffic(
        self,
        account_id: str,
        seconds: np.ndarray,
        ips: list[str],
        tls: str,
        agents: list[str],
        templates: tuple[int, float],
        markers: tuple[int, float],
    ) -> None:
        rng = self.rng
        for s in np.sort(seconds):
            template_id, template_share = templates
            bit, marker_share = markers
            templated = rng.random() < template_share
            self.requests.append(
                {
                    "ts": START + dt.timedelta(seconds=float(s)),
                    "account_id": account_id,
                    "ip": str(rng.choice(ips)),
                    "api_key_id": f"key-{account_id}",
                    "user_agent": str(rng.choice(agents)),
                    "tls_fingerprint": tls,
                    "model": "m-large",
                    "prompt_tokens": int(rng.integers(20, 400)),
                    "completion_tokens": int(rng.integers(50, 900)),
                    "status": 200,
                    "markers": bit if rng.random() < marker_share else 0,
                    "template_id": template_id if templated else NO_TEMPLATE,
                }
            )

    def random_times(self, n: int) -> np.ndarray:
        return self.rng.uniform(0, 7 * 86_400, n)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        accounts = pd.DataFrame(self.accounts)
        requests = pd.DataFrame(self.requests).sort_values("ts", kind="stable")
        return accounts, requests.reset_index(drop=True)


COMMON_TLS = [f"tls-common-{i}" for i in range(4)]
COMMON_UA = [f"browser/{i}" for i in range(6)]


def build_window(seed: int = 0, farm_org: str | None = None) -> Window:
    w = Window(seed)
    rng = w.rng
    long_ago = END - dt.timedelta(days=400)

    def spread_signup() -> dt.datetime:
        return long_ago + dt.timedelta(days=float(rng.uniform(0, 380)))

    # ordinary users: own card, own home IP, popular clients, random times
    for i in range(60):
        a = f"user-{i:02d}"
        w.account(a, "organic", spread_signup(), card=f"card-u{i}" if i % 3 else None)
        w.traffic(
            a,
            w.random_times(int(rng.integers(10, 60))),
            [f"198.51.{i}.{j}" for j in (1, 2)],
            str(rng.choice(COMMON_TLS)),
            [str(rng.choice(COMMON_UA))],
            (int(rng.integers(0, 3)), 0.2),
            (COT, 0.03),
        )
    # the farm: ten accounts, two cards, one proxy pool, a rare client, one template with
    # chain-of-thought prompts, signed up within half an hour, firing in the same time bins
    burst = END - dt.timedelta(days=9)
    campaign = rng.choice(int(7 * 86_400 / BIN), 40, replace=False)
    proxies = [f"203.0.113.{j}" for j in range(8)]
    for i in range(10):
        a = f"farm-{i:02d}"
        w.account(
            a,
            "farm",
            burst + dt.timedelta(minutes=3 * i),
            card=f"card-f{i % 2}",
            org=farm_org,
            signup_ip=proxies[i % 3],
        )
        bins = rng.choice(campaign, 30, replace=False)
        seconds = (bins + rng.uniform(0, 1, 30)) * BIN
        w.traffic(
            a, seconds, proxies, "tls-rare-farm", ["python/3.11", "bot/1"], (7, 0.9), (COT, 0.9)
        )
    # a reserve farm account: signed up in the burst with a farm card, never used
    w.account(
        "farm-reserve", "farm", burst + dt.timedelta(minutes=40), card="card-f0", org=farm_org
    )
    # enterprise: one org sharing a card, a NAT IP and an internal template, in office hours
    for i in range(12):
        a = f"acme-{i:02d}"
        w.account(a, "enterprise", long_ago, card="card-acme", org="acme", signup_ip="192.0.2.1")
        days = rng.integers(0, 5, 40)
        seconds = days * 86_400 + rng.uniform(9 * 3600, 17 * 3600, 40)
        w.traffic(a, seconds, ["192.0.2.1"], COMMON_TLS[0], [COMMON_UA[0]], (3, 0.7), (COT, 0.5))
    # campus NAT: many unrelated accounts on two IPs, diverse everything else
    for i in range(25):
        a = f"campus-{i:02d}"
        w.account(a, "campus", spread_signup(), card=f"card-c{i}" if i % 2 else None)
        w.traffic(
            a,
            w.random_times(int(rng.integers(10, 50))),
            ["100.64.0.1", "100.64.0.2"],
            str(rng.choice(COMMON_TLS)),
            [str(rng.choice(COMMON_UA))],
            (int(rng.integers(0, 3)), 0.2),
            (COT, 0.03),
        )
    # an IDE plugin: one tool-use system prompt from many unrelated accounts, nothing else shared
    for i in range(20):
        a = f"ide-{i:02d}"
        w.account(a, "ide_plugin", spread_signup(), card=f"card-i{i}")
        w.traffic(
            a,
            w.random_times(int(rng.integers(20, 60))),
            [f"198.18.{i}.1"],
            str(rng.choice(COMMON_TLS)),
            ["ide-plugin/2.0"],
            (11, 0.85),
            (TOOL, 0.85),
        )
    # one heavy benchmark user with chain-of-thought prompts
    w.account("bench-00", "benchmark", spread_signup(), card="card-b")
    w.traffic(
        "bench-00",
        w.random_times(3000),
        ["192.0.2.77"],
        COMMON_TLS[1],
        ["eval/1"],
        (12, 0.9),
        (COT, 0.95),
    )
    # a family: three accounts on one card and one home IP
    for i in range(3):
        a = f"family-{i}"
        w.account(a, "family", spread_signup(), card="card-home")
        w.traffic(
            a,
            w.random_times(int(rng.integers(10, 40))),
            ["192.0.2.200"],
            str(rng.choice(COMMON_TLS)),
            [str(rng.choice(COMMON_UA))],
            (int(rng.integers(0, 3)), 0.2),
            (COT, 0.03),
        )
    # an account only seen in requests (unknown to the accounts table)
    w.kind["ghost"] = "organic"
    w.traffic(
        "ghost", w.random_times(5), ["198.51.250.1"], COMMON_TLS[2], ["curl/8"], (0, 0.0), (0, 0.0)
    )
    w.requests[-1]["template_id"] = NO_PROMPT
    return w


def context(**overrides: object) -> DetectContext:
    base = DetectContext(
        feedback=pd.DataFrame(columns=["account_id", "label"]),
        allowlist=pd.DataFrame(columns=["kind", "value"]),
        previous_memberships=pd.DataFrame(columns=["account_id", "cluster_id"]),
        block_threshold=0.8,
        review_threshold=0.5,
        window_end=END,
        seed=0,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def window() -> Window:
    return build_window()


@pytest.fixture(scope="module")
def baseline(window: Window) -> Detection:
    accounts, requests = window.frames()
    return detect(accounts, requests, context())


def by_kind(window: Window, detection: Detection) -> pd.DataFrame:
    d = detection.decisions.copy()
    d["kind"] = d["account_id"].map(window.kind)
    return d


def test_the_farm_is_blocked_and_nothing_else(window: Window, baseline: Detection) -> None:
    d = by_kind(window, baseline)
    assert set(d["account_id"]) == set(window.kind)
    assert set(d["decision"]) <= set(DECISIONS)
    assert d["score"].between(0, 1).all()
    farm = d[d["kind"] == "farm"]
    assert (farm["decision"] == "block").all(), farm[["account_id", "score"]]
    assert farm["cluster_id"].nunique() == 1 and farm["cluster_id"].notna().all()
    others = d[d["kind"] != "farm"]
    assert not (others["decision"] == "block").any(), others.nlargest(5, "score")


def test_blocked_accounts_carry_checkable_reasons(window: Window, baseline: Detection) -> None:
    d = baseline.decisions.set_index("account_id")
    reasons = " | ".join(d.loc["farm-03", "reasons"])
    assert "card card-f1" in reasons
    assert "IPs shared with farm members" in reasons
    assert "chain-of-thought elicitation" in reasons
    assert "signed up within" in reasons
    assert d.loc["farm-03", "evidence"]["channels"]["payment"] == 1.0
    cluster = baseline.clusters.set_index("cluster_id").loc[d.loc["farm-03", "cluster_id"]]
    assert cluster["decision"] == "block"
    cards = {c["fingerprint"] for c in cluster["evidence"]["payment_fingerprints"]}
    assert cards == {"card-f0", "card-f1"}
    assert cluster["evidence"]["ips"]["shared"] >= 6
    assert cluster["evidence"]["templates"][0]["template_id"] == "7"
    members = baseline.memberships[baseline.memberships["cluster_id"] == cluster.name]
    assert len(members) == cluster["size"] and members["strength"].between(0, 1).all()


def test_same_accounts_in_one_org_are_an_open_relationship() -> None:
    accounts, requests = build_window(farm_org="farmco").frames()
    d = detect(accounts, requests, context()).decisions
    assert not (d["decision"] == "block").any()


def test_farm_ids_are_stable_across_runs(window: Window, baseline: Detection) -> None:
    accounts, requests = window.frames()
    fresh = detect(accounts, requests, context())
    assert fresh.memberships.equals(baseline.memberships)
    previous = baseline.memberships[["account_id", "cluster_id"]]
    # drop one farm member from the window: the farm keeps its id
    fewer = requests[requests["account_id"] != "farm-00"]
    again = detect(
        accounts[accounts["account_id"] != "farm-00"], fewer, context(previous_memberships=previous)
    )
    old = baseline.decisions.set_index("account_id").loc["farm-05", "cluster_id"]
    assert again.decisions.set_index("account_id").loc["farm-05", "cluster_id"] == old


def test_legit_feedback_unblocks_and_farm_feedback_pulls_neighbours(
    window: Window, baseline: Detection
) -> None:
    accounts, requests = window.frames()
    feedback = pd.DataFrame({"account_id": ["farm-02", "family-0"], "label": ["legit", "farm"]})
    d = detect(accounts, requests, context(feedback=feedback)).decisions.set_index("account_id")
    before = baseline.decisions.set_index("account_id")
    assert d.loc["farm-02", "decision"] == "allow"
    assert d.loc["farm-02", "reasons"][0] == "confirmed legitimate by an analyst"
    assert d.loc["family-0", "decision"] == "block"
    assert d.loc["family-0", "reasons"][0] == "confirmed farm member by an analyst"
    assert d.loc["family-1", "score"] > before.loc["family-1", "score"]
    assert d.loc["user-05", "score"] == before.loc["user-05", "score"]


def test_allowlists_allow_and_cut_links(window: Window, baseline: Detection) -> None:
    accounts, requests = window.frames()
    proxies = [f"203.0.113.{j}" for j in range(8)]
    allow = pd.DataFrame(
        {
            "kind": ["account", "org", *["ip"] * len(proxies)],
            "value": ["farm-01", "acme", *proxies],
        }
    )
    result = detect(accounts, requests, context(allowlist=allow))
    d = result.decisions.set_index("account_id")
    assert d.loc["farm-01", "decision"] == "allow"
    assert d.loc["farm-01", "reasons"][0] == "allow-listed account"
    assert d.loc["acme-03", "reasons"][0] == "allow-listed org acme"
    assert d.loc["acme-03", "decision"] == "allow"
    # every farm request came from an allow-listed IP: not blocked, and the IPs link nobody
    assert (d.loc[d.index.str.startswith("farm-0"), "decision"] == "allow").all()
    for evidence in result.clusters["evidence"]:
        assert not {ip["ip"] for ip in evidence["ips"]["top"]} & set(proxies)


def test_progress_and_timings_name_every_stage(window: Window) -> None:
    accounts, requests = window.frames()
    seen: list[str] = []
    result = detect(accounts, requests, context(), progress=seen.append)
    assert seen == list(result.timings)
    assert seen[0] == "prepare" and "cluster" in seen and seen[-1] == "explain"
    assert result.stats["accounts"] == len(window.kind)
    assert result.stats["requests"] == len(requests)


def test_supervised_model_replaces_the_score_when_labels_suffice(window: Window) -> None:
    accounts, requests = window.frames()
    farm = [f"farm-{i:02d}" for i in range(6)]
    legit = [f"user-{i:02d}" for i in range(6)]
    feedback = pd.DataFrame({"account_id": farm + legit, "label": ["farm"] * 6 + ["legit"] * 6})
    params = EngineParams(risk=RiskParams(model="supervised", min_labels=5))
    result = detect(accounts, requests, context(feedback=feedback), params)
    assert result.stats["supervised"] == 1
    d = result.decisions.set_index("account_id")
    assert d.loc["farm-08", "decision"] == "block"
    assert d.loc["farm-08", "reasons"][0].startswith("supervised model p=")
    assert d.loc["user-40", "decision"] == "allow"


def test_an_empty_window_gives_empty_results() -> None:
    accounts, requests = build_window().frames()
    result = detect(accounts.iloc[:0], requests.iloc[:0], context())
    assert result.decisions.empty and result.clusters.empty and result.memberships.empty


def test_a_class_signing_up_together_on_campus_is_not_a_farm() -> None:
    # the campus accounts sign up within half an hour from the campus network: a shared place
    # and a shared moment are one coincidence, not a conjunction of independent signals
    w = build_window()
    burst = END - dt.timedelta(days=20)
    for account in w.accounts:
        if account["account_id"].startswith("campus"):
            minute = int(account["account_id"].split("-")[1])
            account["created_at"] = burst + dt.timedelta(minutes=minute)
            account["signup_ip"] = "100.64.0.1"
    accounts, requests = w.frames()
    d = by_kind(w, detect(accounts, requests, context()))
    assert not (d.loc[d["kind"] == "campus", "decision"] == "block").any()
    assert (d.loc[d["kind"] == "farm", "decision"] == "block").all()


def _card_cell(size: int, wrapper: int | None) -> Window:
    """The base window plus ``size`` accounts in no org sharing one card, each on its own home
    line at its own times; ``wrapper``: a prompt skeleton they send 60% of their prompts in."""
    w = build_window()
    rng = w.rng
    for i in range(size):
        a = f"cell-{i}"
        w.account(a, "cell", END - dt.timedelta(days=float(rng.uniform(30, 200))), card="card-x")
        w.traffic(
            a,
            w.random_times(int(rng.integers(30, 60))),
            [f"198.19.{i}.1"],
            str(rng.choice(COMMON_TLS)),
            [str(rng.choice(COMMON_UA))],
            (wrapper, 0.6) if wrapper is not None else (0, 0.2),
            (COT, 0.03),
        )
    return w


def test_a_small_cell_sharing_a_card_and_a_prompt_skeleton_is_blocked() -> None:
    skeleton = SKELETON_ID_OFFSET + 12345
    w = _card_cell(8, skeleton)
    d = by_kind(w, detect(*w.frames(), context())).set_index("account_id")
    cell = d[d["kind"] == "cell"]
    assert (cell["decision"] == "block").all(), cell["score"]
    assert any(f"T{skeleton}" in line for line in cell["reasons"].iloc[0])
    # the card alone is one signal
    w = _card_cell(8, None)
    d = by_kind(w, detect(*w.frames(), context()))
    assert not (d.loc[d["kind"] == "cell", "decision"] == "block").any()
    # a household of four with the same two signals is a family, not a farm
    w = _card_cell(4, skeleton)
    d = by_kind(w, detect(*w.frames(), context()))
    assert not (d.loc[d["kind"] == "cell", "decision"] == "block").any()
