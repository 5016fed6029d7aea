"""The statistics pass as chunk functions: one block of rows → a `Moments` partial, on the CPU or a GPU.

Both passes follow neurosel.store.ChunkPass: `chunk(block)` runs the fused kernels (moments, and the
AUROC keys and label co-moments when asked) on one block and returns its partial; `merge` is
`Moments.merge` (Chan); `finish` is left to the caller (engine/stats/_api.py), which also knows the
store. `chunk(block, out=p)` folds the block into `p` in place: the moments through Chan's merge,
which both devices' kernels run on p's arrays (no per-block partial, no host merge); on the CPU the
block's AUROC keys join p's (`KeyColumns`), on a GPU its keys are added to p's histograms.

CPU: numba parallel kernels over tiles of neurons. GPU: the same kernel families in numba.cuda,
launched on cupy arrays (the device's array module; numpy under the CUDA simulator). Blocks are
staged through two pinned buffers on two streams, so one block's copy overlaps the previous
block's kernels; the merges into `out` are ordered across the streams by events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurosel.devices import Device
from neurosel.errors import InputError
from neurosel.kernels.comoments import comoments_cpu, comoments_gpu
from neurosel.kernels.histogram import histogram_gpu, keys_cpu
from neurosel.kernels.moments import (
    GPU_ROWS_PER_GROUP,
    MAX_CLASSES_GPU,
    cpu_tile,
    gpu_launch,
    merge_groups,
    moments_cpu,
    partial_moments_gpu,
)
from neurosel.stats._moments import CoMoments, KeyColumns, Moments
from neurosel.store import Block, Encoding


@dataclass(frozen=True)
class StatsPlan:
    """What one statistics pass computes: per activation row its class index (int32) and numeric
    target (float64) or None, the number of classes, and the AUROC key shift (None: no AUROC).

    On the CPU the AUROC keeps each neuron's keys: `key_neurons` (first, stop) are the neurons whose
    keys this pass keeps (None: all), and `moments=False` makes a pass that keeps keys only (the
    later passes over the store when the keys of every neuron do not fit in the memory budget)."""

    encoding: Encoding
    cls: np.ndarray
    y: np.ndarray | None
    classes: int
    features: int
    hist_shift: int | None
    key_neurons: tuple[int, int] | None = None
    moments: bool = True

    @property
    def bins(self) -> int:
        return 1 << (self.encoding.key_bits - self.hist_shift)

    @property
    def key_range(self) -> tuple[int, int]:
        """The neurons whose AUROC keys a CPU pass keeps."""
        return self.key_neurons if self.key_neurons is not None else (0, self.features)

    @property
    def key_dtype(self) -> type:
        """1 + key fits 16 bits up to 16-bit keys (the largest is 0xFF80), else 32."""
        return np.uint16 if self.bins <= 1 << 16 else np.uint32


class CpuStatsPass:
    """The statistics chunk function on the CPU (numba parallel kernels)."""

    def __init__(self, plan: StatsPlan) -> None:
        self.plan = plan
        self.accumulator = np.empty(0, plan.encoding.accumulator)  # the kernel's sums' dtype

    def identity(self) -> Moments:
        plan = self.plan
        empty = Moments.empty(plan.classes, plan.features)
        if plan.hist_shift is not None:
            empty.keys = KeyColumns([])
        return empty

    def chunk(self, block: Block, out: Moments | None = None) -> Moments:
        plan, enc, features = self.plan, self.plan.encoding, self.plan.features
        target = out if out is not None else self.identity()
        cls = plan.cls[block.start : block.stop]
        values = enc.values(block.data)
        if plan.moments:  # the kernel folds the block into the target's moments in place
            moments_cpu(
                values, enc.half, cls, self.accumulator, cpu_tile(features),
                target.count, target.mean, target.m2, target.lo, target.hi, target.bad,
            )  # fmt: skip
        if plan.y is not None and plan.moments:
            co = CoMoments(*(np.empty(features) for _ in range(6)))
            comoments_cpu(values, enc.table, plan.y[block.start : block.stop], *co.parts())
            target.co = co if target.co is None else target.co.merge(co)
        if plan.hist_shift is not None:
            first, stop = plan.key_range
            buffer = None
            if out is not None and out.keys is not None:  # a fold: every block's keys in one buffer
                buffer = out.keys.buffer
                if buffer is None:
                    buffer = np.empty((stop - first, plan.cls.size), dtype=plan.key_dtype)
            if buffer is not None:
                keys_cpu(enc.key_input(block.data), enc.keys, plan.hist_shift, first, buffer, block.start)
                keys = buffer[:, block.start : block.stop]
            else:
                keys = np.empty((stop - first, block.rows), dtype=plan.key_dtype)
                keys_cpu(enc.key_input(block.data), enc.keys, plan.hist_shift, first, keys, 0)
            target.keys = target.keys.merge(KeyColumns([(block.start, keys)], buffer))
        return target

    def merge(self, a: Moments, b: Moments) -> Moments:
        return a.merge(b)

    def finish(self, partial: Moments) -> Moments:
        return partial


class GpuStatsPass:
    """The statistics chunk function on a GPU: numba.cuda kernels on the device's arrays.

    Partials live on the device (`Device.xp` arrays); `finish` copies the merged one to the host."""

    LANES = 2  # pinned staging buffers and streams: one block copies while the previous computes
    finish_on_worker = True  # a cluster task returns host partials, not device buffers

    def __init__(self, plan: StatsPlan, device: Device) -> None:
        from numba import cuda

        if plan.classes > MAX_CLASSES_GPU:
            raise InputError(
                f"by='label': {plan.classes} classes; the GPU kernels take at most {MAX_CLASSES_GPU}; "
                "use device='cpu'"
            )
        self.plan, self.device, self.cuda, self.xp = plan, device, cuda, device.xp
        xp = self.xp
        self.table = xp.asarray(plan.encoding.table)
        self.keys = xp.asarray(plan.encoding.keys)
        self.cls = xp.asarray(plan.cls)
        self.y = None if plan.y is None else xp.asarray(plan.y)
        self.lanes = [_Lane(device) for _ in range(self.LANES)]
        self.turn = 0
        self.merged = None  # the event after which `out` holds every merge launched so far

    def identity(self) -> Moments:
        plan, xp = self.plan, self.xp
        empty = Moments.empty(plan.classes, plan.features, xp)
        if plan.hist_shift is not None:
            empty.hist = xp.zeros((2, plan.features, plan.bins), dtype=np.uint32)
        return empty

    def chunk(self, block: Block, out: Moments | None = None) -> Moments:
        plan, xp, enc = self.plan, self.xp, self.plan.encoding
        lane = self.lanes[self.turn]
        self.turn = (self.turn + 1) % len(self.lanes)
        x = lane.stage(block.data)
        groups = -(-block.rows // GPU_ROWS_PER_GROUP)
        stream = lane.kernel_stream()
        features, classes = plan.features, plan.classes
        scratch = lane.scratch(groups, classes, features)
        cls = self.cls[block.start : block.stop]
        values = _device_view(x, enc.values)
        grid, threads = gpu_launch(features, groups)
        partial_moments_gpu[grid, threads, stream](
            values, self.table, cls, classes, GPU_ROWS_PER_GROUP,
            scratch["count"], scratch["mean"], scratch["m2"], scratch["lo"], scratch["hi"], scratch["bad"],
        )  # fmt: skip
        target = out if out is not None else self.identity()
        lane.wait_for(self.merged)  # merges into `target` run one after another across lanes
        merge_groups[grid[0], threads, stream](
            groups, scratch["count"], scratch["mean"], scratch["m2"], scratch["lo"], scratch["hi"],
            scratch["bad"], target.count, target.mean, target.m2, target.lo, target.hi, target.bad,
        )  # fmt: skip
        if plan.hist_shift is not None:
            histogram_gpu[grid, threads, stream](
                _device_view(x, enc.key_input), self.keys, plan.hist_shift, cls, GPU_ROWS_PER_GROUP,
                target.hist,
            )  # fmt: skip
        if self.y is not None:
            co = [xp.empty(features) for _ in range(6)]
            comoments_gpu[grid[0], threads, stream](values, self.table, self.y[block.start : block.stop], *co)
            lane.synchronize()  # the co-moment merge below runs as array code on the default stream
            part = CoMoments(*co)
            target.co = part if target.co is None else target.co.merge(part)
        self.merged = lane.record()
        return target

    def merge(self, a: Moments, b: Moments) -> Moments:
        self.synchronize()
        return a.merge(b)

    def finish(self, partial: Moments) -> Moments:
        self.synchronize()
        return partial.to_host()

    def synchronize(self) -> None:
        for lane in self.lanes:
            lane.synchronize()


class _Lane:
    """One pinned staging buffer, one device buffer and one stream (cupy; numba's simulator
    synchronously when there is no GPU)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.xp = device.xp
        self.real = device.is_gpu and not device.simulated
        self.pinned = None
        self.x = None
        self.buffers: dict[str, Any] | None = None
        self.groups = 0
        if self.real:
            import cupy

            self.stream = cupy.cuda.Stream(non_blocking=True)
            self.done = None

    def stage(self, data: np.ndarray) -> Any:
        """Copy a host block to this lane's device buffer (asynchronously on a GPU)."""
        rows = data.shape[0]
        if not self.real:
            return np.ascontiguousarray(data)
        import cupyx

        self.synchronize()  # the lane's previous block is fully consumed: its buffers are free
        if self.pinned is None or self.pinned.shape[0] < rows or self.pinned.shape[1:] != data.shape[1:]:
            self.pinned = cupyx.empty_pinned(data.shape, dtype=data.dtype)
            self.x = self.xp.empty(data.shape, dtype=data.dtype)
        np.copyto(self.pinned[:rows], data)
        x = self.x[:rows]
        x.set(self.pinned[:rows], stream=self.stream)
        return x

    def kernel_stream(self) -> Any:
        """The stream numba.cuda launches on: this lane's cupy stream (0 = default in the simulator)."""
        if not self.real:
            return 0
        from numba import cuda

        return cuda.external_stream(self.stream.ptr)

    def scratch(self, groups: int, classes: int, features: int) -> dict[str, Any]:
        """Per-row-group partials of one block, reallocated when a block has more groups than before."""
        if self.buffers is None or self.groups < groups:
            xp = self.xp
            self.groups = groups
            self.buffers = {
                "count": xp.empty((groups, classes, features)),
                "mean": xp.empty((groups, classes, features)),
                "m2": xp.empty((groups, classes, features)),
                "lo": xp.empty((groups, features)),
                "hi": xp.empty((groups, features)),
                "bad": xp.empty((groups, features), dtype=np.int64),
            }
        return self.buffers

    def wait_for(self, event: Any) -> None:
        if self.real and event is not None:
            self.stream.wait_event(event)

    def record(self) -> Any:
        return self.stream.record() if self.real else None

    def synchronize(self) -> None:
        if self.real:
            self.stream.synchronize()


def _device_view(x: Any, view: Any) -> Any:
    """Apply a host-side dtype view (uint16/uint32 reinterpretation) to a device array."""
    probe = view(np.empty((1, 1), dtype=x.dtype))
    return x if probe.dtype == x.dtype else x.view(probe.dtype)


def make_pass(plan: StatsPlan, device: Device) -> CpuStatsPass | GpuStatsPass:
    """The statistics chunk pass for a device."""
    return GpuStatsPass(plan, device) if device.is_gpu else CpuStatsPass(plan)
