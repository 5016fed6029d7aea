"""Compute backends for passes over a store: numba on the CPU, numba.cuda on the GPU.

`select_backend("auto")` picks CUDA when numba.cuda sees a real GPU, else the CPU, and says which.
Each backend runs the statistics pass as: per block, the fused moments (and histogram, co-moment)
kernels, then a merge into running totals; the result is a host `Moments`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.moments import Moments
from kernels.common import decode_table, key_table
from kernels.comoments import comoment_merge, comoments_cpu, comoments_gpu
from kernels.histogram import histogram_cpu, histogram_gpu
from kernels.moments import (
    GPU_ROWS_PER_GROUP,
    MAX_CLASSES_GPU,
    gpu_launch,
    merge_groups,
    moments_cpu,
    partial_moments_gpu,
)

log = logging.getLogger("neurosel")


@dataclass(frozen=True)
class Encoding:
    """How a storage dtype reaches the kernels: 16-bit patterns with tables, or float32."""

    kind: str  # "bits" or "float"
    table: np.ndarray  # float32 decode table ("bits") or a 1-element placeholder
    keys: np.ndarray  # int32 rank table ("bits") or a placeholder
    key_bits: int  # bits of the full key: 16 or 32

    @classmethod
    def for_dtype(cls, storage_dtype: str) -> Encoding:
        if storage_dtype == "float32":
            return cls("float", np.zeros(1, np.float32), np.zeros(1, np.int32), 32)
        return cls("bits", decode_table(storage_dtype), key_table(storage_dtype), 16)

    def values(self, block: np.ndarray) -> np.ndarray:
        """The array the moments kernels read."""
        return block.view(np.uint16) if self.kind == "bits" else block

    def key_input(self, block: np.ndarray) -> np.ndarray:
        """The array the histogram kernels read."""
        return block.view(np.uint16) if self.kind == "bits" else block.view(np.uint32)


def select_backend(device: str) -> str:
    """'auto' → 'cuda' when numba.cuda sees a real GPU (never the simulator), else 'cpu'."""
    from numba import config, cuda

    if device == "auto":
        chosen = "cuda" if cuda.is_available() and not config.ENABLE_CUDASIM else "cpu"
        log.info("device=auto chose %s for the kernels", chosen)
        return chosen
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not cuda.is_available():
            raise InputError(f"device {device!r}: numba.cuda sees no GPU; use cpu or auto")
        return "cuda"
    raise InputError(f"device {device!r}: unknown; use auto, cpu or cuda")


class CpuPass:
    """Per block: fused kernels into fresh partials, merged into the running Moments."""

    def __init__(self, encoding: Encoding, classes: int, features: int, hist_shift: int | None) -> None:
        self.encoding = encoding
        self.classes = classes
        self.total = Moments.empty(classes, features)
        self.hist_shift = hist_shift
        if hist_shift is not None:
            bins = 1 << (encoding.key_bits - hist_shift)
            self.total.hist = np.zeros((2, features, bins), dtype=np.uint32)

    def add(self, block: np.ndarray, cls: np.ndarray, y: np.ndarray | None) -> None:
        enc, features = self.encoding, block.shape[1]
        part = Moments(
            count=np.empty((self.classes, features)),
            mean=np.empty((self.classes, features)),
            m2=np.empty((self.classes, features)),
            lo=np.empty(features),
            hi=np.empty(features),
            bad=np.empty(features, dtype=np.int64),
        )
        values = enc.values(block)
        moments_cpu(values, enc.table, cls, part.count, part.mean, part.m2, part.lo, part.hi, part.bad)
        if y is not None:
            part.co = {k: np.empty(features) for k in ("n", "mx", "my", "qx", "qy", "cxy")}
            comoments_cpu(values, enc.table, y, *part.co.values())
        hist = self.total.hist
        self.total.hist = None
        self.total = self.total.merge(part)
        if hist is not None:  # accumulated in place: histograms are too large to copy per block
            histogram_cpu(enc.key_input(block), enc.keys, self.hist_shift, cls, hist)
            self.total.hist = hist

    def result(self) -> Moments:
        return self.total


class GpuPass:
    """Two CUDA streams alternate blocks: while one copies block i+1 in, the other computes block i.

    Each stream owns a pinned staging buffer, a device buffer and its own running totals, so the
    streams never wait on each other; the two totals are merged with Chan's formula at the end.
    """

    STREAMS = 2

    def __init__(self, encoding: Encoding, classes: int, features: int, hist_shift: int | None) -> None:
        from numba import cuda

        if classes > MAX_CLASSES_GPU:
            raise InputError(
                f"by='label': {classes} classes; the GPU kernels take at most {MAX_CLASSES_GPU}; "
                "use device='cpu'"
            )
        self.cuda = cuda
        self.encoding = encoding
        self.classes = classes
        self.features = features
        self.hist_shift = hist_shift
        self.streams = [cuda.stream() for _ in range(self.STREAMS)]
        self.table = cuda.to_device(encoding.table)
        self.keys = cuda.to_device(encoding.keys)
        empty = Moments.empty(classes, features)
        self.totals = [
            {
                name: cuda.to_device(getattr(empty, name), stream=s)
                for name in ("count", "mean", "m2", "lo", "hi", "bad")
            }
            for s in self.streams
        ]
        self.hist = None
        if hist_shift is not None:
            bins = 1 << (encoding.key_bits - hist_shift)
            self.hist = cuda.to_device(np.zeros((2, features, bins), dtype=np.uint32))
        self.co = [None] * self.STREAMS
        self.slots: list[dict | None] = [None] * self.STREAMS
        self.turn = 0

    def _slot(self, i: int, block: np.ndarray) -> dict:
        """Per-stream buffers, (re)allocated when a block is larger than any before."""
        slot = self.slots[i]
        rows = block.shape[0]
        if slot is None or slot["rows"] < rows:
            cuda = self.cuda
            groups = -(-rows // GPU_ROWS_PER_GROUP)
            slot = {
                "rows": rows,
                "pinned": cuda.pinned_array(block.shape, dtype=block.dtype),
                "x": cuda.device_array(block.shape, dtype=block.dtype),
                "cls": cuda.device_array(rows, dtype=np.int32),
                "pinned_cls": cuda.pinned_array(rows, dtype=np.int32),
                "y": cuda.device_array(rows, dtype=np.float64),
                "pinned_y": cuda.pinned_array(rows, dtype=np.float64),
                "part": {
                    "count": cuda.device_array((groups, self.classes, self.features)),
                    "mean": cuda.device_array((groups, self.classes, self.features)),
                    "m2": cuda.device_array((groups, self.classes, self.features)),
                    "lo": cuda.device_array((groups, self.features)),
                    "hi": cuda.device_array((groups, self.features)),
                    "bad": cuda.device_array((groups, self.features), dtype=np.int64),
                },
            }
            self.slots[i] = slot
        return slot

    def add(self, block: np.ndarray, cls: np.ndarray, y: np.ndarray | None) -> None:
        i = self.turn
        self.turn = (self.turn + 1) % self.STREAMS
        stream = self.streams[i]
        stream.synchronize()  # this slot's previous copy and kernels are done: its buffers are free
        slot = self._slot(i, block)
        rows = block.shape[0]
        groups = -(-rows // GPU_ROWS_PER_GROUP)
        enc = self.encoding
        np.copyto(slot["pinned"][:rows], block)
        np.copyto(slot["pinned_cls"][:rows], cls)
        x = slot["x"][:rows]
        x.copy_to_device(slot["pinned"][:rows], stream=stream)
        d_cls = slot["cls"][:rows]
        d_cls.copy_to_device(slot["pinned_cls"][:rows], stream=stream)
        values = _device_view(x, enc.values)
        part, total = slot["part"], self.totals[i]
        grid, threads = gpu_launch(self.features, groups)
        partial_moments_gpu[grid, threads, stream](
            values, self.table, d_cls, self.classes, GPU_ROWS_PER_GROUP,
            part["count"], part["mean"], part["m2"], part["lo"], part["hi"], part["bad"],
        )  # fmt: skip
        merge_groups[grid[0], threads, stream](
            groups, part["count"], part["mean"], part["m2"], part["lo"], part["hi"], part["bad"],
            total["count"], total["mean"], total["m2"], total["lo"], total["hi"], total["bad"],
        )  # fmt: skip
        if self.hist is not None:
            histogram_gpu[grid, threads, stream](
                _device_view(x, enc.key_input),
                self.keys,
                self.hist_shift,
                d_cls,
                GPU_ROWS_PER_GROUP,
                self.hist,
            )
        if y is not None:
            np.copyto(slot["pinned_y"][:rows], y)
            d_y = slot["y"][:rows]
            d_y.copy_to_device(slot["pinned_y"][:rows], stream=stream)
            out = {k: self.cuda.device_array(self.features) for k in ("n", "mx", "my", "qx", "qy", "cxy")}
            comoments_gpu[grid[0], threads, stream](values, self.table, d_y, *out.values())
            stream.synchronize()
            host = {k: v.copy_to_host() for k, v in out.items()}
            self.co[i] = host if self.co[i] is None else comoment_merge(self.co[i], host)

    def result(self) -> Moments:
        merged = None
        for i, stream in enumerate(self.streams):
            stream.synchronize()
            host = Moments(**{k: v.copy_to_host() for k, v in self.totals[i].items()}, co=self.co[i])
            merged = host if merged is None else merged.merge(host)
        if self.hist is not None:
            merged.hist = self.hist.copy_to_host()
        return merged


def _device_view(x, view):
    """Apply a host-side dtype view (uint16/uint32 reinterpretation) to a device array."""
    probe = view(np.empty((1, 1), dtype=x.dtype))
    return x if probe.dtype == x.dtype else x.view(probe.dtype)


def make_pass(backend: str, encoding: Encoding, classes: int, features: int, hist_shift: int | None):
    """The pass accumulator for a backend."""
    cls = GpuPass if backend == "cuda" else CpuPass
    return cls(encoding, classes, features, hist_shift)
