"""Multi-source transfer (docs/method.md, section 3): the ranking, the held-out-source scores that
choose k, and every neuron as a candidate, each checked against a reference written out with numpy,
scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

import neurosel
from neurosel.crossdomain._classifier import fit
from neurosel.crossdomain._domains import load_activations
from neurosel.crossdomain._multisource import EVERY, choose_k, held_out_scores, scenario_ranking
from tests.conftest import build_store

N, LAYERS, HIDDEN = 300, 2, 16
P = LAYERS * HIDDEN
SHARED = [3, 20]  # carry the label in every domain


def domain(path, seed, planted, effect, offset=0.0):
    return build_store(
        path, n=N, layers=LAYERS, hidden=HIDDEN, seed=seed, labels_first=True, offset=offset,
        planted=planted, effect=effect,
    )  # fmt: skip


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three sources sharing SHARED, each with distractors of its own, and a shifted target."""
    root = tmp_path_factory.mktemp("multisource")
    rng = np.random.default_rng(4)
    others = np.setdiff1d(np.arange(P), SHARED)
    stores = []
    for i, name in enumerate("abct"):
        own = sorted(rng.choice(others, 4, replace=False).tolist())
        stores.append(
            domain(root / f"{name}.zarr", 10 + i, [*SHARED, *own], [0.9, 0.7, *[0.4] * 4], offset=i * 0.5)
        )
    return stores


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """The label spread thinly over every neuron: no handful of neurons transfers as well as all."""
    root = tmp_path_factory.mktemp("dense")
    return [domain(root / f"{n}.zarr", 30 + i, list(range(P)), 0.12) for i, n in enumerate("abt")]


def fisher_order(store):
    fisher = np.nan_to_num(
        neurosel.neuron_stats(store, by="label", auroc=False, progress=False).fisher.ravel()
    )
    return np.lexsort((np.arange(fisher.size), -rankdata(fisher)))


def moments(store):
    x = store.read().reshape(store.n, -1).astype(np.float64)
    return x, x.mean(0), x.std(0, ddof=1)


def reference_fit(z, y):
    """The transfer's classifier, written out with scikit-learn (docs/api.md)."""
    return LogisticRegressionCV(
        Cs=np.logspace(-4, 2, 7), cv=StratifiedKFold(3, shuffle=True, random_state=0), l1_ratios=(0.0,),
        scoring="accuracy", max_iter=2000, use_legacy_attributes=False,
    ).fit(z, y)  # fmt: skip


def scenarios_of(values: dict[str, list[float]]) -> dict:
    """`held_out_scores`' shape from each candidate's scores on two scenarios × two normalisations."""
    pairs = [{"by_k": {"source": {}, "target": {}}} for _ in range(2)]
    for c, four in values.items():
        for n, value in enumerate(four):
            pairs[n // 2]["by_k"][("source", "target")[n % 2]][c] = value
    return {"pairs": pairs, "by_k": {c: float(np.mean(v)) for c, v in values.items()}}


def test_choose_k_keeps_the_best_k_only_when_it_beats_every_neuron_by_more_than_one_standard_error():
    steady = scenarios_of({"10": [0.80] * 4, "30": [0.83, 0.84, 0.83, 0.84], EVERY: [0.80, 0.81, 0.80, 0.81]})
    assert choose_k(steady, 500) == 30  # ahead by 0.03 on every scenario: far beyond its noise
    noisy = scenarios_of({"10": [0.70] * 4, "30": [0.90, 0.76, 0.86, 0.76], EVERY: [0.80] * 4})
    diff = np.array([0.10, -0.04, 0.06, -0.04])
    assert diff.mean() < diff.std(ddof=1) / 2  # ahead on the mean, within one standard error
    assert choose_k(noisy, 500) == 500
    assert choose_k(noisy, 500, every=False) == 30  # every neuron not offered: the best k
    ties = scenarios_of({"10": [0.85, 0.86, 0.85, 0.86], "30": [0.85, 0.86, 0.85, 0.86], EVERY: [0.80] * 4})
    assert choose_k(ties, 500) == 10  # ties to the smaller k


def test_held_out_scores_judge_each_sources_own_fisher_top_k_and_every_neuron(three):
    """Each scenario Si → Sj: a classifier on Si's own Fisher top k (or every neuron), Si standardised
    with its statistics, scored on Sj standardised with Si's statistics and with its own; the
    candidate's score is the mean over scenarios and both."""
    srcs = [load_activations(s) for s in three[:3]]
    ks = [2, 6]
    own = [fisher_order(s) for s in three[:3]]
    dense = [fit((d.x - d.mean) / d.std, d.y, d.kind) for d in srcs]
    got = held_out_scores(srcs, own, dense, ks, seed=0)
    data = [moments(s) for s in three[:3]]
    expected = {}
    for c in [*map(str, ks), EVERY]:
        scores = []
        for i, (xi, mi, si) in enumerate(data):
            cols = np.arange(P) if c == EVERY else own[i][: int(c)]
            model = reference_fit((xi[:, cols] - mi[cols]) / si[cols], three[i].labels)
            for j, (xj, mj, sj) in enumerate(data):
                if j != i:
                    for mean, std in ((mi, si), (mj, sj)):
                        pred = model.predict((xj[:, cols] - mean[cols]) / std[cols])
                        scores.append(np.mean(pred == three[j].labels))
        expected[c] = float(np.mean(scores))
    assert got["by_k"].keys() == expected.keys()
    for c, value in expected.items():
        assert got["by_k"][c] == pytest.approx(value, abs=1e-9), c
    assert len(got["pairs"]) == 6 and set(got["pairs"][0]["by_k"]) == {"source", "target"}


def test_ranking_is_the_mean_rank_of_transfer_importance_over_ordered_pairs(three):
    """Each neuron's mean signed contribution to the correct margin on Sj of a scikit-learn
    classifier on all of Si, ranked (normalised) per ordered pair; neurons by their mean rank."""
    srcs = [load_activations(s) for s in three[:3]]
    ranking, _ = scenario_ranking(srcs, [2], seed=0)
    data = [moments(s) for s in three[:3]]
    coefs = [
        reference_fit((x - m) / s, st.labels).coef_[0] for (x, m, s), st in zip(data, three, strict=False)
    ]
    importance = []
    for i, (_, mi, si) in enumerate(data):
        for j, (xj, _, _) in enumerate(data):
            if j != i:
                sign = np.where(three[j].labels == 1, 1.0, -1.0)
                c = (sign @ ((xj - mi) / si)) / N * coefs[i]
                importance.append(rankdata(c) / P)
    expected = np.lexsort((np.arange(P), -np.mean(importance, axis=0)))
    np.testing.assert_array_equal(ranking, expected)
    assert set(ranking[:2]) == set(SHARED)


def test_a_transfer_keeps_a_selection_that_beats_every_neuron_on_the_held_out_sources(three):
    a, b, c, t = three
    res = neurosel.transfer([a, b, c], t, k=2, ks=[2, 6], seeds=2)
    scenarios = res.meta["scenarios"]
    k = str(res.meta["k_chosen"])
    assert k == max(("2", "6"), key=lambda c: (scenarios["by_k"][c], -int(c)))
    diff = [s[k] - s[EVERY] for pair in scenarios["pairs"] for s in pair["by_k"].values()]
    assert np.mean(diff) > np.std(diff, ddof=1) / np.sqrt(len(diff)) and len(diff) == 12
    assert res.meta["k_choice"].startswith("the best held-out-source score")
    assert set(res.selected) == set(SHARED)


def test_every_neuron_is_chosen_when_no_k_beats_it_on_the_held_out_sources_and_meta_says_so(dense):
    a, b, t = dense
    res = neurosel.transfer([a, b], t, k=2, ks=[1, 2], seeds=2)
    by_k = res.meta["scenarios"]["by_k"]
    assert by_k[EVERY] > max(by_k["1"], by_k["2"])
    assert res.meta["k_chosen"] == res.k == P and res.meta["k_choice"].startswith("every neuron")
    np.testing.assert_array_equal(res.selected, np.arange(P))
    for row in res.rows:  # every method's top P is every neuron: the classifier on every neuron
        scores = row["scores"]
        assert scores["selected"] == scores["stats_topk"] == scores["random"]["mean"] == scores["all"]
        assert set(row["by_k"]["selected"]) == {"1", "2", str(P)}
    kept = neurosel.transfer([a, b], t, k=2, ks=[1, 2], seeds=2, choose_k=False)
    assert kept.meta["k_chosen"] == 2 and kept.meta["k_choice"] == "given (choose_k=False)"
    for mine, theirs in zip(res.rows, kept.rows, strict=True):  # the curve is the ranking's, as before
        assert mine["by_k"]["selected"]["2"] == theirs["scores"]["selected"]
        assert mine["scores"]["all"] == theirs["scores"]["all"]
