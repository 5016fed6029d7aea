"""Shared fixtures: tiny BERT models built offline, random texts, paths to ../shared datasets."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

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


def build_tiny_relative(path: Path, kind: str) -> Path:
    """A tiny RoBERTa or DistilBERT (other BERT-family layouts) with the same word-level tokenizer."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel, RobertaConfig, RobertaModel

    build_tiny_bert(path)
    vocab_size = len(AutoTokenizer.from_pretrained(path))
    torch.manual_seed(1)
    if kind == "roberta":
        config = RobertaConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            pad_token_id=0,
            max_position_embeddings=130,
            type_vocab_size=1,
        )
        model = RobertaModel(config)
    else:
        config = DistilBertConfig(
            vocab_size=vocab_size,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=128,
            pad_token_id=0,
        )
        model = DistilBertModel(config)
    model.save_pretrained(path)
    return path


def store_bytes(out: Path) -> dict[str, bytes]:
    """Every file of a store by its relative path: two stores are byte-identical when these are equal."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
