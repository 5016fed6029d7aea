"""Derived results (statistics, importances, stability) kept in sub-groups of the store, keyed by
parameters: one way to save and reuse them.

A result kind (`ResultKind`) names its group (`kind`), keys a result by its parameters (`key`: one
scheme, `derived_key`: a readable prefix and the SHA-1 of the parameters' canonical JSON) and turns a
result into arrays and meta and back (`to_arrays`, `from_arrays`). `cached(store, kind, params,
compute)` reads a saved complete result for the key, or computes, saves and returns it.

A result is written to `<kind>/<key>` with its arrays and a `meta` attribute, and marked
`complete` last: a crash mid-write leaves a group that `load_derived` ignores, and the next run
replaces it. The activations are never touched.

Every array carries `dimension_names` and the group holds the `layer`/`neuron` coordinate arrays,
so `xarray.open_zarr(path, group="stats/<key>")` gives labelled arrays; the root's consolidated
metadata is refreshed after each save. Reads here never use consolidated metadata (it may be stale
when a group was changed by something else), only the groups' own `zarr.json` files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import zarr
from zarr.core.sync import sync

from neurosel.errors import DamagedStoreError, ReadOnlyStoreWarning
from neurosel.store._checked import CheckedStore, valid_path, well_formed_units
from neurosel.store._integrity import (
    CHECKSUM,
    CHECKSUM_KEY,
    MANIFEST_KEY,
    STORE_FIX,
    WRITE_ALL,
    array_entries,
    check_units,
    record_array,
    unit_count,
)
from neurosel.store._interop import COORDINATES, consolidate, derived_dimensions, write_coordinates
from neurosel.store._location import rename
from neurosel.store._lock import StoreLock

T = TypeVar("T")
SAVE_WAIT = 120.0  # seconds a save waits for the store's lock (a concurrent save takes well under)
TEMPORARY = ".tmp-"  # the prefix of a result being written, renamed to its key once complete
CHUNK_BYTES = 16 << 20  # rows of a saved result's array per chunk (file), at least one


def derived_key(prefix: str, params: Mapping[str, Any]) -> str:
    """The one key scheme of saved results: `<prefix>-<the first 12 hex digits of the SHA-1 of the
    parameters as JSON with sorted keys>`. The prefix only helps people reading the store."""
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


class ResultKind(Protocol[T]):
    """What `cached` needs of a kind of derived result (statistics, importance, stability)."""

    kind: str  # the store group its results are saved under: `<kind>/<key>`

    def key(self, params: Mapping[str, Any]) -> str:
        """The key of the result computed with `params` (JSON values), by `derived_key`."""
        ...

    def to_arrays(self, result: T, store: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays and the meta (JSON) that are saved for `result`."""
        ...

    def from_arrays(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], store: Any) -> T:
        """The result back from what `to_arrays` saved."""
        ...


def cached(
    store: Any,
    kind: ResultKind[T],
    params: Mapping[str, Any],
    compute: Callable[[str], T],
    *,
    recompute: bool = False,
    save: bool = True,
) -> T:
    """The result of `kind` for `params`: read back from `<kind>/<key>` of the store when a complete
    one is saved there (unless `recompute`), else `compute(key)`, saved (when `save`; marked complete
    last, so a crash leaves no result; its meta records the key) and returned."""
    key = kind.key(params)
    if not recompute and (saved := load_derived(store, kind.kind, key)) is not None:
        return kind.from_arrays(*saved, store)
    result = compute(key)
    if save:
        arrays, meta = kind.to_arrays(result, store)
        try:
            save_derived(store, kind.kind, key, arrays, {**meta, "key": key})
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            # a store someone may read but not write (a read-only mount, a shared dataset): the
            # result is used from memory, as with save=False, and said once
            warnings.warn(
                f"store {store.path}: cannot be written ({e.strerror}); the {kind.kind} result is kept in "
                "memory, not saved",
                ReadOnlyStoreWarning,
                stacklevel=2,
            )
    return result


def save_derived(
    store: Any, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write `arrays` and `meta` to `kind/key` of the store, replacing an older result there.

    The writer rule: saves hold the store's lock (waiting up to SAVE_WAIT seconds for a concurrent
    save, which then simply replaced first), write the result complete under a temporary name
    (`kind/.tmp-<key>-<id>`), and rename it into place; so a save killed or stopped by a full disk
    leaves only a temporary folder, which `verify` notes as harmless and the next save removes, and
    no reader ever sees a result half written."""
    with StoreLock(store.path, wait=SAVE_WAIT):
        parent = zarr.open_group(store.path, mode="r+", use_consolidated=False).require_group(kind)
        for name in _temporary(parent):  # what interrupted saves left
            sync(parent.store.delete_dir(f"{parent.path}/{name}"))
        temporary = f"{TEMPORARY}{key}-{uuid.uuid4().hex[:8]}"
        sub = parent.create_group(temporary)
        width = (len(store.layers), int(store.hidden))
        for name, values in arrays.items():
            data = np.ascontiguousarray(values)
            dims = derived_dimensions(name, data.shape, width)
            chunks = row_chunks(data.shape, data.dtype.itemsize)
            sub.create_array(name, data=data, chunks=chunks, dimension_names=dims, config=WRITE_ALL)
        write_coordinates(sub, store.layers, store.hidden)
        final = f"{parent.path}/{key}"
        manifest: dict[str, Any] = {f"{final}/{name}": record_array(sub[name]) for name in sub.array_keys()}
        manifest[CHECKSUM_KEY] = CHECKSUM
        sub.update_attributes({"meta": meta, MANIFEST_KEY: manifest, "complete": True})
        sync(parent.store.delete_dir(final))  # an older result, whole or damaged
        rename(store.path, f"{parent.path}/{temporary}", final)  # the commit point
        consolidate(store.path)


def row_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunks of a saved result's array: whole along every axis but the first, about CHUNK_BYTES of
    rows along it. The manifest records an array's files as units of rows (one per chunk along the
    first axis), so no array may be split along another axis, which zarr's own chunk guess does
    (a (21, 3, 7, 384) float64 path: (11, 2, 4, 384))."""
    if not shape:
        return ()
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return (max(1, min(shape[0], CHUNK_BYTES // row_bytes)), *shape[1:])


def _temporary(parent: zarr.Group) -> list[str]:
    async def names() -> set[str]:
        return {name async for name in parent.store.list_dir(parent.path)}

    return sorted(name for name in sync(names()) if name.startswith(TEMPORARY))


def load_derived(store: Any, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta saved under `kind/key`, or None when absent or never completed."""
    where = f"store {store.path}: saved result {kind}/{key}"
    fix = "the saved result is damaged: re-run with --recompute (recompute=True) to replace it"
    # through the store's CheckedStore (when it has one): every file is checked as it is read
    group = zarr.open_group(store.group.store, mode="r", use_consolidated=False)
    try:
        if kind not in group or key not in group[kind]:
            return None
        sub = group[f"{kind}/{key}"]
    except (ValueError, TypeError, KeyError) as e:  # its zarr.json is unreadable
        raise DamagedStoreError(
            f"{where}: its zarr.json cannot be read ({type(e).__name__}); {fix}"
        ) from None
    if not sub.attrs.get("complete"):
        return None
    manifest = sub.attrs.get(MANIFEST_KEY)
    entries = array_entries(manifest)
    if manifest is not None and not all(
        valid_path(p) and p.startswith(f"{sub.path}/") and well_formed_units(u) for p, u in entries.items()
    ):
        raise DamagedStoreError(f"{where}: its manifest names files that are not its own; {fix}")
    names = [path.rsplit("/", 1)[-1] for path in entries] if manifest else list(sub.array_keys())
    opened: dict[str, Any] = {}  # each array's node, or why it cannot be opened (raised below)
    for name in (n for n in names if n not in COORDINATES):
        try:
            opened[name] = sub[name]
        except Exception as e:  # a missing or unreadable zarr.json
            opened[name] = e
    if any(_split_across(a) for a in opened.values() if not isinstance(a, Exception)):
        return None  # saved before results were chunked by rows only: its files cannot be checked
    arrays = {}
    for name, array in opened.items():
        try:
            if isinstance(array, Exception):
                raise array
            check_units(array, manifest, range(unit_count(array)), where)
            if manifest is not None and isinstance(group.store, CheckedStore):
                group.store.register(array, entries[array.path], manifest, where)
            arrays[name] = array[:]
        except DamagedStoreError as e:
            raise DamagedStoreError(f"{e}".replace(STORE_FIX, fix)) from None
        except Exception as e:  # a missing zarr.json, or a decode failure
            raise DamagedStoreError(
                f"{where}: the {name!r} array cannot be read ({type(e).__name__}); {fix}"
            ) from None
    return arrays, dict(sub.attrs["meta"])


def _split_across(array: zarr.Array) -> bool:
    """True when the array is chunked along an axis other than the first. Results saved before
    `row_chunks` (zarr's own chunk guess) can be: the manifest records only the first chunk of each
    row range, so the result is recomputed and replaced, never read unchecked."""
    return array.ndim > 1 and tuple(array.chunks[1:]) != tuple(array.shape[1:])


def saved_metas(store: Any, kind: str) -> list[dict[str, Any]]:
    """The meta of every complete result saved under `kind/` of the store, in key order. A damaged
    or unfinished entry is passed over: `load_derived` reports it to whoever needs that one."""
    root = zarr.open_group(store.path, mode="r", use_consolidated=False)
    if kind not in root:
        return []

    async def names() -> set[str]:  # listed from the folder: zarr's own listing fails on a damaged entry
        return {name async for name in root.store.list_dir(kind)} - {"zarr.json"}

    metas = []
    for name in sorted(sync(names())):
        if name.startswith(TEMPORARY):  # a save in progress, or one that was interrupted
            continue
        try:
            sub = root[f"{kind}/{name}"]
            attrs = dict(sub.attrs)
        except (ValueError, TypeError, KeyError):  # an unreadable zarr.json, or none
            continue
        if isinstance(sub, zarr.Group) and attrs.get("complete") and isinstance(attrs.get("meta"), dict):
            metas.append(attrs["meta"])
    return metas
