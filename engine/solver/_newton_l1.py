"""Proximal Newton steps on a working set for penalties on single coefficients (L1, and group L1
with one output): each step forms the working set's Hessian (one pass), solves the penalised
quadratic model in memory by coordinate descent (engine/kernels/cd.py) finished by one sign-fixed
linear solve, and takes an Armijo step (one pass for Z_W Δ).
"""

from __future__ import annotations

from typing import Any

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
    neurons, and stop at once when it was right. The solves of one model share one factorisation
    (`ActiveSolver`): each sign crossing changes the active set by a neuron or a few."""
    u, used = u0, 0
    solver = ActiveSolver(h, l2 * (pen > 0))
    while used < MAX_SWEEPS:
        shifted = grad + h @ (u - u0)  # the same quadratic, expanded around u
        u, sweeps = cd_quadratic(h, shifted, u, pen, l1, l2, ACTIVE_SWEEPS, CD_TOL)
        used += sweeps
        if sweeps < ACTIVE_SWEEPS or block_violation(grad + h @ (u - u0), u, 1, diag, pen, l1, l2) <= tol:
            return u
        u = _sign_fixed_solve(solver, grad, u0, u, pen, l1)
    return u


def _sign_fixed_solve(
    solver: ActiveSolver, grad: np.ndarray, u0: np.ndarray, u: np.ndarray, pen: np.ndarray, l1: float
) -> np.ndarray:
    """L1: the exact minimiser on the active set with its signs fixed (one linear solve). If it would
    flip a sign it stops at the first crossing, which still lowers the objective."""
    penalised = pen > 0
    active = np.flatnonzero((u != 0) | ~penalised)
    sign = np.where(penalised[active], np.sign(u[active]), 0.0)
    target = np.zeros_like(u)
    # a product with H beats gathering its active rows
    rhs = (solver.h @ u0)[active] - grad[active] - l1 * sign
    target[active] = solver.solve(active, rhs)
    flips = penalised & (u != 0) & (np.sign(target) != np.sign(u))
    if not np.any(flips):
        return target
    ratio = u[flips] / (u[flips] - target[flips])
    t = float(ratio.min())
    u = u + t * (target - u)
    u[np.flatnonzero(flips)[ratio <= t]] = 0.0
    return u


class ActiveSolver:
    """Solves (H + diag(ridge))_AA x = b for the active sets A of one quadratic model, factorising
    once for many sets.

    The sign-fixed solves of one Newton step see active sets that differ by a neuron or a few (a
    sign crossing removes one, the sweeps add or remove some): on 4,000 × 4,992 synthetic neurons,
    up to 44 solves in one step, consecutive sets differing by 1 neuron (median), each a Cholesky
    factorisation of up to 1,800 neurons (a third of the path's time). Here the first set B of a
    model is factorised; a later set A = (B − R) ∪ N is solved from that factor by block
    elimination: the neurons R left out are held at zero by Lagrange multipliers (x = H_BB⁻¹(b +
    E_R μ), μ such that x_R = 0: the solution on B − R), and the new neurons N are eliminated by
    their Schur complement. Each costs two triangular solves per neuron of R and N (O(|B|²), kept
    per neuron for the model) against |B|³/3 for a new factorisation, taken instead once R and N
    together pass `REFACTOR_SHARE` of B. Small sets are factorised every time (no bookkeeping)."""

    REFACTOR_SHARE = 0.1  # a new factorisation past this share of B changed (solves ≈ |B|/6 of one)
    SMALL = 256  # sets below this size are factorised directly

    def __init__(self, h: np.ndarray, ridge: np.ndarray) -> None:
        self.h, self.ridge = h, ridge
        self.base: np.ndarray | None = None  # B, sorted
        self.factor: Any = None
        self.where = np.full(h.shape[0], -1)  # a neuron's position in B, -1 outside
        self.unit: dict[int, np.ndarray] = {}  # H_BB⁻¹ e_r by neuron r of B
        self.column: dict[int, np.ndarray] = {}  # H_BB⁻¹ H_Bn by neuron n outside B

    def solve(self, active: np.ndarray, b: np.ndarray) -> np.ndarray:
        """x on `active` (sorted ids) solving (H + diag(ridge))_AA x = b."""
        if active.size < self.SMALL:
            return _solve_spd(self._system(active), b)
        if self.base is not None:
            inside = self.where[active] >= 0
            left_out = self.base[~np.isin(self.base, active, assume_unique=True)]
            if left_out.size + np.count_nonzero(~inside) <= self.REFACTOR_SHARE * self.base.size:
                x = self._eliminate(active, inside, left_out, b)
                if x is not None:
                    return x
        return self._refactor(active, b)

    def _system(self, ids: np.ndarray) -> np.ndarray:
        system = gather_square(self.h, ids)
        system.flat[:: ids.size + 1] += self.ridge[ids]
        return system

    def _refactor(self, active: np.ndarray, b: np.ndarray) -> np.ndarray:
        """A new factorisation with B = `active`, and the solve on it."""
        self.where[self.base if self.base is not None else []] = -1
        self.base, self.unit, self.column, self.factor = None, {}, {}, None
        system = self._system(active)
        # a large factorisation pays for every core the user allows; the many small ones do not (a
        # second thread only waits, and spins on after each call, slowing the sweeps that follow)
        with blas_threads_for(active.size**3 / 3):
            try:
                self.factor = cho_factor(system.T, overwrite_a=True, check_finite=False)
            except np.linalg.LinAlgError:  # singular: least squares, and nothing kept
                return _solve_spd(self._system(active), b)
        self.base = active.copy()
        self.where[active] = np.arange(active.size)
        return cho_solve(self.factor, b, check_finite=False)

    def _solved(self, cache: dict[int, np.ndarray], ids: np.ndarray, columns: Any) -> np.ndarray:
        """(|B|, len(ids)) columns H_BB⁻¹ c for ids, from `cache` or solved now (`columns(new ids)`)."""
        new = [int(i) for i in ids if int(i) not in cache]
        if new:
            solved = cho_solve(self.factor, columns(np.asarray(new)), check_finite=False)
            for j, i in enumerate(new):
                cache[i] = solved[:, j]
        return np.stack([cache[int(i)] for i in ids], axis=1) if ids.size else np.empty((self.base.size, 0))

    def _eliminate(
        self, active: np.ndarray, inside: np.ndarray, left_out: np.ndarray, b: np.ndarray
    ) -> np.ndarray | None:
        """x on A = (B − R) ∪ N from B's factor (class docstring); None when a small system fails."""
        base, where = self.base, self.where
        added = active[~inside]
        size = base.size

        def unit_columns(ids: np.ndarray) -> np.ndarray:
            e = np.zeros((size, ids.size))
            e[where[ids], np.arange(ids.size)] = 1.0
            return e

        w = self._solved(self.unit, left_out, unit_columns)  # (|B|, |R|)
        rows = where[left_out]
        try:
            m = w[rows]  # E_Rᵀ H_BB⁻¹ E_R, positive definite
            hold = (lambda x: x - w @ np.linalg.solve(m, x[rows])) if left_out.size else (lambda x: x)
            rhs = np.zeros(size)
            rhs[where[active[inside]]] = b[inside]
            z = hold(cho_solve(self.factor, rhs, check_finite=False))  # H_SS⁻¹ b_S, zero on R
            x = np.empty(active.size)
            if added.size:
                coupling = self.h[added][:, base].T  # H_BN (H is symmetric: rows of H, contiguous)
                y = hold(self._solved(self.column, added, lambda ids: self.h[ids][:, base].T))
                schur = self._system(added) - coupling.T @ y
                x_new = np.linalg.solve(schur, b[~inside] - coupling.T @ z)
                z = z - y @ x_new
                x[~inside] = x_new
        except np.linalg.LinAlgError:
            return None
        x[inside] = z[where[active[inside]]]
        return x if np.all(np.isfinite(x)) else None


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
