"""neurosel.solver._importance on stores: planted neurons ranked first, streamed design = in-memory design."""

from __future__ import annotations

import numpy as np
import pytest

import neurosel
from neurosel.solver import (
    ArrayDesign,
    GroupL1,
    Logistic,
    SupportWarning,
    rank_by_entry,
    sparse_path,
    store_design,
)
from tests.conftest import PLANTED, build_store

N, LAYERS, HIDDEN = 400, 3, 16
# `planted_store` (tests/conftest.py): N × LAYERS × HIDDEN, PLANTED (flat ids: layer 0 unit 5, layer 1
# unit 4, layer 2 unit 9) move ±(1.2, 0.9, 0.7) with the class "neg"/"pos"


def test_planted_neurons_rank_first_and_select_fingerprint(planted_store):
    imp = neurosel.importance(planted_store, n_lambdas=15, lambda_ratio=0.05)
    assert set(imp.ranking[:3]) == set(PLANTED)
    assert imp.meta["converged"] and imp.coef.shape == (15, 1, LAYERS, HIDDEN)
    assert imp.support_sizes[0] == 0 and np.all(imp.scores.ravel()[PLANTED] > 0)
    sel = neurosel.select(imp, k=3)
    np.testing.assert_array_equal(np.sort(sel.neurons), PLANTED)
    np.testing.assert_allclose(sel.fingerprint(), [100 / 3] * 3)
    again = neurosel.importance(planted_store, n_lambdas=15, lambda_ratio=0.05)
    np.testing.assert_array_equal(again.ranking, imp.ranking)


@pytest.mark.parametrize("in_core", [0, 1 << 30])
def test_store_designs_equal_in_memory(planted_store, in_core):
    """Streamed and in-core store designs (float32 products) give the in-memory float64 path."""
    stats = neurosel.neuron_stats(planted_store, by=None, progress=False, device="cpu")
    x = planted_store.read().reshape(N, -1).astype(np.float64)
    center, scale = stats.mean.ravel(), stats.std.ravel()
    y = (planted_store.labels == 1).astype(float)
    design, where = store_design(
        planted_store, center, scale, neurosel.resolve_device("cpu"), 64 << 10, in_core
    )
    assert where == ("streamed" if in_core == 0 else "in-core-float32")
    ours = sparse_path(design, y, Logistic(), n_lambdas=6)
    memory = sparse_path(ArrayDesign(x, center, scale), y, Logistic(), n_lambdas=6)
    np.testing.assert_allclose(ours.coef, memory.coef, atol=1e-5)
    np.testing.assert_array_equal(ours.entry, memory.entry)


def test_ranking_ties_break_by_weight_then_id():
    entry = np.array([1, 0, 1, -1, 1, -1])
    final = np.array([0.5, 0.1, -0.9, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(rank_by_entry(entry, final), [1, 2, 0, 4, 3, 5])


def test_bad_inputs(planted_store, tmp_path):
    rng = np.random.default_rng(1)
    unlabelled = neurosel.store_from_array(tmp_path / "u.zarr", rng.standard_normal((20, 2, 3)))
    with pytest.raises(neurosel.InputError, match="has no labels"):
        neurosel.importance(unlabelled)
    single = neurosel.store_from_array(
        tmp_path / "one.zarr", rng.standard_normal((30, 2, 3)), labels=[1] * 30
    )
    with pytest.raises(neurosel.InputError, match="only one class"):
        neurosel.importance(single)
    numeric = neurosel.store_from_array(
        tmp_path / "num.zarr", rng.standard_normal((30, 2, 3)), labels=rng.random(30)
    )
    with pytest.raises(neurosel.InputError, match="use method='lasso'"):
        neurosel.importance(numeric)
    with pytest.raises(neurosel.InputError, match="class_weight"):
        neurosel.importance(planted_store, class_weight={"nope": 2.0})
    with pytest.raises(neurosel.InputError, match="target support 49"):
        neurosel.importance(planted_store, target_support=49)
    with pytest.raises(neurosel.InputError, match=r"choose 1\.\.48"):
        neurosel.select(neurosel.importance(planted_store, n_lambdas=3), k=49)


def test_multinomial_group_ranking_and_saved_result(tmp_path):
    """Three classes: each planted neuron separates one class; the group path enters them first, the
    result is saved in the store and the next call reads it back unchanged."""
    planted = [layer * 10 + unit for layer, unit in [(0, 3), (1, 7), (1, 2)]]  # +1.5 on class 0, 1, 2
    store = build_store(
        tmp_path / "k3.zarr", n=600, layers=2, hidden=10, seed=4, classes=3, cycle=True, planted=planted,
        effect=1.5, signed=False,
    )  # fmt: skip
    imp = neurosel.importance(store, n_lambdas=12, lambda_ratio=0.1)
    assert imp.penalty == "group-l1" and imp.coef.shape == (12, 3, 2, 10) and imp.meta["converged"]
    assert set(imp.ranking[:3]) == {3, 17, 12}
    assert imp.meta["design"] == "in-core-float32"
    again = neurosel.importance(neurosel.open_store(store.path), n_lambdas=12, lambda_ratio=0.1)
    np.testing.assert_array_equal(again.ranking, imp.ranking)
    np.testing.assert_array_equal(again.coef, imp.coef)
    assert again.meta["key"] == imp.meta["key"] and again.meta["solve_seconds"] == imp.meta["solve_seconds"]


@pytest.mark.parametrize("in_core", [0, 1 << 30])
def test_multinomial_group_store_designs_equal_in_memory(tmp_path, in_core):
    """Three classes, correlated neurons (one shared factor): the group-L1 path on the streamed design
    (float32 products, blocks of 32 rows) and on the in-core float32 design equals the in-memory path,
    with the same entry order and every λ certified."""
    rng = np.random.default_rng(5)
    n = 300
    x = 0.8 * rng.standard_normal((n, 1)) + 0.6 * rng.standard_normal((n, LAYERS * HIDDEN))
    labels = np.arange(n) % 3
    for cls, unit in enumerate([4, 19, 33]):
        x[labels == cls, unit] += 1.2
    store = neurosel.store_from_array(
        tmp_path / "k3.zarr", x.reshape(n, LAYERS, HIDDEN), labels=labels, dtype="float32", chunk_rows=32
    )
    stats = neurosel.neuron_stats(store, by=None, progress=False, device="cpu")
    center, scale = stats.mean.ravel(), stats.std.ravel()
    datafit = neurosel.solver.Multinomial()
    y = datafit.targets(store.labels)
    design, _ = store_design(store, center, scale, neurosel.resolve_device("cpu"), 64 << 10, in_core)
    x64 = store.read().reshape(n, -1).astype(np.float64)
    ours, memory = (
        sparse_path(d, y, datafit, GroupL1(), n_lambdas=8, lambda_ratio=0.05)
        for d in (design, ArrayDesign(x64, center, scale))
    )
    assert np.all(ours.converged) and np.all(memory.converged)
    np.testing.assert_allclose(ours.coef, memory.coef, atol=1e-5)
    np.testing.assert_array_equal(ours.entry, memory.entry)
    assert set(rank_by_entry(ours.entry, np.linalg.norm(ours.coef[-1], axis=1))[:3]) == {4, 19, 33}


def test_selection_rules(planted_store):
    imp = neurosel.importance(planted_store, n_lambdas=15, lambda_ratio=0.05)
    at = 6
    support = neurosel.select(imp, k=None, rule="support", at=at)
    np.testing.assert_array_equal(np.sort(support.neurons), np.flatnonzero(imp.coef[at].ravel()))
    weights = np.abs(imp.coef[-1].ravel())
    mass = neurosel.select(imp, rule="mass", mass=0.6, at=-1, k=None)
    share = np.sort(weights)[::-1].cumsum() / weights.sum()
    assert mass.neurons.size == np.searchsorted(share, 0.6) + 1
    assert set(mass.neurons) == set(np.argsort(-weights, kind="stable")[: mass.neurons.size])
    closest = neurosel.select(imp, k=3, rule="support")
    assert closest.neurons.size == imp.support_sizes[np.argmin(np.abs(imp.support_sizes - 3))]
    with pytest.warns(SupportWarning, match="entered the path"):
        neurosel.select(imp, k=imp.entered + 1)
    assert set(neurosel.select(imp, k=3).units()) == {(0, 5), (1, 4), (2, 9)}


def test_target_support_beyond_the_grid_extends_then_warns(planted_store):
    imp = neurosel.importance(planted_store, n_lambdas=3, lambda_ratio=0.5, target_support=20, save=False)
    assert imp.support_sizes[-1] >= 20 and len(imp.lambdas) > 3
    with pytest.warns(SupportWarning, match="fewer than the 48 requested"):
        tiny = neurosel.store_from_array(
            planted_store.path + "-tiny", planted_store.read()[:12], labels=planted_store.labels[:12]
        )
        neurosel.importance(tiny, n_lambdas=3, target_support=48, save=False)


def test_float16_blocks_decoded_to_float32_match_float64(planted_store):
    """The GPU design's arithmetic (float16 rows decoded per block to float32, standardised on the
    fly, float64 results), run here on numpy: the same path as float64 in memory, to float32 accuracy."""
    stats = neurosel.neuron_stats(planted_store, by=None, progress=False, device="cpu")
    x16 = planted_store.read().reshape(N, -1).astype(np.float16)
    center, scale = stats.mean.ravel(), stats.std.ravel()
    y = (planted_store.labels == 1).astype(float)
    blocks = ArrayDesign(x16, center, scale, block_rows=37, dtype=np.float32)
    exact = ArrayDesign(x16.astype(np.float64), center, scale)
    ours, reference = (sparse_path(d, y, Logistic(), n_lambdas=6) for d in (blocks, exact))
    np.testing.assert_allclose(ours.coef, reference.coef, atol=2e-5)
    np.testing.assert_array_equal(ours.entry, reference.entry)
    assert blocks.passes == exact.passes


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_in_core_design_is_numpys_standardisation_to_the_bit(tmp_path, dtype):
    """The in-core design (engine/kernels/standardise.py, parallel over column tiles, block by block) holds
    exactly numpy's (x − center) / scale of the decoded store (float64, rounded to float32),
    column-major, with a constant neuron
    (scale 0 → 1) and rows split over several blocks and tiles."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((150, 2, 40)) * 3 + 1
    x[:, 1, 7] = 2.5  # constant
    store = neurosel.store_from_array(tmp_path / "s.zarr", x, dtype=dtype, chunk_rows=16)
    raw = store.read().reshape(150, -1).astype(np.float64)  # bfloat16 comes back decoded (float32)
    center, scale = raw.mean(0), raw.std(0, ddof=1)
    design, where = store_design(store, center, scale, neurosel.resolve_device("cpu"), 4 << 10, 1 << 30)
    (block,) = design.blocks()
    assert where == "in-core-float32" and block.data.flags.f_contiguous
    expected = ((raw - center) / np.where(scale > 0, scale, 1.0)).astype(np.float32)
    np.testing.assert_array_equal(block.data, expected)


def test_more_classes_than_the_path_handles_are_refused_before_work(tmp_path, capsys):
    """1,000 classes: the multinomial path would run for hours (its cost grows faster than the
    classes), so importance and select refuse at once, naming the limit; statistics still run."""
    from neurosel.cli import main
    from neurosel.solver._methods import MAX_CLASSES

    rng = np.random.default_rng(0)
    labels = np.arange(2000) % 1000
    store = neurosel.store_from_array(tmp_path / "s.zarr", rng.standard_normal((2000, 2, 4)), labels=labels)
    with pytest.raises(
        neurosel.InputError,
        match=f"1,000 classes; the sparse multinomial path is refused above {MAX_CLASSES}",
    ):
        neurosel.importance(store)
    assert main(["-q", "select", store.path, "--k", "3", "--device", "cpu"]) == 2
    assert "1,000 classes" in capsys.readouterr().err
    assert neurosel.neuron_stats(store, progress=False, save=False).class_mean.shape == (1000, 2, 4)
