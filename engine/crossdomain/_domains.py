"""Labelled activations of one domain in memory, with the per-neuron statistics that standardise them.

Transfer needs each domain's activations as a matrix (n × neurons) and its unlabelled mean and
standard deviation (the statistics pass, saved in the store). `standardise` applies any domain's
statistics to any other domain: the choice of whose statistics is the normalisation of method.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.devices import Device
from engine.errors import InputError
from engine.stats import Moments, neuron_stats
from engine.store import ActivationStore, open_store


@dataclass(frozen=True, eq=False)
class Activations:
    """A domain's pooled activations (n, layers × hidden) as float32, labels and statistics."""

    name: str
    store: ActivationStore
    x: np.ndarray
    y: np.ndarray
    kind: str  # "class" or "numeric"
    mean: np.ndarray
    std: np.ndarray

    @property
    def layers(self) -> tuple[int, ...]:
        return self.store.layers

    @property
    def hidden(self) -> int:
        return self.store.hidden


def load_activations(
    store: ActivationStore | str | Path,
    name: str | None = None,
    device: str | Device = "cpu",
    client: Any = None,
) -> Activations:
    """Read a complete, labelled, pooled store into memory with its (saved or computed) statistics."""
    if not isinstance(store, ActivationStore):
        store = open_store(store)
    name = name or Path(store.path).name.removesuffix(".zarr")
    store.usable_rows(allow_partial=None)
    if store.labels is None:
        raise InputError(f"store {store.path}: has no labels; transfer needs labelled sources and targets")
    if store.meta["pooling"] == "tokens":
        raise InputError(f"store {store.path}: token-level store; extract with mean, cls or max pooling")
    stats = neuron_stats(store, by=None, device=device, progress=False, client=client)
    x = store.read().reshape(store.n, -1).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(f"store {store.path}: non-finite activations; re-extract with --dtype float32")
    return Activations(
        name=name, store=store, x=x, y=store.labels, kind=store.meta["label_kind"],
        mean=stats.mean.ravel(), std=stats.std.ravel(),
    )  # fmt: skip


def standardise(
    domain: Activations, mean: np.ndarray, std: np.ndarray, cols: np.ndarray | None = None
) -> np.ndarray:
    """(x − mean) / std for the columns `cols` (all when None), with someone's statistics; a constant
    neuron (std 0) standardises to 0."""
    safe = np.where(std > 0, std, 1.0)
    if cols is None:
        return (domain.x - mean) / safe
    return (domain.x[:, cols] - mean[cols]) / safe[cols]


def pooled_statistics(domains: list[Activations]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 1) of the union of domains, from each one's statistics
    (merged with the statistics pass's own moment algebra)."""
    parts = [Moments.of_summary(np.full(d.mean.size, d.x.shape[0]), d.mean, d.std**2) for d in domains]
    _, mean, var = functools.reduce(Moments.merge, parts).pooled()
    return mean, np.sqrt(var)


def check_compatible(domains: list[Activations]) -> None:
    """Same layers, width and label kind across domains (and the same classes for class labels)."""
    first = domains[0]
    for d in domains[1:]:
        if d.layers != first.layers or d.hidden != first.hidden:
            raise InputError(
                f"stores {first.store.path} and {d.store.path}: different layers or widths; "
                "extract them with the same model and layers"
            )
        if d.kind != first.kind:
            raise InputError(f"stores {first.name} and {d.name}: {first.kind} vs {d.kind} labels")
        if d.kind == "class" and not np.array_equal(np.unique(d.y), np.unique(first.y)):
            raise InputError(f"stores {first.name} and {d.name}: different classes; transfer needs the same")
