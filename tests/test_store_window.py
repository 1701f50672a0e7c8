"""The window read and the per-request template table, on both backends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sentra_graph.ingest import ingest_frame
from sentra_graph.store import Store
from sentra_graph.store.window import (
    REPEATED_REQUEST_COLUMNS,
    WINDOW_REQUEST_COLUMNS,
    _inline_times,
)

T0 = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
START, END = T0, T0 + dt.timedelta(days=1)


def _requests(n: int, seed: int) -> pd.DataFrame:
    """``n`` requests inside [START, END), loaded in shuffled time order, a few outside."""
    rng = np.random.default_rng(seed)
    offsets = rng.permutation(n) * 10  # seconds: distinct times, any order
    frame = pd.DataFrame(
        {
            "request_id": [f"q{i:04d}" for i in range(n)],
            "ts": [T0 + dt.timedelta(seconds=int(s)) for s in offsets],
            "account_id": rng.choice(["a1", "a2", "a3"], n),
            "ip": rng.choice(["10.0.0.1", "10.0.0.2"], n),
            "prompt": [f"prompt {i}" if i % 5 else None for i in range(n)],
        }
    )
    outside = pd.DataFrame(
        {
            "request_id": ["early", "late"],
            "ts": [START - dt.timedelta(seconds=1), END],
            "account_id": "a1",
            "ip": "10.0.0.1",
            "prompt": "outside the window",
        }
    )
    return pd.concat([frame, outside], ignore_index=True)


def _assigned(pending: pd.DataFrame) -> pd.DataFrame:
    """Template ids made from the request number, for checks."""
    number = pending["request_id"].str.slice(1).astype(int)
    return pd.DataFrame(
        {"request_id": pending["request_id"], "ts": pending["ts"], "template_id": number % 7}
    )


@pytest.fixture
def loaded(store: Store) -> tuple[Store, pd.DataFrame]:
    requests = _requests(300, seed=1)
    ingest_frame(store, "requests", requests)
    return store, requests


def test_window_read_sorts_by_time_and_joins_assigned_templates(loaded) -> None:
    store, requests = loaded
    pending = pd.concat(list(store.iter_pending_prompts(START, END, batch_rows=64)))
    half = pending[pending["request_id"].str.slice(1).astype(int) % 2 == 0]
    store.set_template_ids(_assigned(half))

    _, window = store.read_window(START, END)
    inside = requests[(requests["ts"] >= START) & (requests["ts"] < END)]
    assert list(window.columns) == ["request_id", *WINDOW_REQUEST_COLUMNS]
    assert sorted(window["request_id"]) == sorted(inside["request_id"])
    assert window["ts"].is_monotonic_increasing
    expected = _assigned(half).set_index("request_id")["template_id"]
    got = window.set_index("request_id")["template_id"]
    assert (got[expected.index] == expected).all()
    assert got.drop(expected.index).isna().all()
    for column in REPEATED_REQUEST_COLUMNS:
        assert isinstance(window[column].dtype, pd.CategoricalDtype)
    by_id = inside.set_index("request_id")
    accounts = window.set_index("request_id")["account_id"].astype(str)
    assert (accounts == by_id.loc[accounts.index, "account_id"]).all()


def test_pending_prompts_are_the_window_requests_without_a_template(loaded) -> None:
    store, requests = loaded
    first = pd.concat(list(store.iter_pending_prompts(START, END, batch_rows=64)))
    inside = requests[(requests["ts"] >= START) & (requests["ts"] < END)]
    assert sorted(first["request_id"]) == sorted(inside["request_id"])
    assert list(first.columns) == ["request_id", "ts", "prompt", "prompt_embedding"]
    store.set_template_ids(_assigned(first.iloc[:100]))
    rest = pd.concat(list(store.iter_pending_prompts(START, END, batch_rows=64)))
    assert sorted(rest["request_id"]) == sorted(first["request_id"].iloc[100:])
    assert store.count_pending_prompts(START, END) == len(rest)


def test_a_request_keeps_its_first_template(loaded) -> None:
    store, _ = loaded
    pending = pd.concat(list(store.iter_pending_prompts(START, END, batch_rows=500)))
    first = _assigned(pending.iloc[:50])
    store.set_template_ids(first)
    again = _assigned(pending.iloc[25:75]).assign(template_id=99)
    store.set_template_ids(again)
    _, window = store.read_window(START, END)
    got = window.set_index("request_id")["template_id"]
    assert (got[first["request_id"]] == first["template_id"].to_numpy()).all()
    assert (got[pending["request_id"].iloc[50:75]] == 99).all()
    assert store.count_pending_prompts(START, END) == len(pending) - 75


def test_sample_prompts_come_from_the_window_and_have_a_prompt(loaded) -> None:
    store, requests = loaded
    sample = store.sample_prompts(START, END, 40)
    assert len(sample) == 40 and sample["request_id"].is_unique
    inside = requests[(requests["ts"] >= START) & (requests["ts"] < END)]
    with_prompt = set(inside.loc[inside["prompt"].notna(), "request_id"])
    assert set(sample["request_id"]) <= with_prompt
    assert len(store.sample_prompts(START, END, 10_000)) == len(with_prompt)


def test_empty_window_reads_empty_frames(store: Store) -> None:
    accounts, window = store.read_window(START, END)
    assert window.empty and accounts.empty
    assert list(window.columns) == ["request_id", *WINDOW_REQUEST_COLUMNS]
    assert list(store.iter_pending_prompts(START, END, batch_rows=10)) == []


def test_inlined_times_accept_only_aware_datetimes() -> None:
    sql = _inline_times("ts >= :start AND ts < :end", {"start": START, "end": END})
    assert sql == (
        "ts >= '2026-03-02 12:00:00+00:00'::timestamptz "
        "AND ts < '2026-03-03 12:00:00+00:00'::timestamptz"
    )
    with pytest.raises(TypeError, match="timezone-aware datetime"):
        _inline_times("ts >= :start", {"start": "2026-03-02'; drop table requests; --"})
    with pytest.raises(TypeError, match="timezone-aware datetime"):
        _inline_times("ts >= :start", {"start": dt.datetime(2026, 3, 2)})
