"""One `Device` for every stage: resolved once from "auto | cpu | cuda | cuda:N", then passed along.

A GPU stage needs up to three pieces: torch with CUDA (extraction's forward pass), cupy (the one
GPU array library: solver products on cuBLAS, and the buffers the statistics kernels read) and
numba.cuda (the statistics kernels, launched on cupy arrays through the CUDA array interface).
cupy was chosen over numba's own device arrays because the solver needs cuBLAS GEMM/GEMV, which
numba does not offer; one array library means the statistics and the solver share buffers, streams
and the memory pool.

`resolve_device` checks nothing heavy: torch is imported only when extraction asks for it. Each
stage calls `Device.for_stage(...)` with the pieces it needs; with "auto", a missing piece falls
back to the CPU and says so once per Device (so once per command); an explicit "cuda" with a
missing piece is an InputError naming the piece and how to install it. Under numba's CUDA
simulator (`NUMBA_ENABLE_CUDASIM=1`) an explicit "cuda" device runs the GPU code paths with numpy
standing in for cupy, which is how CI tests them without a GPU.

On the CPU, BLAS threads are chosen per operation (`blas_threads_for`: one thread for small
operations, every thread the user allows on the idle cores for large ones), never above the user's
own setting (OPENBLAS_NUM_THREADS & co., threadpoolctl limits): `blas_threads`, `blas_allowance`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurosel.errors import InputError

log = logging.getLogger("neurosel")

INSTALL = {
    "torch": "install a CUDA build of torch that matches your driver",
    "cupy": "pip install 'neurosel[gpu]' (cupy-cuda12x) or 'neurosel[gpu-cuda13]'",
    "numba": "pip install 'neurosel[gpu]' (numba-cuda)",
}
STAGE_PIECES = {"extract": ("torch",), "stats": ("cupy", "numba"), "solver": ("cupy",)}


@dataclass(eq=False)
class Device:
    """Where a stage computes: `kind` "cpu" or "cuda", the GPU `index`, and whether the CUDA
    simulator stands in for a GPU. `xp` is the array module (numpy or cupy), `torch` the torch
    device. Compare devices by `name`."""

    kind: str
    index: int = 0
    simulated: bool = False
    requested: str = "cpu"
    _said: set[str] = field(default_factory=set, repr=False)

    @property
    def name(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    def __str__(self) -> str:
        return self.name + (" (CUDA simulator)" if self.simulated else "")

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"

    @property
    def worker_spec(self) -> str:
        """This device as a Dask worker receives it: "cpu" or "cuda", without the index (with
        dask-cuda each worker sees its one GPU as cuda:0). Each worker resolves it for itself with
        `resolve_device(spec).for_stage(...)`; it is the only way a device reaches a worker."""
        return self.kind

    @property
    def xp(self) -> Any:
        """The array module of this device: cupy on a GPU, numpy on the CPU and in the simulator."""
        if self.kind == "cpu" or self.simulated:
            return np
        import cupy

        return cupy

    @property
    def torch(self) -> Any:
        """The torch.device (imports torch: extraction only)."""
        import torch

        return torch.device(self.name)

    def activate(self) -> Any:
        """Context in which cupy allocations and numba.cuda launches go to this GPU (both libraries
        keep their own notion of the current device, so both are set)."""
        import contextlib

        stack = contextlib.ExitStack()
        if self.kind == "cpu" or self.simulated:
            return stack
        import cupy

        stack.enter_context(cupy.cuda.Device(self.index))
        try:
            from numba import cuda

            stack.enter_context(cuda.gpus[self.index])
        except (ImportError, IndexError):  # no numba-cuda: only the solver (cupy) runs here
            pass
        return stack

    def for_stage(self, stage: str) -> Device:
        """This device if it has every piece `stage` needs, else the CPU (auto) or an InputError."""
        if self.kind == "cpu":
            return self
        missing = [p for p in STAGE_PIECES[stage] if not _has(p, self.simulated)]
        if not missing:
            return self
        if self.requested != "auto":
            piece = missing[0]
            raise InputError(
                f"device {self.requested!r}: {stage} needs {piece} with CUDA, which is not usable "
                f"here; {INSTALL[piece]}, or use --device cpu"
            )
        message = f"device=auto: {', '.join(missing)} not usable, so {stage} runs on the CPU"
        if message not in self._said:
            self._said.add(message)
            log.info(message)
        return CPU


CPU = Device("cpu")


def array_module(a: Any) -> Any:
    """numpy or cupy, whichever owns the array `a` (the array-level twin of `Device.xp`)."""
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_host(a: Any, dtype: Any = None) -> np.ndarray:
    """A device array as numpy, in `dtype` when given (a no-op for numpy arrays of that dtype)."""
    return np.asarray(a.get() if hasattr(a, "get") else a, dtype=dtype)


def resolve_device(spec: str | Device = "auto") -> Device:
    """The Device for "auto", "cpu", "cuda" or "cuda:N" (a Device passes through unchanged).

    "auto" is the first GPU when one is visible (never the CUDA simulator), else the CPU; the choice
    is logged once. Missing GPU pieces are checked per stage by `Device.for_stage`."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"device {spec!r}: use auto, cpu, cuda or cuda:N")
    text = spec.strip().lower()
    if text == "cpu":
        return Device("cpu", requested=text)
    if text == "auto":
        if _simulator() or _gpu_count() == 0:
            log.info("device=auto chose cpu (no GPU visible)")
            return Device("cpu", requested="auto")
        device = Device("cuda", 0, requested="auto")
        log.info("device=auto chose %s", device)
        return device
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise InputError(f"device {spec!r}: unknown; use auto, cpu, cuda or cuda:N")
    number = int(index or 0)
    if _simulator():
        if number != 0:
            raise InputError(f"device {spec!r}: the CUDA simulator has one device; use cuda or cuda:0")
        return Device("cuda", 0, simulated=True, requested=text)
    count = _gpu_count()
    if number >= count:
        seen = f"{count} GPU{'s' if count != 1 else ''}" if count else "no GPU"
        raise InputError(f"device {spec!r}: {seen} visible; use cpu, auto or cuda:0..{max(count - 1, 0)}")
    return Device("cuda", number, requested=text)


def _simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _gpu_count() -> int:
    """GPUs visible to the CUDA driver, asked through numba, else cupy, else the driver library
    itself (so that "auto" finds a GPU on a torch-only install without importing torch)."""
    try:
        from numba import cuda

        if cuda.is_available():
            return len(cuda.gpus)
    except Exception:  # numba-cuda missing or the driver unusable
        pass
    if importlib.util.find_spec("cupy") is not None:
        try:
            return int(importlib.import_module("cupy").cuda.runtime.getDeviceCount())
        except Exception:
            pass
    return _driver_count()


def _driver_count() -> int:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("cuda")
    if name is None:
        return 0
    try:
        lib = ctypes.CDLL(name)
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except OSError:
        return 0


def _has(piece: str, simulated: bool) -> bool:
    """Whether a GPU piece works here (under the simulator: numba's simulator stands in for all
    but torch)."""
    if simulated:
        return piece != "torch"
    try:
        if piece == "torch":
            import torch

            return torch.cuda.is_available()
        if piece == "cupy":
            return importlib.import_module("cupy").cuda.runtime.getDeviceCount() > 0
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


# an operation below this many flops runs on one BLAS thread (`blas_threads_for`); measured on 2 idle
# cores, Cholesky one thread / two: 500 neurons (4e7 flops) 2.0 / 4.1 ms, 1,000 (3e8) 16.7 / 10.9 ms,
# 2,000 (3e9) 77 / 45 ms (docs/importance.md)
PARALLEL_FLOPS = 1e9

_THREADPOOLS = None
_OWN = threading.local()  # .ceiling: the user's allowance when our outermost limit began; .now: our limit


def single_threaded_blas() -> Any:
    """A context in which BLAS/LAPACK run on one thread: for many small products and factorisations
    (the solver's inner problems, hundreds of small classifier fits), where a second thread only
    waits (measured: the Amazon path 2.2 s with 2 BLAS threads, 0.9 s with 1, on a 2-core machine).
    Large operations inside it opt back in with `blas_threads_for`."""
    return blas_threads(1)


def blas_threads_for(flops: float) -> Any:
    """A context sized to one operation of `flops` floating-point operations: one BLAS thread below
    PARALLEL_FLOPS (~20 ms on one core: below it, waking and joining a second thread, which then
    spins on and slows the small operations after it, costs about what it saves), else every
    thread the user allows on the cores no other work is running on (`idle_cores`: a BLAS thread
    sharing a core with another process holds up all the others at the operation's end: an outside
    check measured a path 4.3× slower on 2 threads than on 1 with one other process busy on 2 cores)."""
    if flops < PARALLEL_FLOPS:
        return blas_threads(1)
    return blas_threads(idle_cores())


def idle_cores() -> int:
    """The cores this process may use that no other runnable thread is asking for now, at least 1:
    from the kernel's count of runnable threads (/proc/loadavg, less the one asking; our own BLAS
    threads still spinning from a last call count too: conservative); every core where that count
    is not available."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, cores - (runnable - 1)))


@contextlib.contextmanager
def blas_threads(limit: int | None = None) -> Iterator[int]:
    """A context in which BLAS/LAPACK run on `limit` threads (default: all the user allows), also
    inside a `single_threaded_blas` block; yields the count. The user's setting is an upper bound,
    never raised: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS or an enclosing
    threadpoolctl limit, as the pools report it when the outermost of these contexts begins (inside
    one, the pools report our own limit, so the allowance read then is kept for the nested ones).
    Each change of the limit is logged at debug level (what a test observes inside a solve)."""
    outer_ceiling, outer_now = getattr(_OWN, "ceiling", None), getattr(_OWN, "now", None)
    ceiling = outer_ceiling if outer_ceiling is not None else blas_allowance()
    threads = max(1, min(limit or ceiling, ceiling))
    _OWN.ceiling, _OWN.now = ceiling, threads
    try:
        if threads == outer_now:  # already so: a limit call costs ~0.1 ms, and the small ops are many
            yield threads
        else:
            log.debug("BLAS on %d thread(s) (the user allows %d)", threads, ceiling)
            with _controller().limit(limits=threads, user_api="blas"):
                yield threads
    finally:
        _OWN.ceiling, _OWN.now = outer_ceiling, outer_now


def blas_allowance() -> int:
    """The BLAS threads the user allows here: the fewest any loaded BLAS pool is set to (one per core
    unless an environment variable or a threadpoolctl limit says otherwise); inside a `blas_threads`
    block, the allowance read when the outermost began."""
    ceiling = getattr(_OWN, "ceiling", None)
    if ceiling is not None:
        return ceiling
    pools = _controller().info()
    counts = [int(pool.get("num_threads") or 1) for pool in pools if pool["user_api"] == "blas"]
    return max(1, min(counts, default=os.cpu_count() or 1))


def _controller() -> Any:
    """The threadpoolctl controller of the loaded BLAS/OpenMP pools (the library scan is done once)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS
