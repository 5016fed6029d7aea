"""Statistics throughput: neurosel.neuron_stats against the store's raw read rate and a numpy baseline.

Five methods run in one process on the same store, interleaved within each of --repeats rounds:

  read            store.blocks over the activations, every block's files checked against the
                  manifest (sizes before the read, checksums while reading: what every pass reads),
                  decoded and discarded
  read-unchecked  neurosel.store.iter_blocks without those checks (what the checks cost)
  numpy           store.activations[:] into memory (load), then float32 and, per class,
                  x[y == k].mean(0) and x[y == k].var(0, ddof=1) (compute): what a user would write
  stats           neurosel.neuron_stats(by="label", auroc=False), streaming
  stats+auroc     the same with the exact AUROC (two classes)

Reported per method: median wall time, GB/s of stored activations (rows × layers × hidden ×
itemsize), CPU seconds per GB (all threads; less sensitive than wall time to other work on shared
cores) and peak host RSS above the start (the kernel's high-water mark where Linux offers it);
ratios stats/read (target ≥ 0.9 on the CPU), exact AUROC/read (target ≥ 0.3, peak within
--memory-budget-mb) and stats/numpy, by wall time and by CPU seconds; start-up: a fresh Python
process importing neurosel and making its first neuron_stats call (with AUROC) on a tiny slice, and
the first and a warm call in this process, before any timing; correctness: the engine's class means
and variances against float64 numpy on the same values (1e-5), and its AUROC of 32 neurons against
scipy's rank-sum (exact: 1e-12); exit code 1 if either fails. On CUDA also the moments and histogram
kernels on one device-resident block against a device-to-device copy measured in the same run
(target ≥ 0.7).
By default the store is synthetic (two classes, seeded) and kept under bench/scratch/ for reuse.
--store PATH benchmarks an existing store of your own (any model; class labels) instead. Results go
to bench/results/ (of the current directory) as JSON.

The synthetic store and the row classes live in _stats_store, the CUDA kernels' timing in _stats_cuda.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import zarr

import neurosel
from neurosel.bench._harness import (
    HOST,
    Measurement,
    add_synthetic_store_options,
    environment,
    measure,
    timed,
    write_report,
)
from neurosel.bench._stats_cuda import cuda_kernels
from neurosel.bench._stats_store import SEED, row_classes, synthetic_store
from neurosel.bench.extract import relative_error
from neurosel.devices import resolve_device
from neurosel.errors import InputError
from neurosel.kernels.histogram import auroc_from_keys, keys_cpu
from neurosel.kernels.moments import moments_cpu
from neurosel.stats import NeuronStats
from neurosel.store import DEFAULT_READERS, ActivationStore, block_rows, decode, iter_blocks, open_store

TOLERANCE = 1e-5  # engine (float64) against float64 numpy on the same float32 values
TARGET_STATS_VS_READ = 0.9  # on the CPU
TARGET_AUROC_VS_READ = 0.3  # on the CPU, exact AUROC, with peak memory within the budget
AUROC_CHECK_NEURONS = 32  # neurons whose AUROC is checked against scipy's rank-sum (float64)
TARGET_KERNEL_VS_D2D = 0.7  # on CUDA
METHODS = ("read", "read-unchecked", "numpy", "stats", "stats+auroc")
SHARED_NOTE = (
    "wall-time ratios are of methods interleaved in one process; other work on the same cores "
    "slows them unevenly, so CPU seconds per GB are reported too"
)


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    p = argparse.ArgumentParser(prog="neurosel bench stats", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000, help="synthetic store: examples")
    p.add_argument("--layers", type=int, default=7, help="synthetic store: layers")
    p.add_argument("--hidden", type=int, default=384, help="synthetic store: neurons per layer")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="synthetic store")
    p.add_argument(
        "--store", type=Path, default=None, help="benchmark your own store instead (class labels, any model)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--memory-budget-mb", type=int, default=512, help="decoded blocks in flight")
    p.add_argument("--readers", type=int, default=DEFAULT_READERS, help="reader threads")
    p.add_argument("--repeats", type=int, default=3, help="rounds of every method; the median time counts")
    add_synthetic_store_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if the statistics disagree with numpy, 2 on unusable input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.rows, args.layers, args.hidden, args.repeats, args.readers, args.memory_budget_mb) < 1:
        parser.error("--rows, --layers, --hidden, --repeats, --readers and --memory-budget-mb must be ≥ 1")
    try:
        store = open_store(args.store) if args.store else synthetic_store(args)
        try:
            return run(args, store)
        finally:
            if args.store is None and not args.keep:
                shutil.rmtree(store.path, ignore_errors=True)
    except InputError as e:
        print(f"bench stats: error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, store: ActivationStore) -> int:
    """Warm up, time every method, check the class moments, print and save the results."""
    backend = resolve_device(args.device).for_stage("stats").kind
    budget = args.memory_budget_mb << 20
    cls, classes = row_classes(store)
    compile_info = warm_up(store, backend, budget, args.readers)
    first_read = measure(lambda: read_all(store, budget, args.readers), HOST).seconds  # fills the page cache
    results, baseline, outputs = time_methods(store, cls, classes, backend, budget, args)
    check = correctness(store, cls, classes, outputs, baseline)
    report: dict[str, Any] = {
        "environment": environment(backend),
        "shared_machine": SHARED_NOTE,
        "parameters": parameters(args, store, backend, budget, first_read),
        "compile": compile_info,
        "results": results,
        "ratios": ratios(results),
        "targets": {},
        "correctness": check,
    }
    if backend == "cpu":
        report["targets"]["stats_vs_read"] = target(report["ratios"]["stats_vs_read"], TARGET_STATS_VS_READ)
        report["targets"]["stats_auroc_vs_read"] = target(
            report["ratios"]["stats_auroc_vs_read"], TARGET_AUROC_VS_READ
        )
        peak = results["stats+auroc"]["host_peak_mb"]
        report["targets"]["auroc_peak_within_budget"] = {
            "value": peak,
            "goal": args.memory_budget_mb,
            "met": peak <= args.memory_budget_mb,
        }
    else:
        report["cuda"] = cuda_kernels(store, cls, classes, budget)
        ratio = report["cuda"]["moments_vs_d2d"]
        report["targets"]["kernel_vs_d2d"] = target(ratio, TARGET_KERNEL_VS_D2D)
    path = save(report, args.out_dir, backend)
    print_summary(report, path)
    return 0 if check["passed"] else 1


def time_methods(
    store: ActivationStore,
    cls: np.ndarray,
    classes: int,
    backend: str,
    budget: int,
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, Any]], NumpyRun, dict[str, NeuronStats]]:
    """Every method once per round, --repeats rounds: results, the last numpy run and statistics."""
    runs: dict[str, list[Measurement]] = {m: [] for m in METHODS}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    numpy_runs: list[NumpyRun] = []
    passes: dict[str, list[float]] = {"stats": [], "stats+auroc": []}
    outputs: dict[str, NeuronStats] = {}

    def timed_run(method: str, fn: Callable[[], Any]) -> Any:
        started = time.process_time()
        measurement, out = timed(fn)
        cpu[method].append(time.process_time() - started)
        runs[method].append(measurement)
        return out

    for _ in range(args.repeats):
        # numpy first, then an untimed read: a pass right after numpy (1.4 GB allocated and freed)
        # ran 20 ms slower than after a read (0.252 against 0.232 s, medians of 9); this way every
        # timed streaming method follows a streaming pass
        numpy_runs.append(timed_run("numpy", partial(numpy_baseline, store, cls, classes)))
        read_all(store, budget, args.readers)
        timed_run("read", partial(read_all, store, budget, args.readers))
        timed_run("read-unchecked", partial(read_all, store, budget, args.readers, False))
        for method, auroc in (("stats", False), ("stats+auroc", True)):
            stats = timed_run(method, partial(stats_call, store, backend, auroc, budget, args.readers))
            passes[method].append(stats.meta["seconds"])
            outputs[method] = stats
    nbytes = int(store.activations.nbytes)
    results = {m: summarize(r, nbytes, cpu[m]) for m, r in runs.items()}
    for key in ("load", "compute"):
        seconds = statistics.median(getattr(r, f"{key}_seconds") for r in numpy_runs)
        results["numpy"][f"{key}_seconds"] = seconds
        results["numpy"][f"{key}_gb_per_s"] = nbytes / seconds / 1e9
    for method, seconds in passes.items():
        results[method]["pass_seconds"] = statistics.median(seconds)
        results[method]["auroc_bits"] = outputs[method].meta["auroc_bits"]
        results[method]["auroc_passes"] = outputs[method].meta.get("auroc_passes")
    return results, numpy_runs[-1], outputs


def warm_up(store: ActivationStore, backend: str, budget: int, readers: int) -> dict[str, Any]:
    """Start-up of neuron_stats (exact AUROC) on a tiny slice of the store (one chunk or up to the
    first row of the second class): in a fresh Python process (import, then the first call: numba's
    start-up and cache loads, what every CLI call pays) and in this one, first call then warm.

    The CPU kernels are cached on disk by numba: with a warm cache (misses 0) the first call loads
    them instead of compiling, and `compile_seconds` is that load time.
    """
    tiny = tiny_view(store)
    fresh = fresh_process_call(store.path, tiny.rows_committed, backend, budget, readers)
    first = measure(lambda: stats_call(tiny, backend, True, budget, readers), HOST).seconds
    warm = measure(lambda: stats_call(tiny, backend, True, budget, readers), HOST).seconds
    kernels = [moments_cpu, keys_cpu, auroc_from_keys]
    return {
        "rows": tiny.rows_committed,
        "fresh_process": fresh,
        "first_call_seconds": first,
        "warm_call_seconds": warm,
        "compile_seconds": first - warm,
        "numba_cache_hits": sum(sum(k.stats.cache_hits.values()) for k in kernels),
        "numba_cache_misses": sum(sum(k.stats.cache_misses.values()) for k in kernels),
    }


def tiny_view(store: ActivationStore) -> ActivationStore:
    """The store's first chunk (or up to the first row of the second class), as a partial store."""
    labels = store.labels
    second_class = int(np.argmax(labels != labels[0]))
    tiny = ActivationStore(store.group, store.path)
    tiny.meta["rows_committed"] = min(store.n, max(store.activations.chunks[0], second_class + 1))
    tiny.meta["complete"] = tiny.rows_committed == store.n  # a partial view: its committed rows only
    return tiny


FRESH_CALL = """
import sys, time
started = time.perf_counter()
import neurosel
from neurosel.store import ActivationStore
imported = time.perf_counter()
store = neurosel.open_store(sys.argv[1])
tiny = ActivationStore(store.group, store.path)
tiny.meta["rows_committed"], tiny.meta["complete"] = int(sys.argv[5]), False
opened = time.perf_counter()
neurosel.neuron_stats(
    tiny, by="label", device=sys.argv[2], auroc=True, memory_budget=int(sys.argv[3]),
    readers=int(sys.argv[4]), progress=False, save=False, recompute=True, allow_partial=True,
)
done = time.perf_counter()
print(imported - started, done - opened, time.process_time())
"""  # the call bench stats times (stats_call) on tiny_view, with nothing but neurosel imported


def fresh_process_call(path: Any, rows: int, backend: str, budget: int, readers: int) -> dict[str, Any]:
    """Seconds a new Python process spends importing neurosel and on its first neuron_stats call."""
    argv = [sys.executable, "-c", FRESH_CALL, str(path), backend, str(budget), str(readers), str(rows)]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    total = time.perf_counter() - started
    imported, first, cpu = (float(v) for v in out[-3:])
    return {
        "process_seconds": total,
        "import_seconds": imported,
        "first_call_seconds": first,
        "cpu_seconds": cpu,
    }


def read_all(store: ActivationStore, budget: int, readers: int, checked: bool = True) -> None:
    """Decode every block of the activations and discard it: the store's raw read rate, every file
    checked against the manifest as every pass does (`checked`), or not (the baseline that shows
    what the checks cost)."""
    if checked:  # as every pass reads: each block's files checked against the manifest, then hashed
        blocks = store.blocks(store.activations.shape[0], budget, readers)
    else:
        underneath = getattr(store.activations.store, "unchecked", store.activations.store)
        array = zarr.open_group(underneath, mode="r", use_consolidated=False)[store.activations.path]
        blocks = iter_blocks(array, array.shape[0], budget, readers)
    for _ in blocks:
        pass


@dataclass(frozen=True)
class NumpyRun:
    """One run of the numpy baseline: its two timings and its float32 class means and variances."""

    load_seconds: float
    compute_seconds: float
    mean: np.ndarray
    var: np.ndarray


def numpy_baseline(store: ActivationStore, cls: np.ndarray, classes: int) -> NumpyRun:
    """The in-memory way: load everything, cast to float32, per-class mean and variance."""
    started = time.perf_counter()
    raw = store.activations[:]
    loaded = time.perf_counter()
    x = decode(raw, store.meta["dtype"]).astype(np.float32).reshape(len(raw), -1)
    means, variances = [], []
    for k in range(classes):
        part = x[cls == k]
        means.append(part.mean(0))
        variances.append(part.var(0, ddof=1))
    done = time.perf_counter()
    return NumpyRun(loaded - started, done - loaded, np.stack(means), np.stack(variances))


def stats_call(store: ActivationStore, backend: str, auroc: bool, budget: int, readers: int) -> NeuronStats:
    """neurosel.neuron_stats by label, streaming, recomputed and not saved."""
    return neurosel.neuron_stats(
        store,
        by="label",
        device=backend,
        auroc=auroc,
        memory_budget=budget,
        readers=readers,
        progress=False,
        save=False,
        recompute=True,
        allow_partial=True,
    )


def summarize(runs: list[Measurement], nbytes: int, cpu: list[float]) -> dict[str, Any]:
    """Median time and the rate and memory derived from it; median CPU seconds (every thread of
    the process), which sharing the cores with other work changes less than the wall time."""
    seconds = statistics.median(r.seconds for r in runs)
    cpu_seconds = statistics.median(cpu)
    return {
        "seconds": [r.seconds for r in runs],
        "median_seconds": seconds,
        "gb_per_s": nbytes / seconds / 1e9,
        "cpu_seconds": cpu_seconds,
        "cpu_seconds_per_gb": cpu_seconds / (nbytes / 1e9),
        "host_peak_mb": max(r.host_peak_mb for r in runs),
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Rate of each streaming statistics run over the read rate and over numpy (end to end, compute only)."""
    out = {"read_checked_vs_unchecked": results["read"]["gb_per_s"] / results["read-unchecked"]["gb_per_s"]}
    for method, key in (("stats", "stats"), ("stats+auroc", "stats_auroc")):
        rate = results[method]["gb_per_s"]
        out[f"{key}_vs_read"] = rate / results["read"]["gb_per_s"]
        out[f"{key}_vs_read_unchecked"] = rate / results["read-unchecked"]["gb_per_s"]
        # CPU work per byte against the read's: the wall ratio on cores nobody else uses, if the
        # pass kept every core busy (an upper bound on a shared machine, not a measurement of one)
        out[f"{key}_vs_read_cpu"] = results["read"]["cpu_seconds"] / results[method]["cpu_seconds"]
        out[f"{key}_vs_numpy"] = rate / results["numpy"]["gb_per_s"]
        out[f"{key}_vs_numpy_compute"] = rate / results["numpy"]["compute_gb_per_s"]
    return out


def target(value: float, goal: float) -> dict[str, Any]:
    """A measured ratio against its goal."""
    return {"value": value, "goal": goal, "met": value >= goal}


def correctness(
    store: ActivationStore,
    cls: np.ndarray,
    classes: int,
    outputs: dict[str, NeuronStats],
    baseline: NumpyRun,
) -> dict[str, Any]:
    """Class means and variances of each statistics run and of float32 numpy, against float64 numpy."""
    x = decode(store.activations[:], store.meta["dtype"]).astype(np.float32).reshape(len(cls), -1)
    parts = [x[cls == k] for k in range(classes)]
    want = {
        "mean": np.stack([p.mean(0, dtype=np.float64) for p in parts]),
        "var": np.stack([p.var(0, ddof=1, dtype=np.float64) for p in parts]),
    }
    errors = {
        method: {
            "class_mean": relative_error(s.class_mean.reshape(classes, -1), want["mean"]),
            "class_var": relative_error(s.class_var.reshape(classes, -1), want["var"]),
        }
        for method, s in outputs.items()
    }
    worst = max(e for method in errors.values() for e in method.values())
    auroc = auroc_check(x, cls, outputs["stats+auroc"]) if classes == 2 else None
    return {
        "auroc": auroc,
        "reference": "numpy float64 on the float32 values, per class",
        "metric": "max |engine - numpy| / max |numpy|",
        "tolerance": TOLERANCE,
        "relative_error": errors,
        "max_relative_error": worst,
        "numpy_float32_relative_error": {
            "mean": relative_error(baseline.mean, want["mean"]),
            "var": relative_error(baseline.var, want["var"]),
        },
        "passed": worst <= TOLERANCE and (auroc is None or auroc["passed"]),
    }


def auroc_check(x: np.ndarray, cls: np.ndarray, stats: NeuronStats) -> dict[str, Any]:
    """The engine's AUROC of AUROC_CHECK_NEURONS evenly spaced neurons against the rank-sum
    (scipy.stats.rankdata, ties averaged, float64): equal to 1e-12 where the engine says it is exact
    (error bound 0), else within its bound."""
    from scipy.stats import rankdata

    picks = np.linspace(0, x.shape[1] - 1, min(AUROC_CHECK_NEURONS, x.shape[1])).astype(int)
    n1, n0 = int((cls == 1).sum()), int((cls == 0).sum())
    got = stats.auroc.reshape(-1)[picks]
    bound = stats.auroc_error.reshape(-1)[picks]
    want = np.array([(rankdata(x[:, f])[cls == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) for f in picks])
    error = float(np.max(np.abs(got - want)))
    return {
        "reference": "scipy.stats.rankdata rank-sum, float64",
        "neurons": len(picks),
        "max_abs_error": error,
        "max_error_bound": float(bound.max()),
        "passed": bool(np.all(np.abs(got - want) <= bound + 1e-12)),
    }


def parameters(
    args: argparse.Namespace, store: ActivationStore, backend: str, budget: int, first_read: float
) -> dict[str, Any]:
    """The benchmark's settings as run, and the store's layout."""
    array = store.activations
    return {
        "store": str(store.path),
        "synthetic": args.store is None,
        "seed": SEED if args.store is None else None,
        "examples": store.n,
        "activation_rows": int(array.shape[0]),
        "layers": len(store.layers),
        "hidden": store.hidden,
        "dtype": store.meta["dtype"],
        "pooling": store.meta["pooling"],
        "activation_bytes": int(array.nbytes),
        "chunk_rows": int(array.chunks[0]),
        "shard_rows": int(array.shards[0]) if array.shards else None,
        "compressors": [type(c).__name__ for c in array.compressors],
        "block_rows": min(block_rows(array, budget), int(array.shape[0])),
        "memory_budget_mb": args.memory_budget_mb,
        "readers": args.readers,
        "device": backend,
        "repeats": args.repeats,
        "first_read_seconds": first_read,
    }


def save(report: dict[str, Any], out_dir: Path, backend: str) -> Path:
    """Write the report to out_dir/stats_<device>_<gpu name or hostname>.json."""
    return write_report(report, out_dir, "stats", backend)


def print_summary(report: dict[str, Any], path: Path) -> None:
    """An aligned table of the methods, then ratios, compile time, correctness, CUDA and the JSON path."""
    p, env, results = report["parameters"], report["environment"], report["results"]
    print(
        f"{p['store']}: {p['activation_rows']} rows × {p['layers']} layers × {p['hidden']} {p['dtype']}, "
        f"{p['activation_bytes'] / 1e9:.2f} GB; blocks of {p['block_rows']} rows, {p['readers']} readers; "
        f"{p['device']} on {env['device_name']} ({env['numba_threads']} numba threads)"
    )
    read = results["read"]["gb_per_s"]
    rows = [(m, r["median_seconds"], r["gb_per_s"], r["host_peak_mb"]) for m, r in results.items()]
    numpy = results["numpy"]
    after = list(results).index("numpy") + 1
    rows.insert(after, ("  load", numpy["load_seconds"], numpy["load_gb_per_s"], None))
    rows.insert(after + 1, ("  compute", numpy["compute_seconds"], numpy["compute_gb_per_s"], None))
    cpu = {m: r["cpu_seconds_per_gb"] for m, r in results.items()}
    print(f"{'method':<14} {'seconds':>8} {'GB/s':>7} {'vs read':>8} {'peak MB':>8} {'cpu-s/GB':>9}")
    for method, seconds, rate, peak in rows:
        memory = f"{peak:>8.0f}" if peak is not None else f"{'':>8}"
        work = f"{cpu[method]:>9.2f}" if method in cpu else ""
        print(f"{method:<14} {seconds:>8.3f} {rate:>7.3f} {rate / read:>7.2f}x {memory} {work}")
    r = report["ratios"]
    print(f"checked / unchecked reads {r['read_checked_vs_unchecked']:.2f} (every file against the manifest)")
    print(
        f"stats/read {r['stats_vs_read']:.2f} (auroc {r['stats_auroc_vs_read']:.2f}); "
        f"stats/numpy {r['stats_vs_numpy']:.2f}x (auroc {r['stats_auroc_vs_numpy']:.2f}x); "
        f"vs numpy compute alone {r['stats_vs_numpy_compute']:.2f}x"
    )
    print(
        f"by CPU seconds per GB (cores to itself): stats/read {r['stats_vs_read_cpu']:.2f}, "
        f"auroc {r['stats_auroc_vs_read_cpu']:.2f}; exact AUROC in "
        f"{results['stats+auroc']['auroc_passes']} pass(es) over the store"
    )
    c = report["compile"]
    f = c["fresh_process"]
    print(
        f"start-up ({c['rows']} rows, AUROC): fresh process {f['process_seconds']:.2f} s (import "
        f"{f['import_seconds']:.2f} s, first call {f['first_call_seconds']:.2f} s, {f['cpu_seconds']:.2f} "
        f"CPU s); here first call {c['first_call_seconds']:.2f} s, warm {c['warm_call_seconds']:.2f} s "
        f"(numba cache: {c['numba_cache_hits']} hits, {c['numba_cache_misses']} compiled)"
    )
    if "cuda" in report:
        g = report["cuda"]
        print(
            f"cuda: moments kernel {g['moments_gb_per_s']:.1f} GB/s, d2d copy {g['d2d_gb_per_s']:.1f} GB/s "
            f"→ {g['moments_vs_d2d']:.2f}"
            + (f"; histogram kernel {g['histogram_gb_per_s']:.1f} GB/s" if "histogram_gb_per_s" in g else "")
        )
    for name, t in report["targets"].items():
        sign = "≤" if name == "auroc_peak_within_budget" else "≥"
        print(f"target {name}: {t['value']:.2f} {sign} {t['goal']}: {'met' if t['met'] else 'NOT met'}")
    check = report["correctness"]
    n32 = check["numpy_float32_relative_error"]
    print(
        f"correctness (class mean/var vs float64 numpy, ≤ {check['tolerance']:g}): max "
        f"{check['max_relative_error']:.1e}: {'ok' if check['passed'] else 'FAILED'} "
        f"(float32 numpy itself: mean {n32['mean']:.1e}, var {n32['var']:.1e})"
    )
    if check["auroc"] is not None:
        a = check["auroc"]
        print(
            f"AUROC vs scipy rank-sum ({a['neurons']} neurons): max |error| {a['max_abs_error']:.1e} "
            f"(bound {a['max_error_bound']:.1e}): {'ok' if a['passed'] else 'FAILED'}"
        )
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
