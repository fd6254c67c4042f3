"""One `atwh serve` per inbox: a lock on a file beside the database, held for the life of
the process (the kernel lets go of it when the process ends, however it ends)."""

from __future__ import annotations

import os
from pathlib import Path

from atwh.errors import UsageError
from atwh.receiver.inbox import create_private


class InboxLock:
    """An exclusive lock on `<db>.lock`, or a shared one with shared=True (--shared-db:
    several receivers on one inbox, each forwarding what it claims). Raises UsageError
    naming the other receiver if it cannot be had."""

    def __init__(self, db: Path, shared: bool = False, url: str | None = None) -> None:
        self.path = db.with_name(db.name + ".lock")
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:  # no flock on this system: nothing to hold
            return
        try:
            create_private(self.path)
            fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            raise UsageError(f"cannot open the inbox {db}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError:
            other = _holder(fd)
            os.close(fd)
            who = f"another atwh serve (pid {other})" if other else "another atwh serve"
            raise UsageError(
                f"{who} is using the inbox {db}",
                hint="stop it, give another --db, or --shared-db to share it on purpose",
            ) from None
        # the pid, for the message another one gives; the URL it receives on, for the
        # `atwh webhooks create --url` that `atwh emulator emit` suggests
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{url or ''}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _holder(fd: int) -> str | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").split("\n")[0].strip()
    except OSError:
        return None
    return text if text.isdigit() else None
