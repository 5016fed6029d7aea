"""Per-neuron, per-class histograms of order-preserving value keys, for exact tie-aware AUROC.

A 16-bit store has at most 65,536 distinct values, so a histogram over each value's rank (from a
table, -0 = +0) is exact; `shift` > 0 merges 2**shift adjacent values per bin (coarser, smaller).
float32 stores use the top bits of an order-preserving transform of the float's bits.
Keys of NaN/Inf are -1 and are skipped (the moments kernel counts them).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from neurosel.kernels.common import value_key

TILE = 16  # neurons per CPU task: a 16 × rows int32 key buffer


@numba.njit(parallel=True, nogil=True, cache=True)
def histogram_cpu(x, table, shift, cls, hist):
    """CPU: add the block's keys to hist (2, F, bins), per class."""
    rows, features = x.shape
    for t in numba.prange((features + TILE - 1) // TILE):
        f0 = t * TILE
        f1 = min(features, f0 + TILE)
        # keys of the tile, transposed: each neuron's bins are then updated in one sweep, so its
        # two histogram rows stay in cache instead of every row touching TILE far-apart rows
        keys = np.empty((f1 - f0, rows), dtype=np.int32)
        for r in range(rows):
            for f in range(f0, f1):
                keys[f - f0, r] = value_key(x[r, f], table, shift)
        for f in range(f0, f1):
            for r in range(rows):
                b = keys[f - f0, r]
                if b >= 0:
                    hist[cls[r], f, b] += 1


@cuda.jit
def histogram_gpu(x, table, shift, cls, rows_per_group, hist):
    """GPU: one thread per (neuron, row group), atomic adds into hist (2, F, bins)."""
    f = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    rows, features = x.shape
    if f >= features:
        return
    r0 = cuda.blockIdx.y * rows_per_group
    for r in range(r0, min(rows, r0 + rows_per_group)):
        b = value_key(x[r, f], table, shift)
        if b >= 0:
            cuda.atomic.add(hist, (cls[r], f, b), 1)


@numba.njit(parallel=True, nogil=True, cache=True)
def mann_whitney(hist, auc, ties):
    """Per neuron from its two histograms: AUROC of class 1 over class 0 (ties count ½) and the
    share of (class 1, class 0) pairs that fall in one bin."""
    features, bins = hist.shape[1], hist.shape[2]
    for f in numba.prange(features):
        below = 0.0  # class-0 values in lower bins
        u = 0.0
        same = 0.0
        n0 = 0.0
        n1 = 0.0
        for b in range(bins):
            h0 = np.float64(hist[0, f, b])
            h1 = np.float64(hist[1, f, b])
            u += h1 * below + 0.5 * h1 * h0
            same += h1 * h0
            below += h0
            n0 += h0
            n1 += h1
        pairs = n0 * n1
        auc[f] = u / pairs if pairs > 0 else np.nan
        ties[f] = same / pairs if pairs > 0 else np.nan
