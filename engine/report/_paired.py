"""Paired comparisons over an experiment's transfer pairs: is the selection's score above a
baseline's pair by pair, beyond what chance in the signs of the differences would give?

Pairs share their source and target, so the honest test compares the two methods within each pair:
the differences d_i = a_i − b_i, their mean, how many pairs each side wins, and the two-sided
sign-flip permutation p-value of the mean (under "no difference", each d_i is as likely to have the
other sign). With a dozen pairs, a mean difference of a few tenths of a point is usually within
what the signs allow; the report says so instead of calling 0.805 against 0.808 a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurosel.errors import InputError

EXACT_PAIRS = 16  # up to 2**16 sign patterns are enumerated; with more pairs they are sampled
SAMPLED_FLIPS = 100_000
TIE = 1e-12  # differences this small are ties: scores are rounded, so equal ones are common


@dataclass(frozen=True)
class PairedDifference:
    """a − b over paired values: the mean difference, how many pairs each side wins, and the
    two-sided sign-flip permutation p-value of the mean difference (exact up to EXACT_PAIRS)."""

    pairs: int
    mean: float
    wins: int  # pairs where a > b
    ties: int
    losses: int  # pairs where a < b
    p_value: float


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, seed: int = 0
) -> PairedDifference:
    """Compare paired scores `a` and `b` (one of each per pair).

    p = the share of sign patterns s (all 2**n when n ≤ EXACT_PAIRS, else SAMPLED_FLIPS seeded
    draws, counted as (#extreme + 1) / (draws + 1)) with |Σ s_i d_i| ≥ |Σ d_i|. Differences of
    zero are ties: their sign does not change the sum, so they count for neither side.
    """
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.size != y.size:
        raise InputError(f"a, b: {x.size} and {y.size} values; pass one of each per pair")
    if x.size == 0:
        raise InputError("a, b: no pairs to compare")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("a, b: a score is NaN or infinite; compare only pairs that have both scores")
    d = x - y
    d[np.abs(d) <= TIE] = 0.0
    observed = abs(float(d.sum()))
    slack = 1e-9 * max(1.0, float(np.abs(d).sum()))  # sums equal to the observed one count as extreme
    n = d.size
    if n <= EXACT_PAIRS:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        sums = (1 - 2 * bits) @ d
        p = np.count_nonzero(np.abs(sums) >= observed - slack) / sums.size
    else:
        rng = np.random.default_rng(seed)
        extreme = 0
        for start in range(0, SAMPLED_FLIPS, 10_000):
            signs = rng.choice((-1.0, 1.0), size=(min(10_000, SAMPLED_FLIPS - start), n))
            extreme += int(np.count_nonzero(np.abs(signs @ d) >= observed - slack))
        p = (extreme + 1) / (SAMPLED_FLIPS + 1)
    return PairedDifference(
        pairs=n,
        mean=float(d.mean()),
        wins=int(np.count_nonzero(d > 0)),
        ties=int(np.count_nonzero(d == 0)),
        losses=int(np.count_nonzero(d < 0)),
        p_value=float(p),
    )
