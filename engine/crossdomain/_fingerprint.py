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

from neurosel.crossdomain._domains import load_activations
from neurosel.crossdomain._paths import BY_ENTRY, PathRecord, path_record, reusable_support, warn_filled
from neurosel.crossdomain._rankings import (
    path_options,
    resolve_ranking,
    selection_ranking,
    stats_ranking,
)
from neurosel.defaults import DEFAULT_K, DEFAULT_RANKING, MEASURES, RANKINGS
from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.params import (
    Boolean,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    SequenceOf,
    check_options,
    validated,
)
from neurosel.progress import bar
from neurosel.scaleout import Runner, resolve_runner
from neurosel.solver import IMPORTANCE_PARAMS, METHODS, get_method, importance, layer_counts
from neurosel.store import ActivationStore, open_store

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


def domain_distance(source_mean: np.ndarray, source_std: np.ndarray, target_mean: np.ndarray) -> float:
    """A label-free distance from a source domain to a target: the root mean square, over neurons,
    of the target's mean activation shift in units of the source's standard deviation (neurons
    constant on the source are left out). It needs only each domain's unlabelled statistics."""
    mean, std = np.ravel(source_mean), np.ravel(source_std)
    live = std > 0
    shift = (np.ravel(target_mean)[live] - mean[live]) / std[live]
    return float(np.sqrt(np.mean(shift**2))) if live.any() else 0.0


def partial_spearman(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    z: Sequence[float] | np.ndarray,
    permutations: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Spearman's ρ of x and y with z partialled out (the rank correlations' partial correlation),
    and its two-sided permutation p-value (y's ranks permuted, z held with x)."""
    rx, ry, rz = (_ranks(v, name) for v, name in ((x, "x"), (y, "y"), (z, "z")))
    if not rx.size == ry.size == rz.size:
        raise InputError(f"x, y, z: {rx.size}, {ry.size} and {rz.size} values; pass one of each per pair")
    if rx.size < MIN_PAIRS + 1:
        raise InputError(f"{rx.size} pairs: a partial Spearman ρ needs at least {MIN_PAIRS + 1}")
    sx, sy, sz = (_standard(r, name) for r, name in ((rx, "x"), (ry, "y"), (rz, "z")))
    for name, r in (("x", float(sx @ sz)), ("y", float(sy @ sz))):
        if abs(r) >= 1 - 1e-12:
            raise InputError(
                f"{name}, z: perfectly rank-correlated; nothing is left once z is partialled out"
            )
    r_xz = float(sx @ sz)

    def partial(ys: np.ndarray) -> np.ndarray:  # ys: (m, n) standardised ranks
        r_xy, r_yz = ys @ sx, ys @ sz
        return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * np.clip(1 - r_yz**2, 1e-300, None))

    observed = float(partial(sy[None, :])[0])
    rng = np.random.default_rng(seed)
    batch = max(1, PERMUTATION_BATCH_VALUES // sy.size)
    extreme = 0
    for start in range(0, permutations, batch):
        shuffled = rng.permuted(np.tile(sy, (min(batch, permutations - start), 1)), axis=1)
        extreme += int(np.count_nonzero(np.abs(partial(shuffled)) >= abs(observed) - 1e-12))
    return float(np.clip(observed, -1.0, 1.0)), (extreme + 1) / (permutations + 1)


def _standard(r: np.ndarray, name: str) -> np.ndarray:
    """Ranks centred and scaled to unit norm, so dot products are Spearman correlations."""
    c = r - r.mean()
    norm = float(np.linalg.norm(c))
    if norm == 0:
        raise InputError(f"{name}: every value is the same; Spearman's ρ is undefined")
    return c / norm


def transferability(
    fingerprints: Mapping[str, np.ndarray] | Fingerprints,
    scores: Mapping[tuple[str, str], float],
    measure: str = "cosine",
    permutations: int = 10_000,
    seed: int = 0,
    distances: Mapping[tuple[str, str], float] | None = None,
) -> dict[str, Any]:
    """Spearman ρ, over ordered (source, target) pairs, of fingerprint similarity and transfer score.

    `scores[(source, target)]` is the accuracy of a model trained on source and tested on target.
    Each target's fingerprint is computed from the target's labels, so this is an analysis tool for
    explaining transfer results, not a step of the unsupervised pipeline (the result says so too).

    `distances[(source, target)]` (e.g. `domain_distance` from unlabelled statistics) adds the
    control: Spearman ρ of the negated distance and the score (does a label-free closeness predict
    transfer as well?), and the partial ρ of similarity and score with the distance held fixed
    (what the fingerprints add beyond it), each with a permutation p-value.
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
    sims, values = [pair["similarity"] for pair in pairs], [pair["score"] for pair in pairs]
    rho, p = spearman_permutation(sims, values, permutations, seed)
    result = {
        "measure": measure,
        "spearman": rho,
        "p_value": p,
        "permutations": permutations,
        "seed": seed,
        "note": ANALYSIS_NOTE,
        "pairs": pairs,
    }
    if distances is not None:
        result["control"] = _control(pairs, distances, sims, values, permutations, seed)
    return result


def _control(pairs, distances, sims, values, permutations: int, seed: int) -> dict[str, Any]:
    """Closeness by a label-free distance against transfer, and the fingerprints' partial ρ."""
    missing = [(p["source"], p["target"]) for p in pairs if (p["source"], p["target"]) not in distances]
    if missing:
        raise InputError(f"distances: no distance for the pairs {missing}; pass one for every scored pair")
    for pair in pairs:
        pair["distance"] = float(distances[pair["source"], pair["target"]])
    closeness = [-pair["distance"] for pair in pairs]
    rho_d, p_d = spearman_permutation(closeness, values, permutations, seed)
    try:
        partial, p_partial = partial_spearman(sims, values, closeness, permutations, seed)
    except InputError:  # similarity or score fully explained by the distance: no partial ρ
        partial = p_partial = None
    return {
        "distance": "root mean square shift of the target's neuron means, in source standard deviations",
        "spearman_closeness": rho_d,
        "p_value_closeness": p_d,
        "partial_spearman": partial,
        "p_value_partial": p_partial,
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

    def describe(self) -> str:
        """A terminal table: % of the top-k neurons per layer for each dataset, then the similarity
        matrix, then what each dataset's path did (`neurosel fingerprint` prints it)."""
        width = max(7, *(len(name) for name in self.names))
        lines = [f"top {self.k} neurons by {self.method}: % per layer"]
        lines.append(f"{'dataset':<{width}}" + "".join(f"{'L' + str(layer):>6}" for layer in self.layers))
        for name, row in zip(self.names, self.percentages, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{value:>6.1f}" for value in row))
        lines.append("")
        lines.append(f"similarity ({self.measure})")
        lines.append(" " * width + "".join(f"{name:>{width + 1}}" for name in self.names))
        for name, row in zip(self.names, self.similarity(), strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{value:>{width + 1}.3f}" for value in row))
        if self.paths:
            lines += ["", *(f"path {path.describe()}" for path in self.paths)]
        return "\n".join(lines)

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


# The options of `fingerprint`, checked before any store is read (neurosel.params); its
# `importance_options` with importance's table, k against each store's neurons once it is open.
FINGERPRINT_PARAMS = {
    "stores": SequenceOf(PathLike(store=True), min_len=1, fix="pass at least one store"),
    "k": Interval(Integral, 1, None),
    "method": OneOf(lambda: METHODS),
    "names": Optional(SequenceOf(Instance(str, int, what="a name"))),
    "measure": OneOf(*MEASURES),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "progress": Boolean(),
    "ranking": OneOf(*RANKINGS),
    "importance_options": Optional(Instance(dict, what="a dict of neurosel.importance options")),
}
FINGERPRINT_SETS = ("store", "method", "device", "progress")  # importance options fingerprint sets


@validated(FINGERPRINT_PARAMS)
def fingerprint(
    stores: Sequence[ActivationStore | str | Path],
    k: int = DEFAULT_K,
    method: str = "l1-logistic",
    names: Sequence[str] | None = None,
    measure: str = "cosine",
    *,
    device: str | Device = "auto",
    progress: bool = False,
    ranking: str = DEFAULT_RANKING,
    importance_options: dict[str, Any] | None = None,
    **options: Any,
) -> Fingerprints:
    """Rank each store's neurons with `neurosel.importance`, keep the top k, and tabulate their layers.

    Stores may be `ActivationStore`s or paths; all must hold the same layers. Names default to the
    store directory names without a `.zarr` suffix. `importance_options` go to `neurosel.importance`
    (as transfer's do; given as keywords, `fingerprint(..., n_lambdas=10)`, they are merged in).
    Without `target_support` (or `recompute`) in them, a path saved in the store by an earlier run
    with the same options that reached at least k neurons (`target_support` ≥ k, e.g. a transfer's)
    is read back instead of solving the default path (engine/crossdomain/_paths.py). `ranking` ranks
    each store's neurons as a single-source transfer does (RANKINGS, the same default, "auto"
    resolved by `method`: lasso ranks numeric labels; its saved stability frequencies are read
    back). Under "entry" and "elastic-net", a store whose top k takes neurons that never entered its
    path gets a SupportWarning naming the store.
    """
    importance_options = check_options(
        "importance", IMPORTANCE_PARAMS, {**options, **(importance_options or {})}, "importance_options",
        taken=FINGERPRINT_SETS,
    )  # fmt: skip
    rule = resolve_ranking(ranking, get_method(method).label_kind)
    opened = [open_store(s) for s in stores]
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
    importance_options = {**importance_options, "client": resolve_runner(importance_options.get("client"))}
    percentages, counts, paths = [], [], []
    with bar(len(opened), "fingerprints", "store", progress) as stores_bar:
        for store, label in zip(opened, labels, strict=True):
            options = path_options(rule, dict(importance_options))
            support = reusable_support(store, method, k, options)
            if support is not None:
                options["target_support"] = support
            imp = importance(store, method, device=device, **options)
            order = _ranked(rule, store, label, imp, device, options["client"])
            paths.append(path_record(imp, store, k, label, order, rule))
            if rule in BY_ENTRY:  # other rules rank neurons that never entered on purpose
                warn_filled(paths[-1])
            # neurosel.select's top k, without its warning (that names where the path was saved from)
            count, percent = layer_counts(order[:k], imp.hidden, len(imp.layers))
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


def _ranked(
    rule: str, store: ActivationStore, name: str, imp: Any, device: Device, runner: Runner
) -> np.ndarray:
    """The store's neurons ranked by `rule`, as a single-source transfer ranks them (the same saved
    path and, for stability, the same saved frequencies)."""
    if rule in BY_ENTRY:
        return imp.ranking
    domain = load_activations(store, name, device, runner)
    support = imp.meta["params"]["target_support"]
    order, _ = selection_ranking(rule, domain, imp, stats_ranking([domain], device), support)
    return order


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
