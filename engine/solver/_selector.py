"""A scikit-learn feature selector on the sparse-logistic path solver, for in-memory arrays.

`C` has scikit-learn's meaning (objective C · Σ log-loss + ‖w‖₁, intercept unpenalised), which is
the solver's mean-form λ = 1 / (C n); the fit runs the warm-started path from λ_max down to that λ.
With `k`, the path instead runs until k neurons have entered, and the k highest-ranked are kept.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from neurosel.params import Boolean, Instance, Integral, Interval, OneOf, Optional, Real, check
from neurosel.solver._datafits import example_weights
from neurosel.solver._design import ArrayDesign
from neurosel.solver._importance import rank_by_entry
from neurosel.solver._methods import check_classes, get_method
from neurosel.solver._path import lambda_max, sparse_path
from neurosel.solver._penalties import PENALTIES


class SparseLogisticSelector(SelectorMixin, BaseEstimator):
    """Select features by L1 (binary) or group-L1 (multinomial) logistic regression along a path."""

    # Checked in `fit`, as scikit-learn checks parameters (neurosel.params); k ≤ n_features there too.
    _parameter_table: ClassVar[dict] = {
        "C": Interval(Real, 0, None, closed="neither"),
        "k": Optional(Interval(Integral, 1, None)),
        "l1_ratio": Interval(Real, 0, 1, closed="right"),
        "penalty": Optional(OneOf(lambda: PENALTIES)),
        "standardize": Boolean(),
        "class_weight": [OneOf("balanced"), Instance(dict, what="a dict {class: weight}"), None],
        "n_lambdas": Interval(Integral, 1, None),
        "lambda_ratio": Interval(Real, 0, 1, closed="neither"),
        "tol": Interval(Real, 0, None, closed="neither"),
    }

    def __init__(
        self,
        C: float = 1.0,
        k: int | None = None,
        l1_ratio: float = 1.0,
        *,
        penalty: str | None = None,
        standardize: bool = False,
        class_weight: str | dict | None = None,
        n_lambdas: int = 20,
        lambda_ratio: float = 1e-3,
        tol: float = 1e-6,
    ) -> None:
        self.C = C
        self.k = k
        self.l1_ratio = l1_ratio
        self.penalty = penalty
        self.standardize = standardize
        self.class_weight = class_weight
        self.n_lambdas = n_lambdas
        self.lambda_ratio = lambda_ratio
        self.tol = tol

    def fit(self, X, y) -> SparseLogisticSelector:
        """Fit the path on (X, y); learned: coef_, intercept_, classes_, ranking_, lambdas_, lambda_."""
        check(type(self).__name__, self._parameter_table, self.get_params(deep=False))
        X, y = validate_data(self, X, y, dtype=np.float64)
        n, p = X.shape
        check_classes(y, "y")
        if self.k is not None and self.k > p:
            raise ValueError(f"k={self.k}: choose 1..{p} (X has n_features={p})")
        self.classes_ = np.unique(y)
        method, k = get_method("l1-logistic"), self.classes_.size
        datafit = method.datafit(k, example_weights(y, self.class_weight))
        target = datafit.targets(y)
        penalty = PENALTIES[method.penalty(self.penalty, k)]()
        center, scale = (X.mean(0), X.std(0)) if self.standardize else (None, None)
        design = ArrayDesign(X, center, scale)
        if self.k is None:
            top = lambda_max(design, target, datafit, penalty, self.l1_ratio)
            final = 1.0 / (self.C * n)
            lambdas = (
                top * np.geomspace(1.0, min(final / top, 1.0), self.n_lambdas) if final < top else [final]
            )
            path = sparse_path(
                design, target, datafit, penalty, l1_ratio=self.l1_ratio, lambdas=lambdas, tol=self.tol
            )
        else:
            path = sparse_path(
                design, target, datafit, penalty, l1_ratio=self.l1_ratio, n_lambdas=self.n_lambdas,
                lambda_ratio=self.lambda_ratio, target_support=self.k, tol=self.tol,
            )  # fmt: skip
        w, b = path.coef[-1], path.intercept[-1]
        if self.standardize:  # back to the units of X, as scikit-learn reports coefficients
            b = b - (center / design.scale) @ w
            w = w / design.scale[:, None]
        self.coef_, self.intercept_ = w.T.copy(), b.copy()
        self.lambdas_, self.lambda_ = path.lambdas, float(path.lambdas[-1])
        self.ranking_ = rank_by_entry(path.entry, np.linalg.norm(path.coef[-1], axis=1), path.closeness)
        self.n_passes_ = int(design.passes)
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        mask = np.zeros(self.coef_.shape[1], dtype=bool)
        if self.k is not None:
            mask[self.ranking_[: self.k]] = True
        else:
            mask[np.any(self.coef_ != 0, axis=0)] = True
        return mask
