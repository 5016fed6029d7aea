"""Per-layer fingerprints of datasets, their similarity, and the similarity–transfer correlation.

A dataset's fingerprint is the percentage of its k selected neurons in each stored layer
(method.md, section 4). Similar fingerprints are expected to go with good transfer; `transferability`
tests that with Spearman's ρ and a permutation p-value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from scipy.stats import rankdata

from engine.crossdomain._paths import PathRecord, path_record, reusable_support, warn_filled
from engine.devices import Device, resolve_device
from engine.errors import InputError
from engine.progress import bar
from engine.solver import importance, layer_counts
from engine.store import ActivationStore, open_store

MEASURES = ("cosine", "pearson", "jsd")
MIN_PAIRS = 3
PERMUTATION_BATCH_VALUES = 1 << 20  # permuted ranks held in memory at once (8 MiB of float64)
ANALYSIS_NOTE = (
    "analysis only: each target's fingerprint is computed from the target's labels, so this is not "
    "part of the unsupervised transfer pipeline"
)


def similarity(a: np.ndarray, b: np.ndarray, measure: str = "cosine") -> float:
    """Similarity of two fingerprints: cosine, Pearson r, or 1 − Jensen–Shannon divergence (base 2).

    Fingerprints are non-negative per-layer vectors (percentages; any positive total works, since
    jsd normalises them to distributions). For jsd, layers where one distribution has zero mass
    contribute 0·log 0 = 0, so the result is always defined and lies in [0, 1]. Pearson r of a
    fingerprint with the same value in every layer is undefined and raises InputError.
    """
    _check_measure(measure)
    x, y = _fingerprint_vector(a, "a"), _fingerprint_vector(b, "b")
    _check_lengths({"a": x, "b": y})
    return _similarity(x, y, measure, "a", "b")


def similarity_matrix(fingerprints: Mapping[str, np.ndarray], measure: str = "cosine") -> np.ndarray:
    """Symmetric (datasets × datasets) similarity, rows and columns in the mapping's order."""
    _check_measure(measure)
    vectors = {name: _fingerprint_vector(v, name) for name, v in fingerprints.items()}
    _check_lengths(vectors)
    names = list(vectors)
    out = np.empty((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i, len(names)):
            out[i, j] = out[j, i] = _similarity(vectors[a], vectors[names[j]], measure, a, names[j])
    return out


def spearman_permutation(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    permutations: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Spearman's ρ (ties get average ranks) and its two-sided permutation p-value.

    p = (#{|ρ_perm| ≥ |ρ_obs|} + 1) / (permutations + 1), with y's ranks permuted in batches by a
    generator seeded with `seed`, so the result is reproducible and never exactly 0.
    """
    rx, ry = _ranks(x, "x"), _ranks(y, "y")
    if rx.size != ry.size:
        raise InputError(f"x, y: {rx.size} and {ry.size} values; pass one y per x")
    if rx.size < MIN_PAIRS:
        raise InputError(f"{rx.size} pairs: Spearman's ρ needs at least {MIN_PAIRS}")
    if isinstance(permutations, bool) or not isinstance(permutations, int | np.integer) or permutations < 1:
        raise InputError(f"permutations {permutations!r}: pass a positive integer")
    # Doubled centred average ranks are integers, so permuted statistics equal to the observed one
    # compare exactly (no tolerance) for any realistic number of pairs.
    cx, cy = 2 * rx - (rx.size + 1), 2 * ry - (ry.size + 1)
    for name, c in (("x", cx), ("y", cy)):
        if not c.any():
            raise InputError(f"{name}: every value is the same; Spearman's ρ is undefined")
    observed = float(cx @ cy)
    rng = np.random.default_rng(seed)
    batch = max(1, PERMUTATION_BATCH_VALUES // cy.size)
    extreme = 0
    for start in range(0, permutations, batch):
        shuffled = rng.permuted(np.tile(cy, (min(batch, permutations - start), 1)), axis=1)
        extreme += int(np.count_nonzero(np.abs(shuffled @ cx) >= abs(observed)))
    rho = observed / float(np.sqrt(cx @ cx) * np.sqrt(cy @ cy))
    return float(np.clip(rho, -1.0, 1.0)), (extreme + 1) / (permutations + 1)


def transferability(
    fingerprints: Mapping[str, np.ndarray] | Fingerprints,
    scores: Mapping[tuple[str, str], float],
    measure: str = "cosine",
    permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman ρ, over ordered (source, target) pairs, of fingerprint similarity and transfer score.

    `scores[(source, target)]` is the accuracy of a model trained on source and tested on target.
    Each target's fingerprint is computed from the target's labels, so this is an analysis tool for
    explaining transfer results, not a step of the unsupervised pipeline (the result says so too).
    """
    vectors = fingerprints.as_mapping() if isinstance(fingerprints, Fingerprints) else fingerprints
    pairs = []
    for (source, target), score in scores.items():
        missing = [name for name in (source, target) if name not in vectors]
        if missing:
            raise InputError(
                f"scores ({source!r}, {target!r}): no fingerprint for {', '.join(map(repr, missing))}; "
                f"fingerprints exist for {', '.join(map(repr, vectors))}"
            )
        if source == target:
            raise InputError(
                f"scores ({source!r}, {target!r}): in-domain score; pass only pairs of different datasets"
            )
        if not np.isfinite(score):
            raise InputError(f"scores ({source!r}, {target!r}): {score!r}; pass a finite score")
        sim = similarity(vectors[source], vectors[target], measure)
        pairs.append({"source": source, "target": target, "similarity": sim, "score": float(score)})
    rho, p = spearman_permutation(
        [pair["similarity"] for pair in pairs], [pair["score"] for pair in pairs], permutations, seed
    )
    return {
        "measure": measure,
        "spearman": rho,
        "p_value": p,
        "permutations": permutations,
        "seed": seed,
        "note": ANALYSIS_NOTE,
        "pairs": pairs,
    }


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of several datasets over the same stored layers, from their top-k neurons."""

    names: tuple[str, ...]
    layers: tuple[int, ...]  # model layer ids (0 = embeddings), one column each
    k: int
    percentages: np.ndarray  # (datasets, layers), rows sum to 100
    counts: np.ndarray  # (datasets, layers), rows sum to k
    method: str = "l1-logistic"
    measure: str = "cosine"
    paths: tuple[PathRecord, ...] = ()  # per dataset: the sparse path its top k came from

    def as_mapping(self) -> dict[str, np.ndarray]:
        """Dataset name → percentage vector, the input of `similarity_matrix` and `transferability`."""
        return dict(zip(self.names, self.percentages, strict=True))

    def similarity(self, measure: str | None = None) -> np.ndarray:
        """Datasets × datasets similarity matrix (`measure` defaults to the one chosen at creation)."""
        return similarity_matrix(self.as_mapping(), measure or self.measure)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: settings, per-dataset counts and percentages, the similarity matrix, and
        each dataset's path record (neurons entered, separation λ, neurons filled)."""
        return {
            "method": self.method,
            "k": self.k,
            "measure": self.measure,
            "layers": list(self.layers),
            "datasets": [
                {"name": name, "counts": counts.tolist(), "percentages": pct.tolist()}
                for name, counts, pct in zip(self.names, self.counts, self.percentages, strict=True)
            ],
            "similarity": self.similarity().tolist(),
            "paths": [p.to_dict() for p in self.paths],
        }


def fingerprint(
    stores: Sequence[ActivationStore | str | Path],
    k: int = 300,
    method: str = "l1-logistic",
    names: Sequence[str] | None = None,
    measure: str = "cosine",
    *,
    device: str | Device = "auto",
    progress: bool = False,
    **importance_options: Any,
) -> Fingerprints:
    """Rank each store's neurons with `engine.importance`, keep the top k, and tabulate their layers.

    Stores may be `ActivationStore`s or paths; all must hold the same layers. Names default to the
    store directory names without a `.zarr` suffix. `importance_options` go to `engine.importance`.
    Without `target_support` (or `recompute`) in them, a path saved in the store by an earlier run
    with the same options that reached at least k neurons (`target_support` ≥ k, e.g. a transfer's)
    is read back instead of solving the default path (engine/crossdomain/_paths.py). A store whose
    top k takes neurons that never entered its path gets a SupportWarning naming the store.
    """
    _check_measure(measure)
    opened = [s if isinstance(s, ActivationStore) else open_store(s) for s in stores]
    if not opened:
        raise InputError("stores: none given; pass at least one store")
    labels = [_store_name(s) for s in opened] if names is None else [str(name) for name in names]
    if len(labels) != len(opened):
        raise InputError(f"names: {len(labels)} names for {len(opened)} stores; pass one per store")
    if len(set(labels)) != len(labels):
        raise InputError(f"names {labels}: not unique; pass distinct names=")
    first = opened[0]
    for store in opened[1:]:
        if store.layers != first.layers:
            raise InputError(
                f"store {store.path}: layers {list(store.layers)} differ from {first.path}'s "
                f"{list(first.layers)}; fingerprints compare stores of the same layers"
            )
    for store in opened:  # fail before any (slow) importance run
        total = len(store.layers) * store.hidden
        if not 1 <= k <= total:
            raise InputError(f"k {k}: choose 1..{total} (store {store.path} has {total} neurons)")
    device = resolve_device(device)
    percentages, counts, paths = [], [], []
    with bar(len(opened), "fingerprints", "store", progress) as stores_bar:
        for store, label in zip(opened, labels, strict=True):
            options = dict(importance_options)
            support = reusable_support(store, method, k, options)
            if support is not None:
                options["target_support"] = support
            imp = importance(store, method, device=device, **options)
            paths.append(path_record(imp, store, k, label))
            warn_filled(paths[-1])
            # engine.select's top k, without its warning (that names where the path was saved from)
            count, percent = layer_counts(imp.ranking[:k], imp.hidden, len(imp.layers))
            percentages.append(percent)
            counts.append(count)
            stores_bar.update(1)
    return Fingerprints(
        names=tuple(labels),
        layers=first.layers,
        k=k,
        percentages=np.array(percentages),
        counts=np.array(counts),
        method=method,
        measure=measure,
        paths=tuple(paths),
    )


def _similarity(a: np.ndarray, b: np.ndarray, measure: str, name_a: str, name_b: str) -> float:
    if measure == "jsd":
        p, q = a / a.sum(), b / b.sum()
        m = (p + q) / 2
        divergence = (_kl_bits(p, m) + _kl_bits(q, m)) / 2
        return float(np.clip(1.0 - divergence, 0.0, 1.0))
    if measure == "pearson":
        for name, v in ((name_a, a), (name_b, b)):
            if np.ptp(v) == 0:
                raise InputError(
                    f"fingerprint {name!r}: the same value in every layer, so Pearson r is undefined; "
                    "use measure='cosine' or 'jsd'"
                )
        a, b = a - a.mean(), b - b.mean()
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))


def _kl_bits(p: np.ndarray, m: np.ndarray) -> float:
    """KL(p ‖ m) in bits, with 0·log 0 = 0 (m > 0 wherever p > 0, as m is a mixture containing p)."""
    mass = p > 0
    return float(np.sum(p[mass] * np.log2(p[mass] / m[mass])))


def _fingerprint_vector(v: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"fingerprint {name!r}: shape {x.shape}; pass one value per layer")
    if not np.isfinite(x).all():
        raise InputError(f"fingerprint {name!r}: non-finite values; pass percentages per layer")
    if (x < 0).any():
        raise InputError(f"fingerprint {name!r}: negative entries; pass percentages per layer")
    if not x.any():
        raise InputError(f"fingerprint {name!r}: all zero; a fingerprint needs at least one selected neuron")
    return x


def _check_lengths(vectors: Mapping[str, np.ndarray]) -> None:
    sizes = {name: v.size for name, v in vectors.items()}
    if len(set(sizes.values())) > 1:
        raise InputError(
            f"fingerprints of different lengths {sizes}; compare fingerprints over the same layers"
        )


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise InputError(f"measure {measure!r}: use one of {', '.join(MEASURES)}")


def _ranks(v: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(v, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise InputError(f"{name}: pass a 1-D sequence of finite numbers (got shape {x.shape})")
    return rankdata(x)


def _store_name(store: ActivationStore) -> str:
    name = PurePosixPath(str(store.path).rstrip("/")).name
    return name.removesuffix(".zarr") or name
