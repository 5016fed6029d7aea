"""neurosel extract: text → Zarr store of per-layer pooled activations."""

from __future__ import annotations

import argparse

from neurosel.cli._format import describe_store
from neurosel.cli._options import add_cluster_options, add_command, add_device, either, positive_int
from neurosel.cli._outputs import check_output_dir, dask_client
from neurosel.defaults import COMPRESSIONS, DEMO_MODEL, DTYPES, LABEL_KINDS, POOLINGS, PRECISIONS, SITES


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "extract",
        "text → Zarr store of per-layer pooled activations",
        "Run an encoder or decoder over the texts of INPUT and store every requested layer's pooled "
        "activations at each site (hidden states, FFN units) in a Zarr store, all from one forward pass; "
        "re-running resumes an interrupted extraction and does nothing after a finished one.",
    )
    p.add_argument("input", help="CSV, TSV, JSONL or Parquet file with a text column")
    p.add_argument(
        "--model", required=True, help=f"local model directory, Hugging Face hub id, or {DEMO_MODEL}"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output store directory; with several --sites, a path holding {site} (e.g. sst2-{site}.zarr)",
    )
    add_extract_options(p)
    add_cluster_options(p)
    p.set_defaults(func=run)


def add_extract_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column of the texts")
    p.add_argument("--pair-column", default=None, help="column of the second texts of sentence pairs")
    p.add_argument(
        "--label-column",
        default="label",
        help="column of the labels (if the default column is absent: unlabelled)",
    )
    p.add_argument(
        "--label-kind",
        choices=LABEL_KINDS,
        default="auto",
        help="auto: integers are class ids, other numbers numeric targets, words class names (numbers "
        "mixed with words are refused); class: every label a class name; numeric: every label a number",
    )
    p.add_argument(
        "--pooling",
        default=POOLINGS[0],
        help=f"{either(POOLINGS)}; auto: mean for encoders, last (the last real token) for decoders",
    )
    p.add_argument(
        "--sites",
        default=SITES[0],
        type=sites_list,
        help=f"comma-separated neuron sites from {', '.join(SITES)}: hidden states (layer 0 = embeddings), "
        "FFN units after the activation (layers 1..L); one forward pass feeds them all",
    )
    p.add_argument("--layers", default="all", help="all, last, or comma-separated layer numbers")
    p.add_argument("--dtype", default=DTYPES[0], help=f"storage: {either(DTYPES)}")
    p.add_argument("--precision", default=PRECISIONS[0], help=f"compute: {either(PRECISIONS)}")
    p.add_argument("--max-length", type=positive_int, default=128, help="tokens per text, truncated")
    add_device(p)
    p.add_argument(
        "--compression", default=COMPRESSIONS[0], help=f"activation chunks: {either(COMPRESSIONS)}"
    )
    p.add_argument(
        "--token-budget",
        type=positive_int,
        default=None,
        help="padded tokens per batch (default: 8192 on the CPU, 65536 on a GPU)",
    )
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="replace an existing store at --out instead of resuming it",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="mark the store complete even if activations overflowed",
    )
    p.add_argument(
        "--no-texts",
        dest="store_texts",
        action="store_false",
        help="do not keep the texts in the store",
    )


def run(args: argparse.Namespace) -> int:
    import neurosel

    check_output_dir(args.out, "--out")
    device = args.device if args.scheduler or args.workers else neurosel.resolve_device(args.device)
    with dask_client(args) as client:  # on a cluster each worker resolves --device for itself
        store = neurosel.extract(
            args.input,
            args.model,
            args.out,
            text_column=args.text_column,
            pair_column=args.pair_column,
            label_column=args.label_column,
            label_kind=args.label_kind,
            pooling=args.pooling,
            layers=args.layers,
            dtype=args.dtype,
            precision=args.precision,
            max_length=args.max_length,
            device=device,
            resume=args.resume,
            progress=args.progress and not args.quiet,
            token_budget=args.token_budget,
            allow_nonfinite=args.allow_nonfinite,
            store_texts=args.store_texts,
            compression=args.compression,
            client=client,
            sites=args.sites,
        )
    stores = store.values() if isinstance(store, dict) else [store]
    print("\n\n".join(describe_store(s) for s in stores))
    return 0


def sites_list(text: str) -> tuple[str, ...]:
    """--sites: comma-separated site names (checked by extract against the model's family)."""
    sites = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in sites if s not in SITES]
    if not sites or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: use comma-separated sites from {', '.join(SITES)}")
    return sites
