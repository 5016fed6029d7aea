"""The source side of a transfer saved in the source store: a re-run reads its classifiers back and
returns the first run's rows exactly; anything that changes a fit computes it anew."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeCV

import neurosel
from neurosel.crossdomain import fit_classifier
from neurosel.crossdomain._saved_fits import FITS, FITS_STAGE, content_digest
from neurosel.errors import DamagedStoreError
from tests.conftest import build_store, planted_arrays

LAYERS, HIDDEN = 2, 12
PLANTED = [3, 15, 20]


def domain(path: Path, seed: int, **draws) -> neurosel.ActivationStore:
    draws = {"planted": PLANTED, "effect": [1.0, 0.8, 0.6], "labels_first": True, **draws}
    return build_store(path, n=draws.pop("n", 240), layers=LAYERS, hidden=HIDDEN, seed=seed, **draws)


def solved_twice(source: Path, target: Path, **options):
    """Two transfer calls on stores reopened each time, as two processes would: (result, stages) each."""
    runs = []
    for _ in range(2):
        with neurosel.timing.record() as stages:
            result = neurosel.transfer(neurosel.open_store(source), neurosel.open_store(target), **options)
        runs.append((result, dict(stages)))
    return runs


@pytest.mark.parametrize(
    "draws, options",
    [
        ({}, {"sklearn_baseline": True}),  # binary, the scikit-learn recipe's own fits too
        ({"classes": 3, "cycle": True, "signed": False, "effect": 2.0}, {}),  # multinomial
        ({"numeric": True, "noise": 0.3}, {}),  # ridge, correlations
        ({}, {"in_core_bytes": 21_000}),  # streamed: the store is 23,040 bytes as float32
    ],
    ids=["binary", "three-classes", "numeric", "streamed"],
)
def test_a_re_run_reads_the_classifiers_back_and_returns_the_same_rows(tmp_path, draws, options):
    source, target = domain(tmp_path / "s.zarr", 1, **draws), domain(tmp_path / "t.zarr", 2, **draws)
    (first, before), (again, after) = solved_twice(
        source.path, target.path, k=3, ks=[3, 10], seeds=2, **options
    )
    assert FITS_STAGE in before and FITS_STAGE not in after
    assert again.rows == first.rows and again.meta == first.meta
    assert (Path(source.path) / "classifiers").is_dir() and not (Path(target.path) / "classifiers").exists()


def test_the_cls_baseline_is_saved_in_its_own_store(tmp_path):
    stores = {name: domain(tmp_path / f"{name}.zarr", seed) for name, seed in (("s", 1), ("t", 2))}
    cls = {name: domain(tmp_path / f"{name}-cls.zarr", seed + 10).path for name, seed in (("s", 1), ("t", 2))}
    call = {"names": ["s", "t"], "cls": cls, "k": 3, "ks": [3], "seeds": 2}
    (first, before), (again, after) = solved_twice(stores["s"].path, stores["t"].path, **call)
    assert FITS_STAGE in before and FITS_STAGE not in after and again.rows == first.rows
    assert "last_cls" in first.rows[0]["scores"]
    assert (Path(cls["s"]) / "classifiers").is_dir()


def test_what_changes_a_fit_computes_it_anew(tmp_path):
    source, target = domain(tmp_path / "s.zarr", 1), domain(tmp_path / "t.zarr", 2)
    base = {"k": 3, "ks": [3, 10], "seeds": 2}
    for options in (base, {**base, "seed": 1}, {**base, "ks": [3, 30]}, {**base, "seeds": 3}):
        with neurosel.timing.record() as stages:
            neurosel.transfer(source.path, target.path, **options)
        assert FITS_STAGE in stages, options  # each a new key: nothing to read back
    with neurosel.timing.record() as stages:  # the importance option recompute: fitted anew
        fresh = neurosel.transfer(source.path, target.path, importance_options={"recompute": True}, **base)
    assert FITS_STAGE in stages
    with neurosel.timing.record() as stages:
        again = neurosel.transfer(source.path, target.path, **base)
    assert FITS_STAGE not in stages and again.rows == fresh.rows


def test_several_sources_are_read_back_from_the_first_unless_another_changed(tmp_path):
    """Fits on several sources are saved in the first (each source's scenario fits in itself); the
    others enter the key by content, so a re-extracted second source (same path, same labels,
    other activations) is fitted anew."""
    a, b, t = (domain(tmp_path / f"{n}.zarr", s) for n, s in (("a", 1), ("b", 2), ("t", 3)))
    call = {"k": 3, "ks": [3], "seeds": 2}
    runs = []
    for _ in range(2):
        with neurosel.timing.record() as stages:
            runs.append((neurosel.transfer([a.path, b.path], t.path, **call), dict(stages)))
    (first, before), (again, after) = runs
    assert FITS_STAGE in before and FITS_STAGE not in after
    assert again.rows == first.rows and again.meta == first.meta
    assert (Path(a.path) / "classifiers").is_dir()
    before_b = neurosel.open_store(b.path)
    shutil.rmtree(b.path)
    changed = domain(tmp_path / "b.zarr", 2, effect=[0.9, 0.7, 0.5])
    np.testing.assert_array_equal(changed.labels, before_b.labels)
    with neurosel.timing.record() as stages:
        neurosel.transfer([a.path, b.path], t.path, **call)
    assert FITS_STAGE in stages


def test_content_digest_names_the_activations_not_the_path(tmp_path):
    """Same values at another path: the same digest; two rows of one class swapped (same labels,
    the same statistics up to rounding): another."""
    x, y = planted_arrays(n=60, layers=LAYERS, hidden=HIDDEN, seed=4, planted=PLANTED, effect=[1.0] * 3)
    i, j = np.flatnonzero(y == y[0])[:2]
    swapped = x.copy()
    swapped[[i, j]] = x[[j, i]]
    one = neurosel.store_from_array(tmp_path / "one.zarr", x, labels=y)
    copy = neurosel.store_from_array(tmp_path / "copy.zarr", x, labels=y)
    other = neurosel.store_from_array(tmp_path / "other.zarr", swapped, labels=y)
    assert content_digest(one) == content_digest(copy) == content_digest(neurosel.open_store(one.path))
    assert content_digest(other) != content_digest(one)


@pytest.mark.parametrize("classes", [2, 3, 0])
def test_restored_models_predict_exactly_as_the_fitted_ones(classes):
    """A fit written to arrays and read back predicts what scikit-learn's own fitted model predicts,
    bit for bit, on new rows."""
    rng = np.random.default_rng(classes)
    z, z_new = rng.normal(size=(150, 7)), rng.normal(size=(60, 7)).astype(np.float32)
    y = rng.integers(0, classes, 150) if classes else z[:, 0] + 0.1 * rng.normal(size=150)
    fits = {"all": fit_classifier(z, y, "class" if classes else "numeric"), ("random", 3, 1): None}
    fits[("random", 3, 1)] = fit_classifier(z[:, :3], y, "class" if classes else "numeric", seed=1)
    back = FITS.from_arrays(*FITS.to_arrays(fits, None), None)
    assert list(back) == list(fits)
    for key, fitted in fits.items():
        assert isinstance(fitted.model, LogisticRegression | RidgeCV)
        cols = z_new if key == "all" else z_new[:, :3]
        np.testing.assert_array_equal(back[key].model.predict(cols), fitted.model.predict(cols))
        np.testing.assert_array_equal(back[key].decision(cols), fitted.decision(cols))
        assert back[key].cv_score == fitted.cv_score
        np.testing.assert_array_equal(back[key].coef, fitted.coef)


def test_a_damaged_saved_fit_is_named_not_read(tmp_path):
    source, target = domain(tmp_path / "s.zarr", 1), domain(tmp_path / "t.zarr", 2)
    neurosel.transfer(source.path, target.path, k=3, ks=[3], seeds=2)
    (saved,) = (p for p in (Path(source.path) / "classifiers").iterdir() if p.is_dir())
    chunk = max((f for f in (saved / "weights").rglob("*") if f.is_file() and f.name != "zarr.json"),
                key=lambda f: f.stat().st_size)  # fmt: skip
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError, match=r"classifiers/fits-[0-9a-f]{12}.*--recompute"):
        neurosel.transfer(source.path, target.path, k=3, ks=[3], seeds=2)
    report = neurosel.verify(source.path)
    assert any("classifiers/" in problem for problem in report.problems)
