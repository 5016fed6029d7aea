"""Group L1 with K outputs (the multinomial): one proximal Newton step per full pass, in the K − 1
coordinates orthogonal to a common shift of the margins, on a Hessian kept from step to step while
it still gives fast steps, with inexact inner solves by block sweeps (engine/kernels/cd.py's
`group_sweeps`) and Anderson extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosel.kernels.cd import block_eigen, block_violation, group_sweeps
from neurosel.solver._problem import INNER_FLOOR, MAX_SWEEPS, PathState, Problem, helmert, line_search
from neurosel.solver._protocols import Datafit, Penalty

# An inner solve reduces the working set's violation at least this much (INNER_FLOOR below). 0.03,
# from 0.1, since the block sweeps got ~3.6× cheaper (session 9): fewer Newton steps, each a pass,
# often a fresh Hessian, for more sweeps (SICK halves: 94 → 76 passes each, 12% less CPU).
FORCING = 0.03
ANDERSON = 5  # sweeps between Anderson extrapolations
STALE_RATE = 0.7  # a kept Hessian serves while each step cuts the violation this much
NEAR = 0.85  # a fresh Hessian also covers neurons this close to entering,
NEAR_SHARE = 0.25  # ... at most this share of the working set more
# A full pass adds to the working set at most this share of the support in violators (the L1 path:
# as many as the support, engine/solver/_path.py). One Newton step is taken per pass, and its fresh
# Hessian costs q² per example: violators past the first quarter barely enter at this λ (about a
# tenth of the support enters per λ on a 20-λ grid), and the next pass ranks them again. The same
# solutions (tests/solver/test_path.py); on the 1,000-example SICK source the path and its stability
# halves took 9-22% less CPU (docs/benchmarks.md, session 9).
VIOLATOR_SHARE = 0.25


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


def group_newton(problem: Problem, state: PathState, l1: float, l2: float) -> None:
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
        start = block_violation(grad, u0, size, model.values, pen, l1, l2)
        if start > STALE_RATE * model.violation:
            model = None
    else:
        model = None
    if model is None:
        model, gw = _fresh_model(problem, state, l1, basis, gm)
        grad, u0, pen = _group_point(problem, state, model.work, gw, gm, basis)
        start = block_violation(grad, u0, size, model.values, pen, l1, l2)
    model.violation, state.model = start, model
    tol = max(FORCING * start, INNER_FLOOR * problem.tol * l1)
    # on one BLAS thread, as the whole path (_path.py): small products, where threads only wait
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
        decrease = line_search(problem, state, work, delta, zdelta, grad, l1, l2)
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
    d = basis.T @ datafit.hessian(y, state.m) @ basis  # (n, K − 1, K − 1)
    h, zd, gw = problem.design.gram(work, d, gm)
    if problem.fit_intercept:  # the intercepts' rows and columns last (one copy, as np.block makes)
        coupling, inner = zd.reshape(-1, size), h
        h = np.empty((inner.shape[0] + size,) * 2)
        h[:-size, :-size], h[:-size, -size:] = inner, coupling
        h[-size:, :-size], h[-size:, -size:] = coupling.T, d.sum(0)
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
    return helmert(k_out)


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
    violation (`block_violation`) is ≤ tol, extrapolating the iterates (Anderson) every ANDERSON sweeps
    where that lowers the model. The caller sets tol from the violation at u0 (inexact Newton)."""
    u, gm = u0.copy(), grad.copy()
    history, gradients = np.empty((ANDERSON + 1, u.size)), np.empty((ANDERSON + 1, u.size))
    used = 0
    while used < MAX_SWEEPS:
        history[0], gradients[0] = u, gm
        sweeps, violation = group_sweeps(
            h, gm, u, size, values, vectors, pen, l1, l2, tol, history, gradients
        )  # fmt: skip
        used += sweeps
        if violation <= tol:
            break
        with np.errstate(all="ignore"):  # a degenerate extrapolation is rejected below
            weights = _anderson(history)
            if weights is None:
                continue
            extrapolated, g_ext = weights @ history[1:], weights @ gradients[1:]  # gm is affine in u
            better = _model(grad, g_ext, extrapolated, u0, size, pen, l1, l2) < _model(
                grad, gm, u, u0, size, pen, l1, l2
            )
        if better:
            u, gm = extrapolated, g_ext
    return u


def _anderson(history: np.ndarray) -> np.ndarray | None:
    """Anderson extrapolation of the iterates u_0 … u_m (rows): the weights c (m) of Σ c_i u_i with
    Σ c_i = 1 minimising ‖Σ c_i (u_i − u_{i−1})‖; None when the differences are degenerate."""
    diffs = np.diff(history, axis=0)
    gram = diffs @ diffs.T
    try:
        c = np.linalg.solve(gram, np.ones(gram.shape[0]))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(c)) or c.sum() == 0.0:
        return None
    return c / c.sum()


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
