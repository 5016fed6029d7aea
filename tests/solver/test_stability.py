"""Stability selection: half-subsamples, selection frequencies against scikit-learn's supports on the
same halves, planted neurons first, and the transfer ranking rules built on it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import neurosel
from neurosel.crossdomain import AUTO_RANKING, DEFAULT_RANKING, ELASTIC_L1_RATIO, RANKINGS
from neurosel.crossdomain._rankings import mean_rank
from neurosel.solver import L1, Logistic, half_subsamples, layer_counts, stability_selection
from tests.conftest import build_store, planted_arrays

N, P = 240, 12


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, P)).astype(np.float32)
    margin = 1.5 * x[:, 0] - 1.2 * x[:, 1] + 0.3 * x[:, 2]
    y = (rng.random(N) < 1 / (1 + np.exp(-margin))).astype(int)
    return x, y


def test_half_subsamples_are_stratified_seeded_halves():
    labels = np.array([0] * 30 + [1] * 11 + [2] * 7)
    halves = half_subsamples(labels, 5, seed=3, stratify=True)
    assert len(halves) == 5
    for ids in halves:
        assert np.all(np.diff(ids) > 0)  # sorted, no repeats
        assert [int(np.sum(labels[ids] == c)) for c in (0, 1, 2)] == [15, 5, 3]
    again = half_subsamples(labels, 5, seed=3, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip(halves, again, strict=True))
    assert not np.array_equal(halves[0], half_subsamples(labels, 1, seed=4, stratify=True)[0])
    assert all(ids.size == 24 for ids in half_subsamples(labels, 3, seed=0, stratify=False))


def test_frequencies_equal_the_supports_scikit_learn_finds_on_the_same_halves(planted):
    x, y = planted
    lambdas = np.geomspace(0.2, 0.01, 6)
    subsamples = 4
    stable = stability_selection(
        lambda ids: x[ids], y, Logistic(), L1(), lambdas, np.arange(P), subsamples=subsamples, seed=1,
        tol=1e-10,
    )  # fmt: skip
    counts = np.zeros((lambdas.size, P))
    for ids in half_subsamples(y, subsamples, seed=1, stratify=True):
        xs = x[ids].astype(np.float64)
        z = (xs - xs.mean(0)) / xs.std(0, ddof=1)
        for i, lam in enumerate(lambdas):
            ref = LogisticRegression(
                l1_ratio=1.0, solver="saga", C=1 / (lam * ids.size), tol=1e-12, max_iter=100_000
            ).fit(z, y[ids])
            counts[i] += np.abs(ref.coef_[0]) > 1e-6
    np.testing.assert_array_equal(stable.frequency, (counts / subsamples).max(0))
    assert stable.subsamples == subsamples and np.all(np.isin(stable.frequency * subsamples, np.arange(5)))


def test_planted_neurons_are_always_selected_and_rank_first(planted):
    x, y = planted
    stable = stability_selection(
        lambda ids: x[ids], y, Logistic(), L1(), np.geomspace(0.2, 0.05, 8), np.arange(P)
    )
    assert stable.frequency[0] == stable.frequency[1] == 1.0
    assert set(stable.ranking[:2]) == {0, 1}
    assert np.median(stable.frequency[3:]) < 0.5


def test_ties_follow_the_given_ranking():
    x = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)  # λ selects nothing
    y = np.arange(40) % 2
    order = np.array([3, 1, 4, 0, 2])
    stable = stability_selection(
        lambda ids: x[ids], y, Logistic(), L1(), np.array([1e3]), order, subsamples=2
    )
    assert not stable.frequency.any()
    np.testing.assert_array_equal(stable.ranking, order)


def test_mean_rank_averages_positions_ties_by_id():
    a, b = np.array([0, 1, 2, 3]), np.array([3, 2, 1, 0])
    np.testing.assert_array_equal(mean_rank(a, b), [0, 1, 2, 3])  # every mean position is 1.5
    np.testing.assert_array_equal(mean_rank(np.array([2, 0, 1]), np.array([2, 1, 0])), [2, 0, 1])


def test_transfer_ranking_rules_select_the_planted_neurons_and_are_recorded(tmp_path):
    rng = np.random.default_rng(2)

    def domain(name: str, shift: float):  # drawn from the one `rng`: units 0-2 of layer 1 move ±1.3
        return build_store(
            tmp_path / f"{name}.zarr", n=300, layers=2, hidden=16, seed=rng, labels_first=True, shift=shift,
            planted=[16, 17, 18], effect=1.3, dtype="float16", chunk_rows=64,
        )  # fmt: skip

    source, target = domain("s", 0.0), domain("t", 0.4)
    selected = {}
    for rule in RANKINGS:
        result = neurosel.transfer(
            [source], target, k=3, ks=[3], seeds=1, sklearn_baseline=False, ranking=rule
        )
        resolved = AUTO_RANKING["class"] if rule == "auto" else rule
        assert result.meta["ranking"] == result.paths[0].ranking == resolved
        selected[rule] = set(result.selected.tolist())
        assert selected[rule] == {16, 17, 18}, rule
    assert RANKINGS[0] == DEFAULT_RANKING == "auto"
    with pytest.raises(neurosel.InputError, match="ranking 'best'"):
        neurosel.transfer([source], target, k=3, ranking="best")


def test_fingerprints_rank_as_the_transfer_does_and_read_its_frequencies_back(tmp_path):
    x, y = planted_arrays(  # units 0-4 of layer 2 move ±0.8 with the class
        n=300, layers=3, hidden=16, seed=5, labels_first=True, planted=range(32, 37), effect=0.8
    )
    source = neurosel.store_from_array(tmp_path / "s.zarr", x, labels=y, chunk_rows=64)
    target = neurosel.store_from_array(tmp_path / "t.zarr", x[::-1] + 0.2, labels=y[::-1], chunk_rows=64)
    result = neurosel.transfer([source], target, k=8, ks=[8, 20], seeds=1, sklearn_baseline=False)
    saved = sorted((tmp_path / "s.zarr" / "stability").iterdir())
    stamp = [p.stat().st_mtime_ns for p in saved]
    fps = neurosel.fingerprint([source], k=8, target_support=20)
    counts, _ = layer_counts(result.selected, 16, 3)
    np.testing.assert_array_equal(fps.counts[0], counts)
    assert fps.paths[0].ranking == AUTO_RANKING["class"]
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "s.zarr" / "stability").iterdir())] == stamp
    assert neurosel.verify(source).ok


def test_numeric_scores_rank_by_entry_into_the_elastic_net_path_by_default(tmp_path):
    """ "auto" on numeric labels is the elastic-net rule: the transfer selects the top k of
    neurosel.importance's own lasso path with l1_ratio ELASTIC_L1_RATIO, and fingerprints read that
    saved path back and rank the same way."""
    rng = np.random.default_rng(8)

    def domain(name: str, seed: int):
        r = np.random.default_rng(seed)
        x = r.standard_normal((300, 2, 16))
        x[:, 1, 1:4] += 0.7 * x[:, 1, :1]  # correlated with the planted neuron: they enter together
        score = 1.2 * x[:, 1, 0] + 0.8 * x[:, 0, 5] - 0.5 * x[:, 1, 9] + 0.4 * r.standard_normal(300)
        return neurosel.store_from_array(tmp_path / f"{name}.zarr", x, labels=score, dtype="float32")

    source, target = domain("s", int(rng.integers(1 << 30))), domain("t", int(rng.integers(1 << 30)))
    result = neurosel.transfer([source], target, k=6, ks=[6, 12], seeds=1, sklearn_baseline=False)
    reference = neurosel.importance(source, "lasso", l1_ratio=ELASTIC_L1_RATIO, target_support=12)
    assert result.meta["ranking"] == result.paths[0].ranking == AUTO_RANKING["numeric"] == "elastic-net"
    assert result.paths[0].key == reference.meta["key"]
    np.testing.assert_array_equal(result.selected, reference.ranking[:6])
    lasso = neurosel.importance(source, "lasso", target_support=12)
    assert lasso.meta["key"] != reference.meta["key"]  # a path of its own, not the lasso's
    fps = neurosel.fingerprint([source], k=6, method="lasso", target_support=12)
    assert fps.paths[0].ranking == "elastic-net" and fps.paths[0].key == reference.meta["key"]
    counts, _ = layer_counts(reference.ranking[:6], 16, 2)
    np.testing.assert_array_equal(fps.counts[0], counts)
    explicit = neurosel.transfer(
        [source], target, k=6, ks=[6, 12], seeds=1, sklearn_baseline=False, ranking="entry"
    )
    np.testing.assert_array_equal(explicit.selected, lasso.ranking[:6])
