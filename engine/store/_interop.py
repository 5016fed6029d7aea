"""Interoperability: what lets plain zarr, xarray and dask read a store without neurosel.

Every array carries `dimension_names` (the tables below), each store and each derived group holds
the coordinate arrays `layer` (the model's layer ids) and `neuron` (unit ids), and the root group
carries consolidated metadata, refreshed whenever the hierarchy changes (creation, completion,
every derived result), so `xarray.open_zarr(path)` and `xarray.open_zarr(path, group="stats/<key>")`
give labelled datasets. neurosel's own reads never use the consolidated copy: they open with
`use_consolidated=False`, so a stale copy can mislead only foreign readers, and only until the
next refresh.

The per-example side arrays (`labels`, `label_name`, `lengths`, `texts`, `texts_pair`) are
auxiliary coordinates along `example`, declared the way xarray itself writes them
(`Dataset.to_zarr`): a CF `coordinates` attribute, a space-separated list of their names, on the
pooled `activations` array (the data variable that has the `example` dimension), or, for token
pooling, where no data variable has it, on the root group (xarray's attribute for coordinates that
belong to no variable). xarray's default `decode_coords=True` turns the named arrays into
coordinates, so `ds.activations` carries them and one groups by them (`open_zarr` makes them dask
arrays, and xarray groups only by keys in memory: `ds.groupby(ds.labels.compute())`;
docs/store-format.md). `to_xarray` makes the same arrays coordinates, in memory, so both views
agree and its `groupby("labels")` works as it stands.

`to_xarray` and `to_dask` (behind `ActivationStore.to_xarray` / `.to_dask`) are the lazy, labelled
views: committed rows only, every block checked against the commit manifest before it is read,
bfloat16 decoded to float32 with the one codec. bfloat16 stays stored as uint16 bit patterns with
the `storage_dtype` attribute (docs/store-format.md says why and gives the one-line decode). Their
`store` is an ActivationStore, typed `Any`: the reader imports this module, never the reverse.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from neurosel.errors import InputError
from neurosel.store._codec import decode
from neurosel.store._format import DIMENSIONS, TOKEN_DIMENSIONS, activation_array
from neurosel.store._integrity import WRITE_ALL

EXAMPLE_EDGE = "example_edge"  # the n + 1 boundaries of `offsets`: not the size of `example`
COORDINATES = ("layer", "neuron")
COORDINATE_TEXT = {
    "layer": "model layer: 0 = embedding output, i = output of transformer block i",
    "neuron": "unit within the layer",
}
# Arrays written beside the activations at creation, by name.
SIDE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "labels": ("example",),
    "label_name": ("example",),
    "lengths": ("example",),
    "texts": ("example",),
    "texts_pair": ("example",),
    "offsets": (EXAMPLE_EDGE,),
}
# Arrays of derived results (stats/<key>, importance/<key>) whose dimensions their name fixes.
DERIVED_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "classes": ("class",),
    "lambdas": ("lambda",),
    "passes": ("lambda",),
    "gaps": ("lambda",),
    "objective": ("lambda",),
    "converged": ("lambda",),
    "coef": ("lambda", "output", "layer", "neuron"),
    "intercept": ("lambda", "output"),
    "entry": ("layer", "neuron"),
    "scores": ("layer", "neuron"),
    "ranking": ("rank",),
    "weights": ("weight",),  # classifiers/<key>: every fit's weights, one after another
    "intercepts": ("intercept",),
    "cv_score": ("fit",),
}
# Side arrays that are coordinates along `example` (in this order in the `coordinates` attribute).
EXAMPLE_COORDINATES = ("labels", "label_name", "lengths", "texts", "texts_pair")
CF_COORDINATES = "coordinates"  # the CF attribute naming a variable's auxiliary coordinates
# Any other derived array (the statistics) by rank: per neuron, or per class and neuron.
NEURON_DIMENSIONS: dict[int, tuple[str, ...]] = {2: ("layer", "neuron"), 3: ("class", "layer", "neuron")}
_INSTALL = "pip install 'neurosel[xarray]' (or: pip install xarray 'dask[array]')"
_CONSOLIDATION_NOTE = "Consolidated metadata is currently not part"


def side_dimensions(name: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of a side array; a ValueError for an array the format does not name."""
    dims = SIDE_DIMENSIONS.get(name)
    if dims is None or len(dims) != ndim:
        raise ValueError(f"side array {name!r} (rank {ndim}): no dimension names in the store format")
    return dims


def derived_dimensions(name: str, shape: Sequence[int], width: tuple[int, int]) -> tuple[str, ...]:
    """Dimension names of a derived array from its name, else its rank; generic names (`<name>_<i>`)
    when the shape does not fit, so that every array has names and no name has two sizes."""
    dims = DERIVED_DIMENSIONS.get(name) or NEURON_DIMENSIONS.get(len(shape))
    if dims is None or len(dims) != len(shape):
        return tuple(f"{name}_{i}" for i in range(len(shape)))
    if dims[-2:] == ("layer", "neuron") and tuple(shape[-2:]) != width:
        return tuple(f"{name}_{i}" for i in range(len(shape)))
    return dims


def label_name(labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Each example's label name (object strings): class id `c` is `names[c]`. Stored as the
    `label_name` array so that plain xarray groups by names (`ds.groupby("label_name")`), and built
    by `to_xarray` the same way for stores written before that array existed."""
    return np.asarray(list(names), dtype=object)[np.asarray(labels, dtype=np.int64)]


def mark_example_coordinates(group: zarr.Group, main: str, present: Iterable[str]) -> None:
    """Declare the side arrays in `present` that `EXAMPLE_COORDINATES` names as coordinates, as
    `Dataset.to_zarr` would: the CF `coordinates` attribute of the activation array `main` when it
    has the `example` dimension (pooled stores), else the same attribute on `group` (token pooling:
    no data variable has `example`). Rewrites that node's `zarr.json`, so call it before the arrays'
    metadata is recorded in the manifest."""
    names = " ".join(name for name in EXAMPLE_COORDINATES if name in set(present))
    if not names:
        return
    array = group[main]
    target = array if "example" in (array.metadata.dimension_names or ()) else group
    target.update_attributes({CF_COORDINATES: names})


def write_coordinates(group: zarr.Group, layers: Sequence[int], hidden: int) -> None:
    """The coordinate arrays `layer` (stored model layer ids) and `neuron` (0..hidden-1), int64."""
    values = {"layer": np.asarray(layers, dtype=np.int64), "neuron": np.arange(hidden, dtype=np.int64)}
    for name, data in values.items():
        array = group.create_array(
            name,
            data=data,
            dimension_names=(name,),
            compressors=[Crc32cCodec()],
            fill_value=0,
            config=WRITE_ALL,
        )
        array.attrs["long_name"] = COORDINATE_TEXT[name]


def consolidate(path: str | Path) -> zarr.Group | None:
    """Write the hierarchy's metadata into the root `zarr.json` (what `xarray.open_zarr` reads
    first). Call it whenever arrays or groups were added or removed: at creation, when a store is
    marked complete, after a derived result is saved. Returns the root group opened with the fresh
    consolidated metadata (a handle whose attribute updates keep it), or None for a Zarr store
    that cannot hold consolidated metadata.

    zarr warns that consolidated metadata is not in the Zarr v3 core specification; it is zarr-python's
    and xarray's convention, which is exactly who reads it, so that one warning is silenced here. So
    is its warning about objects that are not Zarr nodes: the `zarr.<id>.partial` file that a process
    killed while writing a `zarr.json` leaves behind (zarr writes a temporary file, then renames it);
    such a file is not part of the hierarchy and is left out of the consolidated copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CONSOLIDATION_NOTE, category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Object at .* is not recognized", category=UserWarning)
        try:
            return zarr.consolidate_metadata(str(path))
        except TypeError:  # the store kind does not support consolidated metadata
            return None


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{what} needs xarray and dask, which are not installed: {_INSTALL}") from None


class _CheckedRows:
    """The committed activation rows as a dask source: each block's files are checked against the
    commit manifest (`ActivationStore.check_rows`) before Zarr reads them, so a missing shard is an
    error and never zeros."""

    def __init__(self, store: Any, rows: int) -> None:
        self.store = store
        self.array = store.activations
        self.shape = (rows, *self.array.shape[1:])
        self.dtype = self.array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first = key[0] if key else slice(None)
        if isinstance(first, slice):
            start, stop, _ = first.indices(self.shape[0])
        elif isinstance(first, (int, np.integer)):
            start = int(first) % self.shape[0]
            stop = start + 1
        else:  # anything else: check every row it could touch
            start, stop = 0, self.shape[0]
        if stop > start:
            self.store.check_rows(start, stop)
        return self.array[key]


def to_dask(store: Any) -> Any:
    """The committed activations as a lazy dask array, one block per storage unit (shard), decoded:
    float16/float32 as stored, bfloat16 as float32. Token rows for token pooling."""
    da = _need("dask.array", "ActivationStore.to_dask")
    from dask.base import tokenize

    rows = store.activation_rows(store.rows_committed)
    source = _CheckedRows(store, rows)
    unit = int(source.array.shards[0] if source.array.shards else source.array.chunks[0])
    name = "neurosel-" + tokenize(str(store.path), source.array.path, rows, store.meta)
    raw = da.from_array(
        source,
        chunks=(unit, *source.shape[1:]),
        name=name,
        lock=False,
        asarray=True,
        fancy=False,
        meta=np.empty((0,) * source.ndim, dtype=source.dtype),
    )
    dtype = store.meta["dtype"]
    if dtype != "bfloat16":
        return raw
    return raw.map_blocks(decode, dtype, dtype=np.float32, name="neurosel-decode-" + name.split("-", 1)[1])


def to_xarray(store: Any) -> Any:
    """A lazy, labelled `xarray.Dataset` of the committed rows, with the same variables and
    coordinates as `xarray.open_zarr(store.path)` gives, plus what plain xarray cannot do: committed
    rows only, bfloat16 decoded, and two computed coordinates.

    Data variables: the activations (dask, decoded; `activations` or `token_activations`) and, for
    token pooling, `offsets`. Coordinates: `layer` (model layer ids) and `neuron`; along `example`
    the per-example arrays `labels` (with `label_names` as an attribute when the labels were
    strings), `label_name` (each example's label name, when named), `lengths`, `texts` and
    `texts_pair` where stored: coordinates, not variables, as in the store (its CF `coordinates`
    attribute), so `ds.groupby("labels")` and `ds.activations.labels` work and both views agree.
    Computed here only: `example` (row positions) and, for token pooling, `token_example` (each
    token row's example). Everything comes from the attributes and the side arrays, so stores
    written before the coordinate arrays, the `label_name` array or the `coordinates` attribute
    existed give the same dataset. The side coordinates are in memory (numpy): they are small, and
    xarray groups only by in-memory keys."""
    xr = _need("xarray", "ActivationStore.to_xarray")
    rows = store.rows_committed
    tokens = store.meta["pooling"] == "tokens"
    data_vars: dict[str, Any] = {
        activation_array(store.meta["pooling"]): (TOKEN_DIMENSIONS if tokens else DIMENSIONS, to_dask(store))
    }
    layer, neuron = np.asarray(store.layers, dtype=np.int64), np.arange(store.hidden, dtype=np.int64)
    ids = {"layer": layer, "neuron": neuron}
    coords: dict[str, Any] = {name: (name, ids[name], {"long_name": COORDINATE_TEXT[name]}) for name in ids}
    coords["example"] = ("example", np.arange(rows, dtype=np.int64))
    labels = store.labels
    if labels is not None:
        names = store.meta.get("label_names")
        attrs = {"label_names": list(names)} if names else {}
        coords["labels"] = ("example", labels[:rows], attrs)
        if names:
            coords["label_name"] = ("example", label_name(labels[:rows], names))
    coords["lengths"] = ("example", store.lengths[:rows])
    for name in ("texts", "texts_pair"):
        if name in store.group:
            values = store.texts if name == "texts" else store.group[name][:]
            coords[name] = ("example", np.asarray(values[:rows], dtype=object))
    if tokens:
        offsets = np.asarray(store.group["offsets"][: rows + 1], dtype=np.int64)
        data_vars["offsets"] = (EXAMPLE_EDGE, offsets)
        coords["token_example"] = ("token", np.repeat(np.arange(rows, dtype=np.int64), np.diff(offsets)))
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=dict(store.meta))
