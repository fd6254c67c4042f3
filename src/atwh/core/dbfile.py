"""Which SQLite files are atwh's: each kind (the inbox, the replay ledger, the emulator's
state) carries its own SQLite `application_id` and a `user_version`, and is recognised by
them before anything is written to it.

`recognise` only reads (the header and the table list): a file that is not the kind asked
for, or not SQLite at all, is refused untouched, with a UsageError (exit 2) that says what
the file is not. Files written before atwh set an application_id are recognised by their
tables and version; `make_schema` then stamps them, as it stamps a new file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from atwh.errors import UsageError, printable


@dataclass(frozen=True)
class Kind:
    """One kind of atwh database."""

    name: str  # as a sentence says it: "an atwh inbox"
    application_id: int
    # what a file of this kind looked like before application_id: version → tables, and the
    # columns of its main table that any version of it had
    legacy_versions: Collection[int]
    main_table: str
    main_columns: frozenset[str]


def _tag(text: str) -> int:
    """Four ASCII letters as SQLite's 32-bit signed application_id."""
    value = int.from_bytes(text.encode("ascii"), "big")
    return value - (1 << 32) if value >= 1 << 31 else value


INBOX = Kind(
    "an atwh inbox",
    _tag("awhI"),
    legacy_versions=(1, 2, 3),
    main_table="requests",
    main_columns=frozenset({"received_at", "body", "verdict", "answer_code", "acked"}),
)
LEDGER = Kind(
    "an atwh replay ledger",
    _tag("awhL"),
    legacy_versions=(1,),
    main_table="attempts",
    main_columns=frozenset({"run_id", "event_key", "target", "ok"}),
)
EMULATOR = Kind(
    "an atwh emulator state",
    _tag("awhE"),
    legacy_versions=(0,),
    main_table="objects",
    main_columns=frozenset({"kind", "id", "data"}),
)
KINDS = (INBOX, LEDGER, EMULATOR)


@dataclass(frozen=True)
class Found:
    """What `recognise` found: a new (empty) file, or one of `kind` at `version`."""

    new: bool
    version: int
    stamped: bool  # carries the application_id (false for a file from before it)


def recognise(conn: sqlite3.Connection, path: Path, kind: Kind, newest: int, option: str) -> Found:
    """What the file behind `conn` is, read without writing a byte. Raises UsageError
    naming `option` when it is not `kind` (nor a new, empty file), or is of a schema newer
    than `newest` (the one this atwh writes)."""

    def refuse(what: str) -> UsageError:
        return UsageError(
            f"{option} {printable(path, 200)} is not {kind.name}: {what}; it was left untouched",
            hint="give another path",
        )

    own = not conn.in_transaction  # one read transaction: the stamp and the tables of one
    try:  # moment, not a stamp read before another process's make_schema and tables after
        if own:
            conn.execute("BEGIN")
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        }
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise refuse(f"not a SQLite database ({printable(e, 80)})") from None
    finally:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
    if app_id == kind.application_id:
        if version > newest:
            raise UsageError(
                f"{option} {printable(path, 200)} was written by a newer atwh "
                f"(schema {version}; this one knows {newest})",
                hint="upgrade atwh",
            )
        return Found(new=False, version=version, stamped=True)
    other = next((k for k in KINDS if k.application_id == app_id and app_id), None)
    if other is not None:
        raise refuse(f"it is {other.name}")
    if app_id:
        raise refuse(f"a SQLite database of another program (application_id {app_id:#x})")
    if not tables and version == 0:
        return Found(new=True, version=0, stamped=False)
    legacy = _legacy_kind(conn, tables, version)
    if legacy is kind:
        return Found(new=False, version=version, stamped=False)
    if legacy is not None:
        raise refuse(f"it is {legacy.name}")
    shown = ", ".join(sorted(printable(t, 40) for t in tables)[:5]) or "none"
    raise refuse(f"a SQLite database of another program (tables: {shown})")


def _legacy_kind(conn: sqlite3.Connection, tables: set[str], version: int) -> Kind | None:
    """The kind of a file atwh wrote before it set application_id, if it is one."""
    for k in KINDS:
        if version in k.legacy_versions and k.main_table in tables:
            try:
                columns = {row[1] for row in conn.execute(f'PRAGMA table_info("{k.main_table}")')}
            except sqlite3.DatabaseError:
                return None
            if k.main_columns <= columns:
                return k
    return None


def use_wal(conn: sqlite3.Connection, seconds: float = 5.0) -> None:
    """Switch the file to WAL. Another process making the same new file at the same moment
    can hold it locked in a way SQLite reports at once, without its busy handler: try again
    for up to `seconds`."""
    import time

    until = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > until:
                raise
            time.sleep(0.02)


def make_schema(
    conn: sqlite3.Connection, schema: str, kind: Kind, version: int, found: Found
) -> None:
    """Create what is missing of the schema and stamp the file, in one write transaction
    (`conn` in autocommit mode): another process that opens the file meanwhile sees it
    either empty or whole and stamped, never tables without the stamp, which `recognise`
    would take for another program's."""
    stamping = not found.stamped or found.version < version
    marks = (
        f"PRAGMA application_id = {int(kind.application_id)};\n"
        f"PRAGMA user_version = {int(version)};\n"
        if stamping
        else ""
    )
    conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\n{marks}COMMIT;")


def create_private(path: Path) -> None:
    """The file's directory (0700) and the file (0600), if they do not exist yet: atwh's
    databases hold payloads, headers and targets. SQLite gives its -wal and -shm files the
    database file's mode."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:  # a file where a directory should be: say so
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", str(path.parent)) from None
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
