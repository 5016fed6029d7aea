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
