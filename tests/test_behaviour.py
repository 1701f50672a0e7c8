"""Per-account behaviour and template aggregates, checked against pandas group-bys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentra_graph.features.behaviour import (
    NO_PROMPT,
    NO_TEMPLATE,
    activity_matrix,
    behaviour_features,
    epoch_seconds,
    pair_counts,
    template_features,
)
from sentra_graph.features.markers import COT, RUBRIC, TOOL


def random_requests(seed: int, n_accounts: int = 30, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "acc": rng.integers(0, n_accounts - 2, n),  # the last two accounts stay silent
            "t": np.sort(rng.uniform(0, 7 * 86_400, n)),
            "ip": rng.integers(-1, 40, n),
            "prefix": rng.integers(-1, 10, n),
            "device": rng.integers(-1, 8, n),
            "model": rng.integers(-1, 3, n),
            "api_key": rng.integers(-1, 5, n),
            "pt": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 500, n)),
            "ct": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 900, n)),
            "status": rng.choice([200, 200, 200, 429, 500], n).astype(float),
            "template": rng.choice([NO_PROMPT, NO_TEMPLATE, 0, 1, 2, 3], n),
            "markers": rng.choice([0, COT, RUBRIC, TOOL, COT | TOOL], n),
        }
    )
    return frame


def features(frame: pd.DataFrame, n_accounts: int = 30) -> pd.DataFrame:
    return behaviour_features(
        frame["acc"].to_numpy(),
        frame["t"].to_numpy(),
        n_accounts,
        ip=frame["ip"].to_numpy(),
        prefix=frame["prefix"].to_numpy(),
        device=frame["device"].to_numpy(),
        model=frame["model"].to_numpy(),
        api_key=frame["api_key"].to_numpy(),
        prompt_tokens=frame["pt"].to_numpy(dtype=float),
        completion_tokens=frame["ct"].to_numpy(dtype=float),
        status=frame["status"].to_numpy(),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_behaviour_matches_pandas(seed: int) -> None:
    frame = random_requests(seed)
    ours = features(frame)
    g = frame.groupby("acc")
    idx = g.size().index

    def distinct(col: str) -> pd.Series:
        return frame[frame[col] >= 0].groupby("acc")[col].nunique().reindex(idx, fill_value=0)

    assert ours.loc[idx, "n_requests"].tolist() == g.size().tolist()
    for name, col in [("n_ips", "ip"), ("n_prefixes", "prefix"), ("n_devices", "device")]:
        assert ours.loc[idx, name].tolist() == distinct(col).tolist()
    assert np.allclose(ours.loc[idx, "prompt_tokens_mean"], g["pt"].mean())
    ratio = g["ct"].sum() / g["pt"].sum()
    assert np.allclose(ours.loc[idx, "completion_ratio"], ratio)
    assert np.allclose(ours.loc[idx, "error_rate"], g["status"].apply(lambda s: (s >= 400).mean()))
    top = frame[frame["model"] >= 0].groupby("acc")["model"].agg(lambda s: s.value_counts().max())
    assert np.allclose(ours.loc[idx, "top_model_share"], top / g.size())
    hours = g["t"].apply(lambda s: np.floor(s / 3600).nunique())
    assert ours.loc[idx, "active_hours"].tolist() == hours.tolist()
    gaps = frame.assign(gap=g["t"].diff()).groupby("acc")["gap"]
    cv = gaps.std(ddof=0) / gaps.mean()
    assert np.allclose(ours.loc[idx, "gap_cv"], cv)
    silent = ours.loc[[28, 29]]
    assert (silent["n_requests"] == 0).all() and silent["gap_cv"].isna().all()


def test_regular_traffic_has_low_gap_variation_and_round_the_clock_entropy() -> None:
    t = np.arange(0, 2 * 86_400, 600.0)  # every 10 minutes for two days
    bursty = np.concatenate([np.arange(0, 300, 10.0), 40_000 + np.arange(0, 300, 10.0)])
    acc = np.r_[np.zeros(len(t), dtype=np.int64), np.ones(len(bursty), dtype=np.int64)]
    z = np.zeros(len(acc), dtype=np.int64)
    nan = np.full(len(acc), np.nan)
    f = behaviour_features(
        acc,
        np.r_[t, bursty],
        2,
        ip=z,
        prefix=z,
        device=z,
        model=z,
        api_key=z,
        prompt_tokens=nan,
        completion_tokens=nan,
        status=nan,
    )
    assert f.loc[0, "gap_cv"] == pytest.approx(0.0, abs=1e-9)
    assert f.loc[1, "gap_cv"] > 3
    assert f.loc[0, "hour_entropy"] == pytest.approx(1.0)
    assert f.loc[1, "hour_entropy"] < 0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_template_features_match_pandas(seed: int) -> None:
    frame = random_requests(seed)
    ours = template_features(
        frame["acc"].to_numpy(), frame["template"].to_numpy(), frame["markers"].to_numpy(), 30
    )
    prompted = frame[frame["template"] != NO_PROMPT]
    g = prompted.groupby("acc")
    idx = g.size().index
    for name, bit in [("cot_rate", COT), ("rubric_rate", RUBRIC), ("tool_rate", TOOL)]:
        expected = g["markers"].apply(lambda m, b=bit: ((m & b) > 0).mean())
        assert np.allclose(ours.loc[idx, name], expected)
    templated = prompted[prompted["template"] >= 0].groupby("acc")["template"]
    top = templated.agg(lambda s: s.value_counts().max()).reindex(idx, fill_value=0)
    assert np.allclose(ours.loc[idx, "top_template_share"], top / g.size())
    counts = templated.value_counts()
    for acc in idx[:10]:
        if acc in counts.index.get_level_values(0):
            best = counts.loc[acc]
            assert best.loc[ours.loc[acc, "top_template"]] == best.max()


def test_activity_matrix_counts_requests_per_bin() -> None:
    frame = random_requests(2)
    m = activity_matrix(frame["acc"].to_numpy(), frame["t"].to_numpy(), 30, bin_seconds=600.0)
    assert m.sum() == len(frame)
    assert m.shape[1] == int((frame["t"].max() - frame["t"].min() // 600 * 600) // 600) + 1
    per_account = np.asarray(m.sum(axis=1)).ravel()
    assert per_account.tolist() == np.bincount(frame["acc"], minlength=30).tolist()


def test_pair_counts_skip_missing_codes() -> None:
    acc, codes, counts = pair_counts(np.array([1, 1, 0, 0, 0]), np.array([2, 2, -1, 5, 5]))
    assert list(zip(acc.tolist(), codes.tolist(), counts.tolist(), strict=True)) == [
        (0, 5, 2),
        (1, 2, 2),
    ]


def test_epoch_seconds_ignores_the_timestamp_unit() -> None:
    ts = pd.Series(pd.to_datetime(["2025-01-01T00:00:00.0Z", "2025-01-01T00:00:01.5Z"]))
    for unit in ("ns", "us", "ms"):
        out = epoch_seconds(ts.dt.as_unit(unit))
        assert out[1] - out[0] == pytest.approx(1.5)
