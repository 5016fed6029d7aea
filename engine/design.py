"""The design matrix Z of the path solver, seen only through the products it needs.

The solver never holds Z: it asks for Zᵀv over all neurons (a full pass), for Z_Wᵀ diag(d) Z_W and
Z_Wᵀv on a working set W (one pass), and for Z_W u (one pass); each call counts as a pass over the
data. `ArrayDesign` wraps an in-memory array; a store-backed design streams blocks instead.
"""

from __future__ import annotations

import numpy as np


class ArrayDesign:
    """Z = (X − center) / scale for an in-memory X (n, p); standardisation is applied on the fly."""

    def __init__(self, x: np.ndarray, center: np.ndarray | None = None, scale: np.ndarray | None = None):
        self.x = x
        self.center = np.zeros(x.shape[1]) if center is None else center
        self.scale = np.ones(x.shape[1]) if scale is None else np.where(scale > 0, scale, 1.0)
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape

    def _z(self, cols: np.ndarray | slice) -> np.ndarray:
        return (self.x[:, cols] - self.center[cols]) / self.scale[cols]

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """Zᵀ v over every neuron."""
        self.passes += 1
        return (self.x.T @ v - self.center * v.sum()) / self.scale

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Z_Wᵀ diag(d) Z_W, Z_Wᵀ d and Z_Wᵀ v for the working set, in one pass."""
        self.passes += 1
        z = self._z(cols)
        return z.T @ (z * d[:, None]), z.T @ d, z.T @ v

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z_W u."""
        self.passes += 1
        return self._z(cols) @ u


class StoreDesign:
    """Z = (X − mean) / std for a store's activations, streamed block by block for every product."""

    def __init__(self, store, center: np.ndarray, scale: np.ndarray, rows: int, memory_budget: int) -> None:
        from engine.store import to_float
        from engine.stream import iter_blocks

        self._iter = lambda: iter_blocks(store.activations, rows, memory_budget)
        self._decode = lambda data: to_float(data, store.meta["dtype"]).astype(np.float64)
        self.center = center
        self.scale = np.where(scale > 0, scale, 1.0)
        self.rows = rows
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.center.size

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        self.passes += 1
        out = np.zeros(self.center.size)
        for block in self._iter():
            out += self._decode(block.data).T @ v[block.start : block.stop]
        return (out - self.center * v.sum()) / self.scale

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.passes += 1
        q = cols.size
        h, zd, zv = np.zeros((q, q)), np.zeros(q), np.zeros(q)
        for block in self._iter():
            z = (self._decode(block.data[:, cols]) - self.center[cols]) / self.scale[cols]
            dd, vv = d[block.start : block.stop], v[block.start : block.stop]
            h += z.T @ (z * dd[:, None])
            zd += z.T @ dd
            zv += z.T @ vv
        return h, zd, zv

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        self.passes += 1
        out = np.empty(self.rows)
        for block in self._iter():
            z = (self._decode(block.data[:, cols]) - self.center[cols]) / self.scale[cols]
            out[block.start : block.stop] = z @ u
        return out
