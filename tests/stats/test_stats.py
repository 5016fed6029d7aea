"""neuron_stats against float64 numpy/scipy/scikit-learn; chunking, merge order, reuse, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as ss
import zarr

import neurosel
from neurosel.stats import CpuStatsPass, Moments, StatsPlan
from neurosel.store import Block, Encoding
from tests.stats_reference import RTOL16, hard_columns, reference

N, LAYERS, HIDDEN = 301, 2, 12
RTOL = {"float16": RTOL16, "bfloat16": RTOL16, "float32": 1e-9}  # float32 stores: float64 sums


def make_store(tmp_path, x, labels=None, dtype="float16", chunk_rows=16, name="s.zarr"):
    return neurosel.store_from_array(
        tmp_path / name, x.reshape(len(x), LAYERS, HIDDEN), labels=labels, dtype=dtype, chunk_rows=chunk_rows
    )


def stored_values(store) -> np.ndarray:
    """What the store holds, as float64: the statistics are of these values."""
    return store.read().astype(np.float64).reshape(store.n, -1)


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-9, spread: np.ndarray | float = 1.0) -> None:
    """got == want within rtol of max(|want|, spread, 1) (spread: the standard deviation, for means)."""
    got = got.reshape(want.shape)
    scale = np.maximum(np.maximum(np.abs(want), spread), 1.0)
    bad = ~((np.abs(got - want) <= rtol * scale) | (np.isnan(got) & np.isnan(want)))
    assert not bad.any(), f"{bad.sum()} mismatches, e.g. got {got[bad][:3]} want {want[bad][:3]}"


@pytest.mark.parametrize(("dtype", "offset"), [("float16", 3000.0), ("bfloat16", 3000.0), ("float32", 1e6)])
def test_two_class_statistics_match_references(tmp_path, dtype, offset):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, N)
    x = hard_columns(rng, N, LAYERS * HIDDEN, offset)
    x[:, 4] = np.where(y == 1, 2.0, -1.0)  # constant within classes: perfect separation
    store = make_store(tmp_path, x, y, dtype)
    stats = neurosel.neuron_stats(store, device="cpu", progress=False)
    values = stored_values(store)
    ref = reference(values, y)
    rtol = RTOL[dtype]
    for name in ("count", "mean", "var", "min", "max", "nonfinite", "class_mean", "class_var", "probeless"):
        close(getattr(stats, name), ref[name], rtol)
    finite = np.isfinite(ref["t"])
    close(stats.t.ravel()[finite], ref["t"][finite], rtol)
    close(
        stats.anova_f.ravel()[np.isfinite(ref["anova_f"])], ref["anova_f"][np.isfinite(ref["anova_f"])], rtol
    )
    assert stats.t.ravel()[3] == 0 and stats.anova_f.ravel()[3] == 0  # constant: 0/0 → 0
    assert stats.t.ravel()[4] == np.inf and stats.fisher.ravel()[4] == np.inf  # x/0 → inf
    if dtype == "float32":  # binned: the reported bound holds
        assert np.all(np.abs(stats.auroc.ravel() - ref["auroc"]) <= stats.auroc_error.ravel() + 1e-12)
    else:  # one bin per 16-bit value: exact
        close(stats.auroc, ref["auroc"], rtol=1e-12)
        assert np.all(stats.auroc_error == 0)


def test_cohen_d_and_fisher_definitions(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, N)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) + y[:, None] * np.linspace(0, 2, LAYERS * HIDDEN)
    store = make_store(tmp_path, x, y, "float32")
    stats = neurosel.neuron_stats(store, device="cpu", progress=False)
    v = stored_values(store)
    a, b = v[y == 0], v[y == 1]
    pooled = ((len(a) - 1) * a.var(0, ddof=1) + (len(b) - 1) * b.var(0, ddof=1)) / (len(v) - 2)
    close(stats.d, (b.mean(0) - a.mean(0)) / np.sqrt(pooled))
    between = len(a) * (a.mean(0) - v.mean(0)) ** 2 + len(b) * (b.mean(0) - v.mean(0)) ** 2
    close(stats.fisher, between / (len(a) * a.var(0) + len(b) * b.var(0)))


def test_three_classes_anova_and_no_two_class_scores(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, N)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) + y[:, None] * 0.3
    store = make_store(tmp_path, x, ["abc"[k] for k in y], "float32")
    stats = neurosel.neuron_stats(store, device="cpu", progress=False)
    ref = reference(stored_values(store), y)
    close(stats.anova_f, ref["anova_f"])
    close(stats.probeless, ref["probeless"])
    assert stats.class_mean.shape == (3, LAYERS, HIDDEN)
    assert stats.t is None and stats.auroc is None and list(stats.classes) == [0, 1, 2]


def test_numeric_labels_give_pearson(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.uniform(0, 5, N)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) + np.outer(y, np.linspace(-1, 1, LAYERS * HIDDEN))
    store = make_store(tmp_path, x, y, "float32")
    stats = neurosel.neuron_stats(store, device="cpu", progress=False)
    v = stored_values(store)
    want = np.array([ss.pearsonr(v[:, f], y).statistic for f in range(v.shape[1])])
    close(stats.pearson, want, rtol=1e-9)
    assert stats.classes is None and stats.t is None


def test_unlabelled_statistics_and_nonfinite_values(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) * 100
    x[[3, 50], 5] = np.nan
    x[7, 6] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        store = make_store(tmp_path, x, None, "float16")
    stats = neurosel.neuron_stats(store, by=None, device="cpu", progress=False)
    ref = reference(stored_values(store), None)
    for name in ("count", "mean", "var", "min", "max", "nonfinite"):
        close(getattr(stats, name), ref[name], RTOL["float16"])
    assert stats.nonfinite.ravel()[5] == 2 and stats.nonfinite.ravel()[6] == 1
    assert stats.class_mean is None and stats.t is None


def test_independent_of_chunk_size_and_memory_budget(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N)
    x = hard_columns(rng, N, LAYERS * HIDDEN, 500.0)
    results = [
        neurosel.neuron_stats(
            make_store(tmp_path, x, y, chunk_rows=c, name=f"c{c}.zarr"),
            device="cpu",
            progress=False,
            memory_budget=budget,
        )
        for c, budget in ((1, 64 << 10), (7, 1 << 20), (300, 512 << 20))
    ]
    for other in results[1:]:  # float32 group sums round differently with other blocks
        for name, values in results[0].arrays().items():
            close(getattr(other, name), values, RTOL["float16"])


def test_merge_order_does_not_matter(tmp_path):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, N).astype(np.int32)
    x = hard_columns(rng, N, 24, 1000.0).astype(np.float16)
    enc = Encoding.for_dtype("float16")
    partials = []
    stats_pass = CpuStatsPass(StatsPlan(enc, y, None, 2, 24, None))
    for rows in np.array_split(np.arange(N), 9):
        partials.append(stats_pass.chunk(Block(int(rows[0]), int(rows[-1]) + 1, x[rows])))

    def fold(order):
        total = Moments.empty(2, 24)
        for i in order:
            total = total.merge(partials[i])
        return total

    def tree(parts):
        return (
            parts[0]
            if len(parts) == 1
            else tree(parts[: len(parts) // 2]).merge(tree(parts[len(parts) // 2 :]))
        )

    a, b, c = fold(range(9)), fold(rng.permutation(9)), tree([partials[i] for i in rng.permutation(9)])
    for other in (b, c):
        for name in ("count", "mean", "m2", "lo", "hi", "bad"):
            close(getattr(other, name), getattr(a, name), rtol=1e-12)
    v = x.astype(np.float64)
    close(a.mean[1], v[y == 1].mean(0), RTOL["float16"])
    close(a.m2[0], ((v[y == 0] - v[y == 0].mean(0)) ** 2).sum(0), RTOL["float16"])


def test_saved_in_the_store_and_reused(tmp_path):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, N)
    store = make_store(tmp_path, rng.standard_normal((N, LAYERS * HIDDEN)), y)
    first = neurosel.neuron_stats(store, device="cpu", progress=False)
    key = first.meta["key"]
    group = zarr.open_group(store.path, mode="r")
    np.testing.assert_array_equal(group[f"stats/{key}/t"][:], first.t)
    again = neurosel.neuron_stats(store, device="cpu", progress=False)
    assert again.meta["seconds"] == first.meta["seconds"]  # loaded, not recomputed
    np.testing.assert_array_equal(again.auroc, first.auroc)
    fresh = neurosel.neuron_stats(store, device="cpu", progress=False, recompute=True)
    assert fresh.meta["seconds"] != first.meta["seconds"]
    np.testing.assert_array_equal(fresh.t, first.t)


def test_bad_inputs(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, LAYERS * HIDDEN))
    unlabelled = make_store(tmp_path, x, name="u.zarr")
    with pytest.raises(neurosel.InputError, match="has no labels"):
        neurosel.neuron_stats(unlabelled, progress=False)
    one_class = make_store(tmp_path, x, np.ones(N, int), name="o.zarr")
    with pytest.raises(neurosel.InputError, match="one class only"):
        neurosel.neuron_stats(one_class, progress=False)
    partial = make_store(tmp_path, x, rng.integers(0, 2, N), name="p.zarr")
    group = zarr.open_group(partial.path, mode="r+")
    group.attrs["neurosel"] = {**group.attrs["neurosel"], "rows_committed": 100, "complete": False}
    partial = neurosel.open_store(partial.path)
    with pytest.raises(neurosel.InputError, match=r"incomplete .100 of 301 rows.*allow_partial"):
        neurosel.neuron_stats(partial, progress=False)
    stats = neurosel.neuron_stats(partial, progress=False, allow_partial=True, device="cpu")
    assert stats.count.ravel()[0] == 100 and stats.meta["rows"] == 100


def test_corrupt_chunk_is_named(tmp_path):
    rng = np.random.default_rng(9)
    store = make_store(
        tmp_path, rng.standard_normal((N, LAYERS * HIDDEN)), rng.integers(0, 2, N), chunk_rows=16
    )
    shard = tmp_path / "s.zarr" / "activations" / "c" / "1" / "0" / "0"  # rows 32-63: chunks 2 and 3
    data = bytearray(shard.read_bytes())
    data[16 * LAYERS * HIDDEN * 2 + 40] ^= 0xFF  # inside chunk 3
    shard.write_bytes(bytes(data))
    # the file's checksum names it before Zarr decodes it (the chunk's own CRC32C would too)
    with pytest.raises(
        neurosel.InputError, match=r"activations/c/1/0/0 \(rows 32-63\) does not match its checksum"
    ):
        neurosel.neuron_stats(store, device="cpu", progress=False)


def test_memory_stays_bounded_for_a_store_larger_than_the_budget(tmp_path):
    """A 24 MB store through a 4 MB budget: traced peak memory stays under the budget, not the store."""
    import tracemalloc

    rows, width = 6000, (4, 256)
    rng = np.random.default_rng(10)
    big = neurosel.store_from_array(
        tmp_path / "big.zarr",
        rng.standard_normal((rows, *width)).astype(np.float32),
        labels=rng.integers(0, 2, rows),
        dtype="float32",
        chunk_rows=64,
    )
    budget = 4 << 20
    store_bytes = rows * width[0] * width[1] * 4
    neurosel.neuron_stats(
        big, device="cpu", progress=False, save=False, auroc=False, memory_budget=budget
    )  # JIT
    tracemalloc.start()
    stats = neurosel.neuron_stats(
        big, device="cpu", progress=False, save=False, auroc=False, memory_budget=budget
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results = sum(a.nbytes for a in stats.arrays().values())
    assert store_bytes > 5 * budget
    assert peak < budget + 4 * results, f"peak {peak / 1e6:.1f} MB"


def test_a_path_is_accepted_where_a_store_is(tmp_path):
    """neuron_stats and importance take a store's path (or URL) as well as an ActivationStore."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    x = rng.standard_normal((80, LAYERS, HIDDEN)) + y[:, None, None]
    store = make_store(tmp_path, x, labels=y)
    by_path = neurosel.neuron_stats(str(store.path), progress=False, save=False)
    by_store = neurosel.neuron_stats(store, progress=False, save=False)
    for name, values in by_store.arrays().items():
        np.testing.assert_array_equal(by_path.arrays()[name], values, err_msg=name)
    np.testing.assert_array_equal(
        neurosel.importance(tmp_path / "s.zarr", n_lambdas=5, save=False).ranking,
        neurosel.importance(store, n_lambdas=5, save=False).ranking,
    )


def test_auroc_in_several_passes_when_the_keys_exceed_the_budget(tmp_path):
    """Keys of 24 neurons × 301 rows (14 KB) through an 8 KB budget (blocks of one 768-byte chunk,
    the keys the rest): one pass per group of neurons, the same statistics as one pass, and AUROCs
    equal to scikit-learn's."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, N)
    x = hard_columns(rng, N, LAYERS * HIDDEN, 100.0) + y[:, None] * 0.5
    x[[5, 9], 7] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        store = make_store(tmp_path, x, y, "float16")
    one = neurosel.neuron_stats(store, device="cpu", progress=False, save=False)
    split = neurosel.neuron_stats(store, device="cpu", progress=False, save=False, memory_budget=8 << 10)
    assert one.meta["auroc_passes"] == 1 and split.meta["auroc_passes"] > 1
    for name, values in one.arrays().items():  # moments: smaller blocks, other float32 group sums
        rtol = 1e-12 if name.startswith("auroc") else RTOL["float16"]
        np.testing.assert_allclose(getattr(split, name), values, rtol=rtol, err_msg=name)
    close(split.auroc, reference(stored_values(store), y)["auroc"], rtol=1e-12)


def test_auroc_above_16_bits_sorts_and_stays_within_its_bound(tmp_path):
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, N)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) + y[:, None] * np.linspace(0, 1, LAYERS * HIDDEN)
    x[:, 0] = np.round(x[:, 0])  # ties
    store = make_store(tmp_path, x, y, "float32")
    want = reference(stored_values(store), y)["auroc"]
    for bits in (12, 20):
        stats = neurosel.neuron_stats(store, device="cpu", progress=False, save=False, auroc_bits=bits)
        assert np.all(np.abs(stats.auroc.ravel() - want) <= stats.auroc_error.ravel() + 1e-12)
    assert stats.auroc_error.ravel()[1:].max() < 1e-3  # 20 bits: fine bins (column 0 has real ties)


def test_every_float16_value_decodes_exactly(tmp_path):
    """All 63,487 finite float16 values (subnormals, ±0, the largest) in shuffled rows: min, max, mean
    and variance agree with float64 numpy's (the CPU decodes float16 with the F16C instruction, not a
    table): min and max exactly, the moments within the 16-bit bound (means of the spread)."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16)
    values = values[np.isfinite(values)].astype(np.float64)
    rng = np.random.default_rng(13)
    x = rng.permutation(values)[: (values.size // 24) * 24].reshape(-1, 24)
    store = neurosel.store_from_array(tmp_path / "all.zarr", x.reshape(len(x), 2, 12), dtype="float16")
    stats = neurosel.neuron_stats(store, by=None, device="cpu", progress=False, save=False)
    ref = reference(x, None)
    for name in ("count", "min", "max"):
        np.testing.assert_array_equal(getattr(stats, name).ravel(), ref[name], err_msg=name)
    close(stats.mean, ref["mean"], RTOL["float16"], spread=np.sqrt(ref["var"]))
    close(stats.var, ref["var"], RTOL["float16"])


def test_auroc_memory_stays_within_the_budget(tmp_path):
    """A 24 MB float32 store with exact-resolution keys (12 MB) through a 4 MB budget: traced peak
    stays under the budget (the keys take several passes), not the store or the keys."""
    import tracemalloc

    rows, width = 6000, (4, 256)
    rng = np.random.default_rng(14)
    big = neurosel.store_from_array(
        tmp_path / "big.zarr",
        rng.standard_normal((rows, *width)).astype(np.float32),
        labels=rng.integers(0, 2, rows),
        dtype="float32",
        chunk_rows=16,  # 64 KB chunks: blocks in flight fit the quarter of the budget that reads get
    )
    budget = 4 << 20
    neurosel.neuron_stats(big, device="cpu", progress=False, save=False, memory_budget=budget)  # JIT
    tracemalloc.start()
    stats = neurosel.neuron_stats(big, device="cpu", progress=False, save=False, memory_budget=budget)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results = sum(a.nbytes for a in stats.arrays().values())
    assert stats.meta["auroc_passes"] >= 4
    assert peak < budget + 4 * results, f"peak {peak / 1e6:.1f} MB"
