"""Per-neuron moments of one block of rows, per class: count, mean, centred M2, min, max, non-finite.

Inputs: `x` (rows, features) as 16-bit patterns (float16 or bfloat16, `half` says which) or float32;
`cls` (rows,) int32 class ids in [0, K). Outputs (K, F) count/mean/m2 and (F,) min/max/non-finite:
on the CPU the block is folded into running totals, on a GPU into per-row-group partials that are
then merged on the device, both with Chan's formula (neurosel.kernels.common.chan_merge).

One read per value: sums of (x − shift) and (x − shift)², where the shift is, per class and neuron,
the mean of its first SHIFT_ROWS finite values in the block, so a large common offset cancels before
squaring (neurosel.kernels.common.shifted_moments).

CPU: numba parallel over tiles of features. The rows of a block are taken class by class, four at a
time, in groups of GROUP rows; a group's sums are kept in the accumulator dtype (float32 for 16-bit
stores, whose values have 11 or 8 significant bits; float64 for float32 stores) and added to float64
totals after each group. A group whose sums are not finite held a NaN/Inf (or squares beyond
float32) and is summed again value by value in float64, masked. Measured on 16-bit stores: M2 within
2e-7 and the mean within 1e-7 standard deviations of float64 numpy (tests/kernels/test_moments.py
holds it to 1e-6); the loops vectorise (docs/benchmarks.md, the statistics floor).
GPU: numba.cuda, one thread per (feature, row group), float64, then a merge of row groups on the device.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from neurosel.kernels.common import chan_merge, decode, fmax32, fmin32, shifted_moments, widen

MAX_TILE = 4096  # features per CPU task at most: its accumulators (16-24 bytes each) stay in L2
GROUP = 64  # rows summed in the accumulator dtype before the float64 totals take them
SHIFT_ROWS = 8  # finite values whose mean is a class's shift
MAX_CLASSES_GPU = 16  # per-thread accumulators live in registers/local memory on the GPU
GPU_THREADS = 128
GPU_ROWS_PER_GROUP = 256


@numba.njit(parallel=True, nogil=True, cache=True)
def moments_cpu(x, half, cls, acc, tile, count, mean, m2, lo, hi, bad):
    """CPU: fold the block x (rows, F) into running totals (K, F) count/mean/m2 and (F,) lo/hi/bad.

    The totals start as a partial of no rows (zeros, lo +inf, hi -inf: `Moments.empty`); the
    block's moments join them by Chan's formula (`chan_merge`), here rather than in a host merge
    per block (six allocations and a dozen array operations a block, ~5% of a pass). `acc` is an
    empty array of the accumulator dtype (float32 for 16-bit stores, float64 for float32); `tile`
    is the features per task (`cpu_tile`); lo/hi stay ±inf where a neuron has no finite value."""
    features = x.shape[1]
    classes = count.shape[0]
    order, starts = _rows_by_class(cls, classes)
    for t in numba.prange(-(-features // tile)):
        f0 = t * tile
        width = min(features, f0 + tile) - f0
        shift = np.zeros((classes, width), acc.dtype)
        for k in range(classes):
            for j in range(width):
                shift[k, j] = _first_mean(x, half, order, starts[k], starts[k + 1], f0 + j)
        s1 = np.zeros((classes, width))
        s2 = np.zeros((classes, width))
        n = np.zeros((classes, width))
        # a group's sums and extremes in two arrays, updated in one loop that widens each value
        # once: 13-15% less CPU than a loop for the sums and another for min/max (measured)
        sums = np.empty((2, width), acc.dtype)  # Σd, Σd²
        ext = np.empty((2, width), np.float32)  # min, max
        low = np.full(width, np.inf)
        high = np.full(width, -np.inf)
        nonfinite = np.zeros(width)
        for k in range(classes):
            sk = shift[k]
            for g0 in range(starts[k], starts[k + 1], GROUP):
                g1 = min(starts[k + 1], g0 + GROUP)
                sums[:] = 0
                ext[0] = np.inf
                ext[1] = -np.inf
                i = g0
                while i + 4 <= g1:  # four rows per sweep: a quarter of the accumulator traffic
                    x0 = x[order[i], f0 : f0 + width]
                    x1 = x[order[i + 1], f0 : f0 + width]
                    x2 = x[order[i + 2], f0 : f0 + width]
                    x3 = x[order[i + 3], f0 : f0 + width]
                    for j in range(width):  # one loop: each value widened once
                        v0, v1 = widen(x0[j], half), widen(x1[j], half)
                        v2, v3 = widen(x2[j], half), widen(x3[j], half)
                        d0, d1, d2, d3 = v0 - sk[j], v1 - sk[j], v2 - sk[j], v3 - sk[j]
                        sums[0, j] += (d0 + d1) + (d2 + d3)
                        sums[1, j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
                        ext[0, j] = fmin32(ext[0, j], fmin32(fmin32(v0, v1), fmin32(v2, v3)))
                        ext[1, j] = fmax32(ext[1, j], fmax32(fmax32(v0, v1), fmax32(v2, v3)))
                    i += 4
                for r in order[i:g1]:
                    xr = x[r, f0 : f0 + width]
                    for j in range(width):
                        v = widen(xr[j], half)
                        d = v - sk[j]
                        sums[0, j] += d
                        sums[1, j] += d * d
                        ext[0, j] = fmin32(ext[0, j], v)
                        ext[1, j] = fmax32(ext[1, j], v)
                clean = True
                for j in range(width):
                    clean &= np.isfinite(sums[0, j]) & np.isfinite(sums[1, j])
                if clean:
                    for j in range(width):
                        s1[k, j] += sums[0, j]
                        s2[k, j] += sums[1, j]
                        n[k, j] += g1 - g0
                        low[j] = min(low[j], np.float64(ext[0, j]))
                        high[j] = max(high[j], np.float64(ext[1, j]))
                else:  # a NaN/Inf in the group (or squares beyond float32): float64, value by value
                    for r in order[g0:g1]:
                        for j in range(width):
                            v = np.float64(widen(x[r, f0 + j], half))
                            ok = np.isfinite(v)
                            d = v - sk[j] if ok else 0.0
                            n[k, j] += 1.0 if ok else 0.0
                            s1[k, j] += d
                            s2[k, j] += d * d
                            low[j] = min(low[j], v) if ok else low[j]
                            high[j] = max(high[j], v) if ok else high[j]
                            nonfinite[j] += 0.0 if ok else 1.0
        for j in range(width):  # fold the block into the running totals
            f = f0 + j
            lo[f] = min(lo[f], low[j])
            hi[f] = max(hi[f], high[j])
            bad[f] += nonfinite[j]
            for k in range(classes):
                mu, q = shifted_moments(n[k, j], s1[k, j], s2[k, j], np.float64(shift[k, j]))
                total = chan_merge(count[k, f], mean[k, f], m2[k, f], n[k, j], mu, q)
                count[k, f], mean[k, f], m2[k, f] = total


def cpu_tile(features: int) -> int:
    """Features per CPU task: one task per numba thread, each a contiguous run of every row, so the
    reads stream (whole rows were 1.3-1.6x faster than tiles of 512 features with the block not in
    cache), at most MAX_TILE, a multiple of 16 (whole vectors)."""
    tile = min(MAX_TILE, -(-features // numba.get_num_threads()))
    return -(-tile // 16) * 16


@numba.njit(nogil=True, cache=True)
def _rows_by_class(cls, classes):
    """The block's rows grouped by class (a stable counting sort) and each class's [start, stop)."""
    starts = np.zeros(classes + 1, np.int64)
    for k in cls:
        starts[k + 1] += 1
    for k in range(classes):
        starts[k + 1] += starts[k]
    order = np.empty(cls.size, np.int64)
    fill = starts[:classes].copy()
    for r in range(cls.size):
        order[fill[cls[r]]] = r
        fill[cls[r]] += 1
    return order, starts


@numba.njit(inline="always")
def _first_mean(x, half, order, start, stop, f):
    """The mean of the first SHIFT_ROWS finite values of neuron f among rows order[start:stop]: near
    the class's mean, so that sums of squares about it lose little to cancellation (0 if none)."""
    found = 0
    total = 0.0
    for r in order[start:stop]:
        v = widen(x[r, f], half)
        if np.isfinite(v):
            total += v
            found += 1
            if found == SHIFT_ROWS:
                break
    return total / max(found, 1)


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
