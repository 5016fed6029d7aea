"""Create an activation store and fill it window by window from a background writer thread.

A window is a run of consecutive rows equal to one shard of `activations`: its rows are computed in
length-sorted batches, scattered back into input order on the host, written as whole shards, and
only then committed in the group attributes (an atomic file replace). An interrupted extraction
therefore resumes at the first uncommitted window and produces the same bytes.
"""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from neurosel.errors import InputError
from neurosel.store._codec import STORAGE_DTYPES
from neurosel.store._format import DIMENSIONS, FORMAT_VERSION, META_KEY, TOKEN_DIMENSIONS, activation_array
from neurosel.store._integrity import (
    CHECKSUM,
    CHECKSUM_KEY,
    MANIFEST_KEY,
    METADATA_KEY,
    WRITE_ALL,
    record_array,
    record_file,
    record_units,
    unit_rows,
)
from neurosel.store._interop import (
    consolidate,
    label_name,
    mark_example_coordinates,
    side_dimensions,
    write_coordinates,
)
from neurosel.store._location import exists, remove_tree


class Staged(Protocol):
    """Rows on their way to the host (extraction's staging buffers): `wait()` gives the array."""

    def wait(self) -> np.ndarray: ...


class Transfer(Protocol):
    """Where staged rows come from: the writer hands each one back with `release` once copied."""

    def release(self, staged: Staged) -> None: ...


CHUNK_TARGET_BYTES = 2 << 20  # ≥ 1 MB chunks; 2 MiB measured to decode fast and stay cache-friendly
# One shard (~16 MiB) is one write window, one resume step, and one block of a pass: every read
# checks a whole file against the manifest, so a block that is a whole shard reads each file once
# (neurosel.store._stream.MAX_BLOCK_BYTES holds one).
CHUNKS_PER_SHARD = 8
TEXT_CHUNK_ROWS = 16384
NONFINITE_ROWS_KEPT = 10_000
# Keys of the configuration that must match to resume or reuse a store.
CONFIG_KEYS = (
    "format_version",
    "weights_hash",
    "tokenizer_hash",
    "pooling",
    "layers",
    "dtype",
    "precision",
    "max_length",
    "inputs_hash",
    "site",
)
# Configuration keys added after format version 2 was first written, with the value every store
# written before them has: a store of 0.1.0 holds hidden states.
LATER_CONFIG = {"site": "hidden"}


def compressors(compression: str) -> list:
    """Codecs after the bytes serializer: optional zstd, then always a CRC32C checksum.

    Float16 activations barely compress (zstd-1 saves ~7.5% on MiniLM activations but decodes at
    ~0.6 GB/s per core, CRC32C checks at ~3.3 GB/s; docs/store-format.md), so the default is none.
    """
    return [ZstdCodec(level=1), Crc32cCodec()] if compression == "zstd" else [Crc32cCodec()]


@dataclass(frozen=True)
class Layout:
    """How the activations are chunked: rows (or token rows) per chunk and per shard/window."""

    rows: int
    chunk_rows: int
    shard_rows: int

    @classmethod
    def choose(cls, rows: int, row_bytes: int, chunk_rows: int | None = None) -> Layout:
        chunk = chunk_rows or max(1, -(-CHUNK_TARGET_BYTES // row_bytes))
        chunk = max(1, min(chunk, rows))
        shard = chunk * CHUNKS_PER_SHARD if chunk_rows is None else chunk * 2
        return cls(rows=rows, chunk_rows=chunk, shard_rows=shard)


def prepare_store(
    out: str, meta: dict[str, Any], arrays: dict[str, np.ndarray], layout: Layout, resume: bool
) -> zarr.Group:
    """Open a matching store to resume, or create a new one; refuse a store of another configuration."""
    if exists(out):
        group = _open_existing(out)
        old = group.attrs[META_KEY]
        if not resume:
            remove_tree(out)
        else:
            differ = [k for k in CONFIG_KEYS if old.get(k, LATER_CONFIG.get(k)) != meta.get(k)]
            if differ:
                what = ", ".join(f"{k}={old.get(k)!r} (this run: {meta.get(k)!r})" for k in differ)
                raise InputError(
                    f"out {out}: a store built with another configuration is there ({what}); "
                    "pass another --out, or --no-resume to replace it"
                )
            if old.get("initialized"):
                return group
    return _create(out, meta, arrays, layout)


def _open_existing(out: str) -> zarr.Group:
    try:
        group = zarr.open_group(out, mode="r+", use_consolidated=False)
    except Exception:
        raise InputError(f"out {out}: exists and is not a neurosel store; choose another path") from None
    if META_KEY not in group.attrs:
        raise InputError(f"out {out}: exists and is not a neurosel store; choose another path")
    return group


def _create(out: str, meta: dict[str, Any], arrays: dict[str, np.ndarray], layout: Layout) -> zarr.Group:
    group = zarr.open_group(out, mode="w")
    group.attrs[META_KEY] = {**meta, "initialized": False}
    name = activation_array(meta["pooling"])
    dims = list(TOKEN_DIMENSIONS if meta["pooling"] == "tokens" else DIMENSIONS)
    width = (len(meta["layers"]), meta["hidden"])
    act = group.create_array(
        name,
        shape=(layout.rows, *width),
        chunks=(layout.chunk_rows, *width),
        shards=(layout.shard_rows, *width),
        dtype=STORAGE_DTYPES[meta["dtype"]],
        compressors=compressors(meta["compression"]),
        dimension_names=dims,
        fill_value=0,
        config=WRITE_ALL,
    )
    act.attrs["storage_dtype"] = meta["dtype"]
    arrays = _with_label_name(arrays, meta.get("label_names"))
    for key, values in arrays.items():
        chunk = min(len(values), TEXT_CHUNK_ROWS) or 1
        dtype = str if values.dtype.kind in "OU" else values.dtype
        arr = group.create_array(
            key,
            shape=values.shape,
            chunks=(chunk,),
            dtype=dtype,
            compressors=compressors("zstd"),
            dimension_names=side_dimensions(key, values.ndim),
            config=WRITE_ALL,
        )
        arr[:] = values
        if key == "labels" and meta.get("label_names"):
            arr.attrs["label_names"] = list(meta["label_names"])
    write_coordinates(group, meta["layers"], meta["hidden"])
    # Before the metadata is recorded: it rewrites the activations' zarr.json (pooled stores).
    mark_example_coordinates(group, name, arrays)
    record_side_arrays(group, [*arrays, "layer", "neuron"], metadata_of=[name, *arrays, "layer", "neuron"])
    group.attrs[META_KEY] = {**meta, "initialized": True}
    # Foreign readers (xarray) open the hierarchy from the root's consolidated metadata; the handle
    # returned keeps it through every later commit of the attributes.
    return consolidate(out) or group


def _with_label_name(arrays: dict[str, np.ndarray], names: list[str] | None) -> dict[str, np.ndarray]:
    """The side arrays plus `label_name` (each example's class name, after `labels`) when the labels
    are named: plain xarray then groups and selects by name, and `to_xarray` shows the same."""
    if not names or "labels" not in arrays:
        return arrays
    out: dict[str, np.ndarray] = {}
    for key, values in arrays.items():
        out[key] = values
        if key == "labels":
            out["label_name"] = label_name(values, names)
    return out


class StoreWriter:
    """Background thread: assemble each window in input order, write it, commit it."""

    def __init__(
        self,
        group: zarr.Group,
        meta: dict[str, Any],
        transfer: Transfer,
        lengths: np.ndarray,
        offsets: np.ndarray | None,
        on_written: Callable[[Written], None] | None = None,
    ) -> None:
        """`on_written` receives each window once its shards are written; by default the window is
        committed in the group attributes at once (a single process). A Dask worker passes a
        collector instead: the client commits windows in order (neurosel.extraction on a cluster)."""
        self.group = group
        self.on_written = on_written or self._commit_here
        self.meta = meta
        self.transfer = transfer
        self.lengths = lengths
        self.offsets = offsets
        self.array = group[activation_array(meta["pooling"])].with_config(WRITE_ALL)
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.window: tuple[int, int, np.ndarray] | None = None
        self.bad_rows: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, name="neurosel-writer", daemon=True)
        self.thread.start()

    def begin_window(self, start: int, end: int) -> None:
        self._put(("begin", start, end))

    def batch(self, rows: np.ndarray, values: Staged, bad: Staged) -> None:
        """Hand over one batch: `rows` are window-relative row positions in batch order."""
        self._put(("batch", rows, values, bad))

    def end_window(self) -> None:
        self._put(("end",))

    def close(self) -> dict[str, Any]:
        """Wait for every queued window to be committed; re-raise a writer failure."""
        self.queue.put(("stop",))  # even after a failure: the thread keeps draining until it sees this
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.meta

    def _put(self, message: tuple) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(message)

    def _run(self) -> None:
        while True:
            message = self.queue.get()
            kind = message[0]
            if kind == "stop":
                return
            if self.error is not None:
                self._drop(message)
                continue
            try:
                if kind == "begin":
                    self._begin(*message[1:])
                elif kind == "batch":
                    self._scatter(*message[1:])
                else:
                    self._commit()
            except BaseException as e:  # surfaced to the producer on its next call
                self.error = _as_user_error(e, self.group, self.meta)
                self._drop(message)

    def _drop(self, message: tuple) -> None:
        if message[0] == "batch":
            self.transfer.release(message[2])
            self.transfer.release(message[3])

    def _begin(self, start: int, end: int) -> None:
        rows = end - start if self.offsets is None else int(self.offsets[end] - self.offsets[start])
        shape = (rows, *self.array.shape[1:])
        self.window = (start, end, np.empty(shape, dtype=self.array.dtype))

    def _scatter(self, rows: np.ndarray, values: Staged, bad: Staged) -> None:
        start, _, buffer = self.window
        data, bad_counts = values.wait(), bad.wait()
        if self.offsets is None:
            buffer[rows] = data
            row_bad = bad_counts
        else:
            local = self.offsets[start + rows] - self.offsets[start]
            lens = self.lengths[start + rows]
            seg = np.cumsum(lens) - lens
            buffer[np.repeat(local - seg, lens) + np.arange(int(lens.sum()))] = data
            row_bad = np.add.reduceat(bad_counts, seg) if rows.size else bad_counts
        for r in np.flatnonzero(row_bad):
            self.bad_rows[int(start + rows[r])] = int(row_bad[r])
        self.transfer.release(values)
        self.transfer.release(bad)

    def _commit(self) -> None:
        start, end, buffer = self.window
        first, last = (
            (start, end) if self.offsets is None else (int(self.offsets[start]), int(self.offsets[end]))
        )
        self.array[first:last] = buffer
        unit = unit_rows(self.array)  # read back: the window's files and their checksums
        units = record_units(self.array, range(first // unit, -(-last // unit)))
        self.on_written(Written(start, end, units, self.bad_rows))
        self.bad_rows = {}
        self.window = None

    def _commit_here(self, written: Written) -> None:
        commit_windows(self.group, self.meta, self.array.path, [written])


@dataclass(frozen=True)
class Written:
    """One window whose shards are written and read back: example rows [start, end), the manifest
    entries of its storage units, and the non-finite value count of each of its rows that has any."""

    start: int
    end: int
    units: dict[str, list[int] | None]
    bad_rows: dict[int, int]


def commit_windows(group: zarr.Group, meta: dict[str, Any], array_path: str, windows: list[Written]) -> None:
    """Advance `meta` over consecutive written windows (rows_committed, non-finite counts) and commit
    it with their manifest entries. Committing windows one by one or several at once gives the same
    bytes."""
    units: dict[str, list[int] | None] = {}
    for w in windows:
        if w.start != meta["rows_committed"]:
            raise RuntimeError(f"window [{w.start}, {w.end}) committed after row {meta['rows_committed']}")
        units.update(w.units)
        bad_rows = sorted(set(meta["nonfinite_rows"]) | set(w.bad_rows))
        meta["nonfinite_values"] += sum(w.bad_rows.values())
        meta["nonfinite_rows"] = bad_rows[:NONFINITE_ROWS_KEPT]
        meta["nonfinite_row_count"] = meta.get("nonfinite_row_count", 0) + len(w.bad_rows)
        meta["rows_committed"] = w.end
    _commit(group, meta, array_path, units)


def commit_rows(group: zarr.Group, meta: dict[str, Any], array: zarr.Array, first: int, last: int) -> None:
    """Record the files of `array` rows [first, last) (just written) and commit `meta` (with its
    advanced `rows_committed`) with them."""
    unit = unit_rows(array)
    _commit(group, meta, array.path, record_units(array, range(first // unit, -(-last // unit))))


def _commit(group: zarr.Group, meta: dict[str, Any], array_path: str, units: dict[str, Any]) -> None:
    """The commit point: `meta` and the manifest entries of the units just written, in one
    attribute update (one write of zarr.json)."""
    manifest = dict(group.attrs.get(MANIFEST_KEY, {}))
    manifest[array_path] = {**manifest.get(array_path, {}), **units}
    group.update_attributes({META_KEY: meta, MANIFEST_KEY: manifest})


def record_side_arrays(group: zarr.Group, names: list[str], metadata_of: list[str] = ()) -> None:
    """Record the files of arrays written once at creation (labels, lengths, texts, coordinates), and
    the `zarr.json` of every array in `metadata_of` (written once, never changed)."""
    manifest = {CHECKSUM_KEY: CHECKSUM, **group.attrs.get(MANIFEST_KEY, {})}
    for name in names:
        manifest[name] = record_array(group[name])
    manifest[METADATA_KEY] = {
        f"{n}/zarr.json": record_file(group.store, f"{n}/zarr.json") for n in metadata_of
    }
    group.attrs[MANIFEST_KEY] = manifest


def _as_user_error(e: BaseException, group: zarr.Group, meta: dict[str, Any]) -> BaseException:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return InputError(
            f"out {group.store}: disk full after {meta['rows_committed']} of {meta['n']} rows; "
            "free space and re-run the same command to resume"
        )
    return e


def base_meta(**fields: Any) -> dict[str, Any]:
    """The group attributes of a fresh store; progress fields start empty."""
    return {
        "format_version": FORMAT_VERSION,
        **fields,
        "rows_committed": 0,
        "complete": False,
        "nonfinite_values": 0,
        "nonfinite_row_count": 0,
        "nonfinite_rows": [],
    }
