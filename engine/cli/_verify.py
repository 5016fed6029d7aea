"""neurosel verify: check every file of a store against what its commits recorded."""

from __future__ import annotations

import argparse

from neurosel.cli._format import describe_verify, print_problems
from neurosel.cli._options import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "verify",
        "check every file of a store against what its commits recorded",
        "Read every file of a store once (activations of the committed rows, labels and other "
        "per-example arrays, saved statistics and importances) and check each against the manifest "
        "its commits wrote: presence, size, checksum, and that every chunk decodes. Prints one line "
        "per problem; exit code 2 if there is any.",
    )
    p.add_argument("store", help="store directory made by neurosel extract")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel

    report = neurosel.verify(args.store)
    if not report.ok:
        return print_problems(report)
    print(describe_verify(report))
    return 0
