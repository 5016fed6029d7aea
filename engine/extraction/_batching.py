"""Token-budget batches over length-sorted rows: little padding, bounded memory per batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAX_PADDING = 0.25  # a batch takes rows at least 75% as long as its padded width


def padded_width(length: int, pad_multiple: int) -> int:
    """Sequence length a batch whose longest row has `length` tokens is padded to."""
    return -(-int(length) // pad_multiple) * pad_multiple


def plan_batches(
    lengths: np.ndarray, token_budget: int, max_rows: int, pad_multiple: int = 1
) -> list[np.ndarray]:
    """Split row positions into batches, longest first, each within the token budget.

    Rows are ordered by descending length (ties keep input order), so each batch pads only to its
    own first row and the largest batch, the one most likely to run out of memory, runs first. A
    batch stops at `max_rows`, at `rows × width > token_budget`, or at the first row shorter than
    (1 − MAX_PADDING) of its width that also needs less padding to a smaller multiple: padding beyond
    what `pad_multiple` forces stays under MAX_PADDING of the computed tokens.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    descending = -np.asarray(lengths)[order]  # ascending, for searchsorted
    batches = []
    start = 0
    while start < order.size:
        width = padded_width(-descending[start], pad_multiple)
        shortest = min(width - pad_multiple + 1, -(-width * (1 - MAX_PADDING) // 1))
        cap = max(1, min(max_rows, token_budget // width))
        end = min(start + cap, int(np.searchsorted(descending, -shortest, side="right")))
        batches.append(order[start : max(end, start + 1)])
        start = max(end, start + 1)
    return batches


def plan_windows(
    lengths: np.ndarray, first: int, window: int, token_budget: int, max_rows: int, pad_multiple: int
) -> Iterator[tuple[int, int, list[np.ndarray]]]:
    """(start, end, batches) for each window of rows from `first`; batch rows are window-relative."""
    for start in range(first, lengths.size, window):
        end = min(start + window, lengths.size)
        yield start, end, plan_batches(lengths[start:end], token_budget, max_rows, pad_multiple)
