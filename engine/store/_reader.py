"""The read side of the activation store: `open_store` and `ActivationStore`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from engine.errors import InputError
from engine.store._codec import decode
from engine.store._format import FORMAT_VERSION, META_KEY, activation_array

Index = int | slice | Sequence[int] | np.ndarray | None
_ZARR_ERROR: type[Exception] = getattr(zarr.errors, "BaseZarrError", ValueError)


class ActivationStore:
    """Per-layer pooled activations of n examples, shape (n, layers, hidden), plus labels and metadata.

    `layers` lists the model layers stored (0 = embedding output, i = block i); neuron flat ids are
    `position * hidden + unit` over the stored layers.
    """

    def __init__(self, group: zarr.Group, path: str) -> None:
        self.group = group
        self.path = path
        self.meta: dict[str, Any] = dict(group.attrs[META_KEY])

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.meta["layers"])

    @property
    def hidden(self) -> int:
        return int(self.meta["hidden"])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n, len(self.layers), self.hidden)

    @property
    def complete(self) -> bool:
        return bool(self.meta["complete"])

    @property
    def rows_committed(self) -> int:
        return int(self.meta["rows_committed"])

    @property
    def labels(self) -> np.ndarray | None:
        return self.group["labels"][:] if "labels" in self.group else None

    @property
    def lengths(self) -> np.ndarray:
        return self.group["lengths"][:]

    @property
    def texts(self) -> np.ndarray | None:
        return self.group["texts"][:] if "texts" in self.group else None

    @property
    def activations(self) -> zarr.Array:
        """The raw Zarr array (token rows for token pooling), for chunked passes."""
        return self.group[activation_array(self.meta["pooling"])]

    def read(self, rows: Index = None, layers: Index = None, neurons: Index = None) -> np.ndarray:
        """Activations for the selected rows, model layers and units, as float16/float32 numpy.

        bfloat16 stores come back as float32 (numpy has no bfloat16). For token pooling `rows` selects
        examples and the result holds all their tokens, concatenated in order.
        """
        row_ids = _as_index(rows, self.n, "rows")
        layer_pos = self._layer_positions(layers)
        units = _as_index(neurons, self.hidden, "neurons")
        self._check_committed(row_ids)
        if self.meta["pooling"] == "tokens":
            offsets = self.group["offsets"][:]
            picked = np.atleast_1d(np.arange(self.n)[row_ids])
            token_ids = np.concatenate(
                [np.arange(offsets[r], offsets[r + 1]) for r in picked] or [np.arange(0)]
            )
            data = self.activations.oindex[token_ids, layer_pos, units]
        elif isinstance(row_ids, slice):
            data = self.activations.oindex[row_ids, layer_pos, units]
        else:
            data = self.activations.oindex[np.asarray(row_ids), layer_pos, units]
        return decode(data, self.meta["dtype"])

    def _layer_positions(self, layers: Index) -> Any:
        if layers is None:
            return slice(None)
        wanted = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
        position = {layer: i for i, layer in enumerate(self.layers)}
        missing = [layer for layer in wanted if layer not in position]
        if missing:
            raise InputError(
                f"layers {missing}: not in the store (stored: {list(self.layers)}); pick stored layers"
            )
        return np.array([position[layer] for layer in wanted])

    def _check_committed(self, row_ids: Any) -> None:
        committed = self.rows_committed
        if committed >= self.n:
            return
        top = (
            max(row_ids.indices(self.n)[1] - 1, 0)
            if isinstance(row_ids, slice)
            else int(np.max(row_ids, initial=0))
        )
        if top >= committed:
            raise InputError(
                f"store {self.path}: only rows < {committed} of {self.n} are extracted; "
                "re-run the extraction to resume"
            )

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.rows_committed}/{self.n} rows"
        return (
            f"ActivationStore({self.path!r}, shape={self.shape}, layers={list(self.layers)}, "
            f"pooling={self.meta['pooling']!r}, dtype={self.meta['dtype']!r}, {state})"
        )


def _as_index(index: Index, size: int, name: str) -> Any:
    if index is None:
        return slice(None)
    if isinstance(index, slice):
        return index
    ids = np.atleast_1d(np.asarray(index))
    if ids.dtype.kind not in "iu":
        raise InputError(f"{name}: indices must be integers, got {ids.dtype}")
    if ids.size and (ids.min() < -size or ids.max() >= size):
        raise InputError(f"{name}: index out of range for size {size}")
    return ids % size if ids.size else ids


def open_store(path: str | Path) -> ActivationStore:
    """Open an existing neurosel store; InputError if it is missing or not a neurosel store."""
    path = str(path)
    if not Path(path).exists() and "://" not in path:
        raise InputError(f"store {path}: does not exist; run `neurosel extract` first")
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        raise InputError(f"store {path}: not a Zarr group; pass a store made by neurosel") from None
    meta = group.attrs.get(META_KEY)
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise InputError(f"store {path}: not a neurosel store (no '{META_KEY}' attributes)")
    if meta["format_version"] > FORMAT_VERSION:
        raise InputError(
            f"store {path}: format version {meta['format_version']} is newer than this neurosel "
            f"reads ({FORMAT_VERSION}); upgrade neurosel"
        )
    if not meta.get("initialized", False):
        raise InputError(f"store {path}: creation was interrupted; re-run the extraction")
    _check_activations(group, path, meta)
    return ActivationStore(group, path)


def _check_activations(group: zarr.Group, path: str, meta: dict[str, Any]) -> None:
    """Open the activation array once, so that damaged metadata (an unknown codec or data type, a
    missing array, malformed zarr.json) is an InputError naming the store, not a failure mid-pass."""
    name = activation_array(str(meta.get("pooling", "mean")))
    try:
        array = group[name]
        if not isinstance(array, zarr.Array):
            raise TypeError(f"'{name}' is a group, not an array")
    except (KeyError, ValueError, TypeError, AttributeError, NotImplementedError, _ZARR_ERROR) as e:
        text = "missing" if isinstance(e, KeyError) else str(e).strip()
        reason = text.splitlines()[0][:200] if text else type(e).__name__
        raise InputError(
            f"store {path}: the '{name}' array cannot be opened ({reason}); its {name}/zarr.json is "
            "damaged or written by a newer zarr: upgrade zarr and numcodecs, or re-run the extraction "
            "with --no-resume"
        ) from None
