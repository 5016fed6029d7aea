"""The scikit-learn recipe ranking (the side-by-side baseline of every single-source transfer), and
the selection rankings: a path-based rule ranks one neuron per ten source examples, the statistics
score the rest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import l1_min_c

import neurosel
from neurosel.crossdomain import load_activations
from neurosel.crossdomain._paths import EXAMPLES_PER_NEURON, fill_by_stats, path_record, trusted_size
from neurosel.crossdomain._rankings import (
    SKLEARN_CS,
    SKLEARN_RATIO,
    path_options,
    resolve_ranking,
    selection_ranking,
    sklearn_ranking,
    sparse_importance,
    stats_ranking,
)
from neurosel.solver import rank_by_entry


@pytest.mark.parametrize("classes", [2, 3])
def test_sklearn_recipe_ranking_equals_a_loop_of_liblinear_fits(classes):
    """The recipe ranks exactly as the loop a scikit-learn user writes: one liblinear L1 fit per C
    (one-vs-rest for three classes), neurons by the first C where they enter, and the same again
    when called twice (liblinear's coordinate order comes from a global generator seeded per fit:
    run on threads, the fits interleave its draws, docs/benchmarks.md)."""
    rng = np.random.default_rng(classes)
    z = rng.standard_normal((240, 30))
    y = np.arange(240) % classes
    for c in range(classes):
        z[y == c, 3 * c] += 1.0
        z[y == c, 3 * c + 1] += 0.5
    cs = l1_min_c(z, y, loss="log") * np.geomspace(1.0, SKLEARN_RATIO, SKLEARN_CS)
    weights = []
    for c in cs:
        model = LogisticRegression(solver="liblinear", l1_ratio=1.0, C=c, max_iter=1000, random_state=0)
        fitted = (OneVsRestClassifier(model) if classes > 2 else model).fit(z, y)
        coef = np.vstack([e.coef_ for e in fitted.estimators_]) if classes > 2 else fitted.coef_
        weights.append(np.linalg.norm(coef, axis=0))
    path = np.array(weights)
    entered = path != 0
    want = rank_by_entry(np.where(entered.any(0), entered.argmax(0), -1), path[-1])
    np.testing.assert_array_equal(sklearn_ranking(z, y, "class"), want)
    np.testing.assert_array_equal(sklearn_ranking(z, y, "class"), want)
    planted = {3 * c for c in range(classes)} | {3 * c + 1 for c in range(classes)}
    assert set(want[:classes].tolist()) <= planted


def _numeric_store(path, n=240, layers=2, hidden=40, seed=0):
    """A store with numeric labels: a few neurons carry the score, the rest noise of varied strength."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, layers, hidden))
    y = x[:, 1, :4] @ np.array([1.0, 0.8, 0.6, 0.4]) + 0.3 * x[:, 0, :30].sum(1) / 30**0.5
    y += 0.5 * rng.standard_normal(n)
    return neurosel.store_from_array(path, x, labels=y, dtype="float32", label_kind="numeric")


def _abs_pearson_order(store) -> np.ndarray:
    """Flat ids by |Pearson r| with the labels, float64 numpy, largest first (no ties here)."""
    x = np.asarray(store.read(), dtype=np.float64).reshape(len(store.labels), -1)
    y = np.asarray(store.labels, dtype=np.float64)
    xc, yc = x - x.mean(0), y - y.mean()
    r = (xc * yc[:, None]).sum(0) / np.sqrt((xc**2).sum(0) * (yc**2).sum())
    return np.argsort(-np.abs(r), kind="stable")


def test_fill_by_stats_keeps_the_head_then_the_statistics_order():
    ranking = np.array([5, 2, 7, 0, 1, 3, 4, 6])
    stats = np.array([7, 6, 5, 4, 3, 2, 1, 0])
    want = [5, 2, 7] + [i for i in stats.tolist() if i not in (5, 2, 7)]
    np.testing.assert_array_equal(fill_by_stats(ranking, stats, 3), want)
    np.testing.assert_array_equal(fill_by_stats(ranking, stats, 8), ranking)
    assert trusted_size(240) == 240 // EXAMPLES_PER_NEURON and trusted_size(3) == 1


@pytest.mark.parametrize("rule", ["elastic-net", "entry", "auto"])
def test_a_path_rule_ranks_its_trusted_neurons_and_the_statistics_score_ranks_the_rest(tmp_path, rule):
    """On a real store of 240 examples a path-based rule ranks 24 neurons (one per ten examples) by
    its own order; every other neuron follows by |Pearson r| (numpy's, float64); the result says how
    many it ranked, and the path record says past which k the statistics score takes over."""
    store = _numeric_store(tmp_path / "s.zarr")
    src = load_activations(store, "s", "cpu")
    resolved = resolve_ranking(rule, src.kind)
    imp = sparse_importance(store, src.kind, 60, path_options(resolved, {"device": "cpu"}))
    stats = stats_ranking([src], "cpu")
    np.testing.assert_array_equal(stats, _abs_pearson_order(store))
    ranking, meta = selection_ranking(rule, src, imp, stats, 60)
    trusted = 240 // EXAMPLES_PER_NEURON
    assert meta == {"ranking": resolved, "trusted": trusted}
    np.testing.assert_array_equal(ranking[:trusted], imp.ranking[:trusted])
    rest = [i for i in _abs_pearson_order(store).tolist() if i not in set(imp.ranking[:trusted].tolist())]
    np.testing.assert_array_equal(ranking[trusted:], rest)
    assert sorted(ranking.tolist()) == list(range(src.p))
    own, meta = selection_ranking(rule, src, imp, stats, 60, fill=False)
    np.testing.assert_array_equal(own, imp.ranking)
    assert "trusted" not in meta
    record = path_record(imp, store, 40, "s", ranking, resolved)
    assert record.trusted == trusted
    assert f"past the first {trusted}, by the statistics score" in record.describe()
    assert "past the first" not in path_record(imp, store, trusted, "s", ranking, resolved).describe()


def test_stability_fisher_fills_by_fisher_past_its_trusted_neurons(tmp_path):
    """The classes' default: the mean of stability's and Fisher's ranks for the first n // 10
    neurons, then Fisher order (the statistics ranking) for the rest."""
    rng = np.random.default_rng(3)
    y = np.arange(200) % 2
    x = rng.standard_normal((200, 2, 24))
    x[:, 1, :5] += np.linspace(1.0, 0.2, 5) * (2 * y[:, None] - 1)
    store = neurosel.store_from_array(tmp_path / "c.zarr", x, labels=y, dtype="float32")
    src = load_activations(store, "c", "cpu")
    imp = sparse_importance(store, "class", 30, {"device": "cpu"})
    stats = stats_ranking([src], "cpu")
    ranking, meta = selection_ranking("stability+fisher", src, imp, stats, 30)
    own, _ = selection_ranking("stability+fisher", src, imp, stats, 30, fill=False)
    assert meta["trusted"] == 20 and meta["subsamples"] == 16
    np.testing.assert_array_equal(ranking[:20], own[:20])
    np.testing.assert_array_equal(
        ranking[20:], [i for i in stats.tolist() if i not in set(own[:20].tolist())]
    )
