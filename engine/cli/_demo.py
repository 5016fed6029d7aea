"""neurosel demo: run the pipeline on the corpus shipped with neurosel."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurosel.cli._format import describe_stats
from neurosel.cli._options import add_command, add_device
from neurosel.cli._outputs import check_output_dir
from neurosel.defaults import DEMO_MODEL


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "demo",
        "run the pipeline on the corpus shipped with neurosel",
        "Run the whole pipeline (extract, statistics, transfer, fingerprints, report) on 360 short "
        "reviews shipped with neurosel, in three domains.",
    )
    p.add_argument("--out", default="demo-out", help="folder for the stores, transfers and report")
    p.add_argument("--model", default=DEMO_MODEL, help="encoder")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.experiments import demo_corpus, run_demo, summary

    check_output_dir(args.out, "--out")
    device = neurosel.resolve_device(args.device)
    report = run_demo(Path(args.out), args.model, device, progress=not args.quiet)
    for domain in demo_corpus():
        store = neurosel.open_store(Path(args.out) / "stores" / f"{domain}.zarr")
        print(
            describe_stats(store, neurosel.neuron_stats(store, device=device, progress=False), top=3),
            end="\n\n",
        )
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
    return 0
