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
This module parses the options; the steps run in _gpu_steps (Check), with the sizes and time limits
of _gpu_plan, the machine probe and random model of _gpu_probe, and the figures read back by
_gpu_results.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from neurosel.bench._gpu_plan import EXIT_OK
from neurosel.bench._gpu_probe import make_random_bert, probe
from neurosel.bench._gpu_steps import Check

TOTAL_BUDGET_S = 450.0  # 7.5 minutes: the whole check, leaving room under 8 for start-up and clean-up


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


if __name__ == "__main__":
    sys.exit(main())
