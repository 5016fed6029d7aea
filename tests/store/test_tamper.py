"""A store cannot lie: a file whose bytes are not the ones committed is named on every read, never
used; a store cannot switch its checks off; nothing a store says leads a read outside it.

Each case builds two stores of the same shape (so foreign files have the right size), damages one
the way the outside audit did, and checks that reading it (Python and the command line) fails with
one line naming the file, while `verify` lists the problem.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.cli import main
from neurosel.store import DamagedStoreError, verify
from tests.conftest import build_store

SHAPE = {"n": 120, "layers": 2, "hidden": 8, "dtype": "float16", "chunk_rows": 10}


@pytest.fixture
def pair(tmp_path):
    """Two stores of one shape and other values: `a` (the victim) and `b` (where foreign files come from)."""
    a = build_store(tmp_path / "a.zarr", planted=[3], seed=1, labels_first=True, **SHAPE)
    b = build_store(tmp_path / "b.zarr", planted=[5], seed=2, labels_first=True, **SHAPE)
    return a, b


def shard(store, i: int) -> str:
    return os.path.join(store.path, "activations", "c", str(i), "0", "0")


def assert_refused(store, capsys, needle: str) -> None:
    """Every way of reading the activations names the damage; nothing returns numbers."""
    reopened = neurosel.open_store(store.path)
    with pytest.raises(DamagedStoreError, match=needle):
        reopened.read()
    with pytest.raises(DamagedStoreError, match=needle):
        neurosel.neuron_stats(reopened, progress=False, save=False)
    assert main(["-q", "stats", store.path, "--recompute"]) == 2
    # the device line is said once per process, so only the first command of a session prints it
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "device=" not in line]
    assert len(err) == 1 and re.search(needle, err[0]) and "Traceback" not in err[0], err
    report = verify(store.path)
    assert not report.ok


def test_a_shard_swapped_with_another_of_the_same_store(pair, capsys):
    a, _ = pair
    first, second = shard(a, 0), shard(a, 1)
    assert os.path.getsize(first) == os.path.getsize(second)
    tmp = first + ".swap"
    os.rename(first, tmp)
    os.rename(second, first)
    os.rename(tmp, second)
    # both files are wrong; which is read first depends on the reader threads
    assert_refused(a, capsys, r"activations/c/[01]/0/0 \(rows (0-19|20-39)\) does not match its checksum")


def test_a_shard_copied_from_another_store_of_the_same_shape(pair, capsys):
    a, b = pair
    shutil.copyfile(shard(b, 2), shard(a, 2))
    assert_refused(a, capsys, r"activations/c/2/0/0 \(rows 40-59\) does not match its checksum")


def test_a_symlink_to_another_stores_shard(pair, capsys):
    a, b = pair
    os.remove(shard(a, 3))
    os.symlink(shard(b, 3), shard(a, 3))
    assert_refused(a, capsys, r"activations/c/3/0/0 \(rows 60-79\) does not match its checksum")


def test_two_chunks_swapped_inside_a_shard(pair, capsys):
    """Each chunk keeps its own valid CRC32C; only the file's checksum tells them apart."""
    a, _ = pair
    path = shard(a, 1)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    index_bytes = 16 * (a.activations.shards[0] // a.activations.chunks[0]) + 4  # (offset, size) per chunk
    index = np.frombuffer(bytes(data[-index_bytes:-4]), dtype="<u8").reshape(-1, 2)
    (o0, n0), (o1, n1) = index[0], index[1]
    assert n0 == n1
    data[o0 : o0 + n0], data[o1 : o1 + n1] = data[o1 : o1 + n1], data[o0 : o0 + n0]
    with open(path, "wb") as f:
        f.write(bytes(data))
    assert_refused(a, capsys, r"activations/c/1/0/0 \(rows 20-39\) does not match its checksum")


def test_a_labels_chunk_copied_from_another_store(pair, capsys):
    a, b = pair
    assert not np.array_equal(a.labels, b.labels)
    shutil.copyfile(os.path.join(b.path, "labels", "c", "0"), os.path.join(a.path, "labels", "c", "0"))
    with pytest.raises(
        DamagedStoreError, match=r"array 'labels' file labels/c/0 .*does not match its checksum"
    ):
        _ = neurosel.open_store(a.path).labels
    assert main(["-q", "select", a.path, "--k", "3"]) == 2
    assert "labels/c/0" in capsys.readouterr().err


def _edit_manifest(store, change) -> None:
    group = zarr.open_group(store.path, mode="r+", use_consolidated=False)
    manifest = json.loads(json.dumps(group.attrs.get("neurosel_manifest")))
    change(manifest)
    group.attrs["neurosel_manifest"] = manifest


def test_a_deleted_manifest_makes_the_store_damaged_not_unchecked(pair, capsys):
    a, _ = pair
    os.remove(shard(a, 2))
    group = zarr.open_group(a.path, mode="r+", use_consolidated=False)
    attrs = {k: v for k, v in group.attrs.asdict().items() if k != "neurosel_manifest"}
    group.attrs.clear()
    group.attrs.update(attrs)
    with pytest.raises(DamagedStoreError, match=r"manifest .* is missing or malformed"):
        neurosel.open_store(a.path)
    assert main(["-q", "info", a.path]) == 2
    assert "manifest" in capsys.readouterr().err
    report = verify(a.path)
    assert not report.ok and "manifest" in report.problems[0]


def test_a_null_entry_for_a_deleted_shard_is_damage(pair, capsys):
    a, _ = pair
    os.remove(shard(a, 2))
    _edit_manifest(a, lambda m: m["activations"].__setitem__("2", None))
    assert_refused(a, capsys, r"activations/c/2/0/0 \(rows 40-59\) has a null manifest entry")


@pytest.mark.parametrize("key", ["../../../../../../dev/zero", "..", "/etc/passwd", "activations/../../x"])
def test_a_manifest_key_outside_the_store_is_refused_unread(pair, capsys, key):
    a, _ = pair

    def add(m):
        m[key] = {"0": [1 << 40, 0]}
        m["_metadata"][f"{key}/zarr.json"] = [1 << 40, 0]

    _edit_manifest(a, add)
    with pytest.raises(DamagedStoreError, match="not files of this store"):
        neurosel.open_store(a.path)
    for command in (["info", a.path], ["verify", a.path]):
        assert main(["-q", *command]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not files of this store" in err[0]


def test_a_foreign_array_in_the_store_is_named(pair, capsys):
    a, b = pair
    shutil.copytree(os.path.join(b.path, "labels"), os.path.join(a.path, "labels_extra"))
    with pytest.raises(DamagedStoreError, match="'labels_extra' is in the store but not written by neurosel"):
        neurosel.open_store(a.path)
    assert main(["-q", "info", a.path]) == 2
    assert "labels_extra" in capsys.readouterr().err


def test_an_untouched_store_reads_the_same_through_the_checks(pair):
    """The checks change no number: the checked read equals plain zarr's read of the same files."""
    a, _ = pair
    raw = zarr.open_group(a.path, mode="r", use_consolidated=False)
    np.testing.assert_array_equal(a.read(), raw["activations"][:])
    np.testing.assert_array_equal(a.read(rows=[3, 57, 101]), raw["activations"][[3, 57, 101]])
    assert verify(a.path).ok


def test_a_store_declaring_rows_nothing_backs_is_refused_at_once(pair, capsys):
    """A consistent edit (metadata, shapes and the manifest's metadata entries) declaring 10^12 rows:
    every command, verify included, refuses it before reading or allocating anything."""
    import time

    a, _ = pair
    huge = 10**12
    for name in ("activations", "labels", "lengths"):
        meta_file = os.path.join(a.path, name, "zarr.json")
        with open(meta_file) as f:
            meta = json.load(f)
        meta["shape"][0] = huge
        with open(meta_file, "w") as f:
            json.dump(meta, f)
    group = zarr.open_group(a.path, mode="r+", use_consolidated=False)
    manifest = json.loads(json.dumps(group.attrs["neurosel_manifest"]))
    for key in list(manifest["_metadata"]):
        with open(os.path.join(a.path, key), "rb") as f:
            data = f.read()
        manifest["_metadata"][key] = [len(data), neurosel.store._integrity.checksum(data)]
    attrs = dict(group.attrs)
    attrs["neurosel"] = {**attrs["neurosel"], "n": huge, "rows_committed": huge}
    attrs["neurosel_manifest"] = manifest
    group.attrs.update(attrs)

    started = time.monotonic()
    for command in (["info", a.path], ["verify", a.path], ["stats", a.path, "--recompute"]):
        assert main(["-q", *command]) == 2
        err = [line for line in capsys.readouterr().err.strip().splitlines() if "device=" not in line]
        assert len(err) == 1 and "declares" in err[0], err
    assert time.monotonic() - started < 30
