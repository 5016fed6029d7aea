"""Writers that cannot hurt: the lock never writes through a symlink or over a file it did not make,
and saved results have a writer rule (concurrent saves serialise, an interrupted save is harmless)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.store import verify
from tests.conftest import ROOT, two_class_store_at


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("do not overwrite")
    os.symlink(precious, tmp_path / "s.zarr.lock")
    with pytest.raises(neurosel.InputError, match=r"s\.zarr\.lock is a symbolic link or not a regular file"):
        neurosel.store_from_array(tmp_path / "s.zarr", np.ones((4, 1, 2), np.float32))
    assert precious.read_text() == "do not overwrite"
    assert not (tmp_path / "s.zarr").exists()


def test_a_foreign_file_where_the_lock_goes_is_not_overwritten(tmp_path):
    foreign = tmp_path / "s.zarr.lock"
    foreign.write_text("someone's notes")
    with pytest.raises(neurosel.InputError, match="exists and is not a neurosel lock"):
        neurosel.store_from_array(tmp_path / "s.zarr", np.ones((4, 1, 2), np.float32))
    assert foreign.read_text() == "someone's notes"


SAVE = """
import sys
import neurosel
store = neurosel.open_store(sys.argv[1])
for _ in range(3):
    neurosel.neuron_stats(store, progress=False, recompute=True)
"""


def test_concurrent_saves_of_one_result_serialise(tmp_path):
    """Two processes recomputing and saving the same statistics at once, three times each: both
    finish, and the store verifies (before the rule: KeyError and 'Directory not empty')."""
    store = two_class_store_at(tmp_path / "s.zarr", n=400)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", SAVE, store.path], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    report = verify(store.path)
    assert report.ok, report.problems
    again = neurosel.neuron_stats(neurosel.open_store(store.path), progress=False)
    fresh = neurosel.neuron_stats(store, progress=False, save=False)
    np.testing.assert_array_equal(again.t, fresh.t)


def test_an_interrupted_save_is_a_note_and_the_next_save_removes_it(tmp_path):
    """What a save killed (or stopped by a full disk) leaves: a temporary group, never a result."""
    store = two_class_store_at(tmp_path / "s.zarr")
    group = zarr.open_group(store.path, mode="r+", use_consolidated=False)
    half = group.require_group("stats").create_group(".tmp-by-label-0123456789ab-deadbeef")
    half.create_array("mean", data=np.zeros((3, 8)))  # no manifest, not complete
    report = verify(store.path)
    assert report.ok and any("interrupted" in note for note in report.notes), report
    neurosel.neuron_stats(store, progress=False)
    assert not any(name.startswith(".tmp-") for name in os.listdir(os.path.join(store.path, "stats")))
    assert verify(store.path).ok


def test_a_read_only_store_is_scored_and_transferred_from_memory(tmp_path, capsys):
    """A store on a read-only mount: statistics, select and transfer run, their results kept in
    memory with one warning line each naming the store; nothing is written (needs mount rights)."""
    import shutil

    from neurosel.cli import main

    mount = tmp_path / "ro"
    mount.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        source = two_class_store_at(mount / "a.zarr", n=120)
        target = two_class_store_at(mount / "b.zarr", n=120, seed=1)
        before = sorted(p.relative_to(mount) for p in mount.rglob("*"))
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for argv in (["stats", source.path], ["select", source.path, "--k", "3"],
                     ["transfer", "--source", source.path, "--target", target.path, "--k", "3", "--ks", "3",
                      "--seeds", "1"]):  # fmt: skip
            assert main(["-q", *argv, "--device", "cpu"]) == 0, capsys.readouterr().err
            err = [line for line in capsys.readouterr().err.splitlines() if "device=" not in line]
            assert err and all("cannot be written" in line and "kept in memory" in line for line in err), err
        assert sorted(p.relative_to(mount) for p in mount.rglob("*")) == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)
