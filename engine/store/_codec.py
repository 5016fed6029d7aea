"""The one codec between stored values and numbers: float16, float32, and bfloat16 as bit patterns.

Zarr has no bfloat16, so a bfloat16 store holds each value's 16-bit pattern as uint16 (the
`storage_dtype` attribute says so). Decoding is a 16-bit shift into float32 (exact); encoding rounds
float32 to nearest-even, as torch's cast does on the device during extraction. Every reader, the
solver's designs (on numpy or cupy) and the kernels' decode tables go through these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32, "bfloat16": np.uint16}
BFLOAT16_NAN = 0x7FC0


def decode(data: Any, dtype: str) -> Any:
    """Stored values as numbers: bfloat16 patterns become float32; float16/float32 pass through.

    Works on numpy and cupy arrays alike (the GPU solver decodes its resident blocks with it)."""
    if dtype == "bfloat16":
        return (data.astype("uint32") << 16).view("float32")
    return data


def encode(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 (or float64) values in the storage dtype; bfloat16 rounds to nearest even, NaN stays NaN."""
    if dtype != "bfloat16":
        return np.asarray(values).astype(STORAGE_DTYPES[dtype])
    part = np.asarray(values, dtype=np.float32)
    bits = part.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return np.where(np.isnan(part), BFLOAT16_NAN, rounded).astype(np.uint16)


def decode_table(dtype: str) -> np.ndarray:
    """float32 value of every 16-bit pattern of a 16-bit storage dtype: decoding as one table lookup."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    with np.errstate(invalid="ignore"):  # NaN patterns stay NaN
        return np.asarray(decode(bits.view(STORAGE_DTYPES[dtype]), dtype), dtype=np.float32)


def key_table(dtype: str, not_finite: int = -1) -> np.ndarray:
    """Order-preserving integer key of every 16-bit pattern (-0 = +0); `not_finite` for NaN/Inf."""
    with np.errstate(invalid="ignore"):
        values = decode_table(dtype).astype(np.float64)
    keys = np.full(values.size, not_finite, dtype=np.int32)
    finite = np.isfinite(values)
    _, rank = np.unique(values[finite], return_inverse=True)
    keys[finite] = rank
    return keys
