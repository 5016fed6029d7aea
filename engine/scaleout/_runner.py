"""Where chunk passes run: in this process (`InProcess`) or on a Dask cluster (`OnDask`).

A pass is built by a picklable factory (a class and plain data, not a live object holding device
buffers) and run over rows [start, stop) of a store by `fold`, the one fold function: in this
process over [0, stop) with read-ahead, on a cluster over shard-aligned row ranges, one task each,
with the partials merged in a tree on the workers (`tree_reduce`) so that only the merged partial
comes back. This layer knows the store and the chunk-pass contract (`neurosel.store.ChunkPass`),
nothing of the stages above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from neurosel.devices import Device
from neurosel.errors import InputError
from neurosel.store import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_READERS,
    MAX_BLOCK_BYTES,
    ActivationStore,
    ChunkPass,
    open_store,
    tree_reduce,
    unit_rows,
)

TASKS_PER_WORKER = 4  # ranges per worker: enough to balance, few enough that partials stay few

Factory = Callable[[], ChunkPass]


def fold(
    store: ActivationStore,
    factory: Factory,
    start: int,
    stop: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    readers: int = DEFAULT_READERS,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    on_rows: Callable[[int], None] | None = None,
) -> Any:
    """The partial of activation rows [start, stop) of `store`, folded through the pass `factory()`
    builds (`chunk(block, out=...)`); finished when the pass sets `finish_on_worker` (a GPU pass
    returns host arrays, not device buffers). `on_rows(n)` after each block (progress bars)."""
    p = factory()
    total = p.identity()
    for block in store.blocks(stop, memory_budget, readers, max_block_bytes=max_block_bytes, start=start):
        total = p.chunk(block, out=total)
        if on_rows is not None:
            on_rows(block.rows)
    return p.finish(total) if getattr(p, "finish_on_worker", False) else total


def row_ranges(store: ActivationStore, stop: int, parts: int) -> list[tuple[int, int]]:
    """About `parts` ranges of activation rows [0, stop), each a whole number of shards."""
    unit = unit_rows(store.activations)
    units = -(-stop // unit)
    per = max(1, -(-units // max(parts, 1)))
    return [(i * unit, min((i + per) * unit, stop)) for i in range(0, units, per)]


class Runner(Protocol):
    """Runs chunk passes over a store; resolved once from `client=` (`resolve_runner`) and passed
    down like a Device."""

    distributed: bool  # True on a cluster
    client: Any  # the dask.distributed Client (None in this process): extraction submits its tasks

    def placed(self, device: str | Device) -> str | Device:
        """`device` as a pass factory receives it: the live Device in this process; on a cluster its
        `worker_spec` (a name passes as given), which each worker resolves for itself."""
        ...

    def label(self, kind: str) -> str:
        """Where a pass ran, for results' metadata: the device kind, or "dask (<kind> workers)"."""
        ...

    def reduce(
        self,
        store: ActivationStore,
        factory: Factory,
        stop: int,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        *,
        readers: int = DEFAULT_READERS,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        on_rows: Callable[[int], None] | None = None,
    ) -> Any:
        """The merged partial (see `fold`) of activation rows [0, stop)."""
        ...


class InProcess:
    """Passes in this process: one `fold` over [0, stop), blocks read ahead by a reader pool."""

    distributed = False
    client = None

    def placed(self, device: str | Device) -> str | Device:
        return device

    def label(self, kind: str) -> str:
        return kind

    def reduce(
        self,
        store: ActivationStore,
        factory: Factory,
        stop: int,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        *,
        readers: int = DEFAULT_READERS,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        on_rows: Callable[[int], None] | None = None,
    ) -> Any:
        return fold(store, factory, 0, stop, memory_budget, readers, max_block_bytes, on_rows)

    def __repr__(self) -> str:
        return "InProcess()"


class OnDask:
    """Passes as tasks on a `dask.distributed` cluster: each task opens the store on its worker (by
    path or URL), folds its row range and returns the partial; partials merge in a tree there."""

    distributed = True

    def __init__(self, client: Any, split_every: int = 2) -> None:
        self.client, self.split_every = client, split_every

    def placed(self, device: str | Device) -> str | Device:
        return device if isinstance(device, str) else device.worker_spec

    def label(self, kind: str) -> str:
        return f"dask ({kind} workers)"

    def reduce(
        self,
        store: ActivationStore,
        factory: Factory,
        stop: int,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        *,
        readers: int = DEFAULT_READERS,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        on_rows: Callable[[int], None] | None = None,
    ) -> Any:
        """`readers` and `max_block_bytes` shape the read-ahead in this process only: each task reads
        with the store's defaults. `on_rows(stop)` once, when the merged partial is back."""
        client = self.client
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        ranges = row_ranges(store, stop, workers * TASKS_PER_WORKER)
        futures = [
            client.submit(_fold_on_worker, store.path, a, b, factory, memory_budget, pure=False)
            for a, b in ranges
        ]
        if not futures:
            return factory().identity()

        def submit_merge(a: Any, b: Any) -> Any:  # the merge runs on a worker; only futures move here
            return client.submit(_merge, factory, a, b, pure=False)

        merged = tree_reduce(futures, submit_merge, self.split_every).result()
        if on_rows is not None:
            on_rows(stop)
        return merged

    def __repr__(self) -> str:
        return f"OnDask({self.client!r})"


def _fold_on_worker(path: str, start: int, stop: int, factory: Factory, memory_budget: int) -> Any:
    """On a worker: the partial of rows [start, stop), read from the store there."""
    return fold(open_store(path), factory, start, stop, memory_budget)


def _merge(factory: Factory, a: Any, b: Any) -> Any:
    return factory().merge(a, b)


IN_PROCESS = InProcess()


def resolve_runner(client: Any = None) -> Runner:
    """The Runner for `client=`: None runs in this process, a `dask.distributed.Client` on its
    cluster; a Runner passes through unchanged (resolve once at the boundary, then pass it down)."""
    if client is None:
        return IN_PROCESS
    if isinstance(client, (InProcess, OnDask)):
        return client
    if not (hasattr(client, "submit") and hasattr(client, "scheduler_info")):
        raise InputError(f"client {client!r}: pass a dask.distributed Client, or None to run here")
    return OnDask(client)
