"""bench select's peer solvers, one builder each (scikit-learn's saga and liblinear, skglm, celer, glum,
cuML), imported only when asked for: a missing one is recorded with the reason."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np

from neurosel.bench._select_data import SEED, Problem, available_bytes

PEERS = ("skglm", "celer", "glum")  # benchmark-only dependencies (the bench extra): pip install -e .[bench]
INTERCEPT_SCALING = 1e4  # liblinear: intercept penalty λ|b| / 1e4; objective bias ~ 2 (λ / 1e4)²
LIBLINEAR_NODE_BYTES = 16  # liblinear copies dense X into (index, value) feature_node pairs


@dataclass(frozen=True)
class Solver:
    """How to build, fit and read one solver's estimator (scikit-learn's API: coef_, intercept_, n_iter_).

    `make(λ, tol, max_iter)` builds an estimator for the engine's mean-form λ (each solver maps it to
    its own parameter); `update(estimator, λ, max_iter)`, where the solver has one, moves a fitted
    estimator to the next λ of the path so that its fit starts from the last solution (warm start)."""

    name: str
    make: Callable[[float, float, int], Any]  # (λ, tol, max_iter) → estimator
    fit: Callable[[Any], None]
    settings: dict[str, Any]
    update: Callable[[Any, float, int], None] | None = None  # None: a fresh fit per λ

    @property
    def warm(self) -> bool:
        return self.update is not None


def sklearn_solver(name: str, problem: Problem, args: argparse.Namespace) -> Solver:
    """saga (warm-started along the path) or liblinear (fresh fits, large intercept_scaling); C = 1/(λ n)."""
    from sklearn.linear_model import LogisticRegression

    extra: dict[str, Any] = (
        {"warm_start": True} if name == "saga" else {"intercept_scaling": args.intercept_scaling}
    )
    settings = {"l1_ratio": 1.0, "solver": name, "random_state": SEED, **extra}

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return LogisticRegression(C=1.0 / (lam * problem.n), tol=tol, max_iter=max_iter, **settings)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.set_params(C=1.0 / (lam * problem.n), max_iter=max_iter)

    fit = lambda est: est.fit(problem.z, problem.y)  # noqa: E731
    return Solver(name, make, fit, {**settings, "C": "1 / (λ n)"}, update if name == "saga" else None)


def skglm_solver(problem: Problem) -> Solver:
    """skglm's Prox-Newton with working sets: mean log-loss (labels ±1) + alpha‖w‖₁, so alpha = λ."""
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Logistic
    from skglm.penalties import L1
    from skglm.solvers import ProxNewton

    z = problem.column_major(1.0)[:, : problem.p]
    settings = {
        "estimator": "GeneralizedLinearEstimator(Logistic(), L1(alpha), ProxNewton(tol, max_iter))",
        "alpha": "λ",
        "fit_intercept": True,
        "warm_start": True,
        "data": "float64, Fortran order",
        "version": version("skglm"),
    }

    def make(lam: float, tol: float, max_iter: int) -> Any:
        solver = ProxNewton(tol=tol, max_iter=max_iter, fit_intercept=True, warm_start=True)
        return GeneralizedLinearEstimator(Logistic(), L1(lam), solver)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.penalty = L1(lam)
        est.solver.max_iter = max_iter

    return Solver("skglm", make, lambda est: est.fit(z, problem.y), settings, update)


class CelerFit:
    """celer_path(pb="logreg", use_PN=True) at one α, from the last fit's coefficients (warm start).

    celer's logistic problem is Σ log-loss(±1 labels) + α‖w‖₁ without an intercept: α = λ n, and the
    intercept is the weight of a constant column of value `scaling` (b = scaling · w_c, penalised
    λ|b| / scaling as liblinear's with intercept_scaling). Reads like a fitted estimator."""

    def __init__(self, x: np.ndarray, y: np.ndarray, alpha: float, tol: float, max_iter: int) -> None:
        self.x, self.y, self.alpha, self.tol, self.max_iter = x, y, alpha, tol, max_iter
        self.w: np.ndarray | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_ = 0.0
        self.n_iter_ = 0

    def fit(self) -> None:
        from celer import celer_path

        _, coefs, _, n_iter = celer_path(
            self.x, self.y, "logreg", alphas=np.array([self.alpha]), coef_init=self.w,
            max_iter=self.max_iter, tol=self.tol, use_PN=True, return_n_iter=True,
        )  # fmt: skip
        self.w = coefs[:, 0].copy()
        self.coef_ = self.w[:-1]
        self.intercept_ = float(self.w[-1] * self.x[0, -1])
        self.n_iter_ = int(n_iter[0])


def celer_solver(problem: Problem, args: argparse.Namespace) -> Solver:
    """celer's Prox-Newton (its LogisticRegression's solver) along the path, the intercept as a column."""
    import celer

    x = problem.column_major(args.intercept_scaling)
    y = 2.0 * problem.y - 1.0
    settings = {
        "function": "celer_path(X, y, 'logreg', alphas=[α], coef_init=previous, use_PN=True, tol, max_iter)",
        "alpha": "λ n",
        "intercept": f"a constant column {args.intercept_scaling:g}: λ|b| / {args.intercept_scaling:g}",
        "warm_start": True,
        "data": "float64, Fortran order",
        "version": celer.__version__,
    }

    def make(lam: float, tol: float, max_iter: int) -> CelerFit:
        return CelerFit(x, y, lam * problem.n, tol, max_iter)

    def update(est: CelerFit, lam: float, max_iter: int) -> None:
        est.alpha, est.max_iter = lam * problem.n, max_iter

    return Solver("celer", make, lambda est: est.fit(), settings, update)


def glum_solver(problem: Problem) -> Solver:
    """glum's IRLS with coordinate descent: deviance/(2n) + alpha‖w‖₁, deviance = 2 · log-loss: alpha = λ."""
    from glum import GeneralizedLinearRegressor

    z = problem.column_major(1.0)[:, : problem.p]
    settings = {
        "family": "binomial",
        "l1_ratio": 1.0,
        "alpha": "λ",
        "solver": "irls-cd",
        "fit_intercept": True,
        "warm_start": True,
        "tol": "gradient_tol",
        "data": "float64, Fortran order",
        "version": version("glum"),
    }
    options = {k: settings[k] for k in ("family", "l1_ratio", "solver", "fit_intercept", "warm_start")}

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return GeneralizedLinearRegressor(alpha=lam, gradient_tol=tol, max_iter=max_iter, **options)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.set_params(alpha=lam, max_iter=max_iter)

    return Solver("glum", make, lambda est: est.fit(z, problem.y), settings, update)


def cuml_solver(problem: Problem) -> Solver:
    """cuML's quasi-Newton L1 logistic regression on the GPU, data copied there once; C = 1/(λ n)."""
    import cuml
    import cupy as cp

    z, y = cp.asarray(problem.z), cp.asarray(problem.y)
    settings = {"penalty": "l1", "solver": "qn", "fit_intercept": True, "output_type": "numpy"}
    options = dict(settings)
    settings["version"] = cuml.__version__

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return cuml.LogisticRegression(C=1.0 / (lam * problem.n), tol=tol, max_iter=max_iter, **options)

    def fit(est: Any) -> None:
        est.fit(z, y)
        cp.cuda.Device().synchronize()

    return Solver("cuml", make, fit, settings)


def solver_or_reason(name: str, problem: Problem, args: argparse.Namespace) -> Solver | str:
    """The solver, or why it does not run here."""
    free = available_bytes()
    if name == "cuml":
        try:
            return cuml_solver(problem)
        except ModuleNotFoundError as e:
            return f"not installed ({e.name})"
        except Exception as e:  # a broken CUDA setup: record it, the CPU solvers still run
            return f"unavailable ({type(e).__name__}: {e})"
    if name in PEERS:
        need = problem.n * (problem.p + 1) * 8 if problem.columns is None else 0
        if free is not None and need > free:
            return f"skipped: the column-major copy needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB available"
        try:
            if name == "skglm":
                return skglm_solver(problem)
            if name == "celer":
                return celer_solver(problem, args)
            return glum_solver(problem)
        except ImportError as e:
            return f"not installed ({e.name or e}; pip install -e .[bench])"
    if name == "liblinear":
        need = problem.z.size * LIBLINEAR_NODE_BYTES
        if free is not None and need > free:
            return f"skipped: its copy of the data needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB available"
    return sklearn_solver(name, problem, args)
