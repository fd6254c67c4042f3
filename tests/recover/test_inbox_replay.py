"""`atwh inbox replay`: requests stored by `atwh serve`, sent again to another receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from atwh.receiver import ReceiverSettings, create_app
from atwh.receiver.inbox import Inbox, InboxRecord
from atwh.server import BackgroundServer
from tests.recover.conftest import Loop

SECRET = "target-secret"


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    settings = ReceiverSettings(db=tmp_path / "target.sqlite3", secret=SECRET)
    with BackgroundServer(create_app(settings)) as srv:
        yield srv.url("/webhook"), settings.db


def received(db: Path) -> list[InboxRecord]:
    with Inbox(db, create=False) as box:
        return list(box.records())


def test_stored_bodies_go_out_byte_for_byte_re_signed_oldest_first(loop: Loop, atwh, target):
    url, db = target
    events = [loop.emit(id=f"T-{i}") for i in range(3)]
    loop.settled(*events)
    source = str(loop.settings.db)
    result = atwh("inbox", "replay", "--db", source, "--to", url, "--secret", SECRET)
    assert result.exit_code == 0, result.output
    got = received(db)
    # the order they came in (the registration's test request aside)
    stored = sorted((r for r in loop.inbox() if r.event_id), key=lambda r: (r.received, r.id))
    assert [r.event_id for r in got] == [r.event_id for r in stored]
    assert sorted(events) == sorted(r.event_id for r in got)
    assert all(r.verdict == "verified" for r in got)
    originals = {r.event_id: r for r in loop.inbox()}
    for r in got:
        assert r.body == originals[r.event_id].body
        assert dict(r.headers)["x-atwh-replay-of"] == str(originals[r.event_id].id)
    # once more: the ledger skips them all
    again = atwh("inbox", "replay", "--db", source, "--to", url, "--secret", SECRET, "--json")
    assert [o["result"] for o in json.loads(again.stdout)] == ["skipped"] * 3
    # by id, and by event id prefix; unsigned without a secret (a test delivery there)
    picked = atwh(
        "inbox",
        "replay",
        str(stored[0].id),
        stored[2].event_id[:12],
        "--db",
        source,
        "--to",
        url,
        "--force",
        "--json",
    )
    assert picked.exit_code == 0, picked.output
    by_row = {r.id: r.event_id for r in stored}
    want = [stored[0].event_id, stored[2].event_id]
    assert [o["eventId"] for o in json.loads(picked.stdout)] == [
        e for e in by_row.values() if e in want
    ]
    assert "no secret: the events go out unsigned" in picked.stderr
    assert [r.verdict for r in received(db)][-2:] == ["test", "test"]


def test_filters_dry_run_and_a_target_that_rejects(loop: Loop, atwh, target):
    url, db = target
    first = loop.emit("ticket.created", id="T-1")
    second = loop.emit("ticket.updated", id="T-1")
    loop.settled(first, second)
    source = str(loop.settings.db)
    dry = atwh("inbox", "replay", "--db", source, "--to", url, "-e", "ticket.updated", "--dry-run")
    assert dry.exit_code == 0
    assert second in dry.stdout and first not in dry.stdout and received(db) == []
    wrong = atwh("inbox", "replay", "--db", source, "--to", url, "--secret", "wrong", "--json")
    assert wrong.exit_code == 1
    report = json.loads(wrong.stdout)
    assert {o["statusCode"] for o in report} == {401}
    assert all("bad_signature" in o["detail"] for o in report)


def test_inbox_replay_bad_input(atwh, tmp_path):
    missing = atwh("inbox", "replay", "--db", str(tmp_path / "no.sqlite3"), "--to", "http://x/")
    assert missing.exit_code == 2 and "no inbox at" in missing.stderr
    no_to = atwh("inbox", "replay")
    assert no_to.exit_code == 2 and "--to" in no_to.stderr
    Inbox(tmp_path / "empty.sqlite3").close()
    empty = atwh("inbox", "replay", "--db", str(tmp_path / "empty.sqlite3"), "--to", "http://x/")
    assert empty.exit_code == 0 and "Nothing to replay: no stored request" in empty.stderr
