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

from engine.crossdomain._classifier import fit, metric_of, score
from engine.crossdomain._domains import Activations, standardise


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


def scenario_ranking(srcs: list[Activations], ks: list[int], seed: int) -> tuple[np.ndarray, dict]:
    """Rank neurons by mean transfer importance over all ordered source pairs; score each k there."""
    kind, metric = srcs[0].kind, metric_of(srcs[0].kind)
    classes = np.unique(np.concatenate([d.y for d in srcs])) if kind == "class" else None
    own = [standardise(d, d.mean, d.std) for d in srcs]
    dense = [fit(z, d.y, kind, seed) for z, d in zip(own, srcs, strict=True)]
    pairs = [(i, j) for i in range(len(srcs)) for j in range(len(srcs)) if i != j]
    ranks, views = [], {}
    for i, j in pairs:
        views[i, j] = standardise(srcs[j], srcs[i].mean, srcs[i].std)  # Sj as Si's classifier sees it
        c = contribution(dense[i].coef, views[i, j], srcs[j].y, kind, classes)
        ranks.append(rankdata(c) / c.size)
    combined = np.mean(ranks, axis=0)
    ranking = np.lexsort((np.arange(combined.size), -combined))
    curves = {pair: {} for pair in pairs}
    for k in ks:
        cols = ranking[:k]
        for i in range(len(srcs)):
            fitted = fit(own[i][:, cols], srcs[i].y, kind, seed)
            for j in (j for j in range(len(srcs)) if j != i):
                curves[i, j][str(k)] = score(fitted, views[i, j][:, cols], srcs[j].y)[metric]
    by_pair = [{"source": srcs[i].name, "target": srcs[j].name, "by_k": curves[i, j]} for i, j in pairs]
    by_k = {str(k): float(np.mean([p["by_k"][str(k)] for p in by_pair])) for k in ks}
    return ranking, {"pairs": by_pair, "by_k": by_k, "metric": metric}
