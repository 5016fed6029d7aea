"""The solver's design on a runner: each product a map-reduce of row ranges, the outer loop here.

On a Dask cluster each task builds its product from plain data (`_StoreProduct`: the design's
standardisation, the product's arguments and the device's worker spec) and folds its row range on
the worker's device for the "solver" stage: cupy on a GPU worker (each block copied to the device,
products on cuBLAS), numpy otherwise. Each block's partial is brought to the host (float64 numpy)
before it is merged, so the partials that travel between workers and back here are numpy arrays
whatever device the workers have, and this process finishes them with numpy (it may have no GPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosel.devices import Device, resolve_device, to_host
from neurosel.kernels.standardise import safe_scale
from neurosel.scaleout import Runner
from neurosel.solver._design import BlockDesign, _Gram, _Matvec, _RMatvec
from neurosel.store import DEFAULT_MEMORY_BUDGET, ActivationStore, Block, ChunkPass, decode

PRODUCTS = {"rmatvec": _RMatvec, "gram": _Gram, "matvec": _Matvec}


class _StoreProduct:
    """A solver product pass built from plain data (a picklable factory for `Runner.reduce`)."""

    def __init__(
        self, kind: str, rows: int, center, scale, dtype_name: str, args: tuple, device: str | Device = "cpu"
    ) -> None:
        self.kind, self.rows, self.center, self.scale = kind, rows, center, scale
        self.dtype_name, self.args, self.device = dtype_name, args, device

    def __call__(self) -> ChunkPass:
        device = resolve_device(self.device).for_stage("solver")
        return _HostPartials(self.product(device.xp), device)

    def product(self, xp: Any = np) -> Any:
        """The product on the array module `xp`, in float32 arithmetic (float64 results)."""
        design = BlockDesign(
            lambda: [], self.rows, self.center, self.scale, dtype=np.float32, decode=self._decode, xp=xp
        )
        return PRODUCTS[self.kind](design, *self.args)

    def _decode(self, raw: Any) -> Any:
        return decode(raw, self.dtype_name)


class _HostPartials:
    """A product folded on `device`, each block's partial brought to the host before it is merged:
    the partials are numpy (float64) wherever they go. On the CPU the arithmetic is the product's own
    fold (`merge(out, chunk(block))`)."""

    def __init__(self, product: Any, device: Device) -> None:
        self.product, self.device = product, device
        self.on_device = device.xp is not np

    def identity(self) -> Any:
        return self._host(self.product.identity())

    def chunk(self, block: Block, out: Any = None) -> Any:
        if self.on_device:
            with self.device.activate():
                block = Block(block.start, block.stop, self.device.xp.asarray(block.data))
                part = self._host(self.product.chunk(block))
        else:
            part = self.product.chunk(block)
        return part if out is None else self.product.merge(out, part)

    def merge(self, a: Any, b: Any) -> Any:
        return self.product.merge(a, b)

    def finish(self, partial: Any) -> Any:
        return self.product.finish(partial)

    def _host(self, partial: Any) -> Any:
        if isinstance(partial, dict):
            return {k: to_host(v) for k, v in partial.items()}
        return tuple(to_host(a) for a in partial)


class DistributedDesign:
    """The solver's design Z = (X − center) / scale of a store, each product a `Runner.reduce` of
    row ranges (float32 arithmetic, float64 results, as the streamed design), on the workers'
    device for the "solver" stage (`device` as `Runner.placed` gives it); finished here on numpy."""

    def __init__(
        self,
        runner: Runner,
        store: ActivationStore,
        center: np.ndarray,
        scale: np.ndarray,
        device: str | Device = "cpu",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        self.runner, self.store, self.device, self.memory_budget = runner, store, device, memory_budget
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = safe_scale(scale).astype(np.float64)
        self.rows = store.n
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.center.size

    def _run(self, kind: str, *args: Any) -> Any:
        self.passes += 1
        factory = _StoreProduct(
            kind, self.rows, self.center, self.scale, self.store.meta["dtype"], args, self.device
        )
        partial = self.runner.reduce(self.store, factory, self.rows, self.memory_budget)
        return factory.product(np).finish(partial)

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._run("rmatvec", v)

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._run("gram", cols, d, v, exact)

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._run("matvec", cols, u)
