"""bench widths on tiny stores (seconds): the report's fields, sane values (the planted neurons show
the signal in the statistics and lead the path, times and rates positive) and the registry entry.
No timing thresholds: speed lives in docs/benchmarks.md."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurosel import bench
from neurosel.bench.widths import PATH_TASKS, STATS_METHODS, main, planted_ids, synthetic_data

PLANTED = 4
TINY = [
    "--rows", "400", "--hidden-shape", "3x64", "--ffn-shape", "2x384", "--planted", str(PLANTED),
    "--shift", "1.0", "--repeats", "1", "--importance-repeats", "1", "--n-lambdas", "6",
    "--support-lambdas", "12", "--target-support", "8", "--device", "cpu", "--no-keep",
]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-widths")
    argv = [*TINY, "--out-dir", str(root / "results"), "--scratch-dir", str(root / "scratch")]
    assert bench.run("widths", argv) == 0
    assert not any((root / "scratch").glob("*.zarr"))  # --no-keep removed the stores
    (path,) = (root / "results").glob("widths_cpu_*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_registry_lists_widths():
    entry = bench.BENCHMARKS["widths"]
    assert entry.module == "widths" and "36,864" in entry.description and main is not None


def test_report_has_every_section(report):
    assert {"environment", "parameters", "compile", "results", "ratios", "signal", "passed"} <= set(report)
    env = report["environment"]
    assert env["cpu_count"] >= 1 and env["numba_threads"] >= 1 and env["device"] == "cpu"
    p = report["parameters"]
    assert p["rows"] == 400 and p["planted"] == PLANTED and p["dtype"] == "float16"
    assert p["importance"]["n_lambdas"] == 6 and p["importance"]["support_task"]["target_support"] == 8
    assert p["stores"]["hidden"]["shape"] == [400, 3, 64] and p["stores"]["ffn"]["shape"] == [400, 2, 384]
    assert p["stores"]["hidden"]["layers"] == [0, 1, 2] and p["stores"]["ffn"]["layers"] == [1, 2]


def test_results_are_positive_and_consistent(report):
    for name, neurons in (("hidden", 192), ("ffn", 768)):
        r = report["results"][name]
        assert r["neurons"] == neurons and r["activation_bytes"] == 400 * neurons * 2
        for method in (*STATS_METHODS, *PATH_TASKS):
            assert r[method]["median_seconds"] > 0 and r[method]["gb_per_s"] > 0, (name, method)
            assert len(r[method]["seconds"]) == 1
        for method in ("stats", "stats-noauc"):
            s = r[method]
            assert s["floor_seconds"] == r["read"]["median_seconds"]
            assert s["vs_floor"] == pytest.approx(s["floor_seconds"] / s["median_seconds"])
            assert s["passes_per_s"] == pytest.approx(1 / s["median_seconds"])
        assert r["stats"]["auroc_bits"] is not None and r["stats-noauc"]["auroc_bits"] is None
        for task in PATH_TASKS:
            t = r[task]
            assert t["converged"] and t["total_passes"] > 0 and t["design"].startswith("in-core")
            assert t["support_sizes"][0] == 0 and t["load_seconds"] >= 0 and t["solve_seconds"] > 0
        assert r["support"]["support_sizes"][-1] >= 8


def test_ratios_are_ffn_over_hidden(report):
    r, res = report["ratios"], report["results"]
    assert r["neurons"] == pytest.approx(4.0) and r["activation_bytes"] == pytest.approx(4.0)
    for method in (*STATS_METHODS, *PATH_TASKS):
        key = method.replace("-", "_")
        want = res["ffn"][method]["median_seconds"] / res["hidden"][method]["median_seconds"]
        assert r[f"{key}_time"] == pytest.approx(want)
        assert r[f"{key}_time_per_neuron"] == pytest.approx(want / 4.0)


def test_planted_neurons_show_the_signal(report):
    assert report["passed"]
    for name, c in report["signal"].items():
        assert len(c["planted"]) == PLANTED, name
        assert c["auroc_separates"] and c["planted_auroc_min_distance"] > c["noise_auroc_max_distance"]
        assert c["planted_abs_t_min"] > c["noise_abs_t_max"]
        assert c["path_recall_at_planted"] >= 0.5 and c["path_converged"]


def test_synthetic_data_shares_labels_and_plants_the_shift():
    x_narrow, y_narrow = synthetic_data(2000, 2, 16, 4, 1.0)
    x_wide, y_wide = synthetic_data(2000, 3, 64, 4, 1.0)
    assert x_narrow.dtype == np.float16 and x_wide.shape == (2000, 3, 64)
    np.testing.assert_array_equal(y_narrow, y_wide)  # the same labels at every width
    assert y_wide.sum() == 1000  # balanced
    flat = x_wide.reshape(2000, -1).astype(np.float64)
    ids = planted_ids(flat.shape[1], 4)
    assert ids.tolist() == [0, 64, 127, 191]
    sd = flat.std(0)
    gap = (flat[y_wide == 1].mean(0) - flat[y_wide == 0].mean(0)) / sd
    noise = np.delete(np.abs(gap), ids)
    assert np.abs(gap[ids]).min() > 0.3 > noise.max()  # shift 1 SD of noise, scaled: well above noise
