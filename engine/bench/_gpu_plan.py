"""The GPU self-check's plan: each step's time limit, the benchmarks' sizes (FULL on a GPU, SMOKE on a
CPU), the exit codes, and the record of one step's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: engine/bench/_gpu_plan.py
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
CUDA_TESTS = (
    "tests/contracts/test_gpu.py",
    "tests/contracts/test_cuda_kernels.py",
    "tests/contracts/test_passes.py",
)


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
