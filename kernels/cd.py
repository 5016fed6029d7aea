"""Block coordinate descent on a (group-)L1 / elastic-net penalised quadratic: the inner problem of
proximal Newton.

min_u  gᵀ(u − u0) + ½ (u − u0)ᵀ H (u − u0) + Σ_b pen_b (λ1 ‖u_b‖₂ + ½ λ2 ‖u_b‖²)

over a working set small enough that H is in memory. Coordinates come in blocks of `size`
consecutive entries (size 1: plain L1 coordinate descent, exact per coordinate; size K: one
neuron's K class weights under the group penalty, a majorised step with the block's largest
Hessian eigenvalue `lips[b]`). pen_b = 0 leaves a block (the intercepts) unpenalised. Cyclic
sweeps keep r = H (u − u0) up to date; they stop when no coordinate moves by more than `tol` times
the largest value, or after `max_sweeps`.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cd_quadratic(H, g, u0, size, lips, pen, l1, l2, max_sweeps, tol):
    """Return the minimiser u (a new array) and the number of sweeps used."""
    u = u0.copy()
    r = np.zeros(u0.size)
    step = np.empty(size)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        biggest_step = 0.0
        biggest_value = 0.0
        for b in range(lips.size):
            a = lips[b]
            if a <= 0.0:
                continue
            o = b * size
            norm2 = 0.0
            for k in range(size):
                step[k] = u[o + k] - (g[o + k] + r[o + k]) / a
                norm2 += step[k] * step[k]
            factor = 1.0
            if pen[b] != 0.0:
                norm = np.sqrt(norm2)
                t = l1 * pen[b] / a
                factor = (1.0 - t / norm if norm > t else 0.0) / (1.0 + l2 * pen[b] / a)
            for k in range(size):
                new = step[k] * factor
                step[k] = new - u[o + k]
                u[o + k] = new
                biggest_value = max(biggest_value, abs(new))
            for k in range(size):
                if step[k] != 0.0:
                    column = o + k
                    for i in range(u.size):
                        r[i] += H[i, column] * step[k]
                    biggest_step = max(biggest_step, abs(step[k]))
        if biggest_step <= tol * max(biggest_value, 1e-12):
            break
    return u, sweeps
