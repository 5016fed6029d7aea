"""Block coordinate descent on a (group-)L1 / elastic-net penalised quadratic: the inner problem of
proximal Newton.

min_u  gᵀ(u − u0) + ½ (u − u0)ᵀ H (u − u0) + Σ_b pen_b (λ1 ‖u_b‖₂ + ½ λ2 ‖u_b‖²)

over a working set small enough that H is in memory. Coordinates come in blocks of `size`
consecutive entries (size 1: plain L1 coordinate descent; size K: one neuron's K class weights
under the group penalty). Each block is minimised exactly with the others fixed: for size 1 by
soft-thresholding; for size K in the eigenbasis (Q, Λ) of the block's Hessian A, where the
minimiser is v = (A + (λ2 + λ1/r) I)⁻¹ z with r = ‖v‖ the root of
Σ_i ẑ_i² / (r (Λ_i + λ2) + λ1)² = 1, found by Newton's method (the left side is convex and
decreasing in r, so the iterates rise monotonically to the root). An exact block step matters for
the multinomial: its blocks have a direction without curvature (shifting all K weights), which
makes a majorised step crawl. pen_b = 0 leaves a block (the intercepts) unpenalised. Cyclic sweeps
keep r = H (u − u0) up to date; they stop when no coordinate moves by more than `tol` times the
largest value, or after `max_sweeps`.
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
def _block_minimiser(z, values, vectors, t, l2, out):
    """argmin_v ½ vᵀ(A + l2 I)v − zᵀv + t‖v‖ for A = Q diag(values) Qᵀ, written into `out`."""
    size = z.size
    zh = np.zeros(size)
    for i in range(size):
        for k in range(size):
            zh[i] += vectors[k, i] * z[k]
    if t > 0.0 and np.sqrt(np.sum(z * z)) <= t:
        out[:] = 0.0
        return
    if t == 0.0:  # unpenalised: the minimum-norm minimiser
        for i in range(size):
            zh[i] = zh[i] / (values[i] + l2) if values[i] + l2 > 1e-12 * max(values.max(), 1e-300) else 0.0
        _rotate_back(vectors, zh, out)
        return
    r = 0.0
    for _ in range(ROOT_STEPS):
        psi, slope = -1.0, 0.0
        for i in range(size):
            d = r * (values[i] + l2) + t
            psi += zh[i] * zh[i] / (d * d)
            slope -= 2.0 * zh[i] * zh[i] * (values[i] + l2) / (d * d * d)
        if slope >= 0.0:  # no curvature at all along z: cannot happen for a bounded problem
            break
        step = psi / slope
        r -= step
        if abs(step) <= 1e-14 * max(r, 1e-300):
            break
    for i in range(size):
        zh[i] = zh[i] / (values[i] + l2 + t / r)
    _rotate_back(vectors, zh, out)


@numba.njit(cache=True, nogil=True)
def _rotate_back(vectors, zh, out):
    """out = Q zh."""
    for k in range(zh.size):
        acc = 0.0
        for i in range(zh.size):
            acc += vectors[k, i] * zh[i]
        out[k] = acc


@numba.njit(cache=True, nogil=True)
def cd_quadratic(H, g, u0, size, values, vectors, pen, l1, l2, max_sweeps, tol):
    """Return the minimiser u (a new array) and the number of sweeps used."""
    u = u0.copy()
    r = np.zeros(u0.size)
    z = np.empty(size)
    new = np.empty(size)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        biggest_step = 0.0
        biggest_value = 0.0
        for b in range(pen.size):
            o = b * size
            t, ridge = l1 * pen[b], l2 * pen[b]
            if size == 1:
                a = H[o, o]
                if a + ridge <= 0.0:
                    continue
                zz = a * u[o] - (g[o] + r[o])
                new[0] = np.sign(zz) * max(abs(zz) - t, 0.0) / (a + ridge)
            else:
                for k in range(size):
                    acc = -(g[o + k] + r[o + k])
                    for m in range(size):
                        acc += H[o + k, o + m] * u[o + m]
                    z[k] = acc
                _block_minimiser(z, values[b], vectors[b], t, ridge, new)
            for k in range(size):
                step = new[k] - u[o + k]
                if step != 0.0:
                    for i in range(u.size):
                        r[i] += H[i, o + k] * step
                    u[o + k] = new[k]
                    biggest_step = max(biggest_step, abs(step))
                biggest_value = max(biggest_value, abs(new[k]))
        if biggest_step <= tol * max(biggest_value, 1e-12):
            break
    return u, sweeps
