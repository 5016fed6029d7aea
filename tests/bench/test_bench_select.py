"""bench select on a tiny synthetic store: the report's fields, equal objectives with scikit-learn and
the installed peers (skglm, celer, glum: the bench extra), and the scaling grid."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from neurosel.bench.solvers import (
    PEERS,
    SYNTHETIC_MARGIN_STD,
    default_solvers,
    main,
    neuron_shape,
    path_indices,
    planted_model,
    synthetic_data,
)

RTOL = 1e-6
INSTALLED = [name for name in PEERS if importlib.util.find_spec(name) is not None]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-select")
    solvers = ["saga", "liblinear", *INSTALLED, "cuml"]  # the defaults, and celer and glum where installed
    argv = ["--quick", "--solvers", ",".join(solvers), "--out-dir", str(root / "results")]
    assert main([*argv, "--scratch-dir", str(root / "scratch")]) == 0
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
    skglm = {"path_vs_skglm"} if "skglm" in INSTALLED else set()
    assert set(report["targets"]) == {"path_vs_saga", "path_vs_liblinear"} | skglm
    cuml = report["solvers"]["cuml"]
    assert "path" in cuml or cuml["status"].startswith(("not installed", "unavailable"))
    assert report["correctness"]["passed"]
    assert report["parameters"]["threads"] == 0  # the defaults: what a user gets


def test_thread_study_times_one_thread_against_the_defaults(report):
    """Both settings timed idle and with one busy process, and their ratio reported (its value is
    the benchmark's finding, not asserted on a shared machine)."""
    study = report["thread_study"]
    assert study["status"] == "ran"
    for load in ("idle", "busy"):
        s = study[load]
        assert s["one_thread_seconds"] > 0 and s["default_seconds"] > 0
        assert s["default_vs_one_thread"] == pytest.approx(s["default_seconds"] / s["one_thread_seconds"])
        assert len(s["seconds_all"]["default"]) == len(s["seconds_all"]["one_thread"]) == study["repeats"]


def test_default_solvers_include_skglm_where_installed():
    assert ("skglm" in default_solvers()) == ("skglm" in INSTALLED)
    assert {"saga", "liblinear", "cuml"} <= set(default_solvers())
    assert set(default_solvers(grid=True)) == set(default_solvers()) - {"saga"}


@pytest.mark.parametrize("solver", ["saga", "liblinear", *PEERS])
@pytest.mark.parametrize("task", ["path", "single"])
def test_solver_reaches_the_engine_objective(report, solver, task):
    if solver in PEERS and solver not in INSTALLED:
        pytest.skip(f"{solver} is not installed (pip install -e .[bench])")
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


def test_neuron_counts_map_to_encoder_shapes():
    assert neuron_shape("2688") == (7, 384)
    assert neuron_shape("9984") == (13, 768)
    assert neuron_shape("4x100") == (4, 100)
    assert neuron_shape("1536") == (2, 768)
    assert neuron_shape("100") == (1, 100)


def test_grid_runs_every_cell_and_task(tmp_path, capsys):
    argv = ["--grid", "--grid-rows", "400", "--grid-neurons", "2x32,96", "--solvers", "liblinear"]
    argv += ["--threads", "1", "--target-support", "5", "--n-lambdas", "4", "--repeats", "1"]
    argv += ["--budget-s", "30"]
    assert main([*argv, "--out-dir", str(tmp_path / "results"), "--scratch-dir", str(tmp_path / "s")]) == 0
    (path,) = (tmp_path / "results").glob("select_grid_cpu_*.json")
    grid = json.loads(path.read_text(encoding="utf-8"))
    for cell in grid["cells"]:  # --threads 1 pins every pool for the whole run: no thread study then
        environment = cell["report"]["environment"]
        assert environment["numba_threads"] == 1 and all(p["num_threads"] == 1 for p in environment["blas"])
        assert cell["report"]["thread_study"]["status"].startswith("not run")
    assert [(c["rows"], c["neurons"]) for c in grid["cells"]] == [(400, 64), (400, 96)]
    for cell in grid["cells"]:
        assert set(cell["summary"]) == {"path", "support"}
        support = cell["report"]["engine"]["support"]
        assert support["reached_target"] and support["support_sizes"][-1] >= 5
        assert support["support_sizes"][-2] < 5  # stopped at the first λ that reached it
        peer = cell["summary"]["support"]["solvers"]["liblinear"]
        assert peer["status"] == "reached" and peer["engine_speedup"] > 0
        assert len(cell["report"]["solvers"]["liblinear"]["support"]["attempts"][-1]["objective"]) == len(
            support["lambdas"]
        )
    out = capsys.readouterr().out
    assert "engine s" in out and "(400 × 64" not in out and str(path) in out


def test_multinomial_benchmark_runs_and_certifies(tmp_path):
    """--classes 3 on a tiny store: the engine's group-L1 path timed and certified (no baseline)."""
    argv = ["--classes", "3", "--baseline", "none", "--synthetic-rows", "300", "--synthetic-layers", "2",
            "--synthetic-hidden", "16", "--n-lambdas", "4", "--repeats", "1",
            "--out-dir", str(tmp_path / "r"), "--scratch-dir", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    (path,) = (tmp_path / "r").glob("select_multinomial-k3_cpu_*.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["parameters"]["classes"] == 3 and report["parameters"]["features"] == 32
    assert report["engine"]["seconds"] > 0 and report["correctness"]["engine_certified"]
