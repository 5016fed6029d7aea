"""Stores on fsspec file systems: memory:// and S3 (moto's server on 127.0.0.1, started and stopped
here, as zarr and s3fs test theirs). Every stage runs on a URL as on a folder; credentials come from
the environment and are never written into the store."""

from __future__ import annotations

import gc
import json
import socket

import numpy as np
import pytest

import neurosel
from neurosel.cli import main
from neurosel.store import StoreLock, StoreLockedError, verify
from tests.conftest import planted_arrays

SECRET = "not-a-real-secret-but-unique-7f3a"
# s3fs's aiohttp sessions (one per file system instance zarr creates) are closed by the garbage
# collector, which pytest reports as an unraisable "unclosed session": third-party noise here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.slow,  # `make test-fast` leaves it out; `make test` and CI run it
]


def planted(n: int = 300):
    """Labels drawn first; units 0-2 of layer 1 are +1.2 on class 1."""
    return planted_arrays(
        n=n, layers=2, hidden=16, labels_first=True, planted=[16, 17, 18], effect=1.2, signed=False
    )


def round_trip(url: str, local_copy) -> None:
    """store_from_array → stats → importance → select → verify on `url`, equal to a local store."""
    x, y = planted()
    remote = neurosel.store_from_array(url, x, labels=y, chunk_rows=32)
    local = neurosel.store_from_array(local_copy, x, labels=y, chunk_rows=32)
    np.testing.assert_array_equal(remote.read(), local.read())
    a, b = neurosel.neuron_stats(remote, progress=False), neurosel.neuron_stats(local, progress=False)
    np.testing.assert_array_equal(a.auroc, b.auroc)
    ia, ib = (
        neurosel.importance(neurosel.open_store(url), n_lambdas=6),
        neurosel.importance(local, n_lambdas=6),
    )
    np.testing.assert_array_equal(ia.ranking, ib.ranking)
    assert set(neurosel.select(ia, k=3).neurons) == {16, 17, 18}
    assert verify(url).ok


def test_memory_store_every_stage(tmp_path):
    round_trip("memory://neurosel-test/m.zarr", tmp_path / "m.zarr")
    assert main(["verify", "memory://neurosel-test/m.zarr"]) == 0


@pytest.fixture
def s3(monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with socket.socket() as probe:  # a free port on the loopback interface
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "neurosel-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists("neurosel-bucket"):  # moto keeps its state in the process between servers
        fs.mkdir("neurosel-bucket")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()
    gc.collect()  # close the dropped sessions now, under this module's filter, not in a later test


def test_s3_store_end_to_end(s3, tmp_path, tiny_model, capsys):
    round_trip("s3://neurosel-bucket/r.zarr", tmp_path / "r.zarr")
    # extraction writes to S3 directly, resumable and locked like a local store
    texts = [f"the movie was {'very ' * (i % 4)}good {i}" for i in range(40)]
    labels = [i % 2 for i in range(40)]
    url = "s3://neurosel-bucket/extract.zarr"
    store = neurosel.extract(texts, str(tiny_model), url, labels=labels, progress=False, device="cpu")
    reference = neurosel.extract(texts, str(tiny_model), tmp_path / "e.zarr", labels=labels, progress=False)
    np.testing.assert_array_equal(store.read(), reference.read())
    assert store.complete and verify(url).ok
    assert not s3.exists("neurosel-bucket/extract.zarr.lock")  # released
    written = b"".join(s3.cat(key) for key in s3.find("neurosel-bucket"))
    assert SECRET.encode() not in written and b"neurosel-test" not in written
    assert main(["info", url]) == 0 and "complete" in capsys.readouterr().out


def test_s3_lock_refuses_a_second_writer(s3):
    url = "s3://neurosel-bucket/locked.zarr"
    if s3.exists("neurosel-bucket/locked.zarr.lock"):
        s3.rm("neurosel-bucket/locked.zarr.lock")
    with StoreLock(url):
        holder = json.loads(s3.cat("neurosel-bucket/locked.zarr.lock"))
        assert holder["host"] == socket.gethostname()
        with pytest.raises(StoreLockedError, match="another extraction is writing it"):
            StoreLock(url).acquire()
    with StoreLock(url):  # released: taken again
        pass


def test_s3_lock_of_a_dead_writer_on_this_host_is_broken(s3):
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = {"pid": int(gone.stdout), "host": socket.gethostname(), "since": 0}
    s3.pipe("neurosel-bucket/stale.zarr.lock", json.dumps(dead).encode())
    with StoreLock("s3://neurosel-bucket/stale.zarr"):
        assert json.loads(s3.cat("neurosel-bucket/stale.zarr.lock"))["pid"] != dead["pid"]
    other = {"pid": 1, "host": "another-host", "since": 0}  # alive elsewhere, as far as we can know
    s3.pipe("neurosel-bucket/stale.zarr.lock", json.dumps(other).encode())
    with pytest.raises(StoreLockedError, match=r"another-host.*delete the lock"):
        StoreLock("s3://neurosel-bucket/stale.zarr").acquire()
