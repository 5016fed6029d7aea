"""Sparse-logistic (or lasso) neuron importance along a regularisation path, streamed from a store.

Neurons are standardised with the store's own per-neuron mean and standard deviation (from the
statistics pass, no copy of the data), a path is solved from λ_max down (engine/path.py), and
neurons are ranked by when they enter it: earlier entry (larger λ) = more important, ties broken
by |w| at the end of the path, then by neuron id (method.md, section 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.datafits import Logistic, Quadratic
from engine.design import StoreDesign
from engine.errors import InputError
from engine.path import PathResult, check_binary, sparse_path
from engine.stats import neuron_stats
from engine.store import ActivationStore
from engine.stream import DEFAULT_MEMORY_BUDGET

METHODS = ("l1-logistic", "lasso")


@dataclass
class Importance:
    """A path's coefficients (K, layers, hidden), entry order, scores and deterministic ranking."""

    method: str
    layers: tuple[int, ...]
    hidden: int
    lambdas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    entry: np.ndarray  # (layers, hidden): index of the λ where the neuron enters, −1 if never
    scores: np.ndarray  # (layers, hidden): λ at entry / λ_max, 0 if never
    ranking: np.ndarray  # flat neuron ids, most important first
    passes: np.ndarray
    gaps: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def support_sizes(self) -> np.ndarray:
        return (self.coef.reshape(len(self.lambdas), -1) != 0).sum(1)


def rank_by_entry(entry: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Flat ids ordered by entry index (never-entered last), then |final coefficient| descending, then id."""
    order_entry = np.where(entry < 0, np.iinfo(np.int64).max, entry)
    ids = np.arange(entry.size)
    return np.lexsort((ids, -np.abs(final), order_entry))


def importance(
    store: ActivationStore,
    method: str = "l1-logistic",
    device: str = "cpu",
    *,
    l1_ratio: float = 1.0,
    n_lambdas: int = 20,
    lambda_ratio: float = 1e-2,
    target_support: int | None = None,
    tol: float = 1e-6,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Importance:
    """Fit the sparse path on every neuron of `store` and rank neurons by entry into it."""
    if method not in METHODS:
        raise InputError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if device not in ("cpu", "auto"):
        raise InputError(f"device {device!r}: the importance solver runs on the CPU so far; use cpu")
    if not store.complete:
        raise InputError(f"store {store.path}: incomplete; finish the extraction first")
    if store.meta["pooling"] == "tokens":
        raise InputError(f"store {store.path}: token-level store; extract with mean, cls or max pooling")
    labels = store.labels
    if labels is None:
        raise InputError(f"store {store.path}: has no labels; importance needs labelled examples")
    if method == "l1-logistic":
        if store.meta["label_kind"] != "class":
            raise InputError(f"store {store.path}: numeric labels; use method='lasso'")
        y, datafit = check_binary(labels, f"store {store.path} labels"), Logistic()
    else:
        y, datafit = labels.astype(np.float64), Quadratic()
    stats = neuron_stats(store, by=None, device="cpu", progress=False, memory_budget=memory_budget)
    if int(stats.nonfinite.sum()):
        raise InputError(
            f"store {store.path}: {int(stats.nonfinite.sum())} non-finite activations; re-extract "
            "with --dtype float32 or bfloat16"
        )
    design = StoreDesign(store, stats.mean.ravel(), stats.std.ravel(), store.n, memory_budget)
    path = sparse_path(
        design, y, datafit, l1_ratio=l1_ratio, n_lambdas=n_lambdas, lambda_ratio=lambda_ratio,
        target_support=target_support, tol=tol,
    )  # fmt: skip
    return _result(path, store, method, design.passes)


def _result(path: PathResult, store: ActivationStore, method: str, passes: int) -> Importance:
    shape = (len(store.layers), store.hidden)
    scores = np.where(path.entry >= 0, path.lambdas[np.maximum(path.entry, 0)] / path.lambdas[0], 0.0)
    return Importance(
        method=method,
        layers=store.layers,
        hidden=store.hidden,
        lambdas=path.lambdas,
        coef=path.coef.reshape(-1, *shape),
        intercept=path.intercept,
        entry=path.entry.reshape(shape),
        scores=scores.reshape(shape),
        ranking=rank_by_entry(path.entry, path.coef[-1]),
        passes=path.passes,
        gaps=path.gaps,
        meta={"store": store.path, "total_passes": passes, "converged": bool(path.converged.all())},
    )
