"""neurosel fingerprint: percentage of each store's top-k neurons per layer, and their similarity."""

from __future__ import annotations

import argparse

from neurosel.cli._options import add_cluster_options, add_command, add_device, positive_int
from neurosel.cli._outputs import check_output_file, dask_client, write_json
from neurosel.defaults import DEFAULT_K, MEASURES


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "fingerprint",
        "percentage of each store's top-k neurons per layer, and their similarity",
        "Select each store's top-k neurons, print the percentage of them in each layer (the "
        "fingerprint) and the similarity matrix of the fingerprints.",
    )
    p.add_argument("stores", nargs="+", help="labelled stores with the same layers")
    p.add_argument("--k", type=positive_int, default=DEFAULT_K, help="neurons selected per store")
    p.add_argument("--measure", choices=MEASURES, default=MEASURES[0], help="similarity measure")
    p.add_argument(
        "--method", default="l1-logistic", help="importance method, a name in neurosel.solver.METHODS"
    )
    add_device(p)
    add_cluster_options(p)
    p.add_argument("--json", metavar="OUT", default=None, help="also write the fingerprints as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.solver import get_method

    check_output_file(args.json, "--json")
    get_method(args.method)  # the registry names the methods there are
    device = neurosel.resolve_device(args.device)
    with dask_client(args) as client:
        result = neurosel.fingerprint(
            args.stores, k=args.k, method=args.method, measure=args.measure, device=device,
            progress=not args.quiet, client=client,
        )  # fmt: skip
    print(result.describe())
    if args.json:
        write_json(args.json, result.to_dict())
    return 0
