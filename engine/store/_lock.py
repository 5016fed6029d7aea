"""One writer at a time: an exclusive lock that an extraction holds on its store while it writes.

The lock is an advisory `flock` on the file `<store>.lock` beside the store, holding the holder's
pid, host and start time for the error message a second writer gets. It sits beside the store, not
inside it, for two reasons: `--no-resume` deletes and recreates the store under the lock, and Zarr
treats any foreign file inside a group as an unrecognised node (a warning on every listing).

Stale locks cannot block anyone: the kernel releases an flock when its holder dies, however it
dies (SIGKILL included), so a lock file left behind by a crashed writer is simply taken over, and
the takeover is logged with the dead holder's pid. A writer that took the lock checks that the
file it locked is still the one at the path (a racing release may have unlinked it) and retries
otherwise, so two writers can never both believe they hold it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

from neurosel.errors import InputError, StoreLockedError
from neurosel.store._location import filesystem, local_path, reachable

log = logging.getLogger("neurosel")


class StoreLock:
    """`with StoreLock(path):` hold the store's writer lock (InputError if another process holds it).

    A local store (a folder, or file://) is locked with `flock`; a store on an object store or any
    other fsspec file system with an exclusive create of the `<store>.lock` object (S3 conditional
    writes; `open(..., "xb")`), which the release deletes. A remote lock whose holder crashed is
    broken only when the holder ran on this host and its pid is gone; otherwise the message says
    which lock to delete once no writer runs."""

    def __init__(self, store_path: str | Path, wait: float = 0.0) -> None:
        """`wait`: seconds to keep trying while another process holds the lock (saving a derived
        result waits for a concurrent save; an extraction refuses at once)."""
        self.wait = wait
        self.store = str(store_path).rstrip("/")
        local = local_path(self.store)
        self.path = Path(str(local) + ".lock") if local is not None else None
        self.fd: int | None = None
        self.remote: tuple[Any, str] | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                if self.path is None:
                    with reachable(self.store):
                        self._acquire_remote()
                else:
                    self._acquire_local()
                return
            except StoreLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _acquire_remote(self) -> None:
        fs, root = filesystem(self.store)
        key = root.rstrip("/") + ".lock"
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                with fs.open(key, "xb") as f:
                    f.write(json.dumps(holder).encode())
                self.remote = (fs, key)
                return
            except FileExistsError:
                seen = _remote_holder(fs, key)
                if not _dead_here(seen) or _remote_holder(fs, key) != seen:
                    raise StoreLockedError(
                        f"store {self.store}: another extraction is writing it ({_who(seen)}); wait for "
                        f"it to finish, or, if none runs any more, delete the lock {self.store}.lock"
                    ) from None
                log.info("store %s: breaking the lock of a gone writer (%s)", self.store, _who(seen))
                fs.rm(key)
        raise StoreLockedError(f"store {self.store}: its lock is contended; re-run")

    def _acquire_local(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = self._open_local()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise StoreLockedError(
                    f"store {self.store}: another extraction is writing it ({_who(holder)}); wait for it "
                    f"to finish, or stop it, then re-run (its lock is {self.path})"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the file was released and unlinked between open and lock: try again
        previous = _read_holder(fd)
        if not previous and os.fstat(fd).st_size:  # not ours: never overwrite a file we did not write
            os.close(fd)
            raise InputError(
                f"store {self.store}: {self.path} exists and is not a neurosel lock; move or remove it, "
                "then re-run"
            )
        if previous:
            log.info("store %s: taking over the lock of a gone writer (%s)", self.store, _who(previous))
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self.fd = fd

    def _open_local(self) -> int:
        """The lock file, opened without following a symlink (a link would make the lock write
        into whatever it points at); only a regular file is a lock."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise
            fd = None
        if fd is None or not stat.S_ISREG(os.fstat(fd).st_mode):
            if fd is not None:
                os.close(fd)
            raise InputError(
                f"store {self.store}: {self.path} is a symbolic link or not a regular file, so it cannot "
                "be the store's lock; remove it, then re-run"
            )
        return fd

    def release(self) -> None:
        if self.remote is not None:
            fs, key = self.remote
            with contextlib.suppress(FileNotFoundError):
                fs.rm(key)
            self.remote = None
        if self.fd is None:
            return
        import fcntl

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked: a writer that opened it re-opens a fresh file
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _remote_holder(fs: Any, key: str) -> dict[str, Any]:
    try:
        return json.loads(fs.cat(key) or b"{}")
    except (OSError, ValueError):
        return {}


def _dead_here(holder: dict[str, Any]) -> bool:
    """The holder ran on this host and its process is gone."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def _who(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    since = holder.get("since")
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {started}"
