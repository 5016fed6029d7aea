"""Stores open in plain xarray and dask: dimension names, coordinates, consolidated metadata, and the
lazy labelled views `ActivationStore.to_xarray` / `to_dask` (bfloat16 decoded)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.store import META_KEY
from tests.conftest import build_store, random_texts

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

N, LAYERS, HIDDEN = 70, (0, 2, 5), 6


@pytest.fixture(params=["float16", "bfloat16"])
def array_store(request, tmp_path):
    """Float32 N(0, 1) values (nothing planted), labelled "neg" on every third row, "pos" otherwise."""
    return build_store(
        tmp_path / f"{request.param}.zarr", n=N, layers=len(LAYERS), hidden=HIDDEN, layer_ids=LAYERS,
        values_dtype="float32", classes=3, cycle=True, label_names=("neg", "pos", "pos"),
        dtype=request.param, chunk_rows=8,
    )  # fmt: skip


def every_array(group: zarr.Group, prefix: str = "") -> dict[str, zarr.Array]:
    found = {f"{prefix}{name}": array for name, array in group.arrays()}
    for name, sub in group.groups():
        found.update(every_array(sub, f"{prefix}{name}/"))
    return found


def test_plain_xarray_opens_an_array_store(array_store):
    ds = xr.open_zarr(array_store.path)  # no neurosel involved: consolidated metadata, default options
    assert dict(ds.sizes) == {"example": N, "layer": 3, "neuron": HIDDEN}
    assert list(ds.layer.values) == list(LAYERS) and list(ds.neuron.values) == list(range(HIDDEN))
    assert ds.labels.dims == ("example",) and ds.lengths.dims == ("example",)
    assert ds.labels.attrs["label_names"] == ["neg", "pos"]
    assert ds.attrs[META_KEY]["layers"] == list(LAYERS)
    raw = ds.activations.sel(layer=2).values
    if array_store.meta["dtype"] == "bfloat16":  # foreign readers see bit patterns and decode them
        assert ds.activations.attrs["storage_dtype"] == "bfloat16" and raw.dtype == np.uint16
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(raw, array_store.read(layers=[2])[:, 0])
    for name, array in every_array(zarr.open_group(array_store.path, mode="r")).items():
        assert array.metadata.dimension_names is not None, name


def test_to_xarray_and_to_dask_decode(array_store):
    ds = array_store.to_xarray()
    acts = ds.activations
    assert acts.chunks is not None  # lazy, dask-backed
    expect = np.float32 if array_store.meta["dtype"] == "bfloat16" else np.float16
    assert acts.dtype == expect
    np.testing.assert_array_equal(acts.values, array_store.read())
    np.testing.assert_array_equal(acts.sel(layer=5).values, array_store.read(layers=[5])[:, 0])
    assert list(ds.example.values) == list(range(N))
    np.testing.assert_array_equal(ds.labels.values, array_store.labels)
    assert ds.labels.attrs["label_names"] == ["neg", "pos"]
    assert list(ds.label_name.values[:3]) == ["neg", "pos", "pos"]
    assert ds.attrs["dtype"] == array_store.meta["dtype"]
    lazy = array_store.to_dask()
    assert isinstance(lazy, da.Array) and lazy.dtype == expect
    np.testing.assert_array_equal(lazy.compute(), array_store.read())
    np.testing.assert_array_equal(lazy[10:30, 1].compute(), array_store.read(rows=slice(10, 30))[:, 1])


def test_an_incomplete_store_shows_committed_rows_only(array_store, tmp_path):
    copy = tmp_path / "partial.zarr"
    shutil.copytree(array_store.path, copy)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs[META_KEY] = {**group.attrs[META_KEY], "rows_committed": 20, "complete": False}
    partial = neurosel.open_store(copy)
    ds = partial.to_xarray()
    assert ds.sizes["example"] == 20 and ds.labels.shape == (20,)
    np.testing.assert_array_equal(ds.activations.values, array_store.read(rows=slice(0, 20)))
    assert partial.to_dask().shape == (20, 3, HIDDEN)


def test_a_store_without_coordinates_still_opens_and_converts(array_store, tmp_path):
    """Stores written before coordinate arrays existed: neurosel and to_xarray build them from the
    attributes."""
    old = tmp_path / "old.zarr"
    shutil.copytree(array_store.path, old)
    shutil.rmtree(old / "layer")
    shutil.rmtree(old / "neuron")
    neurosel.store.consolidate(old)
    store = neurosel.open_store(old)
    ds = store.to_xarray()
    assert list(ds.layer.values) == list(LAYERS)
    np.testing.assert_array_equal(ds.activations.values, store.read())


def test_missing_xarray_is_an_input_error(array_store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "xarray", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(neurosel.InputError, match="pip install"):
        array_store.to_xarray()
    with pytest.raises(neurosel.InputError, match="pip install"):
        array_store.to_dask()


@pytest.fixture(scope="module")
def extracted(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "s.zarr"
    texts = random_texts(40, seed=3)
    labels = [("good", "bad", "meh")[i % 3] for i in range(40)]
    return neurosel.extract(texts, str(tiny_model), out, labels=labels, progress=False, device="cpu")


def test_plain_xarray_opens_an_extracted_store(extracted):
    ds = xr.open_zarr(extracted.path)
    assert list(ds.layer.values) == list(extracted.layers) and ds.sizes["neuron"] == extracted.hidden
    np.testing.assert_array_equal(ds.activations.sel(layer=1).values, extracted.read(layers=[1])[:, 0])
    assert ds.labels.dims == ("example",) and ds.texts.dims == ("example",)
    assert list(ds.texts.values) == list(extracted.texts)
    view = extracted.to_xarray()
    assert list(view.texts.values) == list(extracted.texts)
    np.testing.assert_array_equal(view.lengths.values, extracted.lengths)


def test_token_store_dimensions(tiny_model, tmp_path):
    texts = random_texts(12, seed=4)
    store = neurosel.extract(
        texts, str(tiny_model), tmp_path / "t.zarr", pooling="tokens", progress=False, device="cpu"
    )
    ds = xr.open_zarr(store.path)
    assert ds.token_activations.dims == ("token", "layer", "neuron")
    assert ds.offsets.dims == ("example_edge",) and ds.sizes["example_edge"] == 13
    view = store.to_xarray()
    np.testing.assert_array_equal(view.token_activations.values, store.read())
    np.testing.assert_array_equal(np.bincount(view.token_example.values), store.lengths)


def test_derived_results_open_labelled_and_stay_fresh(extracted, tmp_path):
    path = tmp_path / "d.zarr"
    shutil.copytree(extracted.path, path)
    store = neurosel.open_store(path)
    stats = neurosel.neuron_stats(store, device="cpu", progress=False)
    key = stats.meta["key"]
    ds = xr.open_zarr(str(path), group=f"stats/{key}")
    assert list(ds.layer.values) == list(store.layers) and ds.sizes["neuron"] == store.hidden
    assert ds["mean"].dims == ("layer", "neuron") and ds["class_mean"].dims == ("class", "layer", "neuron")
    assert ds.classes.dims == ("class",)
    np.testing.assert_array_equal(ds.anova_f.sel(layer=1).values, stats.anova_f[1])
    assert ds.attrs["complete"] is True
    assert xr.open_zarr(str(path)).sizes["example"] == store.n  # the root still opens
    for name, array in every_array(zarr.open_group(str(path), mode="r")).items():
        assert array.metadata.dimension_names is not None, name

    # A second result saved after consolidation: both neurosel and xarray see it at once.
    again = neurosel.neuron_stats(store, device="cpu", progress=False, recompute=True)
    assert again.meta["seconds"] != stats.meta["seconds"]
    loaded = neurosel.neuron_stats(neurosel.open_store(path), device="cpu", progress=False)
    assert loaded.meta["seconds"] == again.meta["seconds"]
    imp = neurosel.importance(store, n_lambdas=5, lambda_ratio=0.1, device="cpu")
    di = xr.open_zarr(str(path), group=f"importance/{imp.meta['key']}")
    assert di.coef.dims == ("lambda", "output", "layer", "neuron") and di.ranking.dims == ("rank",)
    assert di.intercept.dims == ("lambda", "output") and di.scores.dims == ("layer", "neuron")


def test_stale_consolidated_metadata_never_misleads_neurosel(extracted, tmp_path):
    """A derived group deleted behind neurosel's back: the consolidated copy still lists it, but
    neurosel reads the groups themselves and recomputes."""
    path = tmp_path / "stale.zarr"
    shutil.copytree(extracted.path, path)
    store = neurosel.open_store(path)
    first = neurosel.neuron_stats(store, device="cpu", progress=False)
    shutil.rmtree(path / "stats" / first.meta["key"])  # consolidated metadata now lists a ghost
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = neurosel.neuron_stats(neurosel.open_store(path), device="cpu", progress=False)
    assert again.meta["seconds"] != first.meta["seconds"]  # recomputed, not "loaded" from a ghost
    np.testing.assert_array_equal(again.mean, first.mean)
    ds = xr.open_zarr(str(path), group=f"stats/{again.meta['key']}")  # the save refreshed it
    np.testing.assert_array_equal(ds["mean"].values, again.mean)
