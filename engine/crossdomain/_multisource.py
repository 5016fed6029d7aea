"""Multi-source neuron ranking and the choice of k from single-source transfer scenarios (method.md,
section 3).

Every ordered pair of labelled sources (Si → Sj) is a scenario: a dense classifier fitted on Si
(all neurons, standardised with Si's statistics) gives each neuron's transfer importance on Sj,
the mean signed contribution of the neuron to the correct margin there,
mean over Sj of (2y − 1) · w_n · z_n (for K classes, w_{n,y} − mean_k w_{n,k}; for scores, the
standardised target in place of 2y − 1). Neurons are ranked by their mean normalised rank over
scenarios. (Averaging that rank with the statistics-only score's was measured and not kept: it
helped STS-B and hurt SICK at the chosen k, docs/method.md, section 3.)

k is chosen by the scenarios' held-out score of selections Sj's labels did not shape: Si's own
statistics-only top k, and every neuron (Si's dense classifier), each scored on Sj under both
normalisations. The selection itself is not judged there: its ranking read Sj's labels, so its
held-out score flatters small k (measured in docs/method.md, section 3). The best k replaces every
neuron only when it beats it by more than one standard error over the scenarios (`choose_k`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.stats import rankdata

from neurosel.crossdomain import _fit_pool
from neurosel.crossdomain._classifier import Fitted, Tally, fit
from neurosel.crossdomain._domains import (
    IN_CORE_BYTES,
    Activations,
    Columns,
    column_sets,
    dense_matrix,
    sample_rows,
    scaled,
    standardised_columns,
)
from neurosel.crossdomain._fit_pool import FitJob
from neurosel.crossdomain._rankings import rank_by_mean, stats_ranking
from neurosel.crossdomain._saved_fits import saved_fits
from neurosel.devices import Device
from neurosel.solver import metric_for

EVERY = "all"  # the scenarios' key of the classifier on every neuron, a candidate beside each k
SCENARIO = "scenario"  # the first part of the scenario fits' keys among a store's saved classifiers


def contribution(
    coef: np.ndarray, z: np.ndarray, y: np.ndarray, kind: str, classes: np.ndarray
) -> np.ndarray:
    """Each neuron's mean signed contribution to the correct margin on (z, y): (neurons,)."""
    if kind == "numeric":
        t = (y - y.mean()) / (y.std() or 1.0)
        return (t @ z) / len(y) * coef[0]
    if coef.shape[0] == 1:  # binary: one weight vector, margin towards classes[1]
        sign = np.where(y == classes[1], 1.0, -1.0)
        return (sign @ z) / len(y) * coef[0]
    idx = np.searchsorted(classes, y)
    centred = coef - coef.mean(axis=0)
    return np.einsum("in,in->n", z, centred[idx]) / len(y)


def scenario_ranking(
    srcs: list[Activations],
    ks: list[int],
    seed: int,
    in_core_bytes: int = IN_CORE_BYTES,
    device: str | Device = "cpu",
) -> tuple[np.ndarray, dict]:
    """Rank neurons by their mean transfer importance over all ordered source pairs; score each
    candidate k, and every neuron, there.

    `scenarios["by_k"]` maps each k, and EVERY, to the mean held-out score over the scenarios and
    both normalisations (Sj standardised with Si's statistics, then with its own) of a classifier
    fitted on Si with Si's own statistics-only top k (EVERY: Si's dense classifier); `pairs` has
    each scenario's scores by normalisation. A source read whole (its float32 matrix fits
    `in_core_bytes`) is used whole. A streamed one has its dense classifier fitted on a stratified
    row sample (the rows the dense classifiers saw are then `scenarios["rows_used"]`), its
    contributions and held-out scores summed over row blocks, and the columns of every k read once."""
    kind = srcs[0].kind
    classes = np.unique(np.concatenate([d.y for d in srcs])) if kind == "class" else None
    samples = [sample_rows([d], in_core_bytes, seed) for d in srcs]
    dense = [_dense_fit(d, rows, seed) for d, rows in zip(srcs, samples, strict=True)]
    pairs = [(i, j) for i in range(len(srcs)) for j in range(len(srcs)) if i != j]
    ranks = []
    for i, j in pairs:  # Sj as Si's classifier sees it
        c = _contribution(dense[i].coef, srcs[j], srcs[i].mean, srcs[i].std, kind, classes)
        ranks.append(rankdata(c) / c.size)
    ranking = rank_by_mean(ranks)
    own = [stats_ranking([d], device) for d in srcs]  # each source's statistics-only ranking
    scenarios = held_out_scores(srcs, own, dense, ks, seed, in_core_bytes)
    if any(rows is not None for rows in samples):  # the rows the dense classifiers saw, together
        used = [d.n if rows is None else rows[0].size for d, rows in zip(srcs, samples, strict=True)]
        scenarios["rows_used"] = int(sum(used))
    return ranking, scenarios


def held_out_scores(
    srcs: list[Activations],
    own: list[np.ndarray],
    dense: list[Fitted],
    ks: list[int],
    seed: int,
    in_core_bytes: int = IN_CORE_BYTES,
) -> dict:
    """Every scenario's held-out score of Si's top k by `own[i]` (fitted on Si standardised with its
    statistics) and of `dense[i]` (EVERY), on Sj standardised with Si's statistics ("source") and
    with its own ("target"); "by_k": their mean over scenarios and normalisations per candidate."""
    metric = metric_for(srcs[0].kind)
    union = np.concatenate([rank[: max(ks)] for rank in own])
    columns = column_sets(srcs, union, in_core_bytes, "the scenarios' k-neuron classifiers")
    pairs = [(i, j) for i in range(len(srcs)) for j in range(len(srcs)) if i != j]
    curves = {pair: {"source": {}, "target": {}} for pair in pairs}
    top_k = [_top_k_fits(d, columns[i], own[i], ks, seed) for i, d in enumerate(srcs)]
    for k in ks:
        for i, d in enumerate(srcs):
            cols, fitted = own[i][:k], top_k[i][SCENARIO, k]
            for j in (j for j in range(len(srcs)) if j != i):
                x, other = columns[j](cols), srcs[j]
                for norm, (mean, std) in (("source", (d.mean, d.std)), ("target", (other.mean, other.std))):
                    tally = Tally(fitted, other.n)
                    tally.add(0, scaled(x, mean[cols], std[cols]), other.y)
                    curves[i, j][norm][str(k)] = tally.result(other.y)[metric]
    for i, j in pairs:  # every neuron: Si's dense classifier, over Sj's row blocks
        d, other = srcs[i], srcs[j]
        tallies = {"source": Tally(dense[i], other.n), "target": Tally(dense[i], other.n)}
        for start, stop, x in other.blocks():
            tallies["source"].add(start, scaled(x, d.mean, d.std), other.y[start:stop])
            tallies["target"].add(start, scaled(x, other.mean, other.std), other.y[start:stop])
        for norm, tally in tallies.items():
            curves[i, j][norm][EVERY] = tally.result(other.y)[metric]
    by_pair = [{"source": srcs[i].name, "target": srcs[j].name, "by_k": curves[i, j]} for i, j in pairs]
    candidates = [*map(str, ks), EVERY]
    by_k = {
        c: float(np.mean([p["by_k"][n][c] for p in by_pair for n in ("source", "target")]))
        for c in candidates
    }
    return {"pairs": by_pair, "by_k": by_k, "metric": metric}


def _dense_fit(d: Activations, rows: list[np.ndarray] | None, seed: int) -> Fitted:
    """Si's classifier on every neuron (on `rows`, None: all), standardised with its own statistics:
    read back from its store when saved there, else fitted and saved (`saved_fits`)."""

    def compute() -> dict[tuple, Fitted]:
        z, y = dense_matrix([d], rows, [(d.mean, d.std)])
        return {(SCENARIO, EVERY): fit(z, y, d.kind, seed)}

    jobs = {(SCENARIO, EVERY): ("fit", np.arange(d.p))}
    return saved_fits([d], [(d.mean, d.std)], rows, seed, jobs, compute)[SCENARIO, EVERY]


def _top_k_fits(d: Activations, columns: Columns, ranking: np.ndarray, ks: list[int], seed: int) -> dict:
    """Si's classifiers on its own top k (`ranking`) for each k, standardised with its statistics,
    keyed (SCENARIO, k): read back from its store when saved there, else fitted, on the classifier
    workers when they repay it (engine/crossdomain/_fit_pool.py), and saved."""
    jobs = {(SCENARIO, k): ("fit", ranking[:k]) for k in ks}

    def compute() -> dict[tuple, Fitted]:
        fits = {
            key: FitJob(
                partial(fit, seed=seed),
                partial(standardised_columns, [columns], [(d.mean, d.std)], cols),
                d.y,
                d.kind,
                d.n * cols.size,
            )
            for key, (_, cols) in jobs.items()
        }
        return _fit_pool.run(fits, lambda: None)

    return saved_fits([d], [(d.mean, d.std)], None, seed, jobs, compute)


def choose_k(scenarios: dict, p: int, every: bool = True) -> int:
    """The headline k from `held_out_scores`' result: the k of ks with the best mean held-out
    score (ties to the smaller), unless `every` and its advantage over every neuron (EVERY, all
    `p` neurons), paired by scenario and normalisation, is not above one standard error of those
    differences: then every neuron. The best of several noisy k is the luckiest of them (its
    score is biased up), and a selection must beat the model that needs no ranking by more than
    the scenarios' noise to replace it."""
    by_k = {c: v for c, v in scenarios["by_k"].items() if c != EVERY}
    best = max(by_k, key=lambda c: (by_k[c], -int(c)))
    if not every or EVERY not in scenarios["by_k"]:
        return int(best)
    return int(best) if advantage(scenarios, best) > 0 else p


def advantage(scenarios: dict, k: str) -> float:
    """How far the mean held-out score of `k` is above every neuron's, less one standard error of
    their paired differences (over scenarios and normalisations); > 0: `k` beats every neuron."""
    diff = np.array([s[k] - s[EVERY] for pair in scenarios["pairs"] for s in pair["by_k"].values()])
    return float(diff.mean() - diff.std(ddof=1) / np.sqrt(diff.size))


def _contribution(
    coef: np.ndarray, domain: Activations, mean: np.ndarray, std: np.ndarray, kind: str, classes: np.ndarray
) -> np.ndarray:
    """`contribution` on every row of `domain` standardised with (mean, std): on the whole matrix in
    core, else summed over the store's row blocks (every term is a sum over rows)."""
    if domain.in_core:
        return contribution(coef, scaled(domain.x, mean, std), domain.y, kind, classes)
    y, total = domain.y, np.zeros(domain.p)
    if kind == "numeric" or coef.shape[0] == 1:
        if kind == "numeric":
            sign = (y - y.mean()) / (y.std() or 1.0)
        else:
            sign = np.where(y == classes[1], 1.0, -1.0)
        for start, stop, x in domain.blocks():
            total += sign[start:stop] @ scaled(x, mean, std)
        return total / len(y) * coef[0]
    centred = (coef - coef.mean(axis=0))[np.searchsorted(classes, y)]
    for start, stop, x in domain.blocks():
        total += np.einsum("in,in->n", scaled(x, mean, std), centred[start:stop])
    return total / len(y)
