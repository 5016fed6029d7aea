"""neurosel bench: benchmarks against baselines (writes bench/results/)."""

from __future__ import annotations

import argparse

from neurosel.bench import BENCHMARKS
from neurosel.cli._options import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "bench",
        "benchmarks against baselines (writes bench/results/)",
        "Run the benchmark NAME with ARGS on your own model, device or store and exit with its code; "
        "`neurosel bench NAME --help` lists its options and their defaults. The benchmarks: "
        + "; ".join(f"{name}: {b.description}" for name, b in BENCHMARKS.items())
        + ".",
    )
    p.add_argument("name", choices=list(BENCHMARKS), help="the benchmark")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neurosel.bench import run as run_benchmark
    from neurosel.cli import main  # this package's entry point, for benchmarks that run commands

    return run_benchmark(args.name, args.args, command_line=main)
