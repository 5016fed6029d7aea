"""Per-neuron co-moments with a numeric label over one block: n, means, M2 of x and y, and C_xy.

Rows where a neuron's value is not finite are left out for that neuron. Blocks combine with the
bivariate Chan update (neurosel.kernels.common.chan_comerge); Pearson r = C_xy / sqrt(M2_x · M2_y).
Two passes within a block (means, then centred products) in float64, as in neurosel.kernels.moments.
"""

from __future__ import annotations

import math

import numba
from numba import cuda

from neurosel.kernels.common import decode

TILE = 128


@numba.njit(parallel=True, nogil=True, cache=True)
def comoments_cpu(x, table, y, n, mx, my, qx, qy, cxy):
    """CPU: per-neuron co-moments with y over the block x (rows, F)."""
    rows, features = x.shape
    for t in numba.prange((features + TILE - 1) // TILE):
        f0 = t * TILE
        f1 = min(features, f0 + TILE)
        for f in range(f0, f1):
            n[f] = 0.0
            mx[f] = 0.0
            my[f] = 0.0
            qx[f] = 0.0
            qy[f] = 0.0
            cxy[f] = 0.0
        for r in range(rows):
            for f in range(f0, f1):
                v = decode(x[r, f], table)
                if math.isfinite(v):
                    n[f] += 1.0
                    mx[f] += v
                    my[f] += y[r]
        for f in range(f0, f1):
            if n[f] > 0:
                mx[f] /= n[f]
                my[f] /= n[f]
        for r in range(rows):
            for f in range(f0, f1):
                v = decode(x[r, f], table)
                if math.isfinite(v):
                    dx = v - mx[f]
                    dy = y[r] - my[f]
                    qx[f] += dx * dx
                    qy[f] += dy * dy
                    cxy[f] += dx * dy


@cuda.jit
def comoments_gpu(x, table, y, n, mx, my, qx, qy, cxy):
    """GPU: one thread per neuron over the block's rows."""
    f = cuda.grid(1)
    rows, features = x.shape
    if f >= features:
        return
    count = 0.0
    sx = 0.0
    sy = 0.0
    for r in range(rows):
        v = decode(x[r, f], table)
        if math.isfinite(v):
            count += 1.0
            sx += v
            sy += y[r]
    if count > 0:
        sx /= count
        sy /= count
    a = 0.0
    b = 0.0
    c = 0.0
    for r in range(rows):
        v = decode(x[r, f], table)
        if math.isfinite(v):
            dx = v - sx
            dy = y[r] - sy
            a += dx * dx
            b += dy * dy
            c += dx * dy
    n[f] = count
    mx[f] = sx
    my[f] = sy
    qx[f] = a
    qy[f] = b
    cxy[f] = c
