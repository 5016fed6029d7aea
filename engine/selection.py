"""Selecting neurons from an importance ranking, and the per-layer fingerprint of a selection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.importance import Importance


@dataclass(frozen=True)
class Selection:
    """Selected neurons as flat ids (position × hidden + unit over the stored layers), in rank order."""

    neurons: np.ndarray
    layers: tuple[int, ...]
    hidden: int

    def fingerprint(self) -> np.ndarray:
        """Percentage of the selected neurons in each stored layer; sums to 100."""
        counts = np.bincount(self.neurons // self.hidden, minlength=len(self.layers))
        return 100.0 * counts / max(self.neurons.size, 1)


def select(imp: Importance, k: int = 300) -> Selection:
    """The k highest-ranked neurons (ranking: path entry, then |w|, then id)."""
    total = len(imp.layers) * imp.hidden
    if not 1 <= k <= total:
        raise InputError(f"k {k}: choose 1..{total} (the store has {total} neurons)")
    return Selection(neurons=imp.ranking[:k].copy(), layers=imp.layers, hidden=imp.hidden)
