"""Write activations computed elsewhere (n, layers, hidden) into a neurosel store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.store._codec import STORAGE_DTYPES, encode
from engine.store._format import META_KEY
from engine.store._labels import check_labels, label_kind
from engine.store._reader import ActivationStore, open_store
from engine.store._writer import COMPRESSIONS, Layout, base_meta, prepare_store
from engine.version import __version__


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
) -> ActivationStore:
    """Store precomputed pooled activations so every neurosel pass can run on them.

    For tools with their own forward pass (and for tests and benchmarks): the store has the same
    layout and codecs as one made by `engine.extract`, written shard by shard, then committed.
    """
    if activations.ndim != 3:
        raise InputError(f"activations: shape {activations.shape}; pass (examples, layers, hidden)")
    if dtype not in STORAGE_DTYPES or compression not in COMPRESSIONS:
        raise InputError(f"dtype {dtype!r} / compression {compression!r}: unknown")
    n, n_layers, hidden = activations.shape
    layer_ids = list(range(n_layers)) if layers is None else [int(x) for x in layers]
    if len(layer_ids) != n_layers:
        raise InputError(f"layers: {len(layer_ids)} ids for {n_layers} stored layers")
    label_array, names = check_labels(labels, n, "labels")
    digest = hashlib.sha256(np.ascontiguousarray(activations).tobytes())
    if label_array is not None:
        digest.update(label_array.tobytes())
    itemsize = np.dtype(STORAGE_DTYPES[dtype]).itemsize
    layout = Layout.choose(n, n_layers * hidden * itemsize, chunk_rows)
    meta = base_meta(
        model_id=model_id, weights_hash="", tokenizer=None, tokenizer_hash="", pooling="mean",
        layers=layer_ids, num_hidden_layers=max(layer_ids), hidden=hidden, dtype=dtype,
        precision="external", max_length=0, inputs_hash=digest.hexdigest(), n=n, n_tokens=0,
        pairs=False, label_kind=label_kind(label_array),
        label_names=names, chunk_rows=layout.chunk_rows, shard_rows=layout.shard_rows,
        compression=compression, engine_version=__version__,
    )  # fmt: skip
    arrays = {"lengths": np.ones(n, dtype=np.int32)}
    if label_array is not None:
        arrays["labels"] = label_array
    group = prepare_store(str(out), meta, arrays, layout, resume=False)
    target = group["activations"]
    bad_rows: list[int] = []
    for start in range(0, n, layout.shard_rows):
        part = np.asarray(activations[start : start + layout.shard_rows], dtype=np.float32)
        bad_rows.extend((start + np.flatnonzero(~np.isfinite(part).all(axis=(1, 2)))).tolist())
        target[start : start + part.shape[0]] = encode(part, dtype)
    meta.update(rows_committed=n, complete=True, nonfinite_row_count=len(bad_rows), nonfinite_rows=bad_rows)
    meta["nonfinite_values"] = int(sum(np.sum(~np.isfinite(activations[r])) for r in bad_rows))
    group.attrs[META_KEY] = {**meta, "initialized": True}
    return open_store(out)
