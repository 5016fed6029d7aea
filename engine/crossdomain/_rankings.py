"""Neuron rankings a transfer can select from: the sparse path's entry order, stability selection
over half-subsamples, a statistics-only score, their combination (neurosel's default), and the
scikit-learn recipe (liblinear L1 path) used as the side-by-side baseline."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from neurosel.crossdomain._domains import Activations
from neurosel.crossdomain._paths import BY_ENTRY, fill_by_stats, path_datafit, trusted_size
from neurosel.defaults import RANKINGS
from neurosel.devices import Device
from neurosel.errors import InputError
from neurosel.solver import (
    PENALTIES,
    STABILITY,
    SUBSAMPLE_TOL,
    SUBSAMPLES,
    Importance,
    Stability,
    importance,
    method_for,
    rank_by_entry,
    stability_selection,
)
from neurosel.stats import neuron_stats
from neurosel.store import cached

SKLEARN_CS = 20  # points of the scikit-learn L1 path, like neurosel's default path
SKLEARN_RATIO = 100.0  # from the smallest C with a non-zero coefficient up by this factor
# How a single-source transfer ranks the neurons it selects (docs/method.md, section 1, has the
# evidence): entry into the sparse path; entry into an elastic-net path (l1_ratio ELASTIC_L1_RATIO);
# stability selection's frequency over half-subsamples; the statistics-only score; the mean of the
# stability and statistics ranks; or "auto" (the default), which picks by the labels' kind the rule
# that leaving one domain out chose: AUTO_RANKING. Every rule but the statistics-only one ranks the
# first `trusted_size(n)` neurons of a source of n examples and leaves the rest to the statistics
# score (engine/crossdomain/_paths.py, EXAMPLES_PER_NEURON).
AUTO_RANKING = {"class": "stability+fisher", "numeric": "elastic-net"}
ELASTIC_L1_RATIO = 0.1  # the "elastic-net" rule's path: 10% L1, so correlated neurons enter together


def sparse_importance(store, kind: str, support: int, options: dict[str, Any]) -> Importance:
    """neurosel's ranking (`.ranking`): entry into the sparse path, run until `support` neurons have
    entered. A path that stops short warns, naming the store; the warning is left to the caller's
    filters, and what it says is also kept in the result (engine/crossdomain/_paths.py)."""
    options = {"target_support": support, **options}
    return importance(store, method_for(kind), **options)


def resolve_ranking(rule: str, kind: str) -> str:
    """The rule `rule` stands for on labels of `kind` ("class" or "numeric"): "auto" is
    AUTO_RANKING's pick, every other rule itself."""
    if rule not in RANKINGS:
        raise InputError(f"ranking {rule!r}: use one of {', '.join(RANKINGS)}")
    return AUTO_RANKING[kind] if rule == "auto" else rule


def path_options(rule: str, options: dict[str, Any]) -> dict[str, Any]:
    """The sparse-path options `rule` (resolved) ranks from: "elastic-net" sets l1_ratio to
    ELASTIC_L1_RATIO unless the caller's options set one; the other rules take them as given."""
    if rule == "elastic-net" and "l1_ratio" not in options:
        return {**options, "l1_ratio": ELASTIC_L1_RATIO}
    return options


def selection_ranking(
    rule: str,
    src: Activations,
    imp: Importance,
    stats_rank: np.ndarray,
    support: int,
    seed: int = 0,
    fill: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ranking a single-source transfer selects from under `rule` (RANKINGS), and what it did.

    `imp` is the source's sparse path (run to `support` neurons, with `path_options(rule, ...)`):
    its entry order is the "entry" and "elastic-net" rules and breaks stability's ties;
    `stats_rank` is the statistics-only ranking. A path-based rule ranks the first
    `trusted_size(src.n)` neurons and `stats_rank` the rest (`fill=False`, for comparisons only:
    the rule's own order throughout). `meta["ranking"]` is the rule resolved, `meta["trusted"]`
    how many it ranked (absent for "fisher")."""
    rule = resolve_ranking(rule, src.kind)
    if rule == "fisher":
        return stats_rank, {"ranking": rule}
    record: dict[str, Any] = {"ranking": rule}
    if rule in BY_ENTRY:
        ranking = imp.ranking
    else:
        stable = path_stability(src, imp, support, seed)
        record["subsamples"] = stable.subsamples
        record["stable_neurons"] = int((stable.frequency >= 0.5).sum())
        ranking = stable.ranking if rule == "stability" else mean_rank(stable.ranking, stats_rank)
    if not fill:
        return ranking, record
    trusted = trusted_size(src.n)
    record["trusted"] = trusted
    return fill_by_stats(ranking, stats_rank, trusted), record


def path_stability(src: Activations, imp: Importance, support: int | None, seed: int = 0) -> Stability:
    """Stability selection on the source with the path's own loss, penalty, l1_ratio and λ grid;
    saved in the store (stability/<key>) and read back by later transfers and fingerprints."""
    # the halves' tolerance keys the result too: frequencies saved with another one are not reused
    params = {
        "path": imp.meta["key"], "subsamples": SUBSAMPLES, "seed": seed, "target_support": support,
        "tol": SUBSAMPLE_TOL,
    }  # fmt: skip

    def compute(key: str) -> Stability:
        datafit = path_datafit(imp, src.y, src.store.meta.get("label_names"))
        return stability_selection(
            src.rows, src.y, datafit, PENALTIES[imp.penalty](), imp.lambdas, imp.ranking,
            l1_ratio=imp.meta["params"]["l1_ratio"], target_support=support, seed=seed, tol=SUBSAMPLE_TOL,
            stratify=src.kind == "class", weights=datafit.weights,
        )  # fmt: skip

    return cached(src.store, STABILITY, params, compute)


def rank_by_mean(ranks: list[np.ndarray]) -> np.ndarray:
    """Flat ids by their mean rank over `ranks` (each: a rank per neuron, larger = better), highest
    first, ties by id: the one mean-rank rule (stability+fisher, the statistics-only score over
    domains, the multi-source importance)."""
    mean = np.mean(ranks, axis=0)
    return np.lexsort((np.arange(mean.size), -mean))


def mean_rank(*rankings: np.ndarray) -> np.ndarray:
    """Flat ids by their mean position over `rankings` (best first), ties by id."""
    ranks = []
    for ranking in rankings:
        position = np.empty(ranking.size)
        position[ranking] = np.arange(ranking.size)
        ranks.append(-position)  # an earlier position is a larger rank
    return rank_by_mean(ranks)


def stats_ranking(domains: list[Activations], device: str | Device = "cpu") -> np.ndarray:
    """Top neurons by a statistics-only score (Fisher for classes, |Pearson r| for numeric labels),
    averaged over domains by rank; ties by id."""
    ranks = []
    for d in domains:
        stats = neuron_stats(d.store, by="label", device=device, progress=False, auroc=False)
        value = stats.fisher if d.kind == "class" else np.abs(stats.pearson)
        ranks.append(rankdata(np.nan_to_num(value.ravel(), nan=0.0, posinf=np.finfo(float).max)))
    return rank_by_mean(ranks)


def sklearn_ranking(z: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """What a scikit-learn user would write: one liblinear L1 fit per C on a log grid (or
    `lasso_path` for numeric labels), neurons ranked by the first C where they are non-zero.

    The fits run one after another: liblinear draws its coordinate order from the C library's one
    global random generator (seeded per fit), so fits on concurrent threads interleave its draws and
    give different coefficients (measured: the Amazon books recipe moved by up to 1.8 points)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, lasso_path
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import l1_min_c

    if kind == "class":
        cs = l1_min_c(z, y, loss="log") * np.geomspace(1.0, SKLEARN_RATIO, SKLEARN_CS)
        coefs = []
        for c in cs:
            model = LogisticRegression(solver="liblinear", l1_ratio=1.0, C=c, max_iter=1000, random_state=0)
            if np.unique(y).size > 2:  # liblinear is binary only: one-vs-rest, as its users do
                model = OneVsRestClassifier(model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # liblinear's chatter at small C
                fitted = model.fit(z, y)
            coef = (
                np.vstack([e.coef_ for e in fitted.estimators_])
                if hasattr(fitted, "estimators_")
                else fitted.coef_
            )
            coefs.append(np.linalg.norm(np.atleast_2d(coef), axis=0))
        path = np.array(coefs)
    else:
        _, coef, _ = lasso_path(z, y - y.mean(), alphas=SKLEARN_CS, eps=1 / SKLEARN_RATIO)
        path = np.abs(coef).T
    entered = path != 0
    entry = np.where(entered.any(0), entered.argmax(0), -1)
    return rank_by_entry(entry, path[-1])
