"""Fingerprints against scipy references, and fingerprints of stores with planted layers."""

from __future__ import annotations

import itertools
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

import neurosel
from neurosel.cli import main
from neurosel.crossdomain import (
    Fingerprints,
    domain_distance,
    fingerprint,
    partial_spearman,
    similarity,
    similarity_matrix,
    spearman_permutation,
    transferability,
)
from neurosel.solver import Selection, layer_counts
from tests.conftest import build_store

N, LAYERS, HIDDEN, K = 400, 3, 16, 4
RNG = np.random.default_rng(0)
P, Q = RNG.dirichlet(np.ones(13)) * 100, RNG.dirichlet(np.ones(13)) * 100


def test_selection_fingerprint_matches_hand_counts():
    # layers 0, 6, 12 stored, hidden 5: ids 0..4 layer 0, 5..9 layer 6, 10..14 layer 12
    sel = Selection(neurons=np.array([7, 0, 12, 9, 5, 14, 3, 6]), layers=(0, 6, 12), hidden=5)
    np.testing.assert_allclose(sel.fingerprint(), [25.0, 50.0, 25.0])
    assert sel.fingerprint().sum() == pytest.approx(100)


@pytest.mark.parametrize(
    ("measure", "reference"),
    [
        ("cosine", lambda p, q: 1 - distance.cosine(p, q)),
        ("pearson", lambda p, q: stats.pearsonr(p, q).statistic),
        ("jsd", lambda p, q: 1 - distance.jensenshannon(p, q, base=2) ** 2),
    ],
)
def test_similarity_matches_scipy(measure, reference):
    assert similarity(P, Q, measure) == pytest.approx(reference(P, Q), rel=1e-12)
    assert similarity(P, P, measure) == pytest.approx(1.0)


def test_jsd_with_zero_mass_layers():
    disjoint = similarity([50, 50, 0, 0], [0, 0, 30, 70], "jsd")
    assert disjoint == pytest.approx(0.0, abs=1e-15)
    partial = [60, 0, 40], [20, 80, 0]
    assert similarity(*partial, "jsd") == pytest.approx(1 - distance.jensenshannon(*partial, base=2) ** 2)


def test_similarity_matrix_order_and_symmetry():
    mapping = {"b": Q, "a": P, "c": np.r_[P[:6], Q[6:]]}
    matrix = similarity_matrix(mapping, "jsd")
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert matrix[0, 1] == pytest.approx(similarity(Q, P, "jsd"))
    assert matrix[1, 2] == pytest.approx(similarity(P, mapping["c"], "jsd"))


def test_similarity_errors():
    with pytest.raises(neurosel.InputError, match="measure 'euclid': use one of cosine, pearson, jsd"):
        similarity(P, Q, "euclid")
    with pytest.raises(neurosel.InputError, match="different lengths"):
        similarity(P, Q[:5])
    with pytest.raises(neurosel.InputError, match="'b': negative entries"):
        similarity([50, 50], [120, -20])
    with pytest.raises(neurosel.InputError, match="'a': all zero"):
        similarity([0, 0], [50, 50])
    with pytest.raises(neurosel.InputError, match=r"'flat': the same value in every layer.*Pearson"):
        similarity_matrix({"x": [10, 30, 60], "flat": [100 / 3] * 3}, "pearson")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_rho_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 5, 30), rng.integers(0, 4, 30) + rng.integers(0, 5, 30) // 2
    rho, _ = spearman_permutation(x, y, permutations=10)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


def test_spearman_p_value_matches_exact_permutation_test():
    x = np.array([0.9, 0.4, 0.4, 0.7, 0.1, 0.8, 0.3])
    y = np.array([71.0, 60.0, 65.0, 60.0, 58.0, 69.0, 66.0])
    # every one of the 7! = 5040 pairings, enumerated here: scipy's permutation_test was meant to do
    # this but samples at random on this input (0.078-0.095 between calls; the exact p is 0.0885)
    observed = abs(stats.spearmanr(x, y).statistic)
    pairings = [stats.spearmanr(x, y[list(order)]).statistic for order in itertools.permutations(range(7))]
    exact = float(np.mean(np.abs(pairings) >= observed - 1e-12))
    _, p = spearman_permutation(x, y, permutations=20_000)
    assert p == pytest.approx(exact, abs=0.01)


def test_spearman_p_value_matches_asymptotic_for_large_n():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(300)
    y = 0.05 * x + rng.standard_normal(300)
    reference = stats.spearmanr(x, y).pvalue
    _, p = spearman_permutation(x, y, permutations=20_000)
    assert 0.01 < reference < 0.5 and p == pytest.approx(reference, abs=0.02)


def test_spearman_p_value_small_for_monotone_large_for_independent():
    x = np.arange(12.0)
    rho, p = spearman_permutation(x, x**3)
    assert rho == 1.0 and p < 1e-3
    rng = np.random.default_rng(4)
    _, p_null = spearman_permutation(rng.standard_normal(12), rng.standard_normal(12))
    assert p_null > 0.1


def test_spearman_deterministic_for_a_seed_and_p_on_the_grid():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(10), rng.standard_normal(10)
    assert spearman_permutation(x, y, 999, seed=7) == spearman_permutation(x, y, 999, seed=7)
    _, p = spearman_permutation(x, y, 999, seed=7)
    assert (p * 1000) == pytest.approx(round(p * 1000)) and 0 < p <= 1


def test_spearman_batches_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(10), rng.standard_normal(10)
    whole = spearman_permutation(x, y, 1000, seed=1)
    monkeypatch.setattr("neurosel.crossdomain._fingerprint.PERMUTATION_BATCH_VALUES", 10 * 1000)
    assert spearman_permutation(x, y, 1000, seed=1) == whole


def test_spearman_errors():
    with pytest.raises(neurosel.InputError, match="2 pairs: Spearman's ρ needs at least 3"):
        spearman_permutation([1, 2], [3, 4])
    with pytest.raises(neurosel.InputError, match="x, y: 3 and 4 values"):
        spearman_permutation([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(neurosel.InputError, match="y: every value is the same"):
        spearman_permutation([1, 2, 3], [5, 5, 5])
    with pytest.raises(neurosel.InputError, match="permutations 0"):
        spearman_permutation([1, 2, 3], [1, 3, 2], permutations=0)
    with pytest.raises(neurosel.InputError, match="x: pass a 1-D sequence of finite numbers"):
        spearman_permutation([1, np.nan, 3], [1, 3, 2])


def test_transferability_pairs_and_correlation():
    fps = {"books": [10, 20, 70], "dvd": [15, 20, 65], "kitchen": [60, 30, 10], "elec": [50, 30, 20]}
    mapping = {name: np.array(v, float) for name, v in fps.items()}
    scores = {(s, t): 0.6 + 0.3 * similarity(mapping[s], mapping[t]) for s in fps for t in fps if s != t}
    result = transferability(fps, scores, permutations=2000)
    assert result["spearman"] == pytest.approx(1.0) and result["p_value"] < 0.01
    assert len(result["pairs"]) == 12 and result["measure"] == "cosine"
    assert result["pairs"][0] == {
        "source": "books",
        "target": "dvd",
        "similarity": pytest.approx(similarity(mapping["books"], mapping["dvd"])),
        "score": pytest.approx(scores[("books", "dvd")]),
    }
    json.dumps(result)
    as_object = Fingerprints(
        names=tuple(fps), layers=(0, 1, 2), k=100, percentages=np.array(list(fps.values()), float),
        counts=np.array(list(fps.values())),
    )  # fmt: skip
    assert transferability(as_object, scores, permutations=2000) == result


def _residual_partial(x, y, z) -> float:
    """Partial Spearman by its definition: correlate the ranks' residuals after regressing on z's."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    return float(np.corrcoef(*res)[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partial_spearman_matches_residual_correlation(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(12)
    x = z + rng.standard_normal(12)
    y = 0.5 * z + 0.4 * x + rng.standard_normal(12)
    rho, _ = partial_spearman(x, y, z, permutations=200)
    assert rho == pytest.approx(_residual_partial(x, y, z), abs=1e-12)


def test_partial_spearman_p_value_matches_exact_permutation_test():
    x = np.array([0.9, 0.4, 0.5, 0.7, 0.1, 0.8, 0.3])
    y = np.array([71.0, 60.0, 65.0, 61.0, 58.0, 69.0, 66.0])
    z = np.array([3.0, 1.0, 2.5, 2.0, 0.5, 1.5, 0.7])
    exact = stats.permutation_test(
        (y,), lambda b: _residual_partial(x, b, z), permutation_type="pairings"
    ).pvalue  # all 7! orders of y, with x and z held together
    _, p = partial_spearman(x, y, z, permutations=20_000)
    assert p == pytest.approx(exact, abs=0.01)


def test_domain_distance_is_the_rms_standardised_mean_shift():
    rng = np.random.default_rng(3)
    mean_s, std_s, mean_t = rng.standard_normal(50), rng.uniform(0.5, 2, 50), rng.standard_normal(50)
    std_s[7] = 0.0  # a constant neuron on the source is left out
    keep = np.arange(50) != 7
    expected = np.sqrt(np.mean(((mean_t - mean_s)[keep] / std_s[keep]) ** 2))
    assert domain_distance(mean_s, std_s, mean_t) == pytest.approx(expected, rel=1e-12)
    assert domain_distance(mean_s, std_s, mean_s) == 0.0


def test_transferability_control_separates_fingerprints_from_distance():
    """Transfer driven by a label-free distance alone: closeness predicts it, and the fingerprints'
    partial correlation, with the distance held fixed, is what is left."""
    fps = {"a": [10, 20, 70], "b": [15, 20, 65], "c": [60, 30, 10], "d": [50, 30, 20]}
    rng = np.random.default_rng(0)
    distances = {(s, t): float(rng.uniform(0.1, 2)) for s in fps for t in fps if s != t}
    exact = {pair: 0.9 - 0.1 * d for pair, d in distances.items()}
    control = transferability(fps, exact, permutations=2000, distances=distances)["control"]
    assert control["spearman_closeness"] == pytest.approx(1.0) and control["p_value_closeness"] < 0.01
    assert control["partial_spearman"] is None  # nothing is left of the scores once distance is known
    scores = {pair: value + 0.02 * rng.standard_normal() for pair, value in exact.items()}
    result = transferability(fps, scores, permutations=2000, distances=distances)
    control = result["control"]
    assert control["spearman_closeness"] > 0.8 and control["p_value_closeness"] < 0.01
    sims = [p["similarity"] for p in result["pairs"]]
    values = [p["score"] for p in result["pairs"]]
    closeness = [-p["distance"] for p in result["pairs"]]
    assert control["partial_spearman"] == pytest.approx(_residual_partial(sims, values, closeness), abs=1e-9)
    json.dumps(result)
    with pytest.raises(neurosel.InputError, match="no distance for the pairs"):
        transferability(fps, scores, distances={("a", "b"): 1.0})


def test_transferability_errors():
    fps = {"a": [10, 90], "b": [50, 50], "c": [90, 10]}
    with pytest.raises(neurosel.InputError, match="no fingerprint for 'z'"):
        transferability(fps, {("a", "z"): 0.8})
    with pytest.raises(neurosel.InputError, match="in-domain score"):
        transferability(fps, {("a", "a"): 0.9})
    with pytest.raises(neurosel.InputError, match="2 pairs"):
        transferability(fps, {("a", "b"): 0.8, ("b", "c"): 0.7})


def _planted_store(path, layer, seed, layers=(0, 6, 12)):
    """400 rows × 3 layers × 16 units; units 2, 5, 9, 13 of `layer` (a position) carry the label."""
    return build_store(
        path, n=N, layers=LAYERS, hidden=HIDDEN, layer_ids=layers, seed=seed, unit_scale=(0.5, 2),
        planted=[layer * HIDDEN + unit for unit in (2, 5, 9, 13)], effect=[1.2, 1.0, 0.9, 0.8],
    )  # fmt: skip


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp")
    return [_planted_store(root / f"{name}.zarr", layer, seed) for name, layer, seed in [
        ("early", 0, 1), ("late", 2, 2), ("late2", 2, 3)
    ]]  # fmt: skip


def test_fingerprint_puts_mass_in_the_planted_layer(planted):
    result = fingerprint([planted[0], planted[1].path, planted[2]], k=K, n_lambdas=10, lambda_ratio=0.05)
    assert result.names == ("early", "late", "late2") and result.layers == (0, 6, 12)
    np.testing.assert_allclose(result.percentages, [[100, 0, 0], [0, 0, 100], [0, 0, 100]])
    np.testing.assert_array_equal(result.counts, [[K, 0, 0], [0, 0, K], [0, 0, K]])
    np.testing.assert_allclose(result.similarity(), [[1, 0, 0], [0, 1, 1], [0, 1, 1]], atol=1e-12)
    record = result.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert record["datasets"][1] == {"name": "late", "counts": [0, 0, K], "percentages": [0.0, 0.0, 100.0]}
    table = result.describe()
    assert "L0    L6   L12" in table and "similarity (cosine)" in table


def test_fingerprint_errors(planted, tmp_path):
    other = _planted_store(tmp_path / "other.zarr", 0, 4, layers=(1, 2, 3))
    with pytest.raises(neurosel.InputError, match=r"layers \[1, 2, 3\] differ"):
        fingerprint([planted[0], other], k=K)
    with pytest.raises(neurosel.InputError, match="not unique"):
        fingerprint(planted[:2], k=K, names=["x", "x"])
    with pytest.raises(neurosel.InputError, match=r"k 49: choose 1\.\.48"):
        fingerprint(planted[:1], k=49)
    with pytest.raises(neurosel.InputError, match="measure 'l2'"):
        fingerprint(planted[:1], k=K, measure="l2")


def test_cli_handler_prints_table_and_writes_json(planted, tmp_path, capsys):
    out = tmp_path / "fp.json"
    argv = ["fingerprint", planted[0].path, planted[1].path, "--k", str(K), "--measure", "jsd"]
    assert main([*argv, "--json", str(out)]) == 0
    assert "similarity (jsd)" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["measure"] == "jsd" and record["similarity"][0][1] == pytest.approx(0.0, abs=1e-12)


OPTIONS = {"n_lambdas": 10, "lambda_ratio": 0.05, "device": "cpu"}


def _saved_paths(store) -> list[str]:
    """The importance paths saved in a (local) store, by key."""
    return sorted(p.name for p in (Path(store.path) / "importance").iterdir() if p.is_dir())


def test_fingerprint_reads_back_a_saved_path_that_reached_k(tmp_path):
    store = _planted_store(tmp_path / "s.zarr", 0, 5)
    imp = neurosel.importance(store, target_support=8, **OPTIONS)  # e.g. a transfer's path, k ≤ 8
    written = Path(store.path) / "importance" / imp.meta["key"] / "zarr.json"
    before = (_saved_paths(store), written.stat().st_mtime_ns)
    result = fingerprint([store], k=K, **OPTIONS)
    assert (_saved_paths(store), written.stat().st_mtime_ns) == before  # no path solved, none rewritten
    (path,) = result.paths
    assert path.key == imp.meta["key"] and path.target_support == 8 and path.filled == 0
    np.testing.assert_array_equal(result.counts, [layer_counts(imp.ranking[:K], HIDDEN, LAYERS)[0]])
    explicit = fingerprint([store], k=K, target_support=8, **OPTIONS)  # what passing it always did
    np.testing.assert_array_equal(result.counts, explicit.counts)
    assert explicit.paths == result.paths and result.to_dict()["paths"] == [path.to_dict()]


def test_fingerprint_without_a_usable_saved_path_solves_the_default_one(tmp_path):
    store = _planted_store(tmp_path / "s.zarr", 0, 5)
    short = neurosel.importance(store, target_support=2, **OPTIONS)  # run for fewer than k neurons
    other = neurosel.importance(store, target_support=8, **{**OPTIONS, "n_lambdas": 12})  # another λ grid
    result = fingerprint([store], k=K, **OPTIONS)
    (path,) = result.paths
    assert path.target_support is None and path.key not in (short.meta["key"], other.meta["key"])
    assert len(_saved_paths(store)) == 3
    fresh = neurosel.importance(store, recompute=True, save=False, **OPTIONS)  # as before saved paths counted
    np.testing.assert_array_equal(result.counts, [layer_counts(fresh.ranking[:K], HIDDEN, LAYERS)[0]])
    assert path.entered == fresh.entered and path.separation_lambda is None


def _separable_store(path, seed):
    """60 rows whose classes one unit of layer 6 separates outright: a path stops after a neuron or two."""
    return build_store(
        path, n=60, layers=LAYERS, hidden=HIDDEN, layer_ids=(0, 6, 12), seed=seed, cycle=True,
        planted=[HIDDEN + 4], effect=4.0,
    )  # fmt: skip


def test_fingerprint_warns_for_every_store_naming_it_and_records_the_stop(tmp_path):
    a = _separable_store(tmp_path / "a.zarr", 1)
    with pytest.warns(neurosel.SupportWarning, match="examples are separated"):
        neurosel.importance(a, target_support=10, **OPTIONS)
    copy = neurosel.open_store(shutil.copytree(a.path, tmp_path / "copy.zarr"))  # its saved path comes along
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own rule: once per message and place
        result = fingerprint([a, copy], k=K, target_support=10, ranking="entry", **OPTIONS)
    messages = [str(w.message) for w in caught if issubclass(w.category, neurosel.SupportWarning)]
    assert [m.split(": ", 1)[0] for m in messages] == [f"store {a.path}", f"store {copy.path}"]
    for path, store, message in zip(result.paths, (a, copy), messages, strict=True):
        assert path.store == store.path and 0 < path.entered < K and path.filled == K - path.entered
        assert path.separation_lambda is not None and path.separation_lambda < path.lambda_max
        assert f"{path.filled} of the k = {K} selected are filled by closeness" in message
    record = json.loads(json.dumps(result.to_dict()))
    assert [p["filled"] for p in record["paths"]] == [K - result.paths[0].entered] * 2
    table = result.describe()
    assert f"path a: {result.paths[0].entered} neuron" in table and "examples are separated" in table


def test_saved_metas_lists_complete_paths_and_passes_over_damaged_ones(tmp_path):
    """What a store holds under importance/: each complete path's meta; an unreadable zarr.json and an
    unfinished write are passed over (importance() reports them if it needs that one)."""
    import zarr

    from neurosel.store import saved_metas

    store = _planted_store(tmp_path / "s.zarr", 0, 5)
    paths = [neurosel.importance(store, target_support=s, **OPTIONS) for s in (8, 2)]
    broken = Path(store.path) / "importance" / "broken"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    group = zarr.open_group(store.path, mode="r+", use_consolidated=False)["importance"]
    group.create_group("unfinished").attrs["meta"] = {"key": "unfinished"}
    keys = [meta["key"] for meta in saved_metas(store, "importance")]
    assert sorted(keys) == sorted(imp.meta["key"] for imp in paths)
    assert saved_metas(store, "stability") == []
