"""Per-neuron statistics in one streaming pass over a store, saved in the store and reused.

Unlabelled (`by=None`): count, mean, variance, min, max, non-finite counts — what target-domain
normalisation needs. By class: class counts, means and variances; Welch t and Cohen's d (two
classes); ANOVA F, Fisher score and the probeless score (two or more); exact tie-aware AUROC (two
classes, from value histograms). Numeric labels: Pearson correlation with the label.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.kernels.histogram import mann_whitney
from neurosel.params import (
    Anything,
    Boolean,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    validated,
)
from neurosel.progress import bar
from neurosel.scaleout import resolve_runner
from neurosel.stats._chunks import StatsPlan
from neurosel.stats._cluster import StatsFactory
from neurosel.stats._moments import Moments
from neurosel.store import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_READERS,
    MAX_BLOCK_BYTES,
    ActivationStore,
    Encoding,
    cached,
    derived_key,
    open_store,
)

GPU_BLOCK_BYTES = 128 << 20  # ~ a million threads' worth of rows per launch for bert-base widths
HIST_MEMORY = 2 << 30  # bytes for AUROC histograms (2 classes × neurons × bins × 4 bytes)


@dataclass
class NeuronStats:
    """Per-neuron statistics, each (layers, hidden), or (classes, layers, hidden) per class.

    Variances are sample variances (ddof=1). Ratios with a zero denominator are 0 when the
    numerator is 0 too (a constant neuron separates nothing) and ±inf otherwise (constant within
    classes but different between them: perfect separation). Values that are NaN/Inf in the store
    are left out of every statistic and counted in `nonfinite`.
    """

    by: str | None
    layers: tuple[int, ...]
    hidden: int
    classes: np.ndarray | None
    meta: dict[str, Any]
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    nonfinite: np.ndarray
    class_count: np.ndarray | None = None
    class_mean: np.ndarray | None = None
    class_var: np.ndarray | None = None
    t: np.ndarray | None = None
    d: np.ndarray | None = None
    anova_f: np.ndarray | None = None
    fisher: np.ndarray | None = None
    probeless: np.ndarray | None = None
    auroc: np.ndarray | None = None
    auroc_error: np.ndarray | None = None
    pearson: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-neuron array that is present, by name."""
        skip = {"by", "layers", "hidden", "classes", "meta", "extra"}
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) is not None
        }


# The options of `neuron_stats`, checked before the store is read (neurosel.params).
STATS_PARAMS = {
    "store": PathLike(store=True),
    "by": OneOf("label", None),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "auroc": Boolean(),
    "auroc_bits": Optional(Interval(Integral, 1, 24, fix="16 is exact for float16 stores")),
    "memory_budget": Interval(Integral, 1, None, fix="pass a size in bytes"),
    "readers": Interval(Integral, 1, None),
    "allow_partial": Boolean(),
    "recompute": Boolean(),
    "save": Boolean(),
    "progress": Boolean(),
    "client": Anything("None, a Dask client or a runner"),
}


@validated(STATS_PARAMS)
def neuron_stats(
    store: ActivationStore | str | os.PathLike,
    by: str | None = "label",
    device: str | Device = "auto",
    *,
    auroc: bool = True,
    auroc_bits: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    readers: int = DEFAULT_READERS,
    allow_partial: bool = False,
    recompute: bool = False,
    save: bool = True,
    progress: bool = True,
    client: Any = None,
) -> NeuronStats:
    """One streaming pass over `store` computing every per-neuron statistic for `by`.

    Results are saved in the store under stats/<key> (keyed by `by`, the AUROC resolution and the
    rows: `STATS.key`) and reused on the next call unless `recompute`. Memory holds at most about
    `memory_budget` bytes of decoded activations, plus the AUROC histograms (2 × neurons ×
    2**auroc_bits × 4 bytes).
    """
    store = open_store(store)  # a path or URL, or the store itself
    rows = store.usable_rows(allow_partial)
    layout = _row_layout(store, rows)
    cls, y, classes = _targets(store, by, rows, layout)
    features = len(store.layers) * store.hidden
    encoding = Encoding.for_dtype(store.meta["dtype"])
    bits = _auroc_bits(auroc, classes, features, encoding, auroc_bits)
    params = {"by": by, "auroc_bits": bits, "rows": rows}

    def compute(key: str) -> NeuronStats:
        return _compute(
            store, key, by, device, encoding, bits, rows, layout, cls, y, classes, memory_budget,
            readers, progress, client,
        )  # fmt: skip

    return cached(store, STATS, params, compute, recompute=recompute, save=save)


def _compute(
    store: ActivationStore, key: str, by: str | None, device: str | Device, encoding: Encoding,
    bits: int | None, rows: int, layout: np.ndarray, cls: np.ndarray, y: np.ndarray | None,
    classes: np.ndarray | None, memory_budget: int, readers: int, progress: bool, client: Any,
) -> NeuronStats:  # fmt: skip
    """The statistics pass itself, for `neuron_stats`: its result is saved under stats/<key>."""
    features = len(store.layers) * store.hidden
    device = resolve_device(device).for_stage("stats")
    plan = StatsPlan(
        encoding=encoding,
        cls=cls,
        y=y,
        classes=max(len(classes), 1) if classes is not None else 1,
        features=features,
        hist_shift=None if bits is None else encoding.key_bits - bits,
    )
    started = time.perf_counter()
    total = int(layout[-1])
    # GPU kernels want large launches; the CPU wants blocks below glibc's mmap threshold
    max_block = GPU_BLOCK_BYTES if device.is_gpu else MAX_BLOCK_BYTES
    runner = resolve_runner(client)  # in this process, or row ranges as tasks on a Dask cluster
    factory = StatsFactory(plan, runner.placed(device))
    with device.activate(), bar(total, "stats", "row", progress) as progress_bar:
        moments = runner.reduce(
            store, factory, total, memory_budget, readers=readers, max_block_bytes=max_block,
            on_rows=progress_bar.update,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    meta = {
        "key": key,
        "by": by,
        "device": runner.label(device.kind),
        "rows": rows,
        "activation_rows": total,
        "auroc_bits": bits,
        "seconds": seconds,
        "gb_per_s": float(total * features * store.activations.dtype.itemsize / seconds / 1e9),
    }
    return finish(moments, store, by, classes, meta)


def _row_layout(store: ActivationStore, rows: int) -> np.ndarray:
    """Activation rows per example boundary: identity for pooled stores, token offsets otherwise."""
    if store.meta["pooling"] == "tokens":
        return store.offsets[: rows + 1]
    return np.arange(rows + 1)


def _targets(
    store: ActivationStore, by: str | None, rows: int, layout: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per activation row: class index (int32), numeric target (float64) or None, and class ids."""
    total = int(layout[-1])
    if by is None:
        return np.zeros(total, np.int32), None, None
    labels = store.labels
    if labels is None:
        raise InputError(f"store {store.path}: has no labels; extract with labels or use by=None")
    labels = np.repeat(labels[:rows], np.diff(layout))
    if store.meta["label_kind"] == "numeric":
        return np.zeros(total, np.int32), labels.astype(np.float64), None
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputError(
            f"store {store.path}: labels have one class only ({classes.tolist()}); class statistics "
            "need two or more, use by=None for unlabelled statistics"
        )
    return np.searchsorted(classes, labels).astype(np.int32), None, classes


def _auroc_bits(
    auroc: bool, classes: np.ndarray | None, features: int, encoding: Encoding, bits: int | None
) -> int | None:
    """Histogram resolution: exact 16 bits for 16-bit stores when the histograms fit in HIST_MEMORY."""
    if not auroc or classes is None or classes.size != 2:
        return None
    if bits is not None:  # in 1..24 (STATS_PARAMS)
        return bits
    bits = 16
    while bits > 8 and 2 * features * (1 << bits) * 4 > HIST_MEMORY:
        bits -= 1
    return bits


def finish(
    m: Moments, store: ActivationStore, by: str | None, classes: np.ndarray | None, meta: dict[str, Any]
) -> NeuronStats:
    """Turn merged moments into statistics, shaped (layers, hidden) and (classes, layers, hidden)."""
    shape = (len(store.layers), store.hidden)
    n, mean, var = m.pooled()
    stats = NeuronStats(
        by=by,
        layers=store.layers,
        hidden=store.hidden,
        classes=classes,
        meta=meta,
        count=n.astype(np.int64).reshape(shape),
        mean=mean.reshape(shape),
        var=var.reshape(shape),
        std=np.sqrt(var).reshape(shape),
        min=np.where(n > 0, m.lo, np.nan).reshape(shape),
        max=np.where(n > 0, m.hi, np.nan).reshape(shape),
        nonfinite=m.bad.astype(np.int64).reshape(shape),
    )
    if m.co is not None:
        stats.pearson = _ratio(m.co.cxy, np.sqrt(m.co.qx * m.co.qy)).reshape(shape)
    if classes is None:
        return stats
    k = classes.size
    class_var = _sample_var(m.m2, m.count)
    stats.class_count = m.count.astype(np.int64).reshape(k, *shape)
    stats.class_mean = m.mean.reshape(k, *shape)
    stats.class_var = class_var.reshape(k, *shape)
    between = (m.count * (m.mean - mean) ** 2).sum(0)
    within = m.m2.sum(0)
    stats.anova_f = _ratio(between / (k - 1), within / np.maximum(n - k, 1)).reshape(shape)
    stats.fisher = _ratio(between, within).reshape(shape)
    stats.probeless = sum(
        np.abs(m.mean[i] - m.mean[j]) for i, j in itertools.combinations(range(k), 2)
    ).reshape(shape)
    if k == 2:
        (n0, n1), (v0, v1) = m.count, class_var
        diff = m.mean[1] - m.mean[0]
        stats.t = _ratio(diff, np.sqrt(v0 / n0 + v1 / n1)).reshape(shape)
        pooled = ((n0 - 1) * v0 + (n1 - 1) * v1) / np.maximum(n0 + n1 - 2, 1)
        stats.d = _ratio(diff, np.sqrt(pooled)).reshape(shape)
    if m.hist is not None:
        auc, err = auroc_from_histograms(
            m.hist, exact=meta["auroc_bits"] == 16 and store.meta["dtype"] != "float32"
        )
        stats.auroc, stats.auroc_error = auc.reshape(shape), err.reshape(shape)
    return stats


def auroc_from_histograms(hist: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mann–Whitney AUROC of class 1 over class 0 per neuron, ties counted half; and its error bound.

    Exact histograms (one bin per distinct value) give the exact AUROC and a zero bound. Coarser
    bins treat pairs sharing a bin as ties, so the error is at most half their share of all pairs.
    """
    auc, ties = np.empty(hist.shape[1]), np.empty(hist.shape[1])
    mann_whitney(hist, auc, ties)
    return auc, np.zeros_like(auc) if exact else 0.5 * ties


def _sample_var(m2: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, m2 / np.maximum(n - 1, 1), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0/0 = 0 and x/0 = ±inf (see NeuronStats)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    zero = den == 0
    out[zero & (num == 0)] = 0.0
    out[zero & (num != 0)] = np.copysign(np.inf, num[zero & (num != 0)])
    return out


class StatsKind:
    """Statistics as a derived result (neurosel.store.ResultKind), saved under stats/<key>."""

    kind = "stats"

    def key(self, params: dict[str, Any]) -> str:
        return derived_key(f"by-{params['by'] or 'none'}", params)

    def to_arrays(self, stats: NeuronStats, store: ActivationStore) -> tuple[dict, dict]:
        arrays = dict(stats.arrays())
        if stats.classes is not None:
            arrays["classes"] = stats.classes
        return arrays, dict(stats.meta)

    def from_arrays(self, arrays: dict, meta: dict, store: ActivationStore) -> NeuronStats:
        classes = arrays.pop("classes", None)
        return NeuronStats(
            by=meta["by"], layers=store.layers, hidden=store.hidden, classes=classes, meta=meta, **arrays
        )


STATS = StatsKind()
