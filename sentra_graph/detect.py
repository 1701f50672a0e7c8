"""The engine's pure entry point: a window of accounts and requests in, farms and decisions out.

Nothing here touches a database; :mod:`sentra_graph.pipeline` reads the window from the store,
calls :func:`detect` and writes the :class:`Detection` back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

DECISIONS = ("allow", "review", "block")
"""Decisions ordered from mildest to harshest."""


@dataclass(frozen=True)
class DetectContext:
    """What a run knows besides the window itself.

    feedback: latest analyst label per account (columns account_id, label in {farm, legit}).
    allowlist: columns kind in {account, org, ip}, value.
    previous_memberships: the last published run's memberships (account_id, cluster_id), used
        to keep farm ids stable from run to run.
    block_threshold, review_threshold: score cut-offs for the decisions.
    window_end: the end of the window (the run's notion of "now").
    """

    feedback: pd.DataFrame
    allowlist: pd.DataFrame
    previous_memberships: pd.DataFrame
    block_threshold: float
    review_threshold: float
    window_end: dt.datetime
    seed: int = 0


@dataclass
class Detection:
    """A run's results.

    clusters: cluster_id, size, score, decision, reasons (list[str]), evidence (dict).
    memberships: account_id, cluster_id, strength in [0, 1].
    decisions: account_id, score in [0, 1], decision, cluster_id (None if none),
        reasons (list[str], most important first), evidence (dict or None).
    timings: seconds per stage; stats: counts worth recording with the run.
    """

    clusters: pd.DataFrame
    memberships: pd.DataFrame
    decisions: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float | int | str] = field(default_factory=dict)
