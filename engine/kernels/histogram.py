"""Order-preserving value keys per neuron, for exact tie-aware AUROC (Mann–Whitney U).

A 16-bit store has at most 65,536 distinct values, so each value's rank (from a table, -0 = +0) is
an exact key; `shift` > 0 merges 2**shift adjacent values per key (coarser). float32 stores use
the top bits of an order-preserving transform of the float's bits. Keys of NaN/Inf are -1 and are
skipped (the moments kernel counts them).

CPU: the pass keeps each neuron's keys (`keys_cpu`, 2 bytes per value up to 16 bits) and counts
them one neuron at a time at the end (`auroc_from_keys`), in a histogram that stays in cache:
memory grows with the rows, not with 2 × 65,536 bins per neuron. GPU: per-class histograms of
every neuron with atomic adds (`histogram_gpu`), then `mann_whitney`.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from neurosel.kernels.common import value_key

TILE = 64  # neurons per CPU task, and rows per step: a 64 × 64 tile transposed through the cache
COUNT_BINS = 1 << 16  # up to this many bins, keys are counted into per-task histograms; above, sorted


@numba.njit(parallel=True, nogil=True, cache=True)
def keys_cpu(x, table, shift, f0, out, start):
    """CPU: out[f, start + r] = 1 + key of x[r, f0 + f] (0 for NaN/Inf), for out's neurons (G, rows).

    Each neuron's keys become one contiguous row (the transpose of the block), so that the AUROC
    later counts one neuron at a time in a histogram that stays in cache (`auroc_from_keys`)."""
    rows = x.shape[0]
    group = out.shape[0]
    for t in numba.prange((group + TILE - 1) // TILE):
        g0 = t * TILE
        g1 = min(group, g0 + TILE)
        for r0 in range(0, rows, TILE):
            r1 = min(rows, r0 + TILE)
            for g in range(g0, g1):
                for r in range(r0, r1):
                    out[g, start + r] = value_key(x[r, f0 + g], table, shift) + 1


@numba.njit(parallel=True, nogil=True, cache=True)
def auroc_from_keys(keys, cls, bins, tasks, auc, ties):
    """Per neuron from its keys (G, rows; 1 + key, 0 = not finite) and the rows' classes (0/1): the
    AUROC of class 1 over class 0 (ties count ½) and the share of (class 1, class 0) pairs that
    share a key. Neurons are split into `tasks` parallel tasks. Up to COUNT_BINS bins the keys are
    counted into a histogram per task (cleared as it is read, over the neuron's key range only);
    above, each class's keys are sorted and merged."""
    group = keys.shape[0]
    tasks = max(1, min(group, tasks))
    for t in numba.prange(tasks):
        counting = bins <= COUNT_BINS
        hist = np.zeros((2, bins + 1 if counting else 1), dtype=np.uint32)
        for g in range(t * group // tasks, (t + 1) * group // tasks):
            if counting:
                u, same, n0, n1 = _count_pairs(keys[g], cls, hist)
            else:
                u, same, n0, n1 = _sort_pairs(keys[g], cls)
            pairs = n0 * n1
            auc[g] = u / pairs if pairs > 0 else np.nan
            ties[g] = same / pairs if pairs > 0 else np.nan


@numba.njit(inline="always")
def _count_pairs(keys, cls, hist):
    """Mann–Whitney sums of one neuron by counting; leaves `hist` zero again."""
    low = keys.dtype.type(-1)  # the key range, in a loop of its own that vectorises
    high = keys.dtype.type(0)
    for r in range(keys.shape[0]):
        k = keys[r]
        low = min(low, k if k > 0 else low)
        high = max(high, k)
    for r in range(keys.shape[0]):
        hist[cls[r], keys[r]] += 1  # key 0 (not finite) lands in bin 0, which is never read
    below = 0.0  # class-0 values with smaller keys
    u = 0.0
    same = 0.0
    n1 = 0.0
    for b in range(low, high + 1):
        h0 = np.float64(hist[0, b])
        h1 = np.float64(hist[1, b])
        hist[0, b] = 0
        hist[1, b] = 0
        u += h1 * below + 0.5 * h1 * h0
        same += h1 * h0
        below += h0
        n1 += h1
    hist[0, 0] = 0
    hist[1, 0] = 0
    return u, same, below, n1


@numba.njit(inline="always")
def _sort_pairs(keys, cls):
    """Mann–Whitney sums of one neuron by sorting each class's finite keys and merging."""
    finite = keys > 0
    k0 = np.sort(keys[finite & (cls == 0)])
    k1 = np.sort(keys[finite & (cls == 1)])
    n0, n1 = k0.shape[0], k1.shape[0]
    u = 0.0
    same = 0.0
    i = 0
    j = 0
    while j < n1:
        v = k1[j]
        while i < n0 and k0[i] < v:
            i += 1
        e = i
        while e < n0 and k0[e] == v:
            e += 1
        run = j
        while run < n1 and k1[run] == v:
            run += 1
        count = np.float64(run - j)
        u += count * (i + 0.5 * (e - i))
        same += count * (e - i)
        j = run
    return u, same, np.float64(n0), np.float64(n1)


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
