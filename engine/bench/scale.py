"""Scale-out cost: extraction, the statistics pass and an importance path in one process, on 1 Dask
worker process and on 2, in one run, with the ratios and what travels (`neurosel bench scale`).

On a 2-core machine expect overhead, not speed-up: the point is to measure the per-task cost and
the bytes that move, from which docs/scale-out.md models 8 and 64 workers. Dask's worker processes
run torch on one thread each (its nanny sets OMP_NUM_THREADS=1); the one-process extraction uses
torch's default, every core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import RESULTS_DIR, default_data_dir, environment, repeated, write_report
from neurosel.bench.extract import DEFAULT_MODEL, load_texts, sample


def make_store(path: Path, rows: int, layers: int, hidden: int) -> neurosel.ActivationStore:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    x = rng.standard_normal((rows, layers, hidden), dtype=np.float32)
    x[:, -1, :8] += 0.5 * y[:, None]
    return neurosel.store_from_array(path, x, labels=y)


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(prog="neurosel bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000, help="examples in the synthetic store")
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--n-lambdas", type=int, default=10, help="points of the importance path")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="encoder for the extraction rows")
    parser.add_argument("--texts", type=int, default=2000, help="texts extracted (0: skip extraction)")
    parser.add_argument("--dataset", choices=("sst2", "amazon", "demo"), default="sst2")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="reports (JSON)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Time every task in one process and on 1 and 2 workers, print the ratios and save the report."""
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neurosel-scale-") as tmp:
        store = make_store(Path(tmp) / "s.zarr", args.rows, args.layers, args.hidden)
        texts = sample(load_texts(args.dataset, args.data_dir), args.texts) if args.texts else []
        results = time_tasks(args, store, texts, Path(tmp))
        imp = neurosel.importance(
            store, n_lambdas=args.n_lambdas, lambda_ratio=0.1, save=False, in_core_bytes=0
        )
        nbytes = store.activations.nbytes
    base = results["one process"]
    ratios = {
        f"{name} / one process, {task}": results[name][task]["seconds"] / base[task]["seconds"]
        for name in results
        if name != "one process"
        for task in base
    }
    report = {
        "environment": environment("cpu"),
        "parameters": {
            "rows": args.rows,
            "layers": args.layers,
            "hidden": args.hidden,
            "store_bytes": int(nbytes),
            "n_lambdas": args.n_lambdas,
            "path_passes": int(imp.meta["total_passes"]),
            "repeats": args.repeats,
            "extract": {"model": args.model, "texts": len(texts), "dataset": args.dataset},
        },
        "results": results,
        "ratios": ratios,
    }
    out = write_report(report, args.out_dir, "scale", "cpu")
    for name, tasks in results.items():
        cells = "  ".join(f"{task} {value['seconds']:.2f} s" for task, value in tasks.items())
        print(f"{name:<12} {cells}")
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}×")
    print(f"results: {out}")
    return 0


def time_tasks(
    args: argparse.Namespace, store: neurosel.ActivationStore, texts: list[str], tmp: Path
) -> dict[str, Any]:
    """Extraction (when there are texts), statistics and the streamed path, --repeats times each, in
    one process and on 1 and 2 Dask worker processes: {setting: {task: timing}}."""
    import distributed

    def stats(client=None):
        neurosel.neuron_stats(store, progress=False, save=False, recompute=True, auroc=False, client=client)

    def path(client=None):
        neurosel.importance(
            store, n_lambdas=args.n_lambdas, lambda_ratio=0.1, recompute=True, save=False,
            in_core_bytes=0, client=client,
        )  # fmt: skip

    runs = iter(range(10**6))

    def extract(client=None):  # a fresh store each time: the whole extraction is timed
        neurosel.extract(
            texts, args.model, tmp / f"x{next(runs)}.zarr", device="cpu", progress=False,
            client=client,
        )  # fmt: skip

    results: dict[str, Any] = {"one process": {}}
    if texts:
        extract()  # warm: model files in the page cache, torch's kernels
        results["one process"]["extract"] = repeated(extract, args.repeats)
    results["one process"]["stats"] = repeated(stats, args.repeats)
    results["one process"]["path (streamed)"] = repeated(path, args.repeats)
    for workers in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=50,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            stats(client)  # warm the workers (imports, numba caches)
            name = f"{workers} worker{'s' if workers > 1 else ''}"
            results[name] = {}
            if texts:
                extract(client)  # warm: each worker loads the model once
                results[name]["extract"] = repeated(lambda c=client: extract(c), args.repeats)
            results[name]["stats"] = repeated(lambda c=client: stats(c), args.repeats)
            results[name]["path (streamed)"] = repeated(lambda c=client: path(c), args.repeats)
    return results


if __name__ == "__main__":
    sys.exit(main())
