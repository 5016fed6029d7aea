"""Transfer on synthetic domains: a planted shared signal and planted domain-specific distractors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

import neurosel
from neurosel.crossdomain import _classifier, contribution
from neurosel.report import write_report
from neurosel.store import DERIVED_GROUPS
from tests.conftest import build_store

N, LAYERS, HIDDEN = 600, 3, 16
SHARED = [2, 19, 37]  # one neuron per layer carries the label in every domain


def make_domain(path, seed, distractors, sign, offset=0.0):
    """Shared neurons: +1.0·(2y−1) everywhere; `distractors`: `sign`·0.35·(2y−1) (domain-specific)."""
    return build_store(
        path, n=N, layers=LAYERS, hidden=HIDDEN, seed=seed, labels_first=True, offset=offset,
        planted=[*SHARED, *distractors], effect=[1.0, 0.9, 0.8, *[sign * 0.35] * len(distractors)],
    )  # fmt: skip


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    rng = np.random.default_rng(9)
    others = np.setdiff1d(np.arange(LAYERS * HIDDEN), SHARED)
    d_a, d_b = np.sort(rng.choice(others, 20, replace=False)), np.sort(rng.choice(others, 20, replace=False))
    a = make_domain(root / "a.zarr", 1, d_a, +1)
    b = make_domain(root / "b.zarr", 2, d_b, +1)
    # the target: A's distractors point the other way, B's do nothing; everything shifted by +1.5
    t = make_domain(root / "t.zarr", 3, d_a, -1, offset=1.5)
    return a, b, t


def test_single_source_selects_shared_signal_and_beats_all_neurons(domains):
    a, _, t = domains
    res = neurosel.transfer([a], t, k=3, ks=[3, 10], seeds=3, sklearn_baseline=True)
    assert set(res.selected) == set(SHARED)
    np.testing.assert_allclose(res.fingerprint(), [100 / 3] * 3)
    target_row = next(r for r in res.rows if r["normalisation"] == "target")
    assert target_row["scores"]["selected"] > target_row["scores"]["all"] + 0.05
    assert res.score("selected", "target") > res.score("random", "target")
    assert set(target_row["scores"]) >= {"selected", "all", "random", "stats_topk", "best_layer"}
    source_row = next(r for r in res.rows if r["normalisation"] == "source")
    assert "sklearn" in source_row["scores"] and set(source_row["by_k"]["selected"]) == {"3", "10"}
    assert source_row["by_k"]["random"]["3"]["seeds"] == 3


def test_sources_and_target_may_be_one_store_or_path_each(domains):
    """`transfer(store, store)` and `transfer(path, path)` mean `transfer([store], store)`."""
    a, _, t = domains
    options = {"k": 3, "ks": [3], "seeds": 2, "sklearn_baseline": False}
    listed = neurosel.transfer([a], t, **options)
    for source, target in ((a, t), (a.path, t.path), ([a.path], t)):
        res = neurosel.transfer(source, target, **options)
        assert isinstance(res, neurosel.TransferResult)
        np.testing.assert_array_equal(res.selected, listed.selected)
        assert res.rows == listed.rows


def test_target_normalisation_removes_a_shift(domains):
    a, _, t = domains
    res = neurosel.transfer([a], t, k=3, ks=[3], seeds=2, sklearn_baseline=False)
    assert res.score("selected", "target") > res.score("selected", "source") + 0.05


def test_multi_source_downweights_domain_specific_neurons(domains):
    """The ranking puts the shared neurons first. k is kept (choose_k=False): the sources cannot see
    the target's flipped distractors, so on them every neuron does as well as any k and is chosen
    (tests/crossdomain/test_multisource.py covers the choice)."""
    a, b, t = domains
    res = neurosel.transfer([a, b], t, k=3, ks=[3, 10, 30], seeds=2, choose_k=False)
    assert set(res.selected) == set(SHARED)
    assert res.meta["k_chosen"] == 3 and len(res.meta["scenarios"]["pairs"]) == 2
    assert res.score("selected", "target") > res.score("all", "target")
    assert res.sources == ["a", "b"] and res.target == "t"


def test_targets_share_one_training_and_json_round_trips(domains, tmp_path):
    a, b, t = domains
    results = neurosel.transfer([a], [b, t], k=3, ks=[3], seeds=2, sklearn_baseline=False)
    assert [r.target for r in results] == ["b", "t"]
    saved = json.loads(results[1].save(tmp_path / "r.json").read_text())
    assert saved["rows"][0]["scores"]["selected"] == results[1].rows[0]["scores"]["selected"]


def test_single_source_k_chosen_by_source_cross_validation(domains):
    """selected_cv is the selected curve at the k whose statistics-only (Fisher) top-k classifier
    scores best in the source's cross-validation (ties to the smaller k), recomputed here from the
    same fits; it never reads a target label. (The selection's own CV would prefer the neurons its
    ranking fitted to the source's rows: docs/method.md.)"""
    a, _, t = domains
    res = neurosel.transfer([a], t, k=3, ks=[3, 8, 10], seeds=2, sklearn_baseline=False)
    ranking = np.asarray(res.selected)
    z = (a.read().reshape(a.n, -1) - a.read().reshape(a.n, -1).mean(0)) / a.read().reshape(a.n, -1).std(
        0, ddof=1
    )
    full = neurosel.transfer([a], t, k=10, ks=[10], seeds=2, sklearn_baseline=False).selected
    assert np.array_equal(full[:3], ranking)
    fisher = np.nan_to_num(neurosel.neuron_stats(a, by="label", auroc=False, progress=False).fisher.ravel())
    by_fisher = np.lexsort((np.arange(fisher.size), -rankdata(fisher)))
    cv = {kk: _classifier.fit(z[:, by_fisher[:kk]], a.labels, "class").cv_score for kk in (3, 8, 10)}
    expected = max(cv, key=lambda kk: (cv[kk], -kk))
    own = {kk: _classifier.fit(z[:, full[:kk]], a.labels, "class").cv_score for kk in (3, 8, 10)}
    assert max(own, key=lambda kk: (own[kk], -kk)) != expected  # the two criteria differ here
    assert res.meta["k_cv"] == expected
    for row in res.rows:
        assert row["scores"]["selected_cv"] == row["by_k"]["selected"][str(expected)]
    only = neurosel.transfer([a], t, k=3, ks=[3], seeds=2, sklearn_baseline=False)
    assert only.meta["k_cv"] == 3 and all(
        r["scores"]["selected_cv"] == r["scores"]["selected"] for r in only.rows
    )


def test_contribution_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    coef = rng.standard_normal((3, 4))
    direct = np.array(
        [np.mean([(coef[y[i], n] - coef[:, n].mean()) * z[i, n] for i in range(50)]) for n in range(4)]
    )
    np.testing.assert_allclose(contribution(coef, z, y, "class", np.arange(3)), direct)
    yb = y % 2
    np.testing.assert_allclose(
        contribution(coef[:1], z, yb, "class", np.arange(2)), np.mean((2 * yb - 1)[:, None] * z * coef[0], 0)
    )


def test_bad_inputs(domains, tmp_path):
    a, _, t = domains
    with pytest.raises(neurosel.InputError, match="at least one"):
        neurosel.transfer([], t)
    with pytest.raises(neurosel.InputError, match=r"k 49: choose 1\.\.48"):
        neurosel.transfer([a], t, k=49)
    other = neurosel.store_from_array(tmp_path / "o.zarr", np.zeros((10, 2, 16)), labels=np.arange(10) % 2)
    with pytest.raises(neurosel.InputError, match="different layers"):
        neurosel.transfer([a], other)
    with pytest.raises(neurosel.InputError, match="normalisations"):
        neurosel.transfer([a], t, normalisations=["mine"])


def test_numeric_labels_use_lasso_ridge_and_correlations(tmp_path):
    rng = np.random.default_rng(5)

    def domain(name, seed):  # score = x[:, SHARED] @ [1.0, 0.8, 0.6] + 0.3 · noise
        return build_store(
            tmp_path / name, n=400, layers=LAYERS, hidden=HIDDEN, seed=seed, numeric=True, noise=0.3,
            planted=SHARED, effect=[1.0, 0.8, 0.6],
        )  # fmt: skip

    a, b = domain("a.zarr", int(rng.integers(1 << 30))), domain("b.zarr", int(rng.integers(1 << 30)))
    res = neurosel.transfer([a], b, k=3, ks=[3, 10], seeds=2)
    assert res.metric == "pearson" and set(res.selected) == set(SHARED)
    row = res.rows[0]
    assert row["scores"]["selected"] > 0.9 and "spearman" in row["other_metrics"]
    assert row["scores"]["selected"] >= row["scores"]["random"]["mean"]


def test_three_classes_transfer_with_the_group_path(tmp_path):
    def domain(name, seed):  # labels 0, 1, 2, 0, …; SHARED[c] is +2.0 on class c
        return build_store(
            tmp_path / name, n=450, layers=LAYERS, hidden=HIDDEN, seed=seed, classes=3, cycle=True,
            planted=SHARED, effect=2.0, signed=False,
        )  # fmt: skip

    source, target = domain("a.zarr", 1), domain("b.zarr", 2)
    res = neurosel.transfer([source], target, k=3, ks=[3], seeds=2, sklearn_baseline=True)
    assert set(res.selected) == set(SHARED) and res.metric == "accuracy"
    assert res.score("selected") > 0.8 and "sklearn" in res.rows[0]["scores"]
    plain = neurosel.transfer([source], target, k=3, ks=[3], seeds=2)  # the recipe is off by default
    assert "sklearn" not in plain.rows[0]["scores"]
    assert plain.rows[0]["scores"]["selected"] == res.rows[0]["scores"]["selected"]


def separable_domain(path, seed, n=60):
    """One neuron (SHARED[1]) separates the classes outright: a path asked for 10 neurons stops early."""
    return build_store(
        path, n=n, layers=LAYERS, hidden=HIDDEN, seed=seed, cycle=True, planted=[SHARED[1]], effect=4.0
    )


def test_a_source_that_separates_early_says_so_in_the_result_json_and_report(tmp_path):
    a, t = separable_domain(tmp_path / "a.zarr", 1), separable_domain(tmp_path / "t.zarr", 2)
    k, ks = 5, [5, 10]
    with pytest.warns(neurosel.SupportWarning) as caught:
        res = neurosel.transfer([a], t, k=k, ks=ks, seeds=2, sklearn_baseline=False, ranking="entry")
    imp = neurosel.importance(a, "l1-logistic", target_support=10)  # the transfer's path, read back
    (path,) = res.paths
    assert path.name == "a" and path.store == a.path and path.k == k and path.key == imp.meta["key"]
    assert 0 < path.entered == imp.entered < k
    assert path.separation_lambda == imp.lambdas[-1] < imp.lambdas[0] == path.lambda_max
    never = imp.entry.ravel()[res.selected] < 0
    assert path.filled == int(never.sum()) == k - path.entered
    messages = [str(w.message) for w in caught]
    assert any(a.path in m and "the examples are separated" in m for m in messages)  # the solver's
    ours = [m for m in messages if f"{path.filled} of the k = {k} selected are filled by closeness" in m]
    assert len(ours) == 1 and ours[0].startswith(f"store {a.path}: {path.entered} neuron")

    saved = json.loads(res.save(tmp_path / "r.json").read_text())
    assert saved["paths"] == [path.to_dict()]
    assert saved["paths"][0]["entered"] == path.entered and saved["paths"][0]["filled"] == k - path.entered
    assert saved["paths"][0]["separation_lambda"] == path.separation_lambda

    results = {"k": k, "datasets": ["a"], "paths": {"a": saved["paths"][0]}, "transfers": saved["rows"]}
    text = write_report(results, tmp_path / "report").read_text(encoding="utf-8")
    section = text[text.index("## Sparse paths behind the selections") :]
    ratio = f"{path.separation_lambda / path.lambda_max:.3g}"
    assert f"| a | {path.entered} | {ratio} | entry | {k} | {path.filled} |" in section
    assert "a: part of the selected neurons never entered the sparse path" in section
    assert "For 1 of 1 datasets (a), some of the k = 5 selected neurons never entered" in text

    with pytest.warns(
        neurosel.SupportWarning, match=f"store {a.path}: .* because the examples are separated"
    ):
        again = neurosel.transfer(
            [a], t, k=k, ks=ks, seeds=2, sklearn_baseline=False, ranking="entry"
        )  # read back
    assert again.paths == res.paths


def test_every_store_s_warning_is_shown_and_names_its_store(tmp_path):
    stores = [separable_domain(tmp_path / f"{name}.zarr", seed) for name, seed in (("a", 1), ("b", 3))]
    t = separable_domain(tmp_path / "t.zarr", 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own rule: once per message and place
        for store in stores:
            neurosel.transfer([store], t, k=5, ks=[5, 10], seeds=2, sklearn_baseline=False, ranking="entry")
    filled = [str(w.message) for w in caught if "filled by closeness" in str(w.message)]
    solver = [str(w.message) for w in caught if "the examples are separated); returning" in str(w.message)]
    for found in (filled, solver):
        assert [m.split(": ", 1)[0] for m in found] == [f"store {s.path}" for s in stores]


def test_the_default_ranking_records_what_never_entered_without_a_filled_warning(tmp_path):
    a, t = separable_domain(tmp_path / "a.zarr", 1), separable_domain(tmp_path / "t.zarr", 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = neurosel.transfer([a], t, k=5, ks=[5, 10], seeds=2, sklearn_baseline=False)
    (path,) = res.paths
    imp = neurosel.importance(a, "l1-logistic", target_support=10)
    assert res.meta["ranking"] == path.ranking == "stability+fisher" and res.meta["subsamples"] == 16
    assert path.filled == int(np.count_nonzero(imp.entry.ravel()[res.selected] < 0))
    assert "selected by the stability+fisher ranking never entered it" in path.describe()
    assert not [w for w in caught if "filled by closeness" in str(w.message)]
    assert res.to_dict()["paths"][0]["ranking"] == "stability+fisher"


def test_good_paths_are_recorded_without_warnings(domains):
    a, b, t = domains
    res = neurosel.transfer([a], t, k=3, ks=[3, 10], seeds=2, sklearn_baseline=False)
    (path,) = res.paths
    assert path.entered >= 10 and path.filled == 0 and path.separation_lambda is None
    assert path.target_support == 10
    multi = neurosel.transfer([a, b], t, k=3, ks=[3], seeds=2)  # ranked by scenarios, not by a path
    assert multi.paths == [] and multi.to_dict()["paths"] == []


@pytest.mark.parametrize("case", ["class_weight", "numeric"])
def test_separation_read_off_the_saved_path_agrees_with_the_solver(tmp_path, case):
    if case == "numeric":  # a noiseless score of one neuron: the lasso path stops at that neuron
        one = {"n": 60, "layers": LAYERS, "hidden": HIDDEN, "planted": [SHARED[1]], "effect": 3.0}
        a, t = (build_store(tmp_path / name, seed=4, numeric=True, **one) for name in ("a.zarr", "t.zarr"))
        method, options = "lasso", {}
    else:
        a, t = separable_domain(tmp_path / "a.zarr", 1), separable_domain(tmp_path / "t.zarr", 2)
        method, options = "l1-logistic", {"class_weight": {0: 2.0}}
    with pytest.warns(neurosel.SupportWarning) as caught:
        res = neurosel.transfer(
            [a],
            t,
            k=5,
            ks=[5, 10],
            seeds=2,
            sklearn_baseline=False,
            importance_options=options,
            ranking="entry",
        )
    assert any("the examples are separated" in str(w.message) for w in caught)  # the solver, on a fresh path
    imp = neurosel.importance(a, method, target_support=10, **options)
    assert res.paths[0].separation_lambda == imp.lambdas[-1] and res.paths[0].filled == 5 - imp.entered


def saved_results(*stores):
    """Every saved result of the stores: (store, kind/key) with its files' modification times."""
    found = {}
    for store in stores:
        root = Path(store.path)
        for kind in DERIVED_GROUPS:
            for group in sorted((root / kind).glob("*")) if (root / kind).exists() else []:
                found[root.name, f"{kind}/{group.name}"] = sorted(
                    (str(f.relative_to(group)), f.stat().st_mtime_ns) for f in group.rglob("*") if f.is_file()
                )
    return found


def test_a_re_run_reads_every_saved_result_back_and_gives_the_same_numbers(tmp_path):
    """The second call on the same stores, reopened as a new process would, solves no path, no
    stability half and no classifier (neurosel.timing's "… solved" stages are absent), writes nothing
    to the stores, and returns the first call's rows exactly."""
    rng = np.random.default_rng(9)
    others = np.setdiff1d(np.arange(LAYERS * HIDDEN), SHARED)
    paths = [tmp_path / "a.zarr", tmp_path / "t.zarr"]
    make_domain(paths[0], 1, np.sort(rng.choice(others, 20, replace=False)), +1)
    make_domain(paths[1], 3, np.sort(rng.choice(others, 20, replace=False)), -1, offset=1.5)

    def run():
        a, t = (neurosel.open_store(p) for p in paths)
        with neurosel.timing.record() as stages:
            result = neurosel.transfer([a], t, k=3, ks=[3, 10], seeds=2)
        return result, stages, (a, t)

    solved = {"sparse path solved", "stability halves solved", "classifiers solved"}
    first, stages, stores = run()
    assert solved <= set(stages)
    saved = saved_results(*stores)
    assert {kind.split("/")[0] for _, kind in saved} == {"stats", "importance", "stability", "classifiers"}
    again, stages, stores = run()
    assert not solved & set(stages)
    assert saved_results(*stores) == saved  # nothing written, nothing replaced
    assert again.rows == first.rows and np.array_equal(again.selected, first.selected)
