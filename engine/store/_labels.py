"""What a store's labels may be: class ids (with names) or numeric targets, one per example."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import InputError


def label_kind(labels: np.ndarray | None) -> str | None:
    """'class' for integer class ids, 'numeric' for regression targets, None without labels."""
    if labels is None:
        return None
    return "class" if labels.dtype.kind in "iu" else "numeric"


def check_labels(
    labels: Sequence | np.ndarray | None, n: int, where: str
) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels become int64 class ids (strings map to sorted names) or float64 regression targets."""
    if labels is None:
        return None, None
    values = list(labels)
    if len(values) != n:
        raise InputError(f"{where}: {len(values)} labels for {n} texts; pass one label per text")
    if all(isinstance(v, str) for v in values):
        numbers = _parse_numbers(values)
        if numbers is not None:
            return check_labels(numbers, n, where)
        names = sorted(set(values))
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[v] for v in values], dtype=np.int64), names
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: labels mix numbers with other types; use all numbers or all strings"
        ) from None
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InputError(f"{where}: label of row {bad[0]} is missing or not finite; fix or drop it")
    if np.all(array == np.round(array)) and all(isinstance(v, (bool, int, np.integer)) for v in values):
        return array.astype(np.int64), None
    return array, None


def _parse_numbers(values: list[str]) -> list | None:
    """Cells of a delimited file are strings: all-integer or all-number strings become numbers."""
    for kind in (int, float):
        try:
            return [kind(v) for v in values]
        except ValueError:
            continue
    return None
