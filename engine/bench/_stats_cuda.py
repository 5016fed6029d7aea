"""bench stats on CUDA: the moments and histogram kernels on one device-resident block, against a
device-to-device copy measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import cuda

from neurosel.kernels.histogram import histogram_gpu
from neurosel.kernels.moments import GPU_ROWS_PER_GROUP, gpu_launch, partial_moments_gpu
from neurosel.store import ActivationStore, Encoding, block_rows

D2D_BYTES = 1 << 30  # bytes per device-to-device copy (read once, written once)
CUDA_RUNS = 20


def cuda_kernels(store: ActivationStore, cls: np.ndarray, classes: int, budget: int) -> dict[str, Any]:
    """The moments (and two-class histogram) kernels on one device-resident block, against d2d copy GB/s."""
    array = store.activations
    rows = min(block_rows(array, budget), array.shape[0])
    data = array[:rows].reshape(rows, -1)
    features = data.shape[1]
    enc = Encoding.for_dtype(store.meta["dtype"])
    groups = -(-rows // GPU_ROWS_PER_GROUP)
    grid, threads = gpu_launch(features, groups)
    stream = cuda.stream()
    x = cuda.to_device(enc.values(data), stream=stream)
    d_cls = cuda.to_device(cls[:rows], stream=stream)
    table = cuda.to_device(enc.table, stream=stream)
    parts = [cuda.device_array((groups, classes, features)) for _ in range(3)]
    parts += [cuda.device_array((groups, features)) for _ in range(2)]
    parts.append(cuda.device_array((groups, features), dtype=np.int64))
    moments = partial_moments_gpu[grid, threads, stream]
    seconds = device_seconds(lambda: moments(x, table, d_cls, classes, GPU_ROWS_PER_GROUP, *parts), stream)
    src = cuda.device_array(D2D_BYTES, dtype=np.uint8)
    dst = cuda.device_array(D2D_BYTES, dtype=np.uint8)
    d2d = 2 * D2D_BYTES / device_seconds(lambda: dst.copy_to_device(src, stream=stream), stream) / 1e9
    kernel = data.nbytes / seconds / 1e9
    out = {
        "block_rows": rows,
        "block_bytes": int(data.nbytes),
        "moments_seconds": seconds,
        "moments_gb_per_s": kernel,
        "d2d_gb_per_s": d2d,
        "d2d_bytes": D2D_BYTES,
        "moments_vs_d2d": kernel / d2d,
    }
    if classes == 2:
        shift = enc.key_bits - 16
        hist = cuda.device_array((2, features, 1 << 16), dtype=np.uint32)
        keys_x = cuda.to_device(enc.key_input(data), stream=stream)
        keys = cuda.to_device(enc.keys, stream=stream)
        histogram = histogram_gpu[grid, threads, stream]
        seconds = device_seconds(
            lambda: histogram(keys_x, keys, shift, d_cls, GPU_ROWS_PER_GROUP, hist), stream
        )
        out.update(histogram_seconds=seconds, histogram_gb_per_s=data.nbytes / seconds / 1e9)
    return out


def device_seconds(launch: Callable[[], None], stream: Any) -> float:
    """Median seconds of `launch` on `stream` over CUDA_RUNS, by CUDA events, after one untimed launch."""
    launch()
    stream.synchronize()
    times = []
    for _ in range(CUDA_RUNS):
        start, end = cuda.event(), cuda.event()
        start.record(stream)
        launch()
        end.record(stream)
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)
