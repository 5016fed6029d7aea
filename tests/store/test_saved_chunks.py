"""Saved results are chunked by rows only, so the manifest's row units cover every file: a result
whose arrays zarr would split along other axes (a three-class path, a model with many layers)
reads back; one saved that way by an older writer is recomputed, never read unchecked."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import neurosel
from neurosel.store import _derived, load_derived, save_derived
from tests.conftest import build_store

SHAPES = [(21, 3, 7, 384), (21, 1, 26, 384), (5, 26, 384)]  # zarr's own guess splits each of these


@pytest.fixture
def wide_store(tmp_path):
    return build_store(tmp_path / "s.zarr", n=12, layers=26, hidden=384, seed=0)


def test_arrays_zarr_would_split_across_axes_read_back(wide_store):
    rng = np.random.default_rng(0)
    arrays = {f"a{i}": rng.standard_normal(shape) for i, shape in enumerate(SHAPES)}
    save_derived(wide_store, "importance", "k-1", arrays, {"note": "wide"})
    back, meta = load_derived(wide_store, "importance", "k-1")
    for name, values in arrays.items():
        np.testing.assert_array_equal(back[name], values)
        array = zarr.open_group(wide_store.path, mode="r")[f"importance/k-1/{name}"]
        assert array.chunks[1:] == array.shape[1:]
    assert meta["note"] == "wide" and neurosel.verify(wide_store.path).problems == []


def test_a_result_split_across_axes_by_an_older_writer_is_recomputed(wide_store, monkeypatch):
    values = np.arange(np.prod(SHAPES[0]), dtype=np.float64).reshape(SHAPES[0])
    with monkeypatch.context() as m:  # the writer before row chunks: zarr's own chunk guess
        m.setattr(_derived, "row_chunks", lambda shape, itemsize: "auto")
        save_derived(wide_store, "importance", "old", {"coef": values}, {})
    array = zarr.open_group(wide_store.path, mode="r")["importance/old/coef"]
    assert array.chunks[1:] != array.shape[1:]  # split, as zarr guesses
    assert load_derived(wide_store, "importance", "old") is None  # absent to its readers: recomputed
    save_derived(wide_store, "importance", "old", {"coef": values}, {})  # the recompute replaces it
    np.testing.assert_array_equal(load_derived(wide_store, "importance", "old")[0]["coef"], values)


def test_a_three_class_path_on_all_minilm_widths_is_read_back(tmp_path):
    """The failure that found this: a saved 3-class path of 7 × 384 neurons could not be read."""
    store = build_store(
        tmp_path / "t.zarr", n=90, layers=7, hidden=384, seed=1, classes=3, cycle=True,
        planted=[5, 900, 2000], effect=2.0, signed=False,
    )  # fmt: skip
    options = {"device": "cpu", "progress": False}  # the whole 20-λ path: (21, 3, 7, 384) weights
    first = neurosel.importance(store, **options)
    with neurosel.timing.record() as stages:
        again = neurosel.importance(neurosel.open_store(store.path), **options)
    assert "sparse path solved" not in stages  # read back, not solved again
    np.testing.assert_array_equal(again.coef, first.coef)
    assert neurosel.verify(store.path).problems == []
