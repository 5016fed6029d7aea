"""A regularisation path of sparse generalised linear models by proximal Newton with working sets.

Coefficients are a matrix W (neurons × outputs K: one output for binary logistic and squared loss,
K classes for the multinomial). For each λ from λ_max down (warm-started from the previous
solution): a full pass computes the gradient on every neuron, which gives the stopping certificate
and the KKT violators; the working set (support and worst violators) is then
solved by proximal Newton steps, each one pass for the working set's Hessian and one for Z_W Δ,
with the penalised quadratic solved in memory by coordinate descent (engine/kernels/cd.py) and a
backtracking line search on n × K margins (engine/solver/_newton_l1.py). A λ is accepted only
after a full pass certifies it.

Group L1 with K outputs (the multinomial) takes one Newton step per full pass instead, in the K − 1
coordinates orthogonal to a common shift of the margins, on a Hessian kept from step to step while
it still gives fast steps, with inexact inner solves by block sweeps (engine/solver/_newton_group.py).
This module is the path loop: the λ grid, the full passes and their certificates, the working sets.
The problem and the state carried from λ to λ are in engine/solver/_problem.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurosel.devices import single_threaded_blas
from neurosel.errors import SupportWarning
from neurosel.solver._newton_group import VIOLATOR_SHARE, group_newton
from neurosel.solver._newton_l1 import newton_l1
from neurosel.solver._penalties import L1
from neurosel.solver._problem import MAX_NEWTON, PathState, Problem, helmert
from neurosel.solver._protocols import Datafit, Design, Penalty

__all__ = ["SEPARATED", "PathResult", "PathState", "Problem", "lambda_max", "sparse_path"]

MAX_OUTER = 60  # full passes per λ
MAX_STALLED = 10  # group L1: steps in a row that do not lower the certificate end the λ
SLOW_RATE = 0.5  # L1: two full passes in a row cutting the certificate less than this much ...
SLOW_PASSES = 2  # ... switch the rest of the path to float64 Hessians (`PathState.exact`)
WS_MIN = 16  # violators added to the working set at least
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


# warnings name sparse_path's caller: past this function and the decorator's frame below
CALLER = 3


# on one BLAS thread, the design's passes and large factorisations opting in to more by size (a
# contextlib context manager as a decorator enters afresh on each call)
@single_threaded_blas()
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
    Small operations run on one BLAS thread (the inner solves, line searches, small passes: a second
    thread only waits), the design's passes and factorisations large enough to gain on every thread
    the user allows (neurosel.devices.blas_threads_for); a user's own limit is never raised.
    The λ loop is kept whole (over 80 lines): the grid grows inside it and its stop rules read its
    running state (support, stall, the last λ), which a helper would only pass back and forth.
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
                f"{where}λ={lam:.3g} stopped at the iteration cap (gap {gap:.2e})", ConvergenceWarning, CALLER
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
                CALLER,
            )
    coef, intercept, gaps, converged, passes, objective = (np.array(col) for col in zip(*rows, strict=True))
    closeness = problem.penalty.dual_norm(state.gradient) / problem.penalties(lam)[0]
    return PathResult(
        np.array(grid[: len(rows)]), coef, intercept, gaps, converged, passes, entry, objective, closeness
    )


def _solve_lambda(problem: Problem, state: PathState, lam: float) -> tuple[float, bool]:
    """Minimise at λ from the warm start in `state` (updated in place); certified by a full pass.
    Returns the certificate and whether it met the tolerance. Group L1 with K outputs takes one
    Newton step per full pass (`group_newton`), and gives up once MAX_STALLED steps in a row have not
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
        state.work = _working_set(penalty, state, l1, VIOLATOR_SHARE if group else 1.0)
        if group:
            group_newton(problem, state, l1, l2)
        else:
            newton_l1(problem, state, l1, l2, problem.tol * scale)
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


def _working_set(penalty: Penalty, state: PathState, l1: float, share: float = 1.0) -> np.ndarray:
    """Support ∪ the worst KKT violators (at most `share` × the support, at least WS_MIN); neurons
    that left the support drop out. (The sequential strong rule's survivors on a λ's first pass
    were measured to cost more passes than they save: docs/importance.md.)"""
    score = penalty.dual_norm(state.gradient)
    active = state.active
    violators = np.flatnonzero((score > l1) & ~active)
    keep = max(WS_MIN, int(share * active.sum()))
    if violators.size > keep:
        violators = violators[np.argsort(-score[violators], kind="stable")[:keep]]
    return np.union1d(np.flatnonzero(active), violators).astype(np.int64)


def _refit_intercept(
    datafit: Datafit, y: np.ndarray, b: np.ndarray, m: np.ndarray, steps: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Exact unpenalised intercepts for the current coefficients (Newton; for the multinomial, whose
    intercepts are defined up to a constant, in the coordinates orthogonal to that constant: a
    least-squares step there would wander along it once converged, and never stop)."""
    basis = helmert(b.size) if getattr(datafit, "shift_invariant", False) else None
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
