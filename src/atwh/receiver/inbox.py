"""The receiver's inbox: every request `atwh serve` answered, in SQLite (WAL).

A request that got a 2xx is committed before the answer goes out. An event id that was
acknowledged once is stored once: a unique index over acknowledged event ids, and an
upsert that counts the duplicate, never check-then-insert. Unsigned test deliveries stay
out of it, so a test request can never stand in for the signed event with its id.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from atwh import signature
from atwh.core import dbfile, jsontext
from atwh.core.config import data_dir
from atwh.core.dates import iso
from atwh.core.dbfile import create_private
from atwh.errors import UsageError, printable

SCHEMA_VERSION = 3
# The unique index keys an acknowledged event by `event_key`, the event id as JSON (12345
# and "12345" differ, and so do a lone surrogate and its escaped spelling); `event_id` is
# the id as shown. A second delivery of an event whose body differs from the stored one is
# a row of its own, outside the index, with `conflict_of` naming the first.
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT,
    event_id TEXT,
    event_name TEXT,
    answer_code INTEGER NOT NULL,
    answer_body TEXT NOT NULL,
    acked INTEGER NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    last_duplicate_at REAL,
    forward_status TEXT,
    forward_attempts INTEGER NOT NULL DEFAULT 0,
    forward_next_at REAL,
    forward_code INTEGER,
    forward_error TEXT,
    forwarded_at REAL,
    event_key TEXT,
    conflict_of INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS requests_acked_key ON requests(event_key)
    WHERE acked = 1 AND event_key IS NOT NULL AND verdict <> 'test' AND conflict_of IS NULL;
CREATE INDEX IF NOT EXISTS requests_conflicts ON requests(conflict_of)
    WHERE conflict_of IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_forward_due
    ON requests(forward_next_at) WHERE forward_status IN ('pending', 'retrying');
"""
_UPSERT = """
ON CONFLICT (event_key)
WHERE acked = 1 AND event_key IS NOT NULL AND verdict <> 'test' AND conflict_of IS NULL
DO UPDATE SET duplicates = duplicates + 1, last_duplicate_at = excluded.received_at
WHERE body = excluded.body
"""
# sqlite3 looks for an adapter for every value it binds that is not an int, float, str
# or bytearray, and a miss costs it an AttributeError built and thrown away. The body is
# bytes in every row: with bytes registered as its own adapter, the lookup is a hit (about
# 3 % more requests/s for atwh serve). bytes(b) is b itself.
sqlite3.register_adapter(bytes, bytes)
# The usual row has no reason and nothing to forward: each None bound costs sqlite3 that
# missed lookup, so those rows leave the last three out.
_USUAL = (
    "received_at",
    "method",
    "path",
    "headers",
    "body",
    "verdict",
    "event_id",
    "event_name",
    "answer_code",
    "answer_body",
    "acked",
    "event_key",
)
_ALL = (*_USUAL, "reason", "forward_status", "forward_next_at")


def _insert(columns: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO requests ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) {_UPSERT}"
    )


_INSERT, _INSERT_USUAL = _insert(_ALL), _insert(_USUAL)
_MAX_ID = "SELECT coalesce(max(id), 0) FROM requests"
_COLUMNS = (
    "id, received_at, method, path, headers, body, verdict, reason, event_id, event_name, "
    "answer_code, answer_body, acked, duplicates, last_duplicate_at, "
    "forward_status, forward_attempts, forward_next_at, forward_code, forward_error, forwarded_at, "
    "conflict_of"
)


def event_key(event_id: object) -> str | None:
    """The dedupe key of an event id as JSON gave it: its JSON text, so that the number
    12345 and the string "12345" differ, and a lone surrogate ("\\ud800") stays apart from
    the six characters that spell it ("\\\\ud800"). None for no id, or an id of another type."""
    if isinstance(event_id, str):
        return json.dumps(event_id) if event_id else None
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        return str(event_id)
    return None


def _key_of_body(body: bytes, event_id: str | None) -> str | None:
    """For rows stored before event keys: the key from the stored body, else the id as text."""
    try:
        event = json.loads(body).get("event")
        key = event_key(event.get("id")) if isinstance(event, dict) else None
    except (ValueError, AttributeError, RecursionError):
        key = None
    return key or (json.dumps(event_id) if event_id else None)


def default_path() -> Path:
    return data_dir() / "inbox.sqlite3"


def check_is_inbox(path: Path, option: str = "--db") -> None:
    """A usage error, nothing written (not even a lock beside it), when the file at `path`
    exists and is not an atwh inbox; before `serve` takes it."""
    if not path.is_file():
        return
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as e:
        raise UsageError(f"cannot open the inbox {path}: {e}") from None
    try:
        dbfile.recognise(conn, path, dbfile.INBOX, SCHEMA_VERSION, option)
    finally:
        conn.close()


@dataclass(slots=True)
class NewRequest:
    """A request as the receiver answered it, about to be stored."""

    received_at: float
    method: str
    path: str
    headers: Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str]]  # as received
    body: bytes
    verdict: str  # verified | test | unverified | rejected
    reason: str | None
    event_id: str | None
    event_name: str | None
    answer_code: int
    answer_body: str
    forward: bool = False
    event_key: str | None = None  # by default the id's, as a JSON string; see event_key()

    @property
    def acked(self) -> bool:
        return 200 <= self.answer_code <= 299


@dataclass(slots=True)
class Stored:
    id: int
    duplicate: bool
    conflict_of: int | None = None  # a duplicate whose body differs: stored, as a new row


@dataclass(slots=True)
class InboxRecord:
    id: int
    received: datetime
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    verdict: str
    reason: str | None
    event_id: str | None
    event_name: str | None
    answer_code: int
    answer_body: str
    acked: bool
    duplicates: int
    forward_status: str | None
    forward_attempts: int
    forward_code: int | None
    forward_error: str | None
    forwarded_at: datetime | None
    conflict_of: int | None = None

    # the names the delivery filters and exports use
    @property
    def created(self) -> datetime:
        return self.received

    @property
    def status_code(self) -> int:
        return self.answer_code

    @property
    def failed(self) -> bool:
        return not self.acked

    def payload_text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)

    def diagnose(
        self, secret: str, tolerance: float = signature.DEFAULT_TOLERANCE
    ) -> signature.Diagnosis:
        """`atwh verify` for this request, as at the moment it arrived."""
        return signature.diagnose(
            self.body,
            self.header(signature.SIGNATURE_HEADER),
            self.header(signature.TIMESTAMP_HEADER),
            secret,
            tolerance,
            now=self.received.timestamp(),
        )

    def payload_value(self) -> Any:
        try:
            return jsontext.loads(self.body)
        except ValueError:
            return self.payload_text()

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "eventId": self.event_id,
            "eventName": self.event_name,
            "verdict": self.verdict,
            "reason": self.reason,
            "answerCode": self.answer_code,
            "answerBody": self.answer_body,
            "receivedAt": iso(self.received),
            "duplicates": self.duplicates,
            "conflictOf": self.conflict_of,
            "forward": {
                "status": self.forward_status,
                "attempts": self.forward_attempts,
                "code": self.forward_code,
                "error": self.forward_error,
                "forwardedAt": iso(self.forwarded_at),
            }
            if self.forward_status
            else None,
            "headers": [{"name": n, "value": v} for n, v in self.headers],
            "payload": self.payload_value(),
        }

    CSV_COLUMNS = (
        "id",
        "received_at",
        "verdict",
        "reason",
        "answer_code",
        "event_id",
        "event_name",
        "duplicates",
        "forward_status",
        "forward_attempts",
        "forward_code",
        "body",
    )

    def csv_row(self) -> list[object]:
        return [
            self.id,
            iso(self.received),
            self.verdict,
            self.reason,
            self.answer_code,
            self.event_id,
            self.event_name,
            self.duplicates,
            self.forward_status,
            self.forward_attempts,
            self.forward_code,
            self.payload_text(),
        ]


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


def _header_text(headers: Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str]]) -> str:
    """Headers as received, one `name: value` a line (HTTP forbids CR and LF in both)."""
    if headers and isinstance(headers[0][0], bytes):
        return b"\r\n".join(map(b": ".join, headers)).decode("latin-1")  # type: ignore[arg-type]
    out = []
    for name, value in headers:
        n = name.decode("latin-1") if isinstance(name, bytes) else name
        v = value.decode("latin-1") if isinstance(value, bytes) else value
        out.append(f"{n}: {v}")
    return "\r\n".join(out)


def _record(row: Sequence[Any]) -> InboxRecord:
    headers = []
    for line in (row[4] or "").split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            headers.append((name, value))
    received = _dt(row[1])
    assert received is not None
    return InboxRecord(
        id=row[0],
        received=received,
        method=row[2],
        path=row[3],
        headers=headers,
        body=bytes(row[5]),
        verdict=row[6],
        reason=row[7],
        event_id=row[8],
        event_name=row[9],
        answer_code=row[10],
        answer_body=row[11],
        acked=bool(row[12]),
        duplicates=row[13],
        forward_status=row[15],
        forward_attempts=row[16],
        forward_code=row[18],
        forward_error=row[19],
        forwarded_at=_dt(row[20]),
        conflict_of=row[21],
    )


class Inbox:
    """One connection to the inbox database. Use one per thread."""

    def __init__(
        self,
        path: Path | str,
        *,
        create: bool = True,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
        autocheckpoint: bool = True,
        option: str = "--db",
    ) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise UsageError(f"no inbox at {self.path}", hint="start one with 'atwh serve'")
        try:
            if create:
                create_private(self.path)
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            found = self._recognise(create, option)
            if create:
                dbfile.use_wal(self.conn)
                self.conn.execute(f"PRAGMA synchronous = {synchronous}")
                if 0 < found.version < SCHEMA_VERSION:
                    self._migrate()
                dbfile.make_schema(self.conn, SCHEMA, dbfile.INBOX, SCHEMA_VERSION, found)
            # an inbox of an older schema, read and not written (atwh inbox): as it is
            have = {row[1] for row in self.conn.execute("PRAGMA table_info(requests)")}
            self.columns = _COLUMNS
            if have and "conflict_of" not in have:
                self.columns = _COLUMNS.replace("conflict_of", "NULL")
            if not autocheckpoint:  # someone else calls checkpoint(), off the hot path
                self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as e:
            raise UsageError(f"cannot open the inbox {self.path}: {e}") from None
        except OSError as e:
            raise UsageError(f"cannot open the inbox {self.path}: {e.strerror or e}") from None

    def _recognise(self, create: bool, option: str) -> dbfile.Found:
        """What the file is, read before anything is written to it: a usage error, the file
        untouched, unless it is an atwh inbox (or, to create one, a new empty file)."""
        try:
            found = dbfile.recognise(self.conn, self.path, dbfile.INBOX, SCHEMA_VERSION, option)
            if found.new and not create:
                raise UsageError(
                    f"{option} {printable(self.path, 200)} is not an atwh inbox: an empty database",
                    hint="start one with 'atwh serve'",
                )
        except BaseException:
            self.conn.close()
            raise
        return found

    def close(self) -> None:
        self.conn.close()

    def checkpoint(self, mode: str = "PASSIVE") -> None:
        """Copy committed pages from the WAL into the database file."""
        self.conn.execute(f"PRAGMA wal_checkpoint({mode})")

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        """An inbox of schema 1 or 2 to 3: event keys (and conflicting duplicates), in one
        transaction, so that a second process opening it meanwhile waits, then sees 3."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
                for column, kind in (("event_key", "TEXT"), ("conflict_of", "INTEGER")):
                    if column not in have:
                        conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
                # 1's index let test deliveries in; 2's keyed events by the id as text
                conn.execute("DROP INDEX IF EXISTS requests_acked_event")
                rows = conn.execute(
                    "SELECT id, body, event_id FROM requests WHERE event_id IS NOT NULL"
                ).fetchall()
                conn.executemany(
                    "UPDATE requests SET event_key = ? WHERE id = ?",
                    [(_key_of_body(bytes(body), eid), rid) for rid, body, eid in rows],
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- writing ------------------------------------------------------------------------

    def add_many(self, batch: Sequence[NewRequest]) -> list[Stored]:
        """Store a batch in one transaction; raises sqlite3.Error if it did not commit.

        The unique index and the upsert keep an acknowledged event to one row, and count
        the copies with the same body as duplicates. New rows take ids max(id)+1, … in
        order, so when max(id) grew by the size of the batch every request is a row of its
        own (the usual case: one executemany, no query per event). Otherwise the batch is
        undone and stored again one request at a time, each telling whether it was new, a
        duplicate, or a conflicting duplicate (same event, another body), which the upsert
        leaves alone and which is then stored as a row of its own outside the index.
        """
        now = time.time()
        rows = []
        usual = True  # every row in _USUAL's columns: one executemany
        for r in batch:
            acked = 200 <= r.answer_code <= 299
            key = r.event_key if r.event_key is not None else event_key(r.event_id)
            row: tuple[Any, ...] = (  # the columns of _USUAL, then of _ALL
                r.received_at,
                r.method,
                r.path,
                _header_text(r.headers),
                r.body,
                r.verdict,
                r.event_id,
                r.event_name,
                r.answer_code,
                r.answer_body,
                1 if acked else 0,
                key,
            )
            if r.forward and acked:
                row += (r.reason, "pending", now)
                usual = False
            elif r.reason is not None:
                row += (r.reason, None, None)
                usual = False
            rows.append(row)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(_MAX_ID).fetchone()[0]
            conn.execute("SAVEPOINT batch")
            if usual:
                conn.executemany(_INSERT_USUAL, rows)
            else:  # in order, each run of rows with its statement
                for short, run in groupby(rows, key=lambda row: len(row) == len(_USUAL)):
                    conn.executemany(_INSERT_USUAL if short else _INSERT, run)
            if conn.execute(_MAX_ID).fetchone()[0] - last == len(rows):
                out = [Stored(last + i, False) for i in range(1, len(rows) + 1)]
            else:
                conn.execute("ROLLBACK TO batch")
                out = [self._add_one(row) for row in rows]
            conn.execute("RELEASE batch")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    def _add_one(self, row: tuple[Any, ...]) -> Stored:
        """One row, in the caller's transaction: new, a duplicate, or a conflicting one."""
        conn = self.conn
        before = conn.execute(_MAX_ID).fetchone()[0]
        sql = _INSERT_USUAL if len(row) == len(_USUAL) else _INSERT
        got = conn.execute(sql + " RETURNING id", row).fetchone()
        if got is not None:
            return Stored(got[0], got[0] <= before)
        # the upsert left the stored row alone: the same event, another body
        (first,) = conn.execute(
            "SELECT id FROM requests WHERE event_key = ? AND acked = 1 AND verdict <> 'test' "
            "AND conflict_of IS NULL",
            (row[_USUAL.index("event_key")],),
        ).fetchone()
        again = conn.execute(  # that other body sent again: a duplicate of its own row
            "UPDATE requests SET duplicates = duplicates + 1, last_duplicate_at = ? "
            "WHERE id = (SELECT id FROM requests WHERE conflict_of = ? AND body = ? LIMIT 1) "
            "RETURNING id",
            (row[0], first, row[_USUAL.index("body")]),
        ).fetchone()
        if again is not None:
            return Stored(again[0], True, first)
        columns = _USUAL if len(row) == len(_USUAL) else _ALL
        cur = conn.execute(
            f"INSERT INTO requests ({', '.join(columns)}, conflict_of) "
            f"VALUES ({', '.join('?' * len(columns))}, ?)",
            (*row, first),
        )
        assert cur.lastrowid is not None
        return Stored(cur.lastrowid, False, first)

    def claim_forwards(self, now: float, until: float, limit: int = 16) -> list[InboxRecord]:
        """The records due for forwarding, claimed until `until`: one statement moves their
        next attempt to then, so another receiver on this inbox (--shared-db) does not take
        them meanwhile, and a forward whose result could not be saved is not due again at
        once. The result (forward_result) sets the next attempt for real."""
        rows = self.conn.execute(
            "UPDATE requests SET forward_next_at = ? WHERE id IN ("
            "SELECT id FROM requests WHERE forward_status IN ('pending', 'retrying') "
            "AND forward_next_at <= ? ORDER BY forward_next_at, id LIMIT ?) "
            f"RETURNING {self.columns}",
            (until, now, limit),
        ).fetchall()
        return sorted((_record(r) for r in rows), key=lambda r: r.id)

    def release_claims(self, record_ids: Sequence[int], now: float) -> None:
        """Claimed records whose forward did not finish (the receiver is stopping): due now."""
        for i in range(0, len(record_ids), 500):
            part = list(record_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            self.conn.execute(
                f"UPDATE requests SET forward_next_at = ? WHERE id IN ({marks}) "
                "AND forward_status IN ('pending', 'retrying')",
                (now, *part),
            )

    def next_forward_at(self) -> float | None:
        row = self.conn.execute(
            "SELECT min(forward_next_at) FROM requests "
            "WHERE forward_status IN ('pending', 'retrying')"
        ).fetchone()
        return row[0] if row else None

    def forward_result(
        self, record_id: int, code: int | None, error: str | None, next_at: float | None
    ) -> None:
        """The outcome of an attempt: delivered (no error), retrying at next_at, or failed
        for good (an error and no next attempt)."""
        status = "delivered" if error is None else "failed" if next_at is None else "retrying"
        self.conn.execute(
            "UPDATE requests SET forward_status = ?, forward_attempts = forward_attempts + 1, "
            "forward_code = ?, forward_error = ?, forward_next_at = ?, "
            "forwarded_at = CASE WHEN ? = 'delivered' THEN ? ELSE forwarded_at END "
            "WHERE id = ?",
            (status, code, error, next_at, status, time.time(), record_id),
        )

    # -- reading ------------------------------------------------------------------------

    def records(
        self, after_id: int = 0, newest_first: bool = False, bodies: bool = True
    ) -> Iterator[InboxRecord]:
        """Every record after `after_id`, 500 rows read at a time. Without `bodies`, each
        record's body is empty (read it with `body_of` when needed): a listing or a
        selection of a large inbox then holds no payload."""
        order = "DESC" if newest_first else "ASC"
        columns = self.columns if bodies else self.columns.replace(", body,", ", X'',")
        cur = self.conn.execute(
            f"SELECT {columns} FROM requests WHERE id > ? ORDER BY id {order}", (after_id,)
        )
        while True:
            rows = cur.fetchmany(500)
            if not rows:
                return
            for row in rows:
                yield _record(row)

    def body_of(self, record_id: int) -> bytes:
        """One record's body, exactly as it came (empty if there is no such record)."""
        row = self.conn.execute("SELECT body FROM requests WHERE id = ?", (record_id,)).fetchone()
        return bytes(row[0]) if row else b""

    def get(self, key: str) -> InboxRecord | None:
        """A record by its row id, or by the event id it carried (the acknowledged one first)."""
        row = None
        if key.isascii() and key.isdigit():
            row = self.conn.execute(
                f"SELECT {self.columns} FROM requests WHERE id = ?", (int(key),)
            ).fetchone()
        if row is None:
            row = self.conn.execute(
                f"SELECT {self.columns} FROM requests WHERE event_id = ? "
                "ORDER BY acked DESC, id DESC LIMIT 1",
                (key,),
            ).fetchone()
        return _record(row) if row else None

    def copies(self, event_id: str) -> list[InboxRecord]:
        """Every request stored with this event id, oldest first (`atwh check --inbox`)."""
        rows = self.conn.execute(
            f"SELECT {self.columns} FROM requests WHERE event_id = ? ORDER BY id", (event_id,)
        ).fetchall()
        return [_record(row) for row in rows]

    def event_ids(self, prefix: str, limit: int = 100) -> list[str]:
        """The distinct event ids that start with `prefix` (at most `limit`), by the index."""
        upper = prefix + "\U0010ffff"  # above every text that starts with the prefix
        rows = self.conn.execute(
            "SELECT DISTINCT event_id FROM requests WHERE event_id >= ? AND event_id < ? "
            "ORDER BY event_id LIMIT ?",
            (prefix, upper, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM requests").fetchone()[0])

    def backfill(
        self,
        event_id: str,
        event_name: str | None,
        body: bytes,
        received_at: float,
        answer_code: int,
        note: str,
    ) -> bool:
        """Store an event this inbox never got, taken from elsewhere (the provider's log), as
        `backfilled`: never verified, never forwarded. False when the event is already here."""
        cur = self.conn.execute(
            "INSERT INTO requests (received_at, method, path, headers, body, verdict, reason, "
            "event_id, event_name, answer_code, answer_body, acked, event_key) "
            "VALUES (?, 'POST', '', ?, ?, 'backfilled', ?, ?, ?, ?, '', 1, ?) "
            "ON CONFLICT (event_key) WHERE acked = 1 AND event_key IS NOT NULL "
            "AND verdict <> 'test' AND conflict_of IS NULL DO NOTHING",
            (
                received_at,
                _header_text([("x-atwh-backfilled", note)]),
                body,
                note,
                event_id,
                event_name,
                answer_code,
                _key_of_body(body, event_id),  # the id as the payload gives it, typed
            ),
        )
        return cur.rowcount == 1

    def acknowledged_events(self) -> Iterator[tuple[str, str | None]]:
        """(event id, event name) of every event acknowledged, test deliveries aside: one row
        each, as the unique index keeps them. Bodies are not read."""
        cur = self.conn.execute(
            "SELECT event_id, event_name FROM requests "
            "WHERE acked = 1 AND event_id IS NOT NULL AND verdict <> 'test' ORDER BY id"
        )
        while rows := cur.fetchmany(1000):
            yield from rows
