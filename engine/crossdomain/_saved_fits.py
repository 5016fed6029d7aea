"""The source side of a transfer, saved: every classifier a transfer fits on one store, kept in that
store (`classifiers/<key>`) and read back by a later transfer that would fit the same ones.

The fits are the dense classifiers of the evaluation (a C search each, 44 of them in a default
single-source job) and were, once the paths and statistics were saved, nearly all of a re-run's
time. What a fit sees is fixed by its key: the store (the result lives in it), its labels and the
rows used (hashed), the statistics its columns were standardised with (hashed: statistics computed
on another device may differ in their last bits), every fit's columns and model, the seed, the
classifier's settings and scikit-learn's version (another version may converge elsewhere). A fit's
result does not depend on the thread it ran on (each runs on one BLAS thread), so a read-back fit
predicts exactly what a new one would: the rows of a re-run equal the first run's (tested).

Training sets that span several stores (several sources standardised together) are saved in the
first source store, and their key also names the other stores by content: each one's manifest
entries for its activation files (every file's size and checksum, checked on every read) and the
metadata that shapes them. A store without a manifest (format 1) cannot be named so: its fits are
computed every time. A three-source job's re-run fitted its 44 classifiers again: 20.9 of its 23.6 s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neurosel.crossdomain._classifier import SETTINGS, Fitted, parameters, restore
from neurosel.crossdomain._domains import Activations
from neurosel.store import cached, derived_key
from neurosel.timing import stage

FITS_STAGE = "classifiers solved"  # neurosel.timing's stage while fits are computed (not read back)

FitKey = Any  # a fit's key in the evaluation: a string or a tuple of strings, ints and None
Jobs = dict[FitKey, tuple[str, np.ndarray]]  # per fit: (model name, the columns it is fitted on)


def digest(*arrays: np.ndarray) -> str:
    """The SHA-1 of arrays' dtypes, shapes and bytes: what a key records of data too large for JSON."""
    sha = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        sha.update(f"{a.dtype.str}{a.shape}".encode())
        sha.update(a.tobytes())
    return sha.hexdigest()


class FitsKind:
    """The classifiers of one training side as a derived result (neurosel.store.ResultKind): every
    fit's weights one after another (`weights`, each (K or 1, its columns) row-major), its intercepts
    (`intercepts`), CV scores (`cv_score`, one per fit), the `classes`, and in the meta each fit's
    key and weight shape, in the same order."""

    kind = "classifiers"

    def key(self, params: Mapping[str, Any]) -> str:
        return derived_key("fits", params)

    def to_arrays(self, fits: dict[FitKey, Fitted], store: Any) -> tuple[dict, dict]:
        coefs, intercepts, shapes, classes = [], [], [], None
        for fitted in fits.values():
            coef, intercept, classes = parameters(fitted)
            coefs.append(coef.ravel())
            intercepts.append(intercept)
            shapes.append(list(coef.shape))
        arrays = {
            "weights": np.concatenate(coefs),
            "intercepts": np.concatenate(intercepts),
            "cv_score": np.array([f.cv_score for f in fits.values()], dtype=np.float64),
        }
        kind = next(iter(fits.values())).kind  # every fit of a training side has the labels' kind
        meta = {"fits": [_to_json(key) for key in fits], "shapes": shapes, "label_kind": kind}
        if classes is not None:  # an array, so that the classes keep their dtype
            arrays["classes"] = classes
        return arrays, meta

    def from_arrays(self, arrays: dict, meta: dict, store: Any) -> dict[FitKey, Fitted]:
        fits, at, at_intercept = {}, 0, 0
        classes = arrays.get("classes")
        for key, (rows, cols), score in zip(meta["fits"], meta["shapes"], arrays["cv_score"], strict=True):
            coef = arrays["weights"][at : at + rows * cols].reshape(rows, cols)
            intercept = arrays["intercepts"][at_intercept : at_intercept + rows]
            at, at_intercept = at + rows * cols, at_intercept + rows
            fits[_from_json(key)] = restore(meta["label_kind"], coef, intercept, classes, float(score))
        return fits


FITS = FitsKind()


def saved_fits(
    domains: list[Activations],
    stats: list[tuple[np.ndarray, np.ndarray]],
    rows: list[np.ndarray] | None,
    seed: int,
    jobs: Jobs,
    compute: Callable[[], dict[FitKey, Fitted]],
    recompute: bool = False,
) -> dict[FitKey, Fitted]:
    """The fits `jobs` describe on `domains` standardised with `stats` (on `rows`, None: all):
    read back from the first domain's store when saved there before, else `compute()` (then saved
    there). Other domains' stores enter the key by content (`content_digest`)."""

    def fitted(_key: str | None = None) -> dict[FitKey, Fitted]:
        with stage(FITS_STAGE):
            return compute()

    others = [content_digest(d.store) for d in domains[1:]]
    if not jobs or None in others:
        return fitted()
    d = domains[0]
    described = [[_to_json(key), model, digest(cols)] for key, (model, cols) in jobs.items()]
    params = {
        "classifier": SETTINGS, "label_kind": d.kind, "seed": int(seed),
        "labels": digest(*(domain.y for domain in domains)),
        "standardise": digest(*(a for pair in stats for a in pair)),
        "rows": None if rows is None else digest(*rows),
        "fits": hashlib.sha1(json.dumps(described).encode()).hexdigest(),
    }  # fmt: skip
    if others:  # a single store's key is as it was before several were saved
        params["stores"] = others
    return cached(d.store, FITS, params, fitted, recompute=recompute)


CONTENT_META = (
    "model_id",
    "weights_hash",
    "inputs_hash",
    "layers",
    "hidden",
    "dtype",
    "pooling",
    "rows_committed",
)


def content_digest(store: Any) -> str | None:
    """A SHA-1 naming a store's activations without reading them: the manifest's entries for its
    activation files (each file's size and checksum, which every read checks) and the metadata
    that shapes them (CONTENT_META). None for a store whose manifest does not record them."""
    manifest = store.manifest
    entries = None if manifest is None else manifest.get(store.activations.path)
    if entries is None:
        return None
    named = [{key: store.meta.get(key) for key in CONTENT_META}, entries]
    return hashlib.sha1(json.dumps(named, sort_keys=True).encode()).hexdigest()


def _to_json(key: FitKey) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _from_json(key: Any) -> FitKey:
    return tuple(key) if isinstance(key, list) else key


def has_saved_fits(store: Any) -> bool:
    """Whether a store holds classifiers a transfer saved: a cheap listing, before any key is known
    (a re-run's fits are likely read back; each is still checked against its key when read)."""
    try:
        return FITS.kind in store.group
    except Exception:  # a store whose listing fails: as if none were saved
        return False
