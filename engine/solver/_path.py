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
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from engine.devices import single_threaded_blas
from engine.errors import InputError, SupportWarning
from engine.solver._penalties import L1
from engine.solver._protocols import Datafit, Design, Penalty
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


@dataclass(frozen=True)
class Problem:
    """What is minimised: datafit(y, Z W + b) + λ(α Ω(W) + (1 − α)/2 ‖W‖²), to a gap of tol · scale."""

    design: Design
    y: np.ndarray
    datafit: Datafit
    penalty: Penalty
    l1_ratio: float = 1.0
    fit_intercept: bool = True
    tol: float = 1e-6

    def penalties(self, lam: float) -> tuple[float, float]:
        """(λα, λ(1 − α)): the L1 and ridge strengths at λ."""
        return lam * self.l1_ratio, lam * (1 - self.l1_ratio)


@dataclass
class PathState:
    """The solver's state, warm-started from λ to λ: coefficients W (p, K), intercepts b (K,),
    margins M = Z W + b (n, K), the working set, the last full gradient Zᵀ ∇ (p, K), and the
    previous λ's (λα, dual norms) for the sequential strong rule."""

    w: np.ndarray
    b: np.ndarray
    m: np.ndarray
    work: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gradient: np.ndarray | None = None
    previous: tuple[float, np.ndarray] | None = None

    @classmethod
    def null(cls, problem: Problem) -> PathState:
        """All coefficients zero, intercepts at their optimum (or zero without intercept)."""
        n, p = problem.design.shape
        k_out = problem.datafit.outputs(problem.y)
        b = problem.datafit.null_intercept(problem.y) if problem.fit_intercept else np.zeros(k_out)
        return cls(w=np.zeros((p, k_out)), b=b, m=np.broadcast_to(b, (n, k_out)).copy())

    @property
    def active(self) -> np.ndarray:
        return np.any(self.w != 0, axis=1)


def lambda_max(
    design: Design,
    y: np.ndarray,
    datafit: Datafit,
    penalty: Penalty | None = None,
    l1_ratio: float = 1.0,
    fit_intercept: bool = True,
) -> float:
    """The smallest λ at which every coefficient is zero."""
    problem = Problem(design, y, datafit, penalty or L1(), l1_ratio, fit_intercept)
    state = PathState.null(problem)
    g = design.rmatvec(datafit.gradient(y, state.m))
    return float(np.max(problem.penalty.dual_norm(g)) / l1_ratio)


def sparse_path(
    design: Design,
    y: np.ndarray,
    datafit: Datafit,
    penalty: Penalty | None = None,
    *,
    l1_ratio: float = 1.0,
    lambdas: np.ndarray | None = None,
    n_lambdas: int = 20,
    lambda_ratio: float = 1e-2,
    target_support: int | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-6,
    name: str = "",
    on_lambda: Callable[[int, int], None] | None = None,
) -> PathResult:
    """Solve along a log-spaced path from λ_max (or the given λs), warm-starting each from the last.

    With `target_support`, the path stops at the first λ whose support reaches it, going on below
    `lambda_ratio` at the same log step if needed; if it cannot, it warns (naming `name`, the data's
    name) and keeps what it found. `on_lambda(i, support)` is called after each λ (progress).
    """
    problem = Problem(design, y, datafit, penalty or L1(), l1_ratio, fit_intercept, tol)
    step = None
    if lambdas is None:
        top = lambda_max(design, y, datafit, problem.penalty, l1_ratio, fit_intercept)
        lambdas = top * np.geomspace(1.0, lambda_ratio, n_lambdas)
        step = lambda_ratio ** (1.0 / max(n_lambdas - 1, 1))
    grid = list(np.asarray(lambdas, dtype=np.float64))
    n_grid = len(grid)
    state = PathState.null(problem)
    entry = np.full(design.shape[1], -1)
    rows: list[tuple] = []
    stall, last_support, i = 0, 0, 0
    where = f"{name}: " if name else ""
    while i < len(grid):
        lam = grid[i]
        gap, ok = _solve_lambda(problem, state, lam)
        l1, l2 = problem.penalties(lam)
        state.previous = (l1, problem.penalty.dual_norm(state.gradient))
        active = state.active
        entry[active & (entry < 0)] = i
        support = int(active.sum())
        objective = datafit.value(y, state.m) + problem.penalty.value(state.w, l1, l2)
        grew = not rows or support > last_support
        stall = stall + 1 if i >= n_grid and not grew else 0  # counted on the extension only
        last_support = support
        rows.append((state.w.copy(), state.b.copy(), gap, ok, design.passes, objective))
        if not ok:
            from engine.solver._warnings import ConvergenceWarning

            warnings.warn(
                f"{where}λ={lam:.3g} stopped at the iteration cap (gap {gap:.2e})", ConvergenceWarning, 2
            )
        i += 1
        if on_lambda is not None:
            on_lambda(i, support)
        if target_support is None:
            continue
        if support >= target_support:
            break
        separated = datafit.value(y, state.m) < SEPARATED * datafit.gap_scale(y)
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
                f"{where}the path reached {support} neurons, fewer than the {target_support} requested "
                f"({why}); returning the closest",
                SupportWarning,
                2,
            )
    coef, intercept, gaps, converged, passes, objective = (np.array(col) for col in zip(*rows, strict=True))
    closeness = problem.penalty.dual_norm(state.gradient) / problem.penalties(lam)[0]
    return PathResult(
        np.array(grid[: len(rows)]), coef, intercept, gaps, converged, passes, entry, objective, closeness
    )


def _solve_lambda(problem: Problem, state: PathState, lam: float) -> tuple[float, bool]:
    """Minimise at λ from the warm start in `state` (updated in place); certified by a full pass.
    Returns the certificate and whether it met the tolerance."""
    design, y, datafit, penalty = problem.design, problem.y, problem.datafit, problem.penalty
    l1, l2 = problem.penalties(lam)
    scale = datafit.gap_scale(y)
    gap = np.inf
    for _ in range(MAX_OUTER):
        if problem.fit_intercept:
            state.b, state.m = _refit_intercept(datafit, y, state.b, state.m)
        gm = datafit.gradient(y, state.m)
        state.gradient = design.rmatvec(gm)
        gap = _certificate(problem, state, gm, l1, l2)
        if gap <= problem.tol * scale:
            return gap, True
        state.work = _working_set(penalty, state, l1)
        _newton(problem, state, l1, l2, problem.tol * scale)
    return gap, False


def _certificate(problem: Problem, state: PathState, gm: np.ndarray, l1: float, l2: float) -> float:
    """Duality gap for (group) L1 (dual point: residuals scaled into the feasible set); the largest
    KKT residual for the elastic net."""
    datafit, penalty, y, g = problem.datafit, problem.penalty, problem.y, state.gradient
    if l2 != 0.0:
        return penalty.kkt(state.w, g, l1, l2)
    primal = datafit.value(y, state.m) + penalty.value(state.w, l1, 0.0)
    residual = -len(y) * gm  # s(y − p) (logistic, multinomial) or s(y − m) (squared)
    top = float(np.max(penalty.dual_norm(g))) if g.size else 0.0
    shrink = 1.0 if top <= l1 else l1 / top
    return max(primal - datafit.dual(y, shrink * residual), 0.0)


def _working_set(penalty: Penalty, state: PathState, l1: float) -> np.ndarray:
    """Support ∪ the worst KKT violators (at most as many as the support, at least WS_MIN) ∪ the
    sequential strong-rule survivors; neurons that left the support drop out."""
    score = penalty.dual_norm(state.gradient)
    active = state.active
    violators = np.flatnonzero((score > l1) & ~active)
    if state.previous is not None and state.work.size == 0:  # first pass at this λ: the strong rule
        l1_prev, score_prev = state.previous
        violators = np.union1d(violators, np.flatnonzero(score_prev >= 2 * l1 - l1_prev))
    keep = max(WS_MIN, int(active.sum()))
    if violators.size > keep:
        violators = violators[np.argsort(-score[violators], kind="stable")[:keep]]
    return np.union1d(np.flatnonzero(active), violators).astype(np.int64)


def _newton(problem: Problem, state: PathState, l1: float, l2: float, tol: float) -> None:
    """Proximal Newton steps on the working set (intercepts unpenalised), with Armijo backtracking;
    `state` is updated in place."""
    work = state.work
    if work.size == 0:
        return
    design, y, datafit, penalty = problem.design, problem.y, problem.datafit, problem.penalty
    fit_intercept = problem.fit_intercept
    q, k_out = work.size, state.w.shape[1]
    size = k_out if penalty.group else 1
    blocks = q * k_out // size
    for _ in range(MAX_NEWTON):
        d, gm = datafit.hessian(y, state.m), datafit.gradient(y, state.m)
        h, zd, gw = design.gram(work, d, gm)
        grad, u0 = gw.ravel(), state.w[work].ravel()
        if fit_intercept:
            coupling = zd.reshape(q * k_out, k_out)
            h = np.block([[h, coupling], [coupling.T, d.sum(0)]])
            grad, u0 = np.r_[grad, gm.sum(0)], np.r_[u0, state.b]
        nb = h.shape[0] // size
        pen = np.r_[np.ones(blocks), np.zeros(nb - blocks)]
        with single_threaded_blas():  # small factorisations and products: threads only wait
            u = _inner_solve(h, grad, u0, size, pen, l1, l2)
        delta = u - u0
        if not np.any(delta):
            break
        coef_delta = delta[: q * k_out].reshape(q, k_out)
        zdelta = design.matvec(work, coef_delta)
        if fit_intercept:
            zdelta += delta[q * k_out :]
        if not _line_search(problem, state, work, delta, zdelta, grad, l1, l2, tol):
            break


def _line_search(
    problem: Problem,
    state: PathState,
    work: np.ndarray,
    delta: np.ndarray,
    zdelta: np.ndarray,
    grad: np.ndarray,
    l1: float,
    l2: float,
    tol: float,
) -> bool:
    """Armijo backtracking along a Newton direction; updates `state`. False once the step is nil or
    the decrease is below the tolerance (the Newton steps on this working set are done)."""
    if not np.any(delta):
        return False
    y, datafit, penalty = problem.y, problem.datafit, problem.penalty
    q, k_out = work.size, state.w.shape[1]
    coef_delta = delta[: q * k_out].reshape(q, k_out)
    w_work = state.w[work]
    before = datafit.value(y, state.m) + penalty.value(w_work, l1, l2)
    slope = grad @ delta + penalty.value(w_work + coef_delta, l1, l2) - penalty.value(w_work, l1, l2)
    t = 1.0
    while True:
        after = datafit.value(y, state.m + t * zdelta) + penalty.value(w_work + t * coef_delta, l1, l2)
        if after <= before + ARMIJO * t * slope or t < 1e-10:
            break
        t *= 0.5
    state.w = state.w.copy()
    state.w[work] += t * coef_delta
    if problem.fit_intercept:
        state.b = state.b + t * delta[q * k_out :]
    state.m = state.m + t * zdelta
    return before - after > 0.1 * tol


def _inner_solve(
    h: np.ndarray, grad: np.ndarray, u0: np.ndarray, size: int, pen: np.ndarray, l1: float, l2: float
) -> np.ndarray:
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


def _sign_fixed_solve(
    h: np.ndarray, grad: np.ndarray, u0: np.ndarray, u: np.ndarray, pen: np.ndarray, l1: float, l2: float
) -> np.ndarray:
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


def _refit_intercept(
    datafit: Datafit, y: np.ndarray, b: np.ndarray, m: np.ndarray, steps: int = 50
) -> tuple[np.ndarray, np.ndarray]:
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
