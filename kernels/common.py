"""Element-level math shared by the CPU and GPU kernels: decoding, ordering keys, Chan's merge.

Written once as numba.njit functions: CPU kernels inline them, numba.cuda kernels call them as device
functions, and the CUDA simulator runs them as they are, so the same lines are tested everywhere.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

NOT_FINITE = -1  # histogram key of NaN and ±Inf


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


def decode(x, table):
    """A stored value as float64: a 16-bit pattern through the decode table, a float32 as is.

    This Python body runs in the CUDA simulator; compiled code uses the overload below, chosen
    by the type of `x` at compile time (no closures, so the CPU kernels cache on disk)."""
    return np.float64(table[x]) if isinstance(x, np.integer) else np.float64(x)


@overload(decode)
def _decode(x, table):
    if isinstance(x, types.Integer):
        return lambda x, table: np.float64(table[x])
    return lambda x, table: np.float64(x)


def value_key(x, table, shift):
    """Order-preserving histogram key of a stored value, shifted right; -1 for NaN/Inf.

    16-bit patterns take their rank from the key table (-0 = +0); float32 values come as their
    uint32 bits (kernels.common.float32_key). Python body for the simulator, overload compiled."""
    if x.dtype == np.uint16:
        k = table[x]
        return -1 if k < 0 else k >> shift
    return float32_key(np.int64(x), shift)


@overload(value_key)
def _value_key(x, table, shift):
    if isinstance(x, types.Integer) and x.bitwidth == 16:

        def from_table(x, table, shift):
            k = table[x]
            return -1 if k < 0 else k >> shift

        return from_table
    return lambda x, table, shift: float32_key(numba.int64(x), shift)


@numba.njit
def float32_key(bits, shift):
    """Order-preserving key of float32 bits (uint32 as int64), -0 = +0, shifted right; -1 if not finite."""
    if (bits & 0x7F800000) == 0x7F800000:
        return -1
    if bits == 0x80000000:
        bits = 0
    key = bits ^ 0x80000000 if bits < 0x80000000 else 0xFFFFFFFF - bits
    return key >> shift


@numba.njit
def chan_merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Combine counts, means and centred second moments of two disjoint sets (Chan et al., 1979)."""
    n = n_a + n_b
    if n == 0:
        return 0.0, 0.0, 0.0
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / n)
    return n, mean, m2


@numba.njit
def shifted_moments(n, s1, s2, shift):
    """Mean and centred M2 from sums of (x - shift) and (x - shift)²; exact up to rounding when the
    shift is a value from the data (no catastrophic cancellation from a large common offset)."""
    if n == 0:
        return 0.0, 0.0
    mean = s1 / n
    return shift + mean, max(s2 - s1 * mean, 0.0)
