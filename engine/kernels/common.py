"""Element-level math shared by the CPU and GPU kernels: decoding, ordering keys, Chan's merges.

Written once as numba.njit functions: CPU kernels inline them, numba.cuda kernels call them as device
functions, and the CUDA simulator runs them as they are, so the same lines are tested everywhere.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

NOT_FINITE = -1  # histogram key of NaN and ±Inf


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


@intrinsic
def widen(typingctx, value, half):
    """A stored value as float32, compiled only (CPU kernels): a float32 as it is; a 16-bit pattern
    as float16 (the F16C conversion, exact, subnormals included) when `half`, else as bfloat16 (a
    16-bit shift, exact). For 16-bit patterns both are computed and one selected: a runtime `half`
    leaves loops branch-free, so LLVM vectorises them (a branch, or an @overload wrapper, made the
    statistics kernel 8x slower: scalar code)."""
    if isinstance(value, types.Float):

        def same(context, builder, signature, args):
            return args[0]

        return types.float32(value, half), same

    def codegen(context, builder, signature, args):
        bits, flag = args
        f32 = ir.FloatType()
        as_half = builder.fpext(builder.bitcast(bits, ir.HalfType()), f32)
        as_bfloat = builder.bitcast(
            builder.shl(builder.zext(bits, ir.IntType(32)), ir.Constant(ir.IntType(32), 16)), f32
        )
        return builder.select(flag, as_half, as_bfloat)

    return types.float32(types.uint16, types.boolean), codegen


def _fast_extreme(name: str):
    """float32 min or max for values known not to be NaN (llvm.minnum/maxnum with `nnan`): one
    vminps/vmaxps. Without the flag LLVM turns `lo[j] = min(lo[j], v)` into a masked store (store only
    where v is ordered), which is microcoded on AMD and was 0.5 ns per value. Callers must not rely on
    the result where an argument is NaN (the statistics kernel discards such row groups)."""

    @intrinsic
    def extreme(typingctx, a, b):
        def codegen(context, builder, signature, args):
            f32 = ir.FloatType()
            fn = builder.module.declare_intrinsic(f"llvm.{name}", [f32], ir.FunctionType(f32, [f32, f32]))
            return builder.call(fn, list(args), fastmath=("nnan",))

        return types.float32(types.float32, types.float32), codegen

    return extreme


fmin32 = _fast_extreme("minnum")
fmax32 = _fast_extreme("maxnum")


def value_key(x, table, shift):
    """Order-preserving histogram key of a stored value, shifted right; -1 for NaN/Inf.

    16-bit patterns take their rank from the key table (-0 = +0); float32 values come as their
    uint32 bits (neurosel.kernels.common.float32_key). Python body for the simulator, overload compiled."""
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
    """Combine counts, means and centred second moments of two disjoint sets (Chan et al., 1979).

    The one moment algebra of the project: kernels call it compiled, on scalars; host merges call
    its Python body (`chan_merge.py_func`) on numpy or cupy arrays, elementwise. An empty side
    leaves the other unchanged."""
    n = n_a + n_b
    safe = n + (n == 0)  # 1 where both sides are empty, so nothing divides by zero
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / safe)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / safe)
    return n, mean, m2


@numba.njit
def chan_comerge(n_a, mx_a, my_a, qx_a, qy_a, cxy_a, n_b, mx_b, my_b, qx_b, qy_b, cxy_b):
    """The bivariate Chan update: counts, means, M2 of x and y and the co-moment C_xy of two
    disjoint sets (Pébay, 2008, eq. 3.7). Same conventions as `chan_merge`."""
    n = n_a + n_b
    safe = n + (n == 0)
    dx, dy, w = mx_b - mx_a, my_b - my_a, n_a * n_b / safe
    mx = mx_a + dx * (n_b / safe)
    my = my_a + dy * (n_b / safe)
    qx = qx_a + qx_b + dx * dx * w
    qy = qy_a + qy_b + dy * dy * w
    cxy = cxy_a + cxy_b + dx * dy * w
    return n, mx, my, qx, qy, cxy


@numba.njit
def shifted_moments(n, s1, s2, shift):
    """Mean and centred M2 from sums of (x - shift) and (x - shift)²; exact up to rounding when the
    shift is a value from the data (no catastrophic cancellation from a large common offset)."""
    if n == 0:
        return 0.0, 0.0
    mean = s1 / n
    return shift + mean, max(s2 - s1 * mean, 0.0)
