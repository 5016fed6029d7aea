"""Selecting neurons from an importance path, and the per-layer fingerprint of a selection.

Rules (method.md, section 1): `top-k` takes the k highest-ranked neurons (path entry, then |w|,
then id); `support` takes the neurons with a non-zero weight at one λ of the path; `mass` is the
NeuroX-style rule: at one λ, the fewest neurons whose |w| (group norm for K classes) adds up to a
fraction `mass` of the total weight.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from neurosel.defaults import DEFAULT_K, RULES
from neurosel.errors import InputError, SupportWarning
from neurosel.params import Instance, Integral, Interval, OneOf, Optional, Real, validated
from neurosel.solver._importance import Importance

# The options of `select`, checked before anything is selected (neurosel.params); k and at are
# checked against the path's size in the body.
SELECT_PARAMS = {
    "imp": Instance(Importance, what="an Importance", fix="compute it with neurosel.importance"),
    "k": Optional(Interval(Integral, 1, None)),
    "rule": OneOf(*RULES),
    "at": Optional(Interval(Integral)),
    "mass": Interval(Real, 0, 1, closed="right", fix="a fraction of the total weight"),
}


@dataclass(frozen=True)
class Selection:
    """Selected neurons as flat ids (position × hidden + unit over the stored layers), in rank order."""

    neurons: np.ndarray
    layers: tuple[int, ...]
    hidden: int

    def fingerprint(self) -> np.ndarray:
        """Percentage of the selected neurons in each stored layer; sums to 100."""
        return layer_counts(self.neurons, self.hidden, len(self.layers))[1]

    def units(self) -> list[tuple[int, int]]:
        """(model layer id, unit) of each selected neuron, in rank order."""
        return [(self.layers[n // self.hidden], int(n % self.hidden)) for n in self.neurons]


def layer_counts(neurons: np.ndarray, hidden: int, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """How many of `neurons` (flat ids) lie in each of `layers` stored layers, and the same as
    percentages of all of them (the fingerprint of method.md, section 4)."""
    counts = np.bincount(np.asarray(neurons) // hidden, minlength=layers)
    return counts, 100.0 * counts / max(np.asarray(neurons).size, 1)


@validated(SELECT_PARAMS)
def select(
    imp: Importance,
    k: int | None = DEFAULT_K,
    *,
    rule: str = "top-k",
    at: int | None = None,
    mass: float = 0.5,
) -> Selection:
    """Neurons chosen from `imp` by `rule`; `at` is a λ index (default: the λ whose support is closest
    to k, or the last one)."""
    total = len(imp.layers) * imp.hidden
    if k is not None and not 1 <= k <= total:
        raise InputError(f"k {k}: choose 1..{total} (the store has {total} neurons)")
    if at is not None and not -len(imp.lambdas) <= at < len(imp.lambdas):
        raise InputError(f"at {at}: the path has {len(imp.lambdas)} λs")
    if rule == "top-k":
        if k is None:
            raise InputError("rule top-k needs k")
        if k > imp.entered:
            warnings.warn(
                f"store {imp.meta.get('store', '?')}: only {imp.entered} neurons entered the path; the "
                f"other {k - imp.entered} selected are ranked by closeness to entering (run importance "
                "with target_support=k to go further)",
                SupportWarning,
                2,
            )
        chosen = imp.ranking[:k]
    else:
        if at is None:
            at = int(np.argmin(np.abs(imp.support_sizes - k))) if k is not None else -1
        weights = imp.weights(at)
        if rule == "support":
            chosen = imp.ranking[np.isin(imp.ranking, np.flatnonzero(weights))]
        else:
            order = np.lexsort((np.arange(weights.size), -weights))
            cumulative = np.cumsum(weights[order])
            if cumulative[-1] == 0:
                raise InputError(f"λ index {at}: no neuron has a weight; choose a smaller λ")
            chosen = order[: int(np.searchsorted(cumulative, mass * cumulative[-1])) + 1]
    return Selection(neurons=np.asarray(chosen).copy(), layers=imp.layers, hidden=imp.hidden)
