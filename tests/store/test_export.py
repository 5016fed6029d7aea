"""`neurosel.export` and `neurosel export`: Hugging Face datasets, safetensors shards and npy arrays,
each read back by its own tool and compared with `ActivationStore.read()`; refusals leave nothing."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.cli import main
from neurosel.cli._export import FORMATS as CLI_FORMATS
from neurosel.errors import InputError
from neurosel.store import META_KEY
from neurosel.store._export import FORMATS
from tests.conftest import build_store, random_texts, two_class_store_at

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

N, LAYERS, HIDDEN = 70, (0, 2, 5), 6


@pytest.fixture(params=["float16", "float32", "bfloat16"])
def store(request, tmp_path):
    """N(0, 1) values in 8-row chunks (several blocks and shards), labelled "neg"/"pos"."""
    return build_store(
        tmp_path / f"{request.param}.zarr", n=N, layers=len(LAYERS), hidden=HIDDEN, layer_ids=LAYERS,
        values_dtype="float32", classes=3, cycle=True, label_names=("neg", "pos", "pos"),
        dtype=request.param, chunk_rows=8,
    )  # fmt: skip


@pytest.fixture(scope="module")
def text_store(tiny_model, tmp_path_factory):
    """An extracted store with texts, pair texts and string labels."""
    firsts, seconds = random_texts(14, seed=6), random_texts(14, seed=7)
    labels = ["good" if i % 3 else "bad" for i in range(14)]
    return neurosel.extract(
        list(zip(firsts, seconds, strict=True)), str(tiny_model), tmp_path_factory.mktemp("t") / "p.zarr",
        labels=labels, dtype="float16", device="cpu", progress=False,
    )  # fmt: skip


def raw(store) -> np.ndarray:
    """The stored values exactly as Zarr holds them (bfloat16: uint16 bit patterns)."""
    return store.activations[:]


def read_shards(out: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """index.json and every shard's tensors concatenated in index order (torch reads bfloat16)."""
    index = json.loads((out / "index.json").read_text())
    parts = [safetensors_torch.load_file(out / shard["file"]) for shard in index["shards"]]
    joined = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    return index, joined


def test_hf_dataset_reads_back_exactly(store, tmp_path):
    out = neurosel.export(store, tmp_path / "hf", to="hf", progress=False)
    ds = datasets.load_from_disk(str(out))
    expect = "float32" if store.meta["dtype"] == "bfloat16" else store.meta["dtype"]
    assert ds.features["activations"] == datasets.Array2D(shape=(3, HIDDEN), dtype=expect)
    assert ds.features["labels"] == datasets.ClassLabel(names=["neg", "pos"])
    assert "texts" not in ds.features and ds.num_rows == N
    table = ds.with_format("numpy")[:]
    np.testing.assert_array_equal(table["activations"], store.read())  # decoded: exact
    np.testing.assert_array_equal(table["labels"], store.labels)
    np.testing.assert_array_equal(table["lengths"], store.lengths)
    meta = json.loads(ds.info.description)
    assert meta["layers"] == list(LAYERS) and meta["dtype"] == store.meta["dtype"]
    assert meta["label_names"] == ["neg", "pos"] and meta["rows"] == N
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["hf", Path(store.path).name])


def test_safetensors_shards_cover_every_row(store, tmp_path):
    row_bytes = 3 * HIDDEN * store.activations.dtype.itemsize
    out = neurosel.export(
        store, tmp_path / "st", to="safetensors", progress=False, max_file_bytes=30 * row_bytes
    )
    index, tensors = read_shards(out)
    ranges = [tuple(shard["rows"]) for shard in index["shards"]]
    assert ranges == [(0, 30), (30, 60), (60, 70)]
    assert [shard["file"] for shard in index["shards"]] == [
        f"activations-0000{i}-of-00003.safetensors" for i in (1, 2, 3)
    ]
    acts = tensors["activations"]
    assert tuple(acts.shape) == (N, 3, HIDDEN)
    if store.meta["dtype"] == "bfloat16":  # real bf16, bit for bit the stored patterns
        assert acts.dtype == torch.bfloat16
        np.testing.assert_array_equal(acts.view(torch.int16).numpy().view(np.uint16), raw(store))
    else:
        assert acts.numpy().dtype == np.dtype(store.meta["dtype"])
        np.testing.assert_array_equal(acts.numpy(), store.read())
        first = safetensors_numpy.load_file(out / index["shards"][0]["file"])  # numpy reads it too
        np.testing.assert_array_equal(first["activations"], store.read(rows=slice(0, 30)))
    np.testing.assert_array_equal(tensors["labels"].numpy(), store.labels)
    np.testing.assert_array_equal(tensors["lengths"].numpy(), store.lengths)
    meta = index["metadata"]
    assert (meta["hidden"], meta["layers"], meta["pooling"]) == (HIDDEN, list(LAYERS), "mean")
    assert meta["dtype"] == meta["values_dtype"] == store.meta["dtype"]
    assert not (out / "texts.jsonl").exists()


def test_npy_memory_maps_back(store, tmp_path):
    out = neurosel.export(store, tmp_path / "np", to="npy", progress=False)
    acts = np.load(out / "activations.npy", mmap_mode="r")
    expect = np.float32 if store.meta["dtype"] == "bfloat16" else np.dtype(store.meta["dtype"])
    assert acts.dtype == expect
    np.testing.assert_array_equal(acts, store.read())
    np.testing.assert_array_equal(np.load(out / "labels.npy"), store.labels)
    np.testing.assert_array_equal(np.load(out / "lengths.npy"), store.lengths)
    assert json.loads((out / "meta.json").read_text())["label_names"] == ["neg", "pos"]


def test_texts_pairs_and_label_names(text_store, tmp_path):
    texts, pairs = text_store.texts, text_store.group["texts_pair"][:]
    ds = datasets.load_from_disk(str(neurosel.export(text_store, tmp_path / "hf", progress=False)))
    assert ds["texts"][:] == list(texts) and ds["texts_pair"][:] == list(pairs)
    assert ds.features["labels"].names == ["bad", "good"]
    np.testing.assert_array_equal(ds.with_format("numpy")[:]["labels"], text_store.labels)
    np.testing.assert_array_equal(ds.with_format("numpy")[:]["activations"], text_store.read())
    np.testing.assert_array_equal(ds.with_format("numpy")[:]["lengths"], text_store.lengths)
    for to in ("safetensors", "npy"):
        out = neurosel.export(text_store, tmp_path / to, to=to, progress=False)
        lines = [json.loads(line) for line in (out / "texts.jsonl").read_text().splitlines()]
        assert lines == [{"text": t, "text_pair": p} for t, p in zip(texts, pairs, strict=True)]


def test_to_hf_dataset(store, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    ds = store.to_hf_dataset()
    assert isinstance(ds, datasets.Dataset) and ds.num_rows == N
    np.testing.assert_array_equal(ds.with_format("numpy")[:]["activations"], store.read())
    assert json.loads(ds.info.description)["model_id"] == store.meta["model_id"]


def test_blocks_bound_the_memory(tmp_path):
    """8 MB of float32 activations through a 1 MiB budget: blocks of whole chunks, and the Python
    heap (numpy's buffers included) never holds a large part of the store."""
    big = build_store(
        tmp_path / "big.zarr", n=2048, layers=4, hidden=256, values_dtype="float32", chunk_rows=16
    )
    size = big.activations.nbytes
    for to in ("npy", "safetensors"):
        tracemalloc.start()
        out = neurosel.export(big, tmp_path / to, to=to, progress=False, memory_budget=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < size / 4, (to, peak, size)
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "activations.npy", mmap_mode="r"), big.read())
    _, tensors = read_shards(out)
    np.testing.assert_array_equal(tensors["activations"].numpy(), big.read())


# --- refusals ----------------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["--quiet", *argv])
    return code, capsys.readouterr().err.strip()


def test_existing_out_is_left_alone(tmp_path, capsys):
    store = two_class_store_at(tmp_path / "s.zarr")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for to in FORMATS:
        with pytest.raises(InputError, match=r"^out .*out: exists; choose another path or delete it$"):
            neurosel.export(store, out, to=to, progress=False)
        code, err = run_cli(capsys, "export", str(store.path), "--to", to, "--out", str(out))
        assert code == 2 and len(err.splitlines()) == 1 and "exists; choose another path" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.zarr"]  # no temporary folder left


def test_incomplete_store_is_refused(tmp_path, capsys):
    store = two_class_store_at(tmp_path / "s.zarr")
    group = zarr.open_group(str(store.path), mode="r+")
    group.attrs[META_KEY] = {**group.attrs[META_KEY], "rows_committed": 20, "complete": False}
    for to in FORMATS:
        with pytest.raises(InputError, match=r"incomplete \(20 of 80 rows\); finish the extraction"):
            neurosel.export(store.path, tmp_path / "out", to=to, progress=False)
        code, err = run_cli(capsys, "export", str(store.path), "--to", to, "--out", str(tmp_path / "out"))
        assert code == 2 and len(err.splitlines()) == 1 and "incomplete (20 of 80 rows)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_unknown_format_is_refused(tmp_path, capsys):
    store = two_class_store_at(tmp_path / "s.zarr")
    assert CLI_FORMATS == FORMATS
    with pytest.raises(InputError, match=r"^to 'parquet': use one of hf, safetensors, npy$"):
        neurosel.export(store, tmp_path / "out", to="parquet")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(store.path), "--to", "parquet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "--to" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_token_pooled_store_is_refused(tiny_model, tmp_path, capsys):
    store = neurosel.extract(
        random_texts(6, seed=2), str(tiny_model), tmp_path / "t.zarr", pooling="tokens", device="cpu",
        progress=False,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"token-pooled .* re-extract with --pooling mean"):
        neurosel.export(store, tmp_path / "out", to="npy", progress=False)
    code, err = run_cli(capsys, "export", str(store.path), "--out", str(tmp_path / "out"))
    assert code == 2 and len(err.splitlines()) == 1 and str(store.path) in err
    assert not (tmp_path / "out").exists()


def test_cli_exports_and_prints_the_folder(tmp_path, capsys):
    store = two_class_store_at(tmp_path / "s.zarr")
    code = main(["export", str(store.path), "--to", "npy", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 0 and capsys.readouterr().out.strip() == str(tmp_path / "o")
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "activations.npy"), store.read())
    shutil.rmtree(tmp_path / "o")
