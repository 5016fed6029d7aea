"""The statistics pass's partial result and its associative merge: the project's one moment algebra.

A partial holds, per class and neuron, the count, mean and centred second moment (M2) of the
finite values; min, max and non-finite counts per neuron; optionally co-moments with a numeric
label, and for the AUROC each neuron's value keys (CPU, `KeyColumns`) or key histograms (GPU).
Two partials of disjoint rows merge with Chan's formulas
(neurosel.kernels.common.chan_merge / chan_comerge, the same lines the GPU kernels run compiled), so any
split of the rows into chunks, merged in any tree, gives the same statistics up to rounding.
Arrays may be numpy or cupy: a merge stays on the device of its inputs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurosel.devices import array_module, to_host
from neurosel.kernels.common import chan_comerge, chan_merge

CO_FIELDS = ("n", "mx", "my", "qx", "qy", "cxy")


@dataclass
class CoMoments:
    """Per-neuron co-moments with a numeric label: count, means and M2 of x and y, and C_xy."""

    n: Any
    mx: Any
    my: Any
    qx: Any
    qy: Any
    cxy: Any

    def merge(self, other: CoMoments) -> CoMoments:
        return CoMoments(*chan_comerge.py_func(*self.parts(), *other.parts()))

    def parts(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in CO_FIELDS)


@dataclass
class KeyColumns:
    """AUROC keys of some neurons over disjoint sets of rows: segments (first row, keys (G, rows)),
    in any order; a merge joins the lists (the arrays are not copied). An in-place fold writes its
    blocks' keys into one `buffer` (G, all rows of the pass) and keeps views of it as segments, so
    that the keys are in row order without a copy; the buffer is not pickled (a cluster task sends
    its segments only)."""

    segments: list[tuple[int, np.ndarray]]
    buffer: np.ndarray | None = None

    def merge(self, other: KeyColumns) -> KeyColumns:
        return KeyColumns(
            self.segments + other.segments, self.buffer if self.buffer is not None else other.buffer
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"segments": self.segments, "buffer": None}

    def whole(self) -> tuple[np.ndarray, int]:
        """Every row's keys in row order (G, rows), and the first row: the buffer itself when the
        segments tile it from its first row to its last, else a copy."""
        order = sorted(self.segments, key=lambda s: s[0])
        if len(order) == 1:
            return np.ascontiguousarray(order[0][1]), order[0][0]
        base = self.buffer
        tiled = base is not None and all(k.base is base for _, k in order)
        tiled = tiled and order[0][0] == 0 and sum(k.shape[1] for _, k in order) == base.shape[1]
        if tiled and all(a + k.shape[1] == b for (a, k), (b, _) in itertools.pairwise(order)):
            return base, 0
        return np.concatenate([k for _, k in order], axis=1), order[0][0]


@dataclass
class Moments:
    """Per-class count/mean/M2 (K, F), min/max/non-finite (F,), optional AUROC keys (CPU) or key
    histograms (2, F, bins; GPU) and co-moments."""

    count: Any
    mean: Any
    m2: Any
    lo: Any
    hi: Any
    bad: Any
    hist: Any | None = None
    co: CoMoments | None = None
    keys: KeyColumns | None = None

    @classmethod
    def empty(cls, classes: int, features: int, xp: Any = np) -> Moments:
        """The identity of `merge`: no rows."""
        return cls(
            count=xp.zeros((classes, features)),
            mean=xp.zeros((classes, features)),
            m2=xp.zeros((classes, features)),
            lo=xp.full(features, np.inf),
            hi=xp.full(features, -np.inf),
            bad=xp.zeros(features, dtype=np.int64),
        )

    @classmethod
    def of_summary(cls, count: np.ndarray, mean: np.ndarray, var: np.ndarray) -> Moments:
        """A partial from a finished summary (counts, means, sample variances), e.g. a domain's saved
        statistics, so that summaries of disjoint sets pool through the same `merge`."""
        count = np.asarray(count, dtype=np.float64)[None]
        m2 = np.where(count > 1, np.asarray(var) * (count - 1), 0.0)
        features = count.shape[1]
        return cls(
            count=count,
            mean=np.asarray(mean, dtype=np.float64)[None],
            m2=m2,
            lo=np.full(features, -np.inf),
            hi=np.full(features, np.inf),
            bad=np.zeros(features, dtype=np.int64),
        )

    def merge(self, other: Moments) -> Moments:
        """Combine two disjoint sets of rows; associative and, up to rounding, commutative."""
        n, mean, m2 = chan_merge.py_func(self.count, self.mean, self.m2, other.count, other.mean, other.m2)
        return Moments(
            count=n,
            mean=mean,
            m2=m2,
            lo=array_module(self.lo).minimum(self.lo, other.lo),
            hi=array_module(self.hi).maximum(self.hi, other.hi),
            bad=self.bad + other.bad,
            hist=_combine(self.hist, other.hist, lambda a, b: a + b),
            co=_combine(self.co, other.co, CoMoments.merge),
            keys=_combine(self.keys, other.keys, KeyColumns.merge),
        )

    def to_host(self) -> Moments:
        """The same partial with numpy arrays (a GPU pass's result, copied once at the end)."""

        def host(a: Any) -> Any:
            return None if a is None else to_host(a)

        co = None if self.co is None else CoMoments(*(host(a) for a in self.co.parts()))
        return Moments(
            *(host(getattr(self, f)) for f in ("count", "mean", "m2", "lo", "hi", "bad", "hist")),
            co,
            self.keys,
        )

    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Over all classes: count, mean and sample variance (ddof 1; NaN below two values)."""
        n, mean, m2 = self.count[0], self.mean[0], self.m2[0]
        for k in range(1, self.count.shape[0]):
            n, mean, m2 = chan_merge.py_func(n, mean, m2, self.count[k], self.mean[k], self.m2[k])
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(n > 1, m2 / np.maximum(n - 1, 1), np.nan)
        return n, np.where(n > 0, mean, np.nan), var


def _combine(a: Any, b: Any, merge: Any) -> Any:
    """Merge optional parts: present on both sides → merged; on one side → kept."""
    if a is None or b is None:
        return a if b is None else b
    return merge(a, b)
