"""Importance-solver speed: neurosel.importance against open L1-logistic solvers at equal objective.

One run per dataset, every solver on the same problem: neurons standardised with the store's own
mean and standard deviation (ddof=1, neurosel.neuron_stats), then for each λ of the engine's path the
L1-logistic objective in mean form, mean log-loss + λ‖w‖₁ with an unpenalised intercept
(scikit-learn's C = 1/(λ n)).

  engine     neurosel.importance(method="l1-logistic", n_lambdas, lambda_ratio, tol, recompute=True,
             save=False) on the float16 store (it loads it in core or streams it: its meta, in the
             JSON, says which, and the time includes that load): the path from λ_max down, every λ
             certified (gap ≤ tol · log 2); the single-λ problem, neurosel.importance(n_lambdas=2):
             λ_max (certified at zero in one full pass) then the path's last λ from zero; and the
             support task, neurosel.importance(target_support=k): the same path, stopped at the first λ
             whose support reaches k (--target-support, 300)
  saga       scikit-learn LogisticRegression(l1_ratio=1, solver="saga"), one fit per λ, warm-started
             along the path (warm_start=True), on the standardised data in memory (float64)
  liblinear  the same with solver="liblinear", a fresh fit per λ (no warm start); liblinear
             penalises the intercept, so it gets intercept_scaling=1e4 (penalty λ|b|/1e4, an objective
             bias ~ 2(λ/1e4)²; at 100 the bias at λ_max was 4e-6 to 2e-5 relative in small runs,
             above the 1e-6 target)
  skglm      skglm.GeneralizedLinearEstimator(datafits.Logistic(), penalties.L1(alpha=λ),
             solvers.ProxNewton(fit_intercept=True, warm_start=True)), one estimator warm-started
             along the path; Logistic is mean log-loss over labels in {-1, 1} (it maps 0/1 itself) and
             ProxNewton's intercept is unpenalised, so alpha is the engine's λ exactly; tol bounds
             the largest violation of the optimality conditions
  celer      celer.celer_path(pb="logreg", use_PN=True) (celer's LogisticRegression: Prox-Newton with
             working sets), one α per call warm-started from the previous λ's coefficients
             (coef_init); its problem is Σ log-loss + α‖w‖₁ with labels ±1 and no intercept, so α = λ n
             and the intercept is a constant column of value --intercept-scaling (as liblinear's;
             penalty λ|b|/1e4); tol: duality gap ≤ tol · n · log 2, the engine's criterion
  glum       glum.GeneralizedLinearRegressor(family="binomial", l1_ratio=1, alpha=λ, solver="irls-cd",
             warm_start=True), one estimator warm-started along the path; glum minimises
             deviance/(2n) + alpha‖w‖₁ with an unpenalised intercept, and the binomial unit deviance is
             twice the log-loss, so alpha is the engine's λ; tol is its gradient_tol
  cuml       cuml.LogisticRegression(penalty="l1", solver="qn"), a fresh fit per λ, data on the GPU;
             recorded as "not installed" where `import cuml` fails

skglm, celer and glum are benchmark-only dependencies (`pip install -e .[bench]`); one that does
not import is recorded as "not installed". They read one float64 Fortran-ordered copy of the
standardised data (their preferred layout: column access without a copy per fit), scikit-learn
the row-major one it wants. --threads N (default 1; 0 leaves the libraries' defaults) pins
every BLAS and OpenMP pool (threadpoolctl) and numba's threads for the whole run, engine and
peers alike; the JSON records the pools as they ran.

"Equal objective": each solver's objective is computed here in float64 numpy from its own
coefficients and compared with the engine's at every λ; its tol is tightened along --tols until
every λ is within --rtol (relative) of the engine's objective or below it, and the time of the
first setting that reaches it counts. A solver that does not reach it within --budget-s (per
solver, dataset and task; checked between fits, and each fit's max_iter is capped from the
measured seconds per iteration so that it cannot run far past the budget; a setting cut short by
the budget ends the search) is reported with the time spent, the gap it reached and "not
reached"; nothing is extrapolated. --path-stride > 1 fits only every k-th λ of the path (the
JSON says which, for the path and the support task alike); the default is every λ. The support
task's peers fit the λs of the engine's stopped path.

Run it as `neurosel bench select` or `python -m neurosel.bench.solvers`. --store PATH benchmarks an
existing store of your own instead (any model; two classes), with the same solvers and tasks.

Datasets: Amazon reviews of one domain (neurosel.experiments: title + review text; positive = 1,
negative = 0) through all-MiniLM-L6-v2, mean-pooled, all layers, float16 (2,000 × 2,688 for the
default domain books); and seeded synthetic float16 activations with correlated neurons (low-rank
factors plus noise) and a planted sparse logistic model (100,000 × 9,984 by default: 13 layers ×
768, bert-base's width). Both stores are built once under bench/scratch/ and reused. Results go
to bench/results/ (of the current directory) as JSON, one file per dataset.

--baseline COMMIT also times the path task with neurosel.importance's path solver as of COMMIT
(neurosel.bench.baseline loads it from git into this process; it runs as neurosel.importance's
`solver`), --baseline-repeats times after the engine's runs, and reports its time over the engine's
and the largest relative difference of their objectives; the JSON is then
select_<dataset>_vs-<commit>_*. --classes K ≥ 3 runs the multinomial group-L1 benchmark instead
(neurosel.bench.select_multinomial: synthetic K-class data, 4,500 × 7 × 384 by default, the engine
against --baseline, by default the solver before its group-L1 rewrite).

--grid runs the synthetic dataset at every rows × neurons of --grid-rows (2,000, 10,000, 50,000) and
--grid-neurons (2,688 = 7 × 384 and 9,984 = 13 × 768), tasks path and support (or --tasks), and
writes one JSON (select_grid_*) with every cell's report and a table of seconds and ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import importlib
import importlib.util
import os
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import (
    RESULTS_DIR,
    SCRATCH_DIR,
    cached_store,
    default_data_dir,
    environment,
    timed,
    write_report,
)
from neurosel.bench.baseline import load_baseline
from neurosel.bench.extract import DEFAULT_MAX_LENGTH, DEFAULT_MODEL
from neurosel.bench.select_multinomial import BASELINE_COMMIT, run_multinomial
from neurosel.bench.select_multinomial import DEFAULTS as MULTINOMIAL_DEFAULTS
from neurosel.devices import to_host
from neurosel.errors import InputError
from neurosel.experiments import EXPERIMENTS, read_domain
from neurosel.kernels.standardise import safe_scale
from neurosel.stats import NeuronStats
from neurosel.store import ActivationStore, open_store

SEED = 0
SOLVERS = ("saga", "liblinear", "skglm", "celer", "glum", "cuml")
PEERS = ("skglm", "celer", "glum")  # benchmark-only dependencies (the bench extra): pip install -e .[bench]
TASKS = ("path", "single", "support")
DEFAULT_TASKS = ("path", "single")
GRID_TASKS = ("path", "support")
TARGET_SUPPORT = 300  # the support task: the engine's path stops at the first λ with this many neurons
BUDGET_S = 600.0  # seconds per solver, dataset and task
GRID_BUDGET_S = 60.0  # the same in each grid cell: saga alone would otherwise spend 2 × 600 s per cell
GRID_ROWS = (2000, 10000, 50000)
GRID_NEURONS = (2688, 9984)
NEURON_SHAPES = {2688: (7, 384), 9984: (13, 768)}  # all-MiniLM-L6-v2 (7 × 384) and bert-base (13 × 768)
DATASETS = ("amazon", "synthetic")
DEFAULT_TOLS = "1e-4,1e-5,1e-6,1e-7,1e-8,1e-9,1e-10"
OBJECTIVE_RTOL = 1e-6  # "equal objective": solver ≤ engine · (1 + rtol) at every λ
INTERCEPT_SCALING = 1e4  # liblinear: intercept penalty λ|b| / 1e4; objective bias ~ 2 (λ / 1e4)²
MAX_ITER = 1_000_000  # solver iterations per fit when the budget does not cap them
CALIBRATION_ITERS = 4  # extra iterations of the fit that first estimates seconds per iteration
RATE_MIN_ITERS = 10  # fits with fewer iterations do not update that estimate
TARGET_VS_SAGA = 20.0  # path, CPU
TARGET_VS_LIBLINEAR = 5.0  # path, CPU
SYNTHETIC_RANK = 32  # latent factors shared by the synthetic neurons
SYNTHETIC_PLANTED = 32  # neurons of the planted logistic model
SYNTHETIC_MARGIN_STD = 2.0  # standard deviation of the planted model's margin
ENGINE_META = ("backend", "design", "load_seconds", "solve_seconds", "total_passes", "classes")
GENERATE_ROWS = 8192  # synthetic rows generated per step
LOAD_ROWS = 4096  # rows standardised per step when loading the store for scikit-learn
LIBLINEAR_NODE_BYTES = 16  # liblinear copies dense X into (index, value) feature_node pairs
QUICK = {  # --quick: sizes small enough for a test
    "synthetic_rows": 2000,
    "synthetic_layers": 2,
    "synthetic_hidden": 128,
    "n_lambdas": 5,
    "repeats": 1,
    "budget_s": 60.0,
}


def default_solvers(grid: bool = False) -> tuple[str, ...]:
    """saga, liblinear and cuml, and skglm where it is installed (celer and glum when asked for); the
    grid leaves saga out (it does not reach the engine's objective within a cell's budget; ask for it)."""
    extra = ("skglm",) if importlib.util.find_spec("skglm") is not None else ()
    return ("liblinear", *extra, "cuml") if grid else ("saga", "liblinear", *extra, "cuml")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    p = argparse.ArgumentParser(prog="neurosel bench select", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", nargs="+", choices=DATASETS, default=list(DATASETS), help="one file each")
    p.add_argument(
        "--store", type=Path, default=None, help="benchmark your own store instead (any model; two classes)"
    )
    p.add_argument("--domain", choices=EXPERIMENTS["amazon"], default="books", help="Amazon reviews domain")
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared datasets folder")
    p.add_argument("--amazon-n", type=int, default=None, help="Amazon reviews, a seeded subset (default all)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="encoder for the Amazon store")
    p.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH["amazon"], help="Amazon tokens")
    p.add_argument("--extract-device", default="auto", help="device that builds the Amazon store")
    p.add_argument("--synthetic-rows", type=int, default=100_000, help="synthetic examples")
    p.add_argument("--synthetic-layers", type=int, default=13, help="synthetic layers")
    p.add_argument("--synthetic-hidden", type=int, default=768, help="synthetic neurons per layer")
    p.add_argument("--n-lambdas", type=int, default=20, help="points on the engine's path")
    p.add_argument("--lambda-ratio", type=float, default=1e-2, help="last λ / λ_max")
    p.add_argument("--tol", type=float, default=1e-6, help="engine: gap ≤ tol · log 2 at every λ")
    p.add_argument("--tols", default=DEFAULT_TOLS, help="solver tols tried in turn, comma list")
    p.add_argument("--rtol", type=float, default=OBJECTIVE_RTOL, help="equal objective, relative")
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"seconds per solver, dataset (or grid cell) and task (default {BUDGET_S:g}, "
        f"with --grid {GRID_BUDGET_S:g})",
    )
    p.add_argument(
        "--solvers",
        default=None,
        help=f"comma list of {', '.join(SOLVERS)} (default {','.join(default_solvers())}; with --grid "
        f"{','.join(default_solvers(grid=True))})",
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="comma list of path, single, support (default path,single; with --grid path,support)",
    )
    p.add_argument(
        "--target-support", type=int, default=TARGET_SUPPORT, help="the support task: neurons in the support"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP (threadpoolctl) and numba threads for every solver (default 1; 0 = unpinned)",
    )
    p.add_argument("--grid", action="store_true", help="the synthetic scaling grid (rows × neurons)")
    p.add_argument(
        "--grid-rows", default=",".join(map(str, GRID_ROWS)), help="--grid: comma list of example counts"
    )
    p.add_argument(
        "--grid-neurons",
        default=",".join(map(str, GRID_NEURONS)),
        help="--grid: comma list of neuron counts (2688 = 7x384, 9984 = 13x768) or LAYERSxHIDDEN",
    )
    p.add_argument(
        "--path-stride",
        type=int,
        default=1,
        help="solvers fit every k-th λ of the path (the last always); 1 = the full path",
    )
    p.add_argument(
        "--intercept-scaling",
        type=float,
        default=INTERCEPT_SCALING,
        help="liblinear's intercept_scaling, celer's intercept column",
    )
    p.add_argument(
        "--classes",
        type=int,
        default=2,
        help="2: the binary L1 benchmark; K ≥ 3: the multinomial group-L1 path on synthetic K-class data "
        "(engine/bench/select_multinomial.py; default 4,500 × 7 × 384), today's solver against --baseline",
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="a git commit whose path solver is timed too, in this process (neurosel.bench.baseline); 'none' "
        f"skips it (default: none for 2 classes, {BASELINE_COMMIT[:7]} for K ≥ 3)",
    )
    p.add_argument("--baseline-repeats", type=int, default=1, help="baseline runs; the median counts")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="the engine's device")
    p.add_argument("--repeats", type=int, default=3, help="engine runs; the median time counts")
    p.add_argument(
        "--quick", action="store_true", help="tiny synthetic run (2,000 × 256, 5 λ, 60 s budget) for tests"
    )
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="reports (JSON)")
    p.add_argument("--scratch-dir", type=Path, default=SCRATCH_DIR, help="stores, kept for reuse")
    p.add_argument("--rebuild", action="store_true", help="rebuild the stores even if present")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if the engine did not converge or a solver beat its objective
    by more than --rtol, 2 on unusable input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:  # tiny defaults; options given explicitly still win
        parser.set_defaults(dataset=["synthetic"], **QUICK)
        args = parser.parse_args(argv)
    if args.classes > 2:  # the multinomial benchmark's sizes; options given explicitly still win
        parser.set_defaults(dataset=["synthetic"], **MULTINOMIAL_DEFAULTS)
        args = parser.parse_args(argv)
    if args.classes < 2 or args.baseline_repeats < 1:
        parser.error("--classes must be ≥ 2 and --baseline-repeats ≥ 1")
    if args.budget_s is None:
        args.budget_s = GRID_BUDGET_S if args.grid else BUDGET_S
    solvers_text = args.solvers or ",".join(default_solvers(grid=args.grid))
    solvers = comma_list(parser, "--solvers", solvers_text, SOLVERS)
    tasks_text = args.tasks or ",".join(GRID_TASKS if args.grid else DEFAULT_TASKS)
    tasks = comma_list(parser, "--tasks", tasks_text, TASKS)
    try:
        tols = [float(t) for t in args.tols.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--tols {args.tols!r}: use a comma list of numbers, e.g. {DEFAULT_TOLS}")
    if not tols or min(tols) <= 0:
        parser.error(f"--tols {args.tols!r}: use positive numbers, e.g. {DEFAULT_TOLS}")
    sizes = (args.synthetic_rows, args.synthetic_layers, args.synthetic_hidden, args.repeats)
    if min(*sizes, args.path_stride, args.amazon_n or 1, args.target_support) < 1 or args.n_lambdas < 2:
        parser.error(
            "--synthetic-*, --amazon-n, --repeats, --path-stride and --target-support must be ≥ 1, "
            "--n-lambdas ≥ 2"
        )
    if not 0 < args.lambda_ratio < 1 or min(args.tol, args.rtol, args.budget_s) <= 0:
        parser.error("--lambda-ratio must lie in (0, 1); --tol, --rtol and --budget-s must be > 0")
    if args.threads < 0:
        parser.error("--threads must be ≥ 0 (0: the libraries' own defaults)")
    if args.grid and args.store is not None:
        parser.error("--grid runs synthetic stores of every size; leave out --store")
    grid = grid_cells(parser, args) if args.grid else None
    if args.classes > 2:
        if args.grid or args.dataset != ["synthetic"] or args.store is not None:
            parser.error(
                "--classes K ≥ 3 runs on synthetic data only: pass --dataset synthetic, no --grid or --store"
            )
        args.baseline = args.baseline or BASELINE_COMMIT
        with pinned_threads(args.threads, []):
            return run_multinomial(args)
    with pinned_threads(args.threads, solvers):
        if grid is not None:
            return run_grid(args, grid, solvers, tasks, tols)
        code = 0
        for name in ["store"] if args.store is not None else args.dataset:
            try:
                make = {"amazon": amazon_dataset, "synthetic": synthetic_dataset, "store": user_dataset}[name]
                dataset = make(args)
                code = max(code, run(args, dataset, solvers, tasks, tols))
            except InputError as e:
                print(f"bench select: {name}: error: {e}", file=sys.stderr)
                code = 2
        return code


def comma_list(parser: argparse.ArgumentParser, option: str, value: str, allowed: Sequence[str]) -> list[str]:
    """The names of a comma list, checked against `allowed`."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names or set(names) - set(allowed):
        parser.error(f"{option} {value!r}: use a comma list of {', '.join(allowed)}")
    return names


def grid_cells(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[int, int, int]]:
    """(rows, layers, hidden) of every --grid cell, rows outer."""
    try:
        rows = [int(r) for r in args.grid_rows.split(",") if r.strip()]
        shapes = [neuron_shape(v.strip()) for v in args.grid_neurons.split(",") if v.strip()]
    except ValueError:
        parser.error(
            f"--grid-rows {args.grid_rows!r} / --grid-neurons {args.grid_neurons!r}: comma lists of "
            "integers (neurons also as LAYERSxHIDDEN, e.g. 7x384)"
        )
    if not rows or not shapes or min(rows) < 1 or min(min(s) for s in shapes) < 1:
        parser.error("--grid-rows and --grid-neurons need positive sizes")
    return [(r, layers, hidden) for r in rows for layers, hidden in shapes]


def neuron_shape(value: str) -> tuple[int, int]:
    """Layers × hidden for a neuron count: the encoders' shapes where known (2688 = 7 × 384, 9984 =
    13 × 768), else hidden 768 or 384 where it divides, else one layer; or LAYERSxHIDDEN as given."""
    if "x" in value.lower():
        layers, hidden = (int(v) for v in value.lower().split("x"))
        return layers, hidden
    neurons = int(value)
    if neurons in NEURON_SHAPES:
        return NEURON_SHAPES[neurons]
    for hidden in (768, 384):
        if neurons % hidden == 0:
            return neurons // hidden, hidden
    return 1, neurons


@contextlib.contextmanager
def pinned_threads(threads: int, solvers: Sequence[str]) -> Iterator[None]:
    """Every BLAS and OpenMP pool (threadpoolctl) and numba at `threads` threads; 0 changes nothing.

    The peers' libraries are imported first, so that the OpenMP runtimes they load are pinned too.
    numba's setting is per thread: the engine's kernels and skglm's run on this one."""
    if threads <= 0:
        yield
        return
    import numba
    import sklearn.linear_model  # noqa: F401  (its OpenMP runtime)
    from threadpoolctl import threadpool_limits

    for name in solvers:
        if name in PEERS:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(before)


# --- datasets ---------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A labelled store to benchmark on, and how it was made."""

    name: str
    store: ActivationStore
    info: dict[str, Any] = field(default_factory=dict)
    planted: np.ndarray | None = None  # flat neuron ids of the planted model (synthetic only)


def amazon_dataset(args: argparse.Namespace) -> Dataset:
    """Amazon reviews through the encoder into a float16 store: built once, then reused as is."""
    from neurosel.devices import resolve_device
    from neurosel.extraction import resolve_precision

    reviews = read_domain("amazon", args.domain, args.data_dir, limit=args.amazon_n, seed=SEED)
    texts, labels = reviews.texts, reviews.labels
    device = resolve_device(args.extract_device).for_stage("extract").torch
    precision = resolve_precision("auto", device)
    digest = hashlib.sha1("\0".join(texts).encode() + labels.tobytes()).hexdigest()[
        :8
    ]  # other texts: new store
    name = f"select_amazon_{args.domain}_{Path(args.model).name}_{len(texts)}_L{args.max_length}_{precision}"
    path = args.scratch_dir / f"{name}_{digest}.zarr"
    args.scratch_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = neurosel.extract(
        texts,
        args.model,
        path,
        labels=labels,
        pooling="mean",
        layers="all",
        dtype="float16",
        precision=precision,
        max_length=args.max_length,
        device=str(device),
        progress=True,
        store_texts=False,
        resume=not args.rebuild,
    )
    info = {
        "source": f"amazon_multidomain_blitzer2007/{args.domain}",
        "reader": f"read_domain('amazon', {args.domain!r}, limit={args.amazon_n}, seed={SEED})",
        "model": args.model,
        "max_length": args.max_length,
        "pooling": "mean",
        "extract_precision": precision,
        "extract_device": str(device),
        "store_seconds": time.perf_counter() - started,
    }
    return Dataset(f"amazon-{args.domain}", store, info)


@dataclass(frozen=True)
class PlantedModel:
    """A factor model of correlated neurons and a sparse logistic model on their standardised values.

    Neuron j = offset_j + scale_j · z_j with z_j = √h_j · ℓ_jᵀ f + √(1 − h_j) · ε_j (f ~ N(0, I_r),
    ‖ℓ_j‖ = 1, ε_j ~ N(0, 1)), so z_j has unit variance and neurons share the r factors the way
    activations of one encoder do; P(y = 1) = σ(z_S w_S) on the planted neurons S.
    """

    offset: np.ndarray
    scale: np.ndarray
    loading: np.ndarray  # (p, r), rows √h_j ℓ_j
    noise: np.ndarray  # (p,), √(1 − h_j)
    planted: np.ndarray
    weights: np.ndarray


def planted_model(features: int, planted: int, rank: int = SYNTHETIC_RANK, seed: int = SEED) -> PlantedModel:
    """The seeded synthetic model (no data): independent of the number of rows."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0.0, 1.0, features)
    scale = rng.uniform(0.2, 2.0, features)
    share = rng.uniform(0.3, 0.9, features)  # h_j: variance explained by the factors
    direction = rng.standard_normal((features, rank))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    loading = np.sqrt(share)[:, None] * direction
    ids = np.sort(rng.choice(features, size=min(planted, features), replace=False))
    w = rng.choice([-1.0, 1.0], ids.size) * rng.uniform(0.5, 1.5, ids.size)
    cov = loading[ids] @ loading[ids].T + np.diag(1.0 - share[ids])
    w *= SYNTHETIC_MARGIN_STD / np.sqrt(w @ cov @ w)
    return PlantedModel(offset, scale, loading, np.sqrt(1.0 - share), ids, w)


def synthetic_data(rows: int, model: PlantedModel, seed: int = SEED + 1) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float16 activations (rows, p) and 0/1 labels drawn from the planted model, in steps."""
    rng = np.random.default_rng(seed)
    features, rank = model.loading.shape
    x = np.empty((rows, features), dtype=np.float16)
    y = np.empty(rows, dtype=np.int64)
    loading = model.loading.T.astype(np.float32)
    for start in range(0, rows, GENERATE_ROWS):
        count = min(GENERATE_ROWS, rows - start)
        z = rng.standard_normal((count, rank), dtype=np.float32) @ loading
        z += rng.standard_normal((count, features), dtype=np.float32) * model.noise.astype(np.float32)
        margin = z[:, model.planted].astype(np.float64) @ model.weights
        y[start : start + count] = rng.random(count) < 1.0 / (1.0 + np.exp(-margin))
        x[start : start + count] = z * model.scale.astype(np.float32) + model.offset.astype(np.float32)
    return x, y


def user_dataset(args: argparse.Namespace) -> Dataset:
    """--store: the user's own store (any model), as it is; two classes."""
    store = open_store(args.store)
    if store.labels is None or store.meta.get("label_kind") != "class" or np.unique(store.labels).size != 2:
        raise InputError(f"store {args.store}: bench select needs two classes (an L1-logistic path)")
    name = "store-" + "".join(c if c.isalnum() or c in "._-" else "-" for c in Path(store.path).stem)
    info = {"source": str(store.path), "model": store.meta.get("model_id")}
    return Dataset(name, store, info)


def synthetic_dataset(args: argparse.Namespace) -> Dataset:
    """The synthetic store for these sizes: reused when complete, else (re)built."""
    rows, layers, hidden = args.synthetic_rows, args.synthetic_layers, args.synthetic_hidden
    model = planted_model(layers * hidden, SYNTHETIC_PLANTED)
    name = f"select_synthetic_{rows}x{layers}x{hidden}_float16_seed{SEED}.zarr"

    def build(path: Path) -> ActivationStore:
        x, y = synthetic_data(rows, model)
        return neurosel.store_from_array(
            path, x.reshape(rows, layers, hidden), labels=y, dtype="float16", model_id=f"synthetic-seed{SEED}"
        )

    store, seconds = cached_store(args.scratch_dir / name, (rows, layers, hidden), args.rebuild, build)
    info = {
        "source": "synthetic",
        "seed": SEED,
        "rank": SYNTHETIC_RANK,
        "planted": model.planted.tolist(),
        "planted_weights": model.weights.tolist(),
        "margin_std": SYNTHETIC_MARGIN_STD,
        "store_seconds": seconds,  # None: reused
    }
    return Dataset("synthetic", store, info, model.planted)


# --- the problem every solver sees --------------------------------------------------------------


@dataclass
class Problem:
    """Standardised neurons Z (float64, in memory) and 0/1 labels y, as the engine standardises them."""

    z: np.ndarray
    y: np.ndarray
    load_seconds: float
    columns: np.ndarray | None = None  # Z in column-major order and a constant column: skglm, celer, glum

    @property
    def n(self) -> int:
        return self.y.size

    @property
    def p(self) -> int:
        return self.z.shape[1]

    def column_major(self, intercept_column: float) -> np.ndarray:
        """[Z, c] as one Fortran-ordered float64 array, built once (outside every timing): Z is its
        first p columns, itself Fortran-contiguous, and the last column (c = `intercept_column`, set
        on each call) stands in for the intercept of solvers that cannot fit one (celer)."""
        if self.columns is None:
            self.columns = np.empty((self.n, self.p + 1), order="F")
            self.columns[:, : self.p] = self.z
        self.columns[:, self.p] = intercept_column
        return self.columns


def store_stats(store: ActivationStore) -> tuple[NeuronStats, float]:
    """The unlabelled statistics the engine standardises with (saved in the store, reused), and seconds."""
    started = time.perf_counter()
    stats = neurosel.neuron_stats(store, by=None, device="cpu", progress=False)
    return stats, time.perf_counter() - started


def load_problem(store: ActivationStore, stats: NeuronStats) -> Problem:
    """Z = (X − mean) / std (ddof=1; std 0 → 1) from the store's own statistics, as the engine does."""
    n, features = store.n, len(store.layers) * store.hidden
    need, free = n * features * 8, available_bytes()
    if free is not None and need > free:
        raise InputError(
            f"standardised float64 data needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB available; "
            "pass fewer --synthetic-rows"
        )
    started = time.perf_counter()
    center = stats.mean.ravel().astype(np.float64)
    scale = stats.std.ravel().astype(np.float64)
    scale = safe_scale(scale)
    z = np.empty((n, features))
    for start in range(0, n, LOAD_ROWS):
        block = store.read(rows=slice(start, min(start + LOAD_ROWS, n)))
        z[start : start + block.shape[0]] = (block.reshape(block.shape[0], -1) - center) / scale
    labels = store.labels
    if labels is None or np.unique(labels).size != 2:
        raise InputError(f"store {store.path}: the benchmark needs two-class labels")
    y = (labels == np.unique(labels)[1]).astype(np.float64)
    return Problem(z, y, time.perf_counter() - started)


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), None elsewhere."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def objective(problem: Problem, lam: float, w: np.ndarray, b: float) -> float:
    """mean log-loss + λ‖w‖₁ (intercept unpenalised), float64."""
    support = np.flatnonzero(w)
    m = problem.z[:, support] @ w[support] + b
    return float(np.mean(np.logaddexp(0.0, m) - problem.y * m) + lam * np.abs(w).sum())


# --- the engine -------------------------------------------------------------------------------


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


# --- the other solvers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Solver:
    """How to build, fit and read one solver's estimator (scikit-learn's API: coef_, intercept_, n_iter_).

    `make(λ, tol, max_iter)` builds an estimator for the engine's mean-form λ (each solver maps it to
    its own parameter); `update(estimator, λ, max_iter)`, where the solver has one, moves a fitted
    estimator to the next λ of the path so that its fit starts from the last solution (warm start)."""

    name: str
    make: Callable[[float, float, int], Any]  # (λ, tol, max_iter) → estimator
    fit: Callable[[Any], None]
    settings: dict[str, Any]
    update: Callable[[Any, float, int], None] | None = None  # None: a fresh fit per λ

    @property
    def warm(self) -> bool:
        return self.update is not None


def sklearn_solver(name: str, problem: Problem, args: argparse.Namespace) -> Solver:
    """saga (warm-started along the path) or liblinear (fresh fits, large intercept_scaling); C = 1/(λ n)."""
    from sklearn.linear_model import LogisticRegression

    extra: dict[str, Any] = (
        {"warm_start": True} if name == "saga" else {"intercept_scaling": args.intercept_scaling}
    )
    settings = {"l1_ratio": 1.0, "solver": name, "random_state": SEED, **extra}

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return LogisticRegression(C=1.0 / (lam * problem.n), tol=tol, max_iter=max_iter, **settings)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.set_params(C=1.0 / (lam * problem.n), max_iter=max_iter)

    fit = lambda est: est.fit(problem.z, problem.y)  # noqa: E731
    return Solver(name, make, fit, {**settings, "C": "1 / (λ n)"}, update if name == "saga" else None)


def skglm_solver(problem: Problem) -> Solver:
    """skglm's Prox-Newton with working sets: mean log-loss (labels ±1) + alpha‖w‖₁, so alpha = λ."""
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Logistic
    from skglm.penalties import L1
    from skglm.solvers import ProxNewton

    z = problem.column_major(1.0)[:, : problem.p]
    settings = {
        "estimator": "GeneralizedLinearEstimator(Logistic(), L1(alpha), ProxNewton(tol, max_iter))",
        "alpha": "λ",
        "fit_intercept": True,
        "warm_start": True,
        "data": "float64, Fortran order",
        "version": version("skglm"),
    }

    def make(lam: float, tol: float, max_iter: int) -> Any:
        solver = ProxNewton(tol=tol, max_iter=max_iter, fit_intercept=True, warm_start=True)
        return GeneralizedLinearEstimator(Logistic(), L1(lam), solver)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.penalty = L1(lam)
        est.solver.max_iter = max_iter

    return Solver("skglm", make, lambda est: est.fit(z, problem.y), settings, update)


class CelerFit:
    """celer_path(pb="logreg", use_PN=True) at one α, from the last fit's coefficients (warm start).

    celer's logistic problem is Σ log-loss(±1 labels) + α‖w‖₁ without an intercept: α = λ n, and the
    intercept is the weight of a constant column of value `scaling` (b = scaling · w_c, penalised
    λ|b| / scaling as liblinear's with intercept_scaling). Reads like a fitted estimator."""

    def __init__(self, x: np.ndarray, y: np.ndarray, alpha: float, tol: float, max_iter: int) -> None:
        self.x, self.y, self.alpha, self.tol, self.max_iter = x, y, alpha, tol, max_iter
        self.w: np.ndarray | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_ = 0.0
        self.n_iter_ = 0

    def fit(self) -> None:
        from celer import celer_path

        _, coefs, _, n_iter = celer_path(
            self.x, self.y, "logreg", alphas=np.array([self.alpha]), coef_init=self.w,
            max_iter=self.max_iter, tol=self.tol, use_PN=True, return_n_iter=True,
        )  # fmt: skip
        self.w = coefs[:, 0].copy()
        self.coef_ = self.w[:-1]
        self.intercept_ = float(self.w[-1] * self.x[0, -1])
        self.n_iter_ = int(n_iter[0])


def celer_solver(problem: Problem, args: argparse.Namespace) -> Solver:
    """celer's Prox-Newton (its LogisticRegression's solver) along the path, the intercept as a column."""
    import celer

    x = problem.column_major(args.intercept_scaling)
    y = 2.0 * problem.y - 1.0
    settings = {
        "function": "celer_path(X, y, 'logreg', alphas=[α], coef_init=previous, use_PN=True, tol, max_iter)",
        "alpha": "λ n",
        "intercept": f"a constant column {args.intercept_scaling:g}: λ|b| / {args.intercept_scaling:g}",
        "warm_start": True,
        "data": "float64, Fortran order",
        "version": celer.__version__,
    }

    def make(lam: float, tol: float, max_iter: int) -> CelerFit:
        return CelerFit(x, y, lam * problem.n, tol, max_iter)

    def update(est: CelerFit, lam: float, max_iter: int) -> None:
        est.alpha, est.max_iter = lam * problem.n, max_iter

    return Solver("celer", make, lambda est: est.fit(), settings, update)


def glum_solver(problem: Problem) -> Solver:
    """glum's IRLS with coordinate descent: deviance/(2n) + alpha‖w‖₁, deviance = 2 · log-loss: alpha = λ."""
    from glum import GeneralizedLinearRegressor

    z = problem.column_major(1.0)[:, : problem.p]
    settings = {
        "family": "binomial",
        "l1_ratio": 1.0,
        "alpha": "λ",
        "solver": "irls-cd",
        "fit_intercept": True,
        "warm_start": True,
        "tol": "gradient_tol",
        "data": "float64, Fortran order",
        "version": version("glum"),
    }
    options = {k: settings[k] for k in ("family", "l1_ratio", "solver", "fit_intercept", "warm_start")}

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return GeneralizedLinearRegressor(alpha=lam, gradient_tol=tol, max_iter=max_iter, **options)

    def update(est: Any, lam: float, max_iter: int) -> None:
        est.set_params(alpha=lam, max_iter=max_iter)

    return Solver("glum", make, lambda est: est.fit(z, problem.y), settings, update)


def cuml_solver(problem: Problem) -> Solver:
    """cuML's quasi-Newton L1 logistic regression on the GPU, data copied there once; C = 1/(λ n)."""
    import cuml
    import cupy as cp

    z, y = cp.asarray(problem.z), cp.asarray(problem.y)
    settings = {"penalty": "l1", "solver": "qn", "fit_intercept": True, "output_type": "numpy"}
    options = dict(settings)
    settings["version"] = cuml.__version__

    def make(lam: float, tol: float, max_iter: int) -> Any:
        return cuml.LogisticRegression(C=1.0 / (lam * problem.n), tol=tol, max_iter=max_iter, **options)

    def fit(est: Any) -> None:
        est.fit(z, y)
        cp.cuda.Device().synchronize()

    return Solver("cuml", make, fit, settings)


def solver_or_reason(name: str, problem: Problem, args: argparse.Namespace) -> Solver | str:
    """The solver, or why it does not run here."""
    free = available_bytes()
    if name == "cuml":
        try:
            return cuml_solver(problem)
        except ModuleNotFoundError as e:
            return f"not installed ({e.name})"
        except Exception as e:  # a broken CUDA setup: record it, the CPU solvers still run
            return f"unavailable ({type(e).__name__}: {e})"
    if name in PEERS:
        need = problem.n * (problem.p + 1) * 8 if problem.columns is None else 0
        if free is not None and need > free:
            return f"skipped: the column-major copy needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB available"
        try:
            if name == "skglm":
                return skglm_solver(problem)
            if name == "celer":
                return celer_solver(problem, args)
            return glum_solver(problem)
        except ImportError as e:
            return f"not installed ({e.name or e}; pip install -e .[bench])"
    if name == "liblinear":
        need = problem.z.size * LIBLINEAR_NODE_BYTES
        if free is not None and need > free:
            return f"skipped: its copy of the data needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB available"
    return sklearn_solver(name, problem, args)


def coefficients(est: Any) -> tuple[np.ndarray, float]:
    """(w, b) of a fitted binary estimator as float64 numpy."""
    w, b = est.coef_, est.intercept_
    return to_host(w, np.float64).ravel(), float(np.ravel(to_host(b))[0])


def iterations(est: Any) -> int | None:
    """The iterations (epochs for saga) the last fit took, where the estimator reports them."""
    n_iter = getattr(est, "n_iter_", None)
    if n_iter is None:
        return None
    return int(np.max(to_host(n_iter)))


class Budget:
    """Seconds left to one solver on one task, and a max_iter cap that keeps a fit inside them.

    The cap assumes the seconds per iteration of the last fit that ran RATE_MIN_ITERS or more
    (shorter fits are mostly set-up time), or of the calibration fit before any.
    """

    def __init__(self, seconds: float, seconds_per_iter: float | None) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.per_iter = seconds_per_iter

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.seconds

    def cap(self) -> int:
        """Iterations the next fit may take: what the remaining seconds allow at the current rate."""
        if self.per_iter is None or self.per_iter <= 0:
            return MAX_ITER
        left = self.seconds - self.spent
        return int(min(MAX_ITER, max(1.0, left / self.per_iter)))

    def charge(self, seconds: float, iters: int | None) -> None:
        """Count a fit's seconds; fits long enough to time an iteration update the rate."""
        self.spent += seconds
        if iters and iters >= RATE_MIN_ITERS:
            self.per_iter = seconds / iters


def fit_once(solver: Solver, est: Any) -> tuple[float, int]:
    """Fit, timed; the seconds and the convergence warnings raised."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        started = time.perf_counter()
        solver.fit(est)
        seconds = time.perf_counter() - started
    return seconds, len(got)


def calibrate(solver: Solver, problem: Problem, lam: float, tol: float) -> float | None:
    """Seconds per iteration at λ from fits capped at 1 and 1 + CALIBRATION_ITERS iterations.

    The difference leaves out the set-up time of a fit; neither fit counts in any timing.
    """
    runs = []
    for cap in (1, 1 + CALIBRATION_ITERS):
        est = solver.make(lam, tol, cap)
        seconds, _ = fit_once(solver, est)
        runs.append((seconds, iterations(est)))
    (t1, i1), (t2, i2) = runs
    if not i2:
        return None
    if i1 is not None and i2 > i1 and t2 > t1:
        return (t2 - t1) / (i2 - i1)
    return t2 / i2


def fit_lambdas(
    solver: Solver, problem: Problem, lambdas: np.ndarray, tol: float, budget: Budget
) -> list[dict[str, Any]]:
    """One fit per λ in order (warm-started if the solver is), until the λs or the budget run out."""
    fits: list[dict[str, Any]] = []
    est = None
    for lam in lambdas:
        if budget.exhausted:
            break
        cap = budget.cap()
        if est is None or solver.update is None:
            est = solver.make(float(lam), tol, cap)
        else:
            solver.update(est, float(lam), cap)
        seconds, caught = fit_once(solver, est)
        iters = iterations(est)
        budget.charge(seconds, iters)
        w, b = coefficients(est)
        fits.append(
            {
                "seconds": seconds,
                "n_iter": iters,
                "max_iter": cap,
                "capped_by_budget": cap < MAX_ITER and iters is not None and iters >= cap,
                "warnings": caught,
                "objective": objective(problem, float(lam), w, b),
                "support": int(np.count_nonzero(w)),
            }
        )
    return fits


def equal_objective(
    solver: Solver,
    problem: Problem,
    lambdas: np.ndarray,
    reference: np.ndarray,
    tols: list[float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Tighten the solver's tol until every λ is within rtol of the engine's objective, within the budget."""
    per_iter = calibrate(solver, problem, float(lambdas[-1]), tols[0])
    budget = Budget(args.budget_s, per_iter)
    attempts = []
    for tol in tols:
        if budget.exhausted:
            break
        fits = fit_lambdas(solver, problem, lambdas, tol, budget)
        done = len(fits)
        rel = [float((f["objective"] - r) / abs(r)) for f, r in zip(fits, reference[:done], strict=True)]
        attempt = {
            "tol": tol,
            "seconds": sum(f["seconds"] for f in fits),
            "lambdas_fitted": done,
            "complete": done == len(lambdas),
            "rel_diff": rel,
            "max_rel_diff": max(rel) if rel else None,
            "objective": [f["objective"] for f in fits],
            "support_sizes": [f["support"] for f in fits],
            "n_iter": [f["n_iter"] for f in fits],
            "max_iter": [f["max_iter"] for f in fits],
            "capped_by_budget": any(f["capped_by_budget"] for f in fits),
            "convergence_warnings": sum(f["warnings"] for f in fits),
        }
        attempt["reached"] = bool(attempt["complete"] and max(rel) <= args.rtol)
        attempts.append(attempt)
        if attempt["reached"] or attempt["capped_by_budget"] or not attempt["complete"]:
            break  # reached, or out of budget: a tighter tol cannot get there sooner
    reached = [a for a in attempts if a["reached"]]
    fitted = [a for a in attempts if a["lambdas_fitted"]]
    best = min(fitted, key=lambda a: (not a["complete"], a["max_rel_diff"])) if fitted else None
    out: dict[str, Any] = {
        "status": "reached" if reached else "not reached",
        "seconds": reached[0]["seconds"] if reached else budget.spent,
        "tol": reached[0]["tol"] if reached else None,
        "spent_seconds": budget.spent,
        "budget_seconds": args.budget_s,
        "best_max_rel_diff": best["max_rel_diff"] if best else None,  # over the λs it fitted
        "best_lambdas_fitted": best["lambdas_fitted"] if best else 0,
        "seconds_per_iter_calibration": per_iter,
        "attempts": attempts,
    }
    if reached:
        out["max_rel_diff"] = reached[0]["max_rel_diff"]
        out["support_sizes"] = reached[0]["support_sizes"]
    return out


# --- one dataset ------------------------------------------------------------------------------


def path_indices(n_lambdas: int, stride: int) -> list[int]:
    """Every stride-th λ counting back from the last (always included), in path order."""
    return sorted(range(n_lambdas - 1, -1, -stride))


def run(
    args: argparse.Namespace, dataset: Dataset, solvers: list[str], tasks: list[str], tols: list[float]
) -> int:
    """Time the engine and every solver on one dataset, compare objectives, print and save."""
    report = measure(args, dataset, solvers, tasks, tols)
    suffix = f"_vs-{args.baseline[:7]}" if "baseline" in report else ""  # leaves the plain run's JSON
    out = write_report(report, args.out_dir, f"select_{dataset.name}{suffix}", args.device)
    print_summary(report, out)
    return 0 if report["correctness"]["passed"] else 1


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
        **baseline_report(baseline, engine_results.get("path"), problem, dataset, args),
    }


# --- the scaling grid -------------------------------------------------------------------------


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


def engine_summary(run: EngineRun, problem: Problem, dataset: Dataset, task: str) -> dict[str, Any]:
    """An engine run's summary with its objectives; on the synthetic path, the planted neurons'
    share of the top of the ranking."""
    out = {**run.summary, "objective": engine_objectives(run, problem)}
    if dataset.planted is not None and task == "path":
        top = set(run.ranking[: dataset.planted.size].tolist())
        out["planted_in_top"] = len(top & set(dataset.planted.tolist())) / dataset.planted.size
    return out


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
    """Path ≥ 20× saga and ≥ 5× liblinear on the CPU; met only when the solver reached the objective.

    A solver that did not reach it leaves the target undecided (`met` None) with the time it spent.
    """
    out = {}
    for name, goal in (("saga", TARGET_VS_SAGA), ("liblinear", TARGET_VS_LIBLINEAR)):
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
        "threads_scope": "BLAS/OpenMP (threadpoolctl) and numba, engine and every solver; 0 = not pinned",
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


if __name__ == "__main__":
    sys.exit(main())
