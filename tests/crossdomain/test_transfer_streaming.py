"""Transfer on stores above `in_core_bytes`: streamed reads, k-neuron fits on every row of their
columns, the all-neuron baselines on a recorded stratified row sample, targets scored by blocks.

A budget of a few hundred rows forces the streamed path on stores of a few hundred rows (chunks of
32 rows, so a target is read in many blocks). References are the in-memory run (the same columns and
fits) and scikit-learn fitted directly on the recorded rows.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold

import neurosel
from neurosel.crossdomain import contribution
from neurosel.crossdomain._classifier import Tally, fit, score
from neurosel.crossdomain._domains import load_activations, row_sample, sample_rows
from neurosel.crossdomain._multisource import _contribution
from neurosel.crossdomain._rankings import sklearn_ranking
from neurosel.report import write_report
from neurosel.store import ActivationStore
from tests.conftest import build_store

LAYERS, HIDDEN = 3, 64
P = LAYERS * HIDDEN
SHARED = [5, 70, 150]  # one neuron per layer carries the label in every domain
BUDGET = 120_000  # bytes: 156 rows of 192 float32 neurons; a 300-row store (230,400 bytes) streams
SAMPLE = BUDGET // (4 * P)
KS, SEEDS = [3, 10], 2
K_METHODS = ("selected", "random", "stats_topk")


def make_domain(path, seed, n, kind="class", classes=2, offset=0.0, dtype="float32", width=HIDDEN, layers=3):
    """Imbalanced classes (the last one twice as frequent as the others) or a numeric score, carried
    by SHARED (wrapped into a narrower store), plus noise; 32-row chunks."""
    shape = {"n": n, "layers": layers, "hidden": width, "seed": seed, "offset": offset}
    if kind != "class":  # y = x[:, SHARED] @ [1.0, 0.8, 0.6] + 0.5 · noise
        signal = {"numeric": True, "noise": 0.5, "planted": SHARED, "effect": [1.0, 0.8, 0.6]}
    elif classes == 2:  # SHARED move ±0.6 with the class
        signal = {"imbalanced": True, "planted": [c % (layers * width) for c in SHARED], "effect": 0.6}
    else:  # SHARED[c] is +1.2 on class c
        signal = {"imbalanced": True, "classes": classes, "planted": SHARED, "effect": 1.2, "signed": False}
    return build_store(path, dtype=dtype, chunk_rows=32, **shape, **signal)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    return {
        "a": make_domain(root / "a.zarr", 1, 300),
        "b": make_domain(root / "b.zarr", 2, 300),
        "t": make_domain(root / "t.zarr", 3, 300, offset=0.5, dtype="float16"),
        "small": make_domain(root / "small.zarr", 4, 150),
        "big": make_domain(root / "big.zarr", 5, 600, offset=0.5, dtype="bfloat16"),
        "an": make_domain(root / "an.zarr", 6, 300, kind="numeric"),
        "tn": make_domain(root / "tn.zarr", 7, 300, kind="numeric", offset=0.3),
        # last-layer CLS stores (one layer of 64): only the 600-row one streams
        "small-cls": make_domain(root / "small-cls.zarr", 8, 150, width=HIDDEN, layers=1),
        "big-cls": make_domain(root / "big-cls.zarr", 9, 600, width=HIDDEN, layers=1),
        "t-cls": make_domain(root / "t-cls.zarr", 10, 300, offset=0.5, width=HIDDEN, layers=1),
    }


@contextlib.contextmanager
def streaming_only():
    """Fail if a store above the budget is read whole (ActivationStore.read without a selection)."""
    read = ActivationStore.read

    def guarded(self, rows=None, layers=None, neurons=None):
        if rows is None and self.n * len(self.layers) * self.hidden * 4 > BUDGET:
            raise AssertionError(f"store {self.path} read whole")
        return read(self, rows, layers, neurons)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ActivationStore, "read", guarded)
        yield


def flat(value, path=()):
    """A score table as {path: number}, to compare nested tables with a tolerance."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, (*path, key)).items()}
    return {path: value}


def assert_close(mine, theirs, tol=1e-9):
    mine, theirs = flat(mine), flat(theirs)
    assert mine.keys() == theirs.keys()
    for key, value in mine.items():
        assert value == pytest.approx(theirs[key], abs=tol), key


def row(result, norm):
    return next(r for r in result.rows if r["normalisation"] == norm)


def whole(store):
    return store.read().reshape(store.n, -1).astype(np.float32)


def moments(store):
    stats = neurosel.neuron_stats(store, by=None, progress=False)
    return stats.mean.ravel(), stats.std.ravel()


def standardised(x, mean, std):
    return (x - mean) / np.where(std > 0, std, 1.0)


def reference_fit(z, y, kind):
    """The transfer's classifier, written out with scikit-learn (docs/api.md)."""
    if kind == "class":
        return LogisticRegressionCV(
            Cs=np.logspace(-4, 2, 7), cv=StratifiedKFold(3, shuffle=True, random_state=0), l1_ratios=(0.0,),
            scoring="accuracy", max_iter=2000, use_legacy_attributes=False,
        ).fit(z, y)  # fmt: skip
    return RidgeCV(alphas=np.logspace(-1, 5, 7), cv=KFold(3, shuffle=True, random_state=0)).fit(z, y)


def reference_score(model, z, y, kind):
    pred = model.predict(z)
    if kind == "class":
        return {"accuracy": float(np.mean(pred == y))}
    return {"pearson": float(pearsonr(pred, y)[0]), "spearman": float(spearmanr(pred, y)[0])}


def cv_score(model, kind):
    return float(np.max(model.scores_.mean(axis=0))) if kind == "class" else float(model.best_score_)


# ---------------------------------------------------------------- the pieces


def test_row_sample_is_stratified_sized_and_seeded():
    strata = np.repeat([0, 1, 2, 5], [50, 31, 7, 12])  # 100 rows, uneven strata
    ids = row_sample(strata, 37, seed=3)
    assert ids.size == 37 and np.all(np.diff(ids) > 0) and ids[0] >= 0 and ids[-1] < 100
    counts = np.array([np.sum(strata[ids] == s) for s in (0, 1, 2, 5)])
    share = np.array([50, 31, 7, 12]) * 37 / 100
    assert counts.sum() == 37 and np.all(np.abs(counts - share) < 1)
    np.testing.assert_array_equal(row_sample(strata, 37, seed=3), ids)
    assert not np.array_equal(row_sample(strata, 37, seed=4), ids)
    np.testing.assert_array_equal(row_sample(strata, 100, seed=3), np.arange(100))


@pytest.mark.parametrize("name", ["a", "t", "big"])  # float32, float16, bfloat16
def test_a_streamed_domain_reads_columns_rows_and_blocks_as_the_whole_matrix(stores, name):
    store = stores[name]
    in_core = load_activations(store)
    assert in_core.in_core and in_core.x.dtype == np.float32
    cols, ids = np.array([150, 3, 77, 3, 191]), np.array([0, 31, 32, 33, 250, store.n - 1])
    with streaming_only():
        streamed = load_activations(store, in_core_bytes=BUDGET)
        assert streamed.x is None and not streamed.in_core
        spans = [(start, stop) for start, stop, _ in streamed.blocks()]
        x = np.concatenate([block for _, _, block in streamed.blocks()])
        got_cols, got_rows = streamed.columns(cols), streamed.rows(ids)
    assert len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == store.n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, in_core.x)
    np.testing.assert_array_equal(got_cols, in_core.x[:, cols])
    np.testing.assert_array_equal(got_rows, in_core.x[ids])
    np.testing.assert_array_equal(streamed.mean, in_core.mean)


@pytest.mark.parametrize("kind", ["class", "numeric"])
def test_tally_over_blocks_equals_score_on_the_whole_matrix(kind):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((250, 6))
    y = (z[:, 0] > 0).astype(int) if kind == "class" else z[:, 0] + rng.standard_normal(250)
    fitted = fit(z, y, kind)
    tally = Tally(fitted, 250)
    for start in range(0, 250, 32):
        tally.add(start, z[start : start + 32], y[start : start + 32])
    assert tally.result(y) == score(fitted, z, y)


@pytest.mark.parametrize("case", ["binary", "three", "numeric"])
def test_contributions_summed_over_blocks_equal_the_whole_matrix(tmp_path, case):
    kind = "numeric" if case == "numeric" else "class"
    store = make_domain(tmp_path / "c.zarr", 11, 300, kind=kind, classes=3 if case == "three" else 2)
    streamed, in_core = load_activations(store, in_core_bytes=BUDGET), load_activations(store)
    rng = np.random.default_rng(1)
    coef = rng.standard_normal((3 if case == "three" else 1, P))
    mean, std = rng.standard_normal(P), rng.random(P) + 0.5
    classes = np.unique(in_core.y) if kind == "class" else None
    expected = contribution(coef, standardised(in_core.x, mean, std), in_core.y, kind, classes)
    got = _contribution(coef, streamed, mean, std, kind, classes)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- single source, streamed


@pytest.mark.parametrize("kind", ["class", "numeric"])
def test_k_neuron_methods_on_a_streamed_source_equal_the_in_memory_run(stores, kind):
    a, t = (stores["a"], stores["t"]) if kind == "class" else (stores["an"], stores["tn"])
    options = {"k": 3, "ks": KS, "seeds": SEEDS, "sklearn_baseline": True}
    in_memory = neurosel.transfer([a], t, **options)
    with streaming_only():
        streamed = neurosel.transfer([a], t, **options, in_core_bytes=BUDGET)
    np.testing.assert_array_equal(streamed.selected, in_memory.selected)
    assert "rows_used" not in in_memory.meta and "rows_used" not in in_memory.rows[0]
    used = {"all": SAMPLE, "best_layer": SAMPLE, "sklearn_ranking": SAMPLE, "of": 300}
    assert streamed.meta["rows_used"] == used
    for norm in ("source", "target"):
        mine, theirs = row(streamed, norm), row(in_memory, norm)
        assert mine["rows_used"] == used
        for method in K_METHODS:
            assert_close(mine["scores"][method], theirs["scores"][method])
            assert_close(mine["by_k"][method], theirs["by_k"][method])
            for metric, table in mine.get("other_metrics", {}).items():
                assert_close(table[method], theirs["other_metrics"][metric][method])


@pytest.mark.parametrize("kind", ["class", "numeric"])
def test_sampled_baselines_fit_exactly_the_recorded_rows(stores, kind):
    """all, best_layer and the scikit-learn ranking are fitted on the stratified sample: scikit-learn
    fitted directly on those rows gives the same scores."""
    a, t = (stores["a"], stores["t"]) if kind == "class" else (stores["an"], stores["tn"])
    res = neurosel.transfer([a], t, k=3, ks=[3], seeds=SEEDS, in_core_bytes=BUDGET, sklearn_baseline=True)
    (ids,) = sample_rows([load_activations(a, in_core_bytes=BUDGET)], BUDGET, seed=0)
    assert ids.size == res.meta["rows_used"]["all"] == SAMPLE and np.all(np.diff(ids) > 0)
    y = a.labels
    if kind == "class":  # stratified: each class keeps its share of the rows
        for c in np.unique(y):
            assert abs(np.sum(y[ids] == c) - np.sum(y == c) * SAMPLE / a.n) < 1
    x, xt, (mean, std) = whole(a), whole(t), moments(a)
    z = standardised(x[ids], mean, std)
    full = reference_fit(z, y[ids], kind)
    layers = [reference_fit(z[:, i * HIDDEN : (i + 1) * HIDDEN], y[ids], kind) for i in range(LAYERS)]
    best = int(np.argmax([cv_score(m, kind) for m in layers]))
    ranking = sklearn_ranking(z, y[ids], kind)[:3]
    zs = standardised(x[:, ranking], mean[ranking], std[ranking])
    recipe = LogisticRegression(max_iter=2000).fit(zs, y) if kind == "class" else Ridge().fit(zs, y)
    metric = res.metric
    for norm, (m, s) in (("source", (mean, std)), ("target", moments(t))):
        got, zt = row(res, norm), standardised(xt, m, s)
        expected = reference_score(full, zt, t.labels, kind)
        assert got["scores"]["all"] == pytest.approx(expected[metric], abs=1e-9)
        assert got["scores"]["best_layer"]["layer"] == best
        cols = np.arange(best * HIDDEN, (best + 1) * HIDDEN)
        layer_score = reference_score(layers[best], zt[:, cols], t.labels, kind)
        assert got["scores"]["best_layer"]["score"] == pytest.approx(layer_score[metric], abs=1e-9)
        if norm == "source":  # the recipe's classifier: every row of its columns
            expected = reference_score(recipe, zt[:, ranking], t.labels, kind)[metric]
            assert got["scores"]["sklearn"] == pytest.approx(expected, abs=1e-9)


def test_a_streamed_target_is_scored_by_blocks_and_equals_the_whole_matrix(stores):
    """Source in core, targets (and a target's CLS store) streamed: every score of every method is
    the in-memory run's, since no sample is needed."""
    small, big, t = stores["small"], stores["big"], stores["t"]
    cls = {"small": stores["small-cls"], "big": stores["big-cls"], "t": stores["t-cls"]}
    options = {"k": 3, "ks": KS, "seeds": SEEDS, "cls": cls, "names": ["small", "big", "t"]}
    in_memory = neurosel.transfer([small], [big, t], **options)
    with streaming_only():
        streamed = neurosel.transfer([small], [big, t], **options, in_core_bytes=BUDGET)
    assert "rows_used" not in streamed[0].meta
    for mine, theirs in zip(streamed, in_memory, strict=True):
        assert [r["scores"] for r in mine.rows] == [r["scores"] for r in theirs.rows]
        assert [r["by_k"] for r in mine.rows] == [r["by_k"] for r in theirs.rows]
        assert "last_cls" in mine.rows[0]["scores"]


def test_a_streamed_cls_store_fits_its_baseline_on_its_own_row_sample(stores):
    big, t = stores["big"], stores["t"]  # 600 rows, streamed; its CLS store (600 × 64) streams too
    cls = {"big": stores["big-cls"], "t": stores["t-cls"]}
    res = neurosel.transfer(
        [big], t, k=3, ks=[3], seeds=SEEDS, cls=cls, sklearn_baseline=False, in_core_bytes=BUDGET
    )
    (ids,) = sample_rows([load_activations(cls["big"], in_core_bytes=BUDGET)], BUDGET, seed=0)
    assert ids.size == BUDGET // (4 * HIDDEN) == res.meta["rows_used"]["last_cls"]
    assert res.meta["rows_used"] == {"all": SAMPLE, "best_layer": SAMPLE, "last_cls": ids.size, "of": 600}
    x, (mean, std) = whole(cls["big"]), moments(cls["big"])
    model = reference_fit(standardised(x[ids], mean, std), cls["big"].labels[ids], "class")
    for norm, (m, s) in (("source", (mean, std)), ("target", moments(cls["t"]))):
        expected = reference_score(model, standardised(whole(cls["t"]), m, s), cls["t"].labels, "class")
        assert row(res, norm)["scores"]["last_cls"] == pytest.approx(expected["accuracy"], abs=1e-9)


# ---------------------------------------------------------------- several sources, streamed


def test_several_streamed_sources_record_their_samples_and_keep_k_neuron_fits(stores):
    a, b, t = stores["a"], stores["b"], stores["t"]
    options = {"k": 3, "ks": KS, "seeds": SEEDS, "choose_k": False}
    in_memory = neurosel.transfer([a, b], t, **options)
    with streaming_only():
        streamed = neurosel.transfer([a, b], t, **options, in_core_bytes=BUDGET)
    assert set(streamed.selected) == set(SHARED)
    # the all-neuron fits: one sample over both sources; the scenarios': one per source
    used = {"all": SAMPLE, "best_layer": SAMPLE, "scenarios": 2 * SAMPLE, "of": 600}
    assert streamed.meta["rows_used"] == used and "rows_used" not in streamed.meta["scenarios"]
    for norm in ("source", "target"):
        mine, theirs = row(streamed, norm), row(in_memory, norm)
        assert mine["rows_used"] == used
        for method in ("random", "stats_topk"):  # columns that do not depend on the scenarios
            assert_close(mine["scores"][method], theirs["scores"][method])
    # the selected neurons' classifier: every row of both sources, each with its own statistics
    cols = streamed.selected
    z = np.vstack([standardised(whole(s)[:, cols], *(v[cols] for v in moments(s))) for s in (a, b)])
    model = reference_fit(z, np.concatenate([a.labels, b.labels]), "class")
    zt = standardised(whole(t)[:, cols], *(v[cols] for v in moments(t)))
    expected = reference_score(model, zt, t.labels, "class")["accuracy"]
    assert row(streamed, "target")["scores"]["selected"] == pytest.approx(expected, abs=1e-9)


def test_the_report_takes_rows_with_a_row_sample(stores, tmp_path):
    res = neurosel.transfer(
        [stores["a"]], stores["t"], k=3, ks=[3], seeds=SEEDS, sklearn_baseline=False, in_core_bytes=BUDGET
    )
    saved = res.to_dict()
    assert saved["meta"]["rows_used"]["all"] == SAMPLE and saved["rows"][0]["rows_used"]["of"] == 300
    results = {"k": 3, "datasets": ["a", "t"], "transfers": saved["rows"]}
    text = write_report(results, tmp_path / "report").read_text()
    assert "## Row samples" in text and f"- a: all {SAMPLE:,}, best_layer {SAMPLE:,} of 300 rows" in text


# ---------------------------------------------------------------- what does not fit


def test_columns_or_a_sample_that_do_not_fit_are_input_errors(stores):
    a, t = stores["a"], stores["t"]
    options = {"k": 3, "ks": KS, "seeds": SEEDS, "sklearn_baseline": False}
    # 20,000 bytes: a 26-row sample fits, but not the k-neuron classifiers' columns of all 300 rows
    with pytest.raises(neurosel.InputError) as caught:
        neurosel.transfer([a], t, **options, in_core_bytes=20_000)
    message = str(caught.value)
    assert message.startswith(f"store {a.path}: the k-neuron classifiers need ")
    union = int(message.split(" need ")[1].split()[0])
    assert 10 <= union <= 10 + 10 + SEEDS * (3 + 10)  # selected, stats_topk, random over ks
    assert f"{union * 300 * 4:,} bytes as float32, more than in_core_bytes=20,000" in message
    assert "raise in_core_bytes" in message
    with pytest.raises(
        neurosel.InputError, match=r"only 2 rows .* too few for 3-fold .* raise in_core_bytes"
    ):
        neurosel.transfer([a], t, **options, in_core_bytes=2 * 4 * P)
    for bad in (0, -1, 1.5, True, "2GiB"):
        with pytest.raises(neurosel.InputError, match="in_core_bytes"):
            neurosel.transfer([a], t, **options, in_core_bytes=bad)
