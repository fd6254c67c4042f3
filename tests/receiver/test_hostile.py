"""`atwh serve` against hostile or broken input, over real sockets on 127.0.0.1: requests
that once stopped forwarding, merged events, crashed the parser or were stored unbounded;
a locked inbox under forwarding; forwarding loops."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unicodedata import category

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atwh.errors import printable
from atwh.receiver import forward as forward_module
from atwh.receiver.app import MAX_HEADER_BYTES, MAX_HEADERS
from atwh.receiver.inbox import SCHEMA_VERSION, Inbox, NewRequest
from atwh.receiver.live import LiveView
from atwh.receiver.settings import ReceiverSettings
from atwh.server import BackgroundServer
from tests.conftest import free_port, request_body, wait_for
from tests.receiver.test_serve import (
    SECRET,
    SUCCESS,
    TEST_EVENT,
    Target,
    built,
    event,
    raw_http,
    receiver,
    rows,
    signed,
    started,
    status_and_json,
)

__all__ = ["started"]  # a fixture of test_serve's, used here


def _post_raw(port: int, body: bytes, extra_head: bytes = b"", path: bytes = b"/webhook") -> bytes:
    head = (
        b"POST "
        + path
        + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        + extra_head
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    )
    return raw_http(port, head + body)


def _port(r: Any) -> int:
    return r.srv.sock.getsockname()[1]


# -- 1. one record never stops forwarding -----------------------------------------------------


def test_a_header_value_that_is_not_ascii_is_forwarded_byte_for_byte(tmp_path):
    target = Target()
    weird = event("ticket.created", "e-cafe")
    later = event("ticket.updated", "e-after")
    with BackgroundServer(target) as app_srv:
        with receiver(tmp_path, forward_to=app_srv.url("/in"), forward_max_delay=0.2) as r:
            raw = _post_raw(_port(r), weird, b"content-type: application/json; charset=caf\xe9\r\n")
            assert status_and_json(raw) == (200, TEST_EVENT)
            assert r.post(later, signed(later)).status_code == 200
            wait_for(lambda: len(target.hits) >= 2, what="both forwarded")
    by_body = {h.body: h for h in target.hits}
    assert by_body[weird].headers["content-type"] == "application/json; charset=caf\xe9"
    assert {x["forward_status"] for x in rows(r.db, "acked = 1")} == {"delivered"}


def test_any_error_on_one_record_is_recorded_on_it_and_forwarding_goes_on(
    tmp_path, monkeypatch, caplog
):
    target = Target()
    original = forward_module.Forwarder.headers

    def headers(self: Any, rec: Any) -> Any:
        if rec.event_id == "e-bad":
            raise RuntimeError("boom")
        return original(self, rec)

    monkeypatch.setattr(forward_module.Forwarder, "headers", headers)
    bad, good = event("ticket.created", "e-bad"), event("ticket.created", "e-good")
    with (
        caplog.at_level(logging.ERROR, "atwh.receiver.forward"),
        BackgroundServer(target) as app_srv,
        receiver(tmp_path, forward_to=app_srv.url("/in"), forward_max_delay=0.2) as r,
    ):
        assert r.post(bad, signed(bad)).status_code == 200
        wait_for(lambda: rows(r.db, "event_id = 'e-bad' AND forward_attempts >= 2"))
        assert r.post(good, signed(good)).status_code == 200
        wait_for(lambda: target.hits, what="the next event forwarded")
        (row,) = rows(r.db, "event_id = 'e-bad'")
    assert [h.body for h in target.hits] == [good]
    assert row["forward_status"] == "retrying"
    assert row["forward_error"] == "could not send it: RuntimeError: boom"
    assert f"forward of #{row['id']} failed: could not send it" in caplog.text


# -- 3. dedupe keeps ids of different types and spellings apart --------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        (12345, "12345"),
        ("\ud800", "\\ud800"),
        (1, True),
        ("a", "a "),
    ],
)
def test_ids_of_different_json_types_or_spellings_are_different_events(tmp_path, first, second):
    bodies = [
        json.dumps({"event": {"id": eid, "name": "ticket.created"}}).encode()
        for eid in (first, second)
    ]
    assert bodies[0] != bodies[1]
    with receiver(tmp_path, secret=SECRET) as r:
        for body in bodies:
            response = r.post(body, signed(body))
            assert (response.status_code, response.json()) == (200, SUCCESS)
    stored = rows(r.db, "acked = 1")
    assert [bytes(x["body"]) for x in stored] == bodies
    assert [x["duplicates"] for x in stored] == [0, 0]


def test_a_duplicate_with_another_body_is_stored_and_flagged(tmp_path, atwh):
    one = event("ticket.created", "e-same", n=1)
    other = event("ticket.created", "e-same", n=2)
    with receiver(tmp_path, secret=SECRET) as r:
        for body in (one, one, other, other):
            assert r.post(body, signed(body)).json() == SUCCESS
    first, conflicting, *rest = rows(r.db)
    assert rest == []
    assert (bytes(first["body"]), first["duplicates"], first["conflict_of"]) == (one, 1, None)
    assert bytes(conflicting["body"]) == other
    assert (conflicting["conflict_of"], conflicting["duplicates"]) == (first["id"], 1)
    shown = atwh("inbox", "show", str(conflicting["id"]), "--db", str(r.db)).stdout
    assert f"the event of #{first['id']} again, with another body" in shown
    as_json = json.loads(
        atwh("inbox", "show", str(conflicting["id"]), "--db", str(r.db), "--json").stdout
    )
    assert as_json["conflictOf"] == first["id"]


def test_concurrent_batches_with_conflicts_get_each_request_its_row(tmp_path):
    with Inbox(tmp_path / "inbox.sqlite3") as inbox:

        def req(eid: str, body: bytes) -> NewRequest:
            return NewRequest(0, "POST", "/w", [], body, "verified", None, eid, "t", 200, "{}")

        stored = inbox.add_many(
            [req("a", b"1"), req("a", b"1"), req("a", b"2"), req("b", b"1"), req("a", b"2")]
        )
    assert [(s.id, s.duplicate, s.conflict_of) for s in stored] == [
        (1, False, None),
        (1, True, None),
        (2, False, 1),
        (3, False, None),
        (2, True, 1),  # the conflicting body again: a duplicate of its row
    ]


# the schema of an inbox written by atwh before event keys (user_version 2)
_SCHEMA_2 = """
CREATE TABLE requests (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, verdict TEXT NOT NULL,
    reason TEXT, event_id TEXT, event_name TEXT, answer_code INTEGER NOT NULL,
    answer_body TEXT NOT NULL, acked INTEGER NOT NULL, duplicates INTEGER NOT NULL DEFAULT 0,
    last_duplicate_at REAL, forward_status TEXT, forward_attempts INTEGER NOT NULL DEFAULT 0,
    forward_next_at REAL, forward_code INTEGER, forward_error TEXT, forwarded_at REAL
);
CREATE UNIQUE INDEX requests_acked_event
    ON requests(event_id) WHERE acked = 1 AND event_id IS NOT NULL AND verdict <> 'test';
CREATE INDEX requests_forward_due
    ON requests(forward_next_at) WHERE forward_status IN ('pending', 'retrying');
PRAGMA user_version = 2;
"""


def test_an_inbox_of_schema_2_is_migrated_and_keeps_deduplicating(tmp_path):
    db = tmp_path / "inbox.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(_SCHEMA_2)
    numeric = b'{"event": {"id": 77, "name": "ticket.created"}}'
    text = event("ticket.created", "e-old")
    for eid, body in (("77", numeric), ("e-old", text)):
        conn.execute(
            "INSERT INTO requests (received_at, method, path, headers, body, verdict, event_id, "
            "event_name, answer_code, answer_body, acked) VALUES (1, 'POST', '/webhook', '', ?, "
            "'verified', ?, 'ticket.created', 200, '{}', 1)",
            (body, eid),
        )
    conn.commit()
    conn.close()
    # read as it is, by atwh inbox, before any atwh serve migrates it
    with Inbox(db, create=False) as old:
        assert [(r.event_id, r.conflict_of) for r in old.records()] == [
            ("77", None),
            ("e-old", None),
        ]
        assert old.get("e-old") is not None
    as_text = b'{"event": {"id": "77", "name": "ticket.created"}}'
    with receiver(tmp_path, secret=SECRET) as r:
        for body in (numeric, text, as_text):
            assert r.post(body, signed(body)).json() == SUCCESS
    stored = rows(db)
    assert [(x["event_id"], x["duplicates"]) for x in stored] == [
        ("77", 1),
        ("e-old", 1),
        ("77", 0),
    ]
    assert [x["event_key"] for x in stored] == ["77", '"e-old"', '"77"']
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


# -- 4. deep JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 1020, 5000])
def test_deep_json_with_a_float_id_is_400_not_a_crash(tmp_path, depth):
    body = (
        b'{"event": {"id": 1.5, "name": "ticket.created"}, "x": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )
    with receiver(tmp_path, secret=SECRET) as r:
        response = r.post(body, signed(body))
        assert (response.status_code, response.json()["message"]) == (400, "Body is not valid JSON")
        unsigned = r.post(body)  # a test delivery peeks at the event: no crash either
        assert unsigned.status_code == 200
    assert [x["answer_code"] for x in rows(r.db)] == [400, 200]


# -- 5. the header block is bounded ----------------------------------------------------------


def test_too_many_headers_are_431_and_not_stored(tmp_path):
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(MAX_HEADERS))
    with receiver(tmp_path, max_body=1024) as r:
        code, answer = status_and_json(_post_raw(_port(r), event(), many))
        ok, _ = status_and_json(_post_raw(_port(r), event(), many[: -len(b"x-h99: v\r\n") * 5]))
    assert code == 431 and "headers" in answer["message"]
    assert ok == 200
    first, second = rows(r.db)
    assert (first["reason"], first["headers"], bytes(first["body"])) == (
        "headers_too_large",
        "",
        b"",
    )
    assert second["answer_code"] == 200


def test_a_header_block_over_64_kib_is_431_and_not_stored(tmp_path):
    big = b"x-big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"
    with receiver(tmp_path, max_body=1024) as r:
        code, answer = status_and_json(_post_raw(_port(r), event(), big))
    assert (code, answer["message"]) == (431, f"Headers larger than {MAX_HEADER_BYTES} bytes")
    (row,) = rows(r.db)
    assert len(row["headers"]) == 0 and row["answer_code"] == 431


# -- 6. a locked inbox under forwarding: back off, no duplicate storm --------------------------


class HeldTarget(Target):
    """The user's app, holding every answer until `release` is set: what is in flight stays
    so for as long as a test needs, however slow the machine."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.arrived = 0  # requests that came, answered or not

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.arrived += 1
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        await super().__call__(scope, receive, send)


def _hold_write_lock(db: Path, seconds: float, taken: threading.Event) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    taken.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def _all_delivered_at_most_twice(r: Any, target: Target, bodies: list[bytes]) -> None:
    """Every event recorded as delivered, and none reached the app more than twice."""
    wait_for(
        lambda: {x["forward_status"] for x in rows(r.db)} == {"delivered"},
        15,
        "every forward recorded as delivered",
    )
    time.sleep(0.5)  # for copies still on their way
    copies = Counter(h.body for h in target.hits)
    assert set(copies) == set(bodies)
    assert max(copies.values()) <= 2, copies


def test_forward_results_that_cannot_be_saved_back_off_and_do_not_storm(tmp_path, caplog):
    target = HeldTarget()
    bodies = [event("ticket.created", f"e-lock{i}") for i in range(8)]
    with (
        caplog.at_level(logging.ERROR, "atwh.receiver.forward"),
        BackgroundServer(target) as app_srv,
        receiver(
            tmp_path, secret=SECRET, forward_to=app_srv.url("/in"), forward_max_delay=0.5
        ) as r,
    ):
        for body in bodies:
            assert r.post(body, signed(body)).status_code == 200
        wait_for(lambda: target.arrived >= 1, 10, "a forward to reach the app")
        taken = threading.Event()
        locker = threading.Thread(target=_hold_write_lock, args=(r.db, 2.0, taken))
        locker.start()  # while the app holds its answers: none of their results can be saved
        assert taken.wait(5)
        target.release.set()
        locker.join(10)
        _all_delivered_at_most_twice(r, target, bodies)
    assert "could not record the forward" in caplog.text


# -- 8. forwarding loops ---------------------------------------------------------------------


def test_a_forward_that_comes_back_is_508_and_not_forwarded_again(tmp_path):
    # --forward-to a proxy that sends everything back to the receiver itself
    back: dict[str, str] = {}

    async def proxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        import httpx

        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"content-length")]
        async with httpx.AsyncClient() as client:
            answer = await client.post(back["url"], content=body, headers=headers)
        await send({"type": "http.response.start", "status": answer.status_code, "headers": []})
        await send({"type": "http.response.body", "body": answer.content})

    body = event("ticket.created", "e-loop")
    with BackgroundServer(proxy) as proxy_srv:
        with receiver(tmp_path, forward_to=proxy_srv.url("/p"), forward_max_delay=0.3) as r:
            back["url"] = r.url()
            assert r.post(body, signed(body, secret="theirs")).status_code == 200
            wait_for(lambda: len(rows(r.db)) >= 2, what="the forward come back")
            time.sleep(1.0)
            stored = rows(r.db)
    first, looped = stored  # and no more: a forward answered 508 is not retried
    assert (looped["answer_code"], looped["reason"]) == (508, "forward_loop")
    assert looped["forward_status"] is None
    assert (first["forward_code"], first["forward_status"]) == (508, "failed")
    assert first["forward_error"].startswith("HTTP 508: a forwarding loop")


# -- starting: one receiver per inbox, never forwarding to itself, private files ---------------

BANNER = re.compile(r"atwh serve: POST webhooks to (http://127\.0\.0\.1:\d+/webhook)")


@contextmanager
def serving(db: Path, *args: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`atwh serve` in a process of its own, stopped (SIGTERM, then SIGKILL) at the end."""
    command = [sys.executable, "-m", "atwh", "serve", "--port", "0", "--db", str(db), *args]
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=os.environ)
    try:
        wait_for(
            lambda: proc.poll() is not None or "\n" in log.read_text(errors="replace"),
            20,
            "the banner",
        )
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()}"
        match = BANNER.match(log.read_text())
        assert match, log.read_text()
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _run_serve(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "atwh", "serve", "--port", "0", "--db", str(db), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, env=os.environ)


def test_a_second_serve_on_one_db_refuses_to_start_naming_the_first(tmp_path):
    db = tmp_path / "inbox.sqlite3"
    with serving(db, log=tmp_path / "first.log") as (first, _):
        for extra in ((), ("--shared-db",)):
            second = _run_serve(db, *extra)
            assert second.returncode == 2, second.stderr
            (line,) = second.stderr.strip().splitlines()
            assert line.startswith(
                f"Error: another atwh serve (pid {first.pid}) is using the inbox {db} ("
            )
            assert "--shared-db" in line
    # the first gone, however it went, the inbox is free again
    with serving(db, log=tmp_path / "again.log"):
        pass


def test_serves_sharing_one_db_forward_each_event_once(tmp_path):
    target = Target()
    db = tmp_path / "inbox.sqlite3"
    bodies = [event("ticket.created", f"e-shared{i}") for i in range(60)]
    with BackgroundServer(target) as app_srv:
        fwd = ("--shared-db", "--forward-to", app_srv.url("/in"), "--secret", SECRET)
        with (
            serving(db, *fwd, log=tmp_path / "a.log") as (_, url_a),
            serving(db, *fwd, log=tmp_path / "b.log") as (_, url_b),
            httpx.Client(trust_env=False, timeout=10) as client,
        ):
            for i, body in enumerate(bodies):
                url = url_a if i % 2 else url_b
                # two processes write the one inbox: a commit that meets the other's lock
                # for over the busy timeout (100 ms, likely on a loaded machine) is
                # answered 503, as documented, and the sender tries again, as Allthings does
                _post_until_2xx(client, url, body)
            wait_for(
                lambda: {x["forward_status"] for x in rows(db)} == {"delivered"},
                20,
                "every event forwarded",
            )
            time.sleep(1.0)
    copies = Counter(h.body for h in target.hits)
    assert set(copies) == set(bodies)
    assert set(copies.values()) == {1}


def _post_until_2xx(client: httpx.Client, url: str, body: bytes) -> None:
    """Post a signed event until it gets 200, as Allthings retries a 503; bounded."""
    deadline = time.monotonic() + 20
    while (code := client.post(url, content=body, headers=signed(body)).status_code) == 503:
        assert time.monotonic() < deadline, "503 for 20 s"
        time.sleep(0.05)
    assert code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_forward_to_the_receivers_own_address_is_refused_at_start(tmp_path, host):
    port = free_port()
    result = _run_serve(
        tmp_path / "inbox.sqlite3", "--port", str(port), "--forward-to", f"http://{host}:{port}/x"
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"Error: --forward-to http://{host}:{port}/x is this receiver's own address: "
        "every event would come round again"
    )
    assert not (tmp_path / "inbox.sqlite3").exists()


def test_forward_secret_without_a_secret_is_refused(tmp_path):
    result = _run_serve(
        tmp_path / "inbox.sqlite3", "--forward-to", "http://127.0.0.1:9/x", "--forward-secret", "s"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: --forward-secret needs a secret to verify with")


def test_inbox_files_are_private(tmp_path):
    db = tmp_path / "new" / "dir" / "inbox.sqlite3"
    with (
        serving(db, log=tmp_path / "serve.log") as (_, url),
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        assert client.post(url, content=event()).status_code == 200
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()}
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert files["inbox.sqlite3"] == 0o600
    assert files["inbox.sqlite3.lock"] == 0o600
    assert files.get("inbox.sqlite3-wal", 0o600) == 0o600
    assert files.get("inbox.sqlite3-shm", 0o600) == 0o600


def test_serve_forward_unsigned_and_shared_db_flags(atwh, started, tmp_path):
    fwd = "http://127.0.0.1:3000/in"
    s, sock, result = built(
        atwh, started, "--port", "0", "--secret", "x", "--forward-to", fwd, "--forward-unsigned",
        "--shared-db",
    )  # fmt: skip
    assert (s.forward_to, s.forward_unsigned) == (fwd, True)
    assert f"  forwarding every accepted request to {fwd}" in result.stderr.splitlines()
    started.pop()[1].close()
    s, _, _ = built(atwh, started, "--port", "0", "--forward-to", fwd)
    assert s.forward_unsigned is False
    bad = atwh("serve", "--port", "0", "--forward-unsigned")
    assert (bad.exit_code, bad.stderr) == (2, "Error: --forward-unsigned needs --forward-to\n")


# -- 12. terminal escapes from the network never reach the terminal ---------------------------

EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\\u202e"
RAW_EVIL = EVIL.encode()
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@given(st.text())
def test_printable_leaves_no_control_character(text):
    one = printable(text, None)
    assert all(ch.isprintable() for ch in one)
    kept = printable(text, None, lines=True)  # spaces of other widths are harmless
    assert all(ch.isprintable() or ch in "\n\t" or category(ch) == "Zs" for ch in kept)
    assert not CONTROLS.search(one) and not CONTROLS.search(kept)


@given(st.dictionaries(st.text(), st.text() | st.integers()))
def test_printable_json_stays_the_same_json(value):
    text = json.dumps(value, ensure_ascii=False, indent=2)
    assert json.loads(printable(text, None, lines=True)) == value


def test_printable_shows_escapes_as_json_writes_them():
    assert printable("a\x1b[2Jb\x9b") == "a\\u001b[2Jb\\u009b"
    assert printable("x\r\ny\x07", None, lines=True) == "x\ny\\u0007"


def _evil_inbox(tmp_path: Path) -> tuple[Path, LiveView, io.StringIO, LiveView, io.StringIO]:
    text, ndjson = io.StringIO(), io.StringIO()
    views = LiveView(text, verbose=True, colour=False), LiveView(ndjson, as_json=True, verbose=True)

    def both(*args: Any) -> None:
        for view in views:
            view.request(*args)

    with receiver(tmp_path, on_request=both, accept_any_event=True) as r:
        parsed = json.dumps({"event": {"id": "id" + EVIL, "name": "n" + EVIL}, "x": EVIL})
        port = r.srv.sock.getsockname()[1]
        raw = _post_raw(port, parsed.encode(), b"x-evil: \x9b31m\xc2\x9b\r\n")
        assert status_and_json(raw)[0] == 200
        assert r.post(RAW_EVIL).status_code == 200  # not JSON: a test delivery as it came
        wait_for(lambda: len(ndjson.getvalue().splitlines()) >= 2, 5, "both live lines")
    for view in views:
        view.flush()
    return r.db, *views[:1], text, views[1], ndjson  # type: ignore[return-value]


def test_no_escape_reaches_the_terminal_from_inbox_or_live_view(tmp_path, atwh):
    db, _, text, _, ndjson = _evil_inbox(tmp_path)
    outputs = {
        "serve --verbose": text.getvalue(),
        "serve --json --verbose": ndjson.getvalue(),
        "inbox": atwh("inbox", "--db", str(db)).stdout,
    }
    for key in ("1", "2"):
        outputs[f"inbox show {key}"] = atwh("inbox", "show", key, "--db", str(db)).stdout
        shown = atwh("inbox", "show", key, "--db", str(db), "--json").stdout
        outputs[f"inbox show {key} --json"] = shown
        assert json.loads(shown)["body"] == (
            RAW_EVIL.decode() if key == "2" else rows(db)[0]["body"].decode()
        )
    for line in ndjson.getvalue().splitlines():
        json.loads(line)
    for name, out in outputs.items():
        assert out.strip(), name
        assert not CONTROLS.search(out), (name, CONTROLS.findall(out))
    assert "\\u001b]0;pwned\\u0007" in outputs["inbox show 2"]  # shown, visibly
    assert "\\u009b31m" in outputs["serve --verbose"]


def test_an_inbox_that_cannot_be_created_is_one_line_exit_2(tmp_path):
    (tmp_path / "file").write_text("")
    result = _run_serve(tmp_path / "file" / "inbox.sqlite3")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: cannot open the inbox {tmp_path / 'file' / 'inbox.sqlite3'}: ")


def test_a_full_disk_for_forward_results_backs_off_without_duplicates(tmp_path, monkeypatch):
    # the forward results cannot be written for 2 s (as on a full disk); requests still can
    full_until = time.monotonic() + 2.0
    original = Inbox.forward_result

    def forward_result(self: Inbox, *args: Any) -> None:
        if time.monotonic() < full_until:
            raise sqlite3.OperationalError("database or disk is full")
        original(self, *args)

    monkeypatch.setattr(Inbox, "forward_result", forward_result)
    target = Target()
    bodies = [event("ticket.created", f"e-full{i}") for i in range(8)]
    with (
        BackgroundServer(target) as app_srv,
        receiver(
            tmp_path, secret=SECRET, forward_to=app_srv.url("/in"), forward_max_delay=0.2
        ) as r,
    ):
        for body in bodies:
            assert r.post(body, signed(body)).status_code == 200
        _all_delivered_at_most_twice(r, target, bodies)


def test_a_forward_is_bounded_as_a_whole_against_an_app_that_trickles(tmp_path):
    # an app that answers one byte every 0.2 s: each read is quick, the whole is not
    done = threading.Event()

    async def trickle(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await request_body(scope, receive, send) is None:
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(100):
            if done.is_set():
                break
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b""})

    body = event("ticket.created", "e-trickle")
    with BackgroundServer(trickle) as app_srv:
        with receiver(tmp_path, forward_to=app_srv.url("/in"), forward_timeout=1.0) as r:
            port = app_srv.sock.getsockname()[1]
            assert r.post(body, signed(body, secret="theirs")).status_code == 200
            row = wait_for(
                lambda: (x := rows(r.db, "acked = 1")[0])["forward_attempts"] >= 1 and x,
                10,
                "the first attempt to end",
            )
            done.set()
    assert row["forward_error"] == f"127.0.0.1:{port} did not answer within 1s"


def test_a_forward_cut_short_by_a_stop_is_due_again_at_once(tmp_path):
    # the receiver stops while its app has not answered: the claim is handed back, so the
    # next receiver forwards it at once rather than after the lease (timeout + 5 s)
    target = HeldTarget()
    body = event("ticket.created", "e-cut")
    with BackgroundServer(target) as app_srv:
        url = app_srv.url("/in")
        with receiver(tmp_path, secret=SECRET, forward_to=url, forward_timeout=60.0) as r:
            assert r.post(body, signed(body)).status_code == 200
            wait_for(lambda: r.app.forwarder is not None and r.app.forwarder.in_flight)
        target.release.set()  # after the stop: the app answers no one
        (row,) = rows(r.db)
        assert row["forward_status"] == "pending"
        assert row["forward_next_at"] <= time.time()


def test_a_stop_while_results_wait_for_the_db_thread_saves_them_and_hands_them_back(tmp_path):
    # A stop that comes while the results of a batch wait in the db thread's queue (its one
    # thread busy saving the first): the others were dropped, unsaved and no longer in
    # flight, so their claims stayed and a restarted receiver waited out the lease
    # (timeout + 5 s). Every result is saved, and every claim of the batch is due at once.
    db = tmp_path / "inbox.sqlite3"
    with Inbox(db) as inbox:
        inbox.add_many([_pending(f"e-q{i}") for i in range(3)])
    s = ReceiverSettings(db=db, forward_to=f"http://127.0.0.1:{free_port()}/in")
    inbox = Inbox(db)
    busy, go_on = threading.Event(), threading.Event()
    save = inbox.forward_result

    def slow_save(*args: Any) -> None:  # the first save holds the db thread
        busy.set()
        go_on.wait(10)
        save(*args)

    inbox.forward_result = slow_save  # type: ignore[method-assign]
    forwarder = forward_module.Forwarder(s, inbox, lambda message: None)

    async def stop_while_saving() -> None:
        task = asyncio.create_task(forwarder.run())
        while not busy.is_set():
            assert not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        # the first save goes on a little later, from another thread: the stop's hand-back
        # holds this loop meanwhile, once the cancellation has reached every forward
        threading.Timer(0.5, go_on.set).start()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(asyncio.wait_for(stop_while_saving(), 30))
    finally:
        inbox.close()
    assert [x["forward_attempts"] for x in rows(db)] == [1, 1, 1]
    assert all(x["forward_next_at"] <= time.time() for x in rows(db))


def _pending(event_id: str) -> NewRequest:
    body = event("ticket.created", event_id)
    return NewRequest(
        received_at=time.time(),
        method="POST",
        path="/webhook",
        headers=[],
        body=body,
        verdict="verified",
        reason=None,
        event_id=event_id,
        event_name="ticket.created",
        answer_code=200,
        answer_body='{"message":"success"}',
        forward=True,
    )
