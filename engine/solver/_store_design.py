"""Choose where the solver's design matrix lives for a store: GPU memory, host memory, or the store.

- GPU: the raw float16/bfloat16 activations are copied once into GPU memory (cupy, the device's
  array module); every product decodes row blocks to float32 there and runs on cuBLAS (float32
  accumulation, float64 results). Under the CUDA simulator the same code runs on numpy.
- CPU, in core: when the standardised matrix fits `in_core_bytes`, it is decoded once into a
  column-major float32 matrix, and a pass is one BLAS call per ACCUMULATE_ROWS rows, summed in
  float64: a pass costs what the GEMV costs, not a decode of the store. float32 halves both the
  memory and the time of the Hessian passes against float64 (single-precision GEMM does twice the
  FLOPs per cycle), and the float64 sums of row blocks keep the rounding of a product from growing
  with n: the path's float64 objectives stay within about 1e-7 (relative) of a float64 design's,
  well inside the certificate's tolerance (docs/importance.md). A tolerance below FLOAT32_TOL asks
  for more than float32 products can certify: the matrix is then float64 (float32 if only that fits).
- CPU, streamed: otherwise every pass streams blocks from the store (`ActivationStore.blocks`),
  decoded to float32 (float64 for a tolerance below FLOAT32_TOL), so memory stays within
  `memory_budget` whatever the store's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import numpy as np

from neurosel.defaults import IN_CORE_BYTES
from neurosel.devices import Device
from neurosel.kernels.standardise import safe_scale, standardise_into
from neurosel.solver._design import ArrayDesign, BlockDesign
from neurosel.store import ActivationStore, Block, Encoding, decode

GPU_BLOCK_BYTES = 512 << 20  # float32 temporaries per GPU product block
ACCUMULATE_ROWS = 8192  # in core: float32 products over this many rows, summed in float64
FLOAT32_TOL = 1e-7  # a solver tolerance below this gets float64 products (in core, streamed, GPU)


def precision(tol: float) -> type[np.floating]:
    """The dtype a CPU design computes in for a solver tolerance: float32 unless `tol` asks for more
    than float32 products can certify (below FLOAT32_TOL)."""
    return np.float64 if tol < FLOAT32_TOL else np.float32


def store_design(
    store: ActivationStore,
    center: np.ndarray,
    scale: np.ndarray,
    device: Device,
    memory_budget: int,
    in_core_bytes: int | None = None,
    tol: float = 1e-6,
) -> tuple[BlockDesign, str]:
    """The design Z = (X − center) / scale of `store` on `device` for a solver tolerance `tol`, and
    a word saying where it lives."""
    n, p = store.n, center.size
    dtype_name = store.meta["dtype"]
    if device.is_gpu:
        return _gpu_design(store, center, scale, device, memory_budget, precision(tol)), "gpu"
    budget = IN_CORE_BYTES if in_core_bytes is None else in_core_bytes  # the one default
    for dtype in dict.fromkeys((precision(tol), np.float32)):  # float64 falls back to float32 in core
        if n * p * np.dtype(dtype).itemsize <= budget:
            design = _in_core(store.blocks(n, memory_budget), (n, p), center, scale, dtype_name, dtype)
            return design, f"in-core-{np.dtype(dtype).name}"
    blocks = partial(store.blocks, n, memory_budget)
    design = BlockDesign(
        blocks, n, center, scale, decode=partial(decode, dtype=dtype_name), dtype=precision(tol)
    )
    return design, "streamed"


def _gpu_design(
    store: ActivationStore,
    center: np.ndarray,
    scale: np.ndarray,
    device: Device,
    memory_budget: int,
    dtype: type[np.floating] = np.float32,
) -> ArrayDesign:
    """Raw activations resident on the GPU (2 bytes per value), decoded to `dtype` per row block:
    float32, or float64 for a tolerance float32 products cannot certify (`precision(tol)`)."""
    xp = device.xp
    n, p = store.n, center.size
    raw = xp.empty((n, p), dtype=store.activations.dtype)
    for block in store.blocks(n, memory_budget):
        raw[block.start : block.stop] = xp.asarray(block.data)
    rows = max(1, GPU_BLOCK_BYTES // (np.dtype(dtype).itemsize * p))
    return ArrayDesign(
        raw, center, scale, block_rows=rows, xp=xp, dtype=dtype,
        decode=partial(decode, dtype=store.meta["dtype"]),
    )  # fmt: skip


def standardised_design(
    x: np.ndarray, center: np.ndarray, scale: np.ndarray, tol: float = 1e-6
) -> ArrayDesign:
    """The in-core design of in-memory float32 activations x (n, p) for a solver tolerance `tol`:
    Z = (x − center) / scale (scale 0 → 1), decoded once as the in-core store design is."""
    return _in_core([Block(0, x.shape[0], x)], x.shape, center, scale, "float32", precision(tol))


def _in_core(
    blocks: Iterable[Block],
    shape: tuple[int, int],
    center: np.ndarray,
    scale: np.ndarray,
    dtype_name: str,
    dtype: Any,
) -> ArrayDesign:
    """Z = (X − center) / scale from row blocks of X (stored as `dtype_name`), decoded once by the
    standardise kernel into a column-major `dtype` matrix: working-set columns gather contiguously."""
    z = np.empty(shape, dtype=dtype, order="F")
    divisor = safe_scale(scale).astype(np.float64)
    center64 = np.asarray(center, dtype=np.float64)
    encoding = Encoding.for_dtype(dtype_name)
    for block in blocks:
        values = encoding.values(np.ascontiguousarray(block.data))
        standardise_into(values, encoding.table, center64, divisor, z, block.start)
    return ArrayDesign(z, dtype=dtype, block_rows=ACCUMULATE_ROWS)
