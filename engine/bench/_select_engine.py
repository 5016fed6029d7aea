"""bench select's engine runs: neurosel.importance timed on the store (and --baseline's path solver),
with their objectives computed like every solver's."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import timed
from neurosel.bench._select_data import SEED, Dataset, Problem
from neurosel.bench._select_objective import objective
from neurosel.bench.baseline import load_baseline
from neurosel.store import ActivationStore

ENGINE_META = ("backend", "design", "load_seconds", "solve_seconds", "total_passes", "classes")


def warm_up(scratch: Path, device: str, solver: Callable | None = None) -> float:
    """neurosel.importance on a tiny store, so that kernel compilation (numba) is not timed;
    `solver`: a baseline path solver to warm up instead (neurosel.bench.baseline)."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((64, 1, 8))
    path = scratch / f"select-warmup-{os.getpid()}.zarr"
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        store = neurosel.store_from_array(path, x, labels=(x[:, 0, 0] > 0).astype(np.int64), dtype="float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            neurosel.importance(store, n_lambdas=3, device=device, recompute=True, save=False, solver=solver)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return time.perf_counter() - started


@dataclass
class EngineRun:
    """What neurosel.importance returned (the last of --repeats runs), and the timings of all of them."""

    summary: dict[str, Any]
    lambdas: np.ndarray
    coef: np.ndarray  # (λs, p)
    intercept: np.ndarray  # (λs,)
    ranking: np.ndarray


def engine_run(
    store: ActivationStore,
    n_lambdas: int,
    args: argparse.Namespace,
    target_support: int | None = None,
    solver: Callable | None = None,
) -> EngineRun:
    """neurosel.importance --repeats times, recomputed and not saved: the median time, passes, certificates.

    With `target_support`, the path stops at the first λ whose support reaches it (the support task);
    `solver`: the path solver neurosel.importance runs (None: its own)."""
    runs = []
    for _ in range(args.repeats):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            measurement, imp = timed(
                lambda: neurosel.importance(
                    store,
                    method="l1-logistic",
                    n_lambdas=n_lambdas,
                    lambda_ratio=args.lambda_ratio,
                    tol=args.tol,
                    target_support=target_support,
                    device=args.device,
                    recompute=True,
                    save=False,
                    solver=solver,
                )
            )
        runs.append(measurement)
    lambdas = np.asarray(imp.lambdas, dtype=np.float64)
    coef = np.asarray(imp.coef, dtype=np.float64).reshape(len(lambdas), -1)
    intercept = np.asarray(imp.intercept, dtype=np.float64).reshape(len(lambdas), -1)[:, 0]
    gaps = np.asarray(imp.gaps, dtype=np.float64)
    meta = imp.meta
    summary = {
        "seconds": statistics.median(r.seconds for r in runs),
        "seconds_all": [r.seconds for r in runs],
        "host_peak_mb": max(r.host_peak_mb for r in runs),
        "passes": int(np.asarray(imp.passes)[-1]),
        "passes_cumulative": np.asarray(imp.passes).tolist(),
        "lambdas": lambdas.tolist(),
        "gaps": gaps.tolist(),
        "gap_tolerance": args.tol * np.log(2.0),
        "certified": int(np.sum(gaps <= args.tol * np.log(2.0))),
        "converged": bool(meta.get("converged", True)),
        "support_sizes": np.count_nonzero(coef, axis=1).tolist(),
        "warnings": [str(w.message) for w in got],
        "meta": {k: meta[k] for k in ENGINE_META if k in meta},
    }
    if target_support is not None:
        summary["target_support"] = target_support
        summary["reached_target"] = bool(summary["support_sizes"][-1] >= target_support)
    if getattr(imp, "objective", None) is not None:
        summary["objective_reported"] = np.asarray(imp.objective, dtype=np.float64).ravel().tolist()
    return EngineRun(summary, lambdas, coef, intercept, np.asarray(imp.ranking))


def baseline_path(args: argparse.Namespace, store: ActivationStore) -> EngineRun | str | None:
    """The path task with --baseline's solver (--baseline-repeats runs, after the engine's, in this
    process), or why it did not run; None when no baseline was asked for."""
    if args.baseline is None or args.baseline.lower() == "none":
        return None
    baseline = load_baseline(args.baseline, args.scratch_dir)
    if isinstance(baseline, str):
        return baseline
    warm_up(args.scratch_dir, args.device, baseline.sparse_path)
    repeats = argparse.Namespace(**{**vars(args), "repeats": args.baseline_repeats})
    return engine_run(store, args.n_lambdas, repeats, solver=baseline.sparse_path)


def baseline_report(
    baseline: EngineRun | str | None,
    path: dict[str, Any] | None,
    problem: Problem,
    dataset: Dataset,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """{"baseline": the baseline's path summary, its time over the engine's and the objectives' largest
    relative difference}, or {} without a baseline."""
    if baseline is None or path is None:
        return {}
    if isinstance(baseline, str):
        return {"baseline": {"commit": args.baseline, "status": baseline}}
    out = {"commit": args.baseline, **engine_summary(baseline, problem, dataset, "path")}
    ours, theirs = np.array(path["objective"]), np.array(out["objective"])
    out["max_abs_rel_objective_diff"] = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    out["baseline_vs_engine"] = out["seconds"] / path["seconds"]
    return {"baseline": out}


def engine_objectives(run: EngineRun, problem: Problem) -> list[float]:
    """The engine's objective at every λ, computed here like every solver's."""
    return [objective(problem, *row) for row in zip(run.lambdas, run.coef, run.intercept, strict=True)]


def engine_summary(run: EngineRun, problem: Problem, dataset: Dataset, task: str) -> dict[str, Any]:
    """An engine run's summary with its objectives; on the synthetic path, the planted neurons'
    share of the top of the ranking."""
    out = {**run.summary, "objective": engine_objectives(run, problem)}
    if dataset.planted is not None and task == "path":
        top = set(run.ranking[: dataset.planted.size].tolist())
        out["planted_in_top"] = len(top & set(dataset.planted.tolist())) / dataset.planted.size
    return out
