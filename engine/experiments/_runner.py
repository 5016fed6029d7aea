"""The whole method on a set of domains: extract, transfer every ordered pair, multi-source
leave-one-domain-out, fingerprints, the similarity–transfer correlation, and the report.

Every domain is extracted once into `out/stores/<domain>.zarr` (mean-pooled, all layers) and, for
the CLS baseline, `out/stores/<domain>-cls.zarr` (last layer); existing complete stores are reused
and interrupted ones resume. Each transfer job is saved under `out/transfers/` keyed by its
parameters and by a digest of the code that computed it (`code_digest`), so an interrupted
experiment resumes at the first job not yet done, and a job computed by other code is run again
instead of being served from the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.crossdomain import (
    domain_distance,
    fingerprint,
    headline,
    transfer,
    transferability,
)
from neurosel.defaults import (
    DEFAULT_K,
    DEFAULT_KS,
    DEFAULT_RANKING,
    DEMO_MODEL,
    IN_CORE_BYTES,
    MEASURES,
    POOLINGS,
    RANKINGS,
    SEEDS,
)
from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.extraction import extract
from neurosel.params import (
    Anything,
    Boolean,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    SequenceOf,
    check,
    validated,
)
from neurosel.progress import bar
from neurosel.report import baseline_descriptions, write_report
from neurosel.scaleout import Runner, resolve_runner
from neurosel.solver import method_for, metric_for
from neurosel.stats import neuron_stats

log = logging.getLogger("neurosel")


@dataclass(frozen=True)
class Options:
    """Settings of one experiment run (they key the saved transfer jobs)."""

    model: str = DEMO_MODEL
    k: int = DEFAULT_K
    ks: tuple[int, ...] = DEFAULT_KS
    seeds: int = SEEDS
    pooling: str = "mean"
    max_length: int = 256
    device: str = "auto"
    cls_baseline: bool = True
    measure: str = "cosine"
    permutations: int = 10_000
    multi_source: bool = True
    ranking: str = DEFAULT_RANKING  # how a single source ranks its neurons (neurosel.crossdomain.RANKINGS)
    in_core_bytes: int = IN_CORE_BYTES  # larger stores are streamed (their classifiers use a row sample)

    def key(self, job: str) -> str:
        fields = {**self.__dict__, "ks": list(self.ks), "job": job, "code": code_digest()}
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


# The fields of `Options`, checked when a run starts, before anything is extracted (neurosel.params).
OPTIONS_PARAMS = {
    "model": [PathLike(), Instance(tuple, what="a (model, tokenizer) pair")],
    "k": Interval(Integral, 1, None),
    "ks": SequenceOf(Interval(Integral, 1, None), min_len=1),
    "seeds": Interval(Integral, 1, None),
    "pooling": OneOf(*POOLINGS),
    "max_length": Interval(Integral, 2, None),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "cls_baseline": Boolean(),
    "measure": OneOf(*MEASURES),
    "permutations": Interval(Integral, 1, None),
    "multi_source": Boolean(),
    "ranking": OneOf(*RANKINGS),
    "in_core_bytes": Interval(Integral, 1, None, fix="give a whole number of bytes ≥ 1"),
}
# The options of `run_pipeline` and `run_experiment` (their Options' fields with OPTIONS_PARAMS).
RUN_PARAMS = {
    "name": Instance(str, what="a name"),
    "experiment": Instance(str, what="an experiment name"),
    "domains": Instance(Mapping, what="a mapping {name: (texts, labels)}"),
    "data_dir": PathLike(),
    "out": PathLike(),
    "options": Instance("Options", what="a neurosel.experiments.Options"),
    "max_per_class": Anything("None or a whole number ≥ 1 (checked by the reader)"),
    "limit": Anything("None or a whole number ≥ 1 (checked by the reader)"),
    "progress": Boolean(),
    "device": Optional(Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device")),
    "client": Anything("None, a Dask client or a runner"),
}


def check_run_options(options: Options) -> None:
    """Check `options`' fields with OPTIONS_PARAMS (InputError naming the field)."""
    table = {f"options.{name}": spec for name, spec in OPTIONS_PARAMS.items()}
    check("Options", table, {f"options.{name}": value for name, value in options.__dict__.items()})


@functools.cache
def code_digest() -> str:
    """A digest of the Python sources of the package that computes a transfer job (neurosel, its
    kernels included, the benchmark harness not): a saved job is reused only by the code that
    computed it."""
    return source_digest(Path(__file__).resolve().parents[1], skip=("bench",))


def source_digest(*roots: Path, skip: tuple[str, ...] = ()) -> str:
    """SHA-1 (16 hex digits) of every `.py` file under `roots` (but not under a top folder named in
    `skip`), names and contents, in sorted order."""
    digest = hashlib.sha1()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if path.relative_to(root).parts[0] in skip:
                continue
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@validated(RUN_PARAMS, partial=True)
def run_pipeline(
    name: str,
    domains: Mapping[str, tuple[Sequence, np.ndarray]],
    out: str | Path,
    options: Options = Options(),
    progress: bool = True,
    device: str | Device | None = None,
    client: Any = None,
) -> Path:
    """Run the method on `domains` ({name: (texts or pairs, labels)}); write the report, return its path.

    `device` (default: `options.device`) is resolved once and used by every stage. With a Dask
    `client`, extraction, statistics and paths run on the cluster (its workers resolve `device`
    for themselves when it is a name)."""
    check_run_options(options)
    if len(domains) < 2:
        raise InputError(f"experiment {name}: {len(domains)} domain(s); transfer needs at least two")
    spec = options.device if device is None else device
    device, runner = resolve_device(spec), resolve_runner(client)
    out = Path(out)
    on_workers = spec if runner.distributed and isinstance(spec, str) else device
    stores, cls = _extract_all(domains, out / "stores", options, progress, on_workers, runner)
    names = list(domains)
    jobs = [("single", s) for s in names]
    if options.multi_source and len(names) >= 3:
        jobs += [("multi", t) for t in names]
    rows, multi_k, single_k = [], {}, {}
    with bar(len(jobs), "transfer jobs", "job", progress) as jobs_bar:
        for mode, who in jobs:
            record = _job(mode, who, names, stores, cls, out / "transfers", options, device, runner)
            jobs_bar.update(1)
            rows += record["rows"]
            if mode == "multi":
                multi_k[who] = record["meta"]["k_chosen"]
            elif "k_cv" in record["meta"]:
                single_k[who] = record["meta"]["k_cv"]
    kind = stores[names[0]].meta["label_kind"]
    method = method_for(kind)
    neurons = len(stores[names[0]].layers) * stores[names[0]].hidden
    fps = fingerprint(  # the same path as the transfers' rankings, so it is read back from the store
        [stores[n] for n in names], k=min(options.k, neurons), method=method, names=names,
        measure=options.measure, target_support=min(max(options.ks), neurons), device=device,
        progress=progress, client=runner, ranking=options.ranking,
    )  # fmt: skip
    metric = metric_for(kind)
    singles = {
        (r["sources"][0], r["target"]): r["scores"]["selected"]
        for r in rows
        if len(r["sources"]) == 1 and r["normalisation"] == "source"
    }
    results: dict[str, Any] = {
        "experiment": name, "model": options.model, "layers": list(fps.layers),
        "hidden": stores[names[0]].hidden, "k": options.k, "ks": list(options.ks), "metric": metric,
        "datasets": names,
        "fingerprints": {n: p.tolist() for n, p in fps.as_mapping().items()},
        "selected_per_layer": {n: c.tolist() for n, c in zip(fps.names, fps.counts, strict=True)},
        "similarity": {"measure": options.measure, "matrix": fps.similarity().tolist()},
        "paths": {p.name: p.to_dict() for p in fps.paths},  # the paths the single-source rankings saved
        "transfers": rows,
        "notes": _notes(domains, options, multi_k, single_k),
    }  # fmt: skip
    results["baseline_descriptions"] = {
        m: d for m, d in baseline_descriptions().items() if options.cls_baseline or m != "last_cls"
    }
    if len(singles) >= 3:
        results["correlation"] = transferability(
            fps, singles, measure=options.measure, permutations=options.permutations,
            distances=_distances(stores, singles, device, runner) if len(singles) >= 4 else None,
        )  # fmt: skip
    report = write_report(results, out / "report")
    log.info("report written to %s", report)
    return report


def _distances(stores, pairs, device: Device, runner: Runner) -> dict[tuple[str, str], float]:
    """The label-free source → target distance of every pair, from the stores' saved statistics."""
    stats = {
        name: neuron_stats(store, by=None, device=device, progress=False, client=runner)
        for name, store in stores.items()
    }
    return {(s, t): domain_distance(stats[s].mean, stats[s].std, stats[t].mean) for s, t in pairs}


def _extract_all(domains, root: Path, options: Options, progress: bool, device: str | Device, runner: Runner):
    """One mean-pooled store per domain (all layers), and a last-layer CLS store for the baseline."""
    stores, cls = {}, {}
    for domain, (texts, labels) in domains.items():
        log.info("extracting %s: %d examples with %s", domain, len(texts), options.model)
        common = {
            "labels": labels,
            "max_length": options.max_length,
            "device": device,
            "progress": progress,
            "client": runner,
        }
        stores[domain] = extract(
            texts, options.model, root / f"{domain}.zarr", pooling=options.pooling, **common
        )
        if options.cls_baseline:
            cls[domain] = extract(
                texts, options.model, root / f"{domain}-cls.zarr", pooling="cls", layers="last", **common
            )
    return stores, cls


def _job(
    mode: str, who: str, names, stores, cls, root: Path, options: Options, device: Device, runner: Runner
) -> dict[str, Any]:
    """One transfer job (a source to every other domain, or all others to one target), saved and reused."""
    path = root / f"{mode}-{who}.json"
    key = options.key(f"{mode}-{who}")
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved
    others = [n for n in names if n != who]
    common = {
        "k": options.k, "ks": options.ks, "seeds": options.seeds, "cls": cls or None, "device": device,
        "client": runner, "ranking": options.ranking, "in_core_bytes": options.in_core_bytes,
    }  # fmt: skip
    if mode == "single":
        results = transfer(  # the report compares with the scikit-learn recipe: it is on here
            [stores[who]], [stores[t] for t in others], names=[who, *others], sklearn_baseline=True, **common
        )
        record = {"rows": [row for r in results for row in r.rows], "meta": {"k_cv": results[0].meta["k_cv"]}}
    else:
        result = transfer(
            [stores[s] for s in others], stores[who], names=[*others, who], sklearn_baseline=False, **common
        )
        record = {
            "rows": result.rows,
            "meta": {"k_chosen": result.meta["k_chosen"], "scenarios": result.meta["scenarios"]},
        }
    record["key"] = key
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
    return record


def _notes(domains, options: Options, multi_k: dict[str, int], single_k: dict[str, int]) -> list[str]:
    sizes = ", ".join(f"{n} {len(t)}" for n, (t, _) in domains.items())
    notes = [
        f"Examples per domain: {sizes}. Encoder {options.model}, {options.pooling}-pooled, all layers, "
        f"max length {options.max_length} tokens.",
        "Target labels are used only to score; every choice (neurons, C, k, layer) is made on the sources.",
        "The fingerprint of a target uses its labels: the similarity–transfer correlation is an analysis "
        "tool, not part of the unsupervised pipeline.",
    ]
    if single_k:
        chosen = ", ".join(f"{s}: {k}" for s, k in single_k.items())
        notes.append(f"Single-source 'selected, k by CV': k chosen by the source's own 3-fold CV ({chosen}).")
    if multi_k:
        chosen = ", ".join(f"{t}: {k}" for t, k in multi_k.items())
        notes.append(
            f"Multi-source rows (leave one domain out): k chosen on the source scenarios ({chosen})."
        )
    return notes


@validated(RUN_PARAMS, partial=True)
def run_experiment(
    experiment: str,
    data_dir: str | Path,
    out: str | Path,
    options: Options = Options(),
    *,
    max_per_class: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    device: str | Device | None = None,
    client: Any = None,
    **reader_options: Any,
) -> Path:
    """`run_pipeline` on the domains of a shared dataset (engine/readers.py: amazon, sst-cr, sick, stsb)."""
    from neurosel.experiments._readers import EXPERIMENTS, read_domain

    if experiment not in EXPERIMENTS:
        raise InputError(f"experiment {experiment!r}: use one of {', '.join(EXPERIMENTS)}")
    domains = {}
    check_run_options(options)  # before any file is read
    for name in EXPERIMENTS[experiment]:
        domain = read_domain(
            experiment, name, data_dir, max_per_class=max_per_class, limit=limit, **reader_options
        )
        names = domain.label_names
        labels = np.array(names)[domain.labels] if names is not None else domain.labels  # keep class names
        domains[name] = (domain.texts, labels)
    return run_pipeline(experiment, domains, out, options, progress, device, client)


def summary(results_path: str | Path) -> str:
    """A few terminal lines: the mean score of each method over single-source pairs (and over the
    multi-source rows), per normalisation."""
    results = json.loads(Path(results_path).read_text())
    lines = [f"{results['experiment']}: mean {results['metric']} over transfers"]
    for norm in ("source", "target"):
        for label, multi in (("single-source", False), ("multi-source", True)):
            rows = [
                r for r in results["transfers"]
                if r["normalisation"] == norm and (len(r["sources"]) > 1) == multi
            ]  # fmt: skip
            if not rows:
                continue
            means = {m: np.mean([headline(r["scores"][m]) for r in rows]) for m in rows[0]["scores"]}
            cells = "  ".join(f"{m} {v:.3f}" for m, v in means.items())
            lines.append(f"  {label:13} {norm}-normalised ({len(rows)}): {cells}")
    filled = {name: p for name, p in results.get("paths", {}).items() if p.get("filled")}
    if filled:
        cells = ", ".join(f"{name} {p['filled']} of {p['k']}" for name, p in filled.items())
        lines.append(f"  selected neurons that never entered the sparse path: {cells}")
    if "correlation" in results:
        c = results["correlation"]
        lines.append(
            f"  fingerprint similarity vs transfer: Spearman {c['spearman']:.2f} (p = {c['p_value']:.2g})"
        )
    return "\n".join(lines)


def pooled_correlation(
    results_paths: Sequence[str | Path], measure: str = "cosine", permutations: int = 10_000
) -> dict[str, Any]:
    """Fingerprint similarity against transfer score over the single-source pairs of several
    experiments at once (source normalisation; domains named `experiment/domain`)."""
    fingerprints: dict[str, np.ndarray] = {}
    scores: dict[tuple[str, str], float] = {}
    distances: dict[tuple[str, str], float] = {}
    for path in results_paths:
        results = json.loads(Path(path).read_text())
        name = results["experiment"]
        fingerprints.update({f"{name}/{d}": np.array(p) for d, p in results["fingerprints"].items()})
        for row in results["transfers"]:
            if len(row["sources"]) == 1 and row["normalisation"] == "source":
                pair = (f"{name}/{row['sources'][0]}", f"{name}/{row['target']}")
                scores[pair] = headline(row["scores"]["selected"])
        for pair in results.get("correlation", {}).get("pairs", []):
            if "distance" in pair:
                distances[f"{name}/{pair['source']}", f"{name}/{pair['target']}"] = pair["distance"]
    control = distances if len(scores) >= 4 and all(pair in distances for pair in scores) else None
    return transferability(
        fingerprints, scores, measure=measure, permutations=permutations, distances=control
    )
