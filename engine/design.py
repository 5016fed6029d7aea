"""The design matrix Z of the path solver, seen only through the products it needs.

The solver never holds Z: it asks for Zᵀ V over all neurons (a full pass), for the working set's
Hessian blocks Z_Wᵀ diag(D_kl) Z_W with Z_Wᵀ D and Z_Wᵀ V (one pass), and for Z_W U (one pass);
each call counts as a pass. Z = (X − center) / scale is applied on the fly to row blocks of X, which
come from an in-memory array, from a store (streamed), or from GPU memory: the products are the
same code on numpy or cupy (`xp`), with blocks decoded to the compute dtype (float32 accumulation
on the GPU) and the small results returned to the host as float64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

Blocks = Callable[[], Iterable[tuple[int, int, Any]]]


class BlockDesign:
    """Products with Z = (X − center) / scale over row blocks (start, stop, raw X rows) of X."""

    def __init__(
        self,
        blocks: Blocks,
        rows: int,
        center: np.ndarray,
        scale: np.ndarray,
        *,
        decode: Callable[[Any], Any] | None = None,
        xp: Any = np,
        dtype: Any = np.float64,
    ) -> None:
        self._blocks = blocks
        self._decode = decode or (lambda raw: raw)
        self.xp, self.dtype, self.rows = xp, dtype, rows
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.where(np.asarray(scale) > 0, scale, 1.0).astype(np.float64)
        self._center_x, self._scale_x = xp.asarray(self.center, dtype), xp.asarray(self.scale, dtype)
        self._standardised = not self.center.any() and bool(np.all(self.scale == 1.0))
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.center.size

    def _x(self, raw: Any) -> Any:
        return self.xp.asarray(self._decode(raw), dtype=self.dtype)

    def _z(self, raw: Any, cols: Any) -> Any:
        """Standardised columns `cols` (an index array on the design's device) of a block; only
        those columns are decoded."""
        if self._standardised:
            return self._x(raw[:, cols])
        return (self._x(raw[:, cols]) - self._center_x[cols]) / self._scale_x[cols]

    def _host(self, a: Any) -> np.ndarray:
        return np.asarray(a.get() if hasattr(a, "get") else a, dtype=np.float64)

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """Zᵀ V over every neuron: (p, K) for V (n, K)."""
        self.passes += 1
        xp, vd = self.xp, self.xp.asarray(v, self.dtype)
        out = xp.zeros((self.center.size, v.shape[1]), dtype=np.float64)
        for start, stop, raw in self._blocks():
            out += self._x(raw).T @ vd[start:stop]
        return (self._host(out) - self.center[:, None] * v.sum(0)) / self.scale[:, None]

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the working set W (q neurons) and D (n, K, K), V (n, K): the Hessian H (qK × qK,
        index j·K + k), the coupling with the intercepts Z_Wᵀ D (q, K, K) and Z_Wᵀ V (q, K)."""
        self.passes += 1
        xp, (q, k) = self.xp, (cols.size, v.shape[1])
        dd, vd = xp.asarray(d, self.dtype), xp.asarray(v, self.dtype)
        h = xp.zeros((k, k, q, q), dtype=np.float64)
        zd, zv = xp.zeros((q, k, k), dtype=np.float64), xp.zeros((q, k), dtype=np.float64)
        pairs = [(a, b) for a in range(k) for b in range(a, k)]
        ci = xp.asarray(cols)
        for start, stop, raw in self._blocks():
            z = self._z(raw, ci)
            db = dd[start:stop]
            for a, b in pairs:
                h[a, b] += z.T @ (z * db[:, a, b][:, None])
            zd += xp.einsum("iq,ikl->qkl", z, db)
            zv += z.T @ vd[start:stop]
        h = self._host(h)
        for a, b in pairs:
            h[b, a] = h[a, b].T
        return h.transpose(2, 0, 3, 1).reshape(q * k, q * k), self._host(zd), self._host(zv)

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z_W U: (n, K) for U (q, K)."""
        self.passes += 1
        xp, ud = self.xp, self.xp.asarray(u, self.dtype)
        out, ci = xp.empty((self.rows, u.shape[1]), dtype=np.float64), xp.asarray(cols)
        for start, stop, raw in self._blocks():
            out[start:stop] = self._z(raw, ci) @ ud
        return self._host(out)


class ArrayDesign(BlockDesign):
    """Z for an in-memory X (n, p), in row blocks of `block_rows`."""

    def __init__(
        self,
        x: np.ndarray,
        center: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        *,
        block_rows: int | None = None,
        xp: Any = np,
        dtype: Any = np.float64,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        n, p = x.shape
        step = block_rows or n or 1
        spans = [(s, min(s + step, n), x[s : s + step]) for s in range(0, n, step)]
        super().__init__(
            lambda: spans,
            n,
            np.zeros(p) if center is None else center,
            np.ones(p) if scale is None else scale,
            decode=decode,
            xp=xp,
            dtype=dtype,
        )
