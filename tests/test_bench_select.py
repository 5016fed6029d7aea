"""bench/select.py on a tiny synthetic store: the report's fields, and equal objectives with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.select import SYNTHETIC_MARGIN_STD, main, path_indices, planted_model, synthetic_data

RTOL = 1e-6


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-select")
    argv = ["--quick", "--out-dir", str(root / "results"), "--scratch-dir", str(root / "scratch")]
    assert main(argv) == 0
    (path,) = (root / "results").glob("select_synthetic_cpu_*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_report_has_every_section(report):
    sections = {"environment", "parameters", "engine", "solvers", "ratios", "targets", "correctness"}
    assert sections <= set(report)
    p = report["parameters"]
    assert (p["examples"], p["features"], p["n_lambdas"], p["dtype"]) == (2000, 256, 5, "float16")
    for task in ("path", "single"):
        r = report["engine"][task]
        assert r["seconds"] > 0 and r["passes"] > 0 and r["converged"]
        assert r["certified"] == len(r["gaps"]) == len(r["objective"]) == len(r["support_sizes"])
    assert report["engine"]["path"]["support_sizes"][0] == 0
    assert report["engine"]["single"]["lambda_matches_path"]
    assert set(report["targets"]) == {"path_vs_saga", "path_vs_liblinear"}
    cuml = report["solvers"]["cuml"]
    assert "path" in cuml or cuml["status"].startswith(("not installed", "unavailable"))
    assert report["correctness"]["passed"]


@pytest.mark.parametrize("solver", ["saga", "liblinear"])
@pytest.mark.parametrize("task", ["path", "single"])
def test_sklearn_reaches_the_engine_objective(report, solver, task):
    r = report["solvers"][solver][task]
    assert r["status"] == "reached" and r["max_rel_diff"] <= RTOL
    reached = next(a for a in r["attempts"] if a["reached"])
    engine = np.array(report["engine"][task]["objective"])[r.get("lambda_indices", [-1])]
    np.testing.assert_allclose(reached["objective"], engine, rtol=RTOL)
    assert reached["support_sizes"][-1] == report["engine"][task]["support_sizes"][-1]
    ratio = report["ratios"][f"{task}_vs_{solver}"]
    assert ratio["reached"]
    assert ratio["value"] == pytest.approx(r["seconds"] / report["engine"][task]["seconds"])


def test_synthetic_data_is_seeded_and_follows_the_planted_model():
    model = planted_model(64, 8)
    x, y = synthetic_data(3000, model)
    again, y_again = synthetic_data(3000, model)
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, y_again)
    z = (x.astype(np.float64) - model.offset) / model.scale
    np.testing.assert_allclose(z.std(0), 1.0, atol=0.06)
    assert np.abs(np.corrcoef(z.T)[np.triu_indices(64, 1)]).mean() > 0.05  # shared factors
    margin = z[:, model.planted] @ model.weights
    assert margin.std() == pytest.approx(SYNTHETIC_MARGIN_STD, rel=0.1)
    assert 0.4 < y.mean() < 0.6


def test_path_indices_keep_the_last_lambda():
    assert path_indices(20, 1) == list(range(20))
    assert path_indices(20, 5) == [4, 9, 14, 19]
    assert path_indices(5, 10) == [4]
