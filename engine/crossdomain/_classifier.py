"""The dense classifier of the transfer step: an L2 logistic regression (ridge for numeric labels)
with its strength chosen by cross-validation on the source, and the scores it is judged by.

scikit-learn does this well and is already a dependency, so the transfer step uses it: lbfgs
logistic regression with C from the log grid `CS` by stratified 3-fold accuracy, RidgeCV for scores.

The logistic search is LogisticRegressionCV's, cut short. Each fold fits the Cs in increasing order,
each fit warm-started from the fold's previous one (LogisticRegressionCV's own regularisation path,
so the fold models are the same), and is scored on the fold's held-out rows. The scan stops once the
mean fold accuracy has been below the best so far for `PATIENCE` consecutive Cs: a source-only rule
that takes the validation curve to be unimodal. The large Cs it then skips need the most lbfgs
iterations (hundreds each, against tens at small C) and are rarely the ones chosen.
The chosen C is the smallest with the best mean accuracy among those scanned; the model is then refit
on every row at that C, started from the folds' mean coefficients, as LogisticRegressionCV does. So
the choice, the model and `cv_score` are LogisticRegressionCV's whenever its curve has no later peak
that beats an earlier one across a dip of `PATIENCE` Cs; when it has, the earlier peak is kept.
A fold whose training rows lack a class (a class with fewer than `FOLDS` rows) falls back to the
whole-grid LogisticRegressionCV, whose models know every class in every fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold

CS = np.logspace(-4, 2, 7)  # inverse L2 strengths tried for the logistic classifier
ALPHAS = np.logspace(-1, 5, 7)  # ridge strengths tried for numeric labels
FOLDS = 3
MAX_ITER = 2000
PATIENCE = 2  # the C scan stops after this many consecutive Cs below the best mean fold accuracy
# What a fit's result depends on beyond its data: the settings above and scikit-learn's version (a
# saved fit is reused only under the same, engine/crossdomain/_saved_fits.py).
SETTINGS = {
    "Cs": CS.tolist(), "alphas": ALPHAS.tolist(), "folds": FOLDS, "max_iter": MAX_ITER,
    "patience": PATIENCE, "sklearn": sklearn.__version__,
}  # fmt: skip


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


def parameters(fitted: Fitted) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """What a fitted model predicts from: (K or 1, features) weights, K or 1 intercepts (float64),
    and the classes (None for numeric labels)."""
    model = fitted.model
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    return coef, intercept, (np.asarray(model.classes_) if fitted.kind == "class" else None)


def restore(
    kind: str, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray | None, cv_score: float
) -> Fitted:
    """The model `parameters` described, as the scikit-learn estimator that predicts with them (a
    logistic regression for classes, a ridge for scores): the same predictions, bit for bit."""
    if kind == "class":
        model = LogisticRegression()
        model.coef_, model.intercept_, model.classes_ = coef, intercept, classes
    else:  # a single target: one weight vector and one intercept, as RidgeCV keeps them
        model = Ridge()
        model.coef_, model.intercept_ = coef[0], intercept[0]
    model.n_features_in_ = coef.shape[1]
    return Fitted(model, kind, cv_score)


def fit(z: np.ndarray, y: np.ndarray, kind: str, seed: int = 0) -> Fitted:
    """Fit on standardised source activations z (n, features), strength chosen by cross-validation."""
    if kind == "class":
        model, cv_score = _logistic_cv(z, y, seed)
    else:
        model = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS, shuffle=True, random_state=seed)).fit(z, y)
        cv_score = float(model.best_score_)
    return Fitted(model, kind, cv_score)


def _logistic_cv(z: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, float]:
    """The logistic model at the C that the scan of `CS` chooses (module docstring), refit on every
    row, and its mean fold accuracy. The model carries `C_` (the chosen C), `Cs_` (those scanned) and
    `scores_` (folds, len(Cs_)): the held-out accuracies (the fallback's are LogisticRegressionCV's)."""
    z = np.ascontiguousarray(z, dtype=np.float64)  # LogisticRegressionCV fits float64 whatever it gets
    y = np.asarray(y)
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(z, y))
    if any(np.unique(y[train]).size < np.unique(y).size for train, _ in folds):
        return _logistic_cv_whole_grid(z, y, folds)
    parts = [(z[train], y[train], z[test], y[test]) for train, test in folds]
    models = [LogisticRegression(max_iter=MAX_ITER, warm_start=True) for _ in folds]
    scores: list[list[float]] = []  # per C scanned, the folds' held-out accuracies
    coefs: list[np.ndarray] = []  # per C scanned, (folds, K, features + 1) weights and intercepts
    best, below = 0, 0
    for c in CS:
        fold_scores, fold_coefs = [], []
        for model, (z_fit, y_fit, z_test, y_test) in zip(models, parts, strict=True):
            model.set_params(C=c).fit(z_fit, y_fit)  # warm: from this fold's fit at the previous C
            fold_scores.append(float(np.mean(model.predict(z_test) == y_test)))  # accuracy
            fold_coefs.append(np.hstack([model.coef_, model.intercept_[:, None]]))
        scores.append(fold_scores)
        coefs.append(np.stack(fold_coefs))
        total = np.sum(scores[-1])  # LogisticRegressionCV ranks Cs by summed fold scores
        if total > np.sum(scores[best]):
            best, below = len(scores) - 1, 0
        elif total < np.sum(scores[best]):
            below += 1
            if below == PATIENCE:
                break
        else:
            below = 0  # a tie with the best is not below it; the smaller C stays the choice
    start = coefs[best].mean(axis=0)  # the refit starts from the folds' mean, as in LogisticRegressionCV
    model = LogisticRegression(C=CS[best], max_iter=MAX_ITER, warm_start=True)
    model.coef_, model.intercept_ = start[:, :-1], start[:, -1]
    model.fit(z, y)
    fold_scores = np.array(scores).T  # (folds, Cs scanned)
    model.C_, model.Cs_, model.scores_ = float(CS[best]), CS[: len(scores)].copy(), fold_scores
    return model, float(np.max(fold_scores.mean(axis=0)))


def _logistic_cv_whole_grid(z: np.ndarray, y: np.ndarray, folds: list) -> tuple[Any, float]:
    """LogisticRegressionCV over the whole grid on the given folds (fold models that know every class)."""
    model = LogisticRegressionCV(
        Cs=CS, cv=folds, l1_ratios=(0.0,), scoring="accuracy", max_iter=MAX_ITER, use_legacy_attributes=False
    ).fit(z, y)
    return model, float(np.max(model.scores_.mean(axis=0)))


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
