"""neurosel info: what a store holds."""

from __future__ import annotations

import argparse
import json

from neurosel.cli._format import describe_store, describe_verify, print_problems
from neurosel.cli._options import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "info",
        "what a store holds",
        "Print a store's shape, layers, model, labels, progress and any non-finite values.",
    )
    p.add_argument("store", help="store directory made by neurosel extract")
    p.add_argument("--json", action="store_true", help="print the store's metadata as JSON instead")
    p.add_argument(
        "--verify", action="store_true", help="also read every file and check it (as neurosel verify)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel

    store = neurosel.open_store(args.store)
    store.check()  # one stat per file: a missing, empty or truncated file is named, exit 2
    if args.verify:
        report = neurosel.verify(store)
        if not report.ok:
            return print_problems(report)
    print(json.dumps(store.meta, indent=2) if args.json else describe_store(store))
    if args.verify:
        print(describe_verify(report))
    return 0
