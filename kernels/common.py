"""Element-level math shared by the CPU and GPU kernels: decoding, ordering keys, Chan's merge.

Written once as numba.njit functions: CPU kernels inline them, numba.cuda kernels call them as device
functions, and the CUDA simulator runs them as they are, so the same lines are tested everywhere.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import config

NOT_FINITE = -1  # histogram key of NaN and ±Inf


def for_gpu(fn):
    """A shared njit function as numba.cuda kernels call it: compiled on a GPU, plain Python in the
    simulator (which cannot pass its array stand-ins to compiled code)."""
    return fn.py_func if config.ENABLE_CUDASIM else fn


def decode_table(storage_dtype: str) -> np.ndarray:
    """float32 value of every 16-bit pattern: float16 or bfloat16 decoding as one table lookup."""
    bits = np.arange(1 << 16, dtype=np.uint32)
    if storage_dtype == "bfloat16":
        return (bits << 16).view(np.float32)
    with np.errstate(invalid="ignore"):  # NaN patterns stay NaN
        return bits.astype(np.uint16).view(np.float16).astype(np.float32)


def key_table(storage_dtype: str) -> np.ndarray:
    """Order-preserving integer key of every 16-bit pattern (-0 = +0); NOT_FINITE for NaN/Inf."""
    with np.errstate(invalid="ignore"):
        values = decode_table(storage_dtype).astype(np.float64)
    keys = np.full(values.size, NOT_FINITE, dtype=np.int32)
    finite = np.isfinite(values)
    _, rank = np.unique(values[finite], return_inverse=True)
    keys[finite] = rank
    return keys


@numba.njit(inline="always")
def decode_bits(x, table):
    """A stored 16-bit pattern as float64, through the decode table."""
    return np.float64(table[x])


@numba.njit(inline="always")
def decode_float(x, table):
    """A stored float32 as float64 (the table is unused)."""
    return np.float64(x)


@numba.njit(inline="always")
def float32_key(bits, shift):
    """Order-preserving key of float32 bits (uint32 as int64), -0 = +0, shifted right; -1 if not finite."""
    if (bits & 0x7F800000) == 0x7F800000:
        return -1
    if bits == 0x80000000:
        bits = 0
    key = bits ^ 0x80000000 if bits < 0x80000000 else 0xFFFFFFFF - bits
    return key >> shift


@numba.njit(inline="always")
def chan_merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Combine counts, means and centred second moments of two disjoint sets (Chan et al., 1979)."""
    n = n_a + n_b
    if n == 0:
        return 0.0, 0.0, 0.0
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / n)
    return n, mean, m2


@numba.njit(inline="always")
def is_finite(v):
    return not (math.isnan(v) or math.isinf(v))
