"""The run's output tables: clusters, memberships and decisions, with reasons and evidence.

>>> CLUSTER_COLUMNS
['cluster_id', 'size', 'score', 'decision', 'reasons', 'evidence']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.risk.evidence import CHANNELS
from sentra_graph.risk.reasons import Explainer, farm_reasons, group_line
from sentra_graph.risk.scoring import decide

__all__ = [
    "CLUSTER_COLUMNS",
    "DECISION_COLUMNS",
    "MEMBERSHIP_COLUMNS",
    "Scored",
    "build_frames",
]

CLUSTER_COLUMNS = ["cluster_id", "size", "score", "decision", "reasons", "evidence"]
MEMBERSHIP_COLUMNS = ["account_id", "cluster_id", "strength"]
DECISION_COLUMNS = ["account_id", "score", "decision", "cluster_id", "reasons", "evidence"]
OWN_REASON = 0.3
"""Own-behaviour score from which an account's own traffic is worth a reason line."""


@dataclass(frozen=True)
class Scored:
    """A scored window (arrays per account unless noted).

    labels: farm label (-1 none); ids: farm id per label; farms: per-farm scores (index =
    label); channels: member channels; own: own-behaviour score; markers: highest marker rate;
    first_reason: the override that decided, by account; notes: extra reason lines.
    """

    account_ids: np.ndarray
    labels: np.ndarray
    ids: list[str]
    farms: pd.DataFrame
    score: np.ndarray
    strength: np.ndarray
    decision: np.ndarray
    channels: pd.DataFrame
    own: np.ndarray
    markers: np.ndarray
    n_requests: np.ndarray
    first_reason: dict[int, str]
    notes: list[list[str]]


def _clusters(s: Scored, explainer: Explainer, block: float, review: float) -> pd.DataFrame:
    members = np.flatnonzero(s.labels >= 0)
    order = members[np.argsort(s.labels[members], kind="stable")]
    bounds = np.searchsorted(s.labels[order], np.arange(len(s.ids) + 1))
    scores = s.farms["score"].to_numpy(dtype=float) if len(s.ids) else np.zeros(0)
    decisions = decide(scores, block, review)
    rows = []
    for label, cluster_id in enumerate(s.ids):
        in_farm = order[bounds[label] : bounds[label + 1]]
        evidence = explainer.farm_evidence(label, in_farm)
        rows.append(
            {
                "cluster_id": cluster_id,
                "size": len(in_farm),
                "score": round(float(scores[label]), 4),
                "decision": str(decisions[label]),
                "reasons": farm_reasons(evidence),
                "evidence": evidence,
            }
        )
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS)


def _account_lines(
    s: Scored, explainer: Explainer, cluster_of: np.ndarray, block: float
) -> list[list[str]]:
    farms = s.farms
    size = farms["size"].to_numpy() if len(farms) else np.zeros(0)
    units = farms["units"].to_numpy() if len(farms) else np.zeros(0)
    score = farms["score"].to_numpy() if len(farms) else np.zeros(0)
    out: list[list[str]] = []
    for i in range(len(s.account_ids)):
        lines = [s.first_reason[i]] if i in s.first_reason else []
        lines.extend(s.notes[i])
        label = s.labels[i]
        if label >= 0:
            noun = "farm" if score[label] >= block else "group"
            group = group_line(int(size[label]), int(units[label]))
            lines.append(
                f"member of {noun} {cluster_of[i]}: {group}, {noun} score {score[label]:.2f}"
            )
            lines.extend(explainer.account(i, noun))
        if s.own[i] >= OWN_REASON:
            lines.append(
                f"own traffic: {s.markers[i]:.0%} of prompts with distillation markers, "
                f"{int(s.n_requests[i])} requests"
            )
        out.append(lines)
    return out


def _account_evidence(s: Scored) -> list[dict | None]:
    values = np.round(s.channels[list(CHANNELS)].to_numpy(), 3).tolist()
    out: list[dict | None] = []
    for i, row in enumerate(values):
        if s.labels[i] >= 0 or s.own[i] > 0:
            out.append(
                {
                    "channels": dict(zip(CHANNELS, row, strict=True)),
                    "membership": round(float(s.strength[i]), 3),
                    "behaviour": round(float(s.own[i]), 3),
                }
            )
        else:
            out.append(None)
    return out


def build_frames(
    s: Scored, explainer: Explainer, *, block: float, review: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(clusters, memberships, decisions)`` with the columns documented on
    :class:`~sentra_graph.detect.Detection`."""
    members = np.flatnonzero(s.labels >= 0)
    cluster_of = np.full(len(s.account_ids), None, dtype=object)
    cluster_of[members] = np.array(s.ids, dtype=object)[s.labels[members]]
    decisions = pd.DataFrame(
        {
            "account_id": s.account_ids,
            "score": np.round(s.score, 4),
            "decision": s.decision,
            "cluster_id": cluster_of,
            "reasons": _account_lines(s, explainer, cluster_of, block),
            "evidence": _account_evidence(s),
        },
        columns=DECISION_COLUMNS,
    )
    memberships = pd.DataFrame(
        {
            "account_id": s.account_ids[members],
            "cluster_id": cluster_of[members],
            "strength": np.round(s.strength[members], 4),
        },
        columns=MEMBERSHIP_COLUMNS,
    )
    return _clusters(s, explainer, block, review), memberships, decisions
