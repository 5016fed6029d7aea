"""What commands share when they write outputs or run on a cluster.

Output paths are checked before any work (a missing folder or a folder where a file goes is an
InputError, so a slow solve never ends in an unwritable --json), and JSON is written to a temporary
file then renamed, so that an interrupted write never leaves half a file under the final name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from neurosel.errors import InputError


def check_output_file(path: str | None, option: str) -> None:
    """Refuse, before any work, a file output whose folder is missing or that names a folder."""
    if path is None or "://" in path:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path}: is a folder; pass a file path such as {target / 'out.json'}")
    folder = target.parent
    if not folder.exists():
        raise InputError(f"{option} {path}: folder {folder} does not exist; create it or pass another path")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: {folder} is a file, not a folder; pass another path")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{option} {path}: folder {folder} is not writable; pass another path")


def check_output_dir(path: str | Path, option: str) -> None:
    """Refuse, before any work, a folder output that is a file, lies under a file, or cannot be made."""
    if "://" in str(path):
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"{option} {path}: is a file, not a folder; pass a folder path")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"{option} {path}: {existing} is a file, so no folder can be made under it; pass another path"
        )
    if not os.access(existing, os.W_OK):
        raise InputError(f"{option} {path}: {existing} is not writable; pass another path")


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Any:
    """The Dask client for --scheduler ADDRESS or --workers N (a local cluster of processes), or None."""
    scheduler, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if scheduler is None and workers is None:
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise InputError("--scheduler/--workers: needs dask.distributed; pip install distributed") from None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except OSError as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e}); check the address") from None
        with client:
            yield client
        return
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def write_json(path: str, record: Any) -> None:
    """Write a JSON record for --json: to a temporary file beside it, then renamed into place."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
