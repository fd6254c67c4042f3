"""The replay ledger: every replay attempt, recorded locally in SQLite.

Each request is written when its answer (or its network error) comes, in one transaction,
so an interrupted run leaves the ledger consistent: what it holds was answered as it says. A
request cut off by a crash is not there, so a later run sends it again: an event is never
skipped on a guess. A later run skips the events already answered 2xx at the same target,
from the same source.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from atwh.core.config import data_dir
from atwh.errors import UsageError

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
"""
SCHEMA_VERSION = 1


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
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            if create:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise UsageError(f"--ledger {self.path} was written by a newer atwh")
                self.conn.executescript(SCHEMA)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                self.conn.execute("SELECT 1 FROM runs LIMIT 1")
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

    def replayed(self, source: str, target: str, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` already answered 2xx at `target`, from `source`."""
        wanted = list(dict.fromkeys(keys))
        done: set[str] = set()
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            rows = self.conn.execute(
                "SELECT DISTINCT event_key FROM attempts WHERE ok = 1 AND source = ? "
                f"AND target = ? AND event_key IN ({','.join('?' * len(part))})",
                (source, target, *part),
            ).fetchall()
            done.update(r[0] for r in rows)
        return done

    def start_run(self, source: str, target: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (started_at, source, target) VALUES (?, ?, ?)",
            (time.time(), source, target),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run_id: int, interrupted: bool) -> None:
        self.conn.execute(
            "UPDATE runs SET finished_at = ?, interrupted = ? WHERE id = ?",
            (time.time(), int(interrupted), run_id),
        )

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
    ) -> None:
        """One answered request (or one that failed on the network), in its own transaction;
        `ok`: it was acknowledged (by default: answered 2xx)."""
        if ok is None:
            ok = code is not None and 200 <= code <= 299
        self.conn.execute(
            "INSERT INTO attempts (run_id, source, event_key, event_name, origin, target, "
            "started_at, finished_at, status_code, error, ok) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                source,
                key,
                event_name,
                origin,
                target,
                started_at,
                time.time(),
                code,
                None if ok else error,
                int(ok),
            ),
        )

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
                    row[4],
                    bool(row[5]),
                    row[6],
                    row[7],
                    row[8],
                )
            )
        return out
