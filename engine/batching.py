"""Token-budget batches over length-sorted rows: little padding, bounded memory per batch."""

from __future__ import annotations

import numpy as np


def plan_batches(lengths: np.ndarray, token_budget: int, max_rows: int) -> list[np.ndarray]:
    """Split row positions into batches, longest first, each with rows × longest ≤ token_budget.

    Rows are ordered by descending length (ties keep input order), so each batch pads only to
    its own first row and the largest batch, the one most likely to run out of memory, runs first.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches = []
    start = 0
    while start < order.size:
        longest = int(lengths[order[start]])
        rows = max(1, min(max_rows, token_budget // max(longest, 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches
