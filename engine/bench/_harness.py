"""What every benchmark shares: timing, the environment block, report writing, default folders and
cached synthetic stores.

Default folders are relative to the current directory, so that `neurosel bench NAME` run from a
checkout writes where the repository keeps its results: reports to `bench/results/` (RESULTS_DIR),
stores built for reuse to `bench/scratch/` (SCRATCH_DIR), and datasets are read from the first
`shared/datasets` folder found in the current directory or one of its parents (else
`../shared/datasets`); every benchmark takes --out-dir, --scratch-dir and --data-dir to choose others.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import re
import shutil
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import torch

from neurosel.errors import InputError
from neurosel.store import ActivationStore, open_store

RESULTS_DIR = Path("bench") / "results"
SCRATCH_DIR = Path("bench") / "scratch"
MB = 2**20
SAMPLE_SECONDS = 0.005
HOST = torch.device("cpu")
LIBRARIES = ("transformers", "zarr", "scikit-learn", "skglm", "celer", "glum", "numba", "threadpoolctl")

T = TypeVar("T")


def add_synthetic_store_options(p: argparse.ArgumentParser) -> None:
    """--out-dir, --scratch-dir, --keep/--no-keep, --rebuild: where a benchmark writes its report and
    keeps the synthetic stores it builds for the next run."""
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="reports (JSON)")
    p.add_argument("--scratch-dir", type=Path, default=SCRATCH_DIR, help="synthetic stores")
    p.add_argument(
        "--keep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the synthetic stores for the next run (default: keep)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the synthetic stores even if present")


def default_data_dir() -> Path:
    """The first `shared/datasets` folder in the current directory or above it, else ../shared/datasets."""
    here = Path.cwd()
    for parent in (here, *here.parents):
        candidate = parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "datasets"


# --- timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One timed call: wall seconds, peak host memory above the start, peak GPU memory (CUDA only)."""

    seconds: float
    host_peak_mb: float
    gpu_peak_mb: float | None


def measure(fn: Callable[[], None], device: torch.device = HOST) -> Measurement:
    """Run fn once: wall time (queued GPU work included), peak host RSS above the start, peak GPU
    memory allocated."""
    release_freed_memory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with RssSampler() as rss:
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds = time.perf_counter() - start
    gpu = torch.cuda.max_memory_allocated(device) / MB if device.type == "cuda" else None
    return Measurement(seconds, rss.peak_delta / MB, gpu)


def timed(fn: Callable[[], T], device: torch.device = HOST) -> tuple[Measurement, T]:
    """`measure` of fn(), keeping what fn returns."""
    box: list[T] = []
    measurement = measure(lambda: box.append(fn()), device)
    return measurement, box[0]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so the clock reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS deltas start clean."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_rss() -> int:
    """Resident set size of this process in bytes, from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Peak resident memory above the level at entry.

    Where Linux allows it, the kernel's own high-water mark (VmHWM), reset at entry through
    /proc/self/clear_refs: exact, and nothing runs beside the code measured. Elsewhere a background
    thread samples every SAMPLE_SECONDS; that thread wakes 200 times a second and contends for the
    GIL with reader threads (a statistics pass timed 0.242 s sampled against 0.207 s unsampled,
    medians of 7 on this 2-core VM), so timings taken under it are pessimistic."""

    def __enter__(self) -> RssSampler:
        self.base = self.peak = read_rss()
        self.thread = None
        if _reset_high_water_mark():
            return self
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, read_rss())

    def __exit__(self, *exc: object) -> None:
        if self.thread is None:
            self.peak = max(self.peak, _high_water_mark())
            return
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, read_rss())

    @property
    def peak_delta(self) -> int:
        return self.peak - self.base


def _reset_high_water_mark() -> bool:
    """Reset this process's peak RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return _high_water_mark() > 0
    except OSError:
        return False


def _high_water_mark() -> int:
    """This process's peak RSS since the last reset, in bytes (VmHWM in /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# --- the environment block ----------------------------------------------------------------------


def environment(device: torch.device | str = HOST) -> dict[str, Any]:
    """Library versions, threads and the hardware the numbers come from: host, CPU, torch and numba
    threads, the BLAS and OpenMP pools loaded (threadpoolctl), the device and its name."""
    import numba
    import numpy as np
    from threadpoolctl import threadpool_info

    import neurosel

    device = torch.device(device)
    cpu = cpu_name()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "neurosel": neurosel.__version__,
        "device": str(device),
        "device_name": gpu_name(device) if device.type == "cuda" else cpu,
        "cpu_name": cpu,
        "cuda": cuda_version() if device.type == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": threading_layer(),
    }
    for package in LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            env[package] = version(package)
    env["blas"] = [  # BLAS and OpenMP pools as the run ran (bench select --threads pins them)
        {k: pool.get(k) for k in ("internal_api", "num_threads", "version", "prefix")}
        for pool in threadpool_info()
    ]
    return env


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def gpu_name(device: torch.device) -> str:
    """The GPU's name: torch's, else numba's ('simulator' under NUMBA_ENABLE_CUDASIM)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    from numba import cuda

    name = getattr(cuda.current_context().device, "name", "simulator")
    return name.decode() if isinstance(name, bytes) else name


def cuda_version() -> str | None:
    """The CUDA version torch was built with, else numba's runtime."""
    if torch.version.cuda:
        return torch.version.cuda
    with contextlib.suppress(Exception):
        from numba import cuda

        return ".".join(map(str, cuda.runtime.get_version()))
    return None


def threading_layer() -> str | None:
    """numba's CPU threading layer, once a parallel kernel has run (None if none has)."""
    import numba

    with contextlib.suppress(ValueError):
        return numba.threading_layer()
    return None


# --- reports ------------------------------------------------------------------------------------


def write_report(report: dict[str, Any], out_dir: Path, prefix: str, device_type: str) -> Path:
    """Write a benchmark report as out_dir/<prefix>_<device>_<gpu name or hostname>.json (folders
    made as needed); the path written."""
    name = report["environment"]["device_name"] if device_type == "cuda" else socket.gethostname()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{prefix}_{device_type}_{slug}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


# --- cached stores ------------------------------------------------------------------------------


def cached_store(
    path: Path, shape: tuple[int, int, int], rebuild: bool, build: Callable[[Path], ActivationStore]
) -> tuple[ActivationStore, float | None]:
    """The complete store of `shape` at `path`, reused unless `rebuild`; else built there by `build`.
    Also the seconds the build took (None: reused)."""
    if path.exists() and not rebuild:
        with contextlib.suppress(InputError):
            found = open_store(path)
            if found.complete and found.shape == shape:
                return found, None
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = build(path)
    seconds = time.perf_counter() - started
    print(f"built {path} in {seconds:.1f} s", file=sys.stderr)
    return store, seconds


def repeated(fn: Callable[[], object], repeats: int) -> dict[str, Any]:
    """fn run `repeats` times: the median wall seconds and every run's."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "seconds_all": seconds}
