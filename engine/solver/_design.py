"""The design matrix Z of the path solver, seen only through the products it needs, each a chunk pass.

The solver never holds Z: it asks for Zᵀ V over all neurons (a full pass), for the working set's
Hessian blocks Z_Wᵀ diag(D_kl) Z_W with Z_Wᵀ D and Z_Wᵀ V (one pass), and for Z_W U (one pass);
each call counts as a pass. Z = (X − center) / scale is applied on the fly to row `Block`s of X,
which come from an in-memory array, from a store (streamed), or from GPU memory. Every product is
an neurosel.store.ChunkPass (`_RMatvec`, `_Gram`, `_Matvec`): a pure function of one block returning
a partial, an associative merge (a sum, or for Z_W U a union of row ranges) and a finish, written
once for numpy or cupy (`xp`), with blocks decoded to the compute dtype (float32 accumulation on
the GPU) and the small results returned to the host as float64. Each block's products run on
the BLAS threads their size gains from (neurosel.devices.blas_threads_for: one for small ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from neurosel.devices import blas_threads_for, to_host
from neurosel.kernels.standardise import safe_scale
from neurosel.store import Block, run_pass

Blocks = Callable[[], Iterable[Block]]


class BlockDesign:
    """Products with Z = (X − center) / scale over the row blocks of X that `blocks()` yields."""

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
        self.blocks = blocks
        self._decode = decode or (lambda raw: raw)
        self.xp, self.dtype, self.rows = xp, dtype, rows
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = safe_scale(scale).astype(np.float64)
        self.center_x, self.scale_x = xp.asarray(self.center, dtype), xp.asarray(self.scale, dtype)
        self.standardised = not self.center.any() and bool(np.all(self.scale == 1.0))
        self.passes = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.center.size

    def x(self, raw: Any) -> Any:
        """A block's stored values in the compute dtype on the design's device."""
        return self.xp.asarray(self._decode(raw), dtype=self.dtype)

    def z(self, raw: Any, cols: Any) -> Any:
        """Standardised columns `cols` (an index array on the design's device) of a block; only
        those columns are decoded."""
        if self.standardised:
            return self.x(raw[:, cols])
        return (self.x(raw[:, cols]) - self.center_x[cols]) / self.scale_x[cols]

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        self.passes += 1
        return run_pass(_RMatvec(self, v), self.blocks())

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.passes += 1
        return run_pass(_Gram(self, cols, d, v, exact), self.blocks())

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        self.passes += 1
        return run_pass(_Matvec(self, cols, u), self.blocks())


class _Sum:
    """Partials that merge by addition (a tuple of arrays); `out` is added into in place."""

    def merge(self, a: tuple, b: tuple) -> tuple:
        for x, y in zip(a, b, strict=True):
            x += y
        return a

    def fold(self, part: tuple, out: tuple | None) -> tuple:
        return part if out is None else self.merge(out, part)


class _RMatvec(_Sum):
    """Xᵀ V per block; finish: Zᵀ V = (Xᵀ V − center · ΣV) / scale, (p, K)."""

    def __init__(self, design: BlockDesign, v: np.ndarray) -> None:
        self.d, self.v = design, v
        self.vd = design.xp.asarray(v, design.dtype)

    def identity(self) -> tuple:
        return (self.d.xp.zeros((self.d.center.size, self.v.shape[1]), dtype=np.float64),)

    def chunk(self, block: Block, out: tuple | None = None) -> tuple:
        x = self.d.x(block.data)
        with blas_threads_for(2.0 * x.size * self.v.shape[1]):
            part = x.T @ self.vd[block.start : block.stop]
        return self.fold((part.astype(np.float64),), out)

    def finish(self, partial: tuple) -> np.ndarray:
        d = self.d
        return (to_host(partial[0], np.float64) - d.center[:, None] * self.v.sum(0)) / d.scale[:, None]


class _Gram(_Sum):
    """Per block: Z_Wᵀ diag(D_ab) Z_W for a ≤ b, Z_Wᵀ D and Z_Wᵀ V; finish: the symmetric
    (qK × qK) Hessian (index j·K + k), (q, K, K) and (q, K). `exact`: the products in float64
    arithmetic whatever the design's dtype (its columns are converted after they are gathered)."""

    def __init__(
        self, design: BlockDesign, cols: np.ndarray, d: np.ndarray, v: np.ndarray, exact: bool = False
    ) -> None:
        xp = design.xp
        self.d, self.q, self.k = design, cols.size, v.shape[1]
        self.dtype = np.float64 if exact else design.dtype  # the arithmetic of the products
        self.dd, self.vd = xp.asarray(d, self.dtype), xp.asarray(v, self.dtype)
        self.ci = xp.asarray(cols)
        self.pairs = [(a, b) for a in range(self.k) for b in range(a, self.k)]

    def identity(self) -> tuple:
        """No rows: an empty tuple, the sums allocated by the first block (`chunk`, `finish`)."""
        return ()

    def merge(self, a: tuple, b: tuple) -> tuple:
        if not a or not b:  # either has no rows
            return a or b
        return super().merge(a, b)

    def chunk(self, block: Block, out: tuple | None = None) -> tuple:
        """The block's products, in the compute dtype, added into `out`'s float64 sums as they are
        converted (no float64 partial: a (K, K, q, q) temporary costs a pass over q² K² doubles and
        its page faults, as much as the product itself at 10,000 rows); the first block's is `out`."""
        xp, q, k = self.d.xp, self.q, self.k
        z = self.d.z(block.data, self.ci).astype(self.dtype, copy=False)
        db = self.dd[block.start : block.stop]
        first = not out
        h = xp.empty((k, k, q, q), dtype=np.float64) if first else out[0]
        for a, b in self.pairs if first else ():  # the lower blocks are written by `finish`: zero till then
            if a != b:
                h[b, a] = 0.0
        with blas_threads_for(float(z.shape[0]) * q * q * k * k):  # n q² per diagonal pair, 2 n q² per other
            for a, b in self.pairs:
                if a == b:  # D_aa ≥ 0: (√D Z)ᵀ(√D Z) is a symmetric rank-k update, half the FLOPs
                    root = z * xp.sqrt(xp.maximum(db[:, a, a], 0.0))[:, None]
                    product = root.T @ root
                else:
                    product = z.T @ (z * db[:, a, b][:, None])
                if first:
                    h[a, b] = product
                else:
                    h[a, b] += product
            zd = xp.einsum("iq,ikl->qkl", z, db).astype(np.float64)
            zv = (z.T @ self.vd[block.start : block.stop]).astype(np.float64)
        if first:
            return h, zd, zv
        for total, part in zip(out[1:], (zd, zv), strict=True):
            total += part
        return out

    def finish(self, partial: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, k = self.q, self.k
        partial = partial or (np.zeros((k, k, q, q)), np.zeros((q, k, k)), np.zeros((q, k)))  # no rows
        h, zd, zv = (to_host(a, np.float64) for a in partial)
        for a, b in self.pairs:  # exactly symmetric (a GPU GEMM's two triangles may differ in rounding):
            h[b, a] = h[a, b].T if a != b else 0.5 * (h[a, a] + h[a, a].T)  # the sweeps read rows for columns
        return h.transpose(2, 0, 3, 1).reshape(q * k, q * k), zd, zv


class _Matvec:
    """Z_W U row by row: a partial is the rows it covers; merge is their union; finish stacks them."""

    def __init__(self, design: BlockDesign, cols: np.ndarray, u: np.ndarray) -> None:
        xp = design.xp
        self.d, self.k = design, u.shape[1]
        self.ud, self.ci = xp.asarray(u, design.dtype), xp.asarray(cols)

    def identity(self) -> dict[int, Any]:
        return {}

    def chunk(self, block: Block, out: dict[int, Any] | None = None) -> dict[int, Any]:
        z = self.d.z(block.data, self.ci)
        with blas_threads_for(2.0 * z.size * self.k):
            part = {block.start: z @ self.ud}
        return part if out is None else self.merge(out, part)

    def merge(self, a: dict[int, Any], b: dict[int, Any]) -> dict[int, Any]:
        a.update(b)
        return a

    def finish(self, partial: dict[int, Any]) -> np.ndarray:
        xp = self.d.xp
        out = xp.empty((self.d.rows, self.k), dtype=np.float64)
        for start in partial:
            rows = partial[start]
            out[start : start + rows.shape[0]] = rows
        return to_host(out, np.float64)


class ArrayDesign(BlockDesign):
    """Z for an in-memory X (n, p) (numpy, or cupy with `xp=cupy`), in row blocks of `block_rows`."""

    def __init__(
        self,
        x: Any,
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
        spans = [Block(s, min(s + step, n), x[s : s + step]) for s in range(0, n, step)]
        super().__init__(
            lambda: spans,
            n,
            np.zeros(p) if center is None else center,
            np.ones(p) if scale is None else scale,
            decode=decode,
            xp=xp,
            dtype=dtype,
        )
