"""zstd decoding that never produces more bytes than the chunk it decodes can hold.

A zstd frame says how large it decodes (its content size), and nothing makes that true of a hostile
or damaged file: a 58 KB chunk can declare, and decode to, gigabytes. Zarr's own zstd codec
allocates whatever the frame asks for. `BoundedZstd` decodes into a buffer of the chunk's own size
(fixed-size data types: its shape times the item size), so a frame that declares or produces more
fails before anything larger is allocated; variable-length chunks (texts) must declare their size,
and at most the memory budget. Every valid chunk decodes exactly as before.

`use_bounded_zstd()` makes it zarr's implementation of the "zstd" codec for the arrays opened
afterwards in this process, unless the user already chose another implementation (zarr's
`codecs.zstd` setting), which is then left as it is. The store package calls it on import.
"""

from __future__ import annotations

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer
from zarr.registry import register_codec

from neurosel.defaults import DEFAULT_MEMORY_BUDGET

_MAGIC = 0xFD2FB528
_ZARR_ZSTD = "zarr.codecs.zstd.ZstdCodec"
BOUNDED_ZSTD = f"{__name__}.BoundedZstd"


def content_size(frame: np.ndarray) -> int | None:
    """The content size a zstd frame's header declares (RFC 8878, 3.1.1.1), or None if it declares
    none. ValueError for bytes that are not a zstd frame."""
    if frame.size < 5 or int.from_bytes(frame[:4].tobytes(), "little") != _MAGIC:
        raise ValueError("not a zstd frame")
    descriptor = int(frame[4])
    size_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    width = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    if not width:
        return None
    start = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    if frame.size < start + width:
        raise ValueError("a truncated zstd frame header")
    value = int.from_bytes(frame[start : start + width].tobytes(), "little")
    return value + 256 if width == 2 else value


def _chunk_bytes(spec: ArraySpec) -> int | None:
    """Bytes one decoded chunk holds (shape times item size), or None for variable-length types."""
    dtype = spec.dtype.to_native_dtype()
    if dtype.kind in "OTU" or dtype.itemsize == 0:
        return None
    return int(np.prod(spec.shape, dtype=np.int64)) * dtype.itemsize


class BoundedZstd(ZstdCodec):
    """zarr's zstd codec, decoding into a buffer no larger than the chunk (see the module)."""

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        frame = chunk_bytes.as_numpy_array().view(np.uint8).ravel()
        declared = content_size(frame)
        holds = _chunk_bytes(chunk_spec)
        if holds is None:
            if declared is None or declared > DEFAULT_MEMORY_BUDGET:
                raise ValueError(
                    f"a zstd frame of a variable-length chunk declares {declared} bytes (at most "
                    f"{DEFAULT_MEMORY_BUDGET >> 20} MiB, and declared, is allowed)"
                )
            limit = declared
        else:
            if declared is not None and declared != holds:
                raise ValueError(f"a zstd frame declares {declared:,} bytes where its chunk holds {holds:,}")
            limit = holds
        out = np.empty(limit, dtype=np.uint8)
        try:
            self._zstd_codec.decode(frame, out=out)
        except (RuntimeError, ValueError) as error:  # more bytes than the chunk holds, or corrupt
            raise ValueError(
                f"a zstd frame does not decode to its chunk's {limit:,} bytes ({error})"
            ) from None
        return chunk_spec.prototype.buffer.from_array_like(out)


def use_bounded_zstd() -> None:
    """Make BoundedZstd zarr's "zstd" codec for arrays opened from now on (see the module)."""
    register_codec("zstd", BoundedZstd, qualname=BOUNDED_ZSTD)
    if zarr.config.get("codecs.zstd", _ZARR_ZSTD) == _ZARR_ZSTD:
        zarr.config.set({"codecs.zstd": BOUNDED_ZSTD})
