"""bench select's thread study: the engine's path at its default threads against the same path on one
thread, on an idle machine and with one other process busy.

Default settings are what a user gets, so they must never lose to one thread: the engine runs small
operations on one BLAS thread and only large passes and factorisations on every thread the user
allows (neurosel.devices.blas_threads_for). "One thread" pins every BLAS and OpenMP pool
(threadpoolctl) and numba to 1; "default" changes nothing. "Busy" starts one process spinning on a
core (`python -c "while True: pass"`) for the timed runs and stops it after. The two settings
alternate run by run, so drift in a shared machine's load falls on both; the median of --repeats
counts, and the ratio default / one thread (≤ 1: the default is not slower) is what is read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from neurosel.bench._select_engine import engine_run
from neurosel.devices import idle_cores
from neurosel.store import ActivationStore

SPIN = "while True: pass"  # the busy process: one core's worth of work, no memory traffic
NOT_SLOWER = 1.1  # default / one thread at most this (timing noise on a shared machine)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Every BLAS/OpenMP pool and numba on one thread."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        numba.set_num_threads(before)


@contextlib.contextmanager
def busy_process(busy: bool) -> Iterator[None]:
    """One other process spinning on a core while the block runs (when `busy`)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def thread_study(store: ActivationStore, args: argparse.Namespace) -> dict[str, Any]:
    """The path task's seconds at one thread and at the defaults, idle and busy, with their ratios;
    or why it did not run (--threads pins every pool for the whole run, the defaults included)."""
    if args.threads != 0:
        return {"status": f"not run: --threads {args.threads} pins every pool (run with --threads 0)"}
    once = argparse.Namespace(**{**vars(args), "repeats": 1})
    out: dict[str, Any] = {
        "status": "ran",
        "repeats": args.repeats,
        "busy_process": f'{sys.executable} -c "{SPIN}"',
        "one_thread": "threadpoolctl threadpool_limits(1) on every pool, numba.set_num_threads(1)",
        "default": "nothing set: the libraries' defaults and the engine's own per-operation threads",
        "not_slower_within": NOT_SLOWER,
        "load_average_1min_at_start": os.getloadavg()[0],  # on a shared machine, "idle" is only ours
        "idle_cores_at_start": idle_cores(),
    }
    for load in ("idle", "busy"):
        seconds: dict[str, list[float]] = {"one_thread": [], "default": []}
        with busy_process(load == "busy"):
            for _ in range(args.repeats):
                with one_thread():
                    seconds["one_thread"].append(engine_run(store, args.n_lambdas, once).summary["seconds"])
                seconds["default"].append(engine_run(store, args.n_lambdas, once).summary["seconds"])
        one, default = (statistics.median(seconds[k]) for k in ("one_thread", "default"))
        out[load] = {
            "one_thread_seconds": one,
            "default_seconds": default,
            "seconds_all": seconds,
            "default_vs_one_thread": default / one,
            "not_slower": default <= NOT_SLOWER * one,
        }
    return out


def print_study(study: dict[str, Any]) -> None:
    """One line per load: the two times and their ratio."""
    if study.get("status") != "ran":
        print(f"thread study: {study.get('status')}")
        return
    for load in ("idle", "busy"):
        s = study[load]
        verdict = "ok" if s["not_slower"] else "SLOWER"
        print(
            f"thread study, {load:<4}: one thread {s['one_thread_seconds']:7.2f} s, default "
            f"{s['default_seconds']:7.2f} s: default / one thread {s['default_vs_one_thread']:.2f} "
            f"({verdict})"
        )
