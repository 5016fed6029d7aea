"""Store integrity: manifests checked before reads, `verify`, metadata that disagrees with the arrays,
and one writer at a time (a lock that a dead writer cannot leave behind)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import neurosel
from neurosel.cli import main
from neurosel.store import DamagedStoreError, StoreLock, StoreLockedError, verify
from tests.conftest import build_store


@pytest.fixture
def store(tmp_path):
    """200 rows × 2 layers × 8 units, float16 in 20-row chunks; every unit is +1 on class 1."""
    return build_store(
        tmp_path / "s.zarr", n=200, layers=2, hidden=8, labels_first=True, planted=range(16), signed=False,
        dtype="float16", chunk_rows=20,
    )  # fmt: skip


def shard(store, i: int):
    return os.path.join(store.path, "activations", "c", str(i), "0", "0")


@pytest.mark.parametrize("fault", ["deleted", "emptied", "truncated"])
def test_a_damaged_shard_is_named_never_read_as_zeros(store, fault):
    path = shard(store, 2)
    if fault == "deleted":
        os.remove(path)
    else:
        os.truncate(path, 0 if fault == "emptied" else os.path.getsize(path) // 2)
    reopened = neurosel.open_store(store.path)
    with pytest.raises(DamagedStoreError, match=r"activations/c/2/0/0 \(rows 80-119\)"):
        neurosel.neuron_stats(reopened, progress=False, save=False)
    with pytest.raises(DamagedStoreError, match=r"rows 80-119"):
        reopened.read(rows=[90])
    assert reopened.read(rows=[10]).shape == (1, 2, 8)  # other rows still read
    report = verify(reopened)
    assert not report.ok and any("activations/c/2/0/0" in p for p in report.problems)


def test_a_flipped_byte_fails_verify_and_the_read(store):
    path = shard(store, 1)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[100] ^= 0x01
    with open(path, "wb") as f:
        f.write(bytes(data))
    report = verify(store.path)
    assert [p for p in report.problems if "activations/c/1/0/0" in p and "checksum" in p]
    with pytest.raises(
        DamagedStoreError, match=r"activations/c/1/0/0 \(rows 40-79\) does not match its checksum"
    ):
        neurosel.open_store(store.path).read(rows=[45])


def test_verify_command_and_info_verify(store, capsys):
    assert main(["verify", store.path]) == 0
    assert "no problems" in capsys.readouterr().out
    os.remove(os.path.join(store.path, "labels", "c", "0"))
    assert main(["verify", store.path]) == 2
    err = capsys.readouterr().err
    assert "labels" in err and "missing" in err and "Traceback" not in err
    assert main(["info", store.path]) == 2  # labels are read by info: named, not "one class"
    assert "labels" in capsys.readouterr().err


def test_complete_but_last_shard_missing_is_damage(store):
    os.remove(shard(store, 4))
    with pytest.raises(DamagedStoreError, match="rows 160-199"):
        neurosel.open_store(store.path).check()
    assert main(["info", store.path]) == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda meta: meta.update(n=300), "has shape"),
        (lambda meta: meta.update(hidden=9), "has shape"),
        (lambda meta: meta.update(layers=[0]), "has shape"),
        (lambda meta: meta.update(rows_committed=500), "out of range"),
        (lambda meta: meta.pop("hidden"), "missing or malformed"),
    ],
)
def test_metadata_that_disagrees_with_the_arrays_is_named(store, edit, message, capsys):
    path = os.path.join(store.path, "zarr.json")
    with open(path) as f:
        root = json.load(f)
    edit(root["attributes"]["neurosel"])
    with open(path, "w") as f:
        json.dump(root, f)
    with pytest.raises(neurosel.InputError, match=message):
        neurosel.open_store(store.path)
    assert main(["stats", store.path]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bad_json_in_metadata_is_named(store, capsys):
    for name in ("zarr.json", "activations/zarr.json"):
        path = os.path.join(store.path, name)
        with open(path) as f:
            original = f.read()
        with open(path, "w") as f:
            f.write(original[: len(original) // 2])
        assert main(["info", store.path]) == 2
        err = capsys.readouterr().err
        assert "zarr.json" in err and "Traceback" not in err
        with open(path, "w") as f:
            f.write(original)


def test_lock_refuses_a_second_writer_and_is_released(tmp_path):
    target = tmp_path / "x.zarr"
    with StoreLock(target), pytest.raises(StoreLockedError, match=rf"pid {os.getpid()} on"):
        StoreLock(target).acquire()
    with StoreLock(target):  # released: taken again
        pass
    assert not (tmp_path / "x.zarr.lock").exists()


def test_a_killed_writers_lock_is_taken_over(tmp_path):
    target = tmp_path / "y.zarr"
    code = (
        "import sys, time\n"
        "from neurosel.store import StoreLock\n"
        f"StoreLock({str(target)!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    with pytest.raises(StoreLockedError, match=f"pid {child.pid}"):
        StoreLock(target).acquire()
    child.kill()
    child.wait()
    child.stdout.close()
    assert (tmp_path / "y.zarr.lock").exists()  # left behind by the killed writer
    with StoreLock(target):  # the kernel released its flock: taken over
        pass


@pytest.mark.slow
def test_two_extractions_on_one_store(tmp_path, tiny_model):
    """A second `neurosel extract` on a store being written is refused, --no-resume too (it never
    deletes a store a live process holds); the first, killed afterwards, resumes to a sound store."""
    texts = [f"the movie was {'very ' * (i % 7)}good number {i}" for i in range(20000)]
    csv = tmp_path / "in.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(texts)))
    out = tmp_path / "busy.zarr"
    argv = [sys.executable, "-m", "neurosel.cli", "-q", "extract", str(csv), "--model", str(tiny_model)]
    first = subprocess.Popen([*argv, "--out", str(out), "--device", "cpu"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "busy.zarr.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.stderr.read()
    for extra in ([], ["--no-resume"]):
        second = subprocess.run([*argv, "--out", str(out), *extra], capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        assert "another extraction is writing it" in second.stderr and len(second.stderr.splitlines()) == 1
    assert first.poll() is None, "the first extraction ended before the second was tried; use more texts"
    first.kill()
    first.wait()
    first.stderr.close()
    resumed = subprocess.run([*argv, "--out", str(out), "--device", "cpu"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    finished = neurosel.open_store(out)
    assert finished.complete and verify(finished).ok


@pytest.mark.slow
@pytest.mark.parametrize("command", ["stats", "select"])
def test_a_kill_during_a_derived_pass_leaves_nothing_half_used(tmp_path, command):
    """SIGKILL a statistics pass or a path solve as its result is being saved (the moment its group
    appears); the re-run gives the result of an uninterrupted run on a copy, and the store verifies."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 6000)
    x = rng.standard_normal((6000, 4, 64)) + 0.3 * y[:, None, None] * (rng.random(64) < 0.1)
    killed = neurosel.store_from_array(tmp_path / "k.zarr", x, labels=y, chunk_rows=64)
    fresh = neurosel.store_from_array(tmp_path / "f.zarr", x, labels=y, chunk_rows=64)
    argv = [sys.executable, "-m", "neurosel.cli", "-q", command, killed.path, "--device", "cpu"]
    extra = ["--k", "20"] if command == "select" else []
    child = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    group = os.path.join(killed.path, "stats" if command == "stats" else "importance")
    deadline = time.time() + 120
    while not os.path.isdir(group) and child.poll() is None and time.time() < deadline:
        time.sleep(0.001)
    assert child.poll() is None, "the command ended before its result was saved"
    child.kill()
    child.wait()
    assert verify(killed.path).ok
    if command == "stats":
        got = neurosel.neuron_stats(neurosel.open_store(killed.path), progress=False)
        want = neurosel.neuron_stats(fresh, progress=False)
        for name, values in want.arrays().items():
            np.testing.assert_array_equal(getattr(got, name), values, err_msg=name)
    else:
        got = neurosel.importance(neurosel.open_store(killed.path), target_support=20)
        want = neurosel.importance(fresh, target_support=20)
        np.testing.assert_array_equal(got.ranking, want.ranking)
        np.testing.assert_allclose(got.objective, want.objective, rtol=1e-12)
    assert verify(killed.path).ok


def test_results_without_a_manifest_still_load(store):
    """Results saved before manifests existed (format 1): an all-zero array has no chunk file, which
    must not be taken for a deleted one."""
    import zarr

    stats = neurosel.neuron_stats(store, progress=False)
    key = stats.meta["key"]
    group = zarr.open_group(store.path, mode="r+", use_consolidated=False)[f"stats/{key}"]
    attrs = dict(group.attrs)
    attrs.pop("neurosel_manifest")
    group.attrs.clear()
    group.attrs.update(attrs)
    # all zeros: a writer of that time wrote no chunk file for it (this one writes every unit)
    shutil.rmtree(os.path.join(store.path, "stats", key, "nonfinite", "c"))
    again = neurosel.neuron_stats(neurosel.open_store(store.path), progress=False)
    np.testing.assert_array_equal(again.nonfinite, stats.nonfinite)
    assert again.meta["seconds"] == stats.meta["seconds"]  # loaded, not recomputed


def test_a_leftover_partial_metadata_file_is_harmless(store):
    """zarr writes zarr.json through a temporary `zarr.<id>.partial` file and a rename; a process
    killed in between leaves that file behind. Later saves and verify must not trip on it."""
    neurosel.neuron_stats(store, by=None, progress=False)
    for folder in (store.path, os.path.join(store.path, "stats")):
        with open(os.path.join(folder, "zarr.0123abcd.partial"), "w") as f:
            f.write('{"zarr_form')
    imp = neurosel.importance(neurosel.open_store(store.path), n_lambdas=4)  # saves and consolidates
    assert imp.entered > 0
    assert verify(store.path).ok
