"""Per-neuron moments of one block of rows, per class: count, mean, centred M2, min, max, non-finite.

Inputs: `x` (rows, features) as 16-bit patterns decoded through a table (float16 by bit arithmetic on
the CPU), or float32; `cls` (rows,) int32 class ids in [0, K). Outputs (K, F) count/mean/m2 and (F,)
min/max/non-finite for the block (the CPU's min/max as order keys of the bits, which vectorise;
neurosel.kernels.common.order_key); blocks are then combined with Chan's formula
(neurosel.kernels.common.chan_merge).

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

from neurosel.kernels.common import (
    KEY_MAX,
    KEY_MIN,
    chan_merge,
    decode,
    half_value,
    order_key,
    shifted_moments,
)

TILE = 128  # features per CPU task: 128 × 2 bytes = four cache lines per row
MAX_CLASSES_GPU = 16  # per-thread accumulators live in registers/local memory on the GPU
GPU_THREADS = 128
GPU_ROWS_PER_GROUP = 256


@numba.njit(parallel=True, nogil=True, cache=True)
def moments_cpu(x, bits, table, half, exponent, cls, count, mean, m2, lo, hi, bad):
    """CPU: fill (K, F) count/mean/m2, (F,) bad, and (F,) lo/hi as order keys of the stored bits
    (`order_key`; KEY_MAX/KEY_MIN when a neuron has no finite value) for the block x (rows, F).

    `bits` is x's bit patterns (x itself for 16-bit stores), `exponent` the exponent mask (all ones:
    NaN or ±Inf), `half` True for float16 (decoded by bit arithmetic, no table). Rows whose values in
    the tile are all finite (nearly all) take a fast loop without masks; the others a masked one."""
    rows, features = x.shape
    classes = count.shape[0]
    for t in numba.prange((features + TILE - 1) // TILE):
        f0 = t * TILE
        width = min(features, f0 + TILE) - f0
        shift = np.zeros(width)
        for j in range(width):  # the first finite value of each neuron
            for r in range(rows):
                if (bits[r, f0 + j] & exponent) != exponent:
                    shift[j] = _value(x[r, f0 + j], table, half)
                    break
        # tile-local accumulators; branch-free inner loops, which LLVM vectorises
        whole = np.zeros(classes)  # rows of each class with every value of the tile finite
        n = np.zeros((classes, width))  # finite values of the other rows
        s1 = np.zeros((classes, width))
        s2 = np.zeros((classes, width))
        low = np.full(width, KEY_MAX, dtype=np.int32)
        high = np.full(width, KEY_MIN, dtype=np.int32)
        nonfinite = np.zeros(width)
        for r in range(rows):
            k = cls[r]
            xr = x[r, f0 : f0 + width]
            br = bits[r, f0 : f0 + width]
            s1k = s1[k]
            s2k = s2[k]
            missing = 0
            for j in range(width):
                missing += (br[j] & exponent) == exponent
            if missing == 0:
                whole[k] += 1.0
                if half:
                    for j in range(width):
                        d = np.float64(half_value(xr[j])) - shift[j]
                        s1k[j] += d
                        s2k[j] += d * d
                else:
                    for j in range(width):
                        d = decode(xr[j], table) - shift[j]
                        s1k[j] += d
                        s2k[j] += d * d
                for j in range(width):
                    o = order_key(br[j])
                    low[j] = min(low[j], o)
                    high[j] = max(high[j], o)
            else:
                nk = n[k]
                for j in range(width):
                    ok = (br[j] & exponent) != exponent
                    d = _value(xr[j], table, half) - shift[j] if ok else 0.0
                    nk[j] += 1.0 if ok else 0.0
                    s1k[j] += d
                    s2k[j] += d * d
                    o = order_key(br[j])
                    low[j] = min(low[j], o if ok else KEY_MAX)
                    high[j] = max(high[j], o if ok else KEY_MIN)
                    nonfinite[j] += 0.0 if ok else 1.0
        for j in range(width):
            lo[f0 + j] = low[j]
            hi[f0 + j] = high[j]
            bad[f0 + j] = nonfinite[j]
            for k in range(classes):
                c = n[k, j] + whole[k]
                count[k, f0 + j] = c
                mean[k, f0 + j], m2[k, f0 + j] = shifted_moments(c, s1[k, j], s2[k, j], shift[j])


@numba.njit(inline="always")
def _value(v, table, half):
    """A stored value as float64: float16 bits by arithmetic when `half`, else `decode`."""
    return np.float64(half_value(v)) if half else decode(v, table)


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
