"""Write activations computed elsewhere (n, layers, hidden) into a neurosel store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurosel.defaults import COMPRESSIONS, LABEL_KINDS
from neurosel.errors import InputError
from neurosel.params import (
    Anything,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    SequenceOf,
    validated,
)
from neurosel.store._codec import STORAGE_DTYPES, decode, encode, storage_itemsize
from neurosel.store._integrity import WRITE_ALL
from neurosel.store._interop import consolidate
from neurosel.store._labels import check_labels
from neurosel.store._labels import label_kind as kind_of
from neurosel.store._lock import StoreLock
from neurosel.store._reader import ActivationStore, open_store
from neurosel.store._writer import Layout, base_meta, commit_rows, prepare_store
from neurosel.version import __version__

# The options of `store_from_array`, checked before anything is written (neurosel.params); the
# array's shape and values, and the labels, are checked in the body, before the store is created.
STORE_FROM_ARRAY_PARAMS = {
    "out": PathLike(),
    "activations": Anything("an array (examples, layers, hidden)"),
    "labels": Anything("a sequence or array of labels, or None"),
    "layers": Optional(SequenceOf(Interval(Integral, 0, None))),
    "dtype": OneOf(*STORAGE_DTYPES),
    "model_id": Instance(str, what="a string"),
    "chunk_rows": Optional(Interval(Integral, 1, None, fix="None picks the default")),
    "compression": OneOf(*COMPRESSIONS),
    "label_kind": OneOf(*LABEL_KINDS),
}


@validated(STORE_FROM_ARRAY_PARAMS)
def store_from_array(
    out: str | Path,
    activations: np.ndarray,
    *,
    labels: Sequence | np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    dtype: str = "float16",
    model_id: str = "external",
    chunk_rows: int | None = None,
    compression: str = "none",
    label_kind: str = "auto",
) -> ActivationStore:
    """Store precomputed pooled activations so every neurosel pass can run on them.

    For tools with their own forward pass (and for tests and benchmarks): the store has the same
    layout and codecs as one made by `neurosel.extract`, written shard by shard, then committed.
    Labels follow the rule of docs/inputs.md (`label_kind` "auto", "class" or "numeric"). Everything
    is checked before anything is written: an empty array, activations with no finite value, a
    `chunk_rows` that is not a whole number ≥ 1, and bad labels are refused.
    """
    if not hasattr(activations, "shape") or not hasattr(activations, "dtype"):
        activations = np.asarray(activations)
    if activations.ndim != 3:
        raise InputError(f"activations: shape {activations.shape}; pass (examples, layers, hidden)")
    if np.dtype(activations.dtype).kind not in "biuf":
        raise InputError(f"activations: dtype {activations.dtype}; pass real numbers (e.g. float32)")
    n, n_layers, hidden = activations.shape
    if 0 in activations.shape:
        raise InputError(
            f"activations: shape {activations.shape} holds nothing; pass at least one example, layer and unit"
        )
    layer_ids = list(range(n_layers)) if layers is None else [int(x) for x in layers]
    if len(layer_ids) != n_layers:
        raise InputError(f"layers: {len(layer_ids)} ids for {n_layers} stored layers")
    if len(set(layer_ids)) != len(layer_ids):
        raise InputError(f"layers {layer_ids}: each model layer may be stored once; pass distinct ids")
    label_array, names = check_labels(labels, n, "labels", label_kind=label_kind)
    _check_some_finite(activations)
    digest = hashlib.sha256(np.ascontiguousarray(activations).tobytes())
    if label_array is not None:
        digest.update(label_array.tobytes())
    itemsize = storage_itemsize(dtype)
    layout = Layout.choose(n, n_layers * hidden * itemsize, None if chunk_rows is None else int(chunk_rows))
    meta = base_meta(
        model_id=model_id, weights_hash="", tokenizer=None, tokenizer_hash="", pooling="mean",
        layers=layer_ids, num_hidden_layers=max(layer_ids), hidden=hidden, dtype=dtype,
        precision="external", max_length=0, inputs_hash=digest.hexdigest(), n=n, n_tokens=0,
        pairs=False, label_kind=kind_of(label_array),
        label_names=names, chunk_rows=layout.chunk_rows, shard_rows=layout.shard_rows,
        compression=compression, engine_version=__version__,
    )  # fmt: skip
    arrays = {"lengths": np.ones(n, dtype=np.int32)}
    if label_array is not None:
        arrays["labels"] = label_array
    with StoreLock(out):
        group = prepare_store(str(out), meta, arrays, layout, resume=False)
        target = group["activations"].with_config(WRITE_ALL)
        bad_rows: list[int] = []
        bad_values = 0
        for start in range(0, n, layout.shard_rows):
            part = np.asarray(activations[start : start + layout.shard_rows], dtype=np.float32)
            with np.errstate(over="ignore"):  # an overflow is counted below, as stored
                stored = encode(part, dtype)
            # counted as stored: 1e30 is finite in float32 and +inf in float16
            finite = np.isfinite(decode(stored, dtype))
            bad_rows.extend((start + np.flatnonzero(~finite.all(axis=(1, 2)))).tolist())
            bad_values += int(finite.size - np.count_nonzero(finite))
            target[start : start + stored.shape[0]] = stored
        meta.update(
            rows_committed=n, complete=True, nonfinite_row_count=len(bad_rows), nonfinite_rows=bad_rows,
            nonfinite_values=bad_values,
        )  # fmt: skip
        commit_rows(group, {**meta, "initialized": True}, target, 0, n)
        consolidate(out)
    return open_store(out)


def _check_some_finite(activations: np.ndarray, rows_per_look: int = 4096) -> None:
    """Refuse activations with no finite value (all NaN or infinite): no statistic could be computed.
    Reads a block of rows at a time and stops at the first finite value, usually in the first block."""
    for start in range(0, activations.shape[0], rows_per_look):
        if np.isfinite(np.asarray(activations[start : start + rows_per_look])).any():
            return
    raise InputError(
        f"activations: all {activations.size:,} values are NaN or infinite; check the array that was passed"
    )
