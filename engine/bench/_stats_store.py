"""bench stats's store: the seeded two-class synthetic store (built once, reused) and the class of every
activation row."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import neurosel
from neurosel.bench._harness import cached_store
from neurosel.errors import InputError
from neurosel.store import ActivationStore

SEED = 0
GENERATE_ROWS = 8192  # rows of synthetic data generated per step


def synthetic_path(args: argparse.Namespace) -> Path:
    """Where the synthetic store of these parameters lives; its name encodes them."""
    name = f"stats_synthetic_{args.rows}x{args.layers}x{args.hidden}_{args.dtype}_seed{SEED}.zarr"
    return args.scratch_dir / name


def synthetic_store(args: argparse.Namespace) -> ActivationStore:
    """The synthetic store for these parameters: reused when complete, else (re)built."""

    def build(path: Path) -> ActivationStore:
        x, y = synthetic_data(args.rows, args.layers, args.hidden, np.dtype(args.dtype))
        return neurosel.store_from_array(
            path, x, labels=y, dtype=args.dtype, model_id=f"synthetic-seed{SEED}"
        )

    shape = (args.rows, args.layers, args.hidden)
    return cached_store(synthetic_path(args), shape, args.rebuild, build)[0]


def synthetic_data(rows: int, layers: int, hidden: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Seeded two-class activations: unit normal noise, a per-neuron offset, a per-neuron class-1 shift."""
    rng = np.random.default_rng(SEED)
    offset = rng.normal(0.0, 2.0, (layers, hidden)).astype(np.float32)
    shift = rng.normal(0.0, 0.5, (layers, hidden)).astype(np.float32)
    y = rng.integers(0, 2, rows)
    x = np.empty((rows, layers, hidden), dtype=dtype)
    for start in range(0, rows, GENERATE_ROWS):
        part = y[start : start + GENERATE_ROWS, None, None]
        noise = rng.standard_normal((part.shape[0], layers, hidden), dtype=np.float32)
        x[start : start + part.shape[0]] = noise + offset + part * shift
    return x, y


def row_classes(store: ActivationStore) -> tuple[np.ndarray, int]:
    """Class index (int32) of every activation row (token rows repeat their example's), and classes."""
    if not store.complete:
        raise InputError(f"store {store.path}: incomplete; finish the extraction first")
    if store.labels is None or store.meta["label_kind"] != "class":
        raise InputError(f"store {store.path}: the statistics benchmark needs class labels")
    labels = store.labels
    if store.meta["pooling"] == "tokens":
        labels = np.repeat(labels, np.diff(store.group["offsets"][:]))
    classes, cls = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        raise InputError(f"store {store.path}: one class only; the benchmark needs two or more")
    return cls.astype(np.int32), int(classes.size)
