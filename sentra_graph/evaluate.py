"""Score a run's decisions against a scenario's ground truth.

Farm accounts are the positives. Recall counts farm accounts of farms with at least
``min_farm_size`` accounts (the farms the engine is asked to find); precision is over every
account the engine blocked (or reviewed). For look-alike and legit kinds the useful figures are
how many accounts were blocked or reviewed, and their rates.

>>> truth = pd.DataFrame({"account_id": list("abcdefg"),
...     "role": ["farm"] * 5 + ["lookalike", "legit"],
...     "kind": ["hydra"] * 5 + ["campus", "organic"], "group": ["hydra-0"] * 5 + [None, None]})
>>> decisions = pd.DataFrame({"account_id": list("abcdf"),
...     "decision": ["block", "block", "block", "review", "block"]})
>>> row = evaluate(decisions, truth).set_index(["role", "kind"]).loc[("farm", "all")]
>>> float(row.precision_block), float(row.recall_block), float(row.recall_review)
(0.75, 0.6, 0.8)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ALL", "evaluate", "summarise"]

ALL = "all"
"""The ``kind`` of a role's summary row (farm: farms of the minimum size only)."""

_ROLE_ORDER = {"farm": 0, "lookalike": 1, "legit": 2}
COLUMNS = [
    "role", "kind", "groups", "accounts", "blocked", "review_or_block", "block_rate",
    "review_rate", "precision_block", "recall_block", "precision_review", "recall_review",
]  # fmt: skip


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _kind_precision(frame: pd.DataFrame, rows: pd.Series, flag: str) -> float:
    """Precision of one farm kind: its flagged accounts against the innocents flagged in the
    same clusters (NaN without cluster ids)."""
    if "cluster_id" not in frame:
        return float("nan")
    hits = frame[rows & frame[flag]]
    clusters = set(hits["cluster_id"].dropna())
    innocents = frame[frame[flag] & ~frame["is_farm"] & frame["cluster_id"].isin(clusters)]
    return _ratio(len(hits), len(hits) + len(innocents))


def evaluate(
    decisions: pd.DataFrame, truth: pd.DataFrame, *, min_farm_size: int = 5
) -> pd.DataFrame:
    """One row per (role, kind) plus an ``all`` row per role; see :data:`COLUMNS`.

    Args:
        decisions: account_id, decision (allow/review/block), optionally cluster_id; accounts
            missing from it count as allowed.
        truth: account_id, role, kind, group (as :class:`sentra_graph.synth.Scenario` gives).
        min_farm_size: farms smaller than this are not counted in recall.
    """
    keep = ["account_id", "decision"] + (["cluster_id"] if "cluster_id" in decisions else [])
    frame = truth.merge(decisions[keep], on="account_id", how="outer")
    frame["role"] = frame["role"].fillna("legit")
    frame["kind"] = frame["kind"].fillna("unknown")
    frame["decision"] = frame["decision"].fillna("allow")
    frame["is_farm"] = frame["role"].eq("farm")
    frame["block"] = frame["decision"].eq("block")
    frame["review"] = frame["decision"].isin(["review", "block"])
    sizes = (
        frame.loc[frame["is_farm"]].groupby("group", dropna=False)["account_id"].transform("size")
    )
    frame["eligible"] = False
    frame.loc[sizes.index, "eligible"] = (sizes >= min_farm_size).to_numpy()
    frame.loc[frame["is_farm"] & frame["group"].isna(), "eligible"] = min_farm_size <= 1
    blocked, reviewed = frame["block"].sum(), frame["review"].sum()
    rows = []
    for role, kind in frame[["role", "kind"]].drop_duplicates().itertuples(index=False):
        rows.append(_row(frame, role, kind, frame["role"].eq(role) & frame["kind"].eq(kind)))
    for role in frame["role"].unique():
        rows.append(_row(frame, role, ALL, frame["role"].eq(role)))
    out = pd.DataFrame(rows, columns=COLUMNS)
    farm_all = (out["role"] == "farm") & (out["kind"] == ALL)
    n_farm_blocked = (frame["block"] & frame["is_farm"]).sum()
    n_farm_reviewed = (frame["review"] & frame["is_farm"]).sum()
    out.loc[farm_all, "precision_block"] = _ratio(n_farm_blocked, blocked)
    out.loc[farm_all, "precision_review"] = _ratio(n_farm_reviewed, reviewed)
    order = out["role"].map(_ROLE_ORDER).fillna(len(_ROLE_ORDER))
    out = out.assign(_r=order, _a=out["kind"].eq(ALL))
    return out.sort_values(["_r", "_a", "kind"]).drop(columns=["_r", "_a"]).reset_index(drop=True)


def _row(frame: pd.DataFrame, role: str, kind: str, rows: pd.Series) -> dict:
    part = frame[rows]
    row = {
        "role": role,
        "kind": kind,
        "groups": int(part["group"].nunique()),
        "accounts": len(part),
        "blocked": int(part["block"].sum()),
        "review_or_block": int(part["review"].sum()),
        "block_rate": _ratio(part["block"].sum(), len(part)),
        "review_rate": _ratio(part["review"].sum(), len(part)),
        "precision_block": np.nan,
        "recall_block": np.nan,
        "precision_review": np.nan,
        "recall_review": np.nan,
    }
    if role == "farm":
        eligible = part[part["eligible"]]
        row["accounts"] = len(eligible)
        row["blocked"] = int(eligible["block"].sum())
        row["review_or_block"] = int(eligible["review"].sum())
        row["recall_block"] = _ratio(eligible["block"].sum(), len(eligible))
        row["recall_review"] = _ratio(eligible["review"].sum(), len(eligible))
        row["block_rate"], row["review_rate"] = row["recall_block"], row["recall_review"]
        if kind != ALL:
            row["precision_block"] = _kind_precision(frame, rows, "block")
            row["precision_review"] = _kind_precision(frame, rows, "review")
    return row


def summarise(eval_df: pd.DataFrame) -> str:
    """A readable fixed-width table of :func:`evaluate`'s result (rates in percent).

    >>> df = pd.DataFrame([{"role": "farm", "kind": "all", "groups": 1, "accounts": 4,
    ...     "blocked": 3, "review_or_block": 4, "block_rate": 0.75, "review_rate": 1.0,
    ...     "precision_block": 1.0, "recall_block": 0.75, "precision_review": 0.8,
    ...     "recall_review": 1.0}])
    >>> print(summarise(df).splitlines()[2])
    farm      all              1        4        3        4    100.0    75.0    80.0   100.0
    """
    header = (
        f"{'role':<9} {'kind':<11} {'groups':>6} {'accounts':>8} {'blocked':>8} {'rev+blk':>8}"
        f" {'P@block':>8} {'R@block':>7} {'P@rev':>7} {'R@rev':>7}"
    )
    lines = [header, "-" * len(header)]

    def pct(value: float) -> str:
        return "-" if pd.isna(value) else f"{100 * value:.1f}"

    for row in eval_df.itertuples(index=False):
        if row.role == "farm":
            figures = (row.precision_block, row.recall_block, row.precision_review,
                       row.recall_review)  # fmt: skip
        else:
            figures = (np.nan, row.block_rate, np.nan, row.review_rate)
        lines.append(
            f"{row.role:<9} {row.kind:<11} {row.groups:>6} {row.accounts:>8} {row.blocked:>8}"
            f" {row.review_or_block:>8} {pct(figures[0]):>8} {pct(figures[1]):>7}"
            f" {pct(figures[2]):>7} {pct(figures[3]):>7}"
        )
    lines.append("(farm rows: precision/recall; other rows: R@ columns are the share blocked/"
                 "reviewed)")  # fmt: skip
    return "\n".join(lines)
