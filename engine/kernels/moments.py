"""Per-neuron moments of one block of rows, per class: count, mean, centred M2, min, max, non-finite.

Inputs: `x` (rows, features) as 16-bit patterns decoded through a table, or float32; `cls` (rows,)
int32 class ids in [0, K). Outputs (K, F) count/mean/m2 and (F,) min/max/non-finite for the block;
blocks are then combined with Chan's formula (neurosel.kernels.common.chan_merge).

One read per value: sums of (x − shift) and (x − shift)² in float64, where the shift is the first
finite value of the neuron in the block (or row group), so a large common offset cancels before
squaring (neurosel.kernels.common.shifted_moments).

CPU: numba parallel over tiles of features (each tile's part of a row is contiguous bytes).
GPU: numba.cuda, one thread per (feature, row group), then a merge of row groups on the device.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from neurosel.kernels.common import chan_merge, decode, shifted_moments

TILE = 128  # features per CPU task: 128 × 2 bytes = four cache lines per row
MAX_CLASSES_GPU = 16  # per-thread accumulators live in registers/local memory on the GPU
GPU_THREADS = 128
GPU_ROWS_PER_GROUP = 256


@numba.njit(parallel=True, nogil=True, cache=True)
def moments_cpu(x, table, cls, count, mean, m2, lo, hi, bad):
    """CPU: fill (K, F) count/mean/m2 and (F,) lo/hi/bad for the block x (rows, F)."""
    rows, features = x.shape
    classes = count.shape[0]
    for t in numba.prange((features + TILE - 1) // TILE):
        f0 = t * TILE
        width = min(features, f0 + TILE) - f0
        shift = np.zeros(width)
        for j in range(width):  # the first finite value of each neuron
            for r in range(rows):
                v = decode(x[r, f0 + j], table)
                if math.isfinite(v):
                    shift[j] = v
                    break
        # tile-local accumulators and a branch-free inner loop, which LLVM vectorises
        n = np.zeros((classes, width))
        s1 = np.zeros((classes, width))
        s2 = np.zeros((classes, width))
        low = np.full(width, np.inf)
        high = np.full(width, -np.inf)
        nonfinite = np.zeros(width)
        for r in range(rows):
            k = cls[r]
            for j in range(width):
                v = decode(x[r, f0 + j], table)
                ok = math.isfinite(v)
                d = v - shift[j] if ok else 0.0
                n[k, j] += 1.0 if ok else 0.0
                s1[k, j] += d
                s2[k, j] += d * d
                low[j] = min(low[j], v if ok else np.inf)
                high[j] = max(high[j], v if ok else -np.inf)
                nonfinite[j] += 0.0 if ok else 1.0
        for j in range(width):
            lo[f0 + j] = low[j]
            hi[f0 + j] = high[j]
            bad[f0 + j] = nonfinite[j]
            for k in range(classes):
                count[k, f0 + j] = n[k, j]
                mean[k, f0 + j], m2[k, f0 + j] = shifted_moments(n[k, j], s1[k, j], s2[k, j], shift[j])


@cuda.jit
def partial_moments_gpu(x, table, cls, classes, rows_per_group, count, mean, m2, lo, hi, bad):
    """GPU: partials (G, K, F) and (G, F) for row group g = blockIdx.y of the block x (rows, F)."""
    f = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    g = cuda.blockIdx.y
    rows, features = x.shape
    if f >= features:
        return
    r0 = g * rows_per_group
    r1 = min(rows, r0 + rows_per_group)
    n = cuda.local.array(MAX_CLASSES_GPU, numba.float64)
    s = cuda.local.array(MAX_CLASSES_GPU, numba.float64)
    q = cuda.local.array(MAX_CLASSES_GPU, numba.float64)
    for k in range(classes):
        n[k] = 0.0
        s[k] = 0.0
        q[k] = 0.0
    shift = math.nan
    low = math.inf
    high = -math.inf
    nonfinite = 0
    for r in range(r0, r1):
        v = decode(x[r, f], table)
        if math.isfinite(v):
            if math.isnan(shift):
                shift = v
            d = v - shift
            k = cls[r]
            n[k] += 1.0
            s[k] += d
            q[k] += d * d
            low = min(low, v)
            high = max(high, v)
        else:
            nonfinite += 1
    for k in range(classes):
        mu, m = shifted_moments(n[k], s[k], q[k], shift)
        count[g, k, f] = n[k]
        mean[g, k, f] = mu
        m2[g, k, f] = m
    lo[g, f] = low
    hi[g, f] = high
    bad[g, f] = nonfinite


@cuda.jit
def merge_groups(groups, count, mean, m2, lo, hi, bad, acc_count, acc_mean, acc_m2, acc_lo, acc_hi, acc_bad):
    """Fold `groups` row-group partials (G, K, F) into running totals (K, F) with Chan's formula."""
    f = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    classes = acc_count.shape[0]
    if f >= acc_count.shape[1]:
        return
    for g in range(groups):
        for k in range(classes):
            n, mu, q = chan_merge(
                acc_count[k, f], acc_mean[k, f], acc_m2[k, f], count[g, k, f], mean[g, k, f], m2[g, k, f]
            )
            acc_count[k, f] = n
            acc_mean[k, f] = mu
            acc_m2[k, f] = q
        acc_lo[f] = min(acc_lo[f], lo[g, f])
        acc_hi[f] = max(acc_hi[f], hi[g, f])
        acc_bad[f] += bad[g, f]


def gpu_launch(features: int, groups: int) -> tuple[tuple[int, int], int]:
    """Grid and block shape for the partial-moments kernel."""
    return ((features + GPU_THREADS - 1) // GPU_THREADS, groups), GPU_THREADS
