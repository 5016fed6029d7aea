"""Multinomial group-L1 path speed (`neurosel bench select --classes 3`): today's neurosel.importance
against the same call with the path solver of a baseline commit, in one process, on one store.

For K ≥ 3 classes neurosel.importance fits the multinomial loss with a group-L1 penalty (one group per
neuron over its K weights). The data are synthetic, seeded and cached under --scratch-dir: neurons
share MULTINOMIAL_RANK latent factors (each neuron's factor share uniform in 0.3–0.9, as the binary
generator's), a planted multinomial model on MULTINOMIAL_PLANTED neurons draws the labels, and the
store holds float32 activations (default 4,500 × 7 × 384 = 2,688 neurons: SICK-train's shape).

Both solvers run neurosel.importance(method="l1-logistic", n_lambdas, lambda_ratio, tol,
recompute=True, save=False) on the same store with the same statistics and in-core design; the
baseline passes the path solver of --baseline (engine/solver/_path.py and its kernels as of that
commit, loaded by neurosel.bench.baseline) as neurosel.importance's `solver`.
Runs alternate (engine, baseline, engine, …; --repeats engine runs, --baseline-repeats baseline
runs, each solver's numba kernels compiled on a tiny store first), and the medians count. Every λ
must be certified (gap ≤ tol · log K), and the objectives, mean cross-entropy + λ Σ_j ‖W_j‖₂
recomputed here in float64 from each run's coefficients on the standardised data, must agree within
--rtol at every λ. JSON: bench/results/select_multinomial-k<K>_cpu_<host>.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import cached_store, environment, timed, write_report
from neurosel.bench.baseline import load_baseline
from neurosel.kernels.standardise import safe_scale
from neurosel.store import ActivationStore

SEED = 0
BASELINE_COMMIT = "13ddb79f2dce3a00568b405c6f179f8a978cff13"  # the solver before block CD with kept Hessians
MULTINOMIAL_RANK = 50  # latent factors shared by the synthetic neurons
MULTINOMIAL_PLANTED = 30  # neurons of the planted multinomial model
MARGIN_STD = 2.0  # standard deviation of the planted model's class margins
DEFAULTS = {"synthetic_rows": 4500, "synthetic_layers": 7, "synthetic_hidden": 384}
GENERATE_ROWS = 8192
LOAD_ROWS = 4096
ENGINE_META = ("backend", "design", "load_seconds", "solve_seconds", "total_passes", "classes")


def planted_multinomial(
    features: int, planted: int, classes: int, rank: int = MULTINOMIAL_RANK, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(offset, scale, loading (p, r), noise (p,), planted ids, weights (planted, K)): neuron j =
    offset_j + scale_j · z_j with z_j = √h_j ℓ_jᵀ f + √(1 − h_j) ε_j (unit variance, h_j ~ U(0.3, 0.9));
    class k's margin is z_S W_k with rows of W summing to zero, scaled so that the margins' standard
    deviation is MARGIN_STD."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0.0, 1.0, features)
    scale = rng.uniform(0.2, 2.0, features)
    share = rng.uniform(0.3, 0.9, features)
    direction = rng.standard_normal((features, rank))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    loading = np.sqrt(share)[:, None] * direction
    ids = np.sort(rng.choice(features, size=min(planted, features), replace=False))
    w = rng.standard_normal((ids.size, classes))
    w -= w.mean(1, keepdims=True)
    cov = loading[ids] @ loading[ids].T + np.diag(1.0 - share[ids])
    w *= MARGIN_STD / np.sqrt(np.trace(w.T @ cov @ w) / classes)
    return offset, scale, loading, np.sqrt(1.0 - share), ids, w


def multinomial_data(rows: int, model: tuple, seed: int = SEED + 1) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 activations (rows, p) and labels 0 … K − 1 drawn from the planted model."""
    offset, scale, loading, noise, ids, w = model
    rng = np.random.default_rng(seed)
    features, rank = loading.shape
    x = np.empty((rows, features), dtype=np.float32)
    labels = np.empty(rows, dtype=np.int64)
    lt = loading.T.astype(np.float32)
    for start in range(0, rows, GENERATE_ROWS):
        count = min(GENERATE_ROWS, rows - start)
        z = rng.standard_normal((count, rank), dtype=np.float32) @ lt
        z += rng.standard_normal((count, features), dtype=np.float32) * noise.astype(np.float32)
        m = z[:, ids].astype(np.float64) @ w
        p = np.exp(m - m.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        labels[start : start + count] = (rng.random(count)[:, None] > np.cumsum(p, 1)).sum(1)
        x[start : start + count] = z * scale.astype(np.float32) + offset.astype(np.float32)
    return x, labels


def multinomial_store(args: argparse.Namespace) -> tuple[ActivationStore, dict[str, Any]]:
    """The synthetic K-class store for these sizes (reused when complete), and how it was made."""
    rows, layers, hidden, k = args.synthetic_rows, args.synthetic_layers, args.synthetic_hidden, args.classes
    model = planted_multinomial(layers * hidden, MULTINOMIAL_PLANTED, k)
    path = args.scratch_dir / f"select_multinomial_{rows}x{layers}x{hidden}_k{k}_float32_seed{SEED}.zarr"

    def build(path: Path) -> ActivationStore:
        x, labels = multinomial_data(rows, model)
        return neurosel.store_from_array(
            path, x.reshape(rows, layers, hidden), labels=labels, dtype="float32", model_id=f"synthetic-k{k}"
        )

    store, seconds = cached_store(path, (rows, layers, hidden), args.rebuild, build)
    info = {
        "source": "synthetic multinomial",
        "seed": SEED,
        "rank": MULTINOMIAL_RANK,
        "factor_share": [0.3, 0.9],
        "planted": model[4].tolist(),
        "margin_std": MARGIN_STD,
        "store_seconds": seconds,
    }
    return store, info


def standardised(store: ActivationStore) -> np.ndarray:
    """Z = (X − mean) / std (ddof=1; std 0 → 1) in float64 from the store's statistics, as the engine."""
    stats = neurosel.neuron_stats(store, by=None, device="cpu", progress=False)
    center = stats.mean.ravel().astype(np.float64)
    scale = stats.std.ravel().astype(np.float64)
    scale = safe_scale(scale)
    z = np.empty((store.n, center.size))
    for start in range(0, store.n, LOAD_ROWS):
        block = store.read(rows=slice(start, min(start + LOAD_ROWS, store.n)))
        z[start : start + block.shape[0]] = (block.reshape(block.shape[0], -1) - center) / scale
    return z


def objectives(z: np.ndarray, labels: np.ndarray, imp: Any) -> list[float]:
    """Mean cross-entropy + λ Σ_j ‖W_j‖₂ at every λ of an Importance, in float64 numpy."""
    classes = np.unique(labels, return_inverse=True)[1]
    out = []
    for lam, coef, b in zip(imp.lambdas, imp.coef, imp.intercept, strict=True):
        w = coef.reshape(coef.shape[0], -1).T  # (p, K)
        support = np.flatnonzero(np.any(w != 0, axis=1))
        m = z[:, support] @ w[support] + b
        loss = np.mean(np.logaddexp.reduce(m, axis=1) - m[np.arange(len(classes)), classes])
        out.append(float(loss + lam * np.linalg.norm(w, axis=1).sum()))
    return out


def warm_up(scratch: Path, classes: int, solver: Callable | None) -> float:
    """A tiny K-class path with `solver` (None: today's), so that numba compilation is not timed."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((90, 1, 8))
    path = scratch / f"select-multinomial-warmup-{id(solver)}.zarr"
    started = time.perf_counter()
    try:
        store = neurosel.store_from_array(path, x, labels=np.arange(90) % classes, dtype="float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            neurosel.importance(store, n_lambdas=3, device="cpu", recompute=True, save=False, solver=solver)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return time.perf_counter() - started


def one_run(
    store: ActivationStore, args: argparse.Namespace, solver: Callable | None
) -> tuple[dict[str, Any], Any]:
    """neurosel.importance on the store, timed, with `solver` (None: today's) as its path solver."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        measurement, imp = timed(
            lambda: neurosel.importance(
                store, method="l1-logistic", n_lambdas=args.n_lambdas, lambda_ratio=args.lambda_ratio,
                tol=args.tol, device="cpu", recompute=True, save=False, solver=solver,
            )
        )  # fmt: skip
    record = {
        "seconds": measurement.seconds,
        "solve_seconds": imp.meta["solve_seconds"],
        "host_peak_mb": measurement.host_peak_mb,
        "warnings": [str(w.message) for w in got],
    }
    return record, imp


def summary(
    runs: list[dict[str, Any]], imp: Any, z: np.ndarray, labels: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Median times over the runs, and the last run's path: passes, certificates, supports, objectives."""
    k = int(imp.meta["classes"])
    gaps = np.asarray(imp.gaps, dtype=np.float64)
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "solve_seconds": statistics.median(r["solve_seconds"] for r in runs),
        "seconds_all": [r["seconds"] for r in runs],
        "solve_seconds_all": [r["solve_seconds"] for r in runs],
        "host_peak_mb": max(r["host_peak_mb"] for r in runs),
        "warnings": sorted({w for r in runs for w in r["warnings"]}),
        "passes": int(np.asarray(imp.passes)[-1]),
        "lambdas": np.asarray(imp.lambdas).tolist(),
        "gaps": gaps.tolist(),
        "gap_tolerance": args.tol * np.log(k),
        "certified": int(np.sum(gaps <= args.tol * np.log(k))),
        "converged": bool(imp.meta.get("converged", True)),
        "support_sizes": np.asarray(imp.support_sizes).tolist(),
        "objective": objectives(z, labels, imp),
        "ranking_top": np.asarray(imp.ranking[:MULTINOMIAL_PLANTED]).tolist(),
        "meta": {key: imp.meta[key] for key in ENGINE_META if key in imp.meta},
    }


def run_multinomial(args: argparse.Namespace) -> int:
    """Time today's solver and the baseline's on the K-class store, check them, print and save.
    0 on success, 1 when a path is not certified or the objectives differ by more than --rtol."""
    store, info = multinomial_store(args)
    baseline: Any = None
    reason = "not requested (--baseline none)"
    if args.baseline.lower() != "none":
        loaded = load_baseline(args.baseline, args.scratch_dir)
        baseline, reason = (None, loaded) if isinstance(loaded, str) else (loaded.sparse_path, "")
    warmup = {"engine": warm_up(args.scratch_dir, args.classes, None)}
    if baseline is not None:
        warmup["baseline"] = warm_up(args.scratch_dir, args.classes, baseline)
    runs: dict[str, list[dict[str, Any]]] = {"engine": [], "baseline": []}
    last: dict[str, Any] = {}
    for i in range(max(args.repeats, args.baseline_repeats if baseline is not None else 0)):
        if i < args.repeats:
            record, last["engine"] = one_run(store, args, None)
            runs["engine"].append(record)
            print(f"engine   run {i + 1}: {record['seconds']:.2f} s", flush=True)
        if baseline is not None and i < args.baseline_repeats:
            record, last["baseline"] = one_run(store, args, baseline)
            runs["baseline"].append(record)
            print(f"baseline run {i + 1}: {record['seconds']:.2f} s", flush=True)
    z, labels = standardised(store), store.labels
    results = {name: summary(runs[name], imp, z, labels, args) for name, imp in last.items()}
    for r in results.values():
        r["planted_in_top"] = len(set(r["ranking_top"]) & set(info["planted"])) / len(info["planted"])
    report = {
        "environment": environment("cpu"),
        "parameters": parameters(args, store, info),
        "warmup_seconds": warmup,
        "engine": results["engine"],
        "baseline": results.get("baseline", {"status": reason}),
    }
    report["ratio"], report["correctness"] = compare(results, args.rtol)
    out = write_report(report, args.out_dir, f"select_multinomial-k{args.classes}", "cpu")
    print_report(report, out)
    return 0 if report["correctness"]["passed"] else 1


def compare(results: dict[str, Any], rtol: float) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The baseline's time over the engine's (path total and solver alone), and the checks."""
    e = results["engine"]
    ok = e["converged"] and e["certified"] == len(e["gaps"])
    if "baseline" not in results:
        return None, {"engine_certified": ok, "passed": ok}
    b = results["baseline"]
    rel = (np.array(e["objective"]) - np.array(b["objective"])) / np.abs(b["objective"])
    checks = {
        "engine_certified": ok,
        "baseline_certified": b["converged"] and b["certified"] == len(b["gaps"]),
        "max_abs_rel_objective_diff": float(np.max(np.abs(rel))),
        "rtol": rtol,
        "same_support_sizes": e["support_sizes"] == b["support_sizes"],
    }
    checks["passed"] = bool(ok and checks["max_abs_rel_objective_diff"] <= rtol)
    ratio = {"seconds": b["seconds"] / e["seconds"], "solve_seconds": b["solve_seconds"] / e["solve_seconds"]}
    return ratio, checks


def parameters(args: argparse.Namespace, store: ActivationStore, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": f"synthetic-multinomial-k{args.classes}",
        "store": str(store.path),
        "examples": store.n,
        "layers": len(store.layers),
        "hidden": store.hidden,
        "features": len(store.layers) * store.hidden,
        "classes": args.classes,
        "class_counts": np.bincount(store.labels).tolist(),
        "dtype": store.meta["dtype"],
        **info,
        "n_lambdas": args.n_lambdas,
        "lambda_ratio": args.lambda_ratio,
        "engine_tol": args.tol,
        "rtol": args.rtol,
        "engine_repeats": args.repeats,
        "baseline": args.baseline,
        "baseline_repeats": args.baseline_repeats,
        "threads": args.threads,
        "objective": "mean cross-entropy + λ Σ_j ‖W_j‖₂, intercepts unpenalised, float64 numpy",
        "order": "runs alternate engine, baseline, engine, …; medians",
    }


def print_report(report: dict[str, Any], path: Path) -> None:
    p = report["parameters"]
    print(
        f"{p['dataset']}: {p['examples']} × {p['features']} {p['dtype']}, {p['classes']} classes, "
        f"{p['n_lambdas']} λ down to λ_max × {p['lambda_ratio']:g}, {p['threads']} thread(s)"
    )
    for name in ("engine", "baseline"):
        r = report[name]
        if "status" in r:
            print(f"{name:<8} {r['status']}")
            continue
        print(
            f"{name:<8} {r['seconds']:8.2f} s (solver {r['solve_seconds']:.2f} s), {r['passes']} passes, "
            f"{r['certified']}/{len(r['gaps'])} λ certified, final support {r['support_sizes'][-1]}"
        )
    if report["ratio"] is not None:
        c = report["correctness"]
        ratio, diff = report["ratio"], c["max_abs_rel_objective_diff"]
        print(
            f"speed-up over the baseline: {ratio['seconds']:.1f}× (solver alone "
            f"{ratio['solve_seconds']:.1f}×); objectives within {diff:.1e}"
        )
    print(f"correctness: {'ok' if report['correctness']['passed'] else 'FAILED'}")
    print(f"results: {path}")
