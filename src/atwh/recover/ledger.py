"""The replay ledger: every replay attempt, recorded locally in SQLite.

Each request is written when its answer (or its network error) comes, in one transaction,
so an interrupted run leaves the ledger consistent: what it holds was answered as it says. A
request cut off by a crash is not there, so a later run sends it again: an event is never
skipped on a guess. A later run skips the events already answered 2xx at the same target,
from the same source.

Runs that overlap (the same ledger, source and target) share the work: each event is claimed
in the ledger just before it is sent, for a lease, as the receiver's forwarder claims, and a
run skips what another has claimed or already sent with a 2xx. A claim is released when its
event is done, or when its run ends; a crashed run's claims run out with their lease. The
answer that ends an event, its release, and the claim of the event sent next go in one
transaction (`record`): a commit per event, not three.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from atwh.core import dbfile
from atwh.core.config import data_dir
from atwh.errors import OutputError, UsageError, printable, without_userinfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    source TEXT NOT NULL,
    event_key TEXT NOT NULL,
    event_name TEXT,
    origin TEXT,
    target TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status_code INTEGER,
    error TEXT,
    ok INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_ok ON attempts(source, target, event_key) WHERE ok = 1;
CREATE INDEX IF NOT EXISTS attempts_run ON attempts(run_id);
CREATE TABLE IF NOT EXISTS claims (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    event_key TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (source, target, event_key)
);
"""
SCHEMA_VERSION = 1
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (run_id, source, event_key, event_name, origin, target, "
    "started_at, finished_at, status_code, error, ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class LedgerError(OutputError):
    """The ledger could not be read or written (locked past its busy timeout, a full
    disk): exit 7, with the report of what was sent."""


def default_path() -> Path:
    return data_dir() / "replays.sqlite3"


@dataclass(slots=True)
class RunSummary:
    """One past run, as `atwh replay --history` lists it."""

    id: int
    started: datetime
    finished: datetime | None
    source: str
    target: str
    interrupted: bool
    sent: int
    fixed: int
    failing: int

    def to_api(self) -> dict[str, object]:
        from atwh.core.dates import iso

        return {
            "id": self.id,
            "startedAt": iso(self.started),
            "finishedAt": iso(self.finished),
            "source": self.source,
            "target": self.target,
            "interrupted": self.interrupted,
            "sent": self.sent,
            "fixed": self.fixed,
            "failing": self.failing,
        }


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


class Ledger:
    """One connection to the ledger; used from one thread (the replay's event loop)."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self.path = Path(path) if path else default_path()
        if not create and not self.path.exists():
            raise UsageError(f"no replay ledger at {self.path}", hint="nothing was replayed yet")
        try:
            if create:  # it holds payloads' ids and targets: 0600 in a 0700 directory
                dbfile.create_private(self.path)
            self.conn = sqlite3.connect(self.path, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            try:  # what the file is, before a byte is written to it
                found = dbfile.recognise(
                    self.conn, self.path, dbfile.LEDGER, SCHEMA_VERSION, "--ledger"
                )
                if found.new and not create:
                    raise UsageError(
                        f"--ledger {self.path} is not an atwh replay ledger: an empty database",
                        hint="nothing was replayed yet",
                    )
            except BaseException:
                self.conn.close()
                raise
            if create:
                dbfile.use_wal(self.conn)
                self.conn.execute("PRAGMA synchronous = NORMAL")
                dbfile.make_schema(self.conn, SCHEMA, dbfile.LEDGER, SCHEMA_VERSION, found)
        except sqlite3.Error as e:
            raise UsageError(f"--ledger {self.path}: cannot use it: {e}") from None
        except OSError as e:
            raise UsageError(f"--ledger {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failed(self, e: sqlite3.Error, doing: str) -> LedgerError:
        return LedgerError(f"the replay ledger {self.path}: cannot {doing}: {printable(e, 160)}")

    def replayed(self, source: str, target: str, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` already answered 2xx at `target`, from `source`."""
        try:
            return self._replayed(source, target, keys)
        except sqlite3.Error as e:
            raise self._failed(e, "read it") from None

    def _replayed(self, source: str, target: str, keys: Iterable[str]) -> set[str]:
        target = without_userinfo(target)
        done: set[str] = set()
        keys = iter(keys)  # a few hundred at a time: no copy of half a million keys
        while part := list(islice(keys, 500)):
            rows = self.conn.execute(
                "SELECT DISTINCT event_key FROM attempts WHERE ok = 1 AND source = ? "
                f"AND target = ? AND event_key IN ({','.join('?' * len(part))})",
                (source, target, *part),
            ).fetchall()
            done.update(r[0] for r in rows)
        return done

    def start_run(self, source: str, target: str) -> int:
        try:
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, source, target) VALUES (?, ?, ?)",
                (time.time(), source, without_userinfo(target)),
            )
        except sqlite3.Error as e:
            raise self._failed(e, "write it") from None
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run_id: int, interrupted: bool) -> None:
        """The run's end, and its claims released."""
        try:
            with self._transaction():
                self.conn.execute(
                    "UPDATE runs SET finished_at = ?, interrupted = ? WHERE id = ?",
                    (time.time(), int(interrupted), run_id),
                )
                self.conn.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
        except sqlite3.Error as e:
            raise self._failed(e, "write it") from None

    def claim(
        self, run_id: int, source: str, target: str, key: str, lease: float, force: bool = False
    ) -> str | None:
        """Claim an event for this run, for `lease` seconds, just before sending it: None
        when claimed, else why not (another run holds it, or sent it with a 2xx meanwhile;
        with `force` only the first)."""
        try:
            with self._transaction():
                return self._claim(run_id, source, without_userinfo(target), key, lease, force)
        except sqlite3.Error as e:
            raise self._failed(e, "write it") from None

    def _claim(
        self, run_id: int, source: str, target: str, key: str, lease: float, force: bool
    ) -> str | None:
        """claim(), within a transaction begun (BEGIN IMMEDIATE: no other run between the
        checks and the write); `target` without userinfo."""
        now = time.time()
        if not force:
            done = self.conn.execute(
                "SELECT run_id FROM attempts WHERE ok = 1 AND source = ? "
                "AND target = ? AND event_key = ? LIMIT 1",
                (source, target, key),
            ).fetchone()
            if done is not None:
                return "already replayed with a 2xx"  # (replay.ALREADY_REPLAYED)
        held = self.conn.execute(
            "SELECT run_id FROM claims WHERE source = ? AND target = ? "
            "AND event_key = ? AND until > ? AND run_id <> ?",
            (source, target, key, now, run_id),
        ).fetchone()
        if held is not None:
            return f"being sent by another replay (run {held[0]})"
        self.conn.execute(
            "INSERT INTO claims (source, target, event_key, run_id, until) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, target, event_key) "
            "DO UPDATE SET run_id = excluded.run_id, until = excluded.until",
            (source, target, key, run_id, now + lease),
        )
        return None

    def release(self, run_id: int, source: str, target: str, key: str) -> None:
        """This run's claim of an event, once it is done."""
        try:
            self._release(run_id, source, without_userinfo(target), key)
        except sqlite3.Error as e:
            raise self._failed(e, "write it") from None

    def _release(self, run_id: int, source: str, target: str, key: str) -> None:
        self.conn.execute(
            "DELETE FROM claims WHERE source = ? AND target = ? AND event_key = ? AND run_id = ?",
            (source, target, key, run_id),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE (the write lock first: a check and a write that no other run
        comes between), COMMIT, or ROLLBACK on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def record(
        self,
        run_id: int,
        source: str,
        key: str,
        event_name: str | None,
        origin: str | None,
        target: str,
        started_at: float,
        code: int | None,
        error: str | None,
        ok: bool | None = None,
        *,
        release: bool = False,
        claim: str | None = None,
        lease: float = 0.0,
        force: bool = False,
    ) -> str | None:
        """One answered request (or one that failed on the network), in one transaction;
        `ok`: it was acknowledged (by default: answered 2xx). With `release`, its event is
        done: its claim is released in the same transaction; with `claim`, the event this
        run sends next (its key) is claimed in it too, as claim() does: None when claimed,
        else why not (the answer is written either way). One transaction instead of three
        for each event a replay sends: each costs a commit."""
        if ok is None:
            ok = code is not None and 200 <= code <= 299
        target = without_userinfo(target)
        row = (
            run_id, source, key, event_name, origin, target, started_at, time.time(), code,
            None if ok else error, int(ok),
        )  # fmt: skip
        try:
            if not release and claim is None:  # one statement: its own transaction
                self.conn.execute(_INSERT_ATTEMPT, row)
                return None
            with self._transaction():
                self.conn.execute(_INSERT_ATTEMPT, row)
                if release:
                    self._release(run_id, source, target, key)
                if claim is not None:
                    return self._claim(run_id, source, target, claim, lease, force)
        except sqlite3.Error as e:
            raise self._failed(e, "write it") from None
        return None

    def history(self, limit: int | None = None) -> list[RunSummary]:
        """Past runs, newest first, with what each sent."""
        rows = self.conn.execute(
            "SELECT r.id, r.started_at, r.finished_at, r.source, r.target, r.interrupted, "
            "count(a.id), coalesce(sum(a.ok = 1), 0), coalesce(sum(a.ok = 0), 0) "
            "FROM runs r LEFT JOIN attempts a ON a.run_id = r.id "
            "GROUP BY r.id ORDER BY r.id DESC LIMIT ?",
            (limit if limit is not None else -1,),
        ).fetchall()
        out = []
        for row in rows:
            started = _dt(row[1])
            assert started is not None
            out.append(
                RunSummary(
                    row[0],
                    started,
                    _dt(row[2]),
                    row[3],
                    without_userinfo(row[4]),  # as a ledger of an older atwh may hold it
                    bool(row[5]),
                    row[6],
                    row[7],
                    row[8],
                )
            )
        return out
