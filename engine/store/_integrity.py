"""Integrity: what a commit recorded, checked before every read, and verified in full on request.

Zarr reads a missing chunk (or shard) as its fill value: a deleted or emptied file becomes zeros
without an error. So every write that a store relies on records its files in a manifest kept in
the root attributes (`neurosel_manifest`): per array, per storage unit (a shard for the activations,
a chunk elsewhere), the file's size and CRC-32, or null where Zarr legitimately wrote nothing (a
unit equal to the fill value). The activations' entries are written in the same attribute update
that advances `rows_committed`, so a commit and its manifest land together.

Before any read, `check_units` compares the files a read needs with the manifest by size (one
`stat` per unit: cheap), and a missing, empty or truncated file is a `DamagedStoreError` naming
the array, the unit, its rows and the fix. Then every read itself goes through `CheckedStore`
(neurosel.store._checked), which compares each file's size and checksum with the manifest before
Zarr sees its bytes: a file of the right size with other bytes (changed, copied from another
store, swapped) is named the same way. `verify` re-reads every file and reports every problem.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable
from typing import Any

import zarr
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from neurosel.errors import DamagedStoreError

MANIFEST_KEY = "neurosel_manifest"
METADATA_KEY = "_metadata"  # in the manifest: the arrays' zarr.json files, written once
# In the manifest: the checksum its entries use. Manifests written since format 3 name it: the
# 64-bit XXH3 of the whole file (~21 GB/s on one core here, so checking every read costs a few per
# cent of a pass), and they record every file, fill-value units included (arrays are written with
# write_empty_chunks), so a null entry is damage. Format 2 manifests name none: zlib's CRC-32
# (~3.6 GB/s), and null means "nothing was written". Why not CRC32C, as fast: every file Zarr
# writes here ends with the CRC32C of the bytes before it (the crc32c codec closes each chunk and
# each shard index), and the CRC32C of a message followed by its own CRC32C is one constant for
# every message (the CRC residue): every file would have the same checksum.
CHECKSUM_KEY = "_checksum"
CHECKSUM = "xxh3_64"
LEGACY_CHECKSUM = "crc32"
WRITE_ALL = {"write_empty_chunks": True}  # the array config of every write: no unit left unwritten
SIZE_REQUESTS = 16  # file sizes asked at once by a check (see _sizes)


class Hasher:
    """A manifest checksum computed piece by piece: `update(bytes or uint8 array)`, then `value`."""

    def __init__(self, algorithm: str = CHECKSUM) -> None:
        if algorithm not in (CHECKSUM, LEGACY_CHECKSUM):
            raise ValueError(f"unknown checksum {algorithm!r}")
        self.crc: int | None = 0 if algorithm == LEGACY_CHECKSUM else None
        self.xxh = None if algorithm == LEGACY_CHECKSUM else _xxh3()

    def update(self, data: Any) -> None:
        if self.xxh is None:
            self.crc = zlib.crc32(data, self.crc)
        else:
            self.xxh.update(data)

    @property
    def value(self) -> int:
        return int(self.crc if self.xxh is None else self.xxh.intdigest())


def _xxh3() -> Any:
    import xxhash

    return xxhash.xxh3_64()


def checksum(data: Any, algorithm: str = CHECKSUM) -> int:
    """The manifest checksum of a file's bytes (bytes or a contiguous uint8 numpy array)."""
    hasher = Hasher(algorithm)
    hasher.update(data)
    return hasher.value


def algorithm_of(manifest: dict[str, Any] | None) -> str:
    """The checksum a manifest's entries use (format 2 manifests name none: CRC-32)."""
    return str((manifest or {}).get(CHECKSUM_KEY, LEGACY_CHECKSUM))


def strict(manifest: dict[str, Any] | None) -> bool:
    """True for manifests that record every file (format 3): a null entry is then damage."""
    return CHECKSUM_KEY in (manifest or {})


def array_entries(manifest: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The per-array entries of a manifest (without the metadata files and the checksum name)."""
    return {k: v for k, v in (manifest or {}).items() if k not in (METADATA_KEY, CHECKSUM_KEY)}


def unit_rows(array: zarr.Array) -> int:
    """Rows per storage unit (file) of an array: a shard, or a chunk when unsharded."""
    return int(array.shards[0] if array.shards else array.chunks[0])


def unit_count(array: zarr.Array, rows: int | None = None) -> int:
    """Storage units holding rows [0, rows) (all rows by default)."""
    rows = array.shape[0] if rows is None else rows
    return -(-rows // unit_rows(array)) if array.ndim else 1


def unit_key(array: zarr.Array, unit: int) -> str:
    """The store key of a unit, e.g. activations/c/3/0/0."""
    coords = (unit,) + (0,) * (array.ndim - 1) if array.ndim else ()
    return f"{array.path}/{array.metadata.encode_chunk_key(coords)}"


def _sizes(store: Any, keys: list[str]) -> list[int | None]:
    """The sizes of files (None where absent), asked together: one trip to Zarr's event loop
    instead of one per file (4 side-array chunks: 1.3 ms one by one, 0.4 ms together), at most
    SIZE_REQUESTS at a time (a remote store's whole-store check asks for thousands)."""

    async def every() -> list[int | None]:
        limit = asyncio.Semaphore(SIZE_REQUESTS)

        async def size(key: str) -> int | None:
            async with limit:
                try:
                    return int(await store.getsize(key))
                except (FileNotFoundError, KeyError):
                    return None

        return list(await asyncio.gather(*(size(key) for key in keys)))

    return sync(every())


def _bytes(store: Any, key: str, size: int | None = None) -> bytes | None:
    """A file's bytes (None when absent); with `size`, at most size + 1 of them, so a file that is
    not what its manifest entry says (a symlink to /dev/zero, a huge foreign file) is never read
    past its recorded size."""
    limit = None if size is None else RangeByteRequest(0, size + 1)
    buffer = sync(store.get(key, prototype=default_buffer_prototype(), byte_range=limit))
    return None if buffer is None else buffer.to_bytes()


def record_units(array: zarr.Array, units: Iterable[int]) -> dict[str, list[int] | None]:
    """Manifest entries {unit: [size, crc32] or None (nothing written)} for units just written."""
    entries: dict[str, list[int] | None] = {}
    for unit in units:
        data = _bytes(array.store, unit_key(array, unit))
        entries[str(unit)] = None if data is None else [len(data), checksum(data)]
    return entries


def record_file(store: Any, key: str) -> list[int] | None:
    """[size, crc32] of one file of the store, or None when absent."""
    data = _bytes(store, key)
    return None if data is None else [len(data), checksum(data)]


def verify_files(store: Any, recorded: dict[str, Any], where: str, algorithm: str = CHECKSUM) -> list[str]:
    """Problems of files recorded whole (the arrays' zarr.json): missing, resized or changed."""
    problems = []
    for key, expected in sorted(recorded.items()):
        if expected is None:
            continue
        data = _bytes(store, key, expected[0])
        if data is None:
            problems.append(f"{where}: {key} is missing")
        elif len(data) != expected[0] or checksum(data, algorithm) != expected[1]:
            problems.append(f"{where}: {key} was changed after it was written (size or checksum differs)")
    return problems


def record_array(array: zarr.Array) -> dict[str, list[int] | None]:
    """Manifest entries for every unit of an array written in one go (side arrays, coordinates)."""
    return record_units(array, range(unit_count(array)))


STORE_FIX = "the store is damaged: restore the file or re-extract it (`neurosel verify` lists every problem)"


def check_units(
    array: zarr.Array,
    manifest: dict[str, Any] | None,
    units: Iterable[int],
    where: str,
    fix: str = STORE_FIX,
) -> None:
    """Raise DamagedStoreError unless every unit in `units` matches the manifest by presence and size.

    Without a manifest for the array (stores and results of format 1) a missing file cannot be told
    from a unit Zarr never wrote (all fill values), so only empty files are reported."""
    recorded = None if manifest is None else manifest.get(array.path)
    units = list(units)
    sizes = _sizes(array.store, [unit_key(array, unit) for unit in units])
    for unit, size in zip(units, sizes, strict=True):
        if recorded is not None:
            if str(unit) not in recorded:
                raise DamagedStoreError(
                    f"{where}: {_describe(array, unit)} is not in the manifest although it was written; {fix}"
                )
            expected = recorded[str(unit)]
            if expected is None and strict(manifest):
                raise DamagedStoreError(
                    f"{where}: {_describe(array, unit)} has a null manifest entry, but every file of this "
                    f"store was recorded when written; {fix}"
                )
            if expected is None:
                continue  # format 2: nothing was written, the fill value is the data
            want = expected[0]
        else:
            if size is None:
                continue
            want = None
        if size is None or size == 0 or (want is not None and size != want):
            state = (
                "missing" if size is None else "empty" if size == 0 else f"truncated ({size} of {want} bytes)"
            )
            if want is not None and size is not None and size > want:
                state = f"the wrong size ({size} bytes, {want} written)"
            raise DamagedStoreError(f"{where}: {_describe(array, unit)} is {state}; {fix}")


def _describe(array: zarr.Array, unit: int) -> str:
    rows = unit_rows(array) if array.ndim else 1
    first, last = unit * rows, min((unit + 1) * rows, array.shape[0] if array.ndim else 1) - 1
    return f"array {array.path!r} file {unit_key(array, unit)} (rows {first}-{last})"


def verify_array(
    array: zarr.Array, manifest: dict[str, Any] | None, where: str, rows: int | None = None
) -> list[str]:
    """Every problem of an array's files (for rows [0, rows)) against the manifest: presence, size
    and CRC-32 (a full read of the files), then a decode of every unit (the chunks' own CRC32C).
    Without a manifest for the array, only presence and decoding are checked."""
    problems = []
    recorded = None if manifest is None else manifest.get(array.path)
    for unit in range(unit_count(array, rows)):
        name = f"{where}: {_describe(array, unit)}"
        if recorded is not None and str(unit) not in recorded:
            problems.append(f"{name} has no manifest entry")
            continue
        expected = None if recorded is None else recorded[str(unit)]
        if recorded is not None and expected is None and strict(manifest):
            problems.append(f"{name} has a null manifest entry (every file of this store was recorded)")
            continue
        data = _bytes(array.store, unit_key(array, unit), None if expected is None else expected[0])
        if data is None:
            if expected is not None:
                problems.append(f"{name} is missing")
            continue  # nothing was written (the fill value is the data), or no manifest to tell
        if not data:
            problems.append(f"{name} is empty")
            continue
        if expected is not None and len(data) != expected[0]:
            if len(data) > expected[0]:
                problems.append(f"{name} has more than the {expected[0]} bytes written")
            else:
                problems.append(f"{name} has {len(data)} bytes, {expected[0]} were written")
            continue
        if expected is not None and checksum(data, algorithm_of(manifest)) != expected[1]:
            problems.append(f"{name} does not match its checksum (its bytes changed)")
            continue
        try:
            step = unit_rows(array) if array.ndim else 1
            array[unit * step : (unit + 1) * step] if array.ndim else array[()]
        except Exception as error:  # a codec or checksum failure while decoding
            problems.append(f"{name} cannot be decoded ({type(error).__name__})")
    return problems
