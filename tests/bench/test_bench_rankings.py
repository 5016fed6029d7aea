"""bench rankings: every rule scored on every ordered pair, and the leave-one-domain-out choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ttest_1samp

import neurosel
from neurosel.bench import rankings

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


def test_rankings_bench_scores_every_rule_and_chooses_without_the_held_out_domain(tmp_path):
    rng = np.random.default_rng(0)
    stores = tmp_path / "stores"
    for i, name in enumerate(("a", "b", "c")):
        y = rng.integers(0, 2, 160)
        x = rng.standard_normal((160, 2, 8)) + 0.3 * i
        x[:, 1, :2] += 1.5 * (2 * y[:, None] - 1)
        neurosel.store_from_array(stores / f"{name}.zarr", x, labels=y, chunk_rows=64)
    out = tmp_path / "results"
    assert (
        rankings.main(
            [str(stores), "--domains", "a,b,c", "--ks", "2,4", "--name", "t", "--out-dir", str(out)]
        )
        == 0
    )
    (path,) = out.glob("rankings_t_cpu_*.json")
    report = json.loads(path.read_text())
    table = report["table"]["target"]
    rules = [r for r in neurosel.crossdomain.RANKINGS if r != "auto"]  # "auto" is one of the others
    for rule in (*rules, "elastic net 0.3", "shift-aware entry", "random"):
        assert set(table[rule]) == {"2", "4"} and all(0 <= v <= 1 for v in table[rule].values())
    assert table["stability+fisher"]["2"] > table["random"]["2"]  # the planted pair of neurons
    assert report["choice"]["k"] == 4
    choice = report["choice"]["source"]
    assert set(choice) == {"a", "b", "c"} and all(c["rule"] in table for c in choice.values())
    pairs = report["pairs"]["target"]
    listed = {(c["rule"], c["k"]): c for c in report["below_random"]["target"]}
    for rule in (r for r in pairs if r != "random"):  # against the pairs' own scores
        for k, by_pair in pairs[rule].items():
            diff = [v - pairs["random"][k][pair] for pair, v in by_pair.items()]
            assert ((rule, int(k)) in listed) == (np.mean(diff) < 0)
            if (cell := listed.get((rule, int(k)))) is not None:
                assert cell["mean"] == pytest.approx(np.mean(diff))
                assert cell["below"] == sum(d < 0 for d in diff)
                assert cell["p"] == pytest.approx(ttest_1samp(diff, 0.0).pvalue)
                assert cell["p"] <= cell["p_holm"] <= 1


def test_holm_adjustment_matches_its_definition():
    """Holm: the i-th smallest p times (m − i + 1), made non-decreasing, capped at 1."""
    p = [0.01, 0.04, 0.03, 0.5]
    np.testing.assert_allclose(rankings.holm(p), [0.04, 0.09, 0.09, 0.5])


def test_shift_aware_rules_are_fitted_for_each_target(tmp_path):
    """The shift-aware rankings depend on the target: each pair's score is that of a classifier on
    the source's Fisher ranking with the neurons most shifted towards *that* target moved last."""
    from neurosel.crossdomain._classifier import fit, score
    from neurosel.crossdomain._domains import load_activations, standardise
    from neurosel.crossdomain._rankings import stats_ranking

    rng = np.random.default_rng(1)
    stores = tmp_path / "stores"
    for name, shifted in (("a", []), ("b", [0, 1, 2]), ("c", [3, 4, 5])):
        y = rng.integers(0, 2, 200)
        x = rng.standard_normal((200, 2, 8))
        x[:, 1, :6] += 1.0 * (2 * y[:, None] - 1)  # six informative neurons, 8..13
        x[:, 1, shifted] += 3.0  # each target moves a different half of them
        neurosel.store_from_array(stores / f"{name}.zarr", x, labels=y, chunk_rows=64)
    report = rankings.run(stores, ["a", "b", "c"], (3,))
    got = report["pairs"]["source"]["shift-aware fisher"]["3"]
    src = load_activations(neurosel.open_store(stores / "a.zarr"), "a", "cpu")
    zs = standardise(src, src.mean, src.std)
    chosen = {}
    for t_name in ("b", "c"):
        tgt = load_activations(neurosel.open_store(stores / f"{t_name}.zarr"), t_name, "cpu")
        cols = rankings.demote_shifted(stats_ranking([src], "cpu"), rankings.shift(src, tgt))[:3]
        chosen[t_name] = set(cols.tolist())
        fitted = fit(zs[:, cols], src.y, src.kind)
        want = score(fitted, standardise(tgt, src.mean, src.std)[:, cols], tgt.y)["accuracy"]
        assert got[f"a->{t_name}"] == want
    assert chosen["b"] != chosen["c"]  # the two targets' demotions differ, so one shared fit could not match


def test_rules_option_and_k_by_source_cv(tmp_path):
    """--rules compares only the rules named (a path rule beside its unfilled order); the k each
    source's CV prefers is that of the best CV score, and its score is the pairs' at that k."""
    rng = np.random.default_rng(2)
    stores = tmp_path / "stores"
    for i, name in enumerate(("a", "b", "c")):
        y = rng.integers(0, 2, 120)
        x = rng.standard_normal((120, 2, 8)) + 0.2 * i
        x[:, 1, :3] += 1.2 * (2 * y[:, None] - 1)
        neurosel.store_from_array(stores / f"{name}.zarr", x, labels=y, chunk_rows=64)
    report = rankings.run(stores, ["a", "b", "c"], (2, 6), ("entry", "fisher"))
    assert set(report["table"]["source"]) == {
        "entry",
        "entry, unfilled",
        "fisher",
        "random",
        "all",
        "random sd",
    }
    row = report["k_by_cv"]["entry"]
    for s, k in row["k"].items():
        pairs = report["pairs"]["target"]["entry"][str(k)]
        assert k in (2, 6) and all(f"{s}->{t}" in pairs for t in "abc" if t != s)
    want = np.mean(
        [
            report["pairs"]["target"]["entry"][str(row["k"][p[0]])][p]
            for p in ("a->b", "a->c", "b->a", "b->c", "c->a", "c->b")
        ]
    )
    assert row["target"]["k by source CV"] == pytest.approx(want)
    with pytest.raises(SystemExit):
        rankings.main([str(stores), "--domains", "a,b,c", "--rules", "auto"])
