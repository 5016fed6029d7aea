"""Unsupervised transfer with selected neurons, single- and multi-source (method.md, sections 2–3).

Target labels are never used to fit or choose anything; they only score the result. A dense
classifier (engine/classifier.py) is trained on the source's selected neurons and applied to the
target, normalised with the source's statistics or with the target's own unlabelled statistics.
Baselines run in the same call on the same data: all neurons, k random neurons (over seeds), top k
by a statistics-only score, the best single layer (chosen on the source), the last layer's CLS
vector (when CLS stores are given), and the scikit-learn recipe a user would otherwise write
(liblinear L1 path for the ranking, a default L2 classifier, source standardisation).

Stores larger than `in_core_bytes` are never read whole (docs/scale-out.md): a k-neuron classifier
is fitted on every source row of its columns (the union of all their columns is read once), the
classifiers on every neuron (all, best layer, the scikit-learn ranking, last CLS) on a stratified row
sample recorded in the result (`rows_used`), and targets are scored block by block.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.crossdomain._classifier import Fitted, Tally, fit
from neurosel.crossdomain._domains import (
    IN_CORE_BYTES,
    Activations,
    Columns,
    check_compatible,
    column_sets,
    dense_matrix,
    load_activations,
    pooled_statistics,
    sample_rows,
    scaled,
)
from neurosel.crossdomain._multisource import scenario_ranking
from neurosel.crossdomain._paths import BY_ENTRY, PathRecord, path_record, warn_filled
from neurosel.crossdomain._rankings import (
    path_options,
    resolve_ranking,
    selection_ranking,
    sklearn_ranking,
    sparse_importance,
    stats_ranking,
)
from neurosel.defaults import DEFAULT_K, DEFAULT_KS, DEFAULT_RANKING, NORMALISATIONS, RANKINGS, SEEDS
from neurosel.devices import Device, resolve_device, single_threaded_blas
from neurosel.errors import InputError
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
    check_options,
    validated,
)
from neurosel.progress import bar
from neurosel.scaleout import resolve_runner
from neurosel.solver import IMPORTANCE_PARAMS, layer_counts, metric_for
from neurosel.store import ActivationStore, open_store
from neurosel.timing import stage

SELECTED_CV = "selected_cv"  # single source: the selected neurons at the k its source CV prefers

StoreLike = Any  # an ActivationStore or a path to one


@dataclass
class TransferResult:
    """Scores of every method on one target, one row per normalisation (docs/report.md schema)."""

    sources: list[str]
    target: str
    metric: str
    k: int
    ks: list[int]
    layers: tuple[int, ...]
    hidden: int
    selected: np.ndarray  # the k neurons used by "selected" (flat ids), in rank order
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    # what the sparse path that ranked the selection did (entered, separation λ, filled): one for a
    # single source, none for several (ranked by the scenarios, not by a path)
    paths: list[PathRecord] = field(default_factory=list)

    def fingerprint(self) -> np.ndarray:
        """Percentage of the selected neurons in each layer (the source side's fingerprint)."""
        return layer_counts(self.selected, self.hidden, len(self.layers))[1]

    def score(self, method: str = "selected", normalisation: str = "source") -> float:
        """The headline score of `method` (the mean for random) under `normalisation`."""
        row = next(r for r in self.rows if r["normalisation"] == normalisation)
        return headline(row["scores"][method])

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources, "target": self.target, "metric": self.metric, "k": self.k,
            "ks": self.ks, "layers": list(self.layers), "selected": self.selected.tolist(),
            "fingerprint": self.fingerprint().tolist(), "rows": self.rows, "meta": self.meta,
            "paths": [p.to_dict() for p in self.paths],
        }  # fmt: skip

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


# Options of transfer's `importance_options` that transfer sets itself.
TRANSFER_SETS = ("store", "method", "device", "progress", "client")

# The options of `transfer`, checked before any store is read (neurosel.params); k and ks against
# the stores' neurons once their metadata is open, before any statistics or path.
TRANSFER_PARAMS = {
    "sources": SequenceOf(PathLike(store=True), min_len=1, fix="give at least one labelled source store"),
    "target": [PathLike(store=True), SequenceOf(PathLike(store=True), min_len=1)],
    "k": Interval(Integral, 1, None),
    "ks": SequenceOf(Interval(Integral, 1, None)),
    "names": Optional(SequenceOf(Instance(str, what="a name"))),
    "normalisations": SequenceOf(OneOf(*NORMALISATIONS), min_len=1),
    "seeds": Interval(Integral, 1, None),
    "cls": Optional(Instance(dict, what="a dict {name: CLS store}")),
    "choose_k": Optional(Boolean()),
    "sklearn_baseline": Boolean(),
    "importance_options": Optional(Instance(dict, what="a dict of neurosel.importance options")),
    "seed": Interval(Integral, 0, None),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "progress": Boolean(),
    "client": Anything("None, a Dask client or a runner"),
    "in_core_bytes": Interval(Integral, 1, None, fix="give a whole number of bytes ≥ 1"),
    "ranking": OneOf(*RANKINGS),
}


@validated(TRANSFER_PARAMS)
def transfer(
    sources: Sequence[StoreLike],
    target: StoreLike | Sequence[StoreLike],
    k: int = DEFAULT_K,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    names: Sequence[str] | None = None,
    normalisations: Sequence[str] = NORMALISATIONS,
    seeds: int = SEEDS,
    cls: dict[str, StoreLike] | None = None,
    choose_k: bool | None = None,
    sklearn_baseline: bool = True,
    importance_options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | Device = "auto",
    progress: bool = False,
    client: Any = None,
    in_core_bytes: int = IN_CORE_BYTES,
    ranking: str = DEFAULT_RANKING,
) -> TransferResult | list[TransferResult]:
    """Transfer from labelled `sources` to `target` (a store, or a list of stores scored separately).

    One source: `ranking` ranks its neurons (RANKINGS; default "auto": for classes the mean rank of
    stability selection on its sparse path and of the statistics-only score, for numeric labels entry
    into an elastic-net path, docs/method.md). Several: every ordered pair
    of sources is a scenario, neurons are ranked by their mean transfer importance over scenarios, and k is
    chosen (unless `choose_k=False`) by the scenarios' held-out-source score. `names` name the
    sources then the targets; `cls` maps those names to last-layer CLS stores for that baseline.
    `device` runs the statistics and the sparse path (the dense classifiers run on the CPU); with a
    Dask `client`, the statistics and the path's products run on the cluster.

    A store whose float32 activations fit `in_core_bytes` is read whole, as results have always
    been computed; a larger one is streamed: k-neuron classifiers see every source row of their
    columns, the classifiers on every neuron a stratified row sample of `in_core_bytes` (recorded
    as `meta["rows_used"]` and in each row), and targets are scored block by block.
    """
    many = isinstance(target, (list, tuple))
    targets = list(target) if many else [target]
    every = list(sources) + targets
    labels = list(names) if names is not None else [None] * len(every)
    if len(labels) != len(every):
        raise InputError(f"names: {len(labels)} given for {len(every)} stores (sources, then targets)")
    extra = check_options(
        "importance", IMPORTANCE_PARAMS, importance_options, "importance_options", taken=TRANSFER_SETS
    )
    in_core_bytes = int(in_core_bytes)
    # the stores' metadata, before any statistics are computed or saved
    every = [s if isinstance(s, ActivationStore) else open_store(s) for s in every]
    first = every[0]
    for store in every[1:]:
        if store.layers != first.layers or store.hidden != first.hidden:
            raise InputError(
                f"stores {first.path} and {store.path}: different layers or widths; "
                "extract them with the same model and layers"
            )
    p = len(first.layers) * first.hidden
    if k > p:
        raise InputError(f"k {k}: choose 1..{p} (the stores have {p} neurons)")
    device, runner = resolve_device(device), resolve_runner(client)
    with stage("load"):
        domains = [
            load_activations(s, n, device, runner, in_core_bytes) for s, n in zip(every, labels, strict=True)
        ]
    check_compatible(domains)
    srcs, tgts = domains[: len(sources)], domains[len(sources) :]
    ks = sorted({int(v) for v in [*ks, k] if v <= p})
    cls_domains = _cls_domains(cls, domains, device, in_core_bytes)
    options = {"device": device, "progress": progress, "client": runner, **extra}
    run = _Run(srcs, tgts, ks, seeds, seed, cls_domains, options, device, in_core_bytes, ranking)
    results = run.multi(k, choose_k is not False) if len(srcs) > 1 else run.single(k, sklearn_baseline)
    for result in results:
        result.rows = [row for row in result.rows if row["normalisation"] in normalisations]
    return results if many else results[0]


def _cls_domains(
    cls: dict[str, StoreLike] | None, domains: list[Activations], device: Device, in_core_bytes: int
) -> dict[str, Activations]:
    if not cls:
        return {}
    missing = [d.name for d in domains if d.name not in cls]
    if missing:
        raise InputError(f"cls: no CLS store for {', '.join(missing)}; give one per source and target")
    with stage("load"):
        loaded = {d.name: load_activations(cls[d.name], d.name, device, None, in_core_bytes) for d in domains}
    check_compatible(list(loaded.values()))
    return loaded


class _Run:
    """The fits of one transfer call: trained once on the source side, applied to every target."""

    def __init__(
        self, srcs, tgts, ks, seeds, seed, cls, importance_options, device, in_core_bytes, ranking
    ) -> None:
        self.srcs, self.tgts, self.ks, self.seeds, self.seed = srcs, tgts, ks, seeds, seed
        self.ranking = ranking  # the rule that ranks a single source's neurons (RANKINGS)
        self.cls, self.importance_options, self.device = cls, importance_options, device
        self.budget = in_core_bytes
        self.progress = bool(importance_options.get("progress", False))
        self.kind = srcs[0].kind
        self.metric = metric_for(self.kind)
        self.p = srcs[0].p
        self.layers, self.hidden = srcs[0].layers, srcs[0].hidden
        self._cls_srcs = [cls[d.name] for d in srcs] if cls else []
        # the source rows the classifiers on every neuron see: all (None) unless a source is streamed
        self.rows = sample_rows(srcs, in_core_bytes, seed)
        self.cls_rows = sample_rows(self._cls_srcs, in_core_bytes, seed) if cls else None
        self.cv_scores: dict[tuple, float] = {}  # source CV score of every fitted model, by plan key

    # -- the training side -------------------------------------------------------------------

    @staticmethod
    def _train_stats(srcs: list[Activations], norm: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """The statistics that standardise each source's training rows for a normalisation: pooled
        source statistics (several sources, source normalisation) or each source's own."""
        if norm == "source" and len(srcs) > 1:
            return [pooled_statistics(srcs)] * len(srcs)
        return [(d.mean, d.std) for d in srcs]

    @staticmethod
    def _apply_stats(
        srcs: list[Activations], norm: str, target: Activations
    ) -> tuple[np.ndarray, np.ndarray]:
        """The statistics that standardise the target: its own, or the (pooled) sources'."""
        if norm == "target":
            return target.mean, target.std
        return pooled_statistics(srcs) if len(srcs) > 1 else (srcs[0].mean, srcs[0].std)

    def _random(self, k: int, s: int) -> np.ndarray:
        return np.sort(np.random.default_rng((self.seed, s, k)).choice(self.p, size=k, replace=False))

    def _methods(self, ranking, stats_rank, sk_rank, curve_ks, headline) -> dict[str, list[tuple]]:
        """(k or None, columns, seed) to fit for every method."""
        plan = {
            "selected": [(kk, ranking[:kk], None) for kk in curve_ks],
            "random": [(kk, self._random(kk, s), s) for kk in curve_ks for s in range(self.seeds)],
            "stats_topk": [(kk, stats_rank[:kk], None) for kk in curve_ks],
            "all": [(None, np.arange(self.p), None)],
        }
        if sk_rank is not None:
            plan["sklearn"] = [(kk, sk_rank[:kk], None) for kk in curve_ks]
        if headline not in curve_ks:
            plan["random"] += [(headline, self._random(headline, s), s) for s in range(self.seeds)]
        return plan

    def _evaluate(self, plan, headline) -> list[list[dict]]:
        """Fit every planned model per normalisation and score it on every target."""
        with stage("fits and scoring"), single_threaded_blas():
            return self._fit_and_score(plan, headline)

    def _fit_and_score(self, plan, headline) -> list[list[dict]]:
        fits_total = sum(len(entries) for entries in plan.values()) + len(self.layers) + bool(self.cls)
        with bar(fits_total * (1 + (len(self.srcs) > 1)), "fits", "fit", self.progress) as fits_bar:
            return self._fit_all(plan, headline, fits_bar)

    def _fit_all(self, plan, headline, fits_bar) -> list[list[dict]]:
        union = [cols for method, entries in plan.items() if method != "all" for _, cols, _ in entries]
        columns = column_sets(self.srcs, np.concatenate(union), self.budget, "the k-neuron classifiers")
        trained = {}  # one source trains the same data under both normalisations: fit it once
        models = {}
        for norm in NORMALISATIONS:
            pooled = norm == "source" and len(self.srcs) > 1
            if pooled not in trained:
                trained[pooled] = self._fit_side(plan, norm, columns, fits_bar)
                self.cv_scores = {key: f.cv_score for key, (_, f) in trained[pooled][0].items()}
            fits, layer_fits, cls_fit = trained[pooled]
            if norm == "target":  # the scikit-learn recipe standardises with the source only
                fits = {key: value for key, value in fits.items() if key[0] != "sklearn"}
            models[norm] = fits, layer_fits, cls_fit
        del columns  # the sources' columns, read for the k-neuron models, are not needed to score
        scoring, cls_models = {}, {}
        for norm, (fits, (best, layer_fit), cls_fit) in models.items():
            scoring[norm] = {**fits, _BEST: (self._layer_cols(best), layer_fit)}
            cls_models[norm] = {_CLS: (None, cls_fit)}
        out = [[] for _ in self.tgts]
        for t, target in enumerate(self.tgts):
            scored = self._score(target, self.srcs, scoring)
            cls_scored = self._score(self.cls[target.name], self._cls_srcs, cls_models) if self.cls else {}
            for norm, (_, (best, _), _) in models.items():
                layer_score = scored[norm].pop(_BEST)
                cls_score = cls_scored[norm][_CLS] if self.cls else None
                out[t].append(self._row(norm, target, scored[norm], headline, best, layer_score, cls_score))
        return out

    def _fit_side(self, plan, norm, columns, fits_bar) -> tuple[dict, tuple[int, Fitted], Fitted | None]:
        """Every planned model, the best layer and the CLS classifier, fitted on the sources standardised
        for a normalisation: the models on every neuron on all rows when every source is in core, else
        on the row sample; a k-neuron model on every source row of its columns. In core, the fits run
        on a thread per core (each on one BLAS thread; they do not depend on one another, so the
        result does not depend on the order they finish in); streamed, one after another, so that
        the row sample is freed before the k-neuron models read their columns."""
        stats = self._train_stats(self.srcs, norm)
        z, y = dense_matrix(self.srcs, self.rows, stats)
        ((_, every, _),) = plan["all"]
        in_core = self.rows is None  # all rows in core: k-neuron models take z's columns
        # in core, the copy z[:, every] as always (BLAS's last bits depend on alignment); sampled, z
        wide = {_DENSE: partial(fit, z[:, every] if in_core else z, y, self.kind, self.seed)}
        for i in range(len(self.layers)):
            wide[_LAYER, i] = partial(fit, z[:, self._layer_cols(i)], y, self.kind, self.seed)
        if self.cls:
            cls_stats = self._train_stats(self._cls_srcs, norm)
            cls_data = dense_matrix(self._cls_srcs, self.cls_rows, cls_stats)
            wide[_CLS_FIT] = partial(fit, *cls_data, self.kind, self.seed)
        y = np.concatenate([d.y for d in self.srcs])
        narrow = {}
        for method, entries in plan.items():
            for kk, cols, s in entries:
                if method != "all":
                    model = _default_l2 if method == "sklearn" else partial(fit, seed=self.seed)
                    data = partial(_take, z, cols) if in_core else partial(_narrow, columns, stats, cols)
                    narrow[method, kk, s] = partial(_fit_on, model, data, y, self.kind)
        if in_core:
            done = _run_fits({**wide, **narrow}, os.cpu_count() or 1, fits_bar)
        else:
            done = _run_fits(wide, 1, fits_bar)
            del z, wide  # the row sample, freed before the k-neuron models read their columns
            done |= _run_fits(narrow, 1, fits_bar)
        fits = {}
        for method, entries in plan.items():
            for kk, cols, s in entries:
                fits[method, kk, s] = (cols, done[_DENSE] if method == "all" else done[method, kk, s])
        layers = [done[_LAYER, i] for i in range(len(self.layers))]
        best = int(np.argmax([f.cv_score for f in layers]))
        return fits, (best, layers[best]), done.get(_CLS_FIT)

    def _score(
        self, target: Activations, srcs: list[Activations], models: dict[str, dict[Any, tuple]]
    ) -> dict[str, dict[Any, dict[str, float]]]:
        """Scores of every model (columns, fit) on `target` per normalisation, in one pass over its
        row blocks (the whole matrix in core): each block standardised with the normalisation's
        statistics, then cut to each model's columns. Equals scoring the whole matrix at once."""
        stats = {norm: self._apply_stats(srcs, norm, target) for norm in models}
        tallies = {
            norm: {key: Tally(f, target.n) for key, (_, f) in fits.items()} for norm, fits in models.items()
        }
        for start, stop, x in target.blocks():
            y = target.y[start:stop]
            for norm, fits in models.items():
                z = scaled(x, *stats[norm])
                for key, (cols, _) in fits.items():
                    tallies[norm][key].add(start, z if cols is None else z[:, cols], y)
        return {norm: {key: t.result(target.y) for key, t in ts.items()} for norm, ts in tallies.items()}

    def _layer_cols(self, position: int) -> np.ndarray:
        return np.arange(position * self.hidden, (position + 1) * self.hidden)

    def _rows_used(self, sklearn_ranking: bool = False, scenarios: int | None = None) -> dict[str, int]:
        """How many source rows each classifier on every neuron saw, when it was not all of them:
        `all`, `best_layer` (and `sklearn_ranking`) on the row sample, `last_cls` on the CLS stores',
        `scenarios` (several sources) the scenarios' dense classifiers together; `of` the rows."""
        used = {}
        if self.rows is not None:
            m = int(sum(r.size for r in self.rows))
            used = {"all": m, "best_layer": m, **({"sklearn_ranking": m} if sklearn_ranking else {})}
        if self.cls_rows is not None:
            used["last_cls"] = int(sum(r.size for r in self.cls_rows))
        if scenarios is not None:
            used["scenarios"] = scenarios
        if used:
            used["of"] = int(sum(d.n for d in self.srcs))
        return used

    # -- assembling rows ---------------------------------------------------------------------

    def _row(self, norm, target, scored, headline, best_layer, layer_score, cls_score) -> dict[str, Any]:
        metrics = list(next(iter(scored.values())))
        tables = {m: {} for m in metrics}
        curves = {m: {} for m in metrics}
        for (method, kk, _seed), values in scored.items():
            for m, v in values.items():
                if method == "random":
                    curves[m].setdefault(method, {}).setdefault(str(kk), []).append(v)
                elif kk is None:
                    tables[m][method] = v
                else:
                    curves[m].setdefault(method, {})[str(kk)] = v
        for m in metrics:
            runs = curves[m].pop("random")
            curves[m]["random"] = {kk: _spread(v) for kk, v in runs.items()}
            for method, curve in curves[m].items():
                if str(headline) in curve:
                    tables[m][method] = curve[str(headline)]
            tables[m]["best_layer"] = {"score": layer_score[m], "layer": int(self.layers[best_layer])}
            if cls_score is not None:
                tables[m]["last_cls"] = cls_score[m]
            curves[m] = {method: c for method, c in curves[m].items() if len(c) > 1 or str(headline) not in c}
        row = {
            "sources": [d.name for d in self.srcs], "target": target.name, "normalisation": norm,
            "scores": tables[self.metric], "by_k": curves[self.metric],
        }  # fmt: skip
        others = {m: tables[m] for m in metrics if m != self.metric}
        if others:
            row["other_metrics"] = others
        return row

    # -- single and multi-source -------------------------------------------------------------

    def single(self, k: int, sklearn_baseline: bool) -> list[TransferResult]:
        src = self.srcs[0]
        rule = resolve_ranking(self.ranking, self.kind)
        options = path_options(rule, self.importance_options)
        with stage("path and statistics"):
            imp = sparse_importance(src.store, self.kind, max(self.ks), options)
        with stage("fisher ranking"):
            stats_rank = stats_ranking([src], self.device)
        with stage("stability selection"):
            ranking, how = selection_ranking(rule, src, imp, stats_rank, max(self.ks), self.seed)
        path = path_record(imp, src.store, k, src.name, ranking, rule)
        if rule in BY_ENTRY:  # other rules rank neurons that never entered on purpose
            warn_filled(path, max(self.ks))
        sk_rank = None
        if sklearn_baseline:  # every neuron: on the row sample when the source is streamed
            z, y = dense_matrix([src], self.rows, [(src.mean, src.std)])
            with stage("scikit-learn recipe ranking"):
                sk_rank = sklearn_ranking(z, y, self.kind)
            del z, y  # every neuron in float64: not kept while the classifiers fit
        rows = self._evaluate(self._methods(ranking, stats_rank, sk_rank, self.ks, k), k)
        k_cv = self._k_by_cv()
        for row in (row for target_rows in rows for row in target_rows):  # no curve: ks is [k]
            curve = row["by_k"].get("selected", {})
            row["scores"][SELECTED_CV] = curve.get(str(k_cv), row["scores"]["selected"])
        meta = {"mode": "single-source", "seeds": self.seeds, "k_cv": k_cv, **how}
        _record_rows(meta, rows, self._rows_used(sklearn_ranking=sklearn_baseline))
        return [self._result(k, ranking[:k], r, meta, [path]) for r in rows]

    def _k_by_cv(self) -> int:
        """The k whose selected-neuron classifier scores best in the source's own cross-validation
        (its C search's folds; ties to the smaller k): k chosen on the source alone."""
        scores = {kk: self.cv_scores["selected", kk, None] for kk in self.ks}
        return max(scores, key=lambda kk: (scores[kk], -kk))

    def multi(self, k: int, choose_k: bool) -> list[TransferResult]:
        with single_threaded_blas():
            ranking, scenarios = scenario_ranking(self.srcs, self.ks, self.seed, self.budget)
        scenario_rows = scenarios.pop("rows_used", None)
        headline = max(scenarios["by_k"], key=lambda kk: (scenarios["by_k"][kk], -int(kk))) if choose_k else k
        headline = int(headline)
        with stage("fisher ranking"):
            stats_rank = stats_ranking(self.srcs, self.device)
        plan = self._methods(ranking, stats_rank, None, [headline], headline)
        plan["selected"] = [(kk, ranking[:kk], None) for kk in self.ks]
        rows = self._evaluate(plan, headline)
        meta = {"mode": "multi-source", "k_chosen": headline, "scenarios": scenarios, "seeds": self.seeds}
        _record_rows(meta, rows, self._rows_used(scenarios=scenario_rows))
        return [self._result(headline, ranking[:headline], r, meta) for r in rows]

    def _result(self, k, selected, rows, meta, paths=()) -> TransferResult:
        return TransferResult(
            sources=[d.name for d in self.srcs], target=rows[0]["target"], metric=self.metric, k=k,
            ks=self.ks, layers=self.layers, hidden=self.hidden, selected=np.asarray(selected),
            rows=rows, meta=meta, paths=list(paths),
        )  # fmt: skip


def _narrow(
    columns: list[Columns], stats: list[tuple[np.ndarray, np.ndarray]], cols: np.ndarray
) -> np.ndarray:
    """Every source row of the neurons `cols`, each source standardised with its entry of `stats`."""
    parts = zip(columns, stats, strict=True)
    return np.vstack([scaled(c(cols), mean[cols], std[cols]) for c, (mean, std) in parts])


_BEST, _CLS = ("best_layer", None, None), ("last_cls", None, None)  # their keys among the scored models
_DENSE, _LAYER, _CLS_FIT = "all", "layer", "cls"  # keys of the fits on every neuron, per layer, on CLS


def _run_fits(jobs: dict[Any, Any], workers: int, fits_bar: Any) -> dict[Any, Fitted]:
    """Run every job (a callable returning a Fitted) on `workers` threads; the results by key."""
    parallel = workers > 1 and len(jobs) > 1
    with ThreadPoolExecutor(min(workers, len(jobs))) if parallel else contextlib.nullcontext() as pool:
        calls = {key: pool.submit(job).result for key, job in jobs.items()} if parallel else jobs
        done = {}
        for key, call in calls.items():  # in submission order; a pool's calls wait for their result
            done[key] = call()
            fits_bar.update(1)
        return done


def _take(z: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return z[:, cols]


def _fit_on(model: Any, data: Any, y: np.ndarray, kind: str) -> Fitted:
    """`model` fitted on the columns `data()` reads: read on the worker, when the fit starts."""
    return model(data(), y, kind)


def _record_rows(meta: dict[str, Any], rows: list[list[dict]], used: dict[str, int]) -> None:
    """Say in the result's meta and in every row how many source rows the models on every neuron saw,
    when that was a sample (the report's schema takes rows with more keys)."""
    if used:
        meta["rows_used"] = used
        for target_rows in rows:
            for row in target_rows:
                row["rows_used"] = dict(used)


def headline(value: float | dict[str, Any]) -> float:
    """One number for a method's score: the mean for random-k, the score for the best layer."""
    if isinstance(value, dict):
        return float(value["mean"] if "mean" in value else value["score"])
    return float(value)


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": len(values)}


def _default_l2(z: np.ndarray, y: np.ndarray, kind: str) -> Fitted:
    """scikit-learn's defaults, as a user would fit them: LogisticRegression() or Ridge()."""
    from sklearn.linear_model import LogisticRegression, Ridge

    model = LogisticRegression(max_iter=2000).fit(z, y) if kind == "class" else Ridge().fit(z, y)
    return Fitted(model, kind, float("nan"))
