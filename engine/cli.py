"""The `neurosel` command line: thin argument parsing over the public API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError

log = logging.getLogger("neurosel")
DEMO_MODEL = "all-MiniLM-L6-v2"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"neurosel: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurosel", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ex = sub.add_parser("extract", help="text → Zarr store of per-layer pooled activations")
    ex.add_argument("input", help="CSV/TSV/JSONL/Parquet file with a text column")
    ex.add_argument("--model", required=True, help="local model directory, hub id, or packaged name")
    ex.add_argument("--out", required=True, help="output store directory")
    add_extract_options(ex)
    ex.set_defaults(func=cmd_extract)

    info = sub.add_parser("info", help="what a store holds")
    info.add_argument("store")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")
    info.set_defaults(func=cmd_info)

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
    st.set_defaults(func=cmd_stats)

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
    sel.set_defaults(func=cmd_select)

    tr = sub.add_parser("transfer", help="unsupervised transfer with selected neurons, against baselines")
    tr.add_argument("--source", action="append", required=True, help="labelled source store (repeatable)")
    tr.add_argument("--target", action="append", required=True, help="target store (repeatable)")
    tr.add_argument("--k", type=int, default=300)
    tr.add_argument("--ks", default="10,30,100,300,1000", help="k values for the score-vs-k curves")
    tr.add_argument("--seeds", type=int, default=5, help="random-k baseline seeds")
    tr.add_argument("--cls", action="append", default=[], metavar="NAME=STORE", help="CLS store per domain")
    tr.add_argument("--json", metavar="OUT", help="write the TransferResult(s) as JSON")
    tr.set_defaults(func=cmd_transfer)

    fp = sub.add_parser("fingerprint", help="% of each store's top-k neurons per layer, and their similarity")
    fp.add_argument("stores", nargs="+", help="labelled stores with the same layers")
    fp.add_argument("--k", type=int, default=300, help="neurons selected per store")
    fp.add_argument("--measure", choices=["cosine", "pearson", "jsd"], default="cosine")
    fp.add_argument("--method", choices=["l1-logistic", "lasso"], default="l1-logistic")
    fp.add_argument("--json", metavar="OUT", default=None, help="also write the fingerprints as JSON")
    fp.set_defaults(func=cmd_fingerprint)

    rep = sub.add_parser("report", help="re-render a results JSON as a Markdown report with plots")
    rep.add_argument("results", help="results.json written by an experiment")
    rep.add_argument("--out", required=True, help="directory for report.md, results.json and the PNGs")
    rep.set_defaults(func=cmd_report)

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
    exp.set_defaults(func=cmd_experiment)

    demo = sub.add_parser("demo", help="run the pipeline on the corpus shipped with neurosel")
    demo.add_argument("--out", default="demo-out", help="directory for the demo stores")
    demo.add_argument("--model", default=DEMO_MODEL, help=f"encoder (default {DEMO_MODEL})")
    demo.add_argument("--device", default="auto")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks against baselines (writes bench/results/)")
    bench.add_argument("name", choices=["extract", "stats", "select"])
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(func=cmd_bench)
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


def cmd_extract(args: argparse.Namespace) -> int:
    import engine

    store = engine.extract(
        args.input,
        args.model,
        args.out,
        text_column=args.text_column,
        pair_column=args.pair_column,
        label_column=args.label_column,
        pooling=args.pooling,
        layers=args.layers,
        dtype=args.dtype,
        precision=args.precision,
        max_length=args.max_length,
        device=args.device,
        resume=args.resume,
        progress=args.progress and not args.quiet,
        token_budget=args.token_budget,
        allow_nonfinite=args.allow_nonfinite,
        store_texts=args.store_texts,
        compression=args.compression,
    )
    print(describe(store))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import engine

    store = engine.open_store(args.store)
    print(json.dumps(store.meta, indent=2) if args.json else describe(store))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import engine

    store = engine.open_store(args.store)
    stats = engine.neuron_stats(
        store, by=None if args.by == "none" else "label", device=args.device, auroc=args.auroc,
        auroc_bits=args.auroc_bits, memory_budget=args.memory_mb << 20,
        allow_partial=args.allow_partial, recompute=args.recompute, progress=not args.quiet,
    )  # fmt: skip
    print(describe_stats(store, stats, args.top))
    return 0


def describe_stats(store, stats, top: int) -> str:
    """A summary of the pass and the most distinctive neurons by the main score for the labels."""
    import numpy as np

    m = stats.meta
    lines = [
        f"stats     {store.path}/stats/{m['key']}",
        f"pass      {m['activation_rows']} rows on {m['device']} in {m['seconds']:.2f} s "
        f"({m['gb_per_s']:.2f} GB/s of activations)",
    ]
    if int(stats.nonfinite.sum()):
        lines.append(f"nonfinite {int(stats.nonfinite.sum())} values left out")
    if stats.auroc is not None:
        name, score = "|AUROC − 0.5|", np.abs(stats.auroc - 0.5)
    elif stats.anova_f is not None:
        name, score = "ANOVA F", stats.anova_f
    elif stats.pearson is not None:
        name, score = "|Pearson r|", np.abs(stats.pearson)
    else:
        name, score = "standard deviation", stats.std
    order = np.argsort(-np.nan_to_num(score.ravel(), nan=-np.inf), kind="stable")[:top]
    lines.append(f"top {len(order)} neurons by {name}:")
    lines.append(f"  {'layer':>5} {'unit':>5} {'score':>10} {'mean':>10} {'std':>10}")
    for flat in order:
        pos, unit = divmod(int(flat), store.hidden)
        lines.append(
            f"  {store.layers[pos]:>5} {unit:>5} {score.ravel()[flat]:>10.4g} "
            f"{stats.mean.ravel()[flat]:>10.4g} {stats.std.ravel()[flat]:>10.4g}"
        )
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    run_demo(Path(args.out), args.model, args.device, progress=not args.quiet)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(f"bench.{args.name}").main(args.args)


def cmd_select(args: argparse.Namespace) -> int:
    import engine

    store = engine.open_store(args.store)
    method = args.method or ("lasso" if store.meta.get("label_kind") == "numeric" else "l1-logistic")
    imp = engine.importance(
        store, method, args.device, penalty=args.penalty, l1_ratio=args.l1_ratio, n_lambdas=args.n_lambdas,
        lambda_ratio=args.lambda_ratio, target_support=args.k if args.rule == "top-k" else None,
        tol=args.tol, class_weight=args.class_weight,
    )  # fmt: skip
    sel = engine.select(imp, k=args.k, rule=args.rule, mass=args.mass)
    print(describe_selection(imp, sel))
    if args.json:
        record = {
            "store": store.path, "method": imp.method, "penalty": imp.penalty, "rule": args.rule,
            "neurons": sel.neurons.tolist(), "units": sel.units(), "fingerprint": sel.fingerprint().tolist(),
            "lambdas": imp.lambdas.tolist(), "support_sizes": imp.support_sizes.tolist(),
            "passes": imp.passes.tolist(), "gaps": imp.gaps.tolist(), "meta": imp.meta,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


def describe_selection(imp, sel) -> str:
    """The path in a few lines, the per-layer fingerprint, and the first selected neurons."""
    m = imp.meta
    lines = [
        f"path      {len(imp.lambdas)} λs from {imp.lambdas[0]:.4g} to {imp.lambdas[-1]:.4g}, support "
        f"{imp.support_sizes[-1]}, {m['total_passes']} passes, {m['solve_seconds']:.2f} s on {m['design']}",
        f"certified {'all λs' if m['converged'] else 'NOT all λs'}; final gap {imp.gaps[-1]:.2e}",
        f"selected  {sel.neurons.size} neurons ({imp.method}, {imp.penalty})",
        "fingerprint "
        + "  ".join(f"L{layer} {p:.1f}%" for layer, p in zip(sel.layers, sel.fingerprint(), strict=True)),
        "top       " + ", ".join(f"L{layer}:{unit}" for layer, unit in sel.units()[:10]),
    ]
    return "\n".join(lines)


def cmd_transfer(args: argparse.Namespace) -> int:
    import engine
    from engine.transfer import headline

    ks = [int(v) for v in args.ks.split(",") if v.strip()]
    cls = dict(item.split("=", 1) for item in args.cls) if args.cls else None
    results = engine.transfer(args.source, list(args.target), k=args.k, ks=ks, seeds=args.seeds, cls=cls)
    for result in results:
        for row in result.rows:
            cells = "  ".join(f"{m} {headline(v):.3f}" for m, v in row["scores"].items())
            print(
                f"{'+'.join(row['sources'])} → {row['target']} ({row['normalisation']}-normalised): {cells}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from engine.fingerprint import run_fingerprint_cli

    return run_fingerprint_cli(args)


def cmd_report(args: argparse.Namespace) -> int:
    from engine.report import run_report_cli

    return run_report_cli(args)


def cmd_experiment(args: argparse.Namespace) -> int:
    from engine.experiment import Options, run_experiment, summary

    options = Options(
        model=args.model, k=args.k, ks=tuple(int(v) for v in args.ks.split(",")), seeds=args.seeds,
        max_length=args.max_length, device=args.device, cls_baseline=args.cls_baseline,
    )  # fmt: skip
    reader = (
        {"threshold": args.stsb_threshold} if args.name == "stsb" and args.stsb_threshold is not None else {}
    )
    out = Path(args.out or f"experiments/{args.name}")
    report = run_experiment(
        args.name, args.data_dir, out, options, max_per_class=args.max_per_class, limit=args.limit,
        progress=not args.quiet, **reader,
    )  # fmt: skip
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
    return 0


def describe(store) -> str:
    """A few human lines about a store: shape, model, labels, progress, anomalies."""
    m = store.meta
    lines = [
        f"store     {store.path}",
        f"shape     {store.n} examples × {len(store.layers)} layers × {store.hidden} units "
        f"({m['dtype']}, {m['pooling']} pooling, max_length {m['max_length']})",
        f"layers    {list(store.layers)}",
        f"model     {m['model_id']} (weights {m['weights_hash'][:12]}, {m['precision']})",
        f"state     {'complete' if store.complete else 'incomplete'}, "
        f"{m['rows_committed']}/{store.n} rows committed",
    ]
    labels = store.labels
    if labels is not None and m["label_kind"] == "class":
        names = m.get("label_names") or []
        values, counts = _counts(labels)
        parts = [f"{names[v] if v < len(names) else v}: {c}" for v, c in zip(values, counts, strict=True)]
        lines.append(f"labels    {len(values)} classes ({', '.join(parts)})")
    elif labels is not None:
        lines.append(f"labels    numeric, range {labels.min():g} … {labels.max():g}")
    else:
        lines.append("labels    none")
    if m["pooling"] == "tokens":
        lines.append(f"tokens    {m['n_tokens']}")
    if m["nonfinite_values"]:
        lines.append(
            f"nonfinite {m['nonfinite_values']} values in {m['nonfinite_row_count']} rows "
            f"(first rows {m['nonfinite_rows'][:10]})"
        )
    return "\n".join(lines)


def _counts(labels):
    import numpy as np

    return np.unique(labels, return_counts=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("neurosel: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    _quiet_third_party()
    try:
        return args.func(args)
    except InputError as e:
        print(f"neurosel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosel: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "neurosel: internal error (a bug): please report it with the trace above",
            file=sys.stderr,
        )
        return 1


def _quiet_third_party() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())
