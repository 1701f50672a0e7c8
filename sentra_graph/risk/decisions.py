"""Final scores and decisions: the evidence score, then what analysts said, then allow-lists.

Order of precedence (strongest last): the computed score (plus the pull of confirmed farm
accounts on their neighbours); an analyst's ``farm`` label (blocked); an analyst's ``legit``
label and the allow-lists (allowed, score capped below review). Every override puts its reason
first in the account's reasons.

>>> v = apply_analysts(np.array([0.9, 0.9, 0.2]), np.array([-1, 0, 1]), [None, None, None],
...                    np.zeros(3), block=0.8, review=0.5, pull_weight=0.3)
>>> v.decision.tolist()
['block', 'allow', 'block']
>>> v.first_reason[2]
'confirmed farm member by an analyst'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentra_graph.risk.scoring import DECISIONS, decide

__all__ = ["CONFIRMED_FARM", "CONFIRMED_LEGIT", "Verdicts", "apply_analysts"]

CONFIRMED_FARM = "confirmed farm member by an analyst"
CONFIRMED_LEGIT = "confirmed legitimate by an analyst"
CONFIRMED_FARM_SCORE = 0.99
"""Score of an account an analyst confirmed as a farm member."""
MIN_PULL_NOTE = 0.05
"""Smallest score added by confirmed neighbours that is worth a reason line."""


@dataclass
class Verdicts:
    """Scores and decisions after feedback, the reason that decided (if an override did), and
    extra reason lines per account."""

    score: np.ndarray
    decision: np.ndarray
    first_reason: dict[int, str]
    notes: list[list[str]]


def apply_analysts(
    score: np.ndarray,
    labels: np.ndarray,
    allow_reasons: list[str | None],
    pull: np.ndarray,
    *,
    block: float,
    review: float,
    pull_weight: float,
) -> Verdicts:
    """Apply analyst labels (1 farm, 0 legit, -1 none per account) and allow-lists.

    allow_reasons: why each account is allow-listed (None if not); pull: tie of each account to
    confirmed farm accounts in [0, 1] (:func:`~sentra_graph.risk.feedback.farm_pull`).
    """
    confirmed = labels == 1
    score = np.clip(score + pull_weight * pull, 0.0, 1.0)
    score[confirmed] = np.maximum(score[confirmed], CONFIRMED_FARM_SCORE)
    first: dict[int, str] = {int(i): CONFIRMED_FARM for i in np.flatnonzero(confirmed)}
    allowed: dict[int, str] = {int(i): CONFIRMED_LEGIT for i in np.flatnonzero(labels == 0)}
    allowed.update({i: r for i, r in enumerate(allow_reasons) if r is not None})
    cap = review * 0.99
    for i in allowed:
        score[i] = min(score[i], cap)
    decision = decide(score, block, review)
    for i, reason in allowed.items():
        decision[i] = DECISIONS[0]
        first[i] = reason
    notes: list[list[str]] = [[] for _ in range(len(score))]
    for j in np.flatnonzero((pull_weight * pull >= MIN_PULL_NOTE) & ~confirmed):
        notes[j].append(f"linked to analyst-confirmed farm accounts ({pull[j]:.0%} pull)")
    return Verdicts(score, decision, first, notes)
