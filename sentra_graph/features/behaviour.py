"""Per-account behaviour and prompt-template aggregates, computed from per-request arrays.

Every function here takes integer-coded request columns (one entry per request, ``-1`` for a
missing value) and the request's account code, and returns one row per account; the cost is a
few vectorised passes over the requests, never a loop over accounts.

>>> acc = np.array([0, 0, 1]); t = np.array([0.0, 60.0, 30.0])
>>> activity_matrix(acc, t, 2, bin_seconds=600.0).toarray().tolist()
[[2.0], [1.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from sentra_graph.features.markers import COT, RUBRIC, TOOL

__all__ = [
    "NO_PROMPT",
    "NO_TEMPLATE",
    "activity_matrix",
    "behaviour_features",
    "epoch_seconds",
    "pair_counts",
    "template_features",
    "template_marker_rates",
]

NO_TEMPLATE = -1
"""Template id of a prompt that fits no template (template-clustering noise)."""
NO_PROMPT = -2
"""Template id of a request without prompt text or embedding."""


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since the epoch (float64) of a tz-aware or naive-UTC timestamp series.

    >>> epoch_seconds(pd.Series(pd.to_datetime(["1970-01-01T00:01:00Z"]))).tolist()
    [60.0]
    """
    values = pd.to_datetime(ts, utc=True)
    return values.dt.as_unit("ms").astype("int64").to_numpy(dtype=np.float64) / 1000.0


def pair_counts(acc: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (account, code) pairs and how many requests each has; codes < 0 are skipped.

    Sorted by account, then code (a sparse count table: linear time, no global sort).

    >>> [x.tolist() for x in pair_counts(np.array([0, 0, 1]), np.array([3, 3, -1]))]
    [[0], [3], [2]]
    """
    keep = codes >= 0
    if not keep.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    rows, cols = acc[keep], codes[keep]
    table = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)),
        shape=(int(rows.max()) + 1, int(cols.max()) + 1),
    )
    table.sum_duplicates()
    owner = np.repeat(np.arange(table.shape[0], dtype=np.int64), np.diff(table.indptr))
    return owner, table.indices.astype(np.int64), table.data.astype(np.int64)


def _distinct(acc: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    pair_acc, _, _ = pair_counts(acc, codes)
    return np.bincount(pair_acc, minlength=n)


def _top_share(acc: np.ndarray, codes: np.ndarray, n: int, total: np.ndarray) -> np.ndarray:
    pair_acc, _, counts = pair_counts(acc, codes)
    top = np.zeros(n)
    np.maximum.at(top, pair_acc, counts)
    return np.divide(top, total, out=np.zeros(n), where=total > 0)


def _mean(acc: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    valid = ~np.isnan(values)
    sums = np.bincount(acc[valid], weights=values[valid], minlength=n)
    counts = np.bincount(acc[valid], minlength=n)
    return np.divide(sums, counts, out=np.full(n, np.nan), where=counts > 0)


def _gap_cv(acc: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Coefficient of variation of inter-arrival gaps (NaN below three requests)."""
    order = np.lexsort((t, acc))
    a, ts = acc[order], t[order]
    same = a[1:] == a[:-1]
    gaps, owner = np.diff(ts)[same], a[1:][same]
    count = np.bincount(owner, minlength=n).astype(np.float64)
    total = np.bincount(owner, weights=gaps, minlength=n)
    sq = np.bincount(owner, weights=gaps * gaps, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
        cv = std / mean
    cv[(count < 2) | ~np.isfinite(cv)] = np.nan
    return cv


def _hour_entropy(acc: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Normalised entropy of the hour-of-day profile: 1 for round-the-clock, 0 for one hour."""
    hour = ((t % 86_400.0) // 3_600.0).astype(np.int64)
    hist = np.bincount(acc.astype(np.int64) * 24 + hour, minlength=n * 24).reshape(n, 24)
    total = hist.sum(axis=1, keepdims=True)
    p = np.divide(hist, total, out=np.zeros(hist.shape), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(24.0)
    h[total[:, 0] < 2] = np.nan
    return h


def behaviour_features(
    acc: np.ndarray,
    t: np.ndarray,
    n: int,
    *,
    ip: np.ndarray,
    prefix: np.ndarray,
    device: np.ndarray,
    model: np.ndarray,
    api_key: np.ndarray,
    prompt_tokens: np.ndarray,
    completion_tokens: np.ndarray,
    status: np.ndarray,
) -> pd.DataFrame:
    """Volume, rate, timing regularity, token ratios, model mix and network churn per account.

    acc: account code (0..n-1) of each request; t: epoch seconds; ip, prefix, device, model,
    api_key: integer codes (-1 missing); prompt_tokens, completion_tokens, status: floats (NaN
    missing). Returns a frame indexed by account code.

    >>> z = np.zeros(2, dtype=np.int64)
    >>> f = behaviour_features(z, np.array([0.0, 30.0]), 1, ip=z, prefix=z, device=z, model=z,
    ...     api_key=z, prompt_tokens=np.array([10.0, 30.0]),
    ...     completion_tokens=np.array([40.0, 40.0]), status=np.array([200.0, 500.0]))
    >>> f.loc[0, ["n_requests", "completion_ratio", "error_rate"]].tolist()
    [2.0, 2.0, 0.5]
    """
    n_req = np.bincount(acc, minlength=n).astype(np.float64)
    hours = np.floor(t / 3_600.0).astype(np.int64)
    days = np.floor(t / 86_400.0).astype(np.int64)
    active_hours = _distinct(acc, hours - hours.min() if len(hours) else hours, n)
    active_days = _distinct(acc, days - days.min() if len(days) else days, n)
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, acc, t)
    np.maximum.at(last, acc, t)
    span = np.where(n_req > 0, (last - first) / 3_600.0, 0.0)
    pt_sum = np.bincount(acc, weights=np.nan_to_num(prompt_tokens), minlength=n)
    ct_sum = np.bincount(acc, weights=np.nan_to_num(completion_tokens), minlength=n)
    errors = np.bincount(acc, weights=(np.nan_to_num(status) >= 400).astype(float), minlength=n)
    n_ips = _distinct(acc, ip, n)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros(n), where=b > 0)

    return pd.DataFrame(
        {
            "n_requests": n_req,
            "active_hours": active_hours,
            "active_days": active_days,
            "span_hours": span,
            "rate_per_active_hour": ratio(n_req, active_hours.astype(float)),
            "hour_entropy": _hour_entropy(acc, t, n),
            "gap_cv": _gap_cv(acc, t, n),
            "prompt_tokens_mean": _mean(acc, prompt_tokens, n),
            "completion_tokens_mean": _mean(acc, completion_tokens, n),
            "completion_ratio": ratio(ct_sum, pt_sum),
            "n_models": _distinct(acc, model, n),
            "top_model_share": _top_share(acc, model, n, n_req),
            "n_ips": n_ips,
            "n_prefixes": _distinct(acc, prefix, n),
            "ip_churn": ratio(n_ips.astype(float), n_req),
            "n_devices": _distinct(acc, device, n),
            "n_api_keys": _distinct(acc, api_key, n),
            "error_rate": ratio(errors, n_req),
        }
    )


def template_features(
    acc: np.ndarray, template_id: np.ndarray, markers: np.ndarray, n: int
) -> pd.DataFrame:
    """Per-account template concentration and marker rates.

    template_id: per request, ``>= 0`` a template, :data:`NO_TEMPLATE` or :data:`NO_PROMPT`;
    markers: bit flags (:data:`~sentra_graph.features.markers.COT` ...). Shares and rates are
    over the account's requests that carry a prompt.

    >>> f = template_features(np.array([0, 0, 0]), np.array([7, 7, -1]), np.array([1, 1, 0]), 1)
    >>> f.loc[0, ["top_template", "top_template_share", "cot_rate"]].round(2).tolist()
    [7.0, 0.67, 0.67]
    """
    with_prompt = template_id != NO_PROMPT
    n_prompt = np.bincount(acc[with_prompt], minlength=n).astype(np.float64)
    pair_acc, pair_tpl, counts = pair_counts(acc, template_id)
    order = np.lexsort((-counts, pair_acc))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair_acc[order][1:] != pair_acc[order][:-1]
    top_rows = order[first]
    top_template = np.full(n, NO_TEMPLATE, dtype=np.int64)
    top_count = np.zeros(n)
    top_template[pair_acc[top_rows]] = pair_tpl[top_rows]
    top_count[pair_acc[top_rows]] = counts[top_rows]
    templated = np.bincount(acc[template_id >= 0], minlength=n)

    def rate(bit: int) -> np.ndarray:
        hits = np.bincount(acc[with_prompt & ((markers & bit) > 0)], minlength=n)
        return np.divide(hits, n_prompt, out=np.zeros(n), where=n_prompt > 0)

    return pd.DataFrame(
        {
            "n_prompts": n_prompt,
            "top_template": top_template,
            "top_template_share": np.divide(
                top_count, n_prompt, out=np.zeros(n), where=n_prompt > 0
            ),
            "templated_share": np.divide(templated, n_prompt, out=np.zeros(n), where=n_prompt > 0),
            "n_templates": np.bincount(pair_acc, minlength=n),
            "cot_rate": rate(COT),
            "rubric_rate": rate(RUBRIC),
            "tool_rate": rate(TOOL),
        }
    )


def template_marker_rates(template_id: np.ndarray, markers: np.ndarray) -> pd.DataFrame:
    """Chain-of-thought, rubric and tool-use rates of each template's requests (index: id).

    >>> template_marker_rates(np.array([4, 4, -1]), np.array([1, 0, 1])).loc[4, "cot_rate"]
    np.float64(0.5)
    """
    has = template_id >= 0
    frame = pd.DataFrame(
        {
            "template_id": template_id[has],
            "cot_rate": (markers[has] & COT) > 0,
            "rubric_rate": (markers[has] & RUBRIC) > 0,
            "tool_rate": (markers[has] & TOOL) > 0,
        }
    )
    return frame.groupby("template_id").mean()


def activity_matrix(
    acc: np.ndarray, t: np.ndarray, n: int, *, bin_seconds: float, start: float | None = None
) -> sparse.csr_matrix:
    """Requests per account (rows) and time bin (columns) as a sparse matrix.

    start: left edge of the first bin (default: the earliest request, floored to a bin).
    """
    if len(t) == 0:
        return sparse.csr_matrix((n, 1))
    origin = np.floor(t.min() / bin_seconds) * bin_seconds if start is None else start
    bins = np.floor((t - origin) / bin_seconds).astype(np.int64)
    n_bins = int(bins.max()) + 1
    matrix = sparse.coo_matrix(
        (np.ones(len(acc)), (acc.astype(np.int64), bins)), shape=(n, n_bins)
    ).tocsr()
    matrix.sum_duplicates()
    return matrix
