"""A small published run written by hand: two farms and unrelated accounts.

Farm F1 (12 accounts, blocked): two shared cards, one /24 of request IPs, one TLS fingerprint,
prompt templates 7 and 8, and synchronised bursts every two hours. Farm F2 (6 accounts,
review): one shared card. Twenty independent accounts share nothing and are allowed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.features.markers import prompt_markers
from sentra_graph.store import Store
from sentra_graph.store import schema as t

WINDOW_START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
WINDOW_END = WINDOW_START + dt.timedelta(days=2)
RUN_ID = "run-explore-1"
F1_CARD = "card-farm-A"
F1_DEVICE = "ja3-farm|python-httpx/0.27"


@dataclass
class FarmRun:
    run_id: str
    f1: list[str]
    f2: list[str]
    legit: list[str]


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def build_accounts() -> tuple[pd.DataFrame, FarmRun]:
    f1 = [f"farm1-{i:02d}" for i in range(12)]
    f2 = [f"farm2-{i:02d}" for i in range(6)]
    legit = [f"user-{i:02d}" for i in range(20)]
    rows = []
    for i, account in enumerate(f1):
        rows.append(
            {
                "account_id": account,
                "created_at": WINDOW_START + dt.timedelta(minutes=i),
                "payment_fingerprint": F1_CARD if i < 8 else "card-farm-B",
                "signup_ip": f"203.0.113.{i}",
                "email_domain": "mailbox.example",
            }
        )
    for i, account in enumerate(f2):
        rows.append(
            {
                "account_id": account,
                "created_at": WINDOW_START + dt.timedelta(hours=3, minutes=i),
                "payment_fingerprint": "card-farm-C",
                "signup_ip": f"192.0.2.{i}",
            }
        )
    for i, account in enumerate(legit):
        rows.append(
            {
                "account_id": account,
                "created_at": WINDOW_START - dt.timedelta(days=30 + i),
                "payment_fingerprint": f"card-user-{i}",
                "signup_ip": f"10.{i}.0.1",
                "org_id": f"org-{i}",
            }
        )
    frame = pd.DataFrame(rows)
    frame["inferred"] = False
    return frame, FarmRun(RUN_ID, f1, f2, legit)


def build_requests(ids: FarmRun, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for burst in range(0, 48, 2):
        at = WINDOW_START + dt.timedelta(hours=burst)
        for i, account in enumerate(ids.f1):
            for k in range(5):
                template = 7 if k < 4 else 8
                rows.append(
                    {
                        "account_id": account,
                        "ts": at + dt.timedelta(seconds=int(rng.integers(0, 120))),
                        "ip": f"198.51.100.{i % 4}",
                        "user_agent": "python-httpx/0.27",
                        "tls_fingerprint": "ja3-farm",
                        "template_id": template,
                        "prompt": f"Think step by step and show your reasoning. Task {burst}-{k}",
                    }
                )
    for i, account in enumerate(ids.f2):
        for k in range(10):
            rows.append(
                {
                    "account_id": account,
                    "ts": WINDOW_START + dt.timedelta(hours=4 + 3 * k, minutes=i),
                    "ip": f"192.0.2.{10 + i}",
                    "user_agent": "curl/8.0",
                    "tls_fingerprint": f"ja3-f2-{i}",
                    "template_id": 3,
                    "prompt": f"Rate the following response on a scale of 1 to 10: {k}",
                }
            )
    for i, account in enumerate(ids.legit):
        for _ in range(15):
            rows.append(
                {
                    "account_id": account,
                    "ts": WINDOW_START + dt.timedelta(minutes=int(rng.integers(0, 2 * 24 * 60))),
                    "ip": f"10.{i}.0.1",
                    "user_agent": f"Mozilla/5.0 user {i}",
                    "tls_fingerprint": f"ja3-user-{i}" if i else None,
                    "template_id": -1,
                    "prompt": f"help me write an email number {int(rng.integers(1000))}",
                }
            )
    frame = pd.DataFrame(rows).sort_values("ts", ignore_index=True)
    frame["request_id"] = [f"r{i:05d}" for i in range(len(frame))]
    frame["markers"] = prompt_markers(frame["prompt"])
    frame["model"] = "model-x"
    frame["status"] = 200
    return frame


def build_results(ids: FarmRun) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    f1_reasons = [
        f"shares payment card {F1_CARD} with 7 other accounts of farm F1",
        "12 accounts send synchronised bursts every 2 hours",
        "requests come from one /24 prefix 198.51.100.0/24",
    ]
    clusters = pd.DataFrame(
        [
            {
                "cluster_id": "F1",
                "size": len(ids.f1),
                "score": 0.94,
                "decision": "block",
                "reasons": f1_reasons,
                "evidence": {
                    "payment_fingerprints": [
                        {"value": F1_CARD, "accounts": 8},
                        {"value": "card-farm-B", "accounts": 4},
                    ],
                    "ip_prefixes": {"198.51.100.0/24": 12},
                    "burst_sync": 0.91,
                },
            },
            {
                "cluster_id": "F2",
                "size": len(ids.f2),
                "score": 0.62,
                "decision": "review",
                "reasons": ["shares payment card card-farm-C with 5 other accounts"],
                "evidence": {"payment_fingerprints": [{"value": "card-farm-C", "accounts": 6}]},
            },
        ]
    )
    memberships = pd.DataFrame(
        [
            {"account_id": a, "cluster_id": "F1", "strength": 0.9 - i / 100}
            for i, a in enumerate(ids.f1)
        ]
        + [{"account_id": a, "cluster_id": "F2", "strength": 0.7} for a in ids.f2]
    )
    decisions = pd.DataFrame(
        [
            {
                "account_id": a,
                "score": 0.93,
                "decision": "block",
                "cluster_id": "F1",
                "reasons": f1_reasons,
                "evidence": {"card": F1_CARD if i < 8 else "card-farm-B"},
            }
            for i, a in enumerate(ids.f1)
        ]
        + [
            {
                "account_id": a,
                "score": 0.6,
                "decision": "review",
                "cluster_id": "F2",
                "reasons": ["shares payment card card-farm-C with 5 other accounts"],
                "evidence": None,
            }
            for a in ids.f2
        ]
        + [
            {
                "account_id": a,
                "score": 0.05,
                "decision": "allow",
                "cluster_id": None,
                "reasons": [],
                "evidence": None,
            }
            for a in ids.legit
        ]
    )
    return clusters, memberships, decisions


def write_farm_run(store: Store) -> FarmRun:
    """Write the accounts, requests and a published run with farms F1 and F2 into ``store``."""
    accounts, ids = build_accounts()
    requests = build_requests(ids)
    templates = requests.loc[requests["template_id"].notna(), ["ts", "request_id", "template_id"]]
    with store.begin() as conn:
        conn.execute(t.accounts.insert(), _records(accounts))
        conn.execute(t.requests.insert(), _records(requests.drop(columns="template_id")))
        conn.execute(t.request_templates.insert(), _records(templates))
    store.start_run(RUN_ID, WINDOW_START, WINDOW_END, {"seed": 0})
    store.write_results(RUN_ID, *build_results(ids))
    store.publish_run(
        RUN_ID,
        timings={"read": 0.4, "features": 1.2, "graph": 2.5, "cluster": 0.8, "score": 0.3},
        stats={"accounts": 38, "farms": 2},
        expiry=dt.timedelta(days=3650),
    )
    return ids
