"""Issue 22, item 10: atwh writes only to its own SQLite files. The inbox, the replay ledger
and the emulator's state each carry an application_id and a user_version; anything else
(another program's database, even with a `requests` table; another kind of atwh file; not
SQLite at all) is refused with exit 2 and a sentence, and left byte for byte as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from atwh.cli import app
from atwh.emulator import EmulatorSettings, create_app
from atwh.emulator.state import State
from atwh.errors import UsageError
from atwh.receiver.inbox import Inbox, NewRequest
from atwh.recover.ledger import Ledger
from tests.conftest import API_URL, FakeApi, node


def other_programs_db(path: Path) -> Path:
    """A database of another program, with a `requests` table of its own."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, url TEXT, body BLOB)")
        conn.execute("INSERT INTO requests (url, body) VALUES ('https://x', x'00ff')")
    return path


def digest(path: Path) -> tuple[str, list[str]]:
    """The file's bytes, and which files lie beside it (a -wal would be a write)."""
    files = sorted(p.name for p in path.parent.iterdir())
    return hashlib.sha256(path.read_bytes()).hexdigest(), files


def one_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


COMMANDS = [
    ["inbox"],
    ["inbox", "show", "1"],
    ["inbox", "replay", "--to", "http://127.0.0.1:9/x", "--secret", "s3cret", "--yes"],
    ["serve", "--port", "0"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_another_programs_database_is_not_an_inbox_and_is_left_untouched(tmp_path, command):
    db = other_programs_db(tmp_path / "theirs.db")
    before = digest(db)
    result = CliRunner().invoke(app, [*command, "--db", str(db)])
    line = one_error(result, 2)
    assert f"--db {db} is not an atwh inbox" in line
    assert "another program" in line
    assert digest(db) == before


def test_another_programs_database_as_the_ledger_is_left_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("ATWH_TOKEN", "t")
    theirs = other_programs_db(tmp_path / "theirs.db")
    before = digest(theirs)
    fake = FakeApi()
    fake.add("w1", [node(1, code=500)], url="https://example.com/webhook")
    fake.webhooks["w1"]["secret"] = "s3cret"
    with respx.mock(assert_all_called=False) as router:
        router.post(API_URL).mock(side_effect=fake)
        sent = router.post("https://example.com/webhook").respond(200)
        result = CliRunner().invoke(app, ["replay", "w1", "--ledger", str(theirs)])
        line = one_error(result, 2)
        assert f"--ledger {theirs} is not an atwh replay ledger" in line
        assert not sent.called
        history = CliRunner().invoke(app, ["replay", "--history", "--ledger", str(theirs)])
        one_error(history, 2)
    assert digest(theirs) == before


def test_the_inbox_as_the_ledger_says_what_it_is(tmp_path):
    inbox = tmp_path / "inbox.sqlite3"
    with Inbox(inbox) as box:
        box.add_many([NewRequest(1.0, "POST", "/", [], b"{}", "test", None, None, None, 200, "{}")])
    before = digest(inbox)
    with pytest.raises(UsageError, match="is not an atwh replay ledger: it is an atwh inbox"):
        Ledger(inbox)
    with pytest.raises(UsageError, match="is not an atwh inbox: it is an atwh replay ledger"):
        Inbox(Ledger(tmp_path / "ledger.sqlite3").path)
    with pytest.raises(UsageError, match="is not an atwh emulator state: it is an atwh inbox"):
        State(inbox)
    assert digest(inbox)[0] == before[0]


def test_the_emulator_refuses_another_programs_database_untouched(tmp_path):
    theirs = other_programs_db(tmp_path / "theirs.db")
    before = digest(theirs)
    with pytest.raises(UsageError, match="is not an atwh emulator state: a SQLite database of"):
        create_app(EmulatorSettings(db=theirs))  # (what `atwh emulator --db` builds)
    assert digest(theirs) == before


def test_atwhs_own_files_from_before_application_id_are_still_read(tmp_path):
    """An inbox, a ledger and an emulator state written before atwh stamped its files: each
    is its kind (recognised by its tables), and stamped when next opened to write."""
    inbox, ledger, state = tmp_path / "i.sqlite3", tmp_path / "l.sqlite3", tmp_path / "e.db"
    Inbox(inbox).close()
    Ledger(ledger).close()
    State(state).conn.close()  # type: ignore[union-attr]
    for path in (inbox, ledger, state):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA application_id = 0")
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA user_version = 0")  # the emulator set none
    Inbox(inbox, create=False).close()
    Ledger(ledger, create=False).close()
    Inbox(inbox).close()
    Ledger(ledger).close()
    State(state).conn.close()  # type: ignore[union-attr]
    for path in (inbox, ledger, state):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA application_id").fetchone()[0] != 0


@pytest.mark.parametrize("open_it", [Ledger, Inbox], ids=["ledger", "inbox"])
def test_runs_that_make_one_new_file_at_once_all_recognise_it(tmp_path, open_it):
    """Two replays (or serves) started together on a new file: each sees it empty, or whole
    and stamped, never tables without the stamp, which it would refuse as another
    program's; nor a lock at the switch to WAL (a CI run of the overlapping-replays test
    met both)."""
    import threading

    refused: list[str] = []
    for i in range(15):
        path = tmp_path / f"new-{i}.sqlite3"
        start = threading.Barrier(4)

        def one(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                open_it(path).close()
            except UsageError as e:
                refused.append(str(e))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert refused == []
