"""neurosel.extraction._extract against a direct float64 Hugging Face forward pass, and the store it
writes."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.extraction import load_corpus, tokenize
from tests.conftest import random_texts
from tests.reference import reference_activations

# bf16 autocast keeps 8 mantissa bits: per-value errors near 2^-8 relative compound over layers.
BF16_RTOL = 3e-2


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_fp32_matches_hf_reference_and_keeps_row_order(tiny_model, tmp_path, pooling):
    texts = random_texts(57, seed=1)
    store = neurosel.extract(
        texts,
        str(tiny_model),
        tmp_path / "s.zarr",
        pooling=pooling,
        dtype="float32",
        device="cpu",
        progress=False,
        token_budget=64,
        chunk_rows=4,
    )
    ref = np.stack(reference_activations(tiny_model, texts, pooling))
    got = store.read()
    assert got.shape == ref.shape == (57, 3, 32)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert store.complete and store.rows_committed == 57


def test_bucketing_reorders_batches_but_not_rows(tiny_model):
    from neurosel.extraction import load_encoder, plan_batches

    texts = random_texts(40, seed=2)
    encoder = load_encoder(str(tiny_model), __import__("torch").device("cpu"))
    lengths = tokenize(load_corpus(texts), encoder.tokenizer, 128).lengths
    batches = plan_batches(lengths, token_budget=60, max_rows=8)
    order = np.concatenate(batches)
    assert sorted(order) == list(range(40)) and not np.array_equal(order, np.arange(40))
    for rows in batches:
        assert rows.size * lengths[rows].max() <= 60 or rows.size == 1
        assert rows.size <= 8


def test_bf16_compute_within_documented_tolerance(tiny_model, tmp_path):
    texts = random_texts(20, seed=3)
    store = neurosel.extract(
        texts,
        str(tiny_model),
        tmp_path / "s.zarr",
        precision="bf16",
        dtype="float32",
        device="cpu",
        progress=False,
    )
    ref = np.stack(reference_activations(tiny_model, texts))
    assert store.meta["precision"] == "bf16"
    assert relative_error(store.read(), ref) < BF16_RTOL


@pytest.mark.parametrize(("dtype", "rtol"), [("float16", 2e-3), ("bfloat16", 1e-2)])
def test_storage_dtypes_round_trip(tiny_model, tmp_path, dtype, rtol):
    texts = random_texts(15, seed=4)
    store = neurosel.extract(
        texts, str(tiny_model), tmp_path / "s.zarr", dtype=dtype, device="cpu", progress=False
    )
    got = store.read()
    assert got.dtype == (np.float16 if dtype == "float16" else np.float32)
    ref = np.stack(reference_activations(tiny_model, texts))
    assert relative_error(got.astype(np.float64), ref) < rtol


def test_token_pooling_offsets_and_values(tiny_model, tmp_path):
    texts = random_texts(23, seed=5)
    store = neurosel.extract(
        texts,
        str(tiny_model),
        tmp_path / "t.zarr",
        pooling="tokens",
        dtype="float32",
        device="cpu",
        progress=False,
        token_budget=50,
        chunk_rows=16,
    )
    ref = reference_activations(tiny_model, texts, "tokens")
    offsets = store.group["offsets"][:]
    lengths = store.lengths
    assert offsets[0] == 0 and np.array_equal(np.diff(offsets), lengths)
    assert [r.shape[0] for r in ref] == list(lengths)
    assert store.meta["n_tokens"] == offsets[-1] == store.activations.shape[0]
    for i in (0, 7, 22):
        np.testing.assert_allclose(store.read(rows=[i]), ref[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(store.read(), np.concatenate(ref), rtol=1e-5, atol=1e-5)


def test_sentence_pairs_and_layer_subset(tiny_model, tmp_path):
    firsts, seconds = random_texts(12, seed=6), random_texts(12, seed=7)
    store = neurosel.extract(
        list(zip(firsts, seconds, strict=True)),
        str(tiny_model),
        tmp_path / "p.zarr",
        layers=[0, -1],
        dtype="float32",
        device="cpu",
        progress=False,
    )
    assert store.layers == (0, 2) and store.meta["pairs"]
    ref = np.stack(reference_activations(tiny_model, firsts, pairs=seconds))[:, [0, 2]]
    np.testing.assert_allclose(store.read(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        store.read(layers=2, neurons=[1, 5]), ref[:, [1], :][:, :, [1, 5]], rtol=1e-5, atol=1e-6
    )


def test_store_readable_with_plain_zarr(tiny_model, tmp_path):
    texts = random_texts(30, seed=8)
    labels = [i % 3 for i in range(30)]
    store = neurosel.extract(
        texts, str(tiny_model), tmp_path / "s.zarr", labels=labels, device="cpu", progress=False
    )
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    acts = group["activations"]
    assert acts.metadata.dimension_names == ("example", "layer", "neuron")
    assert acts.dtype == np.float16
    np.testing.assert_array_equal(acts[:], store.read())
    np.testing.assert_array_equal(group["labels"][:], labels)
    assert list(group["texts"][:]) == texts
    meta = group.attrs["neurosel"]
    assert meta["complete"] and meta["layers"] == [0, 1, 2] and meta["n"] == 30


def test_rerun_of_complete_store_is_a_noop(tiny_model, tmp_path):
    texts = random_texts(10, seed=9)
    out = tmp_path / "s.zarr"
    neurosel.extract(texts, str(tiny_model), out, device="cpu", progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    neurosel.extract(texts, str(tiny_model), out, device="cpu", progress=False)
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_string_labels_map_to_sorted_class_ids(tiny_model, tmp_path):
    store = neurosel.extract(
        ["good movie", "bad movie", "fun"],
        str(tiny_model),
        tmp_path / "s.zarr",
        labels=["pos", "neg", "pos"],
        device="cpu",
        progress=False,
    )
    assert store.meta["label_names"] == ["neg", "pos"]
    assert list(store.labels) == [1, 0, 1] and store.meta["label_kind"] == "class"


def test_several_sites_from_one_pass_equal_each_site_alone(tiny_model, tmp_path):
    """hidden and ffn in one pass: each store holds what a run of that site alone holds, records its
    site and module, and the FFN site has the blocks 1..L, with the intermediate size as its width."""
    texts = random_texts(30, seed=2)
    common = {"dtype": "float32", "device": "cpu", "progress": False, "token_budget": 96}
    both = neurosel.extract(
        texts, str(tiny_model), tmp_path / "both-{site}.zarr", sites=("hidden", "ffn"), **common
    )
    assert set(both) == {"hidden", "ffn"}
    assert both["hidden"].path.endswith("both-hidden.zarr") and both["ffn"].path.endswith("both-ffn.zarr")
    for site in ("hidden", "ffn"):
        alone = neurosel.extract(texts, str(tiny_model), tmp_path / f"{site}.zarr", sites=site, **common)
        np.testing.assert_array_equal(both[site].read(), alone.read())
        assert both[site].meta["site"] == site and neurosel.verify(both[site]).ok
    ffn = both["ffn"]
    assert ffn.layers == (1, 2) and ffn.hidden == 64  # tiny BERT: 2 blocks, intermediate_size 64
    assert ffn.meta["site_module"] == "encoder.layer.{block}.output.dense:input"
    assert both["hidden"].layers == (0, 1, 2) and both["hidden"].hidden == 32


def test_ffn_layers_count_blocks_from_one(tiny_model, tmp_path):
    common = {"sites": "ffn", "device": "cpu", "progress": False}
    last = neurosel.extract(["a b", "c d"], str(tiny_model), tmp_path / "a.zarr", layers=[-1], **common)
    assert last.layers == (2,)
    with pytest.raises(neurosel.InputError, match=r"layers \[0\]: the model has layers 1..2 at site 'ffn'"):
        neurosel.extract(["a b", "c d"], str(tiny_model), tmp_path / "b.zarr", layers=[0], **common)
    assert not (tmp_path / "b.zarr").exists()


def test_several_sites_need_a_site_placeholder_before_any_work(tiny_model, tmp_path):
    with pytest.raises(
        neurosel.InputError, match=r"2 sites \(hidden, ffn\) need one store each; put '\{site\}'"
    ):
        neurosel.extract(
            ["a b"], str(tiny_model), tmp_path / "s.zarr", sites=("hidden", "ffn"), progress=False
        )
    with pytest.raises(neurosel.InputError, match="sites"):
        neurosel.extract(["a b"], str(tiny_model), tmp_path / "s.zarr", sites="attention", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_site_already_complete_is_kept_while_the_other_is_extracted(tiny_model, tmp_path):
    """A run that adds a site to a finished one: the finished store keeps its bytes (nothing is
    written to it), the new one is extracted in the same pass."""
    from tests.conftest import store_bytes

    texts, out = random_texts(20, seed=3), str(tmp_path / "run-{site}.zarr")
    common = {"device": "cpu", "progress": False, "chunk_rows": 4}
    neurosel.extract(texts, str(tiny_model), out, sites="hidden", **common)
    before = store_bytes(tmp_path / "run-hidden.zarr")
    stores = neurosel.extract(texts, str(tiny_model), out, sites=("hidden", "ffn"), **common)
    assert store_bytes(tmp_path / "run-hidden.zarr") == before
    alone = neurosel.extract(texts, str(tiny_model), tmp_path / "ffn.zarr", sites="ffn", **common)
    np.testing.assert_array_equal(stores["ffn"].read(), alone.read())


def test_every_stage_works_on_an_ffn_store_unchanged(tiny_model, tmp_path):
    """A store of FFN units is a store like any other: statistics, importance, select, fingerprint,
    transfer, verify, xarray and export read it, with its layer ids (1..L) and its width (64)."""
    pytest.importorskip("xarray")
    labels = [i % 2 for i in range(40)]
    common = {"labels": labels, "sites": "ffn", "device": "cpu", "progress": False}
    a = neurosel.extract(random_texts(40, seed=7), str(tiny_model), tmp_path / "a.zarr", **common)
    b = neurosel.extract(random_texts(40, seed=8), str(tiny_model), tmp_path / "b.zarr", **common)
    stats = neurosel.neuron_stats(a, progress=False)
    assert stats.t.shape == (2, 64)
    x = a.read().astype(np.float64).reshape(40, -1)
    y = np.asarray(labels)
    np.testing.assert_allclose(stats.class_mean[1].ravel(), x[y == 1].mean(0), rtol=1e-6, atol=1e-6)
    sel = neurosel.select(neurosel.importance(a, target_support=5), k=5)
    assert sel.neurons.size == 5 and {layer for layer, _ in sel.units()} <= {1, 2}
    result = neurosel.transfer(a, b, k=5, ks=(5,), seeds=1, progress=False)
    assert result is not None
    assert neurosel.verify(a).ok
    ds = a.to_xarray()
    assert list(ds.layer.values) == [1, 2] and ds.sizes["neuron"] == 64
    out = neurosel.export(a, tmp_path / "npy", to="npy", progress=False)
    np.testing.assert_array_equal(np.load(out / "activations.npy"), a.read())
