"""Extraction throughput: neurosel.extract against the loops users write, on the same texts and model.

Three methods run side by side in one process, on the same texts, model and device:

  naive   batches of 32 padded to max_length, fp32, masked-mean pooling of every hidden state,
          per-batch .cpu().numpy(), one np.concatenate + np.save at the end
  neurox  NeuroX style: one text at a time, unpadded, mean-pooled per layer, np.save at the end;
          slow, so it runs on the first --neurox-n texts and its rates are scaled from that subset
  engine  neurosel.extract into a fresh Zarr store (float16 storage, the engine's default precision)

A fourth measurement times neurosel.extract of the first hidden states only (--subset-layers,
default 0,1,2) against all of them, on the same texts: the forward stops after the deepest requested
layer, so the subset should take about the share of blocks it runs (3 of 7 hidden states of a
6-layer model: 2 of 6 blocks); reported as the time ratio, with the subset's activations checked
against the same layers of the all-layers run.

Reported per method: median wall time over --repeats runs, examples/s, real (non-pad) tokens/s,
peak host RSS above the level at the start (sampled from /proc/self/statm; Linux only) and, on
CUDA, peak GPU memory allocated; the engine's speed-up over each baseline; a correctness check of
every method's activations against the naive ones (exit code 1 if one is off); on CUDA, MFU against a
bf16 matmul peak measured in the same run. Results go to bench/results/ (of the current directory) as JSON.

Any model and device: `neurosel bench extract --model M --device D` (a local directory or packaged
model name; auto, cpu or cuda[:N]).

The methods and their timing live in _extract_methods, the MFU in _extract_mfu.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosel.bench._extract_methods import (
    ENGINE_DTYPE,
    NAIVE_BATCH,
    SEED,
    Setup,
    bench_layers,
    bench_method,
    processed_tokens,
    token_lengths,
    warm_up,
)
from neurosel.bench._extract_mfu import mfu
from neurosel.bench._harness import (
    RESULTS_DIR,
    SCRATCH_DIR,
    Measurement,
    default_data_dir,
    environment,
    write_report,
)
from neurosel.devices import resolve_device
from neurosel.errors import InputError
from neurosel.experiments import EXPERIMENTS, demo_corpus, read_amazon, read_sst2
from neurosel.extraction import load_encoder, resolve_layers, resolve_model_path, resolve_precision

DEFAULT_MODEL = "all-MiniLM-L6-v2"
METHODS = ("naive", "neurox", "engine")
DEFAULT_MAX_LENGTH = {"sst2": 128, "demo": 128, "amazon": 256}
SUBSET_LAYERS = "0,1,2"
REL_TOLERANCE = 1e-2  # float16 storage; bf16 compute (the GPU default) lands near 7e-3


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    p = argparse.ArgumentParser(prog="neurosel bench extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("sst2", "amazon", "demo"), default="sst2")
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared datasets folder")
    p.add_argument("--n", type=int, default=2000, help="texts, the first n after a fixed-seed shuffle")
    p.add_argument("--max-length", type=int, default=None, help="128 (sst2, demo) or 256 (amazon)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="local directory or packaged model name")
    p.add_argument(
        "--random-bert-base",
        action="store_true",
        help="a bert-base BertModel with random weights and the MiniLM tokenizer (GPU speed tests)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of naive, neurox, engine")
    p.add_argument("--neurox-n", type=int, default=200, help="texts for the slow neurox loop")
    p.add_argument("--repeats", type=int, default=1, help="runs per method; the median time counts")
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="reports (JSON)")
    p.add_argument("--scratch-dir", type=Path, default=SCRATCH_DIR, help="for temporary outputs")
    p.add_argument("--token-budget", type=int, default=None, help="passed to neurosel.extract")
    p.add_argument(
        "--subset-layers",
        default=SUBSET_LAYERS,
        help=f"hidden-state layers timed against all layers (default {SUBSET_LAYERS}); 'none' skips it",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=REL_TOLERANCE,
        help=f"max |diff| / max |naive| each method may reach (default {REL_TOLERANCE:g})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if the activations disagree, 2 on unusable input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods {args.methods!r}: use a comma list of {', '.join(METHODS)}")
    if min(args.n, args.neurox_n, args.repeats) < 1:
        parser.error("--n, --neurox-n and --repeats must be at least 1")
    try:
        return run(args, methods, sample(load_texts(args.dataset, args.data_dir), args.n))
    except InputError as e:
        print(f"bench extract: error: {e}", file=sys.stderr)
        return 2


def load_texts(dataset: str, data_dir: Path) -> list[str]:
    """All texts of a dataset in file order: demo, SST-2 train, or the four Amazon domains (title + text)."""
    if dataset == "demo":
        return [t for domain_texts, _ in demo_corpus().values() for t in domain_texts]
    if dataset == "sst2":
        return read_sst2(data_dir, splits=("train",)).texts
    return [t for domain in EXPERIMENTS["amazon"] for t in read_amazon(domain, data_dir).texts]


def sample(texts: list[str], n: int) -> list[str]:
    """The first n texts after a fixed-seed shuffle."""
    order = np.random.default_rng(SEED).permutation(len(texts))[:n]
    return [texts[i] for i in order]


def run(args: argparse.Namespace, methods: list[str], texts: list[str]) -> int:
    """Load the model, time each method, check the activations, print and save the results."""
    device = resolve_device(args.device).for_stage("extract").torch
    max_length = args.max_length or DEFAULT_MAX_LENGTH[args.dataset]
    model, tokenizer = load_model(args.model, args.random_bert_base, device)
    positions = model.config.max_position_embeddings
    if not 2 <= max_length <= positions:
        raise InputError(f"--max-length {max_length}: the model takes 2 to {positions} tokens per text")
    setup = Setup(model, tokenizer, device, max_length, args.token_budget)
    blocks = int(model.config.num_hidden_layers)
    subset_ids = None if args.subset_layers == "none" else resolve_layers(args.subset_layers, blocks)
    lengths = token_lengths(tokenizer, texts, max_length)
    neurox_n = min(args.neurox_n, len(texts))
    subsets = {m: neurox_n if m == "neurox" else len(texts) for m in methods}
    load_start = os.getloadavg()  # the cores may be shared: the load says how busy they were
    warm_up(setup, texts)
    scratch = args.scratch_dir / f"extract-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        outputs, runs = {}, {}
        for method in methods:
            outputs[method], runs[method] = bench_method(
                method, setup, texts[: subsets[method]], scratch, args
            )
        subset = None
        if subset_ids is not None:
            subset = bench_layers(setup, texts, scratch, subset_ids, args.repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            args.scratch_dir.rmdir()
    results = {
        m: summarize(runs[m], lengths[: subsets[m]], processed_tokens(m, setup, lengths[: subsets[m]]))
        for m in methods
    }
    check = correctness(outputs, args.tolerance)
    report = {
        "environment": {**environment(device), "load_average_1min": [load_start[0], os.getloadavg()[0]]},
        "parameters": parameters(args, methods, setup, lengths, neurox_n),
        "results": results,
        "ratios": ratios(results),
        "correctness": check,
    }
    if subset is not None:
        subset["passed"] = subset["relative_error"] <= args.tolerance
        report["subset_layers"] = subset
    if device.type == "cuda":
        report["mfu"] = mfu(setup, results, lengths, subsets)
    path = save(report, args.out_dir, args.dataset, device)
    print_summary(report, path)
    return 0 if check.get("passed", True) and (subset is None or subset["passed"]) else 1


def load_model(name: str, random_bert_base: bool, device: torch.device) -> tuple[Any, Any]:
    """The model and tokenizer in eval mode on `device`: `name`, or bert-base with random weights."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not random_bert_base:
        encoder = load_encoder(name, device)
        return encoder.model, encoder.tokenizer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(SEED)
    net = BertModel(BertConfig())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    net.eval().requires_grad_(False).to(device)
    return net, tokenizer


def summarize(runs: list[Measurement], lengths: np.ndarray, processed: np.ndarray) -> dict[str, Any]:
    """Median time and the rates, memory and padding derived from it."""
    seconds = statistics.median(r.seconds for r in runs)
    gpu = [r.gpu_peak_mb for r in runs if r.gpu_peak_mb is not None]
    return {
        "examples": int(lengths.size),
        "real_tokens": int(lengths.sum()),
        "processed_tokens": int(processed.sum()),
        "padding_overhead": float(processed.sum() / lengths.sum()),
        "seconds": [r.seconds for r in runs],
        "median_seconds": seconds,
        "examples_per_s": lengths.size / seconds,
        "tokens_per_s": float(lengths.sum()) / seconds,
        "host_peak_mb": max(r.host_peak_mb for r in runs),
        "gpu_peak_mb": max(gpu) if gpu else None,
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Engine examples/s over each baseline's."""
    if "engine" not in results:
        return {}
    rate = results["engine"]["examples_per_s"]
    return {f"engine_vs_{m}": rate / r["examples_per_s"] for m, r in results.items() if m != "engine"}


def correctness(outputs: dict[str, np.ndarray], tolerance: float) -> dict[str, Any]:
    """Each method's activations against the naive ones: max |diff| / max |naive| within tolerance."""
    if "naive" not in outputs or len(outputs) < 2:
        return {"checked": False, "reason": "needs naive and at least one other method"}
    reference = outputs["naive"]
    errors = {m: relative_error(out, reference[: len(out)]) for m, out in outputs.items() if m != "naive"}
    return {
        "checked": True,
        "reference": "naive",
        "tolerance": tolerance,
        "relative_error": errors,
        "passed": all(e <= tolerance for e in errors.values()),
    }


def relative_error(result: np.ndarray, reference: np.ndarray) -> float:
    """max |result - reference| / max |reference|; inf when the shapes differ or values are not finite."""
    if result.shape != reference.shape:
        return float("inf")
    error = float(np.abs(result - reference).max() / np.abs(reference).max())
    return error if np.isfinite(error) else float("inf")


def parameters(
    args: argparse.Namespace, methods: list[str], setup: Setup, lengths: np.ndarray, neurox_n: int
) -> dict[str, Any]:
    """The benchmark's settings as run."""
    return {
        "dataset": args.dataset,
        "data_dir": str(args.data_dir) if args.dataset != "demo" else None,
        "n": int(lengths.size),
        "neurox_n": neurox_n if "neurox" in methods else None,
        "max_length": setup.max_length,
        "model": "bert-base (random weights, BertConfig())" if args.random_bert_base else args.model,
        "tokenizer": DEFAULT_MODEL if args.random_bert_base else args.model,
        "device": str(setup.device),
        "methods": methods,
        "repeats": args.repeats,
        "token_budget": args.token_budget,
        "subset_layers": args.subset_layers,
        "engine_precision": resolve_precision("auto", setup.device),
        "engine_dtype": ENGINE_DTYPE,
        "naive_batch": NAIVE_BATCH,
        "seed": SEED,
        "real_tokens": int(lengths.sum()),
        "mean_tokens": float(lengths.mean()),
    }


def save(report: dict[str, Any], out_dir: Path, dataset: str, device: torch.device) -> Path:
    """Write the report to out_dir/extract_<dataset>_<device>_<gpu name or hostname>.json."""
    return write_report(report, out_dir, f"extract_{dataset}", device.type)


def print_summary(report: dict[str, Any], path: Path) -> None:
    """An aligned table of the methods, then the correctness check, MFU and where the JSON went."""
    results, params = report["results"], report["parameters"]
    cuda = report["environment"]["device"].startswith("cuda")
    naive = results.get("naive", {}).get("examples_per_s")
    env = report["environment"]
    print(
        f"{params['dataset']}: {params['n']} texts, {params['mean_tokens']:.1f} tokens/text, "
        f"max_length {params['max_length']}, {params['model']} on {env['device_name']} "
        f"({env['torch_threads']} threads)"
    )
    header = f"{'method':<8} {'examples/s':>11} {'tokens/s':>11} {'peak MB':>9}"
    print(header + (f" {'GPU MB':>9}" if cuda else "") + f" {'vs naive':>9}")
    for method, r in results.items():
        line = (
            f"{method + ('*' if method == 'neurox' else ''):<8} {r['examples_per_s']:>11.1f} "
            f"{r['tokens_per_s']:>11.0f} {r['host_peak_mb']:>9.1f}"
        )
        if cuda:
            line += f" {r['gpu_peak_mb']:>9.1f}"
        print(line + (f" {r['examples_per_s'] / naive:>8.2f}x" if naive else f" {'-':>9}"))
    if "neurox" in results:
        print(f"* neurox measured on the first {params['neurox_n']} texts; rates from that subset")
    check = report["correctness"]
    if check["checked"]:
        errors = ", ".join(f"{m} {e:.2e}" for m, e in check["relative_error"].items())
        verdict = "ok" if check["passed"] else "FAILED"
        print(
            f"correctness vs naive (max |diff| / max |naive| ≤ {check['tolerance']:g}): {errors}: {verdict}"
        )
    if "subset_layers" in report:
        sub = report["subset_layers"]
        times = sub["median_seconds"]
        print(
            f"layers {','.join(map(str, sub['layers']))} ({sub['blocks_run']} of {sub['blocks']} blocks): "
            f"{times['subset']:.2f} s vs {times['all']:.2f} s for all layers, ratio {sub['ratio']:.2f}; "
            f"activations vs all layers' {sub['relative_error']:.1e}: {'ok' if sub['passed'] else 'FAILED'}"
        )
    if "mfu" in report and "engine" in report["mfu"]:
        m = report["mfu"]
        print(
            f"engine MFU {m['engine']['mfu_useful']:.1%} useful, {m['engine']['mfu_processed']:.1%} "
            f"with padding (bf16 matmul peak {m['matmul_bf16_peak_tflops']:.0f} TFLOP/s)"
        )
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
