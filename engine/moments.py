"""The statistics pass's partial result and its associative merge (Chan's formulas)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.comoments import comoment_merge


@dataclass
class Moments:
    """Per-class count/mean/M2 (K, F), min/max/non-finite (F,), optional key histograms and co-moments."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bad: np.ndarray
    hist: np.ndarray | None = None
    co: dict[str, np.ndarray] | None = None

    @classmethod
    def empty(cls, classes: int, features: int) -> Moments:
        zeros = np.zeros((classes, features))
        return cls(
            count=zeros,
            mean=zeros.copy(),
            m2=zeros.copy(),
            lo=np.full(features, np.inf),
            hi=np.full(features, -np.inf),
            bad=np.zeros(features, dtype=np.int64),
        )

    def merge(self, other: Moments) -> Moments:
        """Combine two disjoint sets of rows; associative and, up to rounding, commutative."""
        n = self.count + other.count
        safe = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        return Moments(
            count=n,
            mean=self.mean + delta * other.count / safe,
            m2=self.m2 + other.m2 + delta * delta * self.count * other.count / safe,
            lo=np.minimum(self.lo, other.lo),
            hi=np.maximum(self.hi, other.hi),
            bad=self.bad + other.bad,
            hist=_combine(self.hist, other.hist, np.add),
            co=_combine(self.co, other.co, comoment_merge),
        )


def _combine(a, b, merge):
    """Merge optional parts: present on both sides → merged; on one side → kept."""
    if a is None or b is None:
        return a if b is None else b
    return merge(a, b)
