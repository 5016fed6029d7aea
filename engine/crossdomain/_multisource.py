"""Multi-source neuron ranking from single-source transfer scenarios (method.md, section 3).

Every ordered pair of labelled sources (Si → Sj) is a scenario: a dense classifier fitted on Si
(all neurons, standardised with Si's statistics) gives each neuron's transfer importance on Sj,
the mean signed contribution of the neuron to the correct margin there,
mean over Sj of (2y − 1) · w_n · z_n (for K classes, w_{n,y} − mean_k w_{n,k}; for scores, the
standardised target in place of 2y − 1). Neurons are ranked by their mean normalised rank over
scenarios, and each candidate k is scored by the scenarios' held-out-source score.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from neurosel.crossdomain._classifier import fit, score
from neurosel.crossdomain._domains import (
    IN_CORE_BYTES,
    Activations,
    column_sets,
    dense_matrix,
    sample_rows,
    scaled,
)
from neurosel.crossdomain._rankings import rank_by_mean
from neurosel.solver import metric_for


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
    srcs: list[Activations], ks: list[int], seed: int, in_core_bytes: int = IN_CORE_BYTES
) -> tuple[np.ndarray, dict]:
    """Rank neurons by mean transfer importance over all ordered source pairs; score each k there.

    A source read whole (its float32 matrix fits `in_core_bytes`) is used whole. A streamed one has
    its dense classifier fitted on a stratified row sample (the rows the dense classifiers saw are
    then `scenarios["rows_used"]`), its contributions summed over row blocks, and the top neurons
    of every k read once for all the k-neuron classifiers."""
    kind, metric = srcs[0].kind, metric_for(srcs[0].kind)
    classes = np.unique(np.concatenate([d.y for d in srcs])) if kind == "class" else None
    samples = [sample_rows([d], in_core_bytes, seed) for d in srcs]
    dense = []
    for d, rows in zip(srcs, samples, strict=True):
        z, y = dense_matrix([d], rows, [(d.mean, d.std)])
        dense.append(fit(z, y, kind, seed))
        del z
    pairs = [(i, j) for i in range(len(srcs)) for j in range(len(srcs)) if i != j]
    ranks = []
    for i, j in pairs:  # Sj as Si's classifier sees it
        c = _contribution(dense[i].coef, srcs[j], srcs[i].mean, srcs[i].std, kind, classes)
        ranks.append(rankdata(c) / c.size)
    ranking = rank_by_mean(ranks)
    columns = column_sets(srcs, ranking[: max(ks)], in_core_bytes, "the scenarios' k-neuron classifiers")
    curves = {pair: {} for pair in pairs}
    for k in ks:
        cols = ranking[:k]
        for i, d in enumerate(srcs):
            mean, std = d.mean[cols], d.std[cols]
            fitted = fit(scaled(columns[i](cols), mean, std), d.y, kind, seed)
            for j in (j for j in range(len(srcs)) if j != i):
                curves[i, j][str(k)] = score(fitted, scaled(columns[j](cols), mean, std), srcs[j].y)[metric]
    by_pair = [{"source": srcs[i].name, "target": srcs[j].name, "by_k": curves[i, j]} for i, j in pairs]
    by_k = {str(k): float(np.mean([p["by_k"][str(k)] for p in by_pair])) for k in ks}
    scenarios = {"pairs": by_pair, "by_k": by_k, "metric": metric}
    if any(rows is not None for rows in samples):  # the rows the dense classifiers saw, together
        used = [d.n if rows is None else rows[0].size for d, rows in zip(srcs, samples, strict=True)]
        scenarios["rows_used"] = int(sum(used))
    return ranking, scenarios


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
