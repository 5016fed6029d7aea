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
the row-major one it wants. --threads N pins every BLAS and OpenMP pool (threadpoolctl) and
numba's threads for the whole run, engine and peers alike; the default, 0, sets nothing (the
libraries' defaults and the engine's own per-operation threads: what a user gets); the JSON records
the pools as they ran. The thread study (neurosel.bench._select_threads; --no-thread-study skips
it) times the engine's path on one thread against the defaults, on an idle machine and with one
busy process, and reports default / one thread (it needs --threads 0).

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
This module parses the options and runs the datasets; the rest lives beside it: _select_data (the
datasets and the standardised problem), _select_engine (neurosel.importance's runs, --baseline),
_select_peers (one builder per peer solver), _select_objective (objectives and the equal-objective
search), _select_measure (one dataset's report), _select_report (ratios, targets, correctness, the
printed summary) and _select_grid (--grid).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from neurosel.bench._harness import RESULTS_DIR, SCRATCH_DIR, default_data_dir, write_report
from neurosel.bench._select_data import (
    SYNTHETIC_MARGIN_STD,
    Dataset,
    amazon_dataset,
    planted_model,
    synthetic_data,
    synthetic_dataset,
    user_dataset,
)
from neurosel.bench._select_grid import run_grid
from neurosel.bench._select_measure import measure, path_indices
from neurosel.bench._select_peers import INTERCEPT_SCALING, PEERS
from neurosel.bench._select_report import TASKS, print_summary
from neurosel.bench.extract import DEFAULT_MAX_LENGTH, DEFAULT_MODEL
from neurosel.bench.select_multinomial import BASELINE_COMMIT, run_multinomial
from neurosel.bench.select_multinomial import DEFAULTS as MULTINOMIAL_DEFAULTS
from neurosel.errors import InputError
from neurosel.experiments import EXPERIMENTS

SOLVERS = ("saga", "liblinear", "skglm", "celer", "glum", "cuml")
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
    """The benchmark's options: the datasets, the path and the solvers, then how it runs."""
    p = argparse.ArgumentParser(prog="neurosel bench select", description=__doc__.split("\n\n")[0])
    add_dataset_options(p)
    add_solver_options(p)
    add_run_options(p)
    return p


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    """--dataset and --store, and the sizes and sources of the Amazon and synthetic stores."""
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


def add_solver_options(p: argparse.ArgumentParser) -> None:
    """The engine's path, the solvers, their tolerances and budget, the tasks and the --grid."""
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
        default=0,
        help="BLAS/OpenMP (threadpoolctl) and numba threads for every solver (default 0: the defaults)",
    )
    p.add_argument(
        "--no-thread-study",
        dest="thread_study",
        action="store_false",
        help="skip the path at one thread against the defaults, idle and with one busy process",
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


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--classes and --baseline, the device, repeats, --quick and the folders."""
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


def run(
    args: argparse.Namespace, dataset: Dataset, solvers: list[str], tasks: list[str], tols: list[float]
) -> int:
    """Time the engine and every solver on one dataset, compare objectives, print and save."""
    report = measure(args, dataset, solvers, tasks, tols)
    suffix = f"_vs-{args.baseline[:7]}" if "baseline" in report else ""  # leaves the plain run's JSON
    out = write_report(report, args.out_dir, f"select_{dataset.name}{suffix}", args.device)
    print_summary(report, out)
    return 0 if report["correctness"]["passed"] else 1


# what tests and callers import from the benchmark's module (the names live in its private modules)
__all__ = [
    "PEERS",
    "SYNTHETIC_MARGIN_STD",
    "build_parser",
    "default_solvers",
    "main",
    "neuron_shape",
    "path_indices",
    "planted_model",
    "synthetic_data",
]

if __name__ == "__main__":
    sys.exit(main())
