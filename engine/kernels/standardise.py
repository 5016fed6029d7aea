"""Standardise a block of stored rows into a column-major design matrix: out[start + r, j] =
(x[r, j] − center[j]) / scale[j], in out's dtype (float64 or float32).

The in-core solver (engine/solver/_store_design.py) decodes the store once into Z, column-major so
that a working set's columns gather contiguously. numpy's version of that line makes three full-size
temporaries and writes a row-major result through a transposing copy, on one core; this kernel reads
each stored value once (16-bit patterns through the decode table, as engine/kernels/moments.py does, or
float32), and writes every output element once, in parallel over tiles of columns. The arithmetic is
numpy's (a float64 subtraction then a division), so the result is the same to the bit.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from neurosel.kernels.common import decode

TILE = 32  # columns per task: a row's part of a tile is one 64-byte cache line of 16-bit values
ROWS = 256  # rows per step within a tile: the tile's output columns stay in cache while written


def safe_scale(std: Any) -> np.ndarray:
    """The divisor that standardises by `std`: `std` where it is > 0, 1 where it is 0 or NaN (a
    constant neuron is centred, not divided by zero). The one such guard: every standardisation uses it."""
    return np.where(np.asarray(std) > 0, std, 1.0)


@numba.njit(parallel=True, nogil=True, cache=True)
def standardise_into(x, table, center, scale, out, start):
    """Fill out[start : start + rows] (column-major) from the block x (rows, features)."""
    rows, features = x.shape
    for t in numba.prange((features + TILE - 1) // TILE):
        f0 = t * TILE
        f1 = min(features, f0 + TILE)
        for r0 in range(0, rows, ROWS):
            r1 = min(rows, r0 + ROWS)
            for j in range(f0, f1):
                c, s = center[j], scale[j]
                for r in range(r0, r1):
                    out[start + r, j] = (decode(x[r, j], table) - c) / s
