"""One function per command: check the outputs, resolve the device once, call the public API, print.

Output paths are checked before any work (a missing folder or a folder where a file goes is an
InputError, so a slow solve never ends in an unwritable --json), and JSON is written to a temporary
file then renamed, so that an interrupted write never leaves half a file under the final name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from neurosel.cli._format import (
    describe,
    describe_fingerprints,
    describe_selection,
    describe_stats,
    describe_transfer,
    describe_verify,
    one_line,
)
from neurosel.errors import InputError


def check_output_file(path: str | None, option: str) -> None:
    """Refuse, before any work, a file output whose folder is missing or that names a folder."""
    if path is None or "://" in path:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path}: is a folder; pass a file path such as {target / 'out.json'}")
    folder = target.parent
    if not folder.exists():
        raise InputError(f"{option} {path}: folder {folder} does not exist; create it or pass another path")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: {folder} is a file, not a folder; pass another path")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{option} {path}: folder {folder} is not writable; pass another path")


def check_output_dir(path: str | Path, option: str) -> None:
    """Refuse, before any work, a folder output that is a file, lies under a file, or cannot be made."""
    if "://" in str(path):
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"{option} {path}: is a file, not a folder; pass a folder path")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"{option} {path}: {existing} is a file, so no folder can be made under it; pass another path"
        )
    if not os.access(existing, os.W_OK):
        raise InputError(f"{option} {path}: {existing} is not writable; pass another path")


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Any:
    """The Dask client for --scheduler ADDRESS or --workers N (a local cluster of processes), or None."""
    scheduler, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if scheduler is None and workers is None:
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise InputError("--scheduler/--workers: needs dask.distributed; pip install distributed") from None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except OSError as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e}); check the address") from None
        with client:
            yield client
        return
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def write_json(path: str, record: Any) -> None:
    """Write a JSON record for --json: to a temporary file beside it, then renamed into place."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_extract(args: argparse.Namespace) -> int:
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
        )
    print(describe(store))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import neurosel

    store = neurosel.open_store(args.store)
    store.check()  # one stat per file: a missing, empty or truncated file is named, exit 2
    if args.verify:
        report = neurosel.verify(store)
        if not report.ok:
            return _print_problems(report)
    print(json.dumps(store.meta, indent=2) if args.json else describe(store))
    if args.verify:
        print(describe_verify(report))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import neurosel

    report = neurosel.verify(args.store)
    if not report.ok:
        return _print_problems(report)
    print(describe_verify(report))
    return 0


def _print_problems(report) -> int:
    """Each problem on its own line on stderr, and exit code 2 (the store cannot be trusted)."""
    for problem in report.problems:
        print(f"neurosel: error: {one_line(problem)}", file=sys.stderr)
    return 2


def cmd_stats(args: argparse.Namespace) -> int:
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


def cmd_demo(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.experiments import demo_corpus, run_demo, summary

    check_output_dir(args.out, "--out")
    device = neurosel.resolve_device(args.device)
    report = run_demo(Path(args.out), args.model, device, progress=not args.quiet)
    for domain in demo_corpus():
        store = neurosel.open_store(Path(args.out) / "stores" / f"{domain}.zarr")
        print(
            describe_stats(store, neurosel.neuron_stats(store, device=device, progress=False), top=3),
            end="\n\n",
        )
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from neurosel.bench import run
    from neurosel.cli import main  # this package's entry point, for benchmarks that run commands

    return run(args.name, args.args, command_line=main)


def cmd_select(args: argparse.Namespace) -> int:
    import neurosel

    check_output_file(args.json, "--json")
    store = neurosel.open_store(args.store)
    device = neurosel.resolve_device(args.device)
    method = args.method or ("lasso" if store.meta.get("label_kind") == "numeric" else "l1-logistic")
    with dask_client(args) as client:
        imp = neurosel.importance(
            store, method, device, penalty=args.penalty, l1_ratio=args.l1_ratio, n_lambdas=args.n_lambdas,
            lambda_ratio=args.lambda_ratio, target_support=args.k if args.rule == "top-k" else None,
            tol=args.tol, class_weight=args.class_weight, progress=not args.quiet, recompute=args.recompute,
            client=client,
        )  # fmt: skip
    sel = neurosel.select(imp, k=args.k, rule=args.rule, mass=args.mass)
    print(describe_selection(imp, sel))
    if args.json:
        record = {
            "store": store.path, "method": imp.method, "penalty": imp.penalty, "rule": args.rule,
            "neurons": sel.neurons.tolist(), "units": sel.units(), "fingerprint": sel.fingerprint().tolist(),
            "lambdas": imp.lambdas.tolist(), "support_sizes": imp.support_sizes.tolist(),
            "passes": imp.passes.tolist(), "gaps": imp.gaps.tolist(), "meta": imp.meta,
        }  # fmt: skip
        write_json(args.json, record)
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    import neurosel

    check_output_file(args.json, "--json")
    device = neurosel.resolve_device(args.device)
    cls = dict(args.cls) if args.cls else None
    with dask_client(args) as client:
        results = neurosel.transfer(
            args.source, list(args.target), k=args.k, ks=list(args.ks), seeds=args.seeds, cls=cls,
            device=device, progress=not args.quiet, client=client, ranking=args.ranking,
            in_core_bytes=args.in_core_bytes,
        )  # fmt: skip
    print(describe_transfer(results))
    if args.json:
        write_json(args.json, [r.to_dict() for r in results])
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    import neurosel

    check_output_file(args.json, "--json")
    device = neurosel.resolve_device(args.device)
    with dask_client(args) as client:
        result = neurosel.fingerprint(
            args.stores, k=args.k, method=args.method, measure=args.measure, device=device,
            progress=not args.quiet, client=client,
        )  # fmt: skip
    print(describe_fingerprints(result))
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from neurosel.report import load_results, write_report

    check_output_dir(args.out, "--out")
    print(write_report(load_results(args.results), args.out))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.experiments import Options, run_experiment, summary

    out = Path(args.out or f"experiments/{args.name}")
    check_output_dir(out, "--out")
    device = args.device if args.scheduler or args.workers else neurosel.resolve_device(args.device)
    options = Options(
        model=args.model, k=args.k, ks=tuple(args.ks), seeds=args.seeds, max_length=args.max_length,
        device=args.device, cls_baseline=args.cls_baseline, ranking=args.ranking,
        in_core_bytes=args.in_core_bytes,
    )  # fmt: skip
    reader = (
        {"threshold": args.stsb_threshold} if args.name == "stsb" and args.stsb_threshold is not None else {}
    )
    with dask_client(args) as client:
        report = run_experiment(
            args.name, args.data_dir, out, options, max_per_class=args.max_per_class, limit=args.limit,
            progress=not args.quiet, device=device, client=client, **reader,
        )  # fmt: skip
    print(summary(report.parent / "results.json"))
    print(f"report: {report.resolve()}")
    return 0
