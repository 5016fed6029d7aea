"""The benchmark harness, installed with the package: `neurosel bench NAME [ARGS]` runs a benchmark on
your own model, device and store (docs/benchmarks.md).

BENCHMARKS maps each benchmark's name to its module (`neurosel.bench.<module>`, whose `main(argv)`
returns the exit code) and a one-line description; `run(name, argv)` runs one. Peer solvers
(skglm, celer, glum) are optional extras (`pip install neurosel[bench]`): a missing one is skipped
with a note. Shared helpers live in neurosel.bench._harness; the hooks the library offers are
`neurosel.importance(..., solver=...)` and `neurosel.timing`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import NamedTuple


class Benchmark(NamedTuple):
    module: str  # neurosel.bench.<module>
    description: str
    drives_command_line: bool = False  # main(argv, command_line): it runs `neurosel` commands


BENCHMARKS: dict[str, Benchmark] = {
    "extract": Benchmark(
        "extract", "extraction throughput against naive and NeuroX-style loops (--model, --device)"
    ),
    "stats": Benchmark("stats", "statistics throughput against the raw read rate and numpy (--store: yours)"),
    "select": Benchmark(
        "solvers", "importance path against scikit-learn and peer L1 solvers (--store: yours)"
    ),
    "scale": Benchmark("scale", "scale-out cost, one process against 1 and 2 Dask workers"),
    "rankings": Benchmark("rankings", "every neuron ranking rule on every pair of an experiment's stores"),
    "widths": Benchmark(
        "widths",
        "statistics and the importance path on a bert-base FFN-width store (36,864 neurons) against the "
        "hidden-state width (9,984)",
    ),
    "job": Benchmark("job", "one single-source transfer job, timed by stage (neurosel.timing)"),
    "faults": Benchmark(
        "faults", "every store file damaged in turn, and what each command says", drives_command_line=True
    ),
    "gpu-check": Benchmark(
        "gpu_check", "the GPU self-check: CUDA tests, then extract, stats, select (OUT_DIR)"
    ),
}


def run(name: str, argv: Sequence[str] = (), command_line: Callable[[list[str]], int] | None = None) -> int:
    """Run the benchmark `name` with its command-line arguments; its exit code. `command_line` is the
    `neurosel` command's main, passed to the benchmarks that run commands (faults): the harness sits
    below the CLI and imports nothing from it."""
    if name not in BENCHMARKS:
        raise KeyError(f"benchmark {name!r}: use one of {', '.join(BENCHMARKS)}")
    benchmark = BENCHMARKS[name]
    module = importlib.import_module(f"{__name__}.{benchmark.module}")
    if benchmark.drives_command_line:
        return int(module.main(list(argv), command_line=command_line) or 0)
    return int(module.main(list(argv)) or 0)


__all__ = ["BENCHMARKS", "Benchmark", "run"]
