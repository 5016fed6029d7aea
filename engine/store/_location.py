"""Where a store lives: a local folder, or any fsspec URL (s3://, gs://, memory://, file://).

Zarr reads and writes every store through its own store API, so chunks, manifests and metadata
work the same everywhere; only the few whole-store operations (does it exist, delete it, the
writer's lock, free disk space) need to know the file system, and they ask here. Credentials come
from the file system's usual environment or configuration (for S3: `AWS_*` variables,
`~/.aws`, instance roles), never from neurosel and never into the store.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def is_url(path: str | Path) -> bool:
    """True for fsspec URLs other than plain local paths (file:// counts as local)."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | Path) -> Path | None:
    """The local folder of a store, or None for a remote one."""
    text = str(path)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return None if is_url(text) else Path(text)


def filesystem(path: str | Path) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path within it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(str(path))
    except (ValueError, ImportError) as e:  # an unknown protocol, or its package is not installed
        from neurosel.errors import InputError

        protocol, reason = str(path).split("://", 1)[0], str(e).strip().splitlines()[0][:100]
        raise InputError(
            f"{path}: the file system {protocol!r} is not available ({reason}); "
            "use a local path or an fsspec URL whose package is installed (s3:// needs s3fs, gs:// gcsfs)"
        ) from None


def exists(path: str | Path) -> bool:
    local = local_path(path)
    if local is not None:
        return local.exists()
    fs, root = filesystem(path)
    with reachable(path):
        return bool(fs.exists(root))


def remove_tree(path: str | Path) -> None:
    """Delete a store, local or remote."""
    local = local_path(path)
    if local is not None:
        import shutil

        shutil.rmtree(local)
        return
    fs, root = filesystem(path)
    fs.rm(root, recursive=True)


# zarr's LocalStore writes every file as `<name>.<uuid4 hex>.partial`, then renames it; a process
# killed between the two leaves the temporary file behind (never part of the hierarchy).
_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")


def remove_partials(path: str | Path) -> int:
    """Delete the temporary files that writers killed mid-write left in a local store; returns how
    many. Call it only while holding the writer's lock, when no write is in flight: a resumed or
    re-run extraction then ends with exactly the files of an uninterrupted one."""
    local = local_path(path)
    if local is None or not local.is_dir():
        return 0
    removed = 0
    for folder, _, files in os.walk(local):
        for name in files:
            if _PARTIAL.search(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def rename(store_path: str | Path, source: str, target: str) -> None:
    """Move the folder `source` of a store to `target` (paths inside the store; `target` must not
    exist): one atomic `rename` locally; elsewhere a copy that writes the folder's zarr.json last."""
    local = local_path(store_path)
    if local is not None:
        os.rename(local / source, local / target)
        return
    # object stores have no rename: copy every file, the folder's own zarr.json last (for a Zarr
    # group, the moment it appears at `target` is its commit point), then delete the source
    fs, root = filesystem(store_path)
    src, dst = f"{root.rstrip('/')}/{source}", f"{root.rstrip('/')}/{target}"
    files = sorted(fs.find(src), key=lambda f: f.rstrip("/") == f"{src}/zarr.json")
    for file in files:
        fs.copy(file, dst + file[len(src) :])
    fs.rm(src, recursive=True)


# Packages whose exceptions mean "this file system cannot be reached as configured" (credentials,
# endpoints, permissions): said as one line naming the store, not a trace.
_CLOUD_ERRORS = ("botocore", "aiobotocore", "google.auth", "google.api_core", "azure.core")


@contextlib.contextmanager
def reachable(path: str | Path) -> Iterator[None]:
    """Turn a remote file system's credential or connection error into an InputError naming the
    store and where credentials come from."""
    try:
        yield
    except Exception as e:
        if not type(e).__module__.startswith(_CLOUD_ERRORS):
            raise
        from neurosel.errors import InputError

        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(
            f"store {path}: its file system cannot be reached ({type(e).__name__}: {reason}); set its "
            "credentials and endpoint the usual way (for S3: AWS_* variables, ~/.aws, an instance role)"
        ) from None
