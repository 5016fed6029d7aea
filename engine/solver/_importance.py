"""Sparse-logistic (or lasso) neuron importance along a regularisation path, from a store.

Neurons are standardised with the store's own per-neuron mean and standard deviation (from the
statistics pass, no copy of the data), a path is solved from λ_max down (engine/path.py) on the
chosen backend (engine/store_design.py), and neurons are ranked by when they enter it: earlier
entry (larger λ) = more important, ties broken by |w| (the group norm for K classes) at the end of
the path, then by id (method.md, section 1). The result is saved in the store under
importance/<key> and reused by later calls with the same parameters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from neurosel.defaults import IN_CORE_BYTES
from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.params import (
    Anything,
    Boolean,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    Real,
    validated,
)
from neurosel.params import Callable as Function
from neurosel.progress import bar
from neurosel.scaleout import resolve_runner
from neurosel.solver._cluster import DistributedDesign
from neurosel.solver._datafits import example_weights
from neurosel.solver._methods import METHODS, check_classes, get_method, method_for
from neurosel.solver._path import PathResult, sparse_path
from neurosel.solver._penalties import PENALTIES
from neurosel.solver._store_design import store_design
from neurosel.stats import neuron_stats
from neurosel.store import DEFAULT_MEMORY_BUDGET, ActivationStore, cached, derived_key, open_store
from neurosel.timing import stage

PATH_STAGE = "sparse path solved"  # neurosel.timing's stage while a path is solved (not read back)


@dataclass
class Importance:
    """A path's coefficients (λs, K, layers, hidden), entry order, scores and deterministic ranking."""

    method: str
    penalty: str
    layers: tuple[int, ...]
    hidden: int
    lambdas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray  # (λs, K)
    entry: np.ndarray  # (layers, hidden): index of the λ where the neuron enters, −1 if never
    scores: np.ndarray  # (layers, hidden): λ at entry / λ_max, 0 if never
    ranking: np.ndarray  # flat neuron ids, most important first
    passes: np.ndarray  # cumulative full passes over the data at each λ
    gaps: np.ndarray  # certificate at each λ (duality gap, or KKT residual for the elastic net)
    objective: np.ndarray
    converged: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def support_sizes(self) -> np.ndarray:
        return np.any(self.coef.reshape(*self.coef.shape[:2], -1) != 0, axis=1).sum(1)

    @property
    def entered(self) -> int:
        """Neurons that entered the path at some λ."""
        return int((self.entry >= 0).sum())

    def weights(self, at: int = -1) -> np.ndarray:
        """Per-neuron weight magnitude at λ index `at`: |w|, or the group norm over K classes (flat)."""
        return np.linalg.norm(self.coef[at].reshape(self.coef.shape[1], -1), axis=0)


def rank_by_entry(entry: np.ndarray, final: np.ndarray, closeness: np.ndarray | None = None) -> np.ndarray:
    """Flat ids by entry index, then |final weight| descending; neurons that never entered come last,
    by closeness to entering (gradient norm / λ at the last λ), then id."""
    never = entry < 0
    order_entry = np.where(never, np.iinfo(np.int64).max, entry)
    tie = np.where(never, -(closeness if closeness is not None else 0.0), -np.abs(final))
    return np.lexsort((np.arange(entry.size), tie, order_entry))


# The options of `importance` (and of `importance_params`, transfer's and fingerprint's
# `importance_options`), checked before the store is read (neurosel.params).
IMPORTANCE_PARAMS = {
    "store": PathLike(store=True),
    "method": OneOf(lambda: METHODS),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "penalty": Optional(OneOf(lambda: PENALTIES)),
    "l1_ratio": Interval(Real, 0, 1, closed="right", fix="1 is the lasso, below 1 the elastic net"),
    "n_lambdas": Interval(Integral, 1, None),
    "lambda_ratio": Interval(Real, 0, 1, closed="neither"),
    "target_support": Optional(Interval(Integral, 1, None)),
    "tol": Interval(Real, 0, None, closed="neither"),
    "class_weight": [OneOf("balanced"), Instance(dict, what="a dict {class: weight}"), None],
    "memory_budget": Interval(Integral, 1, None, fix="pass a size in bytes"),
    "in_core_bytes": Interval(Integral, 0, None, fix="pass a size in bytes (0 streams every product)"),
    "recompute": Boolean(),
    "save": Boolean(),
    "progress": Boolean(),
    "client": Anything("None, a Dask client or a runner"),
    "solver": Optional(Function("a path solver with sparse_path's signature")),
}


@validated(IMPORTANCE_PARAMS)
def importance(
    store: ActivationStore | str | os.PathLike,
    method: str = "l1-logistic",
    device: str | Device = "auto",
    *,
    penalty: str | None = None,
    l1_ratio: float = 1.0,
    n_lambdas: int = 20,
    lambda_ratio: float = 1e-2,
    target_support: int | None = None,
    tol: float = 1e-6,
    class_weight: str | dict | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    in_core_bytes: int = IN_CORE_BYTES,
    recompute: bool = False,
    save: bool = True,
    progress: bool = False,
    client: Any = None,
    solver: Callable[..., PathResult] | None = None,
) -> Importance:
    """Fit the sparse path on every neuron of `store` and rank neurons by entry into it.

    `method`: a name in the method registry (`neurosel.solver.METHODS`): `l1-logistic`, binary L1
    for two classes, multinomial with a group-L1 penalty for K > 2 (`penalty="l1"` penalises each
    class weight separately); `lasso`: squared loss for numeric labels.
    `solver`: the path solver, a callable with `neurosel.solver`'s `sparse_path` signature; None:
    neurosel's own. Benchmarks pass an older commit's (neurosel.bench.baseline) to compare both in one
    process; with a solver of your own nothing is loaded from or saved to the store.
    """
    store = open_store(store)  # a path or URL, or the store itself
    params, k = _params(
        store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol, class_weight
    )
    labels, entry, penalty = store.labels, get_method(method), params["penalty"]

    def compute(key: str) -> Importance:
        with stage(PATH_STAGE):
            return solve(key)

    def solve(key: str) -> Importance:
        datafit = entry.datafit(k, example_weights(labels, class_weight, store.meta.get("label_names")))
        y = datafit.targets(labels)
        nonlocal device
        device = resolve_device(device).for_stage("solver")
        runner = resolve_runner(client)
        stats = neuron_stats(
            store, by=None, device=device, progress=False, memory_budget=memory_budget, client=runner
        )
        if int(stats.nonfinite.sum()):
            raise InputError(
                f"store {store.path}: {int(stats.nonfinite.sum())} non-finite activations; re-extract "
                "with --dtype float32 or bfloat16"
            )
        start = time.perf_counter()
        with device.activate():
            if runner.distributed:  # products as tasks on a Dask cluster; the outer loop stays here
                center, scale, placed = stats.mean.ravel(), stats.std.ravel(), runner.placed(device)
                design, where = DistributedDesign(runner, store, center, scale, placed), "dask"
            else:
                design, where = store_design(
                    store, stats.mean.ravel(), stats.std.ravel(), device, memory_budget, in_core_bytes, tol
                )
            loaded = time.perf_counter()
            total = target_support or None
            with bar(total, f"path {_name(store)}", "neuron" if total else "λ", progress) as steps:
                path = (solver or sparse_path)(
                    design, y, datafit, PENALTIES[penalty](), l1_ratio=l1_ratio, n_lambdas=n_lambdas,
                    lambda_ratio=lambda_ratio, target_support=target_support, tol=tol,
                    name=f"store {store.path}",
                    on_lambda=lambda i, n: steps.update((min(n, total) if total else i) - steps.n),
                )  # fmt: skip
        done = time.perf_counter()
        meta = {
            "store": store.path, "key": key, "params": params, "backend": device.kind, "design": where,
            "classes": k, "total_passes": design.passes, "converged": bool(path.converged.all()),
            "load_seconds": loaded - start, "solve_seconds": done - loaded,
        }  # fmt: skip
        return _result(path, store, method, penalty, meta)

    if solver is not None:  # a solver of one's own: nothing is loaded from or saved to the store
        return compute(IMPORTANCE.key(params))
    return cached(store, IMPORTANCE, params, compute, recompute=recompute, save=save)


@validated(IMPORTANCE_PARAMS, partial=True)
def importance_params(
    store: ActivationStore,
    method: str = "l1-logistic",
    *,
    penalty: str | None = None,
    l1_ratio: float = 1.0,
    n_lambdas: int = 20,
    lambda_ratio: float = 1e-2,
    target_support: int | None = None,
    tol: float = 1e-6,
    class_weight: str | dict | None = None,
) -> dict[str, Any]:
    """The parameters that key `importance(store, method, **options)`'s saved path (its key is
    `IMPORTANCE.key(params)`), validated as importance validates them: the penalty chosen for the
    store's classes, class weights as JSON, the store's rows. `IMPORTANCE_OPTIONS` names the options."""
    return _params(
        store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol, class_weight
    )[0]


IMPORTANCE_OPTIONS = (
    "penalty",
    "l1_ratio",
    "n_lambdas",
    "lambda_ratio",
    "target_support",
    "tol",
    "class_weight",
)


def _params(
    store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol, class_weight
) -> tuple[dict[str, Any], int]:
    """`importance_params`, and the number of classes (1 for numeric labels)."""
    params = _check(store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol)
    entry = get_method(method)
    k = check_classes(store.labels, f"store {store.path} labels") if entry.label_kind == "class" else 1
    if not entry.serves(entry.label_kind, k):
        raise InputError(f"store {store.path}: {k} classes; {method!r} fits {entry.max_classes} at most")
    params.update(penalty=entry.penalty(penalty, k), class_weight=_jsonable(class_weight), rows=store.n)
    return params, k


def _check(store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol) -> dict:
    """Validate the store and options at the boundary; return the parameters that key the result."""
    entry = get_method(method)  # the option values were checked by IMPORTANCE_PARAMS
    if penalty is not None:
        entry.penalty(penalty, 1)  # the method's own penalties, before the store
    neurons = len(store.layers) * store.hidden
    if target_support is not None and not 1 <= target_support <= neurons:
        raise InputError(f"target support {target_support}: choose 1..{neurons}")
    store.usable_rows(allow_partial=None)
    if store.meta["pooling"] == "tokens":
        raise InputError(f"store {store.path}: token-level store; extract with mean, cls or max pooling")
    if store.labels is None:
        raise InputError(f"store {store.path}: has no labels; importance needs labelled examples")
    kind = store.meta["label_kind"]
    if entry.label_kind != kind:
        raise InputError(f"store {store.path}: {kind} labels; use method={method_for(kind)!r}")
    return {
        "method": method, "l1_ratio": l1_ratio, "n_lambdas": n_lambdas, "lambda_ratio": lambda_ratio,
        "target_support": target_support, "tol": tol,
    }  # fmt: skip


def _jsonable(value: Any) -> Any:
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else value


def _result(path: PathResult, store: ActivationStore, method: str, penalty: str, meta: dict) -> Importance:
    shape = (len(store.layers), store.hidden)
    k_out = path.coef.shape[2]
    scores = np.where(path.entry >= 0, path.lambdas[np.maximum(path.entry, 0)] / path.lambdas[0], 0.0)
    final = np.linalg.norm(path.coef[-1], axis=1)
    return Importance(
        method=method,
        penalty=penalty,
        layers=store.layers,
        hidden=store.hidden,
        lambdas=path.lambdas,
        coef=path.coef.transpose(0, 2, 1).reshape(len(path.lambdas), k_out, *shape),
        intercept=path.intercept,
        entry=path.entry.reshape(shape),
        scores=scores.reshape(shape),
        ranking=rank_by_entry(path.entry, final, path.closeness),
        passes=path.passes,
        gaps=path.gaps,
        objective=path.objective,
        converged=path.converged,
        meta=meta,
    )


_ARRAYS = [
    f.name for f in fields(Importance) if f.name not in ("method", "penalty", "layers", "hidden", "meta")
]


class ImportanceKind:
    """Importance as a derived result (neurosel.store.ResultKind), saved under importance/<key>."""

    kind = "importance"

    def key(self, params: dict[str, Any]) -> str:
        return derived_key(params["method"], params)

    def to_arrays(self, imp: Importance, store: ActivationStore) -> tuple[dict, dict]:
        arrays = {name: getattr(imp, name) for name in _ARRAYS}
        return arrays, {**imp.meta, "method": imp.method, "penalty": imp.penalty}

    def from_arrays(self, arrays: dict, meta: dict, store: ActivationStore) -> Importance:
        method, penalty = meta.pop("method"), meta.pop("penalty")
        return Importance(
            method=method, penalty=penalty, layers=store.layers, hidden=store.hidden, meta=meta,
            **{name: arrays[name] for name in _ARRAYS},
        )  # fmt: skip


IMPORTANCE = ImportanceKind()


def _name(store: ActivationStore) -> str:
    return str(store.path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
