"""The `Design` protocol (engine/solver/_protocols.py) on every design the solver has, each against
dense float64 numpy on the standardised matrix Z = (X − mean) / std of the same small store.

Designs, each built from one store (300 rows × 3 layers × 8 units, one constant neuron, stored as
float32, float16 and bfloat16):

  array            `ArrayDesign` over the decoded values (float64 arithmetic)
  array-float32    `ArrayDesign` over the raw stored values, decoded per block to float32
  block            `BlockDesign` over the store's row blocks (float32 arithmetic)
  in-core          `store_design` on the CPU: the in-core float32 matrix (and float64 for a tight tol)
  streamed         `store_design` with `in_core_bytes=0`: streamed blocks (float32, and float64)
  gpu-simulated    `store_design` on a simulated CUDA device: the GPU design's code on numpy
  gpu              the same on a real GPU with cupy (skipped when cupy or a GPU is not usable)
  dask-in-process  `DistributedDesign` through the in-process runner
  dask             `DistributedDesign` on `distributed.LocalCluster(processes=False, n_workers=1)`

Each is checked for `shape`, `rmatvec`, `gram` (with and without `exact`, on an ordinary working
set, an empty one and one with a repeated and a constant column), `matvec`, and its `passes` counter,
for one output (K = 1) and three (K = 3). A constant neuron is scaled by 1 (`safe_scale`), so its Z
column is 0. Tolerances follow the arithmetic: float32 products with float64 results are compared
at 1e-5 relative (to the largest entry), float64 designs at 1e-10.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest

import neurosel
from neurosel.devices import CPU, Device
from neurosel.kernels.standardise import safe_scale
from neurosel.scaleout import IN_PROCESS, OnDask
from neurosel.solver import ArrayDesign, BlockDesign, Design, store_design
from neurosel.solver._cluster import DistributedDesign
from neurosel.store import decode
from tests.conftest import planted_arrays

N, LAYERS, HIDDEN = 300, 3, 8
P = LAYERS * HIDDEN
CONSTANT = 6  # a constant neuron: its std is 0, its scale 1, its Z column 0
BUDGET = 1 << 20  # bytes per store block: several blocks over the 300 rows (chunk_rows below)
F32, F64 = 1e-5, 1e-10  # relative tolerances of float32 and float64 arithmetic (float64 results)
STORAGE = ["float32", "float16", "bfloat16"]


def _gpu_unusable() -> str | None:
    """None if cupy sees a real GPU here, else why not."""
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "cupy sees no GPU"
    except Exception as e:  # not installed, or no driver
        return f"cupy not usable ({type(e).__name__}: {e})"
    return None


class Case:
    """One stored matrix: the store, its decoded values X (float64) and the dense reference Z."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dtype_name = store.meta["dtype"]
        raw = np.concatenate([b.data for b in store.blocks(N, BUDGET)])
        self.x = np.asarray(decode(raw, self.dtype_name), dtype=np.float64)
        self.center = self.x.mean(0)
        self.std = self.x.std(0)
        assert self.std[CONSTANT] == 0.0
        self.z = (self.x - self.center) / safe_scale(self.std)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Callable[[str], Case]:
    """One store per storage dtype, built on first use and kept for the module."""
    cache: dict[str, Case] = {}

    def get(storage: str) -> Case:
        if storage not in cache:
            x, y = planted_arrays(
                n=N, layers=LAYERS, hidden=HIDDEN, planted=[3, 12], seed=7, unit_scale=(0.5, 2), shift=1.5
            )
            x = x.reshape(N, P)
            x[:, CONSTANT] = 0.75  # exactly representable in every storage dtype
            path = tmp_path_factory.mktemp(f"design-{storage}") / "s.zarr"
            cache[storage] = Case(
                neurosel.store_from_array(
                    path, x.reshape(N, LAYERS, HIDDEN), labels=y, dtype=storage, chunk_rows=64
                )
            )
        return cache[storage]

    return get


@pytest.fixture
def case(request, stores) -> Case:
    """The store of the storage dtype `request.param` (indirect parametrisation)."""
    return stores(request.param)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=50
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def _store_design(case: Case, where: str, **kw: Any) -> BlockDesign:
    design, got = store_design(case.store, case.center, case.std, kw.pop("device", CPU), BUDGET, **kw)
    assert got == where
    return design


def _gpu(case: Case, request) -> Any:
    why = _gpu_unusable()
    if why:
        pytest.skip(f"gpu design: {why}")
    return _store_design(case, "gpu", device=neurosel.resolve_device("cuda"))


def _dask(case: Case, request) -> DistributedDesign:
    client = request.getfixturevalue("dask_client")
    return DistributedDesign(OnDask(client), case.store, case.center, case.std)


# name → (build(case, request), relative tolerance of its products)
DESIGNS: dict[str, tuple[Callable[[Case, Any], Any], float]] = {
    "array": (lambda c, r: ArrayDesign(c.x, c.center, c.std, block_rows=64), F64),
    "array-float32": (
        lambda c, r: ArrayDesign(
            np.concatenate([b.data for b in c.store.blocks(N, BUDGET)]),
            c.center,
            c.std,
            block_rows=50,
            dtype=np.float32,
            decode=partial(decode, dtype=c.dtype_name),
        ),
        F32,
    ),
    "block": (
        lambda c, r: BlockDesign(
            partial(c.store.blocks, N, BUDGET),
            N,
            c.center,
            c.std,
            decode=partial(decode, dtype=c.dtype_name),
            dtype=np.float32,
        ),
        F32,
    ),
    "in-core-float32": (lambda c, r: _store_design(c, "in-core-float32"), F32),
    "in-core-float64": (lambda c, r: _store_design(c, "in-core-float64", tol=1e-10), F64),
    "streamed-float32": (lambda c, r: _store_design(c, "streamed", in_core_bytes=0), F32),
    "streamed-float64": (lambda c, r: _store_design(c, "streamed", in_core_bytes=0, tol=1e-10), F64),
    "gpu-simulated": (lambda c, r: _store_design(c, "gpu", device=Device("cuda", simulated=True)), F32),
    "gpu": (_gpu, F32),
    "dask-in-process": (lambda c, r: DistributedDesign(IN_PROCESS, c.store, c.center, c.std), F32),
    "dask": (_dask, F32),
}


def close(got: np.ndarray, want: np.ndarray, rtol: float, what: str) -> None:
    """Equal to `rtol` relative to the largest entry of `want` (entries near 0 are sums that cancel)."""
    assert got.shape == want.shape, what
    assert got.dtype == np.float64, what
    scale = max(float(np.abs(want).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def hessian_weights(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """D (n, K, K): per example the softmax Hessian (diag(p) − p pᵀ) (K > 1) or p(1 − p) (K = 1),
    over n: symmetric with a non-negative diagonal, as the datafits give it."""
    if k == 1:
        p = rng.uniform(0.05, 0.95, n)
        return (p * (1 - p) / n)[:, None, None]
    m = rng.standard_normal((n, k))
    p = np.exp(m) / np.exp(m).sum(1, keepdims=True)
    return (np.einsum("ik,kl->ikl", p, np.eye(k)) - p[:, :, None] * p[:, None, :]) / n


WHAT = ("hessian block", "Z_Wᵀ D", "Z_Wᵀ V")


def design_z(case: Case, name: str) -> np.ndarray:
    """The standardised values a design multiplies, as float64: Z itself (float64 designs), Z
    rounded once to float32 (the in-core float32 matrix, standardised in float64 then stored), or
    (float32(X) − float32(center)) / float32(scale) in float32 (designs that standardise each block)."""
    if DESIGNS[name][1] == F64:
        return case.z
    if name == "in-core-float32":
        return case.z.astype(np.float32).astype(np.float64)
    x, c = case.x.astype(np.float32), case.center.astype(np.float32)
    return ((x - c) / safe_scale(case.std).astype(np.float32)).astype(np.float64)


def reference_gram(z: np.ndarray, cols: np.ndarray, d: np.ndarray, v: np.ndarray):
    """Dense float64: H[j·K + a, l·K + b] = Σ_i Z_ij D_iab Z_il, Z_Wᵀ D (q, K, K), Z_Wᵀ V (q, K)."""
    zw = z[:, cols]
    q, k = cols.size, v.shape[1]
    h = np.einsum("ij,iab,il->jalb", zw, d, zw).reshape(q * k, q * k)
    return h, np.einsum("ij,iab->jab", zw, d), zw.T @ v


WORKING_SETS = {
    "ordinary": np.array([0, 3, 12, 23]),
    "empty": np.array([], dtype=np.int64),
    "repeated": np.array([12, 5, CONSTANT, 12, 5]),  # unsorted, a column twice, the constant neuron
}


# every design on every storage dtype, but the Dask cluster (a few tenths of a second a product) on
# float16 only: its blocks decode as the streamed design's do, which runs on every storage dtype
COMBINATIONS = [
    pytest.param(storage, name, id=f"{storage}-{name}")
    for storage in STORAGE
    for name in DESIGNS
    if name != "dask" or storage == "float16"
]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(("case", "name"), COMBINATIONS, indirect=["case"])
class TestDesignProtocol:
    @pytest.fixture
    def design(self, name, case, request):
        build, _ = DESIGNS[name]
        design = build(case, request)
        assert design.passes == 0
        return design

    @pytest.fixture
    def rtol(self, name) -> float:
        return DESIGNS[name][1]

    def test_is_a_design_with_its_shape(self, design, k):
        assert isinstance(design, Design)
        assert design.shape == (N, P)

    def test_rmatvec(self, design, case, k, rtol):
        v = np.random.default_rng(k).standard_normal((N, k))
        got = design.rmatvec(v)
        close(got, case.z.T @ v, rtol, "rmatvec")
        assert design.passes == 1

    def test_gram(self, design, case, k, rtol):
        """Every working set, in the design's arithmetic and with `exact=True`: one pass each."""
        rng = np.random.default_rng(10 + k)
        d, v = hessian_weights(N, k, rng), rng.standard_normal((N, k))
        calls = 0
        for cols, ws in WORKING_SETS.items():
            want_h, want_zd, want_zv = reference_gram(case.z, ws, d, v)
            for exact in (False, True):
                what = f"{cols} working set, exact={exact}"
                h, zd, zv = design.gram(ws, d, v, exact=exact)
                calls += 1
                assert design.passes == calls
                close(h, want_h, rtol, f"hessian block, {what}")
                close(zd, want_zd, rtol, f"Z_Wᵀ D, {what}")
                close(zv, want_zv, rtol, f"Z_Wᵀ V, {what}")
                np.testing.assert_array_equal(h, h.T, err_msg=what)  # exactly symmetric
                if cols == "repeated":  # a column twice gives equal rows (to rounding); constant: 0
                    q = ws.size
                    blocks = h.reshape(q, k, q, k)
                    close(blocks[3], blocks[0], rtol, f"a repeated column's rows, {what}")
                    close(zv[4], zv[1], rtol, f"a repeated column's Z_Wᵀ V, {what}")
                    assert np.abs(blocks[2]).max() <= rtol * max(1.0, np.abs(want_h).max()), what

    def test_exact_gram_is_float64_arithmetic(self, design, case, name, k):
        """`exact=True` computes in float64 on the design's own standardised values (Z rounded to
        float32 where the design computes in float32): equal to float64 numpy on those values to
        float64 rounding."""
        rng = np.random.default_rng(20 + k)
        ws = WORKING_SETS["repeated"]
        d, v = hessian_weights(N, k, rng), rng.standard_normal((N, k))
        own = design_z(case, name)
        for got, want, what in zip(
            design.gram(ws, d, v, exact=True), reference_gram(own, ws, d, v), WHAT, strict=True
        ):
            close(got, want, 1e-12, what)
        assert design.passes == 1

    def test_matvec(self, design, case, k, rtol):
        for calls, (cols, ws) in enumerate(WORKING_SETS.items(), 1):
            u = np.random.default_rng(30 + k).standard_normal((ws.size, k))
            got = design.matvec(ws, u)
            assert design.passes == calls
            close(got, case.z[:, ws] @ u, rtol, f"matvec, {cols} working set")
            if cols == "empty":
                np.testing.assert_array_equal(got, np.zeros((N, k)))

    def test_each_product_is_one_pass(self, design, k):
        rng = np.random.default_rng(40 + k)
        ws = WORKING_SETS["ordinary"]
        v, d = rng.standard_normal((N, k)), hessian_weights(N, k, rng)
        design.rmatvec(v)
        design.gram(ws, d, v)
        design.gram(ws, d, v, exact=True)
        design.matvec(ws, rng.standard_normal((ws.size, k)))
        design.gram(WORKING_SETS["empty"], d, v)
        assert design.passes == 5
