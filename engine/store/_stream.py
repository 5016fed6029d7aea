"""Stream a store's activations as row blocks: a reader pool decodes ahead, memory stays bounded.

Every pass over a store (statistics, solver passes) is a per-block function returning a partial
plus an associative merge; this module supplies the blocks. Blocks are whole chunks (shard-aligned
when the budget allows), read by `readers` threads with at most `depth` blocks decoded ahead, so
peak memory stays within the budget (measured: tests/stats/test_stats.py) whatever the store's size.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from neurosel.defaults import DEFAULT_MEMORY_BUDGET
from neurosel.errors import DamagedStoreError

DEFAULT_READERS = min(4, os.cpu_count() or 1)  # more readers than cores only contend (measured)
DEPTH = 2
# glibc serves allocations above 32 MiB with fresh mmap'd pages: a block above that costs a page
# fault per 4 KiB on every read (measured: 280k faults per GB, half the read time); stay below, and
# above one default shard (8 chunks of ~2 MiB, rounded up to whole rows), so blocks are whole files.
MAX_BLOCK_BYTES = 24 << 20
SETTLE_SECONDS = 10.0  # the longest a failed pass waits for its other reads to end


@dataclass(frozen=True)
class Block:
    """Rows [start, stop) of the activations as stored, flattened to (rows, layers × hidden).

    The one unit every pass works on: `data` holds the stored values (bfloat16 as uint16 patterns;
    decode with neurosel.store.decode), on the host, or on a GPU for a design resident there."""

    start: int
    stop: int
    data: Any

    @property
    def rows(self) -> int:
        return self.stop - self.start


def block_rows(
    array: zarr.Array, memory_budget: int, depth: int = DEPTH, max_block_bytes: int = MAX_BLOCK_BYTES
) -> int:
    """Rows per block: whole chunks (whole shards when they fit), (depth + 2) blocks within budget."""
    chunk = array.chunks[0]
    shard = array.shards[0] if array.shards else chunk
    row_bytes = int(np.prod(array.shape[1:])) * array.dtype.itemsize
    # a block being read holds its encoded bytes, its decoded chunks and the assembled array
    fit = max(1, min(memory_budget // ((depth + 2) * 3), max_block_bytes) // row_bytes)
    if fit >= shard:
        return shard * (fit // shard)
    return max(chunk, chunk * (fit // chunk))


def iter_blocks(
    array: zarr.Array,
    stop: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    readers: int = DEFAULT_READERS,
    depth: int = DEPTH,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    check: Callable[[int, int], None] | None = None,
    start: int = 0,
) -> Iterator[Block]:
    """Yield blocks of rows [start, stop) in order while later blocks are decoded in the background.

    `check(start, stop)` runs before a block is read (the store's manifest check), in the reader
    thread, so a damaged file is reported by name instead of being read as the fill value, and the
    consumer does not wait for it (it waits on zarr's event loop: 75 ms of a 0.2 s statistics pass
    when it ran in the consumer's thread). A read that fails (or a
    consumer that stops, Ctrl-C included) lets the reads already started finish first
    (`settle_reads`), so nothing is left running when the error reaches the caller."""
    rows = block_rows(array, memory_budget, depth, max_block_bytes)
    width = int(np.prod(array.shape[1:]))
    starts = iter(range(start, stop, rows))
    try:
        with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="neurosel-read") as pool:
            pending: collections.deque = collections.deque()

            def read(start: int, end: int) -> Any:
                if check is not None:  # in the reader thread: the consumer never waits on a check
                    check(start, end)
                return array[start:end]

            def submit() -> None:
                start = next(starts, None)
                if start is not None:
                    end = min(start + rows, stop)
                    pending.append((start, end, pool.submit(read, start, end)))

            for _ in range(depth + 1):
                submit()
            while pending:
                start, end, future = pending.popleft()
                try:
                    data = future.result()
                except DamagedStoreError:  # a file that is not the one committed: already named
                    raise
                except Exception as error:  # a checksum or decode failure: name the chunk
                    raise corrupt_chunk_error(array, start, end, error) from None
                submit()
                yield Block(start, end, data.reshape(end - start, width))
    except BaseException:
        settle_reads()
        raise


def settle_reads(timeout: float = SETTLE_SECONDS) -> None:
    """Wait (at most `timeout` seconds) for the reads still running on zarr's event loop.

    One failed chunk ends zarr's read of a block while the other chunks' reads go on; left alone,
    they are destroyed at exit and asyncio prints a report for each ("Task was destroyed but it is
    pending!"). Reads only: nothing is written, so waiting is safe and short."""

    async def others() -> None:
        running = asyncio.all_tasks() - {asyncio.current_task()}
        if running:
            await asyncio.wait(running, timeout=timeout)

    with contextlib.suppress(Exception):  # the loop is gone (interpreter exit): nothing to wait for
        sync(others())


def corrupt_chunk_error(array: zarr.Array, start: int, end: int, error: Exception) -> DamagedStoreError:
    """Find the first chunk in rows [start, end) that fails to decode and name it."""
    chunk = array.chunks[0]
    for first in range(start - start % chunk, end, chunk):
        try:
            array[first : min(first + chunk, array.shape[0])]
        except Exception as e:
            error = e
            break
    else:
        first = start
    last = min(first + chunk, array.shape[0]) - 1
    return DamagedStoreError(
        f"{array_name(array)}: chunk {first // chunk} (rows {first}-{last}) cannot be read "
        f"({type(error).__name__}: {str(error).strip()[:160]}); the store is damaged: re-extract it "
        "(`neurosel verify` lists every problem)"
    )


def array_name(array: zarr.Array) -> str:
    """ "store PATH: array 'NAME'", the store as the user gave it (a folder, or a URL for remote
    stores), not zarr's name for its wrappers ("wrapping-file:///...")."""
    store = array.store
    while hasattr(store, "_store"):  # CheckedStore and other WrapperStores
        store = store._store
    return f"store {str(store).removeprefix('file://')}: array {array.path!r}"
