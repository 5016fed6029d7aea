"""Chunk passes as Dask tasks: row ranges mapped on workers, partials merged in a tree there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neurosel.store import DEFAULT_MEMORY_BUDGET, ActivationStore, ChunkPass, decode, open_store, tree_reduce
from neurosel.store._integrity import unit_rows

TASKS_PER_WORKER = 4  # ranges per worker: enough to balance, few enough that partials stay few


def row_ranges(store: ActivationStore, stop: int, parts: int) -> list[tuple[int, int]]:
    """About `parts` ranges of activation rows [0, stop), each a whole number of shards."""
    unit = unit_rows(store.activations)
    units = -(-stop // unit)
    per = max(1, -(-units // max(parts, 1)))
    return [(i * unit, min((i + per) * unit, stop)) for i in range(0, units, per)]


def _fold(path: str, start: int, stop: int, factory: Callable[[], ChunkPass], memory_budget: int) -> Any:
    """On a worker: the partial of rows [start, stop), read from the store there."""
    store = open_store(path)
    p = factory()
    total = p.identity()
    for block in store.blocks(stop, memory_budget, start=start):
        total = p.chunk(block, out=total)
    return p.finish(total) if getattr(p, "finish_on_worker", False) else total


class StatsFactory:
    """Builds the statistics pass on a worker, on the worker's own device ("cpu" or "cuda": with
    dask-cuda each worker sees its one GPU as cuda:0)."""

    def __init__(self, plan: Any, device: str) -> None:
        self.plan, self.device = plan, device

    def __call__(self) -> ChunkPass:
        from neurosel.devices import resolve_device
        from neurosel.stats import make_pass

        return make_pass(self.plan, resolve_device(self.device).for_stage("stats"))


def _merge(factory: Callable[[], ChunkPass], a: Any, b: Any) -> Any:
    return factory().merge(a, b)


def map_reduce(
    client: Any,
    store: ActivationStore,
    factory: Callable[[], ChunkPass],
    stop: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    split_every: int = 2,
) -> Any:
    """The merged partial of a pass over activation rows [0, stop), computed on the cluster.

    `factory` builds the pass on each worker (it must pickle: a class and its plan, not a live
    object holding device buffers)."""
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    ranges = row_ranges(store, stop, workers * TASKS_PER_WORKER)
    futures = [client.submit(_fold, store.path, a, b, factory, memory_budget, pure=False) for a, b in ranges]
    if not futures:
        return factory().identity()

    def submit_merge(a: Any, b: Any) -> Any:  # the merge runs on a worker; only futures move here
        return client.submit(_merge, factory, a, b, pure=False)

    return tree_reduce(futures, submit_merge, split_every).result()


class _StoreProduct:
    """A solver product pass built on a worker from plain data: the design's standardisation and
    the product's arguments (a picklable factory for `map_reduce`)."""

    def __init__(self, kind: str, rows: int, center, scale, dtype_name: str, args: tuple) -> None:
        self.kind, self.rows, self.center, self.scale = kind, rows, center, scale
        self.dtype_name, self.args = dtype_name, args

    def __call__(self) -> ChunkPass:
        from neurosel.solver._design import BlockDesign, _Gram, _Matvec, _RMatvec

        design = BlockDesign(
            lambda: [], self.rows, self.center, self.scale, dtype=np.float32, decode=self._decode
        )
        product = {"rmatvec": _RMatvec, "gram": _Gram, "matvec": _Matvec}[self.kind]
        return product(design, *self.args)

    def _decode(self, raw: Any) -> Any:
        return decode(raw, self.dtype_name)


class DistributedDesign:
    """The solver's design Z = (X − center) / scale of a store, each product a map-reduce of row
    ranges on a Dask cluster (float32 arithmetic, float64 results, as the streamed design)."""

    def __init__(
        self,
        client: Any,
        store: ActivationStore,
        center: np.ndarray,
        scale: np.ndarray,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        self.client, self.store, self.memory_budget = client, store, memory_budget
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.where(np.asarray(scale) > 0, scale, 1.0).astype(np.float64)
        self.rows = store.n
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.center.size

    def _run(self, kind: str, *args: Any) -> Any:
        self.passes += 1
        factory = _StoreProduct(kind, self.rows, self.center, self.scale, self.store.meta["dtype"], args)
        partial = map_reduce(self.client, self.store, factory, self.rows, self.memory_budget)
        return factory().finish(partial)

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._run("rmatvec", v)

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._run("gram", cols, d, v, exact)

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._run("matvec", cols, u)
