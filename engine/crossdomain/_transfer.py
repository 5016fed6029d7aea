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

from collections.abc import Sequence
from typing import Any

import numpy as np

from neurosel.crossdomain import _fit_pool
from neurosel.crossdomain._domains import (
    IN_CORE_BYTES,
    Activations,
    check_compatible,
    check_same_layers,
    dense_matrix,
    load_activations,
)
from neurosel.crossdomain._evaluate import Evaluation, record_rows
from neurosel.crossdomain._multisource import choose_k as choose_k_by
from neurosel.crossdomain._multisource import scenario_ranking
from neurosel.crossdomain._paths import BY_ENTRY, path_record, trusted_size, warn_filled
from neurosel.crossdomain._rankings import (
    path_options,
    resolve_ranking,
    selection_ranking,
    sklearn_ranking,
    sparse_importance,
    stats_ranking,
)
from neurosel.crossdomain._result import TransferResult
from neurosel.crossdomain._saved_fits import has_saved_fits
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
from neurosel.scaleout import resolve_runner
from neurosel.solver import IMPORTANCE_PARAMS
from neurosel.store import open_store
from neurosel.timing import stage

SELECTED_CV = "selected_cv"  # single source: the selected neurons at the k its source CV prefers
# A single source's path and stability halves run until this many times the neurons a path-based rule
# ranks (`trusted_size`; the statistics score ranks the rest) have entered, max(ks) at most: the
# largest k the path is needed for, with a margin for the halves, which select fewer at each λ. Past
# it the path adds only neurons the ranking does not use, at the highest cost (near separation, the
# largest working sets): on 1,000-example sources it cuts the path 4× (binary) to 23× (three classes)
# and the halves 2.5× to 5× (docs/benchmarks.md). It also keeps stability selection in its regime: the
# selections along its λ grid stay a small share of the neurons (Meinshausen and Bühlmann 2010).
PATH_MARGIN = 3

StoreLike = Any  # an ActivationStore or a path to one


# Options of transfer's `importance_options` that transfer sets itself.
TRANSFER_SETS = ("store", "method", "device", "progress", "client")

# The options of `transfer`, checked before any store is read (neurosel.params); k and ks against
# the stores' neurons once their metadata is open, before any statistics or path.
TRANSFER_PARAMS = {
    "sources": [
        PathLike(store=True),
        SequenceOf(PathLike(store=True), min_len=1, fix="give at least one labelled source store"),
    ],
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
    sources: StoreLike | Sequence[StoreLike],
    target: StoreLike | Sequence[StoreLike],
    k: int = DEFAULT_K,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    names: Sequence[str] | None = None,
    normalisations: Sequence[str] = NORMALISATIONS,
    seeds: int = SEEDS,
    cls: dict[str, StoreLike] | None = None,
    choose_k: bool | None = None,
    sklearn_baseline: bool = False,
    importance_options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | Device = "auto",
    progress: bool = False,
    client: Any = None,
    in_core_bytes: int = IN_CORE_BYTES,
    ranking: str = DEFAULT_RANKING,
) -> TransferResult | list[TransferResult]:
    """Transfer from labelled `sources` (a store or path, or a list of them) to `target` (a store or
    path, or a list of them scored separately).

    One source: `ranking` ranks its neurons (RANKINGS; default "auto": for classes the mean rank of
    stability selection on its sparse path and of the statistics-only score, for numeric labels entry
    into an elastic-net path, docs/method.md). Several: every ordered pair
    of sources is a scenario, neurons are ranked by their mean transfer importance over scenarios,
    and k is chosen (unless `choose_k=False`) among `ks` and every neuron by the scenarios'
    held-out-source score (docs/method.md, section 3). `names` name the
    sources then the targets; `cls` maps those names to last-layer CLS stores for that baseline.
    `device` runs the statistics and the sparse path (the dense classifiers run on the CPU); with a
    Dask `client`, the statistics and the path's products run on the cluster.

    A store whose float32 activations fit `in_core_bytes` is read whole, as results have always
    been computed; a larger one is streamed: k-neuron classifiers see every source row of their
    columns, the classifiers on every neuron a stratified row sample of `in_core_bytes` (recorded
    as `meta["rows_used"]` and in each row), and targets are scored block by block.
    """
    sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]  # one store or many
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
    every = [open_store(s) for s in every]
    check_same_layers(every)
    first = every[0]
    p = len(first.layers) * first.hidden
    if k > p:
        raise InputError(f"k {k}: choose 1..{p} (the stores have {p} neurons)")
    device, runner = resolve_device(device), resolve_runner(client)
    # the classifiers' worker processes start now, so that their start-up overlaps the loading and
    # the path (the models on every neuron and on each layer alone read 2 × rows × neurons values);
    # not when a source holds saved classifiers (a re-run: its fits are likely read back)
    if not any(has_saved_fits(store) for store in every[: len(sources)]):
        _fit_pool.start(2 * p * sum(store.n for store in every[: len(sources)]))
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


def path_support(rule: str, n: int, largest: int) -> int:
    """The support a single source's path (and its stability halves) runs to for a rule on `n`
    examples whose curve goes up to k = `largest`: PATH_MARGIN × `trusted_size(n)`, `largest` at most;
    `largest` for the statistics-only rule, which reads only the path's record."""
    return largest if rule == "fisher" else min(largest, PATH_MARGIN * trusted_size(n))


def _k_choice(chosen: bool, every: bool, offered: bool) -> str:
    """What decided a multi-source transfer's headline k, in words for the result's meta."""
    if not chosen:
        return "given (choose_k=False)"
    if every:
        return (
            "every neuron: no k of ks beat the classifier on every neuron on the held-out sources by "
            "more than one standard error"
        )
    if not offered:
        return "the best held-out-source score of ks (every neuron not offered: a source is streamed)"
    return "the best held-out-source score of ks, ahead of every neuron by more than one standard error"


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


class _Run(Evaluation):
    """One transfer call: the plan of models and baselines, and the single- and multi-source runs
    that rank the neurons, evaluate the plan (`Evaluation`) and make the results."""

    # -- the plan of models and baselines ----------------------------------------------------

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

    # -- single and multi-source -------------------------------------------------------------

    def single(self, k: int, sklearn_baseline: bool) -> list[TransferResult]:
        src = self.srcs[0]
        rule = resolve_ranking(self.ranking, self.kind)
        options = path_options(rule, self.importance_options)
        support = path_support(rule, src.n, max(self.ks))
        with stage("path and statistics"):
            imp = sparse_importance(src.store, self.kind, support, options)
        with stage("fisher ranking"):
            stats_rank = stats_ranking([src], self.device)
        with stage("stability selection"):
            ranking, how = selection_ranking(rule, src, imp, stats_rank, support, self.seed)
        path = path_record(imp, src.store, k, src.name, ranking, rule)
        if rule in BY_ENTRY:  # other rules rank neurons that never entered on purpose
            warn_filled(path, support)
        sk_rank = None
        if sklearn_baseline:  # every neuron: on the row sample when the source is streamed
            z, y = dense_matrix([src], self.rows, [(src.mean, src.std)])
            with stage("scikit-learn recipe ranking"):
                sk_rank = sklearn_ranking(z, y, self.kind)
            del z, y  # every neuron in float64: not kept while the classifiers fit
        rows = self.evaluate(self._methods(ranking, stats_rank, sk_rank, self.ks, k), k)
        k_cv = self._k_by_cv()
        for row in (row for target_rows in rows for row in target_rows):  # no curve: ks is [k]
            curve = row["by_k"].get("selected", {})
            row["scores"][SELECTED_CV] = curve.get(str(k_cv), row["scores"]["selected"])
        meta = {"mode": "single-source", "seeds": self.seeds, "k_cv": k_cv, **how}
        record_rows(meta, rows, self._rows_used(sklearn_ranking=sklearn_baseline))
        return [self._result(k, ranking[:k], r, meta, [path]) for r in rows]

    def _k_by_cv(self) -> int:
        """The k whose statistics-only top-k classifier scores best in the source's own
        cross-validation (its C search's folds; ties to the smaller k): k chosen on the source alone.
        Not the selection's own CV: it judges a ranking computed from the same rows, so it prefers the
        neurons fitted to them and picked k = 1,000 where that collapses (docs/method.md, section 1)."""
        scores = {kk: self.cv_scores["stats_topk", kk, None] for kk in self.ks}
        return max(scores, key=lambda kk: (scores[kk], -kk))

    def multi(self, k: int, choose_k: bool) -> list[TransferResult]:
        """Several sources: the scenarios rank the neurons and judge each k of `ks` and every neuron
        (`scenario_ranking`, `choose_k`) unless `choose_k` is False. When every neuron wins (only
        offered when every source is read whole), `meta["k_choice"]` says so and the selection is
        every neuron: its rows' selected, stats_topk and random scores are those of the classifier
        on every neuron (fitted again on the same columns, so equal)."""
        with single_threaded_blas():
            ranking, scenarios = scenario_ranking(self.srcs, self.ks, self.seed, self.budget, self.device)
        scenario_rows = scenarios.pop("rows_used", None)
        # streamed: every neuron is not offered (its k-neuron fits could not read every column)
        offered = self.rows is None
        headline = choose_k_by(scenarios, self.p, offered) if choose_k else k
        with stage("fisher ranking"):
            stats_rank = stats_ranking(self.srcs, self.device)
        plan = self._methods(ranking, stats_rank, None, [headline], headline)
        plan["selected"] = [(kk, ranking[:kk], None) for kk in self.ks]
        every = headline == self.p
        if every:  # every ranking's top p is every neuron, and so is every random draw of p of p
            ranking = np.arange(self.p)
            plan["selected"].append((headline, ranking, None))
            plan["stats_topk"], plan["random"] = [(headline, ranking, None)], [(headline, ranking, 0)]
        rows = self.evaluate(plan, headline)
        meta = {"mode": "multi-source", "k_chosen": headline, "scenarios": scenarios, "seeds": self.seeds}
        meta["k_choice"] = _k_choice(choose_k, every, offered)
        record_rows(meta, rows, self._rows_used(scenarios=scenario_rows))
        return [self._result(headline, ranking[:headline], r, meta) for r in rows]

    def _result(self, k, selected, rows, meta, paths=()) -> TransferResult:
        return TransferResult(
            sources=[d.name for d in self.srcs], target=rows[0]["target"], metric=self.metric, k=k,
            ks=self.ks, layers=self.layers, hidden=self.hidden, selected=np.asarray(selected),
            rows=rows, meta=meta, paths=list(paths),
        )  # fmt: skip
