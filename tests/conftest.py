"""Shared fixtures: tiny BERT models built offline, random texts, paths to ../shared datasets, and
synthetic activation stores with a planted signal (`planted_arrays`, `build_store` and two fixtures)."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import neurosel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
WORDS = (
    "the a movie film plot actor great bad good terrible boring fun kitchen pan knife blender "
    "battery screen charger works broke loved hated again never always very quite not cheap "
    "price quality sound picture story ending music fast slow sharp dull hot cold"
).split()


def build_tiny_bert(
    path: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, positions: int = 128, seed: int = 0
) -> Path:
    """Save a randomly initialised BERT and a word-level vocabulary tokenizer to `path`."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab += list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    torch.manual_seed(seed)
    model = BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=hidden * 2,
            max_position_embeddings=positions,
        )
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def random_texts(n: int, seed: int = 0, min_words: int = 1, max_words: int = 20) -> list[str]:
    """Texts of widely varying length so that length bucketing reorders them."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(min_words, max_words))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT large enough that extraction runs long enough to be interrupted mid-run."""
    return build_tiny_bert(tmp_path_factory.mktemp("slow-bert"), hidden=128, layers=4, heads=4)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present")
    return DATASETS


def store_bytes(out: Path) -> dict[str, bytes]:
    """Every file of a store by its relative path: two stores are byte-identical when these are equal."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# --- synthetic stores ------------------------------------------------------------------------------

# the `planted_store` fixture's signal: flat ids of layer 0 unit 5, layer 1 unit 4, layer 2 unit 9
PLANTED = [5, 20, 41]


def planted_arrays(
    *,
    n: int,
    layers: int,
    hidden: int,
    planted: Sequence[int] = (),
    effect: float | Sequence[float] = 1.0,
    classes: int = 2,
    seed: int | np.random.Generator = 0,
    labels_first: bool = False,
    cycle: bool = False,
    imbalanced: bool = False,
    signed: bool = True,
    unit_scale: tuple[float, float] | None = None,
    spread: float = 1.0,
    shift: float = 0.0,
    offset: float = 0.0,
    values_dtype: str | None = None,
    numeric: bool = False,
    noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Activations (n, layers, hidden) and labels with a planted signal; the draws, in order, from
    `np.random.default_rng(seed)` (an int, or a Generator that is drawn from and not reset):

    1. labels `rng.integers(0, classes, n)`, when `labels_first` (else step 3);
    2. values `rng.standard_normal((n, layers * hidden))`, times `rng.uniform(*unit_scale, layers * hidden)`
       (a scale per neuron) when `unit_scale` is given, times `spread`, plus `shift`, cast to
       `values_dtype` when given;
    3. labels `rng.integers(0, classes, n)`, unless `labels_first`, `cycle` (labels `arange(n) % classes`,
       no draw), `imbalanced` (from `rng.random(n)`: the last class twice as frequent as each other) or
       `numeric` (the score `x[:, planted] @ effect + noise · rng.standard_normal(n)`, the draw left out
       when `noise` is 0; nothing is planted);
    4. the signal on the flat neuron ids `planted`, `effect` each (a number or one per neuron): with two
       classes every planted neuron moves by ±effect (`signed`: −effect for class 0, +effect for class
       1) or by +effect for class 1 only (not `signed`); with more classes planted neuron i moves by
       +effect for class i and (`signed`) −effect for the others;
    5. `offset` added to every value (a domain shift, after the signal).
    """
    rng = np.random.default_rng(seed)
    p = layers * hidden
    y = rng.integers(0, classes, n) if labels_first and not (cycle or imbalanced or numeric) else None
    x = rng.standard_normal((n, p))
    if unit_scale is not None:
        x = x * rng.uniform(*unit_scale, p)
    if spread != 1.0:
        x = x * spread
    if shift:
        x = x + shift
    if values_dtype is not None:
        x = x.astype(values_dtype)
    idx = list(planted)
    weights = np.broadcast_to(np.asarray(effect, dtype=np.float64), (len(idx),))
    if numeric:
        y = x[:, idx] @ weights
        if noise:
            y = y + noise * rng.standard_normal(n)
    else:
        if cycle:
            y = np.arange(n) % classes
        elif imbalanced:
            y = np.minimum((rng.random(n) * (classes + 1)).astype(int), classes - 1)
        elif y is None:
            y = rng.integers(0, classes, n)
        if idx:
            if classes == 2:
                move = (2 * y - 1 if signed else y)[:, None]
            else:
                mine = y[:, None] == np.arange(len(idx))  # planted neuron i goes with class i
                move = mine * 2.0 - 1.0 if signed else mine * 1.0
            x[:, idx] += move * weights
    if offset:
        x += offset
    return x.reshape(n, layers, hidden), y


def build_store(
    path: str | Path,
    *,
    n: int,
    layers: int,
    hidden: int,
    dtype: str = "float32",
    chunk_rows: int | None = None,
    layer_ids: Sequence[int] | None = None,
    label_names: Sequence[str] | None = None,
    **draws: Any,
):
    """`planted_arrays(n=n, layers=layers, hidden=hidden, **draws)` written with `neurosel.store_from_array`
    to `path` (`dtype`, `chunk_rows`, layer numbers `layer_ids`); class c is stored as `label_names[c]`
    when given. Returns the `ActivationStore`."""
    x, y = planted_arrays(n=n, layers=layers, hidden=hidden, **draws)
    labels = y if label_names is None else np.asarray(label_names)[y]
    return neurosel.store_from_array(
        path, x, labels=labels, layers=layer_ids, dtype=dtype, chunk_rows=chunk_rows
    )


def two_class_store_at(path: str | Path, *, n: int = 80, layers: int = 3, hidden: int = 8, seed: int = 0):
    """A small labelled float32 store: labels drawn first, then float32 values; class 1 adds 2 to layer 1
    unit 2."""
    return build_store(
        path, n=n, layers=layers, hidden=hidden, planted=[hidden + 2], effect=2.0, seed=seed,
        labels_first=True, signed=False, values_dtype="float32",
    )  # fmt: skip


@pytest.fixture
def two_class_store(tmp_path: Path):
    """`two_class_store_at` with its defaults: 80 rows × 3 layers × 8 units, one planted neuron."""
    return two_class_store_at(tmp_path / "s.zarr")


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory):
    """400 rows × 3 layers × 16 units, a neuron scale in [0.5, 2) and +3; `PLANTED` move ±(1.2, 0.9,
    0.7) with the class; labels "neg"/"pos"; float32 in 32-row chunks. One per module (passes save in it)."""
    return build_store(
        tmp_path_factory.mktemp("planted") / "s.zarr", n=400, layers=3, hidden=16, planted=PLANTED,
        effect=[1.2, 0.9, 0.7], unit_scale=(0.5, 2), shift=3, label_names=("neg", "pos"), chunk_rows=32,
    )  # fmt: skip
