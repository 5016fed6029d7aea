"""neurosel transfer: unsupervised transfer with selected neurons, against baselines."""

from __future__ import annotations

import argparse

from neurosel.cli._options import (
    add_cluster_options,
    add_command,
    add_device,
    add_in_core_bytes,
    add_ks_and_seeds,
    add_ranking,
    name_store,
    positive_int,
)
from neurosel.cli._outputs import check_output_file, dask_client, write_json
from neurosel.defaults import DEFAULT_K


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "transfer",
        "unsupervised transfer with selected neurons, against baselines",
        "Select neurons on labelled source stores and score an unsupervised classifier on each target "
        "with them, against all neurons, random neurons, statistics and scikit-learn baselines.",
    )
    p.add_argument("--source", action="append", required=True, help="labelled source store (repeatable)")
    p.add_argument("--target", action="append", required=True, help="target store (repeatable)")
    p.add_argument(
        "--k", type=positive_int, default=DEFAULT_K, help="headline k (several sources: chosen from --ks)"
    )
    add_ks_and_seeds(p)
    add_ranking(p)
    add_in_core_bytes(p)
    p.add_argument(
        "--cls",
        type=name_store,
        action="append",
        default=[],
        metavar="NAME=STORE",
        help="last-layer CLS store of a domain, named by its store directory without .zarr (repeatable)",
    )
    add_device(p)
    add_cluster_options(p)
    p.add_argument(
        "--sklearn-baseline",
        action="store_true",
        help="single source: also rank by the scikit-learn recipe (liblinear L1 path) and score it, "
        "as `experiment` does (off by default: a comparison, not the product)",
    )
    p.add_argument("--json", metavar="OUT", help="also write the TransferResult(s) as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel

    check_output_file(args.json, "--json")
    device = neurosel.resolve_device(args.device)
    cls = dict(args.cls) if args.cls else None
    with dask_client(args) as client:
        results = neurosel.transfer(
            args.source, list(args.target), k=args.k, ks=list(args.ks), seeds=args.seeds, cls=cls,
            device=device, progress=not args.quiet, client=client, ranking=args.ranking,
            in_core_bytes=args.in_core_bytes, sklearn_baseline=args.sklearn_baseline,
        )  # fmt: skip
    print(describe_transfer(results))
    if args.json:
        write_json(args.json, [r.to_dict() for r in results])
    return 0


def describe_transfer(results) -> str:
    """One line per target and normalisation: the headline score of every method; then what the
    sparse path behind the selection did (single source)."""
    from neurosel.crossdomain import headline

    lines = []
    for result in results:
        for row in result.rows:
            cells = "  ".join(f"{m} {headline(v):.3f}" for m, v in row["scores"].items())
            lines.append(
                f"{'+'.join(row['sources'])} → {row['target']} ({row['normalisation']}-normalised): {cells}"
            )
    lines += [f"path {path.describe()}" for path in (results[0].paths if results else [])]
    return "\n".join(lines)
