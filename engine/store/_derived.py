"""Derived results (statistics, importances) kept in sub-groups of the store, keyed by parameters.

A result is written to `<kind>/<key>` with its arrays and a `meta` attribute, and marked
`complete` last: a crash mid-write leaves a group that `load_derived` ignores, and the next run
replaces it. The activations are never touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr


def save_derived(
    store: Any, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write `arrays` and `meta` to `kind/key` of the store, replacing an older result there."""
    parent = zarr.open_group(store.path, mode="r+").require_group(kind)
    if key in parent:
        del parent[key]
    sub = parent.create_group(key)
    for name, values in arrays.items():
        sub.create_array(name, data=np.ascontiguousarray(values))
    sub.attrs["meta"] = meta
    sub.attrs["complete"] = True


def load_derived(store: Any, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta saved under `kind/key`, or None when absent or never completed."""
    group = zarr.open_group(store.path, mode="r")
    if kind not in group or key not in group[kind]:
        return None
    sub = group[f"{kind}/{key}"]
    if not sub.attrs.get("complete"):
        return None
    return {name: sub[name][:] for name in sub.array_keys()}, dict(sub.attrs["meta"])
