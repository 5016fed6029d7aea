"""Sparse-logistic (or lasso) neuron importance along a regularisation path, from a store.

Neurons are standardised with the store's own per-neuron mean and standard deviation (from the
statistics pass, no copy of the data), a path is solved from λ_max down (engine/path.py) on the
chosen backend (engine/store_design.py), and neurons are ranked by when they enter it: earlier
entry (larger λ) = more important, ties broken by |w| (the group norm for K classes) at the end of
the path, then by id (method.md, section 1). The result is saved in the store under
importance/<key> and reused by later calls with the same parameters.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.progress import bar
from neurosel.scaleout import resolve_runner
from neurosel.solver._cluster import DistributedDesign
from neurosel.solver._datafits import Logistic, Multinomial, Quadratic, example_weights
from neurosel.solver._path import PathResult, check_classes, sparse_path
from neurosel.solver._penalties import PENALTIES
from neurosel.solver._store_design import store_design
from neurosel.stats import neuron_stats
from neurosel.store import DEFAULT_MEMORY_BUDGET, ActivationStore, load_derived, save_derived

METHODS = ("l1-logistic", "lasso")
GROUP = "importance"


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


def importance(
    store: ActivationStore,
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
    in_core_bytes: int | None = None,
    recompute: bool = False,
    save: bool = True,
    progress: bool = False,
    client: Any = None,
    solver: Callable[..., PathResult] | None = None,
) -> Importance:
    """Fit the sparse path on every neuron of `store` and rank neurons by entry into it.

    `l1-logistic`: binary L1 for two classes, multinomial with a group-L1 penalty for K > 2
    (`penalty="l1"` penalises each class weight separately); `lasso`: squared loss for numeric labels.
    `solver`: the path solver, a callable with `neurosel.solver`'s `sparse_path` signature; None:
    neurosel's own. Benchmarks pass an older commit's (neurosel.bench.baseline) to compare both in one
    process; with a solver of your own nothing is loaded from or saved to the store.
    """
    params = _check(store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol)
    labels = store.labels
    k = check_classes(labels, f"store {store.path} labels") if method == "l1-logistic" else 1
    datafit = Logistic() if k == 2 else Multinomial() if method == "l1-logistic" else Quadratic()
    penalty = penalty or ("group-l1" if k > 2 else "l1")
    params.update(penalty=penalty, class_weight=_jsonable(class_weight), rows=store.n)
    key = f"{method}-" + hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    if solver is None and not recompute and (saved := load_importance(store, key)) is not None:
        return saved
    y = datafit.targets(labels)
    datafit.weights = example_weights(labels, class_weight, store.meta.get("label_names"))
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
                lambda_ratio=lambda_ratio, target_support=target_support, tol=tol, name=f"store {store.path}",
                on_lambda=lambda i, support: steps.update((min(support, total) if total else i) - steps.n),
            )  # fmt: skip
    done = time.perf_counter()
    meta = {
        "store": store.path, "key": key, "params": params, "backend": device.kind, "design": where,
        "classes": k, "total_passes": design.passes, "converged": bool(path.converged.all()),
        "load_seconds": loaded - start, "solve_seconds": done - loaded,
    }  # fmt: skip
    imp = _result(path, store, method, penalty, meta)
    if save and solver is None:
        save_importance(store, imp)
    return imp


def _check(store, method, penalty, l1_ratio, n_lambdas, lambda_ratio, target_support, tol) -> dict:
    """Validate the store and options at the boundary; return the parameters that key the result."""
    if method not in METHODS:
        raise InputError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if penalty is not None and penalty not in PENALTIES:
        raise InputError(f"penalty {penalty!r}: use one of {', '.join(PENALTIES)}")
    if not 0 < l1_ratio <= 1:
        raise InputError(f"l1_ratio {l1_ratio}: choose a value in (0, 1]")
    if n_lambdas < 1 or not 0 < lambda_ratio < 1 or tol <= 0:
        raise InputError("n_lambdas ≥ 1, 0 < lambda_ratio < 1 and tol > 0 are required")
    neurons = len(store.layers) * store.hidden
    if target_support is not None and not 1 <= target_support <= neurons:
        raise InputError(f"target support {target_support}: choose 1..{neurons}")
    store.usable_rows(allow_partial=None)
    if store.meta["pooling"] == "tokens":
        raise InputError(f"store {store.path}: token-level store; extract with mean, cls or max pooling")
    if store.labels is None:
        raise InputError(f"store {store.path}: has no labels; importance needs labelled examples")
    kind = store.meta["label_kind"]
    if method == "l1-logistic" and kind != "class":
        raise InputError(f"store {store.path}: numeric labels; use method='lasso'")
    if method == "lasso" and kind != "numeric":
        raise InputError(f"store {store.path}: class labels; use method='l1-logistic'")
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


def save_importance(store: ActivationStore, imp: Importance) -> None:
    """Write `imp` to importance/<key> of the store; marked complete last, so a crash leaves no result."""
    arrays = {name: getattr(imp, name) for name in _ARRAYS}
    save_derived(
        store, GROUP, imp.meta["key"], arrays, {**imp.meta, "method": imp.method, "penalty": imp.penalty}
    )


def load_importance(store: ActivationStore, key: str) -> Importance | None:
    """Saved importance under importance/<key>, or None."""
    saved = load_derived(store, GROUP, key)
    if saved is None:
        return None
    arrays, meta = saved
    method, penalty = meta.pop("method"), meta.pop("penalty")
    return Importance(
        method=method, penalty=penalty, layers=store.layers, hidden=store.hidden, meta=meta,
        **{name: arrays[name] for name in _ARRAYS},
    )  # fmt: skip


def _name(store: ActivationStore) -> str:
    return str(store.path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
