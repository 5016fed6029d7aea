"""A regularisation path of sparse generalised linear models by proximal Newton with working sets.

For each λ from λ_max down (warm-started from the previous solution): a full pass computes the
gradient on every neuron, which gives the duality gap (the stopping rule) and the KKT violators;
the working set (support, strong-rule survivors, worst violators) is then solved by proximal
Newton steps, each one pass for Z_Wᵀ D Z_W and one for Z_W Δ, with the penalised quadratic solved
in memory by coordinate descent (kernels/cd.py) and a backtracking line search on n-vectors.
A λ is accepted only after a full pass certifies it (gap or KKT on all neurons).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from kernels.cd import cd_quadratic

MAX_OUTER = 60  # full passes per λ
MAX_NEWTON = 25  # Newton steps per working set
MAX_SWEEPS = 2000  # coordinate-descent sweeps per Newton step
CD_TOL = 1e-10
WS_MIN = 16  # violators added to the working set at least
ARMIJO = 1e-4


class ConvergenceWarning(UserWarning):
    """A λ of the path stopped at its iteration cap before its stopping rule held."""


@dataclass
class PathResult:
    """Solutions along the path: coef (K, p), intercept (K,), and what certifies each of them."""

    lambdas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    gaps: np.ndarray
    converged: np.ndarray
    passes: np.ndarray
    entry: np.ndarray  # per neuron: index of the first λ where it is non-zero, −1 if never
    objective: np.ndarray

    @property
    def support_sizes(self) -> np.ndarray:
        return (self.coef != 0).sum(1)


def lambda_max(design, y: np.ndarray, datafit, l1_ratio: float = 1.0, fit_intercept: bool = True) -> float:
    """The smallest λ at which every coefficient is zero."""
    b = datafit.null_intercept(y) if fit_intercept else 0.0
    g = design.rmatvec(datafit.gradient(y, np.full(y.size, b)))
    return float(np.max(np.abs(g)) / l1_ratio)


def sparse_path(
    design,
    y: np.ndarray,
    datafit,
    *,
    l1_ratio: float = 1.0,
    lambdas: np.ndarray | None = None,
    n_lambdas: int = 20,
    lambda_ratio: float = 1e-2,
    target_support: int | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-6,
) -> PathResult:
    """Solve along a log-spaced path from λ_max (or the given λs), warm-starting each from the last.

    With `target_support`, the path stops at the first λ whose support reaches it.
    """
    n, p = design.shape
    if lambdas is None:
        top = lambda_max(design, y, datafit, l1_ratio, fit_intercept)
        lambdas = top * np.geomspace(1.0, lambda_ratio, n_lambdas)
    lambdas = np.asarray(lambdas, dtype=np.float64)
    w = np.zeros(p)
    b = datafit.null_intercept(y) if fit_intercept else 0.0
    m = np.full(n, b)
    entry = np.full(p, -1)
    rows = []
    work = np.zeros(0, dtype=np.int64)
    previous = None
    for k, lam in enumerate(lambdas):
        w, b, m, work, gap, ok, g = solve_lambda(
            design, y, datafit, lam, l1_ratio, w, b, m, work, previous, fit_intercept, tol
        )
        previous = (lam, g)
        fresh = (w != 0) & (entry < 0)
        entry[fresh] = k
        l1, l2 = lam * l1_ratio, lam * (1 - l1_ratio)
        objective = datafit.value(y, m) + _penalty(w, l1, l2)
        rows.append((w.copy(), b, gap, ok, design.passes, objective))
        if not ok:
            warnings.warn(f"λ={lam:.3g} stopped at the iteration cap (gap {gap:.2e})", ConvergenceWarning, 2)
        if target_support is not None and (w != 0).sum() >= target_support:
            lambdas = lambdas[: k + 1]
            break
    coef, intercept, gaps, converged, passes, objective = (np.array(col) for col in zip(*rows, strict=True))
    return PathResult(lambdas, coef, intercept, gaps, converged, passes, entry, objective)


def solve_lambda(design, y, datafit, lam, l1_ratio, w, b, m, work, previous, fit_intercept, tol):
    """Minimise datafit + λ(α‖w‖₁ + (1−α)/2 ‖w‖²) from a warm start; certified by a full pass."""
    l1, l2 = lam * l1_ratio, lam * (1 - l1_ratio)
    scale = datafit.gap_scale(y)
    gap, g = np.inf, None
    for _ in range(MAX_OUTER):
        if fit_intercept:
            b, m = _refit_intercept(datafit, y, b, m)
        gm = datafit.gradient(y, m)
        g = design.rmatvec(gm)
        gap = _certificate(datafit, y, m, w, g, gm, l1, l2)
        if gap <= tol * scale:
            return w, b, m, work, gap, True, g
        work = _working_set(w, g, l1, work, previous, lam)
        w, b, m = _newton(design, y, datafit, w, b, m, work, l1, l2, fit_intercept, tol * scale)
    return w, b, m, work, gap, False, g


def _certificate(datafit, y, m, w, g, gm, l1, l2) -> float:
    """Duality gap for L1 (dual point: scaled residuals); KKT residual × ‖w‖-free units for elastic net."""
    if l2 == 0.0:
        primal = datafit.value(y, m) + l1 * np.abs(w).sum()
        r = -y.size * gm  # residuals: y − p (logistic) or y − m (squared)
        top = np.max(np.abs(g)) if g.size else 0.0
        s = 1.0 if top <= l1 else l1 / top
        return max(primal - datafit.dual(y, s * r), 0.0)
    smooth = g + l2 * w
    kkt = np.where(w != 0, np.abs(smooth + l1 * np.sign(w)), np.maximum(np.abs(smooth) - l1, 0.0))
    return float(kkt.max(initial=0.0))


def _working_set(w, g, l1, work, previous, lam) -> np.ndarray:
    """Support ∪ current working set ∪ the worst KKT violators ∪ sequential strong-rule survivors."""
    support = np.flatnonzero(w)
    violators = np.flatnonzero((np.abs(g) > l1) & (w == 0))
    if previous is not None and work.size == 0:  # first pass at this λ: strong rule
        lam_prev, g_prev = previous
        violators = np.union1d(violators, np.flatnonzero(np.abs(g_prev) >= 2 * lam - lam_prev))
    keep = max(WS_MIN, work.size)
    if violators.size > keep:
        violators = violators[np.argsort(-np.abs(g[violators]), kind="stable")[:keep]]
    return np.union1d(np.union1d(work, support), violators).astype(np.int64)


def _newton(design, y, datafit, w, b, m, work, l1, l2, fit_intercept, tol):
    """Proximal Newton steps on the working set (intercept unpenalised), with Armijo backtracking."""
    if work.size == 0:
        return w, b, m
    pen = np.r_[np.ones(work.size), 0.0] if fit_intercept else np.ones(work.size)  # b unpenalised
    for _ in range(MAX_NEWTON):
        d, gm = datafit.hessian(y, m), datafit.gradient(y, m)
        H, zd, gw = design.gram(work, d, gm)
        if fit_intercept:
            H = np.block([[H, zd[:, None]], [zd[None, :], np.array([[d.sum()]])]])
            grad = np.r_[gw, gm.sum()]
            u0 = np.r_[w[work], b]
        else:
            grad, u0 = gw, w[work]
        u, _ = cd_quadratic(H, grad, u0, pen, l1, l2, MAX_SWEEPS, CD_TOL)
        delta = u - u0
        if not np.any(delta):
            break
        coef_delta = delta[: work.size]
        zdelta = design.matvec(work, coef_delta) + (delta[-1] if fit_intercept else 0.0)
        before = datafit.value(y, m) + _penalty(w[work], l1, l2)
        slope = grad @ delta + _penalty(u[: work.size], l1, l2) - _penalty(u0[: work.size], l1, l2)
        t = 1.0
        while True:
            after = datafit.value(y, m + t * zdelta) + _penalty(w[work] + t * coef_delta, l1, l2)
            if after <= before + ARMIJO * t * slope or t < 1e-10:
                break
            t *= 0.5
        w = w.copy()
        w[work] += t * coef_delta
        if fit_intercept:
            b += t * delta[-1]
        m = m + t * zdelta
        if before - after <= 0.1 * tol:
            break
    return w, b, m


def _penalty(v: np.ndarray, l1: float, l2: float) -> float:
    """λ(α‖v‖₁ + (1−α)/2 ‖v‖²), with l1 = λα and l2 = λ(1−α)."""
    return l1 * np.abs(v).sum() + 0.5 * l2 * (v @ v)


def _refit_intercept(datafit, y, b, m, steps: int = 50):
    """Exact unpenalised intercept for the current coefficients (Newton in one variable)."""
    for _ in range(steps):
        g = datafit.gradient(y, m).sum()
        h = datafit.hessian(y, m).sum()
        step = g / h
        b, m = b - step, m - step
        if abs(step) < 1e-13 * max(1.0, abs(b)):
            break
    return b, m


def check_binary(y: np.ndarray, where: str) -> np.ndarray:
    """0/1 float labels from any two-valued labels; InputError otherwise."""
    classes = np.unique(y)
    if classes.size != 2:
        raise InputError(f"{where}: {classes.size} class(es); binary L1-logistic needs exactly two")
    return (y == classes[1]).astype(np.float64)
