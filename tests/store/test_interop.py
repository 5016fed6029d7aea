"""Stores open in plain xarray and dask: dimension names, coordinates (the per-example arrays too,
through the CF `coordinates` attribute), consolidated metadata, and the lazy labelled views
`ActivationStore.to_xarray` / `to_dask` (bfloat16 decoded)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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
# Dimensions that derived arrays may have (never the generic `<name>_<i>`).
DERIVED_DIMS = {"layer", "neuron", "class", "lambda", "output", "rank"}


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
    assert set(ds.coords) == {"layer", "neuron", "labels", "label_name", "lengths"}
    assert list(ds.data_vars) == ["activations"]
    assert {"labels", "label_name", "lengths"} <= set(ds.activations.coords)
    assert ds.labels.dims == ("example",) and ds.lengths.dims == ("example",)
    assert ds.labels.attrs["label_names"] == ["neg", "pos"]
    np.testing.assert_array_equal(ds.labels.values, array_store.labels)
    assert list(ds.label_name.values) == [("neg", "pos")[y] for y in array_store.labels]
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
    # The same coordinates and variables as plain xarray (plus the computed row positions).
    plain = xr.open_zarr(array_store.path)
    assert set(ds.coords) == set(plain.coords) | {"example"} and set(ds.data_vars) == set(plain.data_vars)
    means = ds.groupby("labels").mean()  # the labels are in memory here: no loading step
    exact = ds.activations.astype(np.float64).groupby("labels").mean()
    x = array_store.read().astype(np.float64)
    for c in (0, 1):
        reference = x[array_store.labels == c].mean(0)
        np.testing.assert_allclose(exact.sel(labels=c).values, reference, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            means.activations.sel(labels=c).values, reference, atol=1e-2
        )  # float16 sums
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
    group = zarr.open_group(str(old), mode="r+", use_consolidated=False)
    manifest = dict(group.attrs["neurosel_manifest"])
    for name in ("layer", "neuron"):  # as such a store was written: no arrays, no manifest entries
        shutil.rmtree(old / name)
        del manifest[name]
        manifest["_metadata"] = {k: v for k, v in manifest["_metadata"].items() if k != f"{name}/zarr.json"}
    group.attrs["neurosel_manifest"] = manifest
    neurosel.store.consolidate(old)
    store = neurosel.open_store(old)
    ds = store.to_xarray()
    assert list(ds.layer.values) == list(LAYERS)
    np.testing.assert_array_equal(ds.activations.values, store.read())


# Run by a fresh interpreter that never imports neurosel: what any xarray user gets from a store.
PLAIN_XARRAY = """
import json, sys
import numpy as np
import xarray as xr

path, out = sys.argv[1], {}
for consolidated in (True, False):
    ds = xr.open_zarr(path, consolidated=consolidated)
    # xarray groups only by keys in memory; open_zarr makes every non-index coordinate a dask
    # array, so the labels are computed (n int64s) and the activations stay lazy.
    means = ds.groupby(ds.labels.compute()).mean()
    exact = ds.activations.astype("float64").groupby(ds.labels.compute()).mean()
    by_name = ds.groupby(ds.label_name.compute()).mean()
    out[str(consolidated)] = {
        "coords": sorted(map(str, ds.coords)),
        "data_vars": sorted(map(str, ds.data_vars)),
        "activation_coords": sorted(map(str, ds.activations.coords)),
        "labels": ds.labels.values.tolist(),
        "means_labels": means.labels.values.tolist(),
        "means": means.activations.values.astype("float64").tolist(),
        "exact": exact.values.tolist(),
        "lazy": type(means.activations.data).__module__,
        "names": [str(x) for x in by_name.label_name.values],
        "by_name": by_name.activations.values.astype("float64").tolist(),
        "layer5": ds.activations.sel(layer=5).values.astype("float64").tolist(),
    }
out["neurosel_imported"] = any(name.split(".")[0] == "neurosel" for name in sys.modules)
print(json.dumps(out))
"""


def test_plain_xarray_in_a_fresh_process_groups_by_labels(tmp_path):
    """Plain xarray, in a process without neurosel, both with and without consolidated metadata:
    the per-example arrays are coordinates, per-label means equal numpy's float64 means, and layers
    are selected by model layer id."""
    store = build_store(
        tmp_path / "g.zarr", n=N, layers=len(LAYERS), hidden=HIDDEN, layer_ids=LAYERS,
        values_dtype="float32", classes=3, cycle=True, label_names=("neg", "pos", "mid"),
        dtype="float32", chunk_rows=8, planted=[2], effect=2.0,
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", PLAIN_XARRAY, store.path], capture_output=True, text=True, check=True
    )
    found = json.loads(run.stdout)
    assert found.pop("neurosel_imported") is False
    x, y = store.read().astype(np.float64), store.labels
    names = store.meta["label_names"]  # sorted: mid, neg, pos
    reference = np.stack([x[y == c].mean(0) for c in range(3)])
    for view in found.values():
        assert view["coords"] == ["label_name", "labels", "layer", "lengths", "neuron"]
        assert view["data_vars"] == ["activations"]
        assert view["activation_coords"] == ["label_name", "labels", "layer", "lengths", "neuron"]
        assert view["labels"] == y.tolist() and view["means_labels"] == [0, 1, 2]
        assert view["lazy"].startswith("dask")
        np.testing.assert_allclose(view["exact"], reference, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(view["means"], reference, rtol=1e-5, atol=1e-6)  # float32 sums
        assert view["names"] == sorted(names)
        np.testing.assert_allclose(view["by_name"], reference[np.argsort(names)], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(view["layer5"], x[:, LAYERS.index(5)])


def test_a_store_written_before_the_coordinates_attribute_still_works(array_store, tmp_path):
    """A store as the writer made it before labels became coordinates: no `coordinates` attribute on
    the activations, no `label_name` array, and a manifest recording those files. neurosel opens
    and verifies it unchanged; `to_xarray` gives the same coordinates; plain xarray shows the side
    arrays as variables, as it always did."""
    old = tmp_path / "before.zarr"
    shutil.copytree(array_store.path, old)
    group = zarr.open_group(str(old), mode="r+", use_consolidated=False)
    acts = group["activations"]
    attrs = dict(acts.attrs)
    assert attrs.pop("coordinates") == "labels label_name lengths"
    acts.attrs.clear()
    acts.update_attributes(attrs)
    del group["label_name"]
    manifest = dict(group.attrs["neurosel_manifest"])
    del manifest["label_name"]
    recorded = dict(manifest["_metadata"])
    del recorded["label_name/zarr.json"]
    recorded["activations/zarr.json"] = neurosel.store._integrity.record_file(
        group.store, "activations/zarr.json"
    )
    manifest["_metadata"] = recorded
    group.attrs["neurosel_manifest"] = manifest
    neurosel.store.consolidate(old)

    store = neurosel.open_store(old)
    report = neurosel.verify(store)
    assert report.ok, report.problems
    np.testing.assert_array_equal(store.read(), array_store.read())
    ds = store.to_xarray()
    assert set(ds.coords) == {"example", "layer", "neuron", "labels", "label_name", "lengths"}
    assert list(ds.label_name.values) == [("neg", "pos")[y] for y in store.labels]
    plain = xr.open_zarr(str(old))
    assert {"labels", "lengths"} <= set(plain.data_vars)


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


@pytest.mark.parametrize("consolidated", [True, False])
def test_plain_xarray_opens_an_extracted_store(extracted, consolidated):
    ds = xr.open_zarr(extracted.path, consolidated=consolidated)
    assert list(ds.layer.values) == list(extracted.layers) and ds.sizes["neuron"] == extracted.hidden
    np.testing.assert_array_equal(ds.activations.sel(layer=1).values, extracted.read(layers=[1])[:, 0])
    side = {"labels", "label_name", "lengths", "texts"}
    assert set(ds.coords) == side | {"layer", "neuron"} and list(ds.data_vars) == ["activations"]
    assert side <= set(ds.activations.coords)
    assert ds.labels.dims == ("example",) and ds.texts.dims == ("example",)
    assert list(ds.texts.values) == list(extracted.texts)
    assert list(ds.label_name.values) == [("good", "bad", "meh")[i % 3] for i in range(40)]
    view = extracted.to_xarray()
    assert set(view.coords) == set(ds.coords) | {"example"} and set(view.data_vars) == set(ds.data_vars)
    assert list(view.texts.values) == list(extracted.texts)
    np.testing.assert_array_equal(view.lengths.values, extracted.lengths)
    np.testing.assert_array_equal(view.label_name.values, ds.label_name.values)


def test_sentence_pairs_are_coordinates_too(tiny_model, tmp_path):
    firsts, seconds = random_texts(9, seed=8), random_texts(9, seed=9)
    store = neurosel.extract(
        list(zip(firsts, seconds, strict=True)),
        str(tiny_model),
        tmp_path / "p.zarr",
        progress=False,
        device="cpu",
    )
    ds = xr.open_zarr(store.path)
    assert {"texts", "texts_pair", "lengths"} <= set(ds.activations.coords)
    assert list(ds.texts_pair.values) == seconds
    assert set(store.to_xarray().coords) == set(ds.coords) | {"example"}


def test_token_store_dimensions(tiny_model, tmp_path):
    """Token pooling: no data variable has the `example` dimension, so the per-example coordinates
    are named by the root group's `coordinates` attribute (as xarray writes such coordinates)."""
    texts = random_texts(12, seed=4)
    store = neurosel.extract(
        texts, str(tiny_model), tmp_path / "t.zarr", labels=[i % 2 for i in range(12)],
        pooling="tokens", progress=False, device="cpu",
    )  # fmt: skip
    for consolidated in (True, False):
        ds = xr.open_zarr(store.path, consolidated=consolidated)
        assert ds.token_activations.dims == ("token", "layer", "neuron")
        assert ds.offsets.dims == ("example_edge",) and ds.sizes["example_edge"] == 13
        assert set(ds.coords) == {"labels", "lengths", "texts", "layer", "neuron"}
        assert set(ds.data_vars) == {"token_activations", "offsets"} and "coordinates" not in ds.attrs
    view = store.to_xarray()
    assert set(view.coords) == set(ds.coords) | {"example", "token_example"}
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


def test_every_derived_group_opens_in_plain_xarray_both_ways(extracted, tmp_path):
    """Statistics (by label and unlabelled), an importance path and stability frequencies (both saved
    by a stability-ranked fingerprint): every group under the store opens with
    `xarray.open_zarr(path, group=...)`, from consolidated metadata or not, with the same arrays,
    named dimensions on every one, and the `layer`/`neuron` coordinates."""
    path = tmp_path / "all.zarr"
    shutil.copytree(extracted.path, path)
    store = neurosel.open_store(path)
    neurosel.neuron_stats(store, device="cpu", progress=False)
    neurosel.neuron_stats(store, by=None, device="cpu", progress=False)
    neurosel.fingerprint(
        [store, store.path],
        k=4,
        names=["a", "b"],
        ranking="stability",
        device="cpu",
        n_lambdas=5,
        lambda_ratio=0.1,
    )
    root = zarr.open_group(str(path), mode="r", use_consolidated=False)
    results = [f"{kind}/{key}" for kind, group in root.groups() for key, _ in group.groups()]
    assert {r.split("/")[0] for r in results} == {"stats", "importance", "stability"} and len(results) >= 4
    for result in results:
        arrays = set(root[result].array_keys()) - {"layer", "neuron"}
        for consolidated in (True, False):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no "failed to open with consolidated metadata"
                ds = xr.open_zarr(str(path), group=result, consolidated=consolidated)
            assert set(ds.data_vars) == arrays, result
            assert list(ds.layer.values) == list(store.layers) and ds.sizes["neuron"] == store.hidden
            for name, variable in ds.data_vars.items():
                assert set(variable.dims) <= DERIVED_DIMS, (result, name, variable.dims)
            assert ds.attrs["complete"] is True
    assert neurosel.verify(store).ok


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
