"""Stability selection: how often each neuron is selected along the sparse path over half-subsamples.

Meinshausen and Bühlmann (2010): draw B subsamples of half the examples (stratified by class),
solve the same sparse path on each on a common λ grid, and score each neuron by its largest
selection frequency over the grid. A neuron that enters only on some subsamples, because it fits
what is particular to them, scores low; one that the data select whatever half is drawn scores high.
The path's entry order on all the data breaks ties. Unlike entry order, the frequency does not stall
when the data separate: every subsample contributes the support it reached.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurosel.devices import single_threaded_blas
from neurosel.errors import SupportWarning
from neurosel.params import Boolean, Integral, Interval, Optional, Real, validated
from neurosel.params import Callable as Function
from neurosel.solver._datafits import reweighted
from neurosel.solver._path import sparse_path
from neurosel.solver._protocols import Datafit, Penalty
from neurosel.solver._store_design import standardised_design
from neurosel.store import derived_key
from neurosel.timing import stage

SUBSAMPLES = 16  # B: the frequency's resolution is 1/B; 16 halves measured enough to rank 1,000 neurons
# The supports matter, not the last digits of each subsample's objective: at 1e-3 (from 1e-4) the
# halves take 30-44% less CPU on three 1,000-example binary sources (SST-2, MR, CR sentences) and the
# stability+fisher top-k keeps 97-100% of its neurons at k = 10 ... 1,000 (docs/benchmarks.md).
SUBSAMPLE_TOL = 1e-3
HALVES_STAGE = "stability halves solved"  # neurosel.timing's stage while halves are solved (not read back)


@dataclass(frozen=True)
class Stability:
    """Per neuron (flat ids): the largest selection frequency over the λ grid, and the ranking."""

    frequency: np.ndarray  # (p,) in [0, 1]
    ranking: np.ndarray  # flat ids by frequency, ties by the full path's ranking
    lambdas: np.ndarray  # the common grid
    subsamples: int


class StabilityKind:
    """Stability selection as a derived result (neurosel.store.ResultKind), saved under
    stability/<key>; keyed by its path's key (the prefix), subsamples, seed and target support."""

    kind = "stability"

    def key(self, params: dict[str, Any]) -> str:
        return derived_key(params["path"], params)

    def to_arrays(self, stable: Stability, store: Any) -> tuple[dict, dict]:
        shape = (len(store.layers), int(store.hidden))
        arrays = {"frequency": stable.frequency.reshape(shape), "lambdas": stable.lambdas}
        return {**arrays, "ranking": stable.ranking}, {"subsamples": stable.subsamples}

    def from_arrays(self, arrays: dict, meta: dict, store: Any) -> Stability:
        frequency = arrays["frequency"].ravel()
        return Stability(frequency, arrays["ranking"], arrays["lambdas"], int(meta["subsamples"]))


STABILITY = StabilityKind()


def half_subsamples(labels: np.ndarray, count: int, seed: int, stratify: bool) -> list[np.ndarray]:
    """`count` sorted row subsets of about half the examples; per class when `stratify`."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    whole = [np.arange(labels.size)]
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else whole
    return [
        np.sort(np.concatenate([rng.choice(g, g.size // 2, replace=False) for g in groups]))
        for _ in range(count)
    ]


# The options of `stability_selection`, checked before any half is drawn (neurosel.params).
STABILITY_PARAMS = {
    "rows": Function("a callable rows(ids) -> activations"),
    "l1_ratio": Interval(Real, 0, 1, closed="right"),
    "target_support": Optional(Interval(Integral, 1, None)),
    "subsamples": Interval(Integral, 1, None),
    "seed": Interval(Integral, 0, None),
    "stratify": Boolean(),
    "tol": Interval(Real, 0, None, closed="neither"),
    "workers": Optional(Interval(Integral, 1, None)),
    "on_subsample": Optional(Function("a callable on_subsample(done)")),
}


@validated(STABILITY_PARAMS)
def stability_selection(
    rows: Callable[[np.ndarray], np.ndarray],
    labels: np.ndarray,
    datafit: Datafit,
    penalty: Penalty,
    lambdas: np.ndarray,
    tie_ranking: np.ndarray,
    *,
    l1_ratio: float = 1.0,
    target_support: int | None = None,
    subsamples: int = SUBSAMPLES,
    seed: int = 0,
    stratify: bool = True,
    tol: float = SUBSAMPLE_TOL,
    weights: np.ndarray | None = None,
    workers: int | None = None,
    on_subsample: Callable[[int], None] | None = None,
) -> Stability:
    """Selection frequencies of the sparse path over `subsamples` half-subsamples.

    `rows(ids)` returns the raw activations of those examples (float32, (len(ids), p)); each half is
    standardised with its own mean and standard deviation, as the full path is with the store's.
    Every subsample solves on the grid `lambdas` (the full path's), stopping at `target_support` as
    the full path does; a subsample that stops early (its half separates sooner) keeps its last
    support for the smaller λs. `tie_ranking` (the full path's ranking) orders equal frequencies.
    `weights` are per-example weights (class weights) of all examples; each half takes its own.
    Halves are solved on `workers` threads (default: one per core).
    """
    labels = np.asarray(labels)

    def solve(ids: np.ndarray) -> np.ndarray:  # one half; on a worker thread
        x = rows(ids)
        center, scale = x.mean(axis=0, dtype=np.float64), x.std(axis=0, ddof=1, dtype=np.float64)
        design = standardised_design(x, center, scale, tol)
        fit = reweighted(datafit, None if weights is None else weights[ids])  # each half its own
        path = sparse_path(
            design, fit.targets(labels[ids]), fit, penalty, l1_ratio=l1_ratio, lambdas=lambdas,
            target_support=target_support, tol=tol,
        )  # fmt: skip
        return np.any(path.coef != 0, axis=2)  # (λs solved, p)

    halves = half_subsamples(labels, subsamples, seed, stratify)
    counts: np.ndarray | None = None
    # The halves are independent: one per core, each on one BLAS thread (the solver's kernels release
    # the GIL). Counts add integers, so the result does not depend on the order halves finish in.
    # A half separating early is expected (its support still counts): its warning is not shown. The
    # filter is set here, once, as warnings' filters are global and not safe to change from threads.
    with (
        stage(HALVES_STAGE),
        warnings.catch_warnings(),
        single_threaded_blas(),
        ThreadPoolExecutor(max(1, min(workers or os.cpu_count() or 1, subsamples))) as pool,
    ):
        warnings.simplefilter("ignore", SupportWarning)
        for b, selected in enumerate(pool.map(solve, halves)):
            if counts is None:
                counts = np.zeros((lambdas.size, selected.shape[1]))
            counts[: selected.shape[0]] += selected
            counts[selected.shape[0] :] += selected[-1]
            if on_subsample is not None:
                on_subsample(b + 1)
    frequency = (counts / subsamples).max(axis=0)
    return Stability(
        frequency=frequency,
        ranking=rank_by_frequency(frequency, tie_ranking),
        lambdas=np.asarray(lambdas),
        subsamples=subsamples,
    )


def rank_by_frequency(frequency: np.ndarray, tie_ranking: np.ndarray) -> np.ndarray:
    """Flat ids by selection frequency, highest first; equal frequencies in `tie_ranking`'s order."""
    position = np.empty(tie_ranking.size, dtype=np.int64)
    position[tie_ranking] = np.arange(tie_ranking.size)
    return np.lexsort((position, -frequency))
