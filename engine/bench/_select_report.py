"""bench select's report: the engine's speed-ups over each solver, the targets, the correctness check,
the parameters as run, and the printed summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurosel.bench._select_data import Dataset, Problem
from neurosel.bench._select_threads import print_study

TASKS = ("path", "single", "support")
TARGET_VS_SAGA = 20.0  # path, CPU
TARGET_VS_LIBLINEAR = 5.0  # path, CPU
TARGET_VS_SKGLM = 3.0  # path, CPU, at the engine's default threads


def ratio_entry(engine_seconds: float, solver: dict[str, Any]) -> dict[str, Any]:
    """Solver time / engine time where the solver reached the objective; else the time it spent."""
    if solver["status"] == "reached":
        return {"value": solver["seconds"] / engine_seconds, "reached": True}
    return {"value": None, "reached": False, "spent_vs_engine": solver["spent_seconds"] / engine_seconds}


def ratios(engine_results: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Engine speed-up over each solver, per task."""
    out = {}
    for name, r in results.items():
        for task, engine_task in engine_results.items():
            if task in r:
                out[f"{task}_vs_{name}"] = ratio_entry(engine_task["seconds"], r[task])
    return out


def targets(engine_results: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Path ≥ 20× saga, ≥ 5× liblinear and ≥ 3× skglm on the CPU; met only when the solver reached the
    objective.

    A solver that did not reach it leaves the target undecided (`met` None) with the time it spent.
    """
    out = {}
    goals = (("saga", TARGET_VS_SAGA), ("liblinear", TARGET_VS_LIBLINEAR), ("skglm", TARGET_VS_SKGLM))
    for name, goal in goals:
        solver = results.get(name, {})
        if "path" not in solver:
            continue
        entry = ratio_entry(engine_results["path"]["seconds"], solver["path"])
        met = entry["value"] >= goal if entry["reached"] else None
        out[f"path_vs_{name}"] = {**entry, "goal": goal, "met": met}
    return out


def correctness(engine_results: dict[str, Any], results: dict[str, Any], rtol: float) -> dict[str, Any]:
    """The engine certified every λ, and no solver's objective is below the engine's by more than rtol."""
    lowest = [
        min(a["rel_diff"])
        for r in results.values()
        for task in TASKS
        if task in r
        for a in r[task]["attempts"]
        if a["rel_diff"]
    ]
    below = min(lowest) if lowest else None
    converged = all(r["converged"] for r in engine_results.values())
    return {
        "engine_converged": converged,
        "min_rel_diff": below,
        "rtol": rtol,
        "passed": converged and (below is None or below >= -rtol),
    }


def parameters(
    args: argparse.Namespace,
    dataset: Dataset,
    problem: Problem,
    solvers: list[str],
    tasks: list[str],
    tols: list[float],
) -> dict[str, Any]:
    """The benchmark's settings as run, and the dataset."""
    store = dataset.store
    return {
        "dataset": dataset.name,
        "store": str(store.path),
        "examples": store.n,
        "layers": len(store.layers),
        "hidden": store.hidden,
        "features": len(store.layers) * store.hidden,
        "dtype": store.meta["dtype"],
        "positives": int(problem.y.sum()),
        **dataset.info,
        "engine_device": args.device,
        "n_lambdas": args.n_lambdas,
        "lambda_ratio": args.lambda_ratio,
        "engine_tol": args.tol,
        "engine_repeats": args.repeats,
        "solver_tols": tols,
        "rtol": args.rtol,
        "budget_seconds": args.budget_s,
        "budget_scope": "per solver, dataset and task; checked between fits, max_iter capped from s/iter",
        "path_stride": args.path_stride,
        "solvers": solvers,
        "tasks": tasks,
        "target_support": args.target_support if "support" in tasks else None,
        "threads": args.threads,
        "threads_scope": "BLAS/OpenMP (threadpoolctl) and numba, engine and every solver; 0 = not pinned "
        "(the libraries' defaults and the engine's own per-operation threads: what a user gets)",
        "machine": "shared with other work while measured: read ratios measured in one run, not seconds",
        "quick": args.quick,
        "objective": "mean log-loss + λ‖w‖₁, intercept unpenalised, float64 numpy; C = 1/(λ n)",
        "lambda_mapping": {
            "saga, liblinear, cuml": "C = 1/(λ n)",
            "skglm": "L1(alpha=λ) on the mean-form Logistic datafit, intercept unpenalised",
            "celer": "α = λ n on Σ log-loss; intercept = a constant column of --intercept-scaling",
            "glum": "alpha = λ on deviance/(2n) (binomial deviance = 2 log-loss), intercept unpenalised",
        },
        "standardisation": "store mean and std (ddof=1) from neurosel.neuron_stats(by=None); std 0 → 1",
        "single_lambda": "engine: importance(n_lambdas=2) = λ_max then the last λ from zero; solvers: one "
        "fit at the last λ from zero",
    }


def print_summary(report: dict[str, Any], path: Path | None) -> None:
    """The dataset, the engine, an aligned table of solvers and tasks, the targets and the JSON path."""
    p, env = report["parameters"], report["environment"]
    print(
        f"{p['dataset']}: {p['examples']} × {p['features']} {p['dtype']} ({p['layers']} layers × "
        f"{p['hidden']}), {p['positives']} positive; {p['n_lambdas']} λ down to λ_max × "
        f"{p['lambda_ratio']:g}; {env['device_name']}, {env['cpu_count']} CPUs"
    )
    for task, r in report["engine"].items():
        extra = f", {r['meta']['design']} design" if "design" in r["meta"] else ""
        extra += f", planted in top: {r['planted_in_top']:.0%}" if "planted_in_top" in r else ""
        extra += f", target {r['target_support']}" if "target_support" in r else ""
        print(
            f"engine {task:<7} {r['seconds']:8.2f} s, {r['passes']} passes, "
            f"{r['certified']}/{len(r['gaps'])} λ certified, final support {r['support_sizes'][-1]}{extra}"
        )
    header = ("solver", "task", "status", "seconds", "engine×", "max rel Δobj", "tol")
    print("{:<10} {:<7} {:<12} {:>9} {:>8} {:>13} {:>7}".format(*header))
    for name, r in report["solvers"].items():
        if "status" in r:
            print(f"{name:<10} {'-':<7} {r['status']}")
            continue
        for task in TASKS:
            if task not in r:
                continue
            t = r[task]
            ratio = report["ratios"][f"{task}_vs_{name}"]
            speed = f"{ratio['value']:.1f}x" if ratio["reached"] else f"{ratio['spent_vs_engine']:.1f}x*"
            diff = t.get("max_rel_diff", t["best_max_rel_diff"])
            diff_text = f"{diff:.1e}" if diff is not None else "-"
            tol = f"{t['tol']:.0e}" if t["tol"] else "-"
            notes = [] if task == "single" or t.get("full_path") else ["every λ: no"]
            wanted = 1 if task == "single" else len(t["lambda_indices"])
            if t["status"] != "reached" and t["best_lambdas_fitted"] < wanted:
                notes.append(f"{t['best_lambdas_fitted']}/{wanted} λ fitted")
            print(
                f"{name:<10} {task:<7} {t['status']:<12} {t['seconds']:>9.2f} {speed:>8} {diff_text:>13} "
                f"{tol:>7}" + (f" ({', '.join(notes)})" if notes else "")
            )
    if any(not r["reached"] for r in report["ratios"].values()):
        print("* objective not reached within the budget: time spent / engine time, not a speed-up;")
        print("  max rel Δobj: the closest setting, over the λs it fitted")
    for name, t in report["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "undecided (objective not reached)"}[t["met"]]
        value = f"{t['value']:.1f}" if t["value"] is not None else "-"
        print(f"target {name}: {value} ≥ {t['goal']:g}: {verdict}")
    if "thread_study" in report:
        print_study(report["thread_study"])
    if "baseline" in report:
        b = report["baseline"]
        if "status" in b:
            print(f"baseline {b['commit']}: {b['status']}")
        else:
            print(
                f"baseline {b['commit'][:7]} path {b['seconds']:8.2f} s, {b['passes']} passes: "
                f"{b['baseline_vs_engine']:.2f}× the engine's time, objectives within "
                f"{b['max_abs_rel_objective_diff']:.1e}"
            )
    c = report["correctness"]
    low = f"{c['min_rel_diff']:.1e}" if c["min_rel_diff"] is not None else "-"
    print(
        f"correctness: engine converged {c['engine_converged']}, lowest solver rel Δobj {low} "
        f"(≥ −{c['rtol']:g}): {'ok' if c['passed'] else 'FAILED'}"
    )
    if path is not None:
        print(f"results: {path}")
