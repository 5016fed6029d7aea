"""A regularisation path of sparse generalised linear models by proximal Newton with working sets.

Coefficients are a matrix W (neurons × outputs K: one output for binary logistic and squared loss,
K classes for the multinomial). For each λ from λ_max down (warm-started from the previous
solution): a full pass computes the gradient on every neuron, which gives the stopping certificate
and the KKT violators; the working set (support and worst violators) is then
solved by proximal Newton steps, each one pass for the working set's Hessian and one for Z_W Δ,
with the penalised quadratic solved in memory by coordinate descent (engine/kernels/cd.py) and a
backtracking line search on n × K margins. A λ is accepted only after a full pass certifies it.

Group L1 with K outputs (the multinomial) takes one Newton step per full pass instead, in the K − 1
coordinates orthogonal to a common shift of the margins, on a Hessian kept from step to step while
it still gives fast steps, with inexact inner solves by block sweeps (`_group_newton`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.linalg import cho_factor, cho_solve

from neurosel.devices import blas_threads, single_threaded_blas
from neurosel.errors import InputError, SupportWarning
from neurosel.kernels.cd import block_eigen, block_step, cd_quadratic
from neurosel.solver._penalties import L1
from neurosel.solver._protocols import Datafit, Design, Penalty

MAX_OUTER = 60  # full passes per λ
MAX_NEWTON = 25  # Newton steps per working set
MAX_SWEEPS = 2000  # coordinate-descent sweeps per Newton step, in all
ACTIVE_SWEEPS = 10  # sweeps between exact solves on the active set
CD_TOL = 1e-10
THREADED_SIZE = 1500  # active sets this large factorise on every BLAS thread
FORCING = 0.1  # group L1: an inner solve reduces the working set's violation at least this much,
INNER_FLOOR = 0.1  # ... but not below this times tol · λα (then the gap cannot exceed ~tol); L1: this
ANDERSON = 5  # group L1: sweeps between Anderson extrapolations
STALE_RATE = 0.7  # group L1: a kept Hessian serves while each step cuts the violation this much
NEAR = 0.85  # group L1: a fresh Hessian also covers neurons this close to entering,
NEAR_SHARE = 0.25  # ... at most this share of the working set more
MAX_STALLED = 10  # group L1: steps in a row that do not lower the certificate end the λ
SLOW_RATE = 0.5  # L1: two full passes in a row cutting the certificate less than this much ...
SLOW_PASSES = 2  # ... switch the rest of the path to float64 Hessians (`PathState.exact`)
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
    margins M = Z W + b (n, K), the working set, the last full gradient Zᵀ ∇ (p, K), and (group L1)
    the kept quadratic model."""

    w: np.ndarray
    b: np.ndarray
    m: np.ndarray
    work: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gradient: np.ndarray | None = None
    certified_at: np.ndarray | None = None  # the margins the last λ was certified at (the same object)
    model: GroupModel | None = None  # group L1: the working set's kept quadratic model
    exact: bool = False  # Hessians in float64 arithmetic on a float32 design (after slow progress)

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
        active = state.active
        entry[active & (entry < 0)] = i
        support = int(active.sum())
        objective = datafit.value(y, state.m) + problem.penalty.value(state.w, l1, l2)
        grew = not rows or support > last_support
        stall = stall + 1 if i >= n_grid and not grew else 0  # counted on the extension only
        last_support = support
        rows.append((state.w.copy(), state.b.copy(), gap, ok, design.passes, objective))
        if not ok:
            from neurosel.solver._warnings import ConvergenceWarning

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
    Returns the certificate and whether it met the tolerance. Group L1 with K outputs takes one
    Newton step per full pass (`_group_newton`), and gives up once MAX_STALLED steps in a row have not
    lowered the certificate (rounding)."""
    design, y, datafit, penalty = problem.design, problem.y, problem.datafit, problem.penalty
    l1, l2 = problem.penalties(lam)
    scale = datafit.gap_scale(y)
    gap, best, stalled, slow, last = np.inf, np.inf, 0, 0, np.inf
    group = penalty.group and state.w.shape[1] > 1
    if state.model is not None:  # a new λ: the kept Hessian gets one try
        state.model.violation = np.inf
    for _ in range(MAX_OUTER * MAX_NEWTON if group else MAX_OUTER):
        # a new λ starts where the last was certified, its intercepts refitted and its full pass
        # made at these very margins: that pass is not repeated (16 of 54 passes, measured)
        fresh = state.certified_at is not state.m
        state.certified_at = None
        if fresh and problem.fit_intercept:
            state.b, state.m = _refit_intercept(datafit, y, state.b, state.m)
        gm = datafit.gradient(y, state.m)
        if fresh:
            state.gradient = design.rmatvec(gm)
        gap = _certificate(problem, state, gm, l1, l2)
        if gap <= problem.tol * scale:
            state.certified_at = state.m
            return gap, True
        best, stalled = (gap, 0) if gap < best else (best, stalled + 1)
        if stalled == MAX_STALLED:
            break
        slow = slow + 1 if gap > SLOW_RATE * last and not group else 0
        state.exact |= slow >= SLOW_PASSES  # a float32 Hessian can be too coarse for ill-conditioned steps
        last = gap
        state.work = _working_set(penalty, state, l1)
        if group:
            _group_newton(problem, state, l1, l2)
        else:
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
    """Support ∪ the worst KKT violators (at most as many as the support, at least WS_MIN); neurons
    that left the support drop out. (The sequential strong rule's survivors on a λ's first pass
    were measured to cost more passes than they save: docs/importance.md.)"""
    score = penalty.dual_norm(state.gradient)
    active = state.active
    violators = np.flatnonzero((score > l1) & ~active)
    keep = max(WS_MIN, int(active.sum()))
    if violators.size > keep:
        violators = violators[np.argsort(-score[violators], kind="stable")[:keep]]
    return np.union1d(np.flatnonzero(active), violators).astype(np.int64)


def _newton(problem: Problem, state: PathState, l1: float, l2: float, tol: float) -> None:
    """Proximal Newton steps on the working set (intercepts unpenalised), with Armijo backtracking,
    for penalties on single coefficients (L1; group L1 with one output); `state` is updated in place."""
    work = state.work
    if work.size == 0:
        return
    design, y, datafit = problem.design, problem.y, problem.datafit
    fit_intercept = problem.fit_intercept
    q, k_out = work.size, state.w.shape[1]
    for _ in range(MAX_NEWTON):
        d, gm = datafit.hessian(y, state.m), datafit.gradient(y, state.m)
        h, zd, gw = design.gram(work, d, gm, exact=state.exact)
        grad, u0 = gw.ravel(), state.w[work].ravel()
        if fit_intercept:
            coupling = zd.reshape(q * k_out, k_out)
            h = np.block([[h, coupling], [coupling.T, d.sum(0)]])
            grad, u0 = np.r_[grad, gm.sum(0)], np.r_[u0, state.b]
        pen = np.r_[np.ones(q * k_out), np.zeros(h.shape[0] - q * k_out)]
        # solved to a violation the certificate needs, not beyond (forcing it from the violation at
        # u0, as the group steps do, measured slower here: each extra step costs a Gram pass)
        diag = np.diag(h)[:, None].copy()
        inner_tol = INNER_FLOOR * problem.tol * l1
        with single_threaded_blas():  # small products: threads only wait (the factorisation decides)
            u = _inner_solve(h, grad, u0, pen, l1, l2, diag, inner_tol)
        delta = u - u0
        if not np.any(delta):
            break
        coef_delta = delta[: q * k_out].reshape(q, k_out)
        zdelta = design.matvec(work, coef_delta)
        if fit_intercept:
            zdelta += delta[q * k_out :]
        if _line_search(problem, state, work, delta, zdelta, grad, l1, l2) <= 0.1 * tol:
            break  # the Newton steps on this working set are done


@dataclass
class GroupModel:
    """Group L1: a working set's quadratic model, kept across Newton steps (and λs, which change only
    the penalty) while it serves: the Hessian Z_Wᵀ D Z_W with its intercept rows and columns, the
    eigen-decompositions of its diagonal blocks, and the violation at the step last taken with it."""

    work: np.ndarray
    h: np.ndarray
    values: np.ndarray
    vectors: np.ndarray
    violation: float = np.inf


def _group_newton(problem: Problem, state: PathState, l1: float, l2: float) -> None:
    """Group L1, K outputs: one proximal Newton step on the working set (intercepts unpenalised), with
    Armijo backtracking; `state` is updated in place. The gradient on the working set comes from the
    full pass that certified the last step, so a step costs one pass (Z_W Δ) while the kept model
    serves: while its working set contains the one asked for and each step cuts the violation at
    least 1/STALE_RATE-fold (its Hessian is then near enough to the current one for a linearly
    convergent step). Otherwise one more pass forms the Hessian afresh (`_fresh_model`). Under a
    shift-invariant loss (the multinomial) the steps are taken in the K − 1 coordinates orthogonal to
    a common shift of the margins (`_shift_basis`)."""
    if state.work.size == 0:
        return
    design, y, datafit = problem.design, problem.y, problem.datafit
    k_full = state.w.shape[1]
    basis = _shift_basis(datafit, problem.penalty, k_full)
    basis = np.eye(k_full) if basis is None else basis
    size = basis.shape[1]
    gm = datafit.gradient(y, state.m) @ basis
    model = state.model
    if model is not None and np.setdiff1d(state.work, model.work).size == 0:
        gw = state.gradient[model.work] @ basis
        grad, u0, pen = _group_point(problem, state, model.work, gw, gm, basis)
        start = _violation(grad, u0, size, model.values, pen, l1, l2)
        if start > STALE_RATE * model.violation:
            model = None
    else:
        model = None
    if model is None:
        model, gw = _fresh_model(problem, state, l1, basis, gm)
        grad, u0, pen = _group_point(problem, state, model.work, gw, gm, basis)
        start = _violation(grad, u0, size, model.values, pen, l1, l2)
    model.violation, state.model = start, model
    tol = max(FORCING * start, INNER_FLOOR * problem.tol * l1)
    with single_threaded_blas():  # small products: threads only wait
        u = _group_solve(model.h, grad, u0, size, model.values, model.vectors, pen, l1, l2, tol)
    work, q = model.work, model.work.size
    decrease = 0.0
    if np.any(u != u0):
        delta = u - u0
        zdelta = design.matvec(work, delta[: q * size].reshape(q, size)) @ basis.T
        if problem.fit_intercept:
            zdelta += delta[q * size :] @ basis.T
        target = u[: q * size].reshape(q, size) @ basis.T  # a row set to zero lands exactly on it
        delta = np.r_[(target - state.w[work]).ravel(), _full(delta[q * size :], basis)]
        grad = np.r_[(grad[: q * size].reshape(q, size) @ basis.T).ravel(), _full(grad[q * size :], basis)]
        decrease = _line_search(problem, state, work, delta, zdelta, grad, l1, l2)
    if decrease <= 0.0:  # no progress: a fresh Hessian next time
        model.violation = 0.0


def _full(intercepts: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Intercepts (none without them) from reduced to class coordinates."""
    return intercepts @ basis.T if intercepts.size else intercepts


def _fresh_model(
    problem: Problem, state: PathState, l1: float, basis: np.ndarray, gm: np.ndarray
) -> tuple[GroupModel, np.ndarray]:
    """The quadratic model at the current point on the working set and the neurons nearest to
    entering (`_with_near`), from one pass: the Hessian blocks (reduced coordinates: Qᵀ D Q), their
    coupling with the intercepts, and the gradient Z_Wᵀ ∇ Q."""
    y, datafit, size = problem.y, problem.datafit, basis.shape[1]
    work = _with_near(problem.penalty, state, l1)
    d = np.einsum("ka,ikl,lb->iab", basis, datafit.hessian(y, state.m), basis)
    h, zd, gw = problem.design.gram(work, d, gm)
    if problem.fit_intercept:
        coupling = zd.reshape(-1, size)
        h = np.block([[h, coupling], [coupling.T, d.sum(0)]])
    return GroupModel(work, h, *block_eigen(h, size)), gw


def _with_near(penalty: Penalty, state: PathState, l1: float) -> np.ndarray:
    """The working set and the neurons closest to entering (‖g_j‖ ≥ NEAR · λα, the closest first, at
    most NEAR_SHARE of the working set more): a kept model then still serves when they enter."""
    score = penalty.dual_norm(state.gradient)
    near = np.setdiff1d(np.flatnonzero(score >= NEAR * l1), state.work)
    extra = int(NEAR_SHARE * state.work.size)
    if near.size > extra:
        near = near[np.argsort(-score[near], kind="stable")[:extra]]
    return np.union1d(state.work, near)


def _group_point(
    problem: Problem, state: PathState, work: np.ndarray, gw: np.ndarray, gm: np.ndarray, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's gradient, current point and block penalty weights on `work` (reduced coordinates,
    intercepts last and unpenalised)."""
    grad, u0 = gw.ravel(), (state.w[work] @ basis).ravel()
    pen = np.ones(work.size)
    if problem.fit_intercept:
        grad, u0, pen = np.r_[grad, gm.sum(0)], np.r_[u0, state.b @ basis], np.r_[pen, 0.0]
    return grad, u0, pen


def _shift_basis(datafit: Datafit, penalty: Penalty, k_out: int) -> np.ndarray | None:
    """An orthonormal basis Q (K × (K − 1)) of the vectors orthogonal to (1, …, 1), where the loss
    ignores a common shift of the K margins (the multinomial) and the penalty is rotation-invariant
    (group L1): the loss's Hessian is singular along (1, …, 1) for every neuron, and the optimal rows
    of W are orthogonal to it, so W = V Qᵀ loses nothing. The Hessian blocks shrink from K² to
    (K − 1)² entries and have no null direction. None otherwise."""
    if not (penalty.group and getattr(datafit, "shift_invariant", False) and k_out > 1):
        return None
    return _helmert(k_out)


def _helmert(k_out: int) -> np.ndarray:
    """The Helmert basis (K × (K − 1)) of the vectors orthogonal to (1, …, 1), orthonormal."""
    basis = np.zeros((k_out, k_out - 1))
    for j in range(1, k_out):  # Helmert: (1, …, 1, −j, 0, …) / √(j (j + 1))
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1.0))
    return basis


def _line_search(
    problem: Problem,
    state: PathState,
    work: np.ndarray,
    delta: np.ndarray,
    zdelta: np.ndarray,
    grad: np.ndarray,
    l1: float,
    l2: float,
) -> float:
    """Armijo backtracking along a Newton direction; updates `state` and returns the decrease of the
    objective (0 for a nil step)."""
    if not np.any(delta):
        return 0.0
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
    return before - after


def _inner_solve(
    h: np.ndarray,
    grad: np.ndarray,
    u0: np.ndarray,
    pen: np.ndarray,
    l1: float,
    l2: float,
    diag: np.ndarray,
    tol: float,
) -> np.ndarray:
    """Minimise the L1-penalised quadratic model by coordinate descent until its largest violation
    (`_violation`, with the diagonal `diag` of H as the curvatures) is ≤ tol, or no coordinate moves:
    the sweeps find the active set and signs, then one linear solve on that set finishes the job,
    which plain sweeps do slowly on correlated neurons; sweeps resume after it, check the inactive
    neurons, and stop at once when it was right."""
    u, used = u0, 0
    while used < MAX_SWEEPS:
        shifted = grad + h @ (u - u0)  # the same quadratic, expanded around u
        u, sweeps = cd_quadratic(h, shifted, u, pen, l1, l2, ACTIVE_SWEEPS, CD_TOL)
        used += sweeps
        if sweeps < ACTIVE_SWEEPS or _violation(grad + h @ (u - u0), u, 1, diag, pen, l1, l2) <= tol:
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
    target = np.zeros_like(u)
    rhs = h[active] @ u0 - grad[active] - l1 * sign
    system = h[np.ix_(active, active)] + np.diag(l2 * penalised[active])
    # a large factorisation pays for every core; the many small ones around it do not (a second
    # thread only waits, and spins on after each call, slowing the sweeps that follow)
    with blas_threads() if active.size >= THREADED_SIZE else contextlib.nullcontext():
        target[active] = _solve_spd(system, rhs)
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


def _group_solve(
    h: np.ndarray,
    grad: np.ndarray,
    u0: np.ndarray,
    size: int,
    values: np.ndarray,
    vectors: np.ndarray,
    pen: np.ndarray,
    l1: float,
    l2: float,
    tol: float,
) -> np.ndarray:
    """Group L1: minimise the quadratic model by cyclic exact block steps until its largest block
    violation (`_violation`) is ≤ tol, extrapolating the iterates (Anderson) every ANDERSON sweeps
    where that lowers the model. The caller sets tol from the violation at u0 (inexact Newton)."""
    u, gm = u0.copy(), grad.copy()
    history = np.empty((ANDERSON + 1, u.size))
    used = 0
    while used < MAX_SWEEPS:
        history[0] = u
        sweeps, violation = _group_sweeps(h, gm, u, size, values, vectors, pen, l1, l2, tol, history)
        used += sweeps
        if violation <= tol:
            break
        with np.errstate(all="ignore"):  # a degenerate extrapolation is rejected below
            extrapolated = _anderson(history)
            if extrapolated is None:
                continue
            g_ext = grad + h @ (extrapolated - u0)
            better = _model(grad, g_ext, extrapolated, u0, size, pen, l1, l2) < _model(
                grad, gm, u, u0, size, pen, l1, l2
            )
        if better:
            u, gm = extrapolated, g_ext
    return u


def _anderson(history: np.ndarray) -> np.ndarray | None:
    """Anderson extrapolation of the iterates u_0 … u_m (rows): Σ c_i u_i with Σ c_i = 1 minimising
    ‖Σ c_i (u_i − u_{i−1})‖; None when the differences are degenerate."""
    diffs = np.diff(history, axis=0)
    gram = diffs @ diffs.T
    try:
        c = np.linalg.solve(gram, np.ones(gram.shape[0]))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(c)) or c.sum() == 0.0:
        return None
    return (c / c.sum()) @ history[1:]


def _model(
    grad: np.ndarray,
    gm: np.ndarray,
    u: np.ndarray,
    u0: np.ndarray,
    size: int,
    pen: np.ndarray,
    l1: float,
    l2: float,
) -> float:
    """The quadratic model at u, gᵀ(u − u0) + ½ (u − u0)ᵀ H (u − u0) + penalty, from its gradient
    there, gm = g + H (u − u0)."""
    blocks = u.reshape(-1, size)
    norms = np.linalg.norm(blocks, axis=1)
    penalty = np.sum(pen * (l1 * norms + 0.5 * l2 * norms**2))
    return float(0.5 * (grad + gm) @ (u - u0) + penalty)


@numba.njit(cache=True, nogil=True)
def _violation(gm, u, size, values, pen, l1, l2):
    """The largest block of the gradient mapping L_b ‖u_b − prox_b(u_b − gm_b / L_b)‖ (L_b the block's
    largest curvature, prox_b the penalty's with step 1/L_b): zero exactly at the minimiser and,
    unlike the distance to the subdifferential, continuous where a block's norm goes to zero;
    (‖gm_b‖ − λ1)₊ for a block at zero, ≈ ‖gm_b + λ1 u_b/‖u_b‖‖ far from it, ‖gm_b‖ unpenalised."""
    worst = 0.0
    for b in range(pen.size):
        o = b * size
        t, ridge, curv = l1 * pen[b], l2 * pen[b], values[b].max()
        acc = 0.0
        if t == 0.0 or curv <= 0.0:
            for k in range(size):
                acc += gm[o + k] * gm[o + k]
            worst = max(worst, np.sqrt(acc) if t == 0.0 else max(np.sqrt(acc) - t, 0.0))
            continue
        for k in range(size):
            v = u[o + k] - gm[o + k] / curv
            acc += v * v
        shrink = max(1.0 - t / (curv * np.sqrt(acc)), 0.0) * curv / (curv + ridge) if acc > 0.0 else 0.0
        acc = 0.0
        for k in range(size):
            r = u[o + k] - shrink * (u[o + k] - gm[o + k] / curv)
            acc += r * r
        worst = max(worst, curv * np.sqrt(acc))
    return worst


@numba.njit(cache=True, nogil=True)
def _group_sweeps(h, gm, u, size, values, vectors, pen, l1, l2, tol, history):
    """Up to len(history) − 1 cyclic sweeps of exact block steps on u (in place), keeping the model's
    gradient gm = g + H (u − u0) up to date (rows of the symmetric H: contiguous); the iterate after
    sweep i goes to history[i]. Stops early once the violation is ≤ tol; returns (sweeps, violation)."""
    z = np.empty(size)
    new = np.empty(size)
    step = np.empty(size)
    violation = np.inf
    last = history.shape[0] - 1
    for sweep in range(1, last + 1):
        for b in range(pen.size):
            o = b * size
            t, ridge = l1 * pen[b], l2 * pen[b]
            for k in range(size):
                acc = -gm[o + k]
                for m in range(size):
                    acc += h[o + k, o + m] * u[o + m]
                z[k] = acc
            block_step(z, values[b], vectors[b], t, ridge, new)
            moved = False
            for k in range(size):
                step[k] = new[k] - u[o + k]
                moved = moved or step[k] != 0.0
                u[o + k] = new[k]
            if not moved:
                continue
            rows = h[o : o + size]
            for i in range(gm.size):
                acc = 0.0
                for k in range(size):
                    acc += rows[k, i] * step[k]
                gm[i] += acc
        history[sweep] = u
        violation = _violation(gm, u, size, values, pen, l1, l2)
        if violation <= tol:
            for rest in range(sweep + 1, last + 1):
                history[rest] = u
            return sweep, violation
    return last, violation


def _refit_intercept(
    datafit: Datafit, y: np.ndarray, b: np.ndarray, m: np.ndarray, steps: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Exact unpenalised intercepts for the current coefficients (Newton; for the multinomial, whose
    intercepts are defined up to a constant, in the coordinates orthogonal to that constant: a
    least-squares step there would wander along it once converged, and never stop)."""
    basis = _helmert(b.size) if getattr(datafit, "shift_invariant", False) else None
    for _ in range(steps):
        g = datafit.gradient(y, m).sum(0)
        h = datafit.hessian(y, m).sum(0)
        if basis is None:
            step = np.linalg.lstsq(h, g, rcond=None)[0]
        else:
            step = basis @ np.linalg.lstsq(basis.T @ h @ basis, g @ basis, rcond=None)[0]
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
