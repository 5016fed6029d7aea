"""Classifier fits on every core: this process and worker processes take jobs from one list.

A transfer's dense classifiers are independent scikit-learn fits. A binary single-source job has
44 of them: 5.3 s on one core, half of the job. On threads they contend for the GIL (scikit-learn's
lbfgs is Python between its BLAS calls), and were slower than one after another (docs/benchmarks.md,
session 9). So they run in worker processes instead.

Where the workers come from:
- Each is a fresh interpreter running engine/crossdomain/_fit_worker.py, which reads fits from a
  pipe and writes back their results. Forking this process instead would be unsafe once it has used
  OpenMP: libgomp hangs in a child forked after the parent used it. multiprocessing's spawn and
  forkserver would import the user's main script again in every worker, and so run an unguarded
  script's work once more.
- `start()` begins the workers in the background when a transfer begins, so their start-up (about
  2 s of one core: importing scikit-learn) overlaps the loading of the stores and the path.
- The workers are kept for later transfers in this process, and end with it (their input closes).

How work is shared: the workers take the largest jobs first while this process takes the smallest,
so neither waits long at the end. With one core, or jobs too small to repay the start-up,
everything runs here.

Same numbers wherever a fit runs: each fit runs on one BLAS thread, on the same bytes (its data is
made here and sent), so the models are those of the fits one after another, bit for bit
(tests/crossdomain/test_fit_pool.py). Warnings a fit raises in a worker are raised again here.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures as cf
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from neurosel.devices import blas_allowance, single_threaded_blas

log = logging.getLogger(__name__)

# Fits reading fewer values than this in all (rows × columns summed over the jobs) run here: the
# workers' start-up (about 2 s of one core) would cost more than sharing them saves.
MIN_VALUES = 5_000_000
START_SECONDS = 120.0  # a worker that has not answered by then is not waited for
STOP_SECONDS = 0.2  # a worker that has not ended this long after its input closed is killed
MAX_WORKERS = 7  # a job's ~40 fits gain little from more; each worker holds scikit-learn (~150 MB)

_workers: list[_Worker] = []
_lock = threading.Lock()
_ready = threading.Event()  # set once every worker has answered


HEADER = struct.Struct("<Q")  # the byte length of the pickle that follows (the worker protocol)


def send(stream: BinaryIO, message: Any) -> None:
    """Write one framed pickle and flush."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """Read one framed pickle; EOFError when the stream has ended."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError("the stream ended")
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("the stream ended inside a message")
    return pickle.loads(payload)


class WorkerGone(RuntimeError):
    """A worker process ended or stopped answering."""


@dataclass(frozen=True)
class FitJob:
    """One classifier fit: `estimator(data(), y, kind)`. `estimator` must pickle (a module-level
    function or a partial of one); `data` is called in this process, when the fit is handed out;
    `values` (rows × columns read) orders the work."""

    estimator: Callable[[np.ndarray, np.ndarray, str], Any]
    data: Callable[[], np.ndarray]
    y: np.ndarray
    kind: str
    values: int

    def run(self) -> Any:
        with single_threaded_blas():
            return self.estimator(self.data(), self.y, self.kind)


def worker_count() -> int:
    """Worker processes beside this one: one per core this process may use, less its own, at most
    MAX_WORKERS. The cores are those of its CPU affinity, and no more than the threads the user allows
    BLAS (OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1 or a threadpoolctl limit of 1: no workers), so a
    user who keeps a job to one core gets one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(cores, blas_allowance(), MAX_WORKERS + 1) - 1)


def start(values: int) -> None:
    """Start the workers in the background for fits that read `values` values in all, when there is
    a core to spare and the fits are large enough to repay the start-up; a no-op otherwise, or when
    they are up. Returns at once: `run` fits here until the workers are ready."""
    if _workers or values < MIN_VALUES:  # up already (checked again under the lock), or not worth it
        return
    count = worker_count()
    if count == 0:
        return
    with _lock:
        if _workers:
            return
        try:
            _workers.extend(_Worker() for _ in range(count))
        except OSError as error:  # no interpreter to start here: fit in this process
            log.debug("classifier workers not started (%s): fits run in this process", error)
            _stop_all()
            return
        _ready.clear()
        threading.Thread(target=_warm, args=(list(_workers),), name="neurosel-fit-start", daemon=True).start()


def _warm(workers: list[_Worker]) -> None:
    """Wait for every worker's first answer (it has imported scikit-learn) and say they are ready."""
    try:
        for future in [w.submit(_pid, None, None, None) for w in workers]:
            future.result(timeout=START_SECONDS)
        _ready.set()
    except Exception as error:  # the workers cannot start here: fits stay in this process
        log.debug("classifier workers did not start (%s): fits run in this process", error)
        with _lock:
            _stop_all()


def run(jobs: dict[Any, FitJob], on_done: Callable[[], None]) -> dict[Any, Any]:
    """Every job's result by key; `on_done()` after each (progress bars). Shared with the workers
    when they are ready and the jobs are large enough, else run here in order."""
    values = sum(job.values for job in jobs.values())
    if len(jobs) < 2 or values < MIN_VALUES:
        return _here(jobs, on_done)
    start(values)  # not started with the transfer (its fits were saved): from now, for the rest
    workers = list(_workers)
    if not workers:
        return _here(jobs, on_done)
    order = collections.deque(sorted(jobs, key=lambda key: jobs[key].values, reverse=True))
    done: dict[Any, Any] = {}
    running: dict[cf.Future, tuple[Any, _Worker]] = {}
    try:
        while order or running:
            busy = {worker for _, worker in running.values()}
            idle = [w for w in workers if w not in busy]
            while order and idle and _ready.is_set():  # the largest to the workers
                key, worker = order.popleft(), idle.pop()
                job = jobs[key]
                running[worker.submit(job.estimator, job.data(), job.y, job.kind)] = (key, worker)
            if order:  # the smallest here, meanwhile (all of them until the workers are ready)
                key = order.pop()
                done[key] = jobs[key].run()
                on_done()
            else:
                cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in [f for f in running if f.done()]:
                key, _ = running.pop(future)
                done[key] = _received(future.result())
                on_done()
    except WorkerGone as error:  # finish here, and stop using the workers
        log.warning("a classifier worker process ended (%s); fitting the rest in this process", error)
        with _lock:
            _stop_all()
        rest = {key: jobs[key] for key in jobs if key not in done}
        done |= _here(rest, on_done)
    return {key: done[key] for key in jobs}


def _here(jobs: dict[Any, FitJob], on_done: Callable[[], None]) -> dict[Any, Any]:
    done = {}
    for key, job in jobs.items():
        done[key] = job.run()
        on_done()
    return done


def _received(answer: tuple[Any, list]) -> Any:
    """A worker's result, its warnings raised again here."""
    result, raised = answer
    for message, category in raised:
        warnings.warn(message, category, stacklevel=2)
    return result


def _pid(*_: Any) -> int:
    return os.getpid()


class _Worker:
    """One worker process and the thread that talks to it: `submit` queues a fit and returns a
    Future of (result, warnings); a fit's own exception is the Future's; WorkerGone when the process
    ends or its answer cannot be read."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "neurosel.crossdomain._fit_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._talk, name="neurosel-fit-worker", daemon=True)
        self.thread.start()

    def submit(self, estimator: Callable, data: Any, y: Any, kind: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        self.requests.put((future, (estimator, data, y, kind)))
        return future

    def _talk(self) -> None:
        while (item := self.requests.get()) is not None:
            future, request = item
            try:
                send(self.process.stdin, request)
                status, value, raised = receive(self.process.stdout)
            except (OSError, EOFError, pickle.PickleError) as error:
                future.set_exception(WorkerGone(f"{type(error).__name__}: {error}"))
                continue
            if status == "ok":
                future.set_result((value, raised))
            else:
                future.set_exception(value)

    def stop(self) -> None:
        """End the process and the thread: its input closes, and a worker still starting or fitting
        is killed (nothing waits for its result), so that stopping takes no time."""
        self.requests.put(None)
        try:
            self.process.stdin.close()
            self.process.wait(timeout=STOP_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _stop_all() -> None:
    """Stop every worker (called with `_lock` held)."""
    while _workers:
        _workers.pop().stop()
    _ready.clear()


@atexit.register
def _at_exit() -> None:
    with _lock:
        _stop_all()
