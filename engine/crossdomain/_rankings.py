"""Neuron rankings a transfer can select from: the sparse path (neurosel's), a statistics-only score,
and the scikit-learn recipe (liblinear L1 path) used as the side-by-side baseline."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from engine.crossdomain._domains import Activations
from engine.devices import Device
from engine.solver import Importance, importance, rank_by_entry
from engine.stats import neuron_stats

SKLEARN_CS = 20  # points of the scikit-learn L1 path, like neurosel's default path
SKLEARN_RATIO = 100.0  # from the smallest C with a non-zero coefficient up by this factor


def sparse_importance(store, kind: str, support: int, options: dict[str, Any]) -> Importance:
    """neurosel's ranking (`.ranking`): entry into the sparse path, run until `support` neurons have
    entered. A path that stops short warns, naming the store; the warning is left to the caller's
    filters, and what it says is also kept in the result (engine/crossdomain/_paths.py)."""
    method = "l1-logistic" if kind == "class" else "lasso"
    options = {"target_support": support, **options}
    return importance(store, method, **options)


def stats_ranking(domains: list[Activations], device: str | Device = "cpu") -> np.ndarray:
    """Top neurons by a statistics-only score (Fisher for classes, |Pearson r| for numeric labels),
    averaged over domains by rank; ties by id."""
    ranks = []
    for d in domains:
        stats = neuron_stats(d.store, by="label", device=device, progress=False, auroc=False)
        value = stats.fisher if d.kind == "class" else np.abs(stats.pearson)
        ranks.append(rankdata(np.nan_to_num(value.ravel(), nan=0.0, posinf=np.finfo(float).max)))
    mean_rank = np.mean(ranks, axis=0)
    return np.lexsort((np.arange(mean_rank.size), -mean_rank))


def sklearn_ranking(z: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """What a scikit-learn user would write: one liblinear L1 fit per C on a log grid (or
    `lasso_path` for numeric labels), neurons ranked by the first C where they are non-zero."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, lasso_path
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import l1_min_c

    if kind == "class":
        cs = l1_min_c(z, y, loss="log") * np.geomspace(1.0, SKLEARN_RATIO, SKLEARN_CS)
        coefs = []
        for c in cs:
            model = LogisticRegression(solver="liblinear", l1_ratio=1.0, C=c, max_iter=1000, random_state=0)
            if np.unique(y).size > 2:  # liblinear is binary only: one-vs-rest, as its users do
                model = OneVsRestClassifier(model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # liblinear's chatter at small C
                fitted = model.fit(z, y)
            coef = (
                np.vstack([e.coef_ for e in fitted.estimators_])
                if hasattr(fitted, "estimators_")
                else fitted.coef_
            )
            coefs.append(np.linalg.norm(np.atleast_2d(coef), axis=0))
        path = np.array(coefs)
    else:
        _, coef, _ = lasso_path(z, y - y.mean(), alphas=SKLEARN_CS, eps=1 / SKLEARN_RATIO)
        path = np.abs(coef).T
    entered = path != 0
    entry = np.where(entered.any(0), entered.argmax(0), -1)
    return rank_by_entry(entry, path[-1])
