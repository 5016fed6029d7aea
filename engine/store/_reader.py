"""The read side of the activation store: `open_store` and `ActivationStore`."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from neurosel.errors import InputError
from neurosel.params import PathLike, validated
from neurosel.store._checked import CheckedStore, valid_path, well_formed, well_formed_units
from neurosel.store._codec import decode
from neurosel.store._format import FORMAT_VERSION, META_KEY, activation_array
from neurosel.store._integrity import (
    CHECKSUM,
    CHECKSUM_KEY,
    MANIFEST_KEY,
    METADATA_KEY,
    DamagedStoreError,
    algorithm_of,
    array_entries,
    check_units,
    strict,
    unit_count,
    unit_rows,
)
from neurosel.store._interop import to_dask, to_xarray
from neurosel.store._location import exists, local_path
from neurosel.store._stream import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_READERS,
    MAX_BLOCK_BYTES,
    Block,
    corrupt_chunk_error,
    iter_blocks,
)

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
        self._arrays: dict[str, zarr.Array] = {}  # side arrays' handles, opened at their first read

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
    def manifest(self) -> dict[str, Any] | None:
        """What the commits recorded, per array and file (None for stores of format 1)."""
        return self.group.attrs.get(MANIFEST_KEY)

    @property
    def labels(self) -> np.ndarray | None:
        return self._side("labels")

    @property
    def lengths(self) -> np.ndarray:
        return self._side("lengths")

    @property
    def texts(self) -> np.ndarray | None:
        return self._side("texts")

    @property
    def offsets(self) -> np.ndarray | None:
        """Token pooling: example i owns activation rows offsets[i]:offsets[i+1]."""
        return self._side("offsets")

    def _side(self, name: str) -> np.ndarray | None:
        """A per-example array read whole, its files checked against the manifest first (the
        array's handle is opened once, like `activations`: its metadata is not read again)."""
        try:
            array = self._arrays[name] if name in self._arrays else self.group[name]
        except KeyError:
            if self.manifest is not None and name in self.manifest:
                raise DamagedStoreError(
                    f"store {self.path}: the {name!r} array is missing although it was written; "
                    "the store is damaged: re-extract it"
                ) from None
            return None
        self._arrays[name] = array
        check_units(array, self.manifest, range(unit_count(array)), f"store {self.path}")
        try:
            return array[:]
        except DamagedStoreError:
            raise
        except Exception as error:  # a checksum or decode failure: name the array
            raise DamagedStoreError(
                f"store {self.path}: the {name!r} array cannot be read ({type(error).__name__}: "
                f"{str(error).strip()[:120]}); the store is damaged: re-extract it"
            ) from None

    def usable_rows(self, allow_partial: bool | None = False) -> int:
        """Rows a pass may read: all of a complete store; the committed rows of an incomplete one
        when `allow_partial` (None: the pass cannot take a partial store); else an InputError.
        Every derived pass asks this one question."""
        if self.complete:
            if self.rows_committed != self.n:
                raise DamagedStoreError(
                    f"store {self.path}: marked complete with {self.rows_committed} of {self.n} rows "
                    "committed; the store's metadata is damaged: re-extract it"
                )
            return self.n
        if not allow_partial:
            how = "" if allow_partial is None else ", or pass allow_partial=True to use the committed rows"
            raise InputError(
                f"store {self.path}: incomplete ({self.rows_committed} of {self.n} rows); finish the "
                f"extraction (re-run it to resume){how}"
            )
        return self.rows_committed

    def activation_rows(self, rows: int) -> int:
        """Rows of the activation array that hold examples [0, rows) (token rows for token pooling)."""
        if self.meta["pooling"] == "tokens":
            return int(self.offsets[rows])
        return rows

    def check(self) -> None:
        """The quick check (one `stat` per file): every file the manifest records for the committed
        rows and the per-example arrays is present with its recorded size; DamagedStoreError if not."""
        self.check_rows(0, self.activation_rows(self.rows_committed))
        for name in array_entries(self.manifest):
            if name != self.activations.path and "/" not in name:
                array = self._array(name)
                check_units(array, self.manifest, range(unit_count(array)), f"store {self.path}")

    def _array(self, name: str) -> zarr.Array:
        try:
            return self.group[name]
        except KeyError:
            raise DamagedStoreError(
                f"store {self.path}: the {name!r} array is missing although it was written; the store "
                "is damaged: re-extract it"
            ) from None

    def check_rows(self, start: int, stop: int) -> None:
        """DamagedStoreError unless the activation files holding rows [start, stop) of the activation
        array are present with the sizes their commit recorded."""
        array = self.activations
        unit = unit_rows(array)
        check_units(array, self.manifest, range(start // unit, -(-stop // unit)), f"store {self.path}")

    def blocks(
        self,
        stop: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        readers: int = DEFAULT_READERS,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        start: int = 0,
    ) -> Iterator[Block]:
        """Blocks of activation rows [start, stop) (default: every committed row), read ahead by a
        reader pool, each block's files checked against the manifest before it is read."""
        stop = self.activation_rows(self.rows_committed) if stop is None else stop
        return iter_blocks(
            self.activations,
            stop,
            memory_budget,
            readers,
            max_block_bytes=max_block_bytes,
            check=self.check_rows,
            start=start,
        )

    @functools.cached_property
    def activations(self) -> zarr.Array:
        """The raw Zarr array (token rows for token pooling), for chunked passes; opened once (its
        metadata is read at the first use, not again for every block's check)."""
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
        picked = np.atleast_1d(np.arange(self.n)[row_ids])
        if self.meta["pooling"] == "tokens":
            offsets = self.offsets
            index: Any = np.concatenate(
                [np.arange(offsets[r], offsets[r + 1]) for r in picked] or [np.arange(0)]
            )
        else:
            index = row_ids if isinstance(row_ids, slice) else picked
        array = self.activations
        unit = unit_rows(array)
        targets = np.atleast_1d(np.arange(array.shape[0])[index]) if isinstance(index, slice) else index
        needed = np.unique(np.asarray(targets, dtype=np.int64) // unit)
        check_units(array, self.manifest, needed.tolist(), f"store {self.path}")
        try:
            data = array.oindex[index, layer_pos, units]
        except DamagedStoreError:  # a file that is not the one committed: already named
            raise
        except Exception as error:  # a checksum or decode failure: name the file
            first = int(needed[0]) * unit if needed.size else 0
            raise corrupt_chunk_error(
                array, first, min(int(needed[-1] + 1) * unit, array.shape[0]), error
            ) from None
        return decode(data, self.meta["dtype"])

    def _layer_positions(self, layers: Index) -> Any:
        """Positions in the stored layer axis of model layer ids; a negative id counts from the
        model's last layer, as `extract(layers=...)` does (-1 is layer num_hidden_layers)."""
        if layers is None:
            return slice(None)
        wanted = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
        total = int(self.meta.get("num_hidden_layers", max(self.layers))) + 1
        wanted = [
            int(x) % total if isinstance(x, (int, np.integer)) and -total <= x < 0 else x for x in wanted
        ]
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

    def to_xarray(self) -> Any:
        """A lazy, labelled xarray.Dataset of the committed rows (dask-backed; bfloat16 decoded to
        float32), with `layer`, `neuron` and `example` coordinates and the labels along `example`.
        Needs xarray and dask (`pip install 'neurosel[xarray]'`)."""
        return to_xarray(self)

    def to_dask(self) -> Any:
        """The committed activations as a lazy dask array (bfloat16 decoded to float32)."""
        return to_dask(self)

    def to_hf_dataset(self) -> Any:
        """The store as a Hugging Face `datasets.Dataset`: one row per example, `activations`
        (layers, hidden) as stored (bfloat16 decoded to float32), `labels`, `lengths`, `texts`; built
        block by block into the `datasets` cache (the "hf" layout of `neurosel.export`). A complete,
        pooled store only. Needs datasets (`pip install 'neurosel[export]'`)."""
        from neurosel.store._export import hf_dataset  # the exporter imports this module

        return hf_dataset(self)


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


# The option of `open_store` (neurosel.params): a path, checked before anything is read.
OPEN_STORE_PARAMS = {"path": PathLike(store=True, fix="pass the store's directory or URL")}


@validated(OPEN_STORE_PARAMS)
def open_store(path: str | Path | ActivationStore) -> ActivationStore:
    """Open an existing neurosel store; InputError if it is missing or not a neurosel store. An
    open `ActivationStore` is returned as it is, so every function taking "a store or its path"
    calls this once."""
    if isinstance(path, ActivationStore):
        return path
    path = str(path)
    if not exists(path):
        raise InputError(f"store {path}: does not exist; run `neurosel extract` first")
    try:
        group = zarr.open_group(path, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        local = local_path(path)
        if local is not None and ((local / "activations").is_dir() or (local / "token_activations").is_dir()):
            raise InputError(
                f"store {path}: its zarr.json (the store's metadata) is missing; the store is damaged: "
                "restore the file or re-extract the store"
            ) from None
        raise InputError(f"store {path}: not a Zarr group; pass a store made by neurosel") from None
    except (ValueError, TypeError, KeyError) as e:  # zarr.json unreadable: bad JSON, bad fields
        raise InputError(
            f"store {path}: its zarr.json cannot be read ({type(e).__name__}: {str(e).strip()[:120]}); "
            "the store's metadata is damaged: restore it or re-extract the store"
        ) from None
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
    group = _checked_group(group, path, meta)
    _check_activations(group, path, meta)
    _check_shapes(group, path, meta)
    return ActivationStore(group, path)


# Names the store may hold at its top beyond the manifest's arrays: its metadata and the groups of
# saved results (each checked against its own manifest when read).
DERIVED_GROUPS = ("stats", "importance", "stability", "classifiers")


def _checked_group(raw: zarr.Group, path: str, meta: dict[str, Any]) -> zarr.Group:
    """The store's root group read through a CheckedStore that knows every file the manifest
    records (format 2 and later: a store without a well-formed manifest is damaged); format 1
    stores, which have none, are read as they are."""
    damaged = "the store is damaged: re-extract it (`neurosel verify` lists every problem)"
    manifest = raw.attrs.get(MANIFEST_KEY)
    if manifest is None and int(meta["format_version"]) < 2:
        return raw
    if not isinstance(manifest, dict):
        raise DamagedStoreError(
            f"store {path}: its manifest ('{MANIFEST_KEY}' attribute) is missing or malformed, so no "
            f"file can be checked; {damaged}"
        )
    entries = array_entries(manifest)
    files = manifest.get(METADATA_KEY, {})
    bad = [n for n in entries if not valid_path(n) or not well_formed_units(entries[n])]
    if not isinstance(files, dict):
        files, bad = {}, [*bad, METADATA_KEY]
    bad += [
        k for k, e in files.items() if not (valid_path(k) and k.endswith("/zarr.json") and well_formed(e))
    ]
    if bad:
        raise DamagedStoreError(
            f"store {path}: its manifest names {', '.join(map(repr, bad[:3]))}, not files of this "
            f"store; {damaged}"
        )
    # the activations are recorded commit by commit: none yet before the first one
    entries = {activation_array(str(meta.get("pooling"))): {}, **entries}
    if strict(manifest):
        _check_members(raw, path, set(entries), damaged)
    checked = CheckedStore(raw.store)
    where, algorithm = f"store {path}", algorithm_of(manifest)
    if strict(manifest) and manifest[CHECKSUM_KEY] != CHECKSUM:
        raise DamagedStoreError(
            f"store {path}: its manifest names the checksum {manifest[CHECKSUM_KEY]!r}, not "
            f"{CHECKSUM!r}; {damaged}"
        )
    for key, entry in files.items():
        checked.register_file(key, entry, where, algorithm)
    group = zarr.open_group(checked, mode="r", use_consolidated=False)
    for name, units in entries.items():
        try:
            array = group[name]
        except KeyError:
            raise DamagedStoreError(
                f"store {path}: the {name!r} array is missing although it was written; {damaged}"
            ) from None
        except Exception:  # metadata zarr cannot read (a newer codec): named by the checks that follow
            continue
        _check_declared(array, units, path, meta, strict(manifest), damaged)
        checked.register(array, units, manifest, where)
    return group


def _check_declared(
    array: zarr.Array, units: dict[str, Any], path: str, meta: dict[str, Any], every: bool, damaged: str
) -> None:
    """Before anything is allocated: a decoded chunk must fit the memory budget, and (manifests that
    record every file) the manifest must record at least as many files as the array declares for the
    rows it holds, so a store cannot declare 10^12 rows, or 2 GB chunks, that nothing backs."""
    chunk = int(np.prod(array.chunks)) * array.dtype.itemsize if array.dtype.kind not in "OTU" else 0
    if chunk > DEFAULT_MEMORY_BUDGET:
        raise DamagedStoreError(
            f"store {path}: the {array.path!r} array declares chunks of {chunk / 1e6:,.0f} MB, more than the "
            f"{DEFAULT_MEMORY_BUDGET >> 20} MiB memory budget; {damaged}"
        )
    if not every or not array.ndim:
        return
    rows = array.shape[0]
    if array.path == activation_array(str(meta.get("pooling"))):
        if meta.get("pooling") == "tokens":
            return  # committed token rows come from the offsets, checked when read
        rows = min(int(meta.get("rows_committed", 0)), rows)
    want = -(-rows // unit_rows(array))
    if len(units) < want:  # more is harmless: a partial store's view, or files past its rows
        raise DamagedStoreError(
            f"store {path}: the manifest records {len(units):,} files of {array.path!r}, which declares "
            f"{want:,} for its {rows:,} rows; {damaged}"
        )


def _check_members(raw: zarr.Group, path: str, arrays: set[str], damaged: str) -> None:
    """A store whose manifest records every file holds nothing else at its top: an array or folder
    that neurosel did not write is named (a foreign file is never read)."""

    async def names() -> set[str]:
        return {name async for name in raw.store.list_dir("")}

    extra = sorted(sync(names()) - arrays - {"zarr.json", *DERIVED_GROUPS})
    extra = [name for name in extra if not (name.startswith("zarr.") and name.endswith(".partial"))]
    if extra:
        raise DamagedStoreError(
            f"store {path}: {', '.join(map(repr, extra[:5]))} {'is' if len(extra) == 1 else 'are'} in "
            "the store but not written by neurosel (not in its manifest); remove it or re-extract the store"
        )


def _check_shapes(group: zarr.Group, path: str, meta: dict[str, Any]) -> None:
    """The metadata's sizes are sane and agree with every array's shape; InputError naming the
    store and the disagreement otherwise (a hand-edited or damaged zarr.json)."""
    damaged = "the store's metadata is damaged: restore it or re-extract the store"
    try:
        n, hidden, layers = int(meta["n"]), int(meta["hidden"]), [int(x) for x in meta["layers"]]
        committed, complete = int(meta["rows_committed"]), meta["complete"]
        pooling = str(meta["pooling"])
        tokens = int(meta.get("n_tokens", 0))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"store {path}: attribute {e} is missing or malformed; {damaged}") from None
    if n < 0 or hidden < 1 or not layers or not 0 <= committed <= n or not isinstance(complete, bool):
        raise InputError(
            f"store {path}: attributes out of range (n={n}, hidden={hidden}, layers={layers}, "
            f"rows_committed={committed}, complete={complete!r}); {damaged}"
        )
    rows = tokens if pooling == "tokens" else n
    expected = {activation_array(pooling): (rows, len(layers), hidden)}
    for name in ("labels", "lengths", "texts", "texts_pair"):
        expected[name] = (n,)
    if pooling == "tokens":
        expected["offsets"] = (n + 1,)
    for name, shape in expected.items():
        try:
            array = group[name]
        except KeyError:
            continue  # optional arrays; a required one that is missing is found by its reader
        except Exception as e:
            raise InputError(
                f"store {path}: the {name!r} array cannot be opened ({type(e).__name__}); {damaged}"
            ) from None
        if tuple(array.shape) != shape:
            raise InputError(
                f"store {path}: the {name!r} array has shape {tuple(array.shape)} but the metadata says "
                f"{shape} (n={n}, layers={layers}, hidden={hidden}); {damaged}"
            )


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
