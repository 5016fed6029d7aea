"""bench rankings: every rule scored on every ordered pair, and the leave-one-domain-out choice."""

from __future__ import annotations

import json

import numpy as np

import engine
from bench import rankings


def test_rankings_bench_scores_every_rule_and_chooses_without_the_held_out_domain(tmp_path):
    rng = np.random.default_rng(0)
    stores = tmp_path / "stores"
    for i, name in enumerate(("a", "b", "c")):
        y = rng.integers(0, 2, 160)
        x = rng.standard_normal((160, 2, 8)) + 0.3 * i
        x[:, 1, :2] += 1.5 * (2 * y[:, None] - 1)
        engine.store_from_array(stores / f"{name}.zarr", x, labels=y, chunk_rows=64)
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
    rules = [r for r in engine.crossdomain.RANKINGS if r != "auto"]  # "auto" is one of the others
    for rule in (*rules, "elastic net 0.3", "shift-aware entry", "random"):
        assert set(table[rule]) == {"2", "4"} and all(0 <= v <= 1 for v in table[rule].values())
    assert table["stability+fisher"]["2"] > table["random"]["2"]  # the planted pair of neurons
    assert report["choice"]["k"] == 4
    choice = report["choice"]["source"]
    assert set(choice) == {"a", "b", "c"} and all(c["rule"] in table for c in choice.values())
