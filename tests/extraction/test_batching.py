"""Batch planning: every row once, budgets and padding bounds respected, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from neurosel.extraction import MAX_PADDING, padded_width, plan_batches, plan_windows


@pytest.mark.parametrize("pad_multiple", [1, 8])
@pytest.mark.parametrize("seed", range(5))
def test_batches_cover_rows_once_within_budget_and_padding(seed, pad_multiple):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 200, size=int(rng.integers(1, 3000)))
    budget, max_rows = 4096, 64
    batches = plan_batches(lengths, budget, max_rows, pad_multiple)
    order = np.concatenate(batches)
    assert np.array_equal(np.sort(order), np.arange(lengths.size))
    for rows in batches:
        width = padded_width(lengths[rows].max(), pad_multiple)
        assert rows.size <= max_rows
        assert rows.size * width <= budget or rows.size == 1
        # rows are at least 75% of the width, or fall in the width's own pad multiple
        assert lengths[rows].min() >= min(width - pad_multiple + 1, np.ceil((1 - MAX_PADDING) * width))
    # longest first, and the plan is a pure function of the lengths
    firsts = [lengths[rows[0]] for rows in batches]
    assert firsts == sorted(firsts, reverse=True)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(batches, plan_batches(lengths, budget, max_rows, pad_multiple), strict=True)
    )


def test_padding_is_far_below_pad_to_longest():
    lengths = np.r_[np.full(500, 80), np.full(500, 30), np.full(500, 5)]
    batches = plan_batches(lengths, token_budget=65536, max_rows=2048, pad_multiple=8)
    computed = sum(rows.size * padded_width(lengths[rows].max(), 8) for rows in batches)
    assert computed / lengths.sum() < 1.2  # one batch padded to 80 would be 2.1×


def test_windows_tile_the_rows_from_a_resume_point():
    lengths = np.arange(2, 102)
    windows = list(plan_windows(lengths, first=30, window=32, token_budget=500, max_rows=16, pad_multiple=1))
    assert [(s, e) for s, e, _ in windows] == [(30, 62), (62, 94), (94, 100)]
    for start, end, batches in windows:
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(end - start))
