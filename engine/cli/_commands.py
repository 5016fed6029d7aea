"""One function per command: call the public API, print the result for people."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.cli._format import describe, describe_fingerprints, describe_selection, describe_stats


def write_json(path: str, record: Any) -> None:
    """Write a JSON record for --json."""
    Path(path).write_text(json.dumps(record, indent=2, default=str) + "\n")


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


def cmd_demo(args: argparse.Namespace) -> int:
    import engine
    from engine.experiments import demo_corpus, run_demo, summary

    device = engine.resolve_device(args.device)
    report = run_demo(Path(args.out), args.model, device, progress=not args.quiet)
    for domain in demo_corpus():
        store = engine.open_store(Path(args.out) / "stores" / f"{domain}.zarr")
        print(
            describe_stats(store, engine.neuron_stats(store, device=device, progress=False), top=3),
            end="\n\n",
        )
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
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


def cmd_transfer(args: argparse.Namespace) -> int:
    import engine
    from engine.crossdomain import headline

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
    from engine.crossdomain import fingerprint

    result = fingerprint(args.stores, k=args.k, method=args.method, measure=args.measure)
    print(describe_fingerprints(result))
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from engine.report import load_results, write_report

    print(write_report(load_results(args.results), args.out))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from engine.experiments import Options, run_experiment, summary

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
