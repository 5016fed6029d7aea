"""neurosel stats: per-neuron statistics in one streaming pass (saved in the store)."""

from __future__ import annotations

import argparse

from neurosel.cli._format import describe_stats
from neurosel.cli._options import add_cluster_options, add_command, add_device, int_in, positive_int
from neurosel.cli._outputs import dask_client
from neurosel.defaults import DEFAULT_MEMORY_BUDGET


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "stats",
        "per-neuron statistics in one streaming pass (saved in the store)",
        "Compute per-neuron statistics (moments, per-class means, AUROC, ANOVA F or Pearson r) in one "
        "streaming pass, save them in the store, and print the most distinctive neurons.",
    )
    p.add_argument("store", help="store directory made by neurosel extract")
    p.add_argument("--by", choices=["label", "none"], default="label", help="per class, or ignore the labels")
    add_device(p)
    p.add_argument("--no-auroc", dest="auroc", action="store_false", help="skip the AUROC")
    p.add_argument(
        "--auroc-bits",
        type=int_in(1, 24),
        default=None,
        help="AUROC key resolution, 1..24 (default: 16, exact for float16 and bfloat16; on a GPU fewer "
        "if its histograms would not fit in 2 GiB)",
    )
    p.add_argument(
        "--memory-mb",
        type=positive_int,
        default=DEFAULT_MEMORY_BUDGET >> 20,
        help="MiB for decoded activations in flight and, for the AUROC on the CPU, the neurons' value "
        "keys (a quarter and three quarters; the store is read again for each further group of neurons "
        "whose keys do not fit)",
    )
    add_cluster_options(p)
    p.add_argument(
        "--allow-partial", action="store_true", help="use the committed rows of an incomplete store"
    )
    p.add_argument("--recompute", action="store_true", help="ignore statistics saved in the store")
    p.add_argument("--top", type=positive_int, default=10, help="neurons to list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel

    store = neurosel.open_store(args.store)
    device = neurosel.resolve_device(args.device)
    with dask_client(args) as client:
        stats = neurosel.neuron_stats(
            store, by=None if args.by == "none" else "label", device=device, auroc=args.auroc,
            auroc_bits=args.auroc_bits, memory_budget=args.memory_mb << 20,
            allow_partial=args.allow_partial, recompute=args.recompute, progress=not args.quiet,
            client=client,
        )  # fmt: skip
    print(describe_stats(store, stats, args.top))
    return 0
