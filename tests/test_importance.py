"""engine.importance on stores: planted neurons ranked first, streamed design = in-memory design."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.datafits import Logistic
from engine.design import ArrayDesign, StoreDesign
from engine.importance import rank_by_entry
from engine.path import sparse_path

N, LAYERS, HIDDEN = 400, 3, 16
PLANTED = [5, 20, 41]  # flat ids: layer 0 unit 5, layer 1 unit 4, layer 2 unit 9


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, LAYERS * HIDDEN)) * rng.uniform(0.5, 2, LAYERS * HIDDEN) + 3
    y = rng.integers(0, 2, N)
    x[:, PLANTED] += np.outer(2 * y - 1, [1.2, 0.9, 0.7])
    path = tmp_path_factory.mktemp("imp") / "s.zarr"
    return engine.store_from_array(
        path,
        x.reshape(N, LAYERS, HIDDEN),
        labels=np.where(y == 1, "pos", "neg"),
        dtype="float32",
        chunk_rows=32,
    )


def test_planted_neurons_rank_first_and_select_fingerprint(planted_store):
    imp = engine.importance(planted_store, n_lambdas=15, lambda_ratio=0.05)
    assert set(imp.ranking[:3]) == set(PLANTED)
    assert imp.meta["converged"] and imp.coef.shape == (15, LAYERS, HIDDEN)
    assert imp.support_sizes[0] == 0 and np.all(imp.scores.ravel()[PLANTED] > 0)
    sel = engine.select(imp, k=3)
    np.testing.assert_array_equal(np.sort(sel.neurons), PLANTED)
    np.testing.assert_allclose(sel.fingerprint(), [100 / 3] * 3)
    again = engine.importance(planted_store, n_lambdas=15, lambda_ratio=0.05)
    np.testing.assert_array_equal(again.ranking, imp.ranking)


def test_streamed_design_equals_in_memory(planted_store):
    stats = engine.neuron_stats(planted_store, by=None, progress=False, device="cpu")
    x = planted_store.read().reshape(N, -1).astype(np.float64)
    center, scale = stats.mean.ravel(), stats.std.ravel()
    y = (planted_store.labels == 1).astype(float)
    streamed = sparse_path(StoreDesign(planted_store, center, scale, N, 64 << 10), y, Logistic(), n_lambdas=6)
    memory = sparse_path(ArrayDesign(x, center, scale), y, Logistic(), n_lambdas=6)
    np.testing.assert_allclose(streamed.coef, memory.coef, atol=1e-9)
    np.testing.assert_array_equal(streamed.entry, memory.entry)


def test_ranking_ties_break_by_weight_then_id():
    entry = np.array([1, 0, 1, -1, 1, -1])
    final = np.array([0.5, 0.1, -0.9, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(rank_by_entry(entry, final), [1, 2, 0, 4, 3, 5])


def test_bad_inputs(planted_store, tmp_path):
    rng = np.random.default_rng(1)
    unlabelled = engine.store_from_array(tmp_path / "u.zarr", rng.standard_normal((20, 2, 3)))
    with pytest.raises(engine.InputError, match="has no labels"):
        engine.importance(unlabelled)
    three = engine.store_from_array(
        tmp_path / "t.zarr", rng.standard_normal((30, 2, 3)), labels=np.arange(30) % 3
    )
    with pytest.raises(engine.InputError, match="3 class"):
        engine.importance(three)
    with pytest.raises(engine.InputError, match=r"choose 1\.\.48"):
        engine.select(engine.importance(planted_store, n_lambdas=3), k=49)
