"""Optional supervised scoring: gradient boosting on account and farm features, trained on labels.

Used instead of the transparent evidence score when ``RiskParams.model == "supervised"`` and
analysts have labelled at least ``min_labels`` accounts of each class; otherwise the run keeps
the transparent score. Each score comes with a short explanation naming the inputs that
moved it most (feature importance times how far the account's value is from the labelled
average).

>>> X = pd.DataFrame({"payment": [0.0] * 20 + [1.0] * 21, "noise": [0.5] * 41})
>>> y = np.array([0] * 20 + [1] * 20 + [UNLABELLED])
>>> fit = supervised_scores(X, y, min_labels=10, seed=0)
>>> bool(fit.scores[-1] > 0.5), fit.explanations[-1].split(";")[0]
(True, 'supervised model p=1.00')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier

__all__ = ["SupervisedFit", "label_vector", "supervised_scores"]

UNLABELLED = -1
"""Label value of an account no analyst has labelled."""


@dataclass(frozen=True)
class SupervisedFit:
    """Scores for every account, a one-line explanation each, and the fitted model."""

    scores: np.ndarray
    explanations: list[str]
    model: GradientBoostingClassifier


def label_vector(account_ids: np.ndarray, labels: dict[str, str]) -> np.ndarray:
    """1 for ``farm``, 0 for ``legit``, :data:`UNLABELLED` otherwise, per account.

    >>> label_vector(np.array(["a", "b", "c"]), {"a": "farm", "c": "legit"}).tolist()
    [1, -1, 0]
    """
    mapping = {"farm": 1, "legit": 0}
    return np.array([mapping.get(labels.get(a, ""), UNLABELLED) for a in account_ids.tolist()])


def supervised_scores(
    features: pd.DataFrame, y: np.ndarray, *, min_labels: int, seed: int
) -> SupervisedFit | None:
    """Fit on the labelled rows of ``features`` and score every row; None if too few labels."""
    labelled = y != UNLABELLED
    if min(int((y == 1).sum()), int((y == 0).sum())) < min_labels:
        return None
    X = features.fillna(0.0).to_numpy(dtype=np.float64)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=seed)
    model.fit(X[labelled], y[labelled])
    scores = model.predict_proba(X)[:, 1]
    centre = X[labelled].mean(axis=0)
    spread = X[labelled].std(axis=0) + 1e-9
    push = model.feature_importances_ * np.abs(X - centre) / spread
    names = np.asarray(features.columns)
    top = np.argsort(-push, axis=1)[:, :3]
    explanations = [
        f"supervised model p={p:.2f}; strongest inputs: " + ", ".join(names[row])
        for p, row in zip(scores, top, strict=True)
    ]
    return SupervisedFit(scores, explanations, model)
