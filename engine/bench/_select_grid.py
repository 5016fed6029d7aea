"""bench select --grid: the synthetic dataset at every rows × neurons, one table and one JSON."""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from neurosel.bench._harness import environment, write_report
from neurosel.bench._select_data import synthetic_dataset
from neurosel.bench._select_measure import measure
from neurosel.bench._select_report import print_summary
from neurosel.errors import InputError


def run_grid(
    args: argparse.Namespace,
    cells: list[tuple[int, int, int]],
    solvers: list[str],
    tasks: list[str],
    tols: list[float],
) -> int:
    """The synthetic dataset at every (rows, layers, hidden): each cell's report, one table, one JSON."""
    done: list[dict[str, Any]] = []
    code = 0
    for rows, layers, hidden in cells:
        cell_args = copy.copy(args)
        cell_args.synthetic_rows, cell_args.synthetic_layers = rows, layers
        cell_args.synthetic_hidden = hidden
        cell: dict[str, Any] = {"rows": rows, "neurons": layers * hidden, "layers": layers, "hidden": hidden}
        print(f"--- grid cell {rows} × {layers * hidden} ({layers} × {hidden})", flush=True)
        try:
            report = measure(cell_args, synthetic_dataset(cell_args), solvers, tasks, tols)
        except InputError as e:
            print(f"bench select: grid cell {rows} × {layers * hidden}: error: {e}", file=sys.stderr)
            done.append({**cell, "error": str(e)})
            code = 2
            continue
        print_summary(report, None)
        done.append({**cell, "summary": grid_summary(report, tasks), "report": report})
        code = max(code, 0 if report["correctness"]["passed"] else 1)
    grid_report = {
        "environment": environment(args.device),
        "parameters": {
            "grid_rows": sorted({c[0] for c in cells}),
            "grid_neurons": sorted({c[1] * c[2] for c in cells}),
            "tasks": tasks,
            "solvers": solvers,
            "target_support": args.target_support,
            "n_lambdas": args.n_lambdas,
            "lambda_ratio": args.lambda_ratio,
            "rtol": args.rtol,
            "budget_seconds": args.budget_s,
            "threads": args.threads,
            "cell": "each cell's report has the parameters of a single run",
        },
        "cells": done,
    }
    out = write_report(grid_report, args.out_dir, "select_grid", args.device)
    print_grid(grid_report, out)
    return code


def grid_summary(report: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """Per task: the engine's seconds and final support, each peer's seconds to equal objective and ratio."""
    out: dict[str, Any] = {}
    for task in tasks:
        e = report["engine"][task]
        peers: dict[str, Any] = {}
        for name, r in report["solvers"].items():
            if task not in r:
                peers[name] = {"status": r.get("status", "not run")}
                continue
            t, ratio = r[task], report["ratios"][f"{task}_vs_{name}"]
            peers[name] = {
                "status": t["status"],
                "seconds": t["seconds"],
                "engine_speedup": ratio["value"],
                "spent_vs_engine": ratio.get("spent_vs_engine"),
                "max_rel_diff": t.get("max_rel_diff", t["best_max_rel_diff"]),
            }
        out[task] = {
            "engine_seconds": e["seconds"],
            "lambdas": len(e["lambdas"]),
            "final_support": e["support_sizes"][-1],
            "solvers": peers,
        }
    study = report.get("thread_study", {})
    if "path" in out and study.get("status") == "ran":  # default / one thread, idle and busy
        ratio = {load: study[load]["default_vs_one_thread"] for load in ("idle", "busy")}
        out["path"]["default_vs_one_thread"] = ratio
    return out


def print_grid(report: dict[str, Any], path: Path) -> None:
    """One row per cell and task: the engine's seconds and each solver's seconds (engine speed-up)."""
    solvers = report["parameters"]["solvers"]
    header = ("rows", "neurons", "task", "λs", "supp", "engine s")
    print("{:>7} {:>7} {:<8} {:>4} {:>6} {:>9}".format(*header) + "".join(f" {n:>22}" for n in solvers))
    for cell in report["cells"]:
        if "error" in cell:
            print(f"{cell['rows']:>7} {cell['neurons']:>7} error: {cell['error']}")
            continue
        for task, s in cell["summary"].items():
            line = (
                f"{cell['rows']:>7} {cell['neurons']:>7} {task:<8} {s['lambdas']:>4} {s['final_support']:>6} "
                f"{s['engine_seconds']:>9.2f}"
            )
            for name in solvers:
                line += f" {grid_entry(s['solvers'].get(name, {'status': 'not run'})):>22}"
            if "default_vs_one_thread" in s:
                ratio = s["default_vs_one_thread"]
                line += f"  default/1 thread: {ratio['idle']:.2f} idle, {ratio['busy']:.2f} busy"
            print(line)
    print("solver columns: seconds to the engine's objective (engine speed-up); 'not reached (N s)': the")
    print("budget ran out after N s; 'n/a': not installed or skipped (the JSON says why)")
    print(f"results: {path}")


def grid_entry(peer: dict[str, Any]) -> str:
    """A solver's cell in the grid table."""
    if peer["status"] == "reached":
        return f"{peer['seconds']:.2f} ({peer['engine_speedup']:.1f}x)"
    if peer["status"] == "not reached":
        return f"not reached ({peer['seconds']:.0f} s)"
    return "n/a"
