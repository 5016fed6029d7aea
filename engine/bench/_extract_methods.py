"""bench extract's three methods (the naive loop, the NeuroX-style loop, neurosel.extract), each timed on
the same texts, model and device, and the tokens each one processes; and neurosel.extract of the
first layers only against all layers (the forward stops after the deepest requested layer)."""

from __future__ import annotations

import argparse
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import neurosel
from neurosel.bench._harness import Measurement, measure, synchronize
from neurosel.extraction import (
    MAX_ROWS,
    PAD_MULTIPLE,
    TOKEN_BUDGET,
    autocast,
    padded_width,
    plan_windows,
    resolve_precision,
)
from neurosel.store import STORAGE_DTYPES, Layout

SEED = 0
NAIVE_BATCH = 32
WARMUP_TEXTS = 8
ENGINE_DTYPE = "float16"  # neurosel.extract's default storage dtype


@dataclass(frozen=True)
class Setup:
    """What every method shares: the model, its tokenizer, the device and the truncation length."""

    model: Any
    tokenizer: Any
    device: torch.device
    max_length: int
    token_budget: int | None


def token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    """Real tokens per text (special tokens included) after truncation: what every method processes."""
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return np.array([len(row) for row in ids], dtype=np.int64)


def warm_up(setup: Setup, texts: list[str]) -> None:
    """One small batch through the model in fp32 and in the engine's precision, before any timing."""
    enc = setup.tokenizer(
        texts[:WARMUP_TEXTS],
        padding=True,
        truncation=True,
        max_length=setup.max_length,
        return_tensors="pt",
    ).to(setup.device)
    precision = resolve_precision("auto", setup.device)
    with torch.inference_mode():
        setup.model(**enc, output_hidden_states=True)
        with autocast(precision, setup.device):
            setup.model(**enc, output_hidden_states=True)
    synchronize(setup.device)


def bench_method(
    method: str, setup: Setup, texts: list[str], scratch: Path, args: argparse.Namespace
) -> tuple[np.ndarray, list[Measurement]]:
    """Time `method` --repeats times; its activations (float32, from the first run) and the runs."""
    runner, suffix = RUNNERS[method]
    output, runs = None, []
    for rep in range(args.repeats):
        path = scratch / f"{method}-{rep}{suffix}"
        runs.append(measure(lambda path=path: runner(setup, texts, path), setup.device))
        if output is None:
            output = read_output(path)
        remove(path)
    return output, runs


def run_naive(setup: Setup, texts: list[str], path: Path) -> None:
    """The usual loop: batches of 32 padded to max_length, fp32, masked mean of every layer, np.save."""
    parts = []
    with torch.inference_mode():
        for start in range(0, len(texts), NAIVE_BATCH):
            enc = setup.tokenizer(
                texts[start : start + NAIVE_BATCH],
                padding="max_length",
                truncation=True,
                max_length=setup.max_length,
                return_tensors="pt",
            ).to(setup.device)
            states = setup.model(**enc, output_hidden_states=True).hidden_states
            parts.append(masked_mean(states, enc["attention_mask"]).cpu().numpy())
    np.save(path, np.concatenate(parts))


def masked_mean(states: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Mean of each layer's states over the unpadded tokens: (rows, layers, hidden) float32."""
    weights = mask.unsqueeze(-1).to(torch.float32)
    count = weights.sum(1)
    return torch.stack([(h.to(torch.float32) * weights).sum(1) / count for h in states], dim=1)


def run_neurox(setup: Setup, texts: list[str], path: Path) -> None:
    """NeuroX style: one unpadded text per forward pass, mean of each layer's token states, np.save."""
    rows = []
    with torch.inference_mode():
        for text in texts:
            enc = setup.tokenizer(
                text,
                truncation=True,
                max_length=setup.max_length,
                return_tensors="pt",
            ).to(setup.device)
            states = setup.model(**enc, output_hidden_states=True).hidden_states
            rows.append(torch.stack([h[0].mean(0) for h in states]).cpu().numpy())
    np.save(path, np.stack(rows))


def run_engine(setup: Setup, texts: list[str], path: Path, layers: str | list[int] = "all") -> None:
    """neurosel.extract of `layers` into a fresh store at `path`."""
    neurosel.extract(
        texts,
        (setup.model, setup.tokenizer),
        path,
        layers=layers,
        max_length=setup.max_length,
        device=str(setup.device),
        progress=False,
        resume=False,
        store_texts=False,
        token_budget=setup.token_budget,
    )


RUNNERS: dict[str, tuple[Callable[[Setup, list[str], Path], None], str]] = {
    "naive": (run_naive, ".npy"),
    "neurox": (run_neurox, ".npy"),
    "engine": (run_engine, ".zarr"),
}


def bench_layers(
    setup: Setup, texts: list[str], scratch: Path, layers: list[int], repeats: int
) -> dict[str, Any]:
    """neurosel.extract of the hidden states `layers` (layer ids) against all layers, alternating,
    `repeats` runs each: the median seconds of each, their ratio (what stopping the forward after the
    deepest requested layer saves), and how far the subset's activations are from the same layers of
    the whole forward's (byte-equal when both runs cut the texts into the same windows and batches)."""
    runs: dict[str, list[float]] = {"all": [], "subset": []}
    outputs: dict[str, np.ndarray] = {}
    for rep in range(repeats):
        for name, wanted in (("all", "all"), ("subset", layers)):
            path = scratch / f"layers-{name}-{rep}.zarr"
            run = measure(lambda p=path, w=wanted: run_engine(setup, texts, p, w), setup.device)
            runs[name].append(run.seconds)
            outputs.setdefault(name, read_output(path))
            remove(path)
    blocks = int(setup.model.config.num_hidden_layers)
    same = outputs["all"][:, layers]  # hidden-state layer ids are their columns
    seconds = {name: statistics.median(times) for name, times in runs.items()}
    return {
        "layers": layers,
        "blocks": blocks,
        "blocks_run": min(max(layers), blocks),  # the forward stops on entering block max(subset)
        "seconds": runs,
        "median_seconds": seconds,
        "ratio": seconds["subset"] / seconds["all"],
        "equal": bool(np.array_equal(outputs["subset"], same)),
        "relative_error": float(np.abs(outputs["subset"] - same).max() / np.abs(same).max()),
    }


def read_output(path: Path) -> np.ndarray:
    """A method's activations as float32: a .npy file or an engine store."""
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32, copy=False)
    return neurosel.open_store(path).read().astype(np.float32)


def remove(path: Path) -> None:
    """Delete a method's output file or store."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def processed_tokens(method: str, setup: Setup, lengths: np.ndarray) -> np.ndarray:
    """Tokens each text occupies in the forward pass, padding included."""
    if method == "naive":
        return np.full_like(lengths, setup.max_length)
    if method == "neurox":
        return lengths
    return engine_widths(setup, lengths)


def engine_widths(setup: Setup, lengths: np.ndarray) -> np.ndarray:
    """The padded width of each text's batch in neurosel.extract (mirrors its windows and batch plan)."""
    kind = setup.device.type
    config = setup.model.config
    itemsize = np.dtype(STORAGE_DTYPES[ENGINE_DTYPE]).itemsize
    row_bytes = (config.num_hidden_layers + 1) * config.hidden_size * itemsize
    window = Layout.choose(lengths.size, row_bytes).shard_rows
    budget = setup.token_budget or TOKEN_BUDGET[kind]
    widths = np.empty_like(lengths)
    for start, _, batches in plan_windows(lengths, 0, window, budget, MAX_ROWS[kind], PAD_MULTIPLE[kind]):
        for rows in batches:
            widths[rows + start] = padded_width(lengths[rows + start].max(), PAD_MULTIPLE[kind])
    return widths
