"""The chunk passes on a Dask cluster (LocalCluster with two worker processes): statistics and the
importance path equal a single-process run; workers read the store themselves."""

from __future__ import annotations

import numpy as np
import pytest

import engine

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 700)
    x = rng.standard_normal((700, 3, 16)) * 2 + 5
    x[:, 2, :4] += 0.9 * y[:, None]
    return engine.store_from_array(tmp_path_factory.mktemp("s") / "s.zarr", x, labels=y, chunk_rows=16)


def test_statistics_on_the_cluster_equal_one_process(client, store):
    here = engine.neuron_stats(store, progress=False, save=False, recompute=True)
    there = engine.neuron_stats(store, progress=False, save=False, recompute=True, client=client)
    assert there.meta["device"].startswith("dask")
    for name, values in here.arrays().items():
        np.testing.assert_allclose(getattr(there, name), values, rtol=1e-10, atol=1e-10, err_msg=name)


def test_importance_on_the_cluster_equals_one_process(client, store):
    here = engine.importance(store, n_lambdas=8, recompute=True, save=False, in_core_bytes=0)  # streamed
    there = engine.importance(store, n_lambdas=8, recompute=True, save=False, client=client)
    assert there.meta["design"] == "dask"
    np.testing.assert_array_equal(there.ranking[:12], here.ranking[:12])
    np.testing.assert_allclose(there.objective, here.objective, rtol=1e-6)
    assert there.converged.all()


def test_command_line_workers_option(store, capsys):
    from engine.cli import main

    assert main(["-q", "stats", store.path, "--workers", "2", "--recompute", "--device", "cpu"]) == 0
    assert "dask" in capsys.readouterr().out
    assert main(["-q", "stats", store.path, "--scheduler", "tcp://127.0.0.1:1", "--recompute"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_transfer_and_fingerprint_take_the_client(client, store, tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    x = rng.standard_normal((300, 3, 16)) * 2 + 5.3
    x[:, 2, :4] += 0.9 * y[:, None]
    target = engine.store_from_array(tmp_path / "t.zarr", x, labels=y, chunk_rows=16)
    here = engine.transfer([store], target, k=4, ks=[4], seeds=1, sklearn_baseline=False)
    there = engine.transfer(
        [store], target, k=4, ks=[4], seeds=1, sklearn_baseline=False, client=client,
        importance_options={"recompute": True, "save": False},  # the path solved again, on the cluster
    )  # fmt: skip
    np.testing.assert_array_equal(there.selected, here.selected)
    assert there.score("selected") == here.score("selected")
    fps = engine.fingerprint([store, target], k=4, client=client, recompute=True, save=False)
    assert fps.percentages.shape == (2, 3)
