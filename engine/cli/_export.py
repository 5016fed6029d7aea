"""neurosel export: write a store as a Hugging Face dataset, safetensors shards or npy arrays."""

from __future__ import annotations

import argparse

from neurosel.cli._options import add_command, either

# The formats of `neurosel.export(to=...)` (its table checks the same tuple; tests/store/test_export.py
# asserts they agree), written out so that building the parser imports no zarr.
FORMATS = ("hf", "safetensors", "npy")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "export",
        "write a store in a format other tools read (hf, safetensors, npy)",
        "Write a complete store's activations, labels, lengths and texts into a new folder: a Hugging "
        "Face dataset (`datasets.load_from_disk`, e.g. for SAELens), safetensors shards with index.json "
        "(e.g. for delphi), or memory-mappable .npy arrays (docs/export.md). Streamed in blocks, so "
        "memory stays bounded; written into a temporary folder and renamed, so an interrupted export "
        "leaves nothing. Prints the folder written.",
    )
    p.add_argument("store", help="store directory made by neurosel extract")
    p.add_argument("--to", choices=FORMATS, default="hf", help=f"the format: {either(FORMATS)}")
    p.add_argument("--out", required=True, help="folder to create (refused if it exists)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel

    out = neurosel.export(args.store, args.out, to=args.to, progress=args.progress and not args.quiet)
    print(out)
    return 0
