"""The method registry: a new loss is its datafit, one registry entry and this test. A toy loss (the
binary squared hinge) registered here runs through neurosel.importance on a store, and its path's
objective matches an independent scipy solve of the same problem; the built-in entries keep their
label kinds, default penalties and metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import neurosel
from neurosel.solver import (
    METHODS,
    GroupL1,
    Logistic,
    Method,
    Multinomial,
    Quadratic,
    get_method,
    method_for,
    metric_for,
    register_method,
    reweighted,
    unregister_method,
)
from tests.conftest import build_store

N, LAYERS, HIDDEN = 120, 2, 5


class SquaredHinge:
    """mean(s · max(0, 1 − t m)²) with t = ±1: the binary squared hinge, in the `Datafit` protocol."""

    name = "squared-hinge"

    def __init__(self, weights: np.ndarray | None = None) -> None:
        self._weights = weights

    @property
    def weights(self) -> np.ndarray | None:
        return self._weights

    def _s(self, n: int) -> np.ndarray:
        return np.ones(n) if self._weights is None else self._weights

    def targets(self, labels: np.ndarray) -> np.ndarray:
        return np.where(labels == np.unique(labels)[-1], 1.0, -1.0)

    def outputs(self, y: np.ndarray) -> int:
        return 1

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        return float(np.mean(self._s(y.size) * np.maximum(0.0, 1.0 - y * m[:, 0]) ** 2))

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        slack = np.maximum(0.0, 1.0 - y * m[:, 0])
        return (-2.0 * y * slack * self._s(y.size) / y.size)[:, None]

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        inside = (y * m[:, 0] < 1.0).astype(np.float64)
        return (np.maximum(2.0 * inside, 1e-12) * self._s(y.size) / y.size)[:, None, None]

    def null_intercept(self, y: np.ndarray) -> np.ndarray:
        s = self._s(y.size)  # the weighted mean of t lies in [−1, 1], where every slack is positive
        return np.array([np.sum(s * y) / np.sum(s)])

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """−mean(s · φ*(−θ/s)), φ*(v) = a + a²/4 for a = t v ≤ 0 (the conjugate of max(0, 1 − t m)²)."""
        s = self._s(y.size)
        a = np.minimum(-y * theta[:, 0] / s, 0.0)
        return float(-np.mean(s * (a + a * a / 4.0)))

    def gap_scale(self, y: np.ndarray) -> float:
        return float(np.mean(self._s(y.size)))  # the loss at m = 0


TOY = Method(
    "toy-hinge",
    "class",
    lambda classes, weights: SquaredHinge(weights),
    lambda classes: "l1",
    penalties=("l1",),
    metric="accuracy",
    max_classes=2,
)


@pytest.fixture()
def toy():
    register_method(TOY)
    yield TOY
    unregister_method(TOY.name)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(
        tmp_path_factory.mktemp("methods") / "s.zarr", n=N, layers=LAYERS, hidden=HIDDEN, seed=3,
        unit_scale=(0.5, 2.0), shift=1.0, planted=[1, 7], effect=[0.8, 0.5], label_names=("neg", "pos"),
    )  # fmt: skip


def reference_objective(z: np.ndarray, t: np.ndarray, lam: float, s: np.ndarray) -> float:
    """min over (w, b) of mean(s · max(0, 1 − t(z w + b))²) + λ‖w‖₁ by L-BFGS-B on w = w⁺ − w⁻ ≥ 0."""
    n, p = z.shape

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = v[:p] - v[p : 2 * p], v[-1]
        slack = np.maximum(0.0, 1.0 - t * (z @ w + b))
        g = -2.0 * s * t * slack / n
        gw = z.T @ g
        value = np.mean(s * slack**2) + lam * np.sum(v[: 2 * p])
        return value, np.r_[gw + lam, -gw + lam, g.sum()]

    bounds = [(0.0, None)] * (2 * p) + [(None, None)]
    opts = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000, "maxcor": 30}
    fit = minimize(objective, np.zeros(2 * p + 1), jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    return float(fit.fun)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_registered_toy_loss_runs_importance_and_matches_scipy(store, toy, class_weight):
    imp = neurosel.importance(
        store, method="toy-hinge", n_lambdas=5, lambda_ratio=0.05, tol=1e-9, class_weight=class_weight,
        save=False, device="cpu",
    )  # fmt: skip
    assert imp.method == "toy-hinge" and imp.penalty == "l1" and imp.meta["converged"]
    assert imp.entered > 0
    stats = neurosel.neuron_stats(store, by=None, progress=False, device="cpu")
    x = store.read().reshape(N, -1).astype(np.float64)
    z = (x - stats.mean.ravel()) / stats.std.ravel()
    t = np.where(store.labels == np.unique(store.labels)[-1], 1.0, -1.0)
    s = neurosel.solver.example_weights(store.labels, class_weight)
    s = np.ones(N) if s is None else s
    for lam, objective in zip(imp.lambdas[1:], imp.objective[1:], strict=True):
        assert objective == pytest.approx(reference_objective(z, t, lam, s), abs=1e-6)


def test_registry_entry_choices(toy, store):
    assert method_for("class", 2) == "l1-logistic" and method_for("numeric") == "lasso"
    assert METHODS["toy-hinge"] is toy and get_method("toy-hinge").serves("class", 2)
    assert not toy.serves("class", 3)
    with pytest.raises(neurosel.InputError, match="already registered"):
        register_method(TOY)
    with pytest.raises(neurosel.InputError, match="penalty 'group-l1'"):
        neurosel.importance(store, method="toy-hinge", penalty="group-l1", save=False)


def test_builtin_methods():
    logistic, lasso = get_method("l1-logistic"), get_method("lasso")
    assert (logistic.label_kind, lasso.label_kind) == ("class", "numeric")
    assert (logistic.default_penalty(2), logistic.default_penalty(3), lasso.default_penalty(1)) == (
        "l1",
        "group-l1",
        "l1",
    )
    assert isinstance(logistic.datafit(2, None), Logistic)
    assert isinstance(logistic.datafit(3, None), Multinomial)
    assert isinstance(lasso.datafit(1, None), Quadratic)
    assert (metric_for("class"), metric_for("numeric")) == ("accuracy", "pearson")
    assert "toy-hinge" not in METHODS
    with pytest.raises(neurosel.InputError, match="use one of l1-logistic, lasso"):
        get_method("nope")


def test_datafit_weights_are_set_at_construction_only():
    weights = np.array([1.0, 2.0, 3.0])
    fit = Multinomial(weights)
    with pytest.raises(AttributeError):
        fit.weights = None
    again = reweighted(fit, weights[:2])
    assert isinstance(again, Multinomial) and again.weights is not fit.weights and fit.weights is weights
    assert isinstance(GroupL1(), neurosel.solver.Penalty)
