"""The chunk-pass contract, shared by every pass and backend: a block's partial depends on the block
alone, merges are associative (any split, any tree, any order gives the single-pass result), and the
in-place fold (`chunk(block, out=...)`) equals `merge(out, chunk(block))`.

Backends: the CPU numba pass always; the GPU pass under numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, run by `make test`) or on a real GPU. Solver designs: in core (float64,
float32), streamed from a store, and the GPU design's arithmetic (float16 blocks decoded to float32)
on numpy, each product against float64 numpy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numba import cuda

import neurosel
from neurosel.solver import ArrayDesign, BlockDesign, store_design
from neurosel.solver._design import _Gram, _Matvec, _RMatvec
from neurosel.solver._store_design import ACCUMULATE_ROWS, standardised_design
from neurosel.stats import StatsPlan, make_pass
from neurosel.store import Block, Encoding, decode, encode, run_pass, tree_merge
from tests.stats_reference import RTOL16

ROWS, FEATURES = 203, 10
FIELDS = ("count", "mean", "m2", "lo", "hi", "bad")


def backends() -> list[str]:
    names = ["cpu"]
    if cuda.is_available():  # the simulator in CI, or a real GPU
        names.append("cuda")
    return names


def stats_plan(dtype: str, kind: str, rng: np.random.Generator) -> tuple[StatsPlan, np.ndarray]:
    """A plan over ROWS rows and stored data with ties, a constant neuron and a NaN."""
    x = rng.standard_normal((ROWS, FEATURES)) * 3 + 50
    x[:, 0] = np.round(x[:, 0])
    x[:, 1] = 2.5
    x[7, 2] = np.nan
    stored = encode(x, dtype)
    enc = Encoding.for_dtype(dtype)
    if kind == "classes":
        cls = rng.integers(0, 3, ROWS).astype(np.int32)
        return StatsPlan(enc, cls, None, 3, FEATURES, None), stored
    if kind == "auroc":
        cls = rng.integers(0, 2, ROWS).astype(np.int32)
        return StatsPlan(enc, cls, None, 2, FEATURES, enc.key_bits - 12), stored
    y = rng.uniform(0, 5, ROWS)
    return StatsPlan(enc, np.zeros(ROWS, np.int32), y, 1, FEATURES, None), stored


def blocks_of(stored: np.ndarray, cuts: list[int]) -> list[Block]:
    edges = [0, *cuts, ROWS]
    return [Block(a, b, stored[a:b]) for a, b in itertools.pairwise(edges) if b > a]


def assert_moments_equal(got, want, rtol=1e-11) -> None:
    got, want = got.to_host(), want.to_host()
    for name in FIELDS:
        np.testing.assert_allclose(
            getattr(got, name), getattr(want, name), rtol=rtol, atol=1e-9, err_msg=name
        )
    if want.hist is not None:
        np.testing.assert_array_equal(got.hist, want.hist)
    if want.keys is not None:  # every row's keys, in row order, whatever the merge tree
        for a, b in zip(got.keys.whole(), want.keys.whole(), strict=True):
            np.testing.assert_array_equal(a, b)
    if want.co is not None:
        for a, b in zip(got.co.parts(), want.co.parts(), strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-9)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("kind", ["classes", "auroc", "numeric"])
def test_stats_pass_merges_in_any_tree(backend, dtype, kind):
    rng = np.random.default_rng(hash((dtype, kind)) % 2**32)
    plan, stored = stats_plan(dtype, kind, rng)
    device = neurosel.resolve_device(backend)
    stats_pass = make_pass(plan, device)
    whole = stats_pass.chunk(Block(0, ROWS, stored))
    blocks = blocks_of(stored, sorted(rng.choice(np.arange(1, ROWS), 8, replace=False).tolist()))
    partials = [stats_pass.chunk(b) for b in blocks]
    shuffled = [partials[i] for i in rng.permutation(len(partials))]
    # the CPU sums 16-bit values in float32 row groups: other blocks, other rounding (RTOL16)
    rtol = RTOL16 if backend == "cpu" and dtype != "float32" else 1e-11
    for split_every in (2, 3):
        assert_moments_equal(tree_merge(stats_pass, shuffled, split_every), whole, rtol)
    folded = run_pass(stats_pass, [blocks[i] for i in rng.permutation(len(blocks))])
    assert_moments_equal(folded, whole, rtol)


@pytest.mark.parametrize("backend", backends())
def test_stats_chunk_is_pure(backend):
    """The same block gives the same partial whatever was computed before, and its input is untouched."""
    rng = np.random.default_rng(3)
    plan, stored = stats_plan("float16", "auroc", rng)
    stats_pass = make_pass(plan, neurosel.resolve_device(backend))
    block = Block(50, 120, stored[50:120].copy())
    first = stats_pass.chunk(block)
    stats_pass.chunk(Block(0, 50, stored[:50]))
    again = stats_pass.chunk(block)
    assert_moments_equal(again, first, rtol=0)
    np.testing.assert_array_equal(block.data, stored[50:120])


def test_stats_identity_is_neutral():
    plan, stored = stats_plan("float32", "classes", np.random.default_rng(4))
    stats_pass = make_pass(plan, neurosel.resolve_device("cpu"))
    part = stats_pass.chunk(Block(0, ROWS, stored))
    assert_moments_equal(stats_pass.merge(stats_pass.identity(), part), part, rtol=0)


# -- solver products ------------------------------------------------------------------------------


def problem(rng: np.random.Generator):
    n, p, k = 157, 12, 3
    x = rng.standard_normal((n, p)) * 2 + 1
    center, scale = x.mean(0), x.std(0)
    cols = np.array([0, 3, 4, 9])
    d = rng.uniform(0.1, 1.0, (n, k, k))
    d = (d + d.transpose(0, 2, 1)) / 2
    v, u = rng.standard_normal((n, k)), rng.standard_normal((cols.size, k))
    z = (x - center) / scale
    zw = z[:, cols]
    h = np.einsum("iq,ikl,ir->qkrl", zw, d, zw).reshape(cols.size * k, cols.size * k)  # index j·K + k
    want = {
        "rmatvec": z.T @ v,
        "gram": (h, np.einsum("iq,ikl->qkl", zw, d), zw.T @ v),
        "matvec": zw @ u,
    }
    return x, center, scale, cols, d, v, u, want


def designs(x, center, scale):
    """Every design of the same Z: in core float64/float32, streamed blocks, float16 blocks decoded."""
    n = x.shape[0]
    z = (x - center) / scale
    blocks = [Block(a, min(a + 40, n), x[a : a + 40]) for a in range(0, n, 40)]
    half = encode(x, "float16")
    half_blocks = [Block(a, min(a + 33, n), half[a : a + 33]) for a in range(0, n, 33)]

    def f16(raw):
        return decode(raw, "float16")

    return {
        "in-core-float64": (ArrayDesign(z), 1e-10),
        "in-core-float32": (ArrayDesign(z.astype(np.float32), dtype=np.float32), 1e-4),
        "streamed": (BlockDesign(lambda: blocks, n, center, scale, dtype=np.float32), 1e-4),
        "gpu-arithmetic": (
            BlockDesign(lambda: half_blocks, n, center, scale, dtype=np.float32, decode=f16),
            2e-2,
        ),
    }


@pytest.mark.parametrize("name", ["in-core-float64", "in-core-float32", "streamed", "gpu-arithmetic"])
def test_design_products_match_float64(name):
    x, center, scale, cols, d, v, u, want = problem(np.random.default_rng(5))
    design, rtol = designs(x, center, scale)[name]
    np.testing.assert_allclose(design.rmatvec(v), want["rmatvec"], rtol=rtol, atol=rtol * 10)
    for got, ref in zip(design.gram(cols, d, v), want["gram"], strict=True):
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * 10)
    np.testing.assert_allclose(design.matvec(cols, u), want["matvec"], rtol=rtol, atol=rtol * 10)
    assert design.passes == 3


@pytest.mark.parametrize("product", ["rmatvec", "gram", "matvec"])
def test_design_products_merge_in_any_tree(product):
    rng = np.random.default_rng(6)
    x, center, scale, cols, d, v, u, _ = problem(rng)
    design = BlockDesign(lambda: [], x.shape[0], center, scale)
    make = {
        "rmatvec": lambda: _RMatvec(design, v),
        "gram": lambda: _Gram(design, cols, d, v),
        "matvec": lambda: _Matvec(design, cols, u),
    }[product]
    edges = [0, *sorted(rng.choice(np.arange(1, x.shape[0]), 6, replace=False).tolist()), x.shape[0]]
    blocks = [Block(a, b, x[a:b]) for a, b in itertools.pairwise(edges)]
    single = make().finish(make().chunk(Block(0, x.shape[0], x)))
    p = make()
    partials = [p.chunk(b) for b in blocks]
    merged = p.finish(tree_merge(p, [partials[i] for i in rng.permutation(len(partials))], 3))
    as_tuple = (lambda r: r) if product == "gram" else (lambda r: (r,))
    for got, want in zip(as_tuple(merged), as_tuple(single), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_store_designs_agree(tmp_path):
    """In core, streamed (tiny in-core budget) and the GPU arithmetic give the same products on a store."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((90, 2, 6)) * 2 + 3
    store = neurosel.store_from_array(tmp_path / "d.zarr", x, dtype="float16", chunk_rows=8)
    stats = neurosel.neuron_stats(store, by=None, device="cpu", progress=False, save=False)
    center, scale = stats.mean.ravel(), stats.std.ravel()
    cpu = neurosel.resolve_device("cpu")
    in_core, where = store_design(store, center, scale, cpu, 1 << 20)
    streamed, where_s = store_design(store, center, scale, cpu, 1 << 20, in_core_bytes=0)
    assert where == "in-core-float32" and where_s == "streamed"
    v = rng.standard_normal((90, 1))
    np.testing.assert_allclose(streamed.rmatvec(v), in_core.rmatvec(v), rtol=1e-4, atol=1e-4)
    cols = np.array([1, 5, 11])
    np.testing.assert_allclose(
        streamed.matvec(cols, np.ones((3, 1))), in_core.matvec(cols, np.ones((3, 1))), rtol=1e-4, atol=1e-4
    )


def test_in_core_products_keep_their_precision_at_large_n():
    """The in-core design holds float32 but sums its products in float64 over blocks of
    ACCUMULATE_ROWS rows, so their rounding does not grow with n: at 400,000 rows Zᵀv and the
    Hessian stay within 1e-7 (relative) of float64 arithmetic on the same float32 values (measured
    2e-8 and 3e-8; one float32 product over every row is off by 1.6e-7 and 8.7e-7 here)."""
    rng = np.random.default_rng(11)
    n, p = 400_000, 4
    x = (rng.standard_normal((n, p)) + 0.3).astype(np.float32)
    design = standardised_design(x, np.zeros(p), np.ones(p))
    assert design.dtype == np.float32 and len(list(design.blocks())) == -(-n // ACCUMULATE_ROWS)
    z = np.concatenate([b.data for b in design.blocks()]).astype(np.float64)
    v = rng.random((n, 1)) * 1e-5
    want = z.T @ v
    assert np.max(np.abs(design.rmatvec(v) - want) / np.abs(want)) < 1e-7
    h, _, _ = design.gram(np.arange(p), np.full((n, 1, 1), 1.0 / n), v)
    exact = z.T @ z / n
    assert np.max(np.abs(h - exact)) < 1e-7 * np.abs(exact).max()


def test_exact_hessian_on_a_float32_design_is_float64_arithmetic():
    """`gram(exact=True)`, the solver's fallback when float32 Hessians stop giving progress, computes
    in float64 on the design's float32 values: equal to float64 numpy to rounding, where the float32
    products are not."""
    rng = np.random.default_rng(12)
    n, p = 3000, 6
    x = (rng.standard_normal((n, p)) * 10 + 50).astype(np.float32)
    design = standardised_design(x, np.zeros(p), np.ones(p))
    z = x.astype(np.float64)
    d, v, cols = rng.random((n, 1, 1)), rng.standard_normal((n, 1)), np.array([0, 2, 5])
    want = (z[:, cols].T * d[:, 0, 0]) @ z[:, cols]
    h, zd, zv = design.gram(cols, d, v, exact=True)
    np.testing.assert_allclose(h, want, rtol=1e-12)
    np.testing.assert_allclose(zd[:, 0, 0], z[:, cols].T @ d[:, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(zv[:, 0], z[:, cols].T @ v[:, 0], rtol=1e-12)
    assert np.max(np.abs(design.gram(cols, d, v)[0] - want) / want) > 1e-9


def test_a_tolerance_beyond_float32_gets_a_float64_design(tmp_path):
    store = neurosel.store_from_array(tmp_path / "s.zarr", np.ones((20, 2, 3)), dtype="float16")
    cpu, center, scale = neurosel.resolve_device("cpu"), np.zeros(6), np.ones(6)
    assert store_design(store, center, scale, cpu, 1 << 20, tol=1e-6)[1] == "in-core-float32"
    assert store_design(store, center, scale, cpu, 1 << 20, tol=1e-10)[1] == "in-core-float64"
    assert store_design(store, center, scale, cpu, 1 << 20, 20 * 6 * 4, tol=1e-10)[1] == "in-core-float32"
    streamed, where = store_design(store, center, scale, cpu, 1 << 20, 0, tol=1e-10)
    assert where == "streamed" and streamed.dtype == np.float64
    assert store_design(store, center, scale, cpu, 1 << 20, 0)[0].dtype == np.float32
