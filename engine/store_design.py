"""Choose where the solver's design matrix lives for a store: GPU memory, host memory, or the store.

- cuda: the raw float16/bfloat16 activations are copied once into GPU memory; every product decodes
  row blocks to float32 there and runs on cuBLAS (float32 accumulation, float64 results).
- cpu, in core: when the standardised matrix fits `in_core_bytes`, it is decoded once (float64, or
  float32 when only that fits) and every pass is one BLAS call: a pass costs what the GEMV costs,
  not a decode of the store.
- cpu, streamed: otherwise every pass streams blocks from the store (engine/stream.py), decoded to
  float32, so memory stays within `memory_budget` whatever the store's size.
"""

from __future__ import annotations

import os

import numpy as np

from engine.design import ArrayDesign, BlockDesign
from engine.errors import InputError
from engine.store import ActivationStore, to_float
from engine.stream import iter_blocks

GPU_BLOCK_BYTES = 512 << 20  # float32 temporaries per GPU product block


def default_in_core_bytes() -> int:
    """30% of physical memory: room for the matrix plus the solver's n-vectors and the OS cache."""
    try:
        return int(0.3 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def store_design(
    store: ActivationStore,
    center: np.ndarray,
    scale: np.ndarray,
    backend: str,
    memory_budget: int,
    in_core_bytes: int | None = None,
) -> tuple[BlockDesign, str]:
    """The design Z = (X − center) / scale of `store` for `backend`, and a word saying where it lives."""
    n, p = store.n, center.size
    if backend == "cuda":
        return _gpu_design(store, center, scale, memory_budget), "gpu"
    budget = default_in_core_bytes() if in_core_bytes is None else in_core_bytes
    for dtype in (np.float64, np.float32):
        if n * p * np.dtype(dtype).itemsize <= budget:
            z = np.empty((n, p), dtype=dtype, order="F")  # working-set columns gather contiguously
            for block in iter_blocks(store.activations, n, memory_budget):
                x = to_float(block.data, store.meta["dtype"])
                z[block.start : block.stop] = (x - center) / np.where(scale > 0, scale, 1.0)
            return ArrayDesign(z, dtype=dtype), f"in-core-{np.dtype(dtype).name}"

    def blocks():
        return ((b.start, b.stop, b.data) for b in iter_blocks(store.activations, n, memory_budget))

    decode = (lambda raw: to_float(raw, "bfloat16")) if store.meta["dtype"] == "bfloat16" else None
    return BlockDesign(blocks, n, center, scale, decode=decode, dtype=np.float32), "streamed"


def _gpu_design(store: ActivationStore, center: np.ndarray, scale: np.ndarray, memory_budget: int):
    """Raw activations resident on the GPU (2 bytes per value), decoded to float32 per row block."""
    try:
        import cupy as cp
    except ImportError:
        raise InputError(
            "device cuda: the GPU solver needs cupy; pip install 'neurosel[gpu]', or use cpu"
        ) from None

    n, p = store.n, center.size
    raw = None
    for block in iter_blocks(store.activations, n, memory_budget):
        if raw is None:
            raw = cp.empty((n, p), dtype=block.data.dtype)
        raw[block.start : block.stop] = cp.asarray(block.data)

    def decode(x):
        return (x.astype(cp.uint32) << 16).view(cp.float32) if store.meta["dtype"] == "bfloat16" else x

    rows = max(1, GPU_BLOCK_BYTES // (4 * p))
    return ArrayDesign(raw, center, scale, block_rows=rows, xp=cp, dtype=np.float32, decode=decode)
