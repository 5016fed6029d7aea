"""The one codec between stored values and numbers: float16, float32, and bfloat16 as bit patterns.

Zarr has no bfloat16, so a bfloat16 store holds each value's 16-bit pattern as uint16 (the
`storage_dtype` attribute says so). Decoding is a 16-bit shift into float32 (exact); encoding rounds
float32 to nearest-even, as torch's cast does on the device during extraction. Every reader, the
solver's designs (on numpy or cupy) and the kernels' decode tables go through these functions, and
`Encoding` says how a storage dtype reaches the numba kernels (statistics, the standardise kernel).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurosel.defaults import DTYPES

STORAGE_DTYPES = dict(zip(DTYPES, (np.float16, np.float32, np.uint16), strict=True))  # bfloat16 as bits
BFLOAT16_NAN = 0x7FC0


def storage_itemsize(dtype: str) -> int:
    """Bytes per stored value of a storage dtype (2 for float16 and bfloat16, 4 for float32)."""
    return np.dtype(STORAGE_DTYPES[dtype]).itemsize


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


@dataclass(frozen=True)
class Encoding:
    """How a storage dtype reaches the kernels: 16-bit patterns with tables, or float32."""

    dtype: str  # the storage dtype: float16, bfloat16 or float32
    table: np.ndarray  # float32 decode table ("bits") or a 1-element placeholder
    keys: np.ndarray  # int32 rank table ("bits") or a placeholder
    key_bits: int  # bits of the full key: 16 or 32

    @classmethod
    def for_dtype(cls, storage_dtype: str) -> Encoding:
        """The encoding of a storage dtype (built once per dtype: the tables are read-only)."""
        return _encoding(storage_dtype)

    @property
    def kind(self) -> str:
        """ "bits" (16-bit patterns, decoded through the tables) or "float" (float32 as it is)."""
        return "float" if self.dtype == "float32" else "bits"

    @property
    def half(self) -> bool:
        """Whether the patterns are float16 (the CPU kernels decode them with F16C, else bfloat16)."""
        return self.dtype == "float16"

    def values(self, block: Any) -> Any:
        """The array the moments kernels read."""
        return block.view(np.uint16) if self.kind == "bits" else block

    @property
    def accumulator(self) -> type:
        """The dtype the CPU moments kernel sums row groups in: float32 for 16-bit values (8 or 11
        significant bits), float64 for float32 values (neurosel.kernels.moments)."""
        return np.float32 if self.kind == "bits" else np.float64

    def key_input(self, block: Any) -> Any:
        """The array the histogram kernels read."""
        return block.view(np.uint16) if self.kind == "bits" else block.view(np.uint32)


@functools.cache
def _encoding(storage_dtype: str) -> Encoding:
    if storage_dtype == "float32":
        return Encoding(storage_dtype, np.zeros(1, np.float32), np.zeros(1, np.int32), 32)
    return Encoding(storage_dtype, decode_table(storage_dtype), key_table(storage_dtype), 16)
