"""The dense classifier of the transfer step: an L2 logistic regression (ridge for numeric labels)
with its strength chosen by cross-validation on the source, and the scores it is judged by.

scikit-learn does this well and is already a dependency, so the transfer step uses it: lbfgs
logistic regression with C from a log grid by stratified 3-fold accuracy, RidgeCV for scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold

CS = np.logspace(-4, 2, 7)  # inverse L2 strengths tried for the logistic classifier
ALPHAS = np.logspace(-1, 5, 7)  # ridge strengths tried for numeric labels
FOLDS = 3
MAX_ITER = 2000


@dataclass
class Fitted:
    """A fitted linear model: (K or 1, features) weights, intercepts, and its source CV score."""

    model: Any
    kind: str  # "class" or "numeric"
    cv_score: float

    @property
    def coef(self) -> np.ndarray:
        return np.atleast_2d(self.model.coef_)

    def decision(self, z: np.ndarray) -> np.ndarray:
        return self.model.decision_function(z) if self.kind == "class" else self.model.predict(z)


def fit(z: np.ndarray, y: np.ndarray, kind: str, seed: int = 0) -> Fitted:
    """Fit on standardised source activations z (n, features), strength chosen by cross-validation."""
    if kind == "class":
        model = LogisticRegressionCV(
            Cs=CS, cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed), l1_ratios=(0.0,),
            scoring="accuracy", max_iter=MAX_ITER, use_legacy_attributes=False,
        ).fit(z, y)  # fmt: skip
        cv_score = float(np.max(model.scores_.mean(axis=0)))
    else:
        model = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS, shuffle=True, random_state=seed)).fit(z, y)
        cv_score = float(model.best_score_)
    return Fitted(model, kind, cv_score)


def score(fitted: Fitted, z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy for classes; Pearson and Spearman correlation of predictions for numeric labels."""
    if fitted.kind == "class":
        return {"accuracy": float(np.mean(fitted.model.predict(z) == y))}
    return correlations(fitted.model.predict(z), y)


def correlations(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of numeric predictions with the labels (0 for constant ones)."""
    if np.ptp(pred) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {"pearson": float(pearsonr(pred, y)[0]), "spearman": float(spearmanr(pred, y)[0])}


class Tally:
    """`score` of one model over a target read in row blocks: the correct predictions counted for
    classes, the predictions kept (n floats) for numeric labels. Equals `score` on the whole matrix."""

    def __init__(self, fitted: Fitted, n: int) -> None:
        self.fitted, self.n, self.correct = fitted, n, 0
        self.pred = np.empty(n) if fitted.kind == "numeric" else None

    def add(self, start: int, z: np.ndarray, y: np.ndarray) -> None:
        """Rows start … start + len(z) of the target, standardised (z) and their labels (y)."""
        pred = self.fitted.model.predict(z)
        if self.pred is None:
            self.correct += int(np.count_nonzero(pred == y))
        else:
            self.pred[start : start + len(z)] = pred

    def result(self, y: np.ndarray) -> dict[str, float]:
        """The scores, once every row was added (`y`: all the target's labels)."""
        if self.pred is None:
            return {"accuracy": self.correct / self.n}
        return correlations(self.pred, y)


def metric_of(kind: str) -> str:
    """The headline metric for a label kind."""
    return "accuracy" if kind == "class" else "pearson"
