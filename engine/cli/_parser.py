"""The `neurosel` argument parser: every command, its options, their defaults and help."""

from __future__ import annotations

import argparse

from engine.cli import _commands as commands

DEMO_MODEL = "all-MiniLM-L6-v2"
DESCRIPTION = (
    "Activation cache and neuron scoring for neuron-level transfer learning with BERT-family encoders: "
    "extract, score, select, transfer, fingerprint, report."
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"neurosel: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurosel", description=DESCRIPTION)
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ex = sub.add_parser("extract", help="text → Zarr store of per-layer pooled activations")
    ex.add_argument("input", help="CSV/TSV/JSONL/Parquet file with a text column")
    ex.add_argument("--model", required=True, help="local model directory, hub id, or packaged name")
    ex.add_argument("--out", required=True, help="output store directory")
    add_extract_options(ex)
    ex.set_defaults(func=commands.cmd_extract)

    info = sub.add_parser("info", help="what a store holds")
    info.add_argument("store")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")
    info.set_defaults(func=commands.cmd_info)

    st = sub.add_parser("stats", help="per-neuron statistics in one streaming pass (saved in the store)")
    st.add_argument("store")
    st.add_argument("--by", choices=["label", "none"], default="label", help="per class, or unlabelled only")
    st.add_argument("--device", default="auto", help="auto, cpu or cuda")
    st.add_argument("--no-auroc", dest="auroc", action="store_false", help="skip the AUROC histograms")
    st.add_argument("--auroc-bits", type=int, default=None, help="histogram resolution (16 = exact)")
    st.add_argument("--memory-mb", type=int, default=512, help="decoded activations in flight")
    st.add_argument(
        "--allow-partial", action="store_true", help="use the committed rows of an incomplete store"
    )
    st.add_argument("--recompute", action="store_true", help="ignore statistics saved in the store")
    st.add_argument("--top", type=int, default=10, help="neurons to list")
    st.set_defaults(func=commands.cmd_stats)

    sel = sub.add_parser("select", help="rank neurons by a sparse-logistic path and print the top k")
    sel.add_argument("store")
    sel.add_argument("--k", type=int, default=300, help="neurons to select (the path runs until k enter)")
    sel.add_argument(
        "--method", choices=["l1-logistic", "lasso"], default=None, help="default: by label kind"
    )
    sel.add_argument(
        "--penalty", choices=["l1", "group-l1"], default=None, help="default: group-l1 for K > 2"
    )
    sel.add_argument("--l1-ratio", type=float, default=1.0, help="1 = L1, below 1 = elastic net")
    sel.add_argument("--rule", choices=["top-k", "support", "mass"], default="top-k")
    sel.add_argument("--mass", type=float, default=0.5, help="weight fraction for --rule mass")
    sel.add_argument("--n-lambdas", type=int, default=20)
    sel.add_argument("--lambda-ratio", type=float, default=1e-2, help="last λ / λ_max")
    sel.add_argument("--tol", type=float, default=1e-6, help="duality-gap tolerance (units of log 2)")
    sel.add_argument("--class-weight", choices=["balanced"], default=None)
    sel.add_argument("--device", default="auto", help="auto, cpu or cuda")
    sel.add_argument("--json", metavar="OUT", help="also write the selection and path summary as JSON")
    sel.set_defaults(func=commands.cmd_select)

    tr = sub.add_parser("transfer", help="unsupervised transfer with selected neurons, against baselines")
    tr.add_argument("--source", action="append", required=True, help="labelled source store (repeatable)")
    tr.add_argument("--target", action="append", required=True, help="target store (repeatable)")
    tr.add_argument("--k", type=int, default=300)
    tr.add_argument("--ks", default="10,30,100,300,1000", help="k values for the score-vs-k curves")
    tr.add_argument("--seeds", type=int, default=5, help="random-k baseline seeds")
    tr.add_argument("--cls", action="append", default=[], metavar="NAME=STORE", help="CLS store per domain")
    tr.add_argument("--json", metavar="OUT", help="write the TransferResult(s) as JSON")
    tr.set_defaults(func=commands.cmd_transfer)

    fp = sub.add_parser("fingerprint", help="% of each store's top-k neurons per layer, and their similarity")
    fp.add_argument("stores", nargs="+", help="labelled stores with the same layers")
    fp.add_argument("--k", type=int, default=300, help="neurons selected per store")
    fp.add_argument("--measure", choices=["cosine", "pearson", "jsd"], default="cosine")
    fp.add_argument("--method", choices=["l1-logistic", "lasso"], default="l1-logistic")
    fp.add_argument("--json", metavar="OUT", default=None, help="also write the fingerprints as JSON")
    fp.set_defaults(func=commands.cmd_fingerprint)

    rep = sub.add_parser("report", help="re-render a results JSON as a Markdown report with plots")
    rep.add_argument("results", help="results.json written by an experiment")
    rep.add_argument("--out", required=True, help="directory for report.md, results.json and the PNGs")
    rep.set_defaults(func=commands.cmd_report)

    exp = sub.add_parser("experiment", help="the whole method on a shared dataset, with the report")
    exp.add_argument("name", choices=["amazon", "sst-cr", "sick", "stsb"])
    exp.add_argument("--data-dir", required=True, help="the datasets directory (e.g. ../shared/datasets)")
    exp.add_argument("--out", default=None, help="output directory (default experiments/<name>)")
    exp.add_argument("--model", default=DEMO_MODEL)
    exp.add_argument("--k", type=int, default=300)
    exp.add_argument("--ks", default="10,30,100,300,1000")
    exp.add_argument("--seeds", type=int, default=5)
    exp.add_argument("--max-length", type=int, default=256)
    exp.add_argument("--max-per-class", type=int, default=None, help="balanced subsample per domain")
    exp.add_argument("--limit", type=int, default=None, help="at most this many examples per domain")
    exp.add_argument("--no-cls", dest="cls_baseline", action="store_false", help="skip the CLS baseline")
    exp.add_argument("--stsb-threshold", type=float, default=None, help="binarise STS-B scores at this value")
    exp.add_argument("--device", default="auto")
    exp.set_defaults(func=commands.cmd_experiment)

    demo = sub.add_parser("demo", help="run the pipeline on the corpus shipped with neurosel")
    demo.add_argument("--out", default="demo-out", help="directory for the demo stores")
    demo.add_argument("--model", default=DEMO_MODEL, help=f"encoder (default {DEMO_MODEL})")
    demo.add_argument("--device", default="auto")
    demo.set_defaults(func=commands.cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks against baselines (writes bench/results/)")
    bench.add_argument("name", choices=["extract", "stats", "select"])
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(func=commands.cmd_bench)
    return parser


def add_extract_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text")
    p.add_argument("--pair-column", default=None, help="second text of sentence pairs")
    p.add_argument("--label-column", default="label")
    p.add_argument("--pooling", default="mean", help="mean, cls, max or tokens")
    p.add_argument("--layers", default="all", help="all, last, or comma-separated layer numbers")
    p.add_argument("--dtype", default="float16", help="storage: float16, float32 or bfloat16")
    p.add_argument("--precision", default="auto", help="compute: auto, fp32, bf16 or fp16")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text, truncated")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--compression", default="none", help="activation chunks: none or zstd")
    p.add_argument("--token-budget", type=int, default=None, help="tokens per batch")
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="replace an existing store at --out instead of resuming it",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false")
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
