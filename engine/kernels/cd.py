"""Coordinate descent kernels for the inner problem of proximal Newton, an (group-)L1 / elastic-net
penalised quadratic over a working set small enough that H is in memory:

min_u  gᵀ(u − u0) + ½ (u − u0)ᵀ H (u − u0) + Σ_b pen_b (λ1 ‖u_b‖₂ + ½ λ2 ‖u_b‖²)

`cd_quadratic`: plain L1 coordinate descent (blocks of one coordinate, soft-thresholding), cyclic
sweeps keeping r = H (u − u0) up to date (H symmetric: a column is read as its row, contiguously),
stopping when no coordinate moves by more than `tol`
times the largest value, or after `max_sweeps`. `block_step`: the exact minimiser of one group
block (one neuron's K class weights) in the eigenbasis of its Hessian (`block_eigen`), used by
`group_sweeps`, cyclic sweeps of those block steps (engine/solver/_newton_group.py), which start
each block's root search at its current norm and record each sweep's gradient for the
extrapolation.
`block_violation`: the largest block of the model's gradient mapping, the inner solves' stopping
rule. pen_b = 0 leaves a block (the intercepts) unpenalised. `gather_square`: H's block on a set of
coordinates, for the sign-fixed linear solves.
"""

from __future__ import annotations

import numba
import numpy as np

ROOT_STEPS = 50  # Newton steps for a block's norm (converges in a handful)


def block_eigen(H: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (blocks, size) and eigenvectors (blocks, size, size) of H's diagonal blocks."""
    blocks = H.shape[0] // size
    diag = H.reshape(blocks, size, blocks, size)[np.arange(blocks), :, np.arange(blocks), :]
    values, vectors = np.linalg.eigh(diag)
    return np.maximum(values, 0.0), vectors


@numba.njit(cache=True, nogil=True)
def block_step(z, values, vectors, t, l2, out):
    """argmin_v ½ vᵀ(A + l2 I)v − zᵀv + t‖v‖ for A = Q diag(values) Qᵀ, written into `out`: zero when
    ‖z‖ ≤ t, else v = (A + (l2 + t/r) I)⁻¹ z with r = ‖v‖ the root of Σ_i ẑ_i² / (r (Λ_i + l2) + t)²
    = 1 (ẑ = Qᵀz), found by Newton's method from r = 0 (`_block_step`)."""
    _block_step(z, values, vectors, t, l2, out, np.empty(z.size), 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _block_step(z, values, vectors, t, l2, out, zh, guess):
    """`block_step` with a scratch vector `zh` and a first guess of the root (the block's current
    norm, in the sweeps): ψ(r) = Σ_i ẑ_i² / (r (Λ_i + l2) + t)² − 1 is convex and decreasing, so
    Newton's iterates from any r ≤ root rise monotonically to it, and one step from a guess past the
    root lands at or below it (clipped at 0, the start without a guess): the same root either way,
    in fewer steps when the block barely moves."""
    size = z.size
    for i in range(size):
        acc = 0.0
        for k in range(size):
            acc += vectors[k, i] * z[k]
        zh[i] = acc
    if t > 0.0 and np.sum(zh * zh) <= t * t:  # the rotated ẑ: the root below is then positive
        out[:] = 0.0
        return
    if t == 0.0:  # unpenalised: the minimum-norm minimiser
        top = max(values.max(), 1e-300)
        for i in range(size):
            zh[i] = zh[i] / (values[i] + l2) if values[i] + l2 > 1e-12 * top else 0.0
    else:
        r = guess
        for _ in range(ROOT_STEPS):
            psi, slope = -1.0, 0.0
            for i in range(size):
                d = r * (values[i] + l2) + t
                psi += zh[i] * zh[i] / (d * d)
                slope -= 2.0 * zh[i] * zh[i] * (values[i] + l2) / (d * d * d)
            if slope >= 0.0:  # no curvature along z: cannot happen for a bounded problem
                break
            change = psi / slope
            if r - change < 0.0:  # from past the root, overshot below 0: start again from 0
                change = r
            r -= change
            if abs(change) <= 1e-14 * max(r, 1e-300):
                break
        if not r > 0.0:  # ‖ẑ‖ = t up to rounding: the minimiser is zero
            out[:] = 0.0
            return
        for i in range(size):
            zh[i] = zh[i] / (values[i] + l2 + t / r)
    for k in range(size):
        acc = 0.0
        for i in range(size):
            acc += vectors[k, i] * zh[i]
        out[k] = acc


@numba.njit(cache=True, nogil=True)
def cd_quadratic(H, g, u0, pen, l1, l2, max_sweeps, tol):
    """Return the minimiser u (a new array) and the number of sweeps used (one coordinate per block)."""
    u = u0.copy()
    r = np.zeros(u0.size)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        biggest_step = 0.0
        biggest_value = 0.0
        for o in range(pen.size):
            t, ridge = l1 * pen[o], l2 * pen[o]
            a = H[o, o]
            if a + ridge <= 0.0:
                continue
            zz = a * u[o] - (g[o] + r[o])
            new = np.sign(zz) * max(abs(zz) - t, 0.0) / (a + ridge)
            step = new - u[o]
            if step != 0.0:
                row = H[o]  # H is symmetric: its row is its column, read contiguously
                for i in range(u.size):
                    r[i] += row[i] * step
                u[o] = new
                biggest_step = max(biggest_step, abs(step))
            biggest_value = max(biggest_value, abs(new))
        if biggest_step <= tol * max(biggest_value, 1e-12):
            break
    return u, sweeps


@numba.njit(cache=True, nogil=True)
def block_violation(gm, u, size, values, pen, l1, l2):
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
def group_sweeps(h, gm, u, size, values, vectors, pen, l1, l2, tol, history, gradients):
    """Up to len(history) − 1 cyclic sweeps of exact block steps on u (in place), keeping the model's
    gradient gm = g + H (u − u0) up to date (rows of the symmetric H: contiguous, one row per moved
    coordinate: a contiguous loop); the iterate after sweep i goes to history[i], its
    gradient to gradients[i] (gm is affine in u: an extrapolation's gradient is the same combination
    of them, no product with H). Stops early once the violation is ≤ tol; returns (sweeps, violation)."""
    z = np.empty(size)
    new = np.empty(size)
    zh = np.empty(size)
    violation = np.inf
    last = history.shape[0] - 1
    n = gm.size
    for sweep in range(1, last + 1):
        for b in range(pen.size):
            o = b * size
            t, ridge = l1 * pen[b], l2 * pen[b]
            norm = 0.0
            for k in range(size):
                acc = -gm[o + k]
                for m in range(size):
                    acc += h[o + k, o + m] * u[o + m]
                z[k] = acc
                norm += u[o + k] * u[o + k]
            _block_step(z, values[b], vectors[b], t, ridge, new, zh, np.sqrt(norm))
            for k in range(size):
                step = new[k] - u[o + k]
                if step == 0.0:
                    continue
                u[o + k] = new[k]
                row = h[o + k]
                for i in range(n):
                    gm[i] += row[i] * step
        history[sweep] = u
        gradients[sweep] = gm
        violation = block_violation(gm, u, size, values, pen, l1, l2)
        if violation <= tol:
            for rest in range(sweep + 1, last + 1):
                history[rest] = u
                gradients[rest] = gm
            return sweep, violation
    return last, violation


@numba.njit(cache=True, nogil=True)
def gather_square(h, idx):
    """H[idx][:, idx] as a new C-ordered array, in one pass over the rows it reads (numpy's
    h[np.ix_(idx, idx)] was 2.5× slower at 3,500 of 3,600 rows: the sign-fixed solves' gathers)."""
    n = idx.size
    out = np.empty((n, n), dtype=h.dtype)
    for i in range(n):
        row = h[idx[i]]
        for j in range(n):
            out[i, j] = row[idx[j]]
    return out
