"""Proximal Newton steps on a working set for penalties on single coefficients (L1, and group L1
with one output): each step forms the working set's Hessian (one pass), solves the penalised
quadratic model in memory by coordinate descent (engine/kernels/cd.py) finished by one sign-fixed
linear solve, and takes an Armijo step (one pass for Z_W Δ).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from neurosel.devices import blas_threads_for
from neurosel.kernels.cd import block_violation, cd_quadratic, gather_square
from neurosel.solver._problem import INNER_FLOOR, MAX_NEWTON, MAX_SWEEPS, PathState, Problem, line_search

ACTIVE_SWEEPS = 10  # sweeps between exact solves on the active set
CD_TOL = 1e-10


def newton_l1(problem: Problem, state: PathState, l1: float, l2: float, tol: float) -> None:
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
        inner_tol = INNER_FLOOR * problem.tol * l1  # (on one BLAS thread, as the whole path: _path.py)
        u = _inner_solve(h, grad, u0, pen, l1, l2, diag, inner_tol)
        delta = u - u0
        if not np.any(delta):
            break
        coef_delta = delta[: q * k_out].reshape(q, k_out)
        zdelta = design.matvec(work, coef_delta)
        if fit_intercept:
            zdelta += delta[q * k_out :]
        if line_search(problem, state, work, delta, zdelta, grad, l1, l2) <= 0.1 * tol:
            break  # the Newton steps on this working set are done


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
    (`block_violation`, with the diagonal `diag` of H as the curvatures) is ≤ tol, or no coordinate moves:
    the sweeps find the active set and signs, then one linear solve on that set finishes the job,
    which plain sweeps do slowly on correlated neurons; sweeps resume after it, check the inactive
    neurons, and stop at once when it was right."""
    u, used = u0, 0
    while used < MAX_SWEEPS:
        shifted = grad + h @ (u - u0)  # the same quadratic, expanded around u
        u, sweeps = cd_quadratic(h, shifted, u, pen, l1, l2, ACTIVE_SWEEPS, CD_TOL)
        used += sweeps
        if sweeps < ACTIVE_SWEEPS or block_violation(grad + h @ (u - u0), u, 1, diag, pen, l1, l2) <= tol:
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
    # one gather of the active block (a product with H beats gathering its rows); the ridge goes on
    # its diagonal in place, and pure L1 adds nothing (no dense diagonal matrix)
    rhs = (h @ u0)[active] - grad[active] - l1 * sign
    system = gather_square(h, active)
    if l2 != 0.0:
        system.flat[:: active.size + 1] += l2 * penalised[active]
    # a large factorisation pays for every core the user allows; the many small ones do not (a
    # second thread only waits, and spins on after each call, slowing the sweeps that follow)
    with blas_threads_for(active.size**3 / 3):
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
    """Solve a x = b for a symmetric positive (semi-)definite, C-ordered a: Cholesky, least squares
    if singular. `a` is factorised in place (it is overwritten): LAPACK reads it as its
    Fortran-ordered transpose, the same matrix, so no copy is made (scipy copies a C-ordered one
    into Fortran order first: 0.2 s of a 0.35 s factorisation at 3,500 neurons). A failed
    factorisation has overwritten only a's lower triangle and diagonal; the least squares rebuilds a
    from its strict upper triangle and the diagonal kept here. No finiteness scans (a pass each):
    the solver's Hessians and gradients are finite."""
    diagonal = a.diagonal().copy()
    try:
        return cho_solve(cho_factor(a.T, overwrite_a=True, check_finite=False), b, check_finite=False)
    except np.linalg.LinAlgError:
        upper = np.triu(a, 1)
        whole = upper + upper.T
        whole.flat[:: a.shape[0] + 1] = diagonal
        return np.linalg.lstsq(whole, b, rcond=None)[0]
