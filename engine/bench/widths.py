"""Width scaling: statistics and the importance path on a bert-base FFN-width store against the
hidden-state width, in one process.

`neurosel.extract(..., sites="ffn")` stores each block's FFN intermediate units: for bert-base 12
layers × 3,072 = 36,864 neurons per example, against 13 × 768 = 9,984 hidden-state neurons, 3.69×
the bytes and the neurons. This benchmark asks what that costs the two passes that see every
neuron, and whether anything grows faster than the width (a memory blow-up, a slow path):

  hidden   a synthetic float16 store of (rows, 13, 768), layers 0 … 12 (the baseline)
  ffn      the same rows, (rows, 12, 3072), layers 1 … 12 (the FFN sites' numbering)

Both are written by neurosel.store_from_array (the extractor's layout) from the same recipe: per
neuron an offset (N(0, 2)) and a scale (U(0.5, 2)) on unit normal noise, two balanced classes, and
--planted neurons (spread evenly over the flat neuron ids) shifted by ±--shift noise standard
deviations in class 1, so that both stores carry the same planted signal among 3.69× more noise.

Timed on each store, interleaved (hidden, then ffn) within each of --repeats rounds, with the
settings a user gets (default memory budget, readers and threads; no thread pinning):

  read         neurosel.store.iter_blocks over the activations, every block decoded and discarded:
               the store's raw read rate, as `neurosel bench stats` measures it. It is the floor of
               the statistics pass: the pass reads the same bytes, so it cannot take less than
               activation bytes / read rate (= the read time)
  stats        neurosel.neuron_stats(store) as called by a user: by="label", auroc=True at the
               resolution (auroc_bits) neuron_stats picks: on the CPU always 16 bits, exact for
               these float16 stores at both widths (the pass keeps each neuron's value keys, and
               reads the store again for each further group of neurons whose keys do not fit in
               the memory budget); on a GPU fewer when its histograms would not fit in 2 GiB;
               recompute and save=False so every round computes
  stats-noauc  the same with auroc=False: the moments alone, separating the AUROC's cost
  importance   neurosel.importance(store, method="l1-logistic") with --n-lambdas, --lambda-ratio and
               --tol (defaults 10 λ down to λ_max/20 and the engine's tol 1e-6: a short path that
               keeps the run within minutes), recompute and save=False; the unlabelled statistics it
               standardises with are computed (and saved) once before timing, so the time is the
               design load plus the path (--importance-repeats rounds)
  support      the same path stopped at the first λ whose support reaches --target-support (64) on a
               finer grid (--support-lambdas, 40 λ to the same last λ): both widths end at a similar
               support, which separates the cost of the width from the cost of the larger support
               the wider store's extra noise neurons bring at a fixed λ

Reported per store: median wall seconds, statistics passes per second, GB/s of activation bytes
(rows × neurons × 2), the floor and the fraction of it reached (read seconds / stats seconds), peak
host RSS above the start, and for the path its design (in core or streamed), passes, support and
the planted neurons it ranks first. Ratios ffn / hidden of every time, and per neuron (time ratio /
neuron ratio: 1.0 = linear in the width, above 1 = worse than linear). A sanity block checks the
planted signal: every planted neuron's AUROC further from 0.5 than any noise neuron's, and the
path's first --planted neurons mostly planted (exit code 1 otherwise).

Run it as `neurosel bench widths [--rows N]` or `python -m neurosel.bench.widths`. Stores are kept
under bench/scratch/ for reuse (--no-keep removes them), the report goes to
bench/results/widths_<device>_<host>.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import (
    HOST,
    Measurement,
    add_synthetic_store_options,
    cached_store,
    environment,
    measure,
    timed,
    write_report,
)
from neurosel.bench.stats import read_all, stats_call, warm_up
from neurosel.defaults import DEFAULT_MEMORY_BUDGET
from neurosel.devices import resolve_device
from neurosel.errors import InputError
from neurosel.store import DEFAULT_READERS, ActivationStore, block_rows

SEED = 0
GENERATE_ROWS = 2048  # synthetic rows generated per step (float32 temporaries of 2048 × 36,864)
WIDTHS = {  # name → (layers, neurons per layer, first layer index): bert-base's two sites
    "hidden": (13, 768, 0),
    "ffn": (12, 3072, 1),
}
STORES = tuple(WIDTHS)  # "hidden" (the baseline) first in every round
STATS_METHODS = ("read", "stats", "stats-noauc")
PATH_TASKS = ("importance", "support")
DEFAULTS = {
    "rows": 4000,
    "planted": 16,
    "shift": 0.5,
    "n_lambdas": 10,
    "lambda_ratio": 0.05,
    "target_support": 64,
    "support_lambdas": 40,
}
MIN_PLANTED_RECALL = 0.5  # of the path's first --planted neurons, at least half planted


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options: the stores' sizes and signal, the path, repeats and folders."""
    p = argparse.ArgumentParser(prog="neurosel bench widths", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=DEFAULTS["rows"], help="examples in each store")
    p.add_argument(
        "--hidden-shape",
        default="13x768",
        help="baseline store: LAYERSxNEURONS (default bert-base's hidden states, 13x768)",
    )
    p.add_argument(
        "--ffn-shape",
        default="12x3072",
        help="wide store: LAYERSxNEURONS (default bert-base's FFN units, 12x3072)",
    )
    p.add_argument(
        "--planted", type=int, default=DEFAULTS["planted"], help="neurons carrying the class signal"
    )
    p.add_argument(
        "--shift", type=float, default=DEFAULTS["shift"], help="class-1 shift of a planted neuron (noise SDs)"
    )
    p.add_argument("--device", default="auto", help="the statistics' device: auto, cpu or cuda")
    p.add_argument("--n-lambdas", type=int, default=DEFAULTS["n_lambdas"], help="points on the path")
    p.add_argument("--lambda-ratio", type=float, default=DEFAULTS["lambda_ratio"], help="last λ / λ_max")
    p.add_argument(
        "--target-support", type=int, default=DEFAULTS["target_support"], help="support task: neurons"
    )
    p.add_argument(
        "--support-lambdas", type=int, default=DEFAULTS["support_lambdas"], help="support task: λ grid"
    )
    p.add_argument("--tol", type=float, default=1e-6, help="the path's certificate: gap ≤ tol · log 2")
    p.add_argument("--repeats", type=int, default=3, help="rounds of the statistics methods (median)")
    p.add_argument("--importance-repeats", type=int, default=3, help="rounds of the paths (median)")
    add_synthetic_store_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if the planted signal is not found, 2 on unusable input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        shapes = {"hidden": parse_shape(args.hidden_shape), "ffn": parse_shape(args.ffn_shape)}
    except ValueError:
        parser.error("--hidden-shape and --ffn-shape take LAYERSxNEURONS, e.g. 12x3072")
    if min(args.rows, args.planted, args.repeats, args.importance_repeats, *shapes["hidden"]) < 1:
        parser.error("--rows, --planted, --repeats, --importance-repeats and the shapes must be ≥ 1")
    if min(*shapes["ffn"], args.n_lambdas - 1, args.support_lambdas - 1, args.target_support) < 1:
        parser.error("--n-lambdas and --support-lambdas must be ≥ 2, --target-support ≥ 1")
    if args.rows < 8:
        parser.error("--rows must be ≥ 8")
    if args.planted > min(a * b for a, b in shapes.values()):
        parser.error("--planted must not exceed the neurons of the narrower store")
    if not 0 < args.lambda_ratio < 1 or args.tol <= 0 or args.shift <= 0:
        parser.error("--lambda-ratio must lie in (0, 1); --tol and --shift must be > 0")
    try:
        stores = {name: synthetic_store(args, name, *shapes[name]) for name in STORES}
        try:
            return run(args, stores)
        finally:
            if not args.keep:
                for store in stores.values():
                    shutil.rmtree(store.path, ignore_errors=True)
    except InputError as e:
        print(f"bench widths: error: {e}", file=sys.stderr)
        return 2


def parse_shape(text: str) -> tuple[int, int]:
    """LAYERSxNEURONS as two integers."""
    layers, hidden = (int(v) for v in text.lower().split("x"))
    return layers, hidden


# --- the synthetic stores -----------------------------------------------------------------------


def planted_ids(features: int, planted: int) -> np.ndarray:
    """Flat ids of the planted neurons: `planted` ids spread evenly over 0 … features − 1."""
    return np.unique(np.linspace(0, features - 1, planted).round().astype(np.int64))


def synthetic_data(
    rows: int, layers: int, hidden: int, planted: int, shift: float, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float16 activations (rows, layers, hidden) and balanced 0/1 labels: per neuron an offset
    and a scale on unit normal noise; the planted neurons moved by ±shift noise SDs in class 1.

    The labels and the planted neurons' signs depend on the seed only, not on the width, so both
    stores share their labels and their signal."""
    rng = np.random.default_rng(seed)
    features = layers * hidden
    y = rng.permutation(np.arange(rows) % 2)
    ids = planted_ids(features, planted)
    sign = np.where(np.arange(ids.size) % 2 == 0, 1.0, -1.0).astype(np.float32)
    noise_rng = np.random.default_rng([seed, features])  # the width's own noise stream
    offset = noise_rng.normal(0.0, 2.0, features).astype(np.float32)
    scale = noise_rng.uniform(0.5, 2.0, features).astype(np.float32)
    x = np.empty((rows, features), dtype=np.float16)
    for start in range(0, rows, GENERATE_ROWS):
        stop = min(start + GENERATE_ROWS, rows)
        z = noise_rng.standard_normal((stop - start, features), dtype=np.float32)
        z[:, ids] += y[start:stop, None].astype(np.float32) * (shift * sign)
        z *= scale
        z += offset
        x[start:stop] = z
    return x.reshape(rows, layers, hidden), y


def synthetic_store(args: argparse.Namespace, name: str, layers: int, hidden: int) -> ActivationStore:
    """The synthetic store of one width: reused when complete, else (re)built under --scratch-dir."""
    first = WIDTHS[name][2]
    tag = f"{args.rows}x{layers}x{hidden}_float16_p{args.planted}_s{args.shift:g}_seed{SEED}"
    path = args.scratch_dir / f"widths_{name}_{tag}.zarr"

    def build(out: Path) -> ActivationStore:
        x, y = synthetic_data(args.rows, layers, hidden, args.planted, args.shift)
        layer_ids = list(range(first, first + layers))
        return neurosel.store_from_array(
            out, x, labels=y, layers=layer_ids, dtype="float16", model_id=f"synthetic-{name}-seed{SEED}"
        )

    return cached_store(path, (args.rows, layers, hidden), args.rebuild, build)[0]


# --- the measurements ---------------------------------------------------------------------------


def run(args: argparse.Namespace, stores: dict[str, ActivationStore]) -> int:
    """Warm up, time the statistics methods and the path on both stores, check the signal, save."""
    backend = resolve_device(args.device).for_stage("stats").kind
    budget, readers = DEFAULT_MEMORY_BUDGET, DEFAULT_READERS
    compile_info = {
        "stats": warm_up(stores["hidden"], backend, budget, readers),
        "importance_first_call_seconds": importance_warm_up(args),
    }
    for store in stores.values():  # fill the page cache, and the unlabelled statistics the path uses
        read_all(store, budget, readers)
        neurosel.neuron_stats(store, by=None, progress=False)
    stats_runs, outputs = time_statistics(args, stores, backend, budget, readers)
    path_runs, paths = time_importance(args, stores)
    results = {
        name: summarize(store, stats_runs[name], path_runs[name], outputs[name], paths[name])
        for name, store in stores.items()
    }
    check = {name: signal_check(args, outputs[name]["stats"], paths[name]["importance"]) for name in stores}
    report: dict[str, Any] = {
        "environment": environment(backend),
        "parameters": parameters(args, stores, backend, budget, readers),
        "compile": compile_info,
        "results": results,
        "ratios": ratios(results),
        "signal": check,
        "passed": all(c["passed"] for c in check.values()),
    }
    path = write_report(report, args.out_dir, "widths", backend)
    print_summary(report, path)
    return 0 if report["passed"] else 1


def time_statistics(
    args: argparse.Namespace,
    stores: dict[str, ActivationStore],
    backend: str,
    budget: int,
    readers: int,
) -> tuple[dict[str, dict[str, list[Measurement]]], dict[str, dict[str, neurosel.NeuronStats]]]:
    """read, stats and stats-noauc on each store, interleaved, --repeats rounds: every measurement
    and the last statistics of each kind."""
    runs = {name: {m: [] for m in STATS_METHODS} for name in stores}
    outputs: dict[str, dict[str, neurosel.NeuronStats]] = {name: {} for name in stores}
    for _ in range(args.repeats):
        for name, store in stores.items():
            runs[name]["read"].append(measure(lambda s=store: read_all(s, budget, readers), HOST))
            for method, auroc in (("stats", True), ("stats-noauc", False)):
                measurement, stats = timed(
                    lambda s=store, a=auroc: stats_call(s, backend, a, budget, readers)
                )
                runs[name][method].append(measurement)
                outputs[name][method] = stats
    return runs, outputs


def importance_call(
    store: ActivationStore, args: argparse.Namespace, task: str = "importance"
) -> neurosel.Importance:
    """neurosel.importance as a user calls it (l1-logistic, default device, budget and in-core limit),
    with this run's path (task "importance") or the path stopped at --target-support on the finer
    --support-lambdas grid (task "support"), recomputed and not saved."""
    support = task == "support"
    return neurosel.importance(
        store,
        method="l1-logistic",
        n_lambdas=args.support_lambdas if support else args.n_lambdas,
        lambda_ratio=args.lambda_ratio,
        target_support=args.target_support if support else None,
        tol=args.tol,
        recompute=True,
        save=False,
    )


def time_importance(
    args: argparse.Namespace, stores: dict[str, ActivationStore]
) -> tuple[dict[str, dict[str, list[Measurement]]], dict[str, dict[str, neurosel.Importance]]]:
    """Both path tasks on each store, interleaved, --importance-repeats rounds: measurements and the
    last path of each, by store and task."""
    runs = {name: {task: [] for task in PATH_TASKS} for name in stores}
    paths: dict[str, dict[str, neurosel.Importance]] = {name: {} for name in stores}
    for _ in range(args.importance_repeats):
        for task in PATH_TASKS:
            for name, store in stores.items():
                measurement, path = timed(lambda s=store, t=task: importance_call(s, args, t))
                runs[name][task].append(measurement)
                paths[name][task] = path
    return runs, paths


def importance_warm_up(args: argparse.Namespace) -> float:
    """One path on a tiny planted store in a temporary folder: the first call's seconds (numba compiles
    or loads the solver's kernels here, so that no timed call pays for it)."""
    with tempfile.TemporaryDirectory(prefix="widths-warm-") as tmp:
        x, y = synthetic_data(200, 2, 32, 4, 1.0)
        store = neurosel.store_from_array(Path(tmp) / "warm.zarr", x, labels=y, dtype="float16")
        started = time.perf_counter()
        importance_call(store, args)
        return time.perf_counter() - started


def summarize(
    store: ActivationStore,
    stats_runs: dict[str, list[Measurement]],
    path_runs: dict[str, list[Measurement]],
    outputs: dict[str, neurosel.NeuronStats],
    paths: dict[str, neurosel.Importance],
) -> dict[str, Any]:
    """One store's results: each statistics method's median time, rate and memory, the floor and the
    fraction of it reached, and the path's time, memory, design, passes and support."""
    nbytes = int(store.activations.nbytes)
    out: dict[str, Any] = {
        "neurons": len(store.layers) * store.hidden,
        "activation_bytes": nbytes,
    }
    for method, runs in stats_runs.items():
        out[method] = timing(runs, nbytes)
    floor = out["read"]["median_seconds"]
    for method in ("stats", "stats-noauc"):
        out[method]["passes_per_s"] = 1.0 / out[method]["median_seconds"]
        out[method]["pass_seconds"] = outputs[method].meta["seconds"]  # inside neuron_stats
        out[method]["auroc_bits"] = outputs[method].meta["auroc_bits"]
        error = outputs[method].auroc_error
        out[method]["auroc_error_max"] = float(np.nanmax(error)) if error is not None else None
        out[method]["floor_seconds"] = floor
        out[method]["vs_floor"] = floor / out[method]["median_seconds"]
    for task, path in paths.items():
        out[task] = path_summary(path_runs[task], path, nbytes)
    return out


def path_summary(runs: list[Measurement], path: neurosel.Importance, nbytes: int) -> dict[str, Any]:
    """One path task's median time and memory, and what its meta says: design (in core or streamed),
    load and solve seconds, full passes, convergence and the support at every λ."""
    meta = path.meta
    return {
        **timing(runs, nbytes),
        "design": meta["design"],
        "backend": meta["backend"],
        "load_seconds": meta["load_seconds"],
        "solve_seconds": meta["solve_seconds"],
        "total_passes": int(meta["total_passes"]),
        "seconds_per_pass": meta["solve_seconds"] / max(int(meta["total_passes"]), 1),
        "converged": bool(meta["converged"]),
        "support_sizes": [int(s) for s in path.support_sizes],
        "entered": path.entered,
    }


def timing(runs: list[Measurement], nbytes: int) -> dict[str, Any]:
    """Median wall time of the runs, the GB/s of activation bytes it means, and the peak memory."""
    seconds = statistics.median(r.seconds for r in runs)
    return {
        "seconds": [r.seconds for r in runs],
        "median_seconds": seconds,
        "gb_per_s": nbytes / seconds / 1e9,
        "host_peak_mb": max(r.host_peak_mb for r in runs),
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """ffn / hidden for every time and peak memory, and per neuron: time ratio / neuron ratio (1.0:
    linear in the width; above 1: each neuron costs more in the wide store)."""
    wide, base = results["ffn"], results["hidden"]
    neurons = wide["neurons"] / base["neurons"]
    out: dict[str, Any] = {
        "neurons": neurons,
        "activation_bytes": wide["activation_bytes"] / base["activation_bytes"],
    }
    for method in (*STATS_METHODS, *PATH_TASKS):
        key = method.replace("-", "_")
        time_ratio = wide[method]["median_seconds"] / base[method]["median_seconds"]
        out[f"{key}_time"] = time_ratio
        out[f"{key}_time_per_neuron"] = time_ratio / neurons
        out[f"{key}_memory"] = wide[method]["host_peak_mb"] / max(base[method]["host_peak_mb"], 1.0)
    for task in PATH_TASKS:
        w, b = wide[task], base[task]
        out[f"{task}_passes"] = w["total_passes"] / max(b["total_passes"], 1)
        out[f"{task}_seconds_per_pass"] = w["seconds_per_pass"] / b["seconds_per_pass"]
        out[f"{task}_final_support"] = w["support_sizes"][-1] / max(b["support_sizes"][-1], 1)
    return out


def signal_check(
    args: argparse.Namespace, stats: neurosel.NeuronStats, path: neurosel.Importance
) -> dict[str, Any]:
    """Do the statistics and the path find the planted neurons? AUROC: every planted neuron further
    from 0.5 than every noise neuron; the path: at least half of its first --planted neurons planted."""
    features = stats.auroc.size
    ids = planted_ids(features, args.planted)
    noise = np.ones(features, bool)
    noise[ids] = False
    distance = np.abs(stats.auroc.ravel() - 0.5)
    t = np.abs(stats.t.ravel()) if stats.t is not None else None
    top = path.ranking[: ids.size]
    recall = float(np.isin(top, ids).mean())
    separated = bool(distance[ids].min() > distance[noise].max())
    return {
        "planted": ids.tolist(),
        "planted_auroc_min_distance": float(distance[ids].min()),
        "planted_auroc_mean_distance": float(distance[ids].mean()),
        "noise_auroc_max_distance": float(distance[noise].max()),
        "planted_abs_t_min": float(t[ids].min()) if t is not None else None,
        "noise_abs_t_max": float(t[noise].max()) if t is not None else None,
        "auroc_separates": separated,
        "path_recall_at_planted": recall,
        "path_converged": bool(path.converged.all()),
        "passed": separated and recall >= MIN_PLANTED_RECALL and bool(path.converged.all()),
    }


def parameters(
    args: argparse.Namespace,
    stores: dict[str, ActivationStore],
    backend: str,
    budget: int,
    readers: int,
) -> dict[str, Any]:
    """The benchmark's settings as run, and each store's layout."""

    def layout(store: ActivationStore) -> dict[str, Any]:
        array = store.activations
        return {
            "store": str(store.path),
            "shape": [int(v) for v in array.shape],
            "layers": [int(v) for v in store.layers],
            "chunk_rows": int(array.chunks[0]),
            "shard_rows": int(array.shards[0]) if array.shards else None,
            "block_rows": min(block_rows(array, budget), int(array.shape[0])),
            "compressors": [type(c).__name__ for c in array.compressors],
        }

    return {
        "rows": args.rows,
        "dtype": "float16",
        "seed": SEED,
        "planted": args.planted,
        "shift": args.shift,
        "device": backend,
        "memory_budget_mb": budget >> 20,
        "readers": readers,
        "repeats": args.repeats,
        "importance": {
            "method": "l1-logistic",
            "n_lambdas": args.n_lambdas,
            "lambda_ratio": args.lambda_ratio,
            "tol": args.tol,
            "support_task": {"target_support": args.target_support, "n_lambdas": args.support_lambdas},
            "repeats": args.importance_repeats,
            "other": "neurosel.importance defaults (device auto, memory_budget, in_core_bytes)",
        },
        "stores": {name: layout(store) for name, store in stores.items()},
    }


def print_summary(report: dict[str, Any], path: Path) -> None:
    """One table of both stores and their ratios, then the signal check and the JSON path."""
    p, env, results, r = report["parameters"], report["environment"], report["results"], report["ratios"]
    path_p = p["importance"]
    print(
        f"{p['rows']} rows, float16; {p['device']} on {env['device_name']} ({env['cpu_count']} cores, "
        f"{env['numba_threads']} numba threads); blocks of {p['memory_budget_mb']} MB, {p['readers']} readers"
    )
    print(
        f"path: l1-logistic, {path_p['n_lambdas']} λ to λ_max × {path_p['lambda_ratio']:g}, "
        f"tol {path_p['tol']:g}; support: ≥ {path_p['support_task']['target_support']} neurons on "
        f"{path_p['support_task']['n_lambdas']} λ"
    )
    base, wide = results["hidden"], results["ffn"]
    print(
        f"{'':<12} {'hidden ' + format(base['neurons'], ','):>22} {'ffn ' + format(wide['neurons'], ','):>22}"
        f" {'ffn/hidden':>11} {'per neuron':>11}"
    )
    print(f"{'method':<12} {'s':>8} {'GB/s':>6} {'peak MB':>7} {'s':>8} {'GB/s':>6} {'peak MB':>7}")
    for method in (*STATS_METHODS, *PATH_TASKS):
        key = method.replace("-", "_")
        cells = [
            f"{m['median_seconds']:>8.3f} {m['gb_per_s']:>6.3f} {m['host_peak_mb']:>7.0f}"
            for m in (base[method], wide[method])
        ]
        print(
            f"{method:<12} {cells[0]} {cells[1]} "
            f"{r[key + '_time']:>10.2f}x {r[key + '_time_per_neuron']:>10.2f}x"
        )
    for method in ("stats", "stats-noauc"):
        print(
            f"{method}: floor (read) reached "
            f"{base[method]['vs_floor']:.2f} / {wide[method]['vs_floor']:.2f}; "
            f"{base[method]['passes_per_s']:.2f} / {wide[method]['passes_per_s']:.2f} passes/s; "
            f"auroc_bits {base[method]['auroc_bits']} / {wide[method]['auroc_bits']}"
            + (
                f" (error bound ≤ {base[method]['auroc_error_max']:.4f} / "
                f"{wide[method]['auroc_error_max']:.4f})"
                if base[method]["auroc_error_max"] is not None
                else ""
            )
        )
    for task in PATH_TASKS:
        bi, wi = base[task], wide[task]
        print(
            f"{task}: {bi['design']} / {wi['design']}; passes {bi['total_passes']} / {wi['total_passes']}; "
            f"load {bi['load_seconds']:.2f} / {wi['load_seconds']:.2f} s; "
            f"final support {bi['support_sizes'][-1]} / {wi['support_sizes'][-1]}"
        )
    for name, c in report["signal"].items():
        print(
            f"signal {name}: planted |AUROC−0.5| ≥ {c['planted_auroc_min_distance']:.3f} vs noise ≤ "
            f"{c['noise_auroc_max_distance']:.3f}; path recall {c['path_recall_at_planted']:.2f}: "
            f"{'ok' if c['passed'] else 'FAILED'}"
        )
    print(f"results: {path}")


__all__: list[str] = ["DEFAULTS", "WIDTHS", "build_parser", "main", "planted_ids", "synthetic_data"]

if __name__ == "__main__":
    sys.exit(main())
