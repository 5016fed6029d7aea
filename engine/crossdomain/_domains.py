"""Labelled activations of one domain, with the per-neuron statistics that standardise them.

Transfer needs each domain's activations (n × neurons) and its unlabelled mean and standard
deviation (the statistics pass, saved in the store). `standardise` applies any domain's statistics
to any other domain: the choice of whose statistics is the normalisation of method.md.

A domain whose float32 matrix fits `in_core_bytes` is read whole once (`Activations.x`). A larger
one stays in its store and is read only as asked, block by block through the store's stream: some
columns of every row (`columns`, what a k-neuron classifier is fitted on), some rows of every column
(`rows`, a row sample for the classifiers that need every neuron), or every block in turn
(`blocks`, for scoring). docs/scale-out.md says what transfer reads and samples.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.crossdomain._classifier import FOLDS
from neurosel.defaults import IN_CORE_BYTES
from neurosel.devices import Device
from neurosel.errors import InputError
from neurosel.kernels.standardise import safe_scale
from neurosel.stats import Moments, neuron_stats
from neurosel.store import DEFAULT_MEMORY_BUDGET, ActivationStore, decode, open_store

SAMPLE_STREAM = 0x5A3  # seeds the row sample's generator with the transfer's seed


@dataclass(frozen=True, eq=False)
class Activations:
    """A domain's pooled activations (n, layers × hidden) as float32, labels and statistics.

    `x` holds the whole matrix when it fit the memory budget at loading, else None: the store is
    then read as asked (`columns`, `rows`, `blocks`), `memory_budget` bytes of blocks in flight."""

    name: str
    store: ActivationStore
    x: np.ndarray | None
    y: np.ndarray
    kind: str  # "class" or "numeric"
    mean: np.ndarray
    std: np.ndarray
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    @property
    def layers(self) -> tuple[int, ...]:
        return self.store.layers

    @property
    def hidden(self) -> int:
        return self.store.hidden

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        return len(self.layers) * self.hidden

    @property
    def in_core(self) -> bool:
        return self.x is not None

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, stop, float32 rows) covering every row in order: the whole matrix as one block in
        core, else the store's blocks as they are read."""
        if self.x is not None:
            yield 0, self.n, self.x
            return
        dtype = self.store.meta["dtype"]
        for block in self.store.blocks(self.n, self.memory_budget):
            yield block.start, block.stop, decode(block.data, dtype).astype(np.float32, copy=False)

    def columns(self, cols: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """float32 (n, len(cols)) of every row (all columns when None): a slice in core, else one pass
        over the store keeping only those columns."""
        if self.x is not None:
            return self.x if cols is None else self.x[:, cols]
        cols = np.arange(self.p) if cols is None else np.asarray(cols)
        out = np.empty((self.n, cols.size), dtype=np.float32)
        for start, stop, x in self.blocks():
            out[start:stop] = x[:, cols]
        return out

    def rows(self, ids: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """(len(ids), p) of the sorted, distinct rows `ids` (every row when None), as float32 or into
        `out`: from the matrix in core, else from one pass over the store keeping only those rows."""
        if out is None:
            if self.x is not None:
                return self.x if ids is None else self.x[ids]
            out = np.empty((self.n if ids is None else ids.size, self.p), dtype=np.float32)
        if self.x is not None:
            out[...] = self.x if ids is None else self.x[ids]
            return out
        for start, stop, x in self.blocks():
            if ids is None:
                out[start:stop] = x
            else:
                lo, hi = np.searchsorted(ids, [start, stop])
                out[lo:hi] = x[ids[lo:hi] - start]
        return out


def load_activations(
    store: ActivationStore | str | Path,
    name: str | None = None,
    device: str | Device = "cpu",
    client: Any = None,
    in_core_bytes: int = IN_CORE_BYTES,
) -> Activations:
    """Open a complete, labelled, pooled store with its (saved or computed) statistics; its float32
    matrix is read into memory when it fits `in_core_bytes`, else left in the store. `client`: None,
    a Dask client or a runner (`neurosel.scaleout.resolve_runner`) for the statistics."""
    if not isinstance(store, ActivationStore):
        store = open_store(store)
    name = name or Path(store.path).name.removesuffix(".zarr")
    store.usable_rows(allow_partial=None)
    if store.labels is None:
        raise InputError(f"store {store.path}: has no labels; transfer needs labelled sources and targets")
    if store.meta["pooling"] == "tokens":
        raise InputError(f"store {store.path}: token-level store; extract with mean, cls or max pooling")
    stats = neuron_stats(store, by=None, device=device, progress=False, client=client)
    non_finite = f"store {store.path}: non-finite activations; re-extract with --dtype float32"
    x = None
    if store.n * len(store.layers) * store.hidden * 4 <= in_core_bytes:
        x = store.read().reshape(store.n, -1).astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise InputError(non_finite)
    elif int(stats.nonfinite.sum()):  # the statistics pass counted them
        raise InputError(non_finite)
    return Activations(
        name=name, store=store, x=x, y=store.labels, kind=store.meta["label_kind"],
        mean=stats.mean.ravel(), std=stats.std.ravel(),
        memory_budget=min(DEFAULT_MEMORY_BUDGET, in_core_bytes),
    )  # fmt: skip


def scaled(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x − mean) / std column by column; a constant neuron (std 0) standardises to 0."""
    return (x - mean) / safe_scale(std)


def standardise(
    domain: Activations, mean: np.ndarray, std: np.ndarray, cols: np.ndarray | None = None
) -> np.ndarray:
    """(x − mean) / std for the columns `cols` (all when None), with someone's statistics; a constant
    neuron (std 0) standardises to 0. A streamed domain's columns are read from its store."""
    if cols is None:
        return scaled(domain.columns(), mean, std)
    return scaled(domain.columns(cols), mean[cols], std[cols])


def pooled_statistics(domains: list[Activations]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 1) of the union of domains, from each one's statistics
    (merged with the statistics pass's own moment algebra)."""
    parts = [Moments.of_summary(np.full(d.mean.size, d.n), d.mean, d.std**2) for d in domains]
    _, mean, var = functools.reduce(Moments.merge, parts).pooled()
    return mean, np.sqrt(var)


class Columns:
    """Raw float32 columns of every row of a domain, for many column sets: slices of the whole matrix
    in core; for a streamed domain, the union of the sets, read at the first call (one pass)."""

    def __init__(self, domain: Activations, union: np.ndarray) -> None:
        self.domain = domain
        self.union = np.unique(union)
        self.raw: np.ndarray | None = None

    def __call__(self, cols: np.ndarray) -> np.ndarray:
        if self.domain.in_core:
            return self.domain.x[:, cols]
        if self.raw is None:
            self.raw = self.domain.columns(self.union)
        return self.raw[:, np.searchsorted(self.union, cols)]


def standardised_columns(
    columns: list[Columns], stats: list[tuple[np.ndarray, np.ndarray]], cols: np.ndarray
) -> np.ndarray:
    """Every row of the neurons `cols` of each domain (its `Columns`), stacked, each domain
    standardised with its entry of `stats` (mean, std)."""
    parts = [scaled(c(cols), mean[cols], std[cols]) for c, (mean, std) in zip(columns, stats, strict=True)]
    return parts[0] if len(parts) == 1 else np.vstack(parts)


def column_sets(domains: list[Activations], union: np.ndarray, in_core_bytes: int, why: str) -> list[Columns]:
    """`Columns` of each domain for the neurons `union` (read when first used); InputError naming the
    streamed stores, at once, when their rows of those columns (float32) do not fit `in_core_bytes`
    together."""
    union = np.unique(union)
    streamed = [d for d in domains if not d.in_core]
    rows = sum(d.n for d in streamed)
    needed = rows * union.size * 4
    if needed > in_core_bytes:
        names = ", ".join(str(d.store.path) for d in streamed)
        raise InputError(
            f"store {names}: {why} need {union.size} neurons of all {rows} rows, {needed:,} bytes as "
            f"float32, more than in_core_bytes={in_core_bytes:,}; raise in_core_bytes "
            "(neurosel.transfer(..., in_core_bytes=...)) or ask for smaller ks or fewer seeds"
        )
    return [Columns(d, union) for d in domains]


def row_sample(strata: np.ndarray, m: int, seed: int) -> np.ndarray:
    """Sorted ids of `m` rows, stratified by `strata`: each stratum gets its share of m rounded down,
    the remaining rows go to the largest remainders (ties to the smaller stratum), and each stratum's
    rows are drawn uniformly without replacement by a generator seeded with `seed`."""
    n = strata.size
    if m >= n:
        return np.arange(n)
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    quota = counts * m / n
    take = np.floor(quota).astype(np.int64)
    order = np.lexsort((np.arange(counts.size), -(quota - take)))
    take[order[: m - int(take.sum())]] += 1
    rng = np.random.default_rng([seed, SAMPLE_STREAM])
    picked = [rng.choice(np.flatnonzero(inverse == s), size=t, replace=False) for s, t in enumerate(take)]
    return np.sort(np.concatenate(picked))


def sample_rows(domains: list[Activations], in_core_bytes: int, seed: int) -> list[np.ndarray] | None:
    """The rows of each domain that a classifier on every neuron is fitted on: None (all of them)
    when every domain is in core, else a sample of as many rows as fit `in_core_bytes` as float32,
    stratified by domain and (class labels) by class, drawn with `seed` (`row_sample`)."""
    if all(d.in_core for d in domains):
        return None
    p = domains[0].p
    which = np.concatenate([np.full(d.n, i) for i, d in enumerate(domains)])
    strata = which
    if domains[0].kind == "class":
        classes, code = np.unique(np.concatenate([d.y for d in domains]), return_inverse=True)
        strata = which * classes.size + code
    m = in_core_bytes // (4 * p)
    ids = row_sample(strata, m, seed)
    _check_sample(domains, ids, m, in_core_bytes)
    bounds = np.cumsum([0] + [d.n for d in domains])
    return [ids[(ids >= lo) & (ids < hi)] - lo for lo, hi in itertools.pairwise(bounds)]


def _check_sample(domains: list[Activations], ids: np.ndarray, m: int, in_core_bytes: int) -> None:
    """A sample too small for the classifier's cross-validation is an InputError naming the option."""
    labels = np.concatenate([d.y for d in domains])[ids]
    counts = np.unique(labels, return_counts=True)[1] if domains[0].kind == "class" else [ids.size]
    if min(counts, default=0) >= FOLDS:
        return
    names = ", ".join(str(d.store.path) for d in domains)
    raise InputError(
        f"store {names}: only {m} rows of {domains[0].p} neurons fit in_core_bytes={in_core_bytes:,} as "
        f"float32, too few for {FOLDS}-fold cross-validation of the all-neuron classifiers (each class "
        f"needs {FOLDS} rows); raise in_core_bytes (neurosel.transfer(..., in_core_bytes=...))"
    )


def dense_matrix(
    domains: list[Activations], rows: list[np.ndarray] | None, stats: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised rows (all, or `rows` per domain) of every neuron of the domains, stacked, each
    domain standardised with its entry of `stats` (mean, std); and their labels. Built in place:
    the float64 result and one block are all it holds."""
    picks = [None] * len(domains) if rows is None else rows
    sizes = [d.n if r is None else r.size for d, r in zip(domains, picks, strict=True)]
    z = np.empty((sum(sizes), domains[0].p))
    starts = np.cumsum([0, *sizes[:-1]])
    for d, r, (mean, std), lo, size in zip(domains, picks, stats, starts, sizes, strict=True):
        part = z[lo : lo + size]
        d.rows(r, out=part)
        part -= mean  # the operations of `scaled`, in place
        part /= safe_scale(std)
    y = np.concatenate([d.y if r is None else d.y[r] for d, r in zip(domains, picks, strict=True)])
    return z, y


def check_same_layers(stores: list[ActivationStore]) -> None:
    """The same layers and width in every store (from their metadata: nothing is read)."""
    first = stores[0]
    for store in stores[1:]:
        if store.layers != first.layers or store.hidden != first.hidden:
            raise InputError(
                f"stores {first.path} and {store.path}: different layers or widths; "
                "extract them with the same model and layers"
            )


def check_compatible(domains: list[Activations]) -> None:
    """Same layers, width and label kind across domains (and the same classes for class labels)."""
    check_same_layers([d.store for d in domains])
    first = domains[0]
    for d in domains[1:]:
        if d.kind != first.kind:
            raise InputError(f"stores {first.name} and {d.name}: {first.kind} vs {d.kind} labels")
        if d.kind == "class" and not np.array_equal(np.unique(d.y), np.unique(first.y)):
            raise InputError(f"stores {first.name} and {d.name}: different classes; transfer needs the same")
