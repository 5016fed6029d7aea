"""A Zarr store that checks every file it reads against the commit manifest before its bytes are used.

Zarr reads files through a store's `get`; this wrapper sits between Zarr and the real store (a local
folder or any fsspec file system). For every file a manifest records, a whole-file read (a pass's
block is a whole shard by default) compares the bytes' size and checksum with the manifest before
Zarr gets them. A byte-range read (a block smaller than a shard, `read()` of a few rows) first
checks the whole file by streaming it in 1 MiB pieces (memory stays bounded), then reads the
range; the file is remembered as checked for the next ranges of the same pass (the last
`CHECKED_FILES` files, names only). A file whose bytes differ from what was committed is a
`DamagedStoreError` naming the array, the file, its rows and the fix, whatever the reason: a
damaged disk, a file copied from another store of the same shape, two files swapped, a symlink to
someone else's file. A file the manifest says was never written must be absent. A chunk file of a
registered array that its manifest does not list is refused, never read.

Keys are only looked up in the manifests, never built from them, so nothing a store says can make a
read leave the store.
"""

from __future__ import annotations

import asyncio
import collections
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zarr.abc.store import ByteRequest, RangeByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from neurosel.errors import DamagedStoreError
from neurosel.store._integrity import STORE_FIX, Hasher, algorithm_of, checksum, strict, unit_rows

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
CHECKED_FILES = 64  # files remembered as checked, for the later byte ranges of the same files
PIECE = 1 << 20  # bytes per piece when a file is checked for a byte-range read


@dataclass(frozen=True)
class Recorded:
    """What one manifest says of one array's files: {unit: [size, checksum] or None}, the rows per
    unit (for messages), who to name, whether null entries are damage, and the checksum's name."""

    units: Mapping[str, Any]
    rows: int
    where: str
    strict: bool
    algorithm: str


class CheckedStore(WrapperStore):
    """`register(array_path, recorded)` adds an array's manifest entries and `register_file(key,
    entry, where, algorithm)` a whole file (an array's zarr.json); reads of those files are checked,
    every other read passes through."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.arrays: dict[str, Recorded] = {}
        self.files: dict[str, tuple[Any, str, str]] = {}
        self._checked: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _with_store(self, store: Any) -> CheckedStore:
        twin = type(self)(store)
        twin.arrays, twin.files = self.arrays, self.files
        return twin

    @property
    def unchecked(self) -> Any:
        """The store underneath, for `verify`, which reads every file itself and reports every problem."""
        return self._store

    def register(self, array: Any, units: Mapping[str, Any], manifest: Mapping[str, Any], where: str) -> None:
        """Check the files of `array` against `units`, its entries in `manifest` (whose format says
        whether null entries are damage and which checksum the entries use)."""
        self.arrays[array.path] = Recorded(
            units, unit_rows(array), where, strict(manifest), algorithm_of(manifest)
        )

    def register_file(self, key: str, entry: Any, where: str, algorithm: str) -> None:
        self.files[key] = (entry, where, algorithm)

    def _expected(self, key: str) -> tuple[bool, Any, str, str]:
        """(recorded?, entry, what to call the file, checksum) for a key."""
        if key in self.files:
            entry, where, algorithm = self.files[key]
            return True, entry, f"{where}: file {key}", algorithm
        array_path, sep, rest = key.rpartition("/c/")
        recorded = self.arrays.get(array_path) if sep else None
        if recorded is None:
            return False, None, key, ""
        unit = rest.split("/", 1)[0]
        name = f"{recorded.where}: array {array_path!r} file {key}"
        if unit.isdigit():
            name += f" (rows {int(unit) * recorded.rows}-{(int(unit) + 1) * recorded.rows - 1})"
        if unit not in recorded.units:
            raise DamagedStoreError(f"{name} is not in the manifest although it is read; {STORE_FIX}")
        entry = recorded.units[unit]
        if entry is None and recorded.strict:
            raise DamagedStoreError(
                f"{name} has a null manifest entry, but every file of this store was recorded; {STORE_FIX}"
            )
        return True, entry, name, recorded.algorithm

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        recorded, entry, name, algorithm = self._expected(key)
        if not recorded:
            return await self._store.get(key, prototype, byte_range)
        if byte_range is None:  # never more than one byte past the recorded size (a symlink to /dev/zero)
            limit = None if entry is None else RangeByteRequest(0, int(entry[0]) + 1)
            data = await self._store.get(key, prototype, limit)
            # off the event loop: the hash releases the GIL, so concurrent reads check in parallel
            await asyncio.to_thread(_check, data, entry, name, algorithm)
            return data
        with self._lock:
            known = key in self._checked
            if known:
                self._checked.move_to_end(key)
        if not known:
            await self._check_streaming(key, prototype, entry, name, algorithm)
            with self._lock:
                self._checked[key] = None
                while len(self._checked) > CHECKED_FILES:
                    self._checked.popitem(last=False)
        return await self._store.get(key, prototype, byte_range)

    async def _check_streaming(
        self, key: str, prototype: BufferPrototype, entry: Any, name: str, algorithm: str
    ) -> None:
        """The whole file's size and checksum, read in pieces of PIECE bytes."""
        if entry is None:
            _check(await self._store.get(key, prototype, RangeByteRequest(0, 1)), None, name, algorithm)
            return
        size = int(entry[0])
        try:
            _check_size(int(await self._store.getsize(key)), size, name)
        except (FileNotFoundError, KeyError):
            raise DamagedStoreError(f"{name} is missing; {STORE_FIX}") from None
        hasher = Hasher(algorithm)
        for start in range(0, size, PIECE):
            piece = await self._store.get(key, prototype, RangeByteRequest(start, min(start + PIECE, size)))
            if piece is None:
                raise DamagedStoreError(f"{name} is missing; {STORE_FIX}")
            await asyncio.to_thread(hasher.update, piece.as_numpy_array())
        _check_sum(hasher.value, int(entry[1]), name)

    async def getsize(self, key: str) -> int:
        """The file's size, asked of the store underneath: zarr's WrapperStore does not forward it,
        and the fallback reads the whole file (measured: a third of a pass's time)."""
        return await self._store.getsize(key)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]


def _check(data: Buffer | None, entry: Any, name: str, algorithm: str) -> None:
    """DamagedStoreError unless `data` is what the manifest entry recorded (None: no file)."""
    if entry is None:
        if data is not None:
            raise DamagedStoreError(
                f"{name} exists although nothing was written there (a foreign file); {STORE_FIX}"
            )
        return
    if data is None:
        raise DamagedStoreError(f"{name} is missing; {STORE_FIX}")
    _check_size(len(data), int(entry[0]), name)
    _check_sum(checksum(data.as_numpy_array(), algorithm), int(entry[1]), name)


def _check_size(actual: int, size: int, name: str) -> None:
    if actual != size:
        state = "empty" if actual == 0 else f"{actual} bytes, {size} were written"
        if actual > size:
            state = f"more than the {size} bytes written"
        raise DamagedStoreError(f"{name} has the wrong size ({state}); {STORE_FIX}")


def _check_sum(actual: int, want: int, name: str) -> None:
    if actual != want:
        raise DamagedStoreError(
            f"{name} does not match its checksum: its bytes are not the ones committed (changed, or a "
            f"file from elsewhere); {STORE_FIX}"
        )


def well_formed(entry: Any) -> bool:
    """One manifest entry: [size, checksum] (two ints) or None (nothing written)."""
    return entry is None or (
        isinstance(entry, list) and len(entry) == 2 and all(type(v) is int for v in entry)
    )


def well_formed_units(units: Any) -> bool:
    """A manifest's entries for one array: {unit number: entry}."""
    return isinstance(units, dict) and all(
        isinstance(unit, str) and unit.isdigit() and well_formed(entry) for unit, entry in units.items()
    )


def valid_path(name: Any) -> bool:
    """A relative path of plain names inside the store: no '..', no absolute path, no odd characters.
    Every name a store's attributes give (manifest keys, array and result names) must be one."""
    return isinstance(name, str) and all(_NAME.fullmatch(part) for part in name.split("/"))
