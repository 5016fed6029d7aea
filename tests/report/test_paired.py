"""Paired comparisons over transfer pairs (engine/report/_paired.py) against scipy's permutation test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test

from neurosel.errors import InputError
from neurosel.report._paired import EXACT_PAIRS, SAMPLED_FLIPS, paired_difference


def scipy_sign_flip_p(d: np.ndarray) -> float:
    """scipy's exact one-sample permutation test of the mean: every sign pattern of d."""
    return permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue


@pytest.mark.parametrize("n", [3, 6, 12])
def test_exact_p_value_equals_scipy(n):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.6, 0.9, n)
    b = a - rng.normal(0.01, 0.02, n)
    got = paired_difference(a, b)
    d = a - b
    assert got.p_value == pytest.approx(scipy_sign_flip_p(d), abs=1e-12)
    assert got.mean == pytest.approx(d.mean(), abs=1e-15)
    assert (got.wins, got.ties, got.losses) == (int((d > 0).sum()), 0, int((d < 0).sum()))
    assert got.pairs == n


def test_all_pairs_won_gives_the_smallest_exact_p():
    a = np.linspace(0.7, 0.8, 12)
    got = paired_difference(a, a - 0.01)
    assert got.wins == 12 and got.p_value == pytest.approx(2 / 2**12)


def test_rounded_scores_tie_and_count_for_neither_side():
    a = [0.8335, 0.81, 0.79, 0.802]
    b = [0.8335, 0.80, 0.80, 0.802]  # two exact ties, one win, one loss of the same size
    got = paired_difference(a, b)
    assert (got.wins, got.ties, got.losses) == (1, 2, 1)
    assert got.mean == pytest.approx(0.0, abs=1e-15)
    assert got.p_value == 1.0  # every sign pattern is as extreme as a zero sum


def test_many_pairs_are_sampled_reproducibly_and_agree_with_the_exact_count():
    n = EXACT_PAIRS + 2
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.0, 1.0, n), rng.normal(0.3, 1.0, n)
    first, again = paired_difference(a, b, seed=3), paired_difference(a, b, seed=3)
    assert first == again
    exact = scipy_sign_flip_p(a - b)  # 2**18 patterns: scipy enumerates them all
    # a share estimated from SAMPLED_FLIPS draws: within 5 binomial standard errors of the exact one
    assert abs(first.p_value - exact) <= 5 * np.sqrt(exact * (1 - exact) / SAMPLED_FLIPS) + 1e-5


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0.1, 0.2], [0.1], "2 and 1 values"),
        ([], [], "no pairs"),
        ([0.1, np.nan], [0.1, 0.2], "NaN or infinite"),
    ],
)
def test_bad_input_names_the_problem(a, b, message):
    with pytest.raises(InputError, match=message):
        paired_difference(a, b)
