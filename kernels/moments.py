"""Per-neuron moments of one block of rows, per class: count, mean, centred M2, min, max, non-finite.

Inputs: `x` (rows, features) as 16-bit patterns decoded through a table, or float32; `cls` (rows,)
int32 class ids in [0, K). Outputs (K, F) count/mean/m2 and (F,) min/max/non-finite for the block;
blocks are then combined with Chan's formula (kernels.common.chan_merge). Within a block, a first
pass sums and a second pass accumulates squared deviations from the block mean, in float64, so
large offsets do not cancel catastrophically.

CPU: numba parallel over tiles of features (each tile's rows are contiguous bytes).
GPU: numba.cuda, one thread per (feature, row group), then a merge of row groups on the device.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from kernels.common import chan_merge, decode_bits, decode_float, for_gpu, is_finite

TILE = 128  # features per CPU task: 128 × 2 bytes = four cache lines per row
MAX_CLASSES_GPU = 16  # per-thread accumulators live in registers/local memory on the GPU
GPU_THREADS = 128
GPU_ROWS_PER_GROUP = 256


def _cpu_kernel(decode):
    @numba.njit(parallel=True, nogil=True, cache=True)
    def moments(x, table, cls, count, mean, m2, lo, hi, bad):
        rows, features = x.shape
        classes = count.shape[0]
        for t in numba.prange((features + TILE - 1) // TILE):
            f0 = t * TILE
            f1 = min(features, f0 + TILE)
            for f in range(f0, f1):
                lo[f] = np.inf
                hi[f] = -np.inf
                bad[f] = 0
                for k in range(classes):
                    count[k, f] = 0
                    mean[k, f] = 0.0
                    m2[k, f] = 0.0
            for r in range(rows):
                k = cls[r]
                for f in range(f0, f1):
                    v = decode(x[r, f], table)
                    if is_finite(v):
                        count[k, f] += 1
                        mean[k, f] += v
                        lo[f] = min(lo[f], v)
                        hi[f] = max(hi[f], v)
                    else:
                        bad[f] += 1
            for k in range(classes):
                for f in range(f0, f1):
                    if count[k, f] > 0:
                        mean[k, f] /= count[k, f]
            for r in range(rows):
                k = cls[r]
                for f in range(f0, f1):
                    v = decode(x[r, f], table)
                    if is_finite(v):
                        d = v - mean[k, f]
                        m2[k, f] += d * d

    return moments


MOMENTS_CPU = {"bits": _cpu_kernel(decode_bits), "float": _cpu_kernel(decode_float)}


def _gpu_kernels(decode):
    decode = for_gpu(decode)

    @cuda.jit
    def partial_moments(x, table, cls, classes, rows_per_group, count, mean, m2, lo, hi, bad):
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
        low = math.inf
        high = -math.inf
        nonfinite = 0
        for r in range(r0, r1):
            v = decode(x[r, f], table)
            if is_finite(v):
                k = cls[r]
                n[k] += 1.0
                s[k] += v
                low = min(low, v)
                high = max(high, v)
            else:
                nonfinite += 1
        for k in range(classes):
            if n[k] > 0:
                s[k] /= n[k]
        for r in range(r0, r1):
            v = decode(x[r, f], table)
            if is_finite(v):
                k = cls[r]
                d = v - s[k]
                q[k] += d * d
        for k in range(classes):
            count[g, k, f] = n[k]
            mean[g, k, f] = s[k]
            m2[g, k, f] = q[k]
        lo[g, f] = low
        hi[g, f] = high
        bad[g, f] = nonfinite

    return partial_moments


PARTIAL_MOMENTS_GPU = {"bits": _gpu_kernels(decode_bits), "float": _gpu_kernels(decode_float)}


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
