"""Per-neuron statistics in one streaming pass over a store, saved in the store and reused.

Unlabelled (`by=None`): count, mean, variance, min, max, non-finite counts — what target-domain
normalisation needs. By class: class counts, means and variances; Welch t and Cohen's d (two
classes); ANOVA F, Fisher score and the probeless score (two or more); exact tie-aware AUROC (two
classes: on the CPU from each neuron's value keys, counted one neuron at a time after the pass, in
as many passes as the memory budget needs; on a GPU from per-class key histograms). Numeric
labels: Pearson correlation with the label.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numba
import numpy as np

from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError
from neurosel.kernels.histogram import auroc_from_keys, mann_whitney
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
from neurosel.stats._moments import KeyColumns, Moments
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
HIST_MEMORY = 2 << 30  # bytes for the GPU's AUROC histograms (2 classes × neurons × bins × 4 bytes)
# with AUROC keys on the CPU, blocks in flight get 1/READ_SHARE of the memory budget, the keys the
# rest: measured against blocks kept whole shards (202 MB), the same speed or faster (smaller blocks
# pipeline finer), and more room for keys
READ_SHARE = 4
READER_CORES = 1  # cores left to the reader threads while the CPU kernels run (see _beside_readers)


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
    `memory_budget` bytes: decoded blocks in flight and, for the AUROC on the CPU, each neuron's
    value keys (2 bytes per value, 4 above 16 bits), which take a quarter and three quarters of it;
    when the keys of every neuron do not fit, the store is read once more per further group of
    neurons. On a GPU the AUROC histograms (2 × neurons × 2**auroc_bits × 4 bytes) come on top.
    """
    store = open_store(store)  # a path or URL, or the store itself
    rows = store.usable_rows(allow_partial)
    layout = _row_layout(store, rows)
    cls, y, classes = _targets(store, by, rows, layout)
    features = len(store.layers) * store.hidden
    encoding = Encoding.for_dtype(store.meta["dtype"])
    bits = _auroc_bits(auroc, classes, features, device, auroc_bits)
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
    keep_keys = bits is not None and not device.is_gpu
    read_budget = max(1, memory_budget // READ_SHARE) if keep_keys else memory_budget
    groups = _key_groups(plan, total, memory_budget - read_budget) if keep_keys else [None]
    auroc = None
    with device.activate(), bar(total * len(groups), "stats", "row", progress) as progress_bar:
        for i, neurons in enumerate(groups):  # the moments in the first pass; then keys only
            factory = StatsFactory(replace(plan, key_neurons=neurons, moments=i == 0), runner.placed(device))
            with _beside_readers(device, runner.distributed):
                part = runner.reduce(
                    store, factory, total, read_budget, readers=readers, max_block_bytes=max_block,
                    on_rows=progress_bar.update,
                )  # fmt: skip
            if i == 0:
                moments = part
            if keep_keys:
                auroc = _fill_auroc(auroc, part.keys, neurons, plan)
            part.keys = None
    seconds = time.perf_counter() - started
    meta = {
        "key": key,
        "by": by,
        "device": runner.label(device.kind),
        "rows": rows,
        "activation_rows": total,
        "auroc_bits": bits,
        "auroc_passes": len(groups) if keep_keys else None,
        "seconds": seconds,
        "gb_per_s": float(total * features * store.activations.dtype.itemsize / seconds / 1e9),
    }
    return finish(moments, store, by, classes, meta, auroc)


@contextlib.contextmanager
def _beside_readers(device: Device, distributed: bool) -> Iterator[None]:
    """On the CPU in this process, the kernels run on every core but READER_CORES while blocks are
    read: reading from the page cache is CPU work too (about one core at the read rate, measured
    in `neurosel bench stats`), and a parallel kernel whose threads wait for a core that a reader
    holds idles at its barrier. The AUROC counting after the pass uses every core."""
    threads = numba.get_num_threads()
    if device.is_gpu or distributed or threads <= READER_CORES:
        yield
        return
    numba.set_num_threads(threads - READER_CORES)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def _key_groups(plan: StatsPlan, total: int, key_budget: int) -> list[tuple[int, int]]:
    """Neurons whose AUROC keys one pass keeps: as many as fit in `key_budget` (at least one), in
    balanced groups; one group, and one pass, when every neuron's keys fit."""
    per_neuron = max(1, total * np.dtype(plan.key_dtype).itemsize)
    fit = max(1, key_budget // per_neuron)
    passes = -(-plan.features // fit)
    return [(i * plan.features // passes, (i + 1) * plan.features // passes) for i in range(passes)]


def _fill_auroc(
    auroc: tuple[np.ndarray, np.ndarray] | None, keys: KeyColumns, neurons: tuple[int, int], plan: StatsPlan
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and tie share of `neurons` from their keys, into the arrays of every neuron."""
    if auroc is None:
        auroc = (np.full(plan.features, np.nan), np.full(plan.features, np.nan))
    if keys.segments:
        columns, start = keys.whole()
        cls = plan.cls[start : start + columns.shape[1]]
        done = slice(*neurons)
        auroc_from_keys(columns, cls, plan.bins, 8 * numba.get_num_threads(), auroc[0][done], auroc[1][done])
    return auroc


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
    labels = labels[:rows]
    pooled = store.meta["pooling"] != "tokens"  # one activation row per example

    def per_row(a: np.ndarray) -> np.ndarray:
        return a if pooled else np.repeat(a, np.diff(layout))

    if store.meta["label_kind"] == "numeric":
        return np.zeros(total, np.int32), per_row(labels.astype(np.float64)), None
    classes, index = np.unique(labels, return_inverse=True)  # one sort gives both
    if classes.size < 2:
        raise InputError(
            f"store {store.path}: labels have one class only ({classes.tolist()}); class statistics "
            "need two or more, use by=None for unlabelled statistics"
        )
    return per_row(index.reshape(-1).astype(np.int32)), None, classes


def _auroc_bits(
    auroc: bool, classes: np.ndarray | None, features: int, device: str | Device, bits: int | None
) -> int | None:
    """Key resolution: exact 16 bits for 16-bit stores; on a GPU fewer when the histograms would not
    fit in HIST_MEMORY (the CPU keeps keys instead, whose memory does not grow with the bits)."""
    if not auroc or classes is None or classes.size != 2:
        return None
    if bits is not None:  # in 1..24 (STATS_PARAMS)
        return bits
    bits = 16
    if 2 * features * (1 << bits) * 4 <= HIST_MEMORY or not resolve_device(device).for_stage("stats").is_gpu:
        return bits
    while bits > 8 and 2 * features * (1 << bits) * 4 > HIST_MEMORY:
        bits -= 1
    return bits


def finish(
    m: Moments,
    store: ActivationStore,
    by: str | None,
    classes: np.ndarray | None,
    meta: dict[str, Any],
    auroc: tuple[np.ndarray, np.ndarray] | None = None,
) -> NeuronStats:
    """Turn merged moments into statistics, shaped (layers, hidden) and (classes, layers, hidden).

    `auroc`: per neuron the AUROC and the share of tied (class 1, class 0) pairs, when the pass
    counted them from keys (CPU); a GPU pass's key histograms are in `m.hist` instead."""
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
    exact = meta.get("auroc_bits") == 16 and store.meta["dtype"] != "float32"
    if m.hist is not None:
        auroc = key_histogram_auroc(m.hist)
    if auroc is not None:
        auc, ties = auroc
        err = np.zeros_like(auc) if exact else 0.5 * ties
        stats.auroc, stats.auroc_error = auc.reshape(shape), err.reshape(shape)
    return stats


def key_histogram_auroc(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann–Whitney AUROC of class 1 over class 0 per neuron from its two key histograms (2, F,
    bins), ties counted half, and the share of (class 1, class 0) pairs that share a bin.

    One bin per distinct value gives the exact AUROC. Coarser bins treat pairs sharing a bin as
    ties, so the error is at most half their share of all pairs (`finish` reports that bound)."""
    auc, ties = np.empty(hist.shape[1]), np.empty(hist.shape[1])
    mann_whitney(hist, auc, ties)
    return auc, ties


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
