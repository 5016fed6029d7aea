"""neurosel report: re-render a results JSON as a Markdown report with plots."""

from __future__ import annotations

import argparse

from neurosel.cli._options import add_command
from neurosel.cli._outputs import check_output_dir


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "report",
        "re-render a results JSON as a Markdown report with plots",
        "Render a results.json written by an experiment into report.md, results.json and the plots.",
    )
    p.add_argument("results", help="results.json written by an experiment")
    p.add_argument("--out", required=True, help="folder for report.md, results.json and the PNGs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neurosel.report import load_results, write_report

    check_output_dir(args.out, "--out")
    print(write_report(load_results(args.results), args.out))
    return 0
