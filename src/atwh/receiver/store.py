"""The receiver's storage, kept off the event loop: requests committed to the inbox many
per transaction from a thread of their own, the WAL checkpointed from another, and the
inbox file watched, so that a deleted or replaced inbox is noticed and created again
rather than written to where nobody can read it."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from atwh.errors import AtwhError
from atwh.receiver.inbox import Inbox, NewRequest, Stored

log = logging.getLogger("atwh.receiver.store")

Identity = tuple[int, int] | None  # (st_dev, st_ino), None when the file is not there
Waiting = tuple[NewRequest, "asyncio.Future[Stored]", float]  # a request, its answer, since
Batch = list[Waiting]
SUFFIXES = ("", "-wal", "-shm")


class StoreUnavailable(Exception):
    pass


class InboxFiles:
    """The inbox database and its -wal and -shm files, as this process opened them.

    Writing to an inbox whose file was deleted (or replaced, by a rename over it) commits
    into a file nobody else can open: a 2xx for an event stored nowhere. `changed` tells
    it from the files' identities (device and inode). The connections that other threads
    use (`Shared`) are used under `lock` and reopened after the writer created the inbox
    again (`generation`), so that no connection of this process keeps using the old files
    next to one on the new files.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.generation = 0
        self.shared: list[Shared] = []
        self.known: list[Identity] = self._identities()

    def _identities(self) -> list[Identity]:
        out: list[Identity] = []
        for suffix in SUFFIXES:
            try:
                st = os.stat(f"{self.path}{suffix}")
            except OSError:
                out.append(None)
            else:
                out.append((st.st_dev, st.st_ino))
        return out

    def record(self) -> None:
        self.known = self._identities()

    def changed(self) -> str | None:
        """How the files differ from the ones opened ("deleted", "replaced"), or None."""
        now = self._identities()
        if now == self.known:
            return None
        why = None
        for i, (was, is_) in enumerate(zip(self.known, now, strict=True)):
            if was is None:  # not there when opened (a -wal not written yet): now it is
                self.known[i] = is_
                continue
            if is_ is None:
                why = why or ("deleted" if i == 0 else f"{SUFFIXES[i]} file was deleted")
            elif is_ != was:
                why = why or ("replaced" if i == 0 else f"{SUFFIXES[i]} file was replaced")
        return why

    def db_replaced(self) -> bool:
        """The database file itself is another one (or gone), not only its -wal/-shm."""
        return self._identities()[0] != self.known[0]

    def remove_stale(self) -> None:
        """With the database gone, its -wal and -shm would be read as the new database's
        (the old pages replayed into it): they go too."""
        if os.path.exists(self.path):
            return
        for suffix in SUFFIXES[1:]:
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("cannot remove %s%s: %s", self.path, suffix, e)


class Shared:
    """A connection to the inbox for a thread other than the writer's (the checkpointer,
    the forwarder): every call holds the files' lock, and the connection is opened again
    after the writer created the inbox anew. Has Inbox's methods."""

    def __init__(self, files: InboxFiles, busy_timeout_ms: int) -> None:
        self.files = files
        self.busy_timeout_ms = busy_timeout_ms
        self.inbox: Inbox | None = None
        self.generation = -1
        with files.lock:
            self._current()
            files.shared.append(self)

    def _current(self) -> Inbox:
        if self.inbox is None or self.generation != self.files.generation:
            self.drop()
            try:
                self.inbox = Inbox(
                    self.files.path, create=False, busy_timeout_ms=self.busy_timeout_ms
                )
            except AtwhError as e:
                raise sqlite3.OperationalError(e.message) from None
            self.generation = self.files.generation
        return self.inbox

    def drop(self) -> None:
        if self.inbox is not None:
            try:
                self.inbox.close()
            except sqlite3.Error:
                pass
            self.inbox = None

    def close(self) -> None:
        with self.files.lock:
            self.drop()
            if self in self.files.shared:
                self.files.shared.remove(self)

    def __getattr__(self, name: str) -> Any:
        method = getattr(Inbox, name, None)
        if not callable(method):  # an attribute of the connection's Inbox (path, conn)
            with self.files.lock:
                return getattr(self._current(), name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.files.lock:
                return method(self._current(), *args, **kwargs)

        return call


class BatchWriter:
    """Commits requests many per transaction (group commit), never making the event loop
    wait for SQLite.

    `add` returns a future that resolves once the transaction holding the request has
    committed, or fails with StoreUnavailable if it could not commit: after the busy
    timeout when the inbox is locked, and after `max_wait` whatever happens (a disk that
    hangs).

    Two ways to commit. On the loop, with `fast`, a connection that never waits for a
    lock (busy timeout 0): without fsync a commit takes microseconds, and it waits while
    the batch still grows from one loop turn to the next (at most MAX_TURNS turns), so
    that under load each commit, whose cost is mostly fixed, holds more requests
    (measured under wrk: 13 instead of 5.5 at 16 connections, 51 instead of 19 at 64).
    In the writer's thread, with `inbox` and the busy timeout: every batch the loop could
    not commit at once (the inbox locked, or the thread still has work: order is kept),
    and every batch when there is no `fast` (with fsync, so the loop goes on accepting
    while the disk syncs). A thread alone would be simpler, but handing each batch over
    and back costs the loop's thread the GIL: atwh serve answered 1.4-1.9x fewer
    requests/s that way (bench/serve_ab.py). So a locked or slow inbox delays only the
    requests that need it, and `GET /health` not at all.

    Before each commit (and every CHECK_EVERY seconds when idle) the inbox files are
    checked: deleted or replaced, the inbox is created again at its path (in the thread)
    and `notice` says so; after each commit too, and a batch committed while the file
    went away is answered 503, as it may be stored nowhere.
    """

    CHECK_EVERY = 0.5
    MAX_TURNS = 3

    def __init__(
        self,
        inbox: Inbox,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[Sequence[NewRequest], Sequence[Stored]], None] | None = None,
        files: InboxFiles | None = None,
        reopen: Callable[[], Inbox] | None = None,
        notice: Callable[[str], None] | None = None,
        max_wait: float = 10.0,
        fast: Inbox | None = None,
        reopen_fast: Callable[[], Inbox] | None = None,
    ) -> None:
        self.inbox: Inbox | None = inbox
        self.fast = fast
        self.loop = loop
        self.on_commit = on_commit
        self.files = files
        self.notice = notice
        self.max_wait = max_wait
        self.reopen = reopen
        self.reopen_fast = reopen_fast
        self._queue: deque[Waiting] = deque()
        self._closing = False
        self._pending: Batch = []
        self._scheduled = False
        self._in_thread = 0  # requests handed to the thread and not resolved yet
        self._recheck = False  # the files changed: commit in the thread until it reopened
        self._fast_lock = threading.Lock()  # the loop's connection, while it is reopened
        self._lost: str | None = None  # why the inbox was closed, until it is open again
        self._failed: str | None = None  # why opening it again failed, said once
        self._cond = threading.Condition()
        self._committing: Batch = []
        self._watchdog = loop.call_later(1.0, self._expire)
        self._thread = threading.Thread(target=self._run, name="atwh-inbox", daemon=True)
        self._thread.start()

    def add(self, request: NewRequest) -> asyncio.Future[Stored]:
        future: asyncio.Future[Stored] = self.loop.create_future()
        if self._closing:
            future.set_exception(StoreUnavailable("the receiver is shutting down"))
            return future
        self._pending.append((request, future, time.monotonic()))
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush, 1, 1)
        return future

    def hand_over(self) -> None:
        """Commit what the loop added (on the loop), or hand it to the thread."""
        self._flush()

    def _flush(self, turn: int = MAX_TURNS, size_before: int = 0) -> None:
        size = len(self._pending)
        if size > size_before and turn < self.MAX_TURNS and not self._closing:
            self.loop.call_soon(self._flush, turn + 1, size)  # still growing: one more turn
            return
        self._scheduled = False
        if not self._pending:
            return
        batch = self._pending
        self._pending = []
        fast = self.fast
        # No look at the files before this commit (after it is enough, and each look
        # costs three stat calls): an inbox deleted since fails this batch with 503,
        # and the thread (which looks every CHECK_EVERY s) creates it again.
        if (
            fast is None
            or self._in_thread
            or self._recheck
            or not self._fast_lock.acquire(blocking=False)
        ):
            self._to_thread(batch)
            return
        try:
            stored = fast.add_many([r for r, _, _ in batch])
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):  # the thread waits for it instead
                self._to_thread(batch)
                return
            self._failed_on_loop(batch, e)
            return
        except (sqlite3.Error, OSError) as e:
            self._failed_on_loop(batch, e)
            return
        except Exception as e:  # a bug: still no request may wait forever, or get a 2xx
            log.exception("inbox commit failed")
            self._resolve(batch, None, StoreUnavailable(f"{type(e).__name__}: {e}"))
            return
        finally:
            if self._fast_lock.locked():
                self._fast_lock.release()
        if self.files is not None and self.files.changed() is not None:
            gone = f"the inbox {self.files.path} went away during the commit"
            self._resolve(batch, None, StoreUnavailable(gone))
            self._recheck = True  # the next batches to the thread, which reopens it first
            with self._cond:
                self._cond.notify()
            return
        self._resolve(batch, stored, None)

    def _failed_on_loop(self, batch: list[Any], e: BaseException) -> None:
        log.error("inbox commit failed: %s", e)
        self._resolve(batch, None, StoreUnavailable(str(e)))

    def _to_thread(self, batch: Batch) -> None:
        self._in_thread += len(batch)
        with self._cond:
            self._queue.extend(batch)
            self._cond.notify()

    def close(self) -> None:
        """Commit what is queued, then stop. Call from any thread but the loop's."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        for inbox in (self.inbox, self.fast):
            if inbox is not None:
                inbox.close()

    def _expire(self) -> None:
        """On the loop, every second: a request that has waited max_wait for its commit
        gets 503 (if the commit ends later, the row is there, unacknowledged)."""
        limit = time.monotonic() - self.max_wait
        with self._cond:
            waiting = [*self._committing, *self._queue, *self._pending]
        for _, future, since in waiting:
            if since < limit and not future.done():
                future.set_exception(
                    StoreUnavailable(f"the inbox did not commit within {self.max_wait:g}s")
                )
        if not self._closing:
            self._watchdog = self.loop.call_later(1.0, self._expire)

    # -- in the writer's thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(self.CHECK_EVERY)
                batch = list(self._queue)
                self._queue.clear()
                closing = self._closing
                self._committing = batch
            if not batch:
                if closing:
                    return
                self._check()  # idle: say at once that the inbox went away
                continue
            stored, error = self._commit(batch)
            with self._cond:
                self._committing = []
            try:
                self.loop.call_soon_threadsafe(self._resolved_in_thread, batch, stored, error)
            except RuntimeError:  # the loop is gone: nobody waits for these answers
                return

    def _say(self, message: str) -> None:
        """To the live view (once), or to the log without one."""
        if self.notice is None:
            log.warning("%s", message)
            return
        try:
            self.loop.call_soon_threadsafe(self.notice, message)
        except RuntimeError:  # the loop is closed
            log.warning("%s", message)

    def _check(self) -> str | None:
        """None if the inbox can take a commit, else why not. An inbox deleted or
        replaced under it is created again (or, if that fails, tried again next time)."""
        problem = self._reopen_if_needed()
        if problem is None:
            self._recheck = False
        return problem

    def _reopen_if_needed(self) -> str | None:
        if self.files is None or self.reopen is None:
            return None
        path = self.files.path
        with self.files.lock:  # the other threads' connections wait, then reopen
            if self.inbox is not None:
                why = self.files.changed()
                if why is None:
                    return None
                self._lost = why
                for shared in self.files.shared:
                    shared.drop()
                if not self.files.db_replaced():  # only -wal/-shm gone: keep what they held
                    try:
                        self.inbox.checkpoint("TRUNCATE")
                    except sqlite3.Error as e:
                        log.warning("inbox checkpoint failed: %s", e)
                self.inbox.close()
                self.inbox = None
            why = self._lost or "lost"
            for shared in self.files.shared:
                shared.drop()
            with self._fast_lock:
                if self.fast is not None:
                    self.fast.close()
                    self.fast = None
            self.files.remove_stale()
            try:
                self.inbox = self.reopen()
                if self.reopen_fast is not None:
                    with self._fast_lock:
                        self.fast = self.reopen_fast()
            except AtwhError as e:
                if self._failed != e.message:
                    self._failed = e.message
                    self._say(
                        f"the inbox {path} was {why} while serving: {e.message}; answering 503"
                    )
                return f"the inbox {path} was {why}: {e.message}"
            self.files.record()
            self.files.generation += 1
        if why in ("deleted", "replaced"):
            self._say(
                f"the inbox {path} was {why} while serving: created a new one there "
                "(what the old one held is not in it)"
            )
        else:
            self._say(f"the inbox {path}: its {why} while serving; reopened it")
        self._lost = self._failed = None
        return None

    def _commit(self, batch: Batch) -> tuple[Sequence[Stored] | None, Exception | None]:
        problem = self._check()
        if problem is not None or self.inbox is None:
            return None, StoreUnavailable(problem or "the inbox is not open")
        try:
            stored = self.inbox.add_many([r for r, _, _ in batch])
        except (sqlite3.Error, OSError) as e:
            log.error("inbox commit failed: %s", e)
            return None, StoreUnavailable(str(e))
        except Exception as e:  # a bug: still no request may wait forever, or get a 2xx
            log.exception("inbox commit failed")
            return None, StoreUnavailable(f"{type(e).__name__}: {e}")
        if self.files is not None and self.files.changed() is not None:
            self._check()  # for the next batch; this one may have gone with the old file
            gone = f"the inbox {self.files.path} went away during the commit"
            return None, StoreUnavailable(gone)
        return stored, None

    def _resolved_in_thread(
        self,
        batch: Batch,
        stored: Sequence[Stored] | None,
        error: Exception | None,
    ) -> None:
        self._in_thread -= len(batch)
        self._resolve(batch, stored, error)

    def _resolve(
        self,
        batch: Batch,
        stored: Sequence[Stored] | None,
        error: Exception | None,
    ) -> None:
        if stored is None:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(error or StoreUnavailable("not stored"))
            return
        for (_, future, _), s in zip(batch, stored, strict=True):
            if not future.done():
                future.set_result(s)
        if self.on_commit is not None:
            self.on_commit([r for r, _, _ in batch], stored)


class Checkpointer:
    """Moves the WAL into the database file from a thread of its own, so that the writer
    never waits for it (and for its fsync). Often (every 0.1 s), so that each one is
    short: on a busy single core a long one shows in the p99 latency."""

    def __init__(self, files: InboxFiles, interval: float = 0.1) -> None:
        self.inbox = Shared(files, busy_timeout_ms=1000)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="atwh-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        said = None
        while not self._stop.wait(self.interval):
            try:
                self.inbox.checkpoint()
                said = None
            except sqlite3.Error as e:
                if str(e) != said:  # once, not ten times a second
                    log.warning("inbox checkpoint failed: %s", e)
                    said = str(e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.inbox.checkpoint("TRUNCATE")
        except sqlite3.Error as e:
            log.warning("inbox checkpoint failed: %s", e)
        self.inbox.close()
