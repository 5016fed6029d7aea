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

import numcodecs
import numpy as np
import pytest
import zarr

import neurosel
from neurosel.cli import main
from neurosel.store import DamagedStoreError, verify
from tests.conftest import build_store, planted_arrays

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


def _rle_frame(size: int) -> bytes:
    """A zstd frame that declares no content size and decodes to `size` zero bytes, in RLE blocks of
    128 KiB: 4 bytes a block, so a gigabyte takes 32 KB (RFC 8878, 3.1.1)."""
    block = 1 << 17
    head = (0xFD2FB528).to_bytes(4, "little") + bytes([0x00, 0x38])  # no content size; 128 KiB window
    blocks = []
    for start in range(0, size, block):
        n, last = min(block, size - start), start + block >= size
        blocks.append(((n << 3) | (1 << 1) | int(last)).to_bytes(3, "little") + b"\x00")
    return head + b"".join(blocks)


def _plant_in_shard(store, frame: bytes) -> None:
    """Replace the first chunk of the first activation shard with `frame` (and its CRC32C), rebuild
    the shard index, and record the new shard in the manifest: a hostile store, consistent with
    itself, whose one chunk decodes to far more than the chunk holds."""
    from numcodecs.checksum32 import CRC32C

    with open(os.path.join(store.path, "activations", "zarr.json")) as f:
        meta = json.load(f)
    inner = meta["codecs"][0]["configuration"]
    assert [c["name"] for c in inner["codecs"]] == ["bytes", "zstd", "crc32c"]
    count = meta["chunk_grid"]["configuration"]["chunk_shape"][0] // inner["chunk_shape"][0]
    path = shard(store, 0)
    with open(path, "rb") as f:
        data = f.read()
    index = np.frombuffer(data[-(count * 16 + 4) : -4], dtype="<u8").reshape(count, 2)
    chunks = [data[o : o + n] for o, n in index]
    chunks[0] = bytes(CRC32C(location="end").encode(np.frombuffer(frame, np.uint8)))
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    new_index = np.column_stack([offsets, [len(c) for c in chunks]]).astype("<u8").tobytes()
    body = b"".join(chunks) + bytes(CRC32C(location="end").encode(np.frombuffer(new_index, np.uint8)))
    with open(path, "wb") as f:
        f.write(body)
    checksum = neurosel.store._integrity.checksum(np.frombuffer(body, np.uint8))
    _edit_manifest(store, lambda m: m["activations"].__setitem__("0", [len(body), checksum]))


def _peak_rss_mb(*argv: str) -> tuple[int, str, float]:
    """Run `neurosel ARGV` in a fresh process: (exit code, stderr, its peak resident memory in MB)."""
    import subprocess
    import sys

    code = (
        "import resource, sys\nfrom neurosel.cli import main\ncode = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stdout)\nsys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr, float(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            lambda: bytes(numcodecs.Zstd(level=1).encode(np.zeros(1 << 30, np.uint8))), id="declared"
        ),
        pytest.param(lambda: _rle_frame(1 << 30), id="undeclared"),
    ],
)
def test_a_decompression_bomb_is_refused_before_it_decodes(tmp_path, capsys, frame):
    """A chunk of a few KB that decodes to 1 GiB (its size declared in the frame, or not): every read
    names the chunk, verify lists it, and no process grows by anything like the gigabyte (compared
    with the same command on an undamaged store of the same shape, which pays the same start-up)."""
    x, y = planted_arrays(n=120, layers=2, hidden=8, planted=[3], seed=1, labels_first=True)
    clean = neurosel.store_from_array(tmp_path / "c.zarr", x, labels=y, chunk_rows=10, compression="zstd")
    a = neurosel.store_from_array(tmp_path / "z.zarr", x, labels=y, chunk_rows=10, compression="zstd")
    _plant_in_shard(a, frame())
    assert_refused(a, capsys, r"activations.*rows 0-")
    for command in (["stats", "--recompute"], ["verify"]):
        code, err, peak = _peak_rss_mb("-q", command[0], a.path, *command[1:])
        assert code == 2 and "Traceback" not in err, err
        _, _, baseline = _peak_rss_mb("-q", command[0], clean.path, *command[1:])
        assert peak < baseline + 256, f"{command[0]} peaked at {peak:.0f} MB, {baseline:.0f} MB undamaged"


def test_a_pass_stopped_by_a_damaged_chunk_exits_with_one_line(tmp_path):
    """A chunk that fails its own CRC32C (inside a shard the manifest agrees with) stops the pass while
    zarr's reads of the other chunks are under way: they are let finish, so the command prints its
    one line and nothing at exit (asyncio's "Task was destroyed but it is pending!" reports)."""
    x, y = planted_arrays(n=2000, layers=2, hidden=8, planted=[3], seed=1, labels_first=True)
    a = neurosel.store_from_array(tmp_path / "z.zarr", x, labels=y, chunk_rows=10, compression="zstd")
    with open(shard(a, 0), "rb") as f:
        body = bytearray(f.read())
    body[5] ^= 0xFF
    with open(shard(a, 0), "wb") as f:
        f.write(body)
    checksum = neurosel.store._integrity.checksum(np.frombuffer(bytes(body), np.uint8))
    _edit_manifest(a, lambda m: m["activations"].__setitem__("0", [len(body), checksum]))
    for _ in range(3):
        code, err, _ = _peak_rss_mb("-q", "stats", a.path, "--recompute")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        named = f"neurosel: error: store {a.path}: array 'activations': chunk 0 (rows 0-9)"
        assert lines[0].startswith(named), lines


@pytest.mark.parametrize("relpath", ["activations/c/0/0/0", "labels/c/0"])
def test_a_symlink_to_an_endless_file_is_named_not_read(pair, relpath):
    """A file replaced by a symlink to /dev/zero (endless, and of size 0 to stat): every command, verify
    included, names the file in one line and reads at most one byte past its recorded size."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    a, _ = pair
    path = os.path.join(a.path, relpath)
    os.remove(path)
    os.symlink("/dev/zero", path)
    for command in (["info"], ["stats", "--recompute"], ["verify"]):
        code, err, _ = _peak_rss_mb("-q", command[0], a.path, *command[1:])
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and relpath in lines[0], (command, err)
