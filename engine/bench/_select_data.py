"""bench select's datasets (the Amazon, synthetic and user's stores, built once and reused) and the
problem every solver sees: the standardised neurons in memory."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import cached_store
from neurosel.errors import InputError
from neurosel.experiments import read_domain
from neurosel.kernels.standardise import safe_scale
from neurosel.stats import NeuronStats
from neurosel.store import ActivationStore, open_store

SEED = 0
SYNTHETIC_RANK = 32  # latent factors shared by the synthetic neurons
SYNTHETIC_PLANTED = 32  # neurons of the planted logistic model
SYNTHETIC_MARGIN_STD = 2.0  # standard deviation of the planted model's margin
GENERATE_ROWS = 8192  # synthetic rows generated per step
LOAD_ROWS = 4096  # rows standardised per step when loading the store for scikit-learn


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
