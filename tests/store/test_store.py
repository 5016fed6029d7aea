"""ActivationStore reading: selections, partial stores, format checks."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.store import META_KEY
from tests.conftest import random_texts, store_bytes


@pytest.fixture(scope="module")
def store(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "s.zarr"
    return neurosel.extract(
        random_texts(25, seed=12),
        str(tiny_model),
        out,
        labels=np.arange(25) % 2,
        dtype="float32",
        device="cpu",
        progress=False,
        chunk_rows=4,
    )


def test_shape_and_properties(store):
    assert store.shape == (25, 3, 32) and store.n == 25 and store.hidden == 32
    assert store.layers == (0, 1, 2)
    assert store.labels.tolist() == [i % 2 for i in range(25)]
    assert store.activations.chunks == (4, 3, 32)


def test_selections_agree_with_full_read(store):
    full = store.read()
    np.testing.assert_array_equal(store.read(rows=slice(3, 9)), full[3:9])
    np.testing.assert_array_equal(store.read(rows=[24, 0, 5]), full[[24, 0, 5]])
    np.testing.assert_array_equal(store.read(rows=[-1]), full[[24]])
    np.testing.assert_array_equal(store.read(layers=[2, 0], neurons=[3]), full[:, [2, 0]][:, :, [3]])
    # negative layer ids count from the model's last layer, as extract(layers=...) does
    np.testing.assert_array_equal(store.read(layers=[-1]), full[:, [2]])
    np.testing.assert_array_equal(store.read(layers=-3), full[:, [0]])


def test_bad_selections(store):
    with pytest.raises(neurosel.InputError, match="not in the store"):
        store.read(layers=[7])
    with pytest.raises(neurosel.InputError, match="out of range"):
        store.read(rows=[25])


def test_partial_store_refuses_uncommitted_rows(store, tmp_path):
    import shutil

    copy = tmp_path / "partial.zarr"
    shutil.copytree(store.path, copy)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs[META_KEY] = {**group.attrs[META_KEY], "rows_committed": 8, "complete": False}
    partial = neurosel.open_store(copy)
    assert partial.read(rows=slice(0, 8)).shape == (8, 3, 32)
    with pytest.raises(neurosel.InputError, match="only rows < 8 of 25"):
        partial.read(rows=[8])


def test_open_rejects_non_stores(tmp_path):
    with pytest.raises(neurosel.InputError, match="does not exist"):
        neurosel.open_store(tmp_path / "none")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(neurosel.InputError, match="not a neurosel store"):
        neurosel.open_store(tmp_path / "plain.zarr")


def test_zstd_store_holds_the_same_values_and_checksums_catch_corruption(store, tiny_model, tmp_path):
    texts = random_texts(25, seed=12)
    packed = neurosel.extract(
        texts,
        str(tiny_model),
        tmp_path / "z.zarr",
        labels=np.arange(25) % 2,
        dtype="float32",
        device="cpu",
        progress=False,
        chunk_rows=4,
        compression="zstd",
    )
    np.testing.assert_array_equal(packed.read(), store.read())
    codecs = [
        c["name"] for c in packed.activations.metadata.to_dict()["codecs"][0]["configuration"]["codecs"]
    ]
    assert codecs == ["bytes", "zstd", "crc32c"]
    shard = tmp_path / "z.zarr" / "activations" / "c" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(Exception, match=r"(?i)checksum|crc"):
        neurosel.open_store(tmp_path / "z.zarr").read(rows=slice(0, 4))


def test_rerun_removes_what_a_write_killed_before_its_rename_left(tiny_model, tmp_path):
    """zarr writes each file under a temporary name, then renames it; a writer killed between the two
    (a SIGKILLed Dask worker) leaves that file. The next run holding the lock removes it, and only
    files of that form, so the store ends with the files of an uninterrupted run."""
    out, texts = tmp_path / "s.zarr", random_texts(12, seed=3)
    neurosel.extract(texts, str(tiny_model), out, device="cpu", progress=False)
    clean = store_bytes(out)
    shard = next(p for p in (out / "activations" / "c").rglob("*") if p.is_file())
    leftovers = [shard.with_name(f"{shard.name}.{'ab' * 16}.partial"), out / f"zarr.{'cd' * 16}.partial"]
    for path in leftovers:
        path.write_bytes(b"half-written")
    kept = out / "activations" / "notes.partial"  # not a name zarr gives its temporary files
    kept.write_text("mine")
    neurosel.extract(texts, str(tiny_model), out, device="cpu", progress=False)
    assert not any(p.exists() for p in leftovers)
    kept.unlink()
    assert store_bytes(out) == clean


def test_store_from_array_counts_overflow_as_stored_and_refuses_repeated_layers(tmp_path):
    """1e30 is finite in float32 and +inf in float16: counted after the cast, without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = neurosel.store_from_array(tmp_path / "o.zarr", np.full((4, 2, 3), 1e30, np.float32))
    assert store.meta["nonfinite_values"] == 24 and store.meta["nonfinite_row_count"] == 4
    with pytest.raises(neurosel.InputError, match=r"layers \[1, 1\]: each model layer may be stored once"):
        neurosel.store_from_array(tmp_path / "d.zarr", np.ones((4, 2, 3), np.float32), layers=[1, 1])


def test_an_unknown_url_scheme_is_one_line(capsys):
    from neurosel.cli import main

    with pytest.raises(neurosel.InputError, match="the file system 'foo' is not available"):
        neurosel.open_store("foo://bucket/s.zarr")
    assert main(["info", "foo://bucket/s.zarr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "foo" in err[0] and "Traceback" not in err[0]


def test_a_remote_store_without_credentials_is_one_line(tmp_path):
    """s3:// with no credentials anywhere: one line naming the store and where credentials come from."""
    import os
    import subprocess
    import sys

    pytest.importorskip("s3fs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))  # fmt: skip
    for argv in (
        ["info", "s3://no-such-bucket-neurosel/s.zarr"],
        ["stats", "s3://no-such-bucket-neurosel/s.zarr"],
    ):
        command = [sys.executable, "-m", "neurosel.cli", "-q", *argv]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot be reached (NoCredentialsError" in lines[0], proc.stderr
