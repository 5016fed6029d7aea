"""A regularisation path of sparse generalised linear models by proximal Newton with working sets.

Coefficients are a matrix W (neurons × outputs K: one output for binary logistic and squared loss,
K classes for the multinomial). For each λ from λ_max down (warm-started from the previous
solution): a full pass computes the gradient on every neuron, which gives the stopping certificate
and the KKT violators; the working set (support, strong-rule survivors, worst violators) is then
solved by proximal Newton steps, each one pass for the working set's Hessian and one for Z_W Δ,
with the penalised quadratic solved in memory by block coordinate descent (kernels/cd.py) and a
backtracking line search on n × K margins. A λ is accepted only after a full pass certifies it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from engine.errors import InputError
from engine.penalties import L1
from kernels.cd import block_eigen, cd_quadratic

MAX_OUTER = 60  # full passes per λ
MAX_NEWTON = 25  # Newton steps per working set
MAX_SWEEPS = 2000  # coordinate-descent sweeps per Newton step, in all
ACTIVE_SWEEPS = 10  # sweeps between exact solves on the active set
CD_TOL = 1e-10
WS_MIN = 16  # violators added to the working set at least
ARMIJO = 1e-4
EXTEND_FLOOR = 1e-4  # with a target support, the path may go on down to λ_max · EXTEND_FLOOR
EXTEND_STALL = 5  # ... and gives up after this many λs without growth,
SEPARATED = 1e-2  # or once the loss is below this fraction of a blind guess's (smaller λs only memorise)


class ConvergenceWarning(UserWarning):
    """A λ of the path stopped at its iteration cap before its stopping rule held."""


class SupportWarning(UserWarning):
    """The path could not reach the requested support size; the closest λ is returned."""


@dataclass
class PathResult:
    """Solutions along the path: coef (λs, p, K), intercept (λs, K), and what certifies each."""

    lambdas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    gaps: np.ndarray
    converged: np.ndarray
    passes: np.ndarray
    entry: np.ndarray  # per neuron: index of the first λ where it is non-zero, −1 if never
    objective: np.ndarray
    closeness: np.ndarray  # per neuron at the last λ: dual norm of its gradient / λα (1 = about to enter)

    @property
    def support_sizes(self) -> np.ndarray:
        return np.any(self.coef != 0, axis=2).sum(1)


def lambda_max(design, y, datafit, penalty=None, l1_ratio: float = 1.0, fit_intercept: bool = True) -> float:
    """The smallest λ at which every coefficient is zero."""
    penalty = penalty or L1()
    m = _null_margins(datafit, y, design.shape[0], fit_intercept)
    g = design.rmatvec(datafit.gradient(y, m))
    return float(np.max(penalty.dual_norm(g)) / l1_ratio)


def sparse_path(
    design,
    y: np.ndarray,
    datafit,
    penalty=None,
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

    With `target_support`, the path stops at the first λ whose support reaches it, going on below
    `lambda_ratio` at the same log step if needed; if it cannot, it warns and keeps what it found.
    """
    penalty = penalty or L1()
    n, p = design.shape
    k_out = datafit.outputs(y)
    step = None
    if lambdas is None:
        top = lambda_max(design, y, datafit, penalty, l1_ratio, fit_intercept)
        lambdas = top * np.geomspace(1.0, lambda_ratio, n_lambdas)
        step = lambda_ratio ** (1.0 / max(n_lambdas - 1, 1))
    grid = list(np.asarray(lambdas, dtype=np.float64))
    n_grid = len(grid)
    w = np.zeros((p, k_out))
    b = datafit.null_intercept(y) if fit_intercept else np.zeros(k_out)
    m = np.broadcast_to(b, (n, k_out)).copy()
    entry = np.full(p, -1)
    rows, work, previous, stall = [], np.zeros(0, dtype=np.int64), None, 0
    i = 0
    while i < len(grid):
        lam = grid[i]
        w, b, m, work, gap, ok, g = _solve_lambda(
            design, y, datafit, penalty, lam, l1_ratio, w, b, m, work, previous, fit_intercept, tol
        )
        l1, l2 = lam * l1_ratio, lam * (1 - l1_ratio)
        previous = (l1, penalty.dual_norm(g))
        active = np.any(w != 0, axis=1)
        entry[active & (entry < 0)] = i
        support = int(active.sum())
        objective = datafit.value(y, m) + penalty.value(w, l1, l2)
        grew = not rows or support > int(np.any(rows[-1][0] != 0, axis=1).sum())
        stall = stall + 1 if i >= n_grid and not grew else 0  # counted on the extension only
        rows.append((w.copy(), b.copy(), gap, ok, design.passes, objective))
        if not ok:
            warnings.warn(f"λ={lam:.3g} stopped at the iteration cap (gap {gap:.2e})", ConvergenceWarning, 2)
        i += 1
        if target_support is None:
            continue
        if support >= target_support:
            break
        separated = datafit.value(y, m) < SEPARATED * datafit.gap_scale(y)
        extendable = (
            step is not None
            and not separated
            and stall < EXTEND_STALL
            and lam * step >= grid[0] * EXTEND_FLOOR
        )
        if i == len(grid) and extendable:
            grid.append(lam * step)
        elif i == len(grid):
            why = "the examples are separated" if separated else f"λ down to {lam:.3g}"
            warnings.warn(
                f"the path reached {support} neurons, fewer than the {target_support} requested "
                f"({why}); returning the closest",
                SupportWarning,
                2,
            )
    coef, intercept, gaps, converged, passes, objective = (np.array(col) for col in zip(*rows, strict=True))
    closeness = penalty.dual_norm(g) / (lam * l1_ratio)
    return PathResult(
        np.array(grid[: len(rows)]), coef, intercept, gaps, converged, passes, entry, objective, closeness
    )


def _null_margins(datafit, y, n: int, fit_intercept: bool) -> np.ndarray:
    k_out = datafit.outputs(y)
    b = datafit.null_intercept(y) if fit_intercept else np.zeros(k_out)
    return np.broadcast_to(b, (n, k_out)).copy()


def _solve_lambda(design, y, datafit, penalty, lam, l1_ratio, w, b, m, work, previous, fit_intercept, tol):
    """Minimise datafit + λ(α‖W‖ + (1−α)/2 ‖W‖²) from a warm start; certified by a full pass."""
    l1, l2 = lam * l1_ratio, lam * (1 - l1_ratio)
    scale = datafit.gap_scale(y)
    gap, g = np.inf, None
    for _ in range(MAX_OUTER):
        if fit_intercept:
            b, m = _refit_intercept(datafit, y, b, m)
        gm = datafit.gradient(y, m)
        g = design.rmatvec(gm)
        gap = _certificate(datafit, penalty, y, m, w, g, gm, l1, l2)
        if gap <= tol * scale:
            return w, b, m, work, gap, True, g
        work = _working_set(penalty, w, g, l1, work, previous)
        w, b, m = _newton(design, y, datafit, penalty, w, b, m, work, l1, l2, fit_intercept, tol * scale)
    return w, b, m, work, gap, False, g


def _certificate(datafit, penalty, y, m, w, g, gm, l1, l2) -> float:
    """Duality gap for (group) L1 (dual point: residuals scaled into the feasible set); the largest
    KKT residual for the elastic net."""
    if l2 != 0.0:
        return penalty.kkt(w, g, l1, l2)
    primal = datafit.value(y, m) + penalty.value(w, l1, 0.0)
    residual = -len(y) * gm  # s(y − p) (logistic, multinomial) or s(y − m) (squared)
    top = float(np.max(penalty.dual_norm(g))) if g.size else 0.0
    shrink = 1.0 if top <= l1 else l1 / top
    return max(primal - datafit.dual(y, shrink * residual), 0.0)


def _working_set(penalty, w, g, l1, work, previous) -> np.ndarray:
    """Support ∪ the worst KKT violators (at most as many as the support, at least WS_MIN) ∪ the
    sequential strong-rule survivors; neurons that left the support drop out."""
    score = penalty.dual_norm(g)
    active = np.any(w != 0, axis=1)
    violators = np.flatnonzero((score > l1) & ~active)
    if previous is not None and work.size == 0:  # first pass at this λ: the sequential strong rule
        l1_prev, score_prev = previous
        violators = np.union1d(violators, np.flatnonzero(score_prev >= 2 * l1 - l1_prev))
    keep = max(WS_MIN, int(active.sum()))
    if violators.size > keep:
        violators = violators[np.argsort(-score[violators], kind="stable")[:keep]]
    return np.union1d(np.flatnonzero(active), violators).astype(np.int64)


def _newton(design, y, datafit, penalty, w, b, m, work, l1, l2, fit_intercept, tol):
    """Proximal Newton steps on the working set (intercepts unpenalised), with Armijo backtracking."""
    if work.size == 0:
        return w, b, m
    q, k_out = work.size, w.shape[1]
    size = k_out if penalty.group else 1
    blocks = q * k_out // size
    for _ in range(MAX_NEWTON):
        d, gm = datafit.hessian(y, m), datafit.gradient(y, m)
        h, zd, gw = design.gram(work, d, gm)
        grad, u0 = gw.ravel(), w[work].ravel()
        if fit_intercept:
            coupling = zd.reshape(q * k_out, k_out)
            h = np.block([[h, coupling], [coupling.T, d.sum(0)]])
            grad, u0 = np.r_[grad, gm.sum(0)], np.r_[u0, b]
        nb = h.shape[0] // size
        pen = np.r_[np.ones(blocks), np.zeros(nb - blocks)]
        u = _inner_solve(h, grad, u0, size, pen, l1, l2)
        delta = u - u0
        if not np.any(delta):
            break
        coef_delta = delta[: q * k_out].reshape(q, k_out)
        zdelta = design.matvec(work, coef_delta)
        if fit_intercept:
            zdelta += delta[q * k_out :]
        w_work = w[work]
        before = datafit.value(y, m) + penalty.value(w_work, l1, l2)
        slope = grad @ delta + penalty.value(w_work + coef_delta, l1, l2) - penalty.value(w_work, l1, l2)
        t = 1.0
        while True:
            after = datafit.value(y, m + t * zdelta) + penalty.value(w_work + t * coef_delta, l1, l2)
            if after <= before + ARMIJO * t * slope or t < 1e-10:
                break
            t *= 0.5
        w = w.copy()
        w[work] += t * coef_delta
        if fit_intercept:
            b = b + t * delta[q * k_out :]
        m = m + t * zdelta
        if before - after <= 0.1 * tol:
            break
    return w, b, m


def _inner_solve(h, grad, u0, size, pen, l1, l2) -> np.ndarray:
    """Minimise the penalised quadratic model by exact block coordinate descent. For L1, the sweeps
    find the active set and signs, then one linear solve on that set finishes the job, which plain
    sweeps do slowly on correlated neurons; sweeps resume after it, check the inactive neurons, and
    stop at once when it was right."""
    values, vectors = block_eigen(h, size)
    if size != 1:  # group L1: exact block sweeps
        return cd_quadratic(h, grad, u0, size, values, vectors, pen, l1, l2, MAX_SWEEPS, CD_TOL)[0]
    u, used = u0, 0
    while used < MAX_SWEEPS:
        shifted = grad + h @ (u - u0)  # the same quadratic, expanded around u
        u, sweeps = cd_quadratic(h, shifted, u, size, values, vectors, pen, l1, l2, ACTIVE_SWEEPS, CD_TOL)
        used += sweeps
        if sweeps < ACTIVE_SWEEPS:
            return u
        u = _sign_fixed_solve(h, grad, u0, u, pen, l1, l2)
    return u


def _sign_fixed_solve(h, grad, u0, u, pen, l1, l2) -> np.ndarray:
    """L1: the exact minimiser on the active set with its signs fixed (one linear solve). If it would
    flip a sign it stops at the first crossing, which still lowers the objective."""
    penalised = pen > 0
    active = np.flatnonzero((u != 0) | ~penalised)
    sign = np.where(penalised[active], np.sign(u[active]), 0.0)
    system = h[np.ix_(active, active)] + np.diag(l2 * penalised[active])
    target = np.zeros_like(u)
    target[active] = _solve_spd(system, h[active] @ u0 - grad[active] - l1 * sign)
    flips = penalised & (u != 0) & (np.sign(target) != np.sign(u))
    if not np.any(flips):
        return target
    ratio = u[flips] / (u[flips] - target[flips])
    t = float(ratio.min())
    u = u + t * (target - u)
    u[np.flatnonzero(flips)[ratio <= t]] = 0.0
    return u


def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a x = b for a symmetric positive (semi-)definite a: Cholesky, least squares if singular."""
    try:
        return cho_solve(cho_factor(a), b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def _refit_intercept(datafit, y, b, m, steps: int = 50):
    """Exact unpenalised intercepts for the current coefficients (Newton; a least-squares step for
    the multinomial, whose intercepts are defined up to a constant)."""
    for _ in range(steps):
        g = datafit.gradient(y, m).sum(0)
        h = datafit.hessian(y, m).sum(0)
        step = np.linalg.lstsq(h, g, rcond=None)[0]
        b, m = b - step, m - step
        if np.max(np.abs(step)) < 1e-13 * max(1.0, float(np.max(np.abs(b)))):
            break
    return b, m


def check_classes(labels: np.ndarray, where: str) -> int:
    """The number of classes in `labels`; InputError for a single class."""
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputError(f"{where}: a single class ({classes[0]!r}); sparse logistic needs two or more")
    return int(classes.size)
