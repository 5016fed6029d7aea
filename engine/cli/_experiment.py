"""neurosel experiment: the whole method on a shared dataset, with the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurosel.cli._options import (
    add_cluster_options,
    add_command,
    add_device,
    add_in_core_bytes,
    add_ks_and_seeds,
    add_ranking,
    positive_int,
)
from neurosel.cli._outputs import check_output_dir, dask_client
from neurosel.defaults import DEFAULT_K, DEMO_MODEL


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "experiment",
        "the whole method on a shared dataset, with the report",
        "Extract every domain of a shared dataset, transfer between every pair and from all others to "
        "each, fingerprint the domains and write the report; re-running resumes.",
    )
    p.add_argument("name", choices=["amazon", "sst-cr", "sick", "stsb"], help="the dataset")
    p.add_argument("--data-dir", required=True, help="the datasets directory (e.g. ../shared/datasets)")
    p.add_argument("--out", default=None, help="output folder (default: experiments/<name>)")
    p.add_argument("--model", default=DEMO_MODEL, help="encoder")
    p.add_argument("--k", type=positive_int, default=DEFAULT_K, help="headline k")
    add_ks_and_seeds(p)
    add_ranking(p)
    add_in_core_bytes(p)
    p.add_argument("--max-length", type=positive_int, default=256, help="tokens per text (pair)")
    p.add_argument(
        "--max-per-class",
        type=positive_int,
        default=None,
        help="balanced subsample per domain (default: all examples)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="at most this many examples per domain (default: all)",
    )
    p.add_argument("--no-cls", dest="cls_baseline", action="store_false", help="skip the CLS baseline")
    p.add_argument(
        "--stsb-threshold", type=float, default=None, help="stsb only: binarise the scores at this value"
    )
    add_device(p)
    add_cluster_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.experiments import Options, run_experiment, summary

    out = Path(args.out or f"experiments/{args.name}")
    check_output_dir(out, "--out")
    device = args.device if args.scheduler or args.workers else neurosel.resolve_device(args.device)
    options = Options(
        model=args.model, k=args.k, ks=tuple(args.ks), seeds=args.seeds, max_length=args.max_length,
        device=args.device, cls_baseline=args.cls_baseline, ranking=args.ranking,
        in_core_bytes=args.in_core_bytes,
    )  # fmt: skip
    reader = (
        {"threshold": args.stsb_threshold} if args.name == "stsb" and args.stsb_threshold is not None else {}
    )
    with dask_client(args) as client:
        report = run_experiment(
            args.name, args.data_dir, out, options, max_per_class=args.max_per_class, limit=args.limit,
            progress=not args.quiet, device=device, client=client, **reader,
        )  # fmt: skip
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
    return 0
