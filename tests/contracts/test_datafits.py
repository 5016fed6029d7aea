"""The `Datafit` and `Penalty` protocols (engine/solver/_protocols.py) on every loss and penalty the
solver has, each against a reference computed independently in float64.

Datafits are read from the method registry (`METHODS`: each method's datafit for every number of
classes it serves, two and three for class labels, one for numeric labels) and the classes exported
by `neurosel.solver` (`Logistic`, `Multinomial`, `Quadratic`), each without and with per-example
weights (their constructor argument, their only way in):

  value             against a direct formula (log1p(exp), scipy's logsumexp, the squared loss)
  gradient/hessian  against central finite differences of the value / of the gradient in the margins
  null_intercept    the intercept's optimality (Σ_i ∂loss/∂M_i = 0) and scipy.optimize's minimiser
  dual              Fenchel-Young: the dual at θ is min_M [loss(M) + ⟨θ, M⟩/n] (found by scipy), and
                    loss(M) − dual(−n ∇loss(M)) = ⟨∇loss(M), M⟩
  duality gap       the gap the solver certifies (primal − dual at the residuals scaled into the dual
                    feasible set) is ≥ 0 everywhere and 0 at the optimum scipy.optimize finds for a
                    tiny penalised problem, for every penalty the method accepts
  gap_scale         the loss of a blind guess

A method registered by another test (tests/solver/test_methods.py registers a toy loss) is
unregistered again when that test ends, so the registry read here at collection holds the methods
the package ships, and a new registered loss is covered here automatically (a value reference for it
must be added to VALUES).

Penalties are read from `PENALTIES` (`L1`, `GroupL1`), for one output and three: value against the
formula, dual_norm against the closed form and Hölder's inequality, the proximal map (the closed-form
(group) soft-threshold with the elastic-net shrinkage) against scipy.optimize on the prox objective
built from the penalty's own value, and kkt (the distance of −(g + l2·w) to l1·∂Ω(w)) 0 at the prox
output, positive away from it, and equal to the distance computed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import logsumexp

from neurosel.solver import (
    METHODS,
    PENALTIES,
    Datafit,
    Logistic,
    Multinomial,
    Penalty,
    Quadratic,
    reweighted,
)
from tests.conftest import planted_arrays

N = 24  # examples: finite differences and scipy stay fast
FD_STEP = 1e-5


# --- datafits --------------------------------------------------------------------------------------


def _datafit_cases() -> list[Any]:
    """(id, make(weights) → Datafit, label kind, classes) for every registered method and class count
    it serves, then the exported classes."""
    cases = []
    for method in METHODS.values():
        counts = [1] if method.label_kind == "numeric" else [2, 3]
        for classes in counts:
            if method.serves(method.label_kind, classes):
                make = lambda weights, m=method, c=classes: m.datafit(c, weights)  # noqa: E731
                cases.append(pytest.param(make, method.label_kind, classes, id=f"{method.name}-{classes}"))
    cases += [
        pytest.param(Logistic, "class", 2, id="Logistic"),
        pytest.param(Multinomial, "class", 3, id="Multinomial"),
        pytest.param(Quadratic, "numeric", 1, id="Quadratic"),
    ]
    return cases


DATAFITS = _datafit_cases()


def _logistic_value(y: np.ndarray, m: np.ndarray, s: np.ndarray) -> float:
    return float(np.mean(s * (np.log1p(np.exp(m[:, 0])) - y * m[:, 0])))


def _multinomial_value(y: np.ndarray, m: np.ndarray, s: np.ndarray) -> float:
    return float(np.mean(s * (logsumexp(m, axis=1) - np.sum(y * m, axis=1))))


def _squared_value(y: np.ndarray, m: np.ndarray, s: np.ndarray) -> float:
    return float(np.mean(s * 0.5 * (y - m[:, 0]) ** 2))


# datafit name → direct float64 formula of mean(s · ℓ(y, m))
VALUES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "logistic": _logistic_value,
    "multinomial": _multinomial_value,
    "squared": _squared_value,
}


def problem(label_kind: str, classes: int, weighted: bool, seed: int = 0):
    """Labels of `classes` classes (or numeric), the per-example weights (None or in [0.5, 2)) and
    random margins (N, K) for a datafit."""
    rng = np.random.default_rng(seed)
    numeric = label_kind == "numeric"
    x, labels = planted_arrays(
        n=N, layers=1, hidden=3, planted=[0], classes=max(classes, 2), seed=rng, numeric=numeric, noise=0.5
    )
    weights = rng.uniform(0.5, 2.0, N) if weighted else None
    return x.reshape(N, 3), labels, weights, rng


def fitted(make, label_kind, classes, weighted, seed=0):
    x, labels, weights, rng = problem(label_kind, classes, weighted, seed)
    datafit = make(weights)
    y = datafit.targets(labels)
    m = rng.standard_normal((N, datafit.outputs(y))) * 1.5
    return datafit, y, m, weights, x, labels, rng


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("make", "label_kind", "classes"), DATAFITS)
class TestDatafit:
    def test_protocol_and_weights(self, make, label_kind, classes, weighted):
        datafit, y, m, weights, _, _, _ = fitted(make, label_kind, classes, weighted)
        assert isinstance(datafit, Datafit)
        assert datafit.weights is weights
        other = reweighted(datafit, np.full(N, 2.0))
        assert type(other) is type(datafit) and datafit.weights is weights
        np.testing.assert_allclose(other.value(y, m), 2.0 * type(datafit)().value(y, m), rtol=1e-13)
        k = datafit.outputs(y)
        assert k == (classes if classes > 2 else 1)
        assert y.shape[0] == N and (y.ndim == 1 if k == 1 else y.shape == (N, k))

    def test_value_against_formula(self, make, label_kind, classes, weighted):
        datafit, y, m, weights, _, _, _ = fitted(make, label_kind, classes, weighted)
        assert datafit.name in VALUES, f"datafit {datafit.name!r}: add its direct formula to VALUES"
        s = np.ones(N) if weights is None else weights
        np.testing.assert_allclose(datafit.value(y, m), VALUES[datafit.name](y, m, s), rtol=1e-12)

    def test_gradient_and_hessian_against_finite_differences(self, make, label_kind, classes, weighted):
        datafit, y, m, _, _, _, _ = fitted(make, label_kind, classes, weighted)
        n, k = m.shape
        grad = datafit.gradient(y, m)
        hess = np.broadcast_to(datafit.hessian(y, m), (n, k, k))
        assert grad.shape == (n, k)
        fd_grad = np.empty((n, k))
        fd_hess = np.empty((n, k, k))
        for i in range(n):
            for a in range(k):
                e = np.zeros_like(m)
                e[i, a] = FD_STEP
                fd_grad[i, a] = (datafit.value(y, m + e) - datafit.value(y, m - e)) / (2 * FD_STEP)
                diff = (datafit.gradient(y, m + e) - datafit.gradient(y, m - e)) / (2 * FD_STEP)
                fd_hess[i, a] = diff[i]
                others = np.delete(diff, i, axis=0)  # the Hessian is block-diagonal over examples
                assert np.abs(others).max(initial=0.0) <= 1e-9 * np.abs(diff[i]).max()
        scale = np.abs(grad).max()
        np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-8 * scale)
        np.testing.assert_allclose(hess, fd_hess, rtol=1e-5, atol=1e-7 * np.abs(fd_hess).max())
        np.testing.assert_allclose(hess, np.swapaxes(hess, 1, 2), rtol=1e-14)

    def test_null_intercept_is_optimal(self, make, label_kind, classes, weighted):
        datafit, y, m, _, _, _, _ = fitted(make, label_kind, classes, weighted)
        k = m.shape[1]
        b = datafit.null_intercept(y)
        assert b.shape == (k,)
        ones = np.ones((N, 1))
        g = datafit.gradient(y, ones * b).sum(0)
        np.testing.assert_allclose(g, 0.0, atol=1e-12)
        res = minimize(
            lambda c: datafit.value(y, ones * c),
            np.zeros(k),
            jac=lambda c: datafit.gradient(y, ones * c).sum(0),
            method="BFGS",
            options={"gtol": 1e-12},
        )
        assert datafit.value(y, ones * b) <= res.fun + 1e-12
        if not getattr(datafit, "shift_invariant", False):  # else defined up to a constant
            np.testing.assert_allclose(b, res.x, atol=1e-5)

    def test_dual_is_the_conjugate(self, make, label_kind, classes, weighted):
        """dual(θ) = min_M [loss(M) + ⟨θ, M⟩ / n] at a dual point θ = −n ∇loss(M₀) (any such point
        lies in the dual's domain), the minimum found by scipy from another start; and the
        Fenchel-Young equality at M₀."""
        datafit, y, m0, _, _, _, rng = fitted(make, label_kind, classes, weighted)
        shape = m0.shape
        theta = -N * datafit.gradient(y, m0)
        fy = datafit.value(y, m0) - datafit.dual(y, theta)
        np.testing.assert_allclose(fy, np.sum(datafit.gradient(y, m0) * m0), rtol=1e-10, atol=1e-13)

        def objective(flat):
            mm = flat.reshape(shape)
            return datafit.value(y, mm) + np.sum(theta * mm) / N, (
                datafit.gradient(y, mm) + theta / N
            ).ravel()

        res = minimize(
            objective,
            rng.standard_normal(m0.size),
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000},
        )
        np.testing.assert_allclose(datafit.dual(y, theta), res.fun, rtol=1e-8, atol=1e-10)
        # and weak duality at any other margins: loss(M) + ⟨θ, M⟩/n ≥ dual(θ)
        for _ in range(3):
            mm = rng.standard_normal(shape) * 2
            assert objective(mm.ravel())[0] >= datafit.dual(y, theta) - 1e-12

    def test_gap_scale_is_a_blind_guess(self, make, label_kind, classes, weighted):
        datafit, y, m, weights, _, _, _ = fitted(make, label_kind, classes, weighted)
        s = np.ones(N) if weights is None else weights
        # classes: every class equally likely (zero margins); numbers: the mean (½ var(y) · mean(s))
        want = datafit.value(y, np.zeros_like(m)) if label_kind == "class" else 0.5 * np.var(y) * np.mean(s)
        np.testing.assert_allclose(datafit.gap_scale(y), want, rtol=1e-12)
        assert datafit.gap_scale(y) > 0


# --- the duality gap of a penalised problem --------------------------------------------------------


def gap(datafit, penalty, z, y, w, b, l1) -> float:
    """The solver's certificate by its definition: primal − dual at the residuals θ = −n ∇loss, scaled
    into the dual feasible set (the dual norm of Zᵀ∇loss at most l1)."""
    m = z @ w + b
    grad = datafit.gradient(y, m)
    primal = datafit.value(y, m) + penalty.value(w, l1, 0.0)
    top = float(np.max(penalty.dual_norm(z.T @ grad)))
    shrink = 1.0 if top <= l1 else l1 / top
    return primal - datafit.dual(y, shrink * (-len(y) * grad))


def refit_intercept(datafit, y, z, w) -> np.ndarray:
    """The exact intercepts for fixed coefficients (scipy), so that Σ θ = 0 (dual feasibility)."""
    k = w.shape[1]
    ones = np.ones((len(y), 1))
    res = minimize(
        lambda b: (datafit.value(y, z @ w + ones * b), datafit.gradient(y, z @ w + ones * b).sum(0)),
        datafit.null_intercept(y),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-14},
    )
    return res.x.reshape(k)


def solve(datafit, penalty, z, y, l1) -> tuple[np.ndarray, np.ndarray]:
    """min loss(Z W + b) + l1 Ω(W) with scipy: Ω by smooth constraints (split signs, or an epigraph)."""
    p, k = z.shape[1], datafit.outputs(y)
    ones = np.ones((len(y), 1))
    if penalty.group and k > 1:  # τ_j ≥ ‖W_j‖ as τ_j² − ‖W_j‖² ≥ 0, τ_j ≥ 0 (SLSQP)

        def unpack(v):
            return v[: p * k].reshape(p, k), v[p * k : p * k + k], v[p * k + k :]

        def fun(v):
            w, b, t = unpack(v)
            m = z @ w + ones * b
            g = datafit.gradient(y, m)
            return datafit.value(y, m) + l1 * t.sum(), np.concatenate(
                [(z.T @ g).ravel(), g.sum(0), np.full(p, l1)]
            )

        cons = {"type": "ineq", "fun": lambda v: unpack(v)[2] ** 2 - (unpack(v)[0] ** 2).sum(1)}
        w0 = np.full((p, k), 0.1)  # every row off 0: SLSQP cannot leave the cone's degenerate apex
        x0 = np.concatenate([w0.ravel(), datafit.null_intercept(y), 2 * np.linalg.norm(w0, axis=1)])
        bounds = [(None, None)] * (p * k + k) + [(0, None)] * p
        res = minimize(
            fun,
            x0,
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=[cons],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        w, b, _ = unpack(res.x)
        # polish: the cone constraint is degenerate at 0, so SLSQP stops short there; on the support
        # found (the other rows exactly 0) the objective is smooth, and BFGS finishes it
        on = np.linalg.norm(w, axis=1) > 1e-5
        q = int(on.sum())

        def smooth(v):
            ws = np.zeros((p, k))
            ws[on] = v[: q * k].reshape(q, k)
            m = z @ ws + ones * v[q * k :]
            g = datafit.gradient(y, m)
            norms = np.linalg.norm(ws[on], axis=1, keepdims=True)
            gw = (z.T @ g)[on] + l1 * ws[on] / norms
            return datafit.value(y, m) + l1 * norms.sum(), np.concatenate([gw.ravel(), g.sum(0)])

        res = minimize(
            smooth, np.concatenate([w[on].ravel(), b]), jac=True, method="BFGS", options={"gtol": 1e-13}
        )
        w = np.zeros((p, k))
        w[on] = res.x[: q * k].reshape(q, k)
        return w, res.x[q * k :]

    # separable Ω: W = A − B with A, B ≥ 0 and Ω = Σ (A + B) (L-BFGS-B)
    def fun(v):
        a, bb, c = v[: p * k].reshape(p, k), v[p * k : 2 * p * k].reshape(p, k), v[2 * p * k :]
        m = z @ (a - bb) + ones * c
        g = datafit.gradient(y, m)
        gw = (z.T @ g).ravel()
        return datafit.value(y, m) + l1 * (a.sum() + bb.sum()), np.concatenate([gw + l1, -gw + l1, g.sum(0)])

    x0 = np.concatenate([np.zeros(2 * p * k), datafit.null_intercept(y)])
    bounds = [(0, None)] * (2 * p * k) + [(None, None)] * k
    res = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000},
    )
    v = res.x
    return (v[: p * k] - v[p * k : 2 * p * k]).reshape(p, k), v[2 * p * k :]


def _gap_cases() -> list[Any]:
    cases = []
    for method in METHODS.values():
        counts = [1] if method.label_kind == "numeric" else [2, 3]
        for classes in counts:
            if method.serves(method.label_kind, classes):
                for name in method.penalties:
                    make = lambda weights, m=method, c=classes: m.datafit(c, weights)  # noqa: E731
                    ident = f"{method.name}-{classes}-{name}"
                    cases.append(pytest.param(make, method.label_kind, classes, name, id=ident))
    return cases


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("make", "label_kind", "classes", "penalty_name"), _gap_cases())
def test_duality_gap(make, label_kind, classes, penalty_name, weighted):
    """≥ 0 at arbitrary coefficients (with their exact intercepts), 0 at scipy's optimum (where the
    penalty's KKT residual is 0 too), and positive off it."""
    datafit, y, _, _, x, _, rng = fitted(make, label_kind, classes, weighted, seed=5)
    penalty = PENALTIES[penalty_name]()
    z = (x - x.mean(0)) / x.std(0)
    k = datafit.outputs(y)
    b0 = datafit.null_intercept(y)
    l1_max = float(np.max(penalty.dual_norm(z.T @ datafit.gradient(y, np.ones((N, 1)) * b0))))
    l1 = 0.3 * l1_max
    scale = datafit.gap_scale(y)
    # at W = 0 and λ ≥ λ_max the null model is optimal: the gap is 0
    assert abs(gap(datafit, penalty, z, y, np.zeros((3, k)), b0, l1_max)) <= 1e-10 * scale
    for _ in range(3):
        w = rng.standard_normal((3, k)) * rng.integers(0, 2, (3, 1))
        b = refit_intercept(datafit, y, z, w)
        assert gap(datafit, penalty, z, y, w, b, l1) >= -1e-10 * scale
    w, b = solve(datafit, penalty, z, y, l1)
    assert np.any(w != 0), "λ = 0.3 λ_max keeps some coefficients"
    certified = gap(datafit, penalty, z, y, w, b, l1)
    assert -1e-10 * scale <= certified <= 1e-7 * scale
    grad = z.T @ datafit.gradient(y, z @ w + b)
    assert penalty.kkt(w, grad, l1, 0.0) <= 1e-5 * l1  # the optimality conditions hold there too
    off = gap(datafit, penalty, z, y, w * 0.8, refit_intercept(datafit, y, z, w * 0.8), l1)
    assert off > certified + 1e-8 * scale  # away from the optimum it is not


# --- penalties -------------------------------------------------------------------------------------


def _l1_value(w: np.ndarray, l1: float, l2: float) -> float:
    return l1 * sum(abs(c) for c in w.ravel()) + 0.5 * l2 * sum(c * c for c in w.ravel())


def _group_value(w: np.ndarray, l1: float, l2: float) -> float:
    return l1 * sum(float(np.sqrt(np.sum(r * r))) for r in w) + 0.5 * l2 * sum(c * c for c in w.ravel())


def _l1_prox(v: np.ndarray, l1: float, l2: float) -> np.ndarray:
    """argmin_w ½‖w − v‖² + l1 Σ|w| + ½ l2 ‖w‖²: soft-threshold, then shrink."""
    return np.sign(v) * np.maximum(np.abs(v) - l1, 0.0) / (1.0 + l2)


def _group_prox(v: np.ndarray, l1: float, l2: float) -> np.ndarray:
    """Per row: group soft-threshold max(0, 1 − l1/‖v_j‖) v_j, then shrink."""
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    factor = np.maximum(0.0, 1.0 - l1 / np.where(norms > 0, norms, 1.0))
    return factor * v / (1.0 + l2)


def _l1_distance(w: np.ndarray, g: np.ndarray, l1: float, l2: float) -> float:
    """max over coefficients of dist(−(g + l2 w), l1 ∂|w|): a point for w ≠ 0, [−l1, l1] at 0."""
    worst = 0.0
    for wc, gc in zip(w.ravel(), g.ravel(), strict=True):
        a = -(gc + l2 * wc)
        worst = max(worst, abs(a - l1 * np.sign(wc)) if wc != 0 else max(abs(a) - l1, 0.0))
    return worst


def _group_distance(w: np.ndarray, g: np.ndarray, l1: float, l2: float) -> float:
    """max over neurons of dist(−(g_j + l2 w_j), l1 ∂‖w_j‖): a point for w_j ≠ 0, the ball at 0."""
    worst = 0.0
    for wr, gr in zip(w, g, strict=True):
        a = -(gr + l2 * wr)
        norm = float(np.sqrt(np.sum(wr * wr)))
        d = np.sqrt(np.sum((a - l1 * wr / norm) ** 2)) if norm > 0 else max(np.sqrt(np.sum(a * a)) - l1, 0.0)
        worst = max(worst, float(d))
    return worst


# penalty name → (value, prox of the whole penalty at step 1, subdifferential distance, dual norm)
REFERENCES: dict[str, tuple[Callable, Callable, Callable, Callable]] = {
    "l1": (_l1_value, _l1_prox, _l1_distance, lambda g: np.abs(g).max(axis=1)),
    "group-l1": (_group_value, _group_prox, _group_distance, lambda g: np.sqrt((g * g).sum(1))),
}


def coefficients(k: int, rng: np.random.Generator) -> np.ndarray:
    """(6, K) with a zero row and (K > 1) a row with one zero entry."""
    w = rng.standard_normal((6, k))
    w[1] = 0.0
    if k > 1:
        w[3, 0] = 0.0
    return w


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("name", list(PENALTIES))
class TestPenalty:
    @pytest.fixture
    def penalty(self, name) -> Penalty:
        assert name in REFERENCES, f"penalty {name!r}: add its references to REFERENCES"
        penalty = PENALTIES[name]()
        assert isinstance(penalty, Penalty) and penalty.name == name
        return penalty

    def test_value_and_dual_norm(self, penalty, name, k):
        rng = np.random.default_rng(k)
        value, _, _, dual_norm = REFERENCES[name]
        w, g = coefficients(k, rng), rng.standard_normal((6, k))
        for l1, l2 in [(0.7, 0.0), (0.7, 0.3), (0.0, 1.0)]:
            np.testing.assert_allclose(penalty.value(w, l1, l2), value(w, l1, l2), rtol=1e-13)
        assert penalty.value(np.zeros((6, k)), 0.7, 0.3) == 0.0
        np.testing.assert_allclose(penalty.dual_norm(g), dual_norm(g), rtol=1e-13)
        # Hölder, per neuron: ⟨g_j, w_j⟩ ≤ dual_norm(g)_j Ω(w_j), with equality somewhere on Ω's sphere
        per_neuron = np.array([penalty.value(row[None, :], 1.0, 0.0) for row in w])
        assert np.all((g * w).sum(1) <= penalty.dual_norm(g) * per_neuron + 1e-12)
        attained = np.array([(g[j] * best_direction(penalty, g[j])).sum() for j in range(6)])
        np.testing.assert_allclose(attained, penalty.dual_norm(g), rtol=1e-12)

    def test_prox_against_closed_form_and_scipy(self, penalty, name, k):
        """The prox of t·penalty (t = 1) at v: the closed form equals scipy's minimiser of
        ½‖w − v‖² + penalty.value(w), neuron by neuron (the objective is separable over them)."""
        rng = np.random.default_rng(10 + k)
        _, prox, _, _ = REFERENCES[name]
        v = rng.standard_normal((6, k)) * 1.2
        v[2] *= 0.1  # a neuron (or coefficients) thresholded to 0
        for l1, l2 in [(0.6, 0.0), (0.6, 0.5)]:
            w = prox(v, l1, l2)
            assert np.any(w == 0) and np.any(w != 0)
            for j in range(6):

                def objective(u, j=j, l1=l1, l2=l2):
                    return 0.5 * np.sum((u - v[j]) ** 2) + penalty.value(u[None, :], l1, l2)

                if k == 1:
                    res = minimize_scalar(lambda c, f=objective: f(np.array([c])), bracket=(-3, 3), tol=1e-12)
                    found = np.array([res.x])
                else:
                    res = minimize(
                        objective,
                        v[j],
                        method="Powell",
                        options={"xtol": 1e-12, "ftol": 1e-15, "maxiter": 20000},
                    )
                    found = res.x
                assert objective(w[j]) <= objective(found) + 1e-12
                np.testing.assert_allclose(w[j], found, atol=1e-5)

    def test_kkt_is_the_subdifferential_distance(self, penalty, name, k):
        """At the prox output w of v the smooth part's gradient is g = w − v, and −(g + l2 w) lies in
        l1 ∂Ω(w): kkt is 0 there; away from it, kkt is the distance computed by hand, and positive."""
        rng = np.random.default_rng(20 + k)
        _, prox, distance, _ = REFERENCES[name]
        v = rng.standard_normal((6, k)) * 1.2
        v[2] *= 0.1
        for l1, l2 in [(0.6, 0.0), (0.6, 0.5)]:
            w = prox(v, l1, l2)
            assert penalty.kkt(w, w - v, l1, l2) <= 1e-12
            assert distance(w, w - v, l1, l2) <= 1e-12
            for _ in range(3):
                other = coefficients(k, rng)
                got = penalty.kkt(other, other - v, l1, l2)
                np.testing.assert_allclose(got, distance(other, other - v, l1, l2), rtol=1e-12, atol=1e-15)
                assert got > 0
        assert penalty.kkt(np.zeros((0, k)), np.zeros((0, k)), 0.6, 0.0) == 0.0  # no neurons


def best_direction(penalty: Penalty, g: np.ndarray) -> np.ndarray:
    """A unit vector of Ω (one neuron, K weights) that attains ⟨g, u⟩ = Ω*(g)."""
    if penalty.group:
        return g / np.linalg.norm(g)
    u = np.zeros_like(g)
    top = int(np.argmax(np.abs(g)))
    u[top] = np.sign(g[top])
    return u
