"""The chunk passes on a Dask cluster (LocalCluster with two worker processes): statistics and the
importance path equal a single-process run; workers read the store themselves."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neurosel
from neurosel.crossdomain import headline
from tests.conftest import build_store, random_texts, store_bytes
from tests.stats_reference import RTOL16

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it

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
    return domain(tmp_path_factory.mktemp("s") / "s.zarr", n=700, seed=0, shift=5)


def domain(path, *, n: int, seed: int, shift: float):
    """Labels drawn first; values 2·N(0, 1) + `shift`; units 0-3 of layer 2 are +0.9 on class 1; float16."""
    return build_store(
        path, n=n, layers=3, hidden=16, seed=seed, labels_first=True, spread=2, shift=shift,
        planted=range(32, 36), effect=0.9, signed=False, dtype="float16", chunk_rows=16,
    )  # fmt: skip


def test_statistics_on_the_cluster_equal_one_process(client, store):
    here = neurosel.neuron_stats(store, progress=False, save=False, recompute=True)
    there = neurosel.neuron_stats(store, progress=False, save=False, recompute=True, client=client)
    assert there.meta["device"].startswith("dask")
    for name, values in here.arrays().items():  # other row blocks: other float32 group sums (RTOL16)
        np.testing.assert_allclose(getattr(there, name), values, rtol=RTOL16, atol=1e-10, err_msg=name)


def test_importance_on_the_cluster_equals_one_process(client, store):
    here = neurosel.importance(store, n_lambdas=8, recompute=True, save=False, in_core_bytes=0)  # streamed
    there = neurosel.importance(store, n_lambdas=8, recompute=True, save=False, client=client)
    assert there.meta["design"] == "dask"
    np.testing.assert_array_equal(there.ranking[:12], here.ranking[:12])
    np.testing.assert_allclose(there.objective, here.objective, rtol=1e-6)
    assert there.converged.all()


def test_command_line_workers_option(store, capsys):
    from neurosel.cli import main

    assert main(["-q", "stats", store.path, "--workers", "2", "--recompute", "--device", "cpu"]) == 0
    assert "dask" in capsys.readouterr().out
    assert main(["-q", "stats", store.path, "--scheduler", "tcp://127.0.0.1:1", "--recompute"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_transfer_and_fingerprint_take_the_client(client, store, tmp_path):
    target = domain(tmp_path / "t.zarr", n=300, seed=1, shift=5.3)
    here = neurosel.transfer([store], target, k=4, ks=[4], seeds=1, sklearn_baseline=False)
    there = neurosel.transfer(
        [store], target, k=4, ks=[4], seeds=1, sklearn_baseline=False, client=client,
        importance_options={"recompute": True, "save": False},  # the path solved again, on the cluster
    )  # fmt: skip
    np.testing.assert_array_equal(there.selected, here.selected)
    assert there.score("selected") == here.score("selected")
    fps = neurosel.fingerprint([store, target], k=4, client=client, recompute=True, save=False)
    assert fps.percentages.shape == (2, 3)


# Extraction: one task per window, the client commits in order; bytes as a single process on the CPU.
# Dask's worker processes run torch on one thread (its nanny sets OMP_NUM_THREADS=1), so the
# single-process reference does too.


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def committed(out: Path) -> int:
    try:
        return json.loads((out / "zarr.json").read_text())["attributes"]["neurosel"]["rows_committed"]
    except (OSError, ValueError, KeyError):
        return 0


EXTRACT = {"device": "cpu", "progress": False, "chunk_rows": 8, "token_budget": 512}


def test_extraction_on_the_cluster_is_byte_identical(client, tiny_model, tmp_path):
    texts, labels = random_texts(300, seed=5, max_words=30), [i % 3 for i in range(300)]
    with torch_threads(1):
        neurosel.extract(texts, str(tiny_model), tmp_path / "one.zarr", labels=labels, **EXTRACT)
    there = neurosel.extract(
        texts, str(tiny_model), tmp_path / "two.zarr", labels=labels, client=client, **EXTRACT
    )
    assert there.meta["complete"] and there.meta["rows_committed"] == 300
    assert store_bytes(tmp_path / "two.zarr") == store_bytes(tmp_path / "one.zarr")
    assert neurosel.verify(there).ok
    # a second run finds the store complete: nothing is submitted, nothing changes
    neurosel.extract(texts, str(tiny_model), tmp_path / "two.zarr", labels=labels, client=client, **EXTRACT)
    assert store_bytes(tmp_path / "two.zarr") == store_bytes(tmp_path / "one.zarr")


def test_several_sites_on_the_cluster_are_byte_identical(client, tiny_model, tmp_path):
    """hidden and FFN units from one forward per window on the workers: each site's store has the
    bytes of the single-process run of the same sites."""
    texts = random_texts(120, seed=6, max_words=30)
    sites = {"sites": ("hidden", "ffn"), **EXTRACT}
    with torch_threads(1):
        neurosel.extract(texts, str(tiny_model), str(tmp_path / "one-{site}.zarr"), **sites)
    there = neurosel.extract(
        texts, str(tiny_model), str(tmp_path / "two-{site}.zarr"), client=client, **sites
    )
    for site in ("hidden", "ffn"):
        assert there[site].meta["complete"] and there[site].meta["site"] == site
        assert store_bytes(tmp_path / f"two-{site}.zarr") == store_bytes(tmp_path / f"one-{site}.zarr")


def test_token_pooling_on_a_cluster_is_refused_before_anything_is_written(client, tiny_model, tmp_path):
    with pytest.raises(neurosel.InputError, match="pooling 'tokens' with a Dask client"):
        neurosel.extract(
            ["a b", "c d"], str(tiny_model), tmp_path / "t.zarr", pooling="tokens", client=client
        )
    assert not (tmp_path / "t.zarr").exists()


def test_worker_killed_mid_extraction_loses_no_rows(client, slow_model, tmp_path):
    """SIGKILL one worker process while windows are in flight: Dask runs its tasks again, the store
    ends complete and byte-identical to a single-process run."""
    texts = random_texts(1500, seed=11, max_words=40)
    with torch_threads(1):
        neurosel.extract(texts, str(slow_model), tmp_path / "one.zarr", **EXTRACT)
    out = tmp_path / "two.zarr"
    failure: list[BaseException] = []

    def run() -> None:
        try:
            neurosel.extract(texts, str(slow_model), out, client=client, **EXTRACT)
        except BaseException as e:  # surfaced by the assertion below
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    while committed(out) == 0 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    busy = [w for w, tasks in client.processing().items() if tasks]
    pids = client.run(os.getpid, workers=busy[:1])
    rows_at_kill = committed(out)
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=600)
    assert not failure, failure
    assert 0 < rows_at_kill < len(texts), "the kill must land mid-run"
    assert store_bytes(out) == store_bytes(tmp_path / "one.zarr")
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker for later tests


def test_command_line_extract_on_workers(tiny_model, tmp_path, capsys):
    from neurosel.cli import main

    data = tmp_path / "in.csv"
    data.write_text(
        "text,label\n" + "".join(f"sentence {i} is {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(40))
    )
    assert main(["-q", "extract", str(data), "--model", str(tiny_model), "--out", str(tmp_path / "s.zarr"),
                 "--workers", "2", "--device", "cpu"]) == 0  # fmt: skip
    assert neurosel.open_store(tmp_path / "s.zarr").meta["complete"]


def test_experiment_pipeline_on_the_cluster_equals_one_process(client, tiny_model, tmp_path):
    """run_pipeline with client=: stores written by the workers (the same bytes), statistics and
    paths on the cluster, the same transfers and fingerprints as one process."""
    from neurosel.experiments import Options, demo_corpus, run_pipeline

    domains = {d: (texts[:60], np.array(labels[:60])) for d, (texts, labels) in demo_corpus().items()}
    options = Options(
        model=str(tiny_model), k=10, ks=(5, 10), seeds=1, max_length=64, device="cpu", cls_baseline=False,
        multi_source=False, permutations=100,
    )  # fmt: skip
    with torch_threads(1):
        here = run_pipeline("demo", domains, tmp_path / "one", options, progress=False)
    there = run_pipeline("demo", domains, tmp_path / "two", options, progress=False, client=client)
    for domain in domains:
        assert store_bytes(tmp_path / "two" / "stores" / f"{domain}.zarr" / "activations") == store_bytes(
            tmp_path / "one" / "stores" / f"{domain}.zarr" / "activations"
        )
    a, b = (json.loads((r.parent / "results.json").read_text()) for r in (here, there))
    assert a["fingerprints"] == b["fingerprints"]
    for ra, rb in zip(a["transfers"], b["transfers"], strict=True):
        for method, value in ra["scores"].items():
            np.testing.assert_allclose(
                headline(rb["scores"][method]), headline(value), atol=1e-9, err_msg=method
            )
