"""bench extract's MFU on CUDA: each method's model FLOP/s against a bf16 matmul peak measured in the
same run."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

from neurosel.bench._extract_methods import Setup, processed_tokens

MATMUL_SIZE = 8192
MATMUL_RUNS = 10


def model_flops(model: Any, tokens: np.ndarray) -> float:
    """Forward FLOPs of a BERT encoder over texts of `tokens` tokens each.

    FLOPs = Σ_i [2 · P · T_i + L · 4 · T_i² · H]

    T_i: tokens of text i; P: parameters outside the embeddings and the pooler (each weight is one
    multiply-add, 2 FLOPs, per token); L: layers; H: hidden size; 4 · T² · H per layer: QKᵀ and AV,
    T² · H multiply-adds each. Embedding lookups, softmax, layer norms and the pooler (one token per
    text) are left out.
    """
    parts = (getattr(model, "embeddings", None), getattr(model, "pooler", None))
    outside = [m for m in parts if m is not None]
    params = sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for m in outside for p in m.parameters()
    )
    t = tokens.astype(np.float64)
    config = model.config
    return float(2 * params * t.sum() + config.num_hidden_layers * 4 * config.hidden_size * (t**2).sum())


def matmul_peak_flops(device: torch.device) -> float:
    """bf16 matmul FLOP/s: median of MATMUL_RUNS timed MATMUL_SIZE³ products after warm-up."""
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=torch.bfloat16)
    b = torch.randn_like(a)
    c = torch.empty_like(a)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    times = []
    for _ in range(MATMUL_RUNS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.matmul(a, b, out=c)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * MATMUL_SIZE**3 / statistics.median(times)


def mfu(
    setup: Setup, results: dict[str, dict[str, Any]], lengths: np.ndarray, subsets: dict[str, int]
) -> dict[str, Any]:
    """Model FLOP/s of each method over the end-to-end time, as a fraction of the bf16 matmul peak.

    "useful" counts real tokens only; "processed" counts the padded tokens the method computed on.
    """
    peak = matmul_peak_flops(setup.device)
    out: dict[str, Any] = {"matmul_bf16_peak_tflops": peak / 1e12, "matmul_size": MATMUL_SIZE}
    for method, r in results.items():
        part = lengths[: subsets[method]]
        useful = model_flops(setup.model, part) / r["median_seconds"]
        processed = model_flops(setup.model, processed_tokens(method, setup, part)) / r["median_seconds"]
        out[method] = {
            "useful_tflops": useful / 1e12,
            "mfu_useful": useful / peak,
            "processed_tflops": processed / 1e12,
            "mfu_processed": processed / peak,
        }
    return out
