"""neurosel bench stats / select --store: the benchmarks run on a user's own store, through the CLI's
registry (neurosel.bench.run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurosel
from neurosel import bench


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2, 16)).astype(np.float32)
    y = rng.integers(0, 2, 300)
    x[:, 1, :3] += (2 * y - 1)[:, None]
    path = tmp_path_factory.mktemp("bench-store") / "mine.zarr"
    neurosel.store_from_array(path, x, labels=y, dtype="float16")
    return path


def test_registry_names_a_module_with_main_for_every_benchmark():
    import importlib

    for name, entry in bench.BENCHMARKS.items():
        assert entry.description
        assert callable(importlib.import_module(f"neurosel.bench.{entry.module}").main), name
    with pytest.raises(KeyError):
        bench.run("nope", [])


def test_bench_stats_runs_on_a_users_store(store_path, tmp_path):
    argv = ["--store", str(store_path), "--device", "cpu", "--repeats", "1", "--out-dir", str(tmp_path)]
    assert bench.run("stats", argv) == 0
    (path,) = tmp_path.glob("stats_cpu_*.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["parameters"]["store"] == str(store_path) and not report["parameters"]["synthetic"]
    assert report["correctness"]["passed"] and report["environment"]["device"] == "cpu"


def test_bench_select_runs_on_a_users_store(store_path, tmp_path):
    argv = ["--store", str(store_path), "--solvers", "liblinear", "--n-lambdas", "4", "--repeats", "1"]
    argv += ["--budget-s", "30", "--out-dir", str(tmp_path / "r"), "--scratch-dir", str(tmp_path / "s")]
    assert bench.run("select", argv) == 0
    (path,) = (tmp_path / "r").glob("select_store-mine_cpu_*.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["parameters"]["store"] == str(store_path) and report["parameters"]["features"] == 32
    assert report["solvers"]["liblinear"]["path"]["status"] == "reached"
