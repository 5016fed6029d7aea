"""`verify`: check every file of a store against what its commits recorded, and report each problem.

Reads everything once: the metadata and its agreement with the arrays' shapes, every activation
file of the committed rows (presence, size and CRC-32 against the manifest, then a decode, which
checks each chunk's CRC32C), every per-example and coordinate array, and every derived result
(statistics, importances) that neurosel would reuse. Incomplete derived results are listed as
notes: neurosel ignores them and recomputes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import zarr
from zarr.core.sync import sync

from neurosel.errors import InputError
from neurosel.params import PathLike, validated
from neurosel.store._derived import TEMPORARY
from neurosel.store._format import activation_array
from neurosel.store._integrity import (
    MANIFEST_KEY,
    METADATA_KEY,
    algorithm_of,
    array_entries,
    verify_array,
    verify_files,
)
from neurosel.store._reader import DERIVED_GROUPS, ActivationStore, open_store


@dataclass
class VerifyReport:
    """What `verify` found: `problems` (damage: the store cannot be trusted), `notes` (harmless), and
    how many arrays and files it checked."""

    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    arrays: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# The option of `verify` (neurosel.params): a store or its path, checked before anything is read.
VERIFY_PARAMS = {"store": PathLike(store=True, fix="pass the store's directory or an open store")}


@validated(VERIFY_PARAMS)
def verify(store: ActivationStore | str | Path) -> VerifyReport:
    """Every problem of a store, each a line naming the array, the file and its rows."""
    path = store.path if isinstance(store, ActivationStore) else str(store)
    report = VerifyReport(path)
    try:
        opened = open_store(store)
    except InputError as e:  # the metadata itself is damaged: nothing further can be trusted
        report.problems.append(str(e))
        return report
    where = f"store {path}"
    manifest = opened.manifest
    if manifest is None:
        report.notes.append(f"{where}: format 1 store, no manifest: file sizes and checksums unchecked")
    meta = opened.meta
    if opened.complete and opened.rows_committed != opened.n:
        report.problems.append(
            f"{where}: marked complete with {opened.rows_committed} of {opened.n} rows committed"
        )
    store = opened.group.store  # every file is read here as it is, and checked below
    group = zarr.open_group(getattr(store, "unchecked", store), mode="r", use_consolidated=False)
    main = activation_array(meta["pooling"])
    try:
        committed = opened.activation_rows(opened.rows_committed)
    except InputError as e:
        report.problems.append(str(e))
        committed = 0
    _check(report, group[main], manifest, where, committed)
    arrays, groups = _members(group)
    for name in sorted(arrays - {main}):
        _check(report, group[name], manifest, where, None)
    files = (manifest or {}).get(METADATA_KEY, {})
    report.problems.extend(verify_files(group.store, files, where, algorithm_of(manifest)))
    for name in sorted(set(array_entries(manifest)) - arrays - {main}):
        report.problems.append(f"{where}: the {name!r} array is missing or unreadable, though it was written")
    for kind in DERIVED_GROUPS:
        if kind not in groups:
            continue
        listed = _listed(group, kind)
        for key in sorted(k for k in listed if k.startswith(TEMPORARY)):
            report.notes.append(
                f"{where}: {kind}/{key} is a save that was interrupted (ignored; removed by the next save)"
            )
        listed = {k for k in listed if not k.startswith(TEMPORARY)}
        readable = {key for key in listed if _is_group(group, f"{kind}/{key}")}
        for key in sorted(listed - readable):
            report.problems.append(
                f"{where}: saved result {kind}/{key} cannot be read (its zarr.json is missing or "
                "damaged); re-run its pass with --recompute"
            )
        for key in sorted(readable):
            _check_derived(report, group, f"{kind}/{key}", where)
    return report


def _check_derived(report: VerifyReport, group: zarr.Group, path: str, where: str) -> None:
    try:
        sub = group[path]
        complete, recorded = sub.attrs.get("complete"), sub.attrs.get(MANIFEST_KEY)
        names = sorted(_members(sub)[0])
    except Exception as e:
        report.problems.append(f"{where}: saved result {path} cannot be read ({type(e).__name__})")
        return
    if not complete:
        report.notes.append(f"{where}: {path} is incomplete (ignored, and recomputed)")
        return
    for name in sorted(set(array_entries(recorded)) - {sub[n].path for n in names}):
        report.problems.append(f"{where}: saved result {path}: array {name!r} is missing or unreadable")
    for name in names:
        _check(report, sub[name], recorded, where, None)


def _is_group(group: zarr.Group, path: str) -> bool:
    try:
        return isinstance(group[path], zarr.Group)
    except Exception:
        return False


def _listed(group: zarr.Group, kind: str) -> set[str]:
    """Names of the entries under a group's folder in the store, readable as Zarr nodes or not."""
    prefix = f"{group[kind].path}"

    async def names() -> set[str]:
        return {name async for name in group.store.list_dir(prefix)} - {"zarr.json"}

    # zarr.<id>.partial: a zarr.json write interrupted before its rename; the old file still stands
    return {name for name in sync(names()) if not (name.startswith("zarr.") and name.endswith(".partial"))}


def _members(group: zarr.Group) -> tuple[set[str], set[str]]:
    """Names of the arrays and groups in a group; entries zarr cannot read (a deleted zarr.json) are
    left out here and reported against the manifest instead of warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(group.array_keys()), set(group.group_keys())


def _check(
    report: VerifyReport, array: zarr.Array, manifest: dict | None, where: str, rows: int | None
) -> None:
    report.arrays += 1
    problems = verify_array(array, manifest, where, rows)
    report.problems.extend(problems)
    recorded = None if manifest is None else manifest.get(array.path)
    report.files += len(recorded) if recorded else 1
