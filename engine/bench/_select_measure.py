"""bench select on one dataset: the engine's runs, then every solver to the engine's objective, as one
report."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from neurosel.bench._harness import environment
from neurosel.bench._select_data import Dataset, load_problem, store_stats
from neurosel.bench._select_engine import (
    EngineRun,
    baseline_path,
    baseline_report,
    engine_run,
    engine_summary,
    warm_up,
)
from neurosel.bench._select_objective import equal_objective
from neurosel.bench._select_peers import solver_or_reason
from neurosel.bench._select_report import correctness, parameters, ratios, targets
from neurosel.bench._select_threads import thread_study


def path_indices(n_lambdas: int, stride: int) -> list[int]:
    """Every stride-th λ counting back from the last (always included), in path order."""
    return sorted(range(n_lambdas - 1, -1, -stride))


def measure(
    args: argparse.Namespace, dataset: Dataset, solvers: list[str], tasks: list[str], tols: list[float]
) -> dict[str, Any]:
    """The engine's runs and every solver's time to its objective on one dataset: the report."""
    store = dataset.store
    warmup = warm_up(args.scratch_dir, args.device)
    stats, stats_seconds = store_stats(store)
    runs: dict[str, EngineRun] = {}
    if "path" in tasks or "single" in tasks:  # the single λ is the path's last
        runs["path"] = engine_run(store, args.n_lambdas, args)
    baseline = baseline_path(args, store) if "path" in runs else None
    if "single" in tasks:
        runs["single"] = engine_run(store, 2, args)
    if "support" in tasks:
        target = min(args.target_support, len(store.layers) * store.hidden)
        runs["support"] = engine_run(store, args.n_lambdas, args, target_support=target)
    study = thread_study(store, args) if "path" in tasks and args.thread_study else None
    problem = load_problem(store, stats)  # after the engine, whose in-core copy is freed by then
    engine_results = {task: engine_summary(r, problem, dataset, task) for task, r in runs.items()}
    if "single" in runs:
        same = bool(np.isclose(runs["single"].lambdas[-1], runs["path"].lambdas[-1], rtol=1e-12))
        engine_results["single"]["lambda_matches_path"] = same
    references: dict[str, tuple[np.ndarray, np.ndarray, list[int] | None]] = {}
    for task, r in runs.items():
        objectives = np.array(engine_results[task]["objective"])
        if task == "single":
            references[task] = (r.lambdas[-1:], objectives[-1:], None)
        else:  # path and support: every stride-th λ of the engine's path
            indices = path_indices(len(r.lambdas), args.path_stride)
            references[task] = (r.lambdas[indices], objectives[indices], indices)
    results: dict[str, Any] = {}
    for name in solvers:
        solver = solver_or_reason(name, problem, args)
        if isinstance(solver, str):
            results[name] = {"status": solver}
            continue
        results[name] = {"settings": solver.settings, "warm_start": solver.warm}
        for task in tasks:
            task_lambdas, reference, indices = references[task]
            results[name][task] = equal_objective(solver, problem, task_lambdas, reference, tols, args)
            if indices is not None:
                full = len(indices) == len(runs[task].lambdas)
                results[name][task].update(lambda_indices=indices, full_path=full)
    return {
        "environment": environment(args.device),
        "parameters": parameters(args, dataset, problem, solvers, tasks, tols),
        "timings": {
            "warmup_seconds": warmup,
            "stats_seconds": stats_seconds,
            "load_seconds": problem.load_seconds,
        },
        "engine": engine_results,
        "solvers": results,
        "ratios": ratios(engine_results, results),
        "targets": targets(engine_results, results),
        "correctness": correctness(engine_results, results, args.rtol),
        **({"thread_study": study} if study is not None else {}),
        **baseline_report(baseline, engine_results.get("path"), problem, dataset, args),
    }
