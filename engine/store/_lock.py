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
import time
from pathlib import Path
from typing import Any

from engine.errors import InputError

log = logging.getLogger("neurosel")


class StoreLockedError(InputError):
    """Another live process is writing the store."""


class StoreLock:
    """`with StoreLock(path):` hold the store's writer lock (InputError if another process holds it)."""

    def __init__(self, store_path: str | Path) -> None:
        self.store = str(store_path).rstrip("/")
        self.path = Path(self.store + ".lock")
        self.fd: int | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        if previous:
            log.info("store %s: taking over the lock of a gone writer (%s)", self.store, _who(previous))
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        import fcntl

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked: a writer that opened it re-opens a fresh file
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


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
