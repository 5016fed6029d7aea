"""Coordinate descent on an L1/elastic-net penalised quadratic: the inner problem of proximal Newton.

min_u  gᵀ(u − u0) + ½ (u − u0)ᵀ H (u − u0) + Σ_j pen_j (λ1 |u_j| + ½ λ2 u_j²)

over a working set small enough that H (q × q) is in memory; pen_j = 0 leaves a coordinate (the
intercept) unpenalised. Cyclic sweeps keep r = H (u − u0) up to date; they stop when no coordinate
moves by more than `tol` times the largest value, or after `max_sweeps`.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cd_quadratic(H, g, u0, pen, l1, l2, max_sweeps, tol):
    """Return the minimiser u (a new array) and the number of sweeps used."""
    q = u0.size
    u = u0.copy()
    r = np.zeros(q)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        biggest_step = 0.0
        biggest_value = 0.0
        for j in range(q):
            a = H[j, j]
            if a <= 0.0:
                continue
            c = g[j] + r[j]
            z = a * u[j] - c
            t = l1 * pen[j]
            if z > t:
                new = (z - t) / (a + l2 * pen[j])
            elif z < -t:
                new = (z + t) / (a + l2 * pen[j])
            else:
                new = 0.0
            step = new - u[j]
            if step != 0.0:
                for i in range(q):
                    r[i] += H[i, j] * step
                u[j] = new
            biggest_step = max(biggest_step, abs(step))
            biggest_value = max(biggest_value, abs(new))
        if biggest_step <= tol * max(biggest_value, 1e-12):
            break
    return u, sweeps
