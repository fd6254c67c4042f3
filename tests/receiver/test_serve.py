"""`atwh serve`: the receiver over real HTTP on loopback, its inbox, forwarding, the live
view, and the command that builds it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import itertools
import json
import random
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from atwh import server, signature
from atwh.receiver.app import BatchWriter, Receiver, ReceiverSettings, create_app
from atwh.receiver.inbox import Inbox, NewRequest, Stored
from atwh.receiver.live import LiveView
from atwh.server import BackgroundServer
from tests.conftest import free_port, hmac_hex, request_body, wait_for

SECRET = "s3cret-shared"
SIG = "x-allthings-signature"
TS = "x-allthings-signature-timestamp"
SUCCESS = {"message": "success"}
TEST_EVENT = {"message": "Received test event."}


# -- helpers -----------------------------------------------------------------------------


def now_ms(offset_s: float = 0.0) -> int:
    return int((time.time() + offset_s) * 1000)


_ids = itertools.count(1)


def event(name: str = "ticket.created", eid: str | None = "", **data: Any) -> bytes:
    """An event body; without an id given, a new one each time (receivers are shared)."""
    ev: dict[str, Any] = {"name": name, "data": data or {"id": "t1"}}
    if eid == "":
        eid = f"auto-{next(_ids)}"
    if eid is not None:
        ev["id"] = eid
    return json.dumps({"event": ev}).encode()


def signed(body: bytes, secret: str = SECRET, ts: int | str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        SIG: hmac_hex(body, secret),
        TS: str(now_ms() if ts is None else ts),
    }


def rows(db: Path, where: str = "1", args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """The inbox as another process would see it: a separate connection."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(f"SELECT * FROM requests WHERE {where} ORDER BY id", args).fetchall()
    finally:
        conn.close()


def last_id(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()[0])
    finally:
        conn.close()


@dataclass
class Running:
    srv: BackgroundServer
    client: httpx.Client
    settings: ReceiverSettings
    app: Receiver

    @property
    def db(self) -> Path:
        return self.settings.db

    def url(self, path: str | None = None) -> str:
        return self.srv.url(self.settings.path if path is None else path)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(self.url(), content=body, headers=headers or {})

    def mark(self) -> int:
        """The newest row now: `new_rows(mark)` is what a test stored after it."""
        return last_id(self.db)

    def new_rows(self, mark: int) -> list[sqlite3.Row]:
        return rows(self.db, "id > ?", (mark,))


@contextmanager
def receiver(
    tmp_path: Path,
    *,
    on_request: Callable[..., None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    **settings: Any,
) -> Iterator[Running]:
    settings.setdefault("db", tmp_path / "inbox.sqlite3")
    s = ReceiverSettings(**settings)
    app = create_app(s, on_request=on_request, on_notice=on_notice)
    with (
        BackgroundServer(app) as srv,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        yield Running(srv, client, s, app)


@pytest.fixture(scope="module")
def verifying(tmp_path_factory) -> Iterator[Running]:
    """One receiver with a secret and default settings, shared by the stateless tests."""
    with receiver(tmp_path_factory.mktemp("verifying"), secret=SECRET) as r:
        yield r


@pytest.fixture(scope="module")
def trusting(tmp_path_factory) -> Iterator[Running]:
    """One receiver without a secret and default settings, shared by the stateless tests."""
    with receiver(tmp_path_factory.mktemp("trusting")) as r:
        yield r


def raw_http(port: int, head: bytes, chunks: Sequence[bytes] = (), timeout: float = 5.0) -> bytes:
    """Send a request by hand; the answer as bytes (status line, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as so:
        so.sendall(head)
        for chunk in chunks:
            try:
                so.sendall(chunk)
            except OSError:  # the server answered and closed early
                break
            time.sleep(0.02)
        data = b""
        while b"\r\n\r\n" not in data or not _complete(data):
            try:
                part = so.recv(65536)
            except TimeoutError:
                break
            if not part:
                break
            data += part
        return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        return body.endswith(b"0\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def status_and_json(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    code = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return code, json.loads(body)


# -- routing -----------------------------------------------------------------------------


def test_health_answers_json(tmp_path):
    with receiver(tmp_path, secret=SECRET) as r:
        first = r.client.get(r.url("/health"))
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.json() == {
            "status": "ok",
            "path": "/webhook",
            "answered": 0,
            "in_flight": 0,
            "verifying": True,
        }
        body = event()
        assert r.post(body, signed(body)).status_code == 200
        assert r.client.get(r.url("/health")).json()["answered"] == 1
        assert r.client.head(r.url("/health")).status_code == 200
        wrong = r.client.post(r.url("/health"))
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, HEAD"
    with receiver(tmp_path) as r:
        assert r.client.get(r.url("/health")).json()["verifying"] is False


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_on_the_webhook_path_are_405_with_allow_post(trusting, method):
    r = trusting
    mark = r.mark()
    response = r.client.request(method, r.url(), content=event())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert response.json() == {"message": "Method not allowed: use POST"}
    assert r.new_rows(mark) == []


@pytest.mark.parametrize("path", ["/", "/webhooks", "/webhook/", "/other", "/health/x"])
def test_unknown_paths_are_404(trusting, path):
    r = trusting
    mark = r.mark()
    response = r.client.post(r.url(path), content=event())
    assert response.status_code == 404
    assert response.json() == {"message": "Not found: POST webhooks to /webhook"}
    assert r.client.get(r.url(path)).status_code == 404
    assert r.new_rows(mark) == []


def test_a_custom_path(tmp_path):
    with receiver(tmp_path, path="/hooks/allthings", secret=SECRET) as r:
        body = event()
        ok = r.client.post(r.url("/hooks/allthings"), content=body, headers=signed(body))
        assert (ok.status_code, ok.json()) == (200, SUCCESS)
        missed = r.client.post(r.url("/webhook"), content=body, headers=signed(body))
        assert missed.status_code == 404
        assert missed.json() == {"message": "Not found: POST webhooks to /hooks/allthings"}
        assert r.client.get(r.url("/hooks/allthings")).status_code == 405
        assert r.client.get(r.url("/health")).json()["path"] == "/hooks/allthings"
        (row,) = rows(r.db)
        assert row["path"] == "/hooks/allthings"


# -- test events ---------------------------------------------------------------------------


def test_an_unsigned_request_is_a_test_event(tmp_path):
    body = event("ticket.created", "e-test")
    with receiver(tmp_path) as r:
        response = r.post(body, {"content-type": "application/json", TS: str(now_ms())})
        assert (response.status_code, response.json()) == (200, TEST_EVENT)
        # the vendor's endpoint answers 200 before looking at the body at all
        for odd in (b"", b"not json", b"[1]", event("user.deleted", "e-odd")):
            answer = r.post(odd)
            assert (answer.status_code, answer.json()) == (200, TEST_EVENT)
        stored = rows(r.db)
    assert [row["verdict"] for row in stored] == ["test"] * 5
    assert [row["answer_code"] for row in stored] == [200] * 5
    assert [bytes(row["body"]) for row in stored] == [
        body,
        b"",
        b"not json",
        b"[1]",
        event("user.deleted", "e-odd"),
    ]
    assert (stored[0]["event_id"], stored[0]["event_name"]) == ("e-test", "ticket.created")
    assert all(row["acked"] == 1 for row in stored)


def test_with_a_secret_an_unsigned_event_is_401_and_the_registration_test_still_200(tmp_path):
    """With a secret, an unsigned request that carries an event (an id or a name) is a
    forgery or a sender without the secret: 401 `unsigned`, stored as rejected (`atwh
    check`'s `unsigned` check). The registration's test request carries no event: 200."""
    from atwh.client.webhooks import TEST_EVENT_BODY

    with receiver(tmp_path, secret=SECRET) as r:
        for test in (TEST_EVENT_BODY, b"", b"not json", b"[1]", b'{"event": {}}'):
            answer = r.post(test, {"content-type": "application/json"})
            assert (answer.status_code, answer.json()) == (200, TEST_EVENT)
        for forged in (event("ticket.created", "e-test"), event("user.deleted", None)):
            answer = r.post(forged, {"content-type": "application/json", TS: str(now_ms())})
            assert answer.status_code == 401
            assert answer.json()["reason"] == "unsigned"
        stored = rows(r.db)
    assert [row["verdict"] for row in stored] == ["test"] * 5 + ["rejected"] * 2
    assert [row["acked"] for row in stored] == [1] * 5 + [0] * 2
    assert (stored[5]["event_id"], stored[5]["reason"]) == ("e-test", "unsigned")


def test_a_test_event_never_takes_the_place_of_a_verified_delivery(tmp_path):
    """An unsigned request (anyone can send one) carrying a real event's id must not make
    the genuine, signed delivery of that event a mere duplicate of the unverified copy."""
    spoof = json.dumps({"event": {"id": "e-42", "name": "ticket.created", "data": "fake"}})
    genuine = event("ticket.created", "e-42", subject="real")
    with receiver(tmp_path) as r:
        assert r.post(spoof.encode()).json() == TEST_EVENT
        answer = r.post(genuine, signed(genuine))
        assert (answer.status_code, answer.json()) == (200, SUCCESS)
        tests = rows(r.db, "event_id = ? AND verdict = 'test'", ("e-42",))
        stored = rows(r.db, "event_id = ? AND verdict = 'unverified'", ("e-42",))
    assert len(tests) == 1
    assert len(stored) == 1, "the signed delivery of e-42 was not stored"
    assert bytes(stored[0]["body"]) == genuine


# -- signatures ----------------------------------------------------------------------------


def test_a_valid_signature_is_verified_and_stored(verifying):
    r = verifying
    mark = r.mark()
    body = event("ticket.updated", "e-ok", delta={"status": "closed"})
    headers = {**signed(body), "x-custom": "kept"}
    response = r.post(body, headers)
    assert (response.status_code, response.json()) == (200, SUCCESS)
    (row,) = r.new_rows(mark)
    assert row["verdict"] == "verified"
    assert row["reason"] is None
    assert (row["event_id"], row["event_name"]) == ("e-ok", "ticket.updated")
    assert (row["answer_code"], json.loads(row["answer_body"])) == (200, SUCCESS)
    assert row["acked"] == 1 and row["duplicates"] == 0
    assert bytes(row["body"]) == body
    assert (row["method"], row["path"]) == ("POST", "/webhook")
    with Inbox(r.db, create=False) as inbox:
        record = inbox.get(str(row["id"]))
    assert record is not None and record.body == body
    stored_headers = dict(record.headers)
    assert stored_headers[SIG] == headers[SIG]
    assert stored_headers[TS] == headers[TS]
    assert stored_headers["x-custom"] == "kept"
    assert stored_headers["content-type"] == "application/json"
    assert abs(row["received_at"] - time.time()) < 10


_BAD = event("ticket.created", "e-bad")
_GOOD = hmac_hex(_BAD, SECRET)
# (signature, timestamp as an offset in seconds from now or as text, reason)
_REJECTIONS = {
    "missing-timestamp": (_GOOD, None, "no_timestamp"),
    "empty-timestamp": (_GOOD, "", "no_timestamp"),
    "non-numeric": (_GOOD, "yesterday", "bad_timestamp"),
    "float-timestamp": (_GOOD, "1.7e12", "bad_timestamp"),
    "negative-timestamp": (_GOOD, "-5", "bad_timestamp"),
    "too-old": (_GOOD, -180, "too_old"),
    "too-far-ahead": (_GOOD, +90, "too_new"),
    "bad-signature": ("0" * 64, 0, "bad_signature"),
    "empty-signature": ("", 0, "bad_signature"),
    "truncated-signature": (_GOOD[:-2], 0, "bad_signature"),
    "other-body": (hmac_hex(event("ticket.created", "e-other"), SECRET), 0, "bad_signature"),
    "other-secret": (hmac_hex(_BAD, "wrong-secret"), 0, "bad_signature"),
}


@pytest.mark.parametrize(("sig", "stamp", "reason"), _REJECTIONS.values(), ids=_REJECTIONS)
def test_a_request_that_does_not_verify_is_401_with_a_reason(verifying, sig, stamp, reason):
    r = verifying
    mark = r.mark()
    body = _BAD
    headers = {"content-type": "application/json", SIG: sig}
    if stamp is not None:
        headers[TS] = str(now_ms(stamp)) if isinstance(stamp, int) else stamp
    response = r.post(body, headers)
    assert response.status_code == 401
    answer = response.json()
    assert set(answer) == {"message", "reason"}
    assert answer["reason"] == reason
    assert isinstance(answer["message"], str) and answer["message"]
    (row,) = r.new_rows(mark)
    assert (row["verdict"], row["reason"], row["answer_code"]) == ("rejected", reason, 401)
    assert row["acked"] == 0
    assert json.loads(row["answer_body"]) == answer
    assert bytes(row["body"]) == body


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-110, 200), (+20, 200), (-140, 401), (+45, 401)],
    ids=["old-within-tolerance", "ahead-within-skew", "old-beyond", "ahead-beyond"],
)
def test_the_timestamp_window(verifying, offset, code):
    body = event()  # the defaults: 120 s old, 30 s ahead
    response = verifying.post(body, signed(body, ts=now_ms(offset)))
    assert response.status_code == code
    if code == 200:
        assert response.json() == SUCCESS
    else:
        assert response.json()["reason"] == ("too_old" if offset < 0 else "too_new")


def test_tolerance_and_skew_are_settings(tmp_path):
    body = event()
    with receiver(tmp_path, secret=SECRET, tolerance=300, future_skew=2) as r:
        assert r.post(body, signed(body, ts=now_ms(-200))).status_code == 200
        assert r.post(body, signed(body, ts=now_ms(+1))).status_code == 200
        old = r.post(body, signed(body, ts=now_ms(-310)))
        assert (old.status_code, old.json()["reason"]) == (401, "too_old")
        ahead = r.post(body, signed(body, ts=now_ms(+6)))
        assert (ahead.status_code, ahead.json()["reason"]) == (401, "too_new")


def test_an_uppercase_hex_signature_is_accepted(verifying):
    r = verifying
    mark = r.mark()
    body = event()
    headers = signed(body)
    headers[SIG] = headers[SIG].upper()
    assert headers[SIG] != headers[SIG].lower()
    response = r.post(body, headers)
    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert [x["verdict"] for x in r.new_rows(mark)] == ["verified"]


def test_verification_is_over_the_raw_bytes(verifying):
    body = b'{ "z": [1,  2 ],\n\t"event" : {"name":"ticket.created" ,  "id":"e-raw"}\r\n }  '
    reserialised = json.dumps(json.loads(body)).encode()
    r = verifying
    mark = r.mark()
    ok = r.post(body, signed(body))
    assert (ok.status_code, ok.json()) == (200, SUCCESS)
    # the same JSON, re-serialised, does not carry the signature of the raw bytes
    bad = r.post(reserialised, {**signed(body), "content-type": "application/json"})
    assert (bad.status_code, bad.json()["reason"]) == (401, "bad_signature")
    first, second = r.new_rows(mark)
    assert bytes(first["body"]) == body
    assert (first["verdict"], first["event_id"]) == ("verified", "e-raw")
    assert second["verdict"] == "rejected"


@pytest.mark.parametrize("openssl_object", [True, False])
def test_a_verifier_gives_the_same_verdicts_with_or_without_openssls_hmac_object(
    monkeypatch, openssl_object
):
    """The Verifier copies OpenSSL's HMAC object when hmac.HMAC keeps one, else the
    hmac.HMAC itself: a digest given as a Python function makes hmac.HMAC keep none."""
    if not openssl_object:
        sha256 = hashlib.sha256
        monkeypatch.setattr(signature.hashlib, "sha256", lambda *a: sha256(*a))
    v = signature.Verifier(SECRET, 120, 30)
    assert isinstance(v._keyed, hmac.HMAC) is not openssl_object
    body, stamp = b'{"event": {"name": "ticket.created"}}', str(now_ms())
    good = hmac_hex(body, SECRET)
    for _ in range(2):  # the keyed object is copied, never used up
        assert v.check(body, good, stamp) is None
        assert v.check(body, good.upper(), stamp) is None
        assert v.check(body + b" ", good, stamp) == signature.Rejection(
            "bad_signature", "signature does not match the body"
        )


def test_without_a_secret_signed_requests_are_unverified(trusting):
    r = trusting
    mark = r.mark()
    body = event("ticket.created", "e-u")
    for headers in (signed(body), {SIG: "garbage"}, signed(body, secret="anything")):
        response = r.post(body, headers)
        assert (response.status_code, response.json()) == (200, SUCCESS)
    stored = r.new_rows(mark)
    assert len(stored) == 1
    assert (stored[0]["verdict"], stored[0]["reason"]) == ("unverified", None)
    assert stored[0]["duplicates"] == 2


# -- dispatch --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ticket.created", "ticket.updated"])
def test_the_reference_events_are_a_success(verifying, name):
    r = verifying
    mark = r.mark()
    body = event(name, f"e-{name}")
    response = r.post(body, signed(body))
    assert (response.status_code, response.json()) == (200, SUCCESS)
    (row,) = r.new_rows(mark)
    assert (row["event_name"], row["event_id"], row["verdict"]) == (name, f"e-{name}", "verified")


@pytest.mark.parametrize(
    "name", ["ticket.deleted", "user.created", "custom.thing", "Ticket.Created"]
)
def test_other_events_are_400_unexpected_event_type(verifying, name):
    r = verifying
    mark = r.mark()
    body = event(name, "e-x")
    response = r.post(body, signed(body))
    assert response.status_code == 400
    assert response.json() == {"message": "Unexpected event type"}
    (row,) = r.new_rows(mark)
    assert (row["verdict"], row["reason"], row["acked"]) == ("rejected", "unexpected_event", 0)
    assert (row["event_id"], row["event_name"], row["answer_code"]) == ("e-x", name, 400)


def test_extra_events_and_accept_any_event(tmp_path):
    extra = frozenset({"ticket.created", "ticket.updated", "custom.thing"})
    with receiver(tmp_path, secret=SECRET, events=extra) as r:
        for name, code in [("custom.thing", 200), ("ticket.created", 200), ("other.x", 400)]:
            body = event(name, f"e-{name}")
            assert r.post(body, signed(body)).status_code == code, name
    with receiver(tmp_path, db=tmp_path / "any.sqlite3", secret=SECRET, accept_any_event=True) as r:
        for name in ("custom.thing", "user.created", "anything-at-all"):
            body = event(name, f"any-{name}")
            response = r.post(body, signed(body))
            assert (response.status_code, response.json()) == (200, SUCCESS), name
        assert [row["verdict"] for row in rows(r.db)] == ["verified"] * 3


@pytest.mark.parametrize(
    ("body", "message", "reason"),
    [
        (b'{"event": {"name": "ticket.created"', "Body is not valid JSON", "invalid_json"),
        (b"", "Body is not valid JSON", "invalid_json"),
        (b"[1, 2]", "Body is not a JSON object", "not_an_object"),
        (b"42", "Body is not a JSON object", "not_an_object"),
        (b'"ticket.created"', "Body is not a JSON object", "not_an_object"),
        (b"null", "Body is not a JSON object", "not_an_object"),
        (
            b'{"event": {"name": "ticket.created", "id": "\xff\xfe"}}',
            "Body is not valid UTF-8",
            "invalid_utf8",
        ),
        (b'{"data": {}}', "No event.name in the body", "no_event_name"),
        (b'{"event": "ticket.created"}', "No event.name in the body", "no_event_name"),
        (b'{"event": {"id": "e9"}}', "No event.name in the body", "no_event_name"),
        (b'{"event": {"id": "e9", "name": ""}}', "No event.name in the body", "no_event_name"),
        (b'{"event": {"id": "e9", "name": 7}}', "No event.name in the body", "no_event_name"),
    ],
    ids=[
        "truncated",
        "empty",
        "array",
        "number",
        "string",
        "null",
        "invalid-utf8",
        "no-event",
        "event-not-object",
        "no-name",
        "empty-name",
        "name-not-string",
    ],
)
def test_a_body_that_is_not_an_event_is_400(verifying, body, message, reason):
    r = verifying
    mark = r.mark()
    response = r.post(body, signed(body))
    assert response.status_code == 400
    assert response.json() == {"message": message}
    (row,) = r.new_rows(mark)
    assert (row["verdict"], row["reason"], row["answer_code"], row["acked"]) == (
        "rejected",
        reason,
        400,
        0,
    )
    assert bytes(row["body"]) == body


def test_a_body_nested_too_deeply_is_400_not_a_crash(verifying):
    r = verifying
    mark = r.mark()
    body = b'{"event": {"name": "ticket.created", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    response = r.post(body, signed(body))
    assert (response.status_code, response.json()) == (400, {"message": "Body is not valid JSON"})
    (row,) = r.new_rows(mark)
    assert (row["reason"], row["acked"]) == ("invalid_json", 0)


@pytest.mark.parametrize(
    ("body", "event_id"),
    [
        (b'{"event": {"id": "e-nan", "name": "ticket.created", "data": NaN}}', "e-nan"),
        (
            b'{"event": {"id": 123456789012345678901234567890, "name": "ticket.created"}}',
            "123456789012345678901234567890",
        ),
        (b'{"event": {"id": 42, "name": "ticket.created", "n": 1e400}}', "42"),
        (b'{"event": {"id": "e-\\ud800", "name": "ticket.created"}}', "e-\\ud800"),
    ],
    ids=["nan", "huge-integer-id", "huge-float", "lone-surrogate-id"],
)
def test_json_that_python_reads_is_read_the_same_way(verifying, body, event_id):
    """Bodies a strict parser refuses but json.loads (like the vendor's JSON.parse-free
    example) reads: accepted, with the event id as written. An id holding a lone surrogate
    is stored with it escaped, not lost to an encoding error."""
    r = verifying
    mark = r.mark()
    response = r.post(body, signed(body))
    assert (response.status_code, response.json()) == (200, SUCCESS)
    (row,) = r.new_rows(mark)
    assert (row["verdict"], row["event_id"]) == ("verified", event_id)
    assert bytes(row["body"]) == body


def test_answers_carry_a_content_length(verifying):
    body = event()
    for response in (r := verifying).post(body, signed(body)), r.post(b"[]", signed(b"[]")):
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers


# -- body size -----------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    head = b'{"event": {"id": "e-size", "name": "ticket.created"}, "pad": "'
    tail = b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def test_a_content_length_over_the_limit_is_413_without_reading_the_body(tmp_path):
    with receiver(tmp_path, max_body=1000) as r:
        port = r.srv.sock.getsockname()[1]
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"x-allthings-signature: abc\r\nContent-Length: 50000000\r\n\r\n"
        )
        started = time.monotonic()
        raw = raw_http(port, head)  # not a byte of the 50 MB body is sent
        assert time.monotonic() - started < 3
        assert status_and_json(raw) == (413, {"message": "Body larger than 1000 bytes"})
        over = _padded(1001)
        response = r.post(over, {SIG: "abc"})
        assert (response.status_code, response.json()) == (
            413,
            {"message": "Body larger than 1000 bytes"},
        )
        stored = rows(r.db)
    assert [(row["answer_code"], row["reason"], row["acked"]) for row in stored] == [
        (413, "too_large", 0),
        (413, "too_large", 0),
    ]


def test_a_chunked_body_growing_over_the_limit_is_413(tmp_path):
    with receiver(tmp_path, max_body=100) as r:
        port = r.srv.sock.getsockname()[1]
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nx-allthings-signature: abc\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunks = [b"32\r\n" + b"a" * 50 + b"\r\n"] * 3 + [b"0\r\n\r\n"]
        raw = raw_http(port, head, chunks)
        assert status_and_json(raw) == (413, {"message": "Body larger than 100 bytes"})

        def generated() -> Iterator[bytes]:
            for _ in range(4):
                yield b"b" * 40

        response = r.client.post(r.url(), content=generated(), headers={SIG: "abc"})
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert [row["reason"] for row in rows(r.db)] == ["too_large", "too_large"]


def test_a_body_exactly_at_the_limit_is_accepted(tmp_path):
    body = _padded(300)
    with receiver(tmp_path, max_body=300, secret=SECRET) as r:
        response = r.post(body, signed(body))
        assert (response.status_code, response.json()) == (200, SUCCESS)

        def in_chunks() -> Iterator[bytes]:
            for i in range(0, 300, 70):
                yield body[i : i + 70]

        chunked = r.client.post(r.url(), content=in_chunks(), headers=signed(body))
        assert "content-length" not in chunked.request.headers
        assert (chunked.status_code, chunked.json()) == (200, SUCCESS)
        (row,) = rows(r.db)  # the second is a duplicate of the first
    assert bytes(row["body"]) == body
    assert row["duplicates"] == 1


# -- simulated failures ----------------------------------------------------------------------


def test_respond_answers_every_accepted_event_with_the_code(tmp_path):
    with receiver(tmp_path, respond=503) as r:
        body = event("ticket.created", "e-503")
        response = r.post(body, signed(body))
        assert response.status_code == 503
        assert response.json() == {"message": "Simulated failure (--respond 503)"}
        rejected = r.post(event("user.created", "e-u"), signed(event("user.created", "e-u")))
        assert rejected.status_code == 400  # only accepted events are failed on purpose
        assert r.post(event()).json() == TEST_EVENT  # test events are still acknowledged
        first = rows(r.db)[0]
    assert (first["answer_code"], first["acked"], first["verdict"]) == (503, 0, "unverified")
    assert json.loads(first["answer_body"]) == {"message": "Simulated failure (--respond 503)"}
    assert first["reason"] == "simulated: --respond 503"
    assert bytes(first["body"]) == body
    with receiver(tmp_path, db=tmp_path / "202.sqlite3", respond=202) as r:
        body = event("ticket.created", "e-202")
        response = r.post(body, signed(body))
        assert (response.status_code, response.json()) == (202, SUCCESS)
        assert [(x["answer_code"], x["acked"]) for x in rows(r.db)] == [(202, 1)]


def test_fail_every_fails_every_nth_accepted_event(tmp_path):
    codes = []
    with receiver(tmp_path, secret=SECRET, fail_every=3) as r:
        for i in range(9):
            if i == 4:  # a rejected request in between does not count
                bad = event("user.created", "e-rej")
                assert r.post(bad, signed(bad)).status_code == 400
            body = event("ticket.created", f"e{i}")
            response = r.post(body, signed(body))
            codes.append(response.status_code)
            if response.status_code == 500:
                assert response.json() == {"message": "Simulated failure (--fail-every 3)"}
        failed = rows(r.db, "answer_code = 500")
    assert codes == [200, 200, 500] * 3
    assert [row["event_id"] for row in failed] == ["e2", "e5", "e8"]
    assert {(row["acked"], row["verdict"]) for row in failed} == {(0, "verified")}


def _pattern(tmp_path: Path, name: str, seed: int) -> list[int]:
    with receiver(tmp_path, db=tmp_path / f"{name}.sqlite3", fail_rate=0.5, seed=seed) as r:
        out = []
        for i in range(24):
            body = event("ticket.created", f"{name}-{i}")
            out.append(r.post(body, {SIG: "x"}).status_code)
        stored = [row["answer_code"] for row in rows(r.db)]
    assert stored == out
    return out


def test_fail_rate_with_a_seed_is_repeatable(tmp_path):
    first = _pattern(tmp_path, "a", seed=1234)
    second = _pattern(tmp_path, "b", seed=1234)
    assert first == second
    assert set(first) == {200, 500}
    rng = random.Random(1234)
    assert first == [500 if rng.random() < 0.5 else 200 for _ in range(24)]


def test_delay_slows_every_answer(tmp_path):
    with receiver(tmp_path, delay=0.3) as r:
        started = time.monotonic()
        response = r.post(event(), {SIG: "x"})
        elapsed = time.monotonic() - started
        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert elapsed >= 0.3
        assert len(rows(r.db)) == 1


# -- the inbox: nothing acknowledged is lost -----------------------------------------------


def test_every_acknowledged_request_is_stored_with_its_details(tmp_path):
    sent = []
    with receiver(tmp_path, secret=SECRET) as r:
        for i in range(12):
            body = json.dumps(
                {"event": {"id": f"e{i}", "name": "ticket.updated", "data": {"n": i}}},
                separators=(",", ":") if i % 2 else (", ", ": "),
            ).encode()
            headers = {**signed(body), "x-request-n": str(i)}
            response = r.post(body, headers)
            assert response.status_code == 200
            sent.append((body, headers))
        with Inbox(r.db) as inbox:
            records = list(inbox.records())
    assert len(records) == 12
    for record, (body, headers) in zip(records, sent, strict=True):
        assert record.body == body
        stored = dict(record.headers)
        assert stored["x-request-n"] == headers["x-request-n"]
        assert stored[SIG] == headers[SIG]
        assert (record.verdict, record.answer_code, record.acked) == ("verified", 200, True)
        assert (record.event_id, record.event_name) == (
            json.loads(body)["event"]["id"],
            "ticket.updated",
        )
        assert json.loads(record.answer_body) == SUCCESS


def test_the_same_event_sent_again_is_one_row_with_duplicates_counted(tmp_path):
    body = event("ticket.created", "e-dup")
    seen = []
    with receiver(tmp_path, secret=SECRET, on_request=lambda r, s, ms: seen.append(s)) as r:
        for _ in range(4):
            response = r.post(body, signed(body))
            assert (response.status_code, response.json()) == (200, SUCCESS)
        # a copy that is not acknowledged is kept as its own row, never counted as a duplicate
        bad = r.post(body, {SIG: "0" * 64, TS: str(now_ms())})
        assert bad.status_code == 401
        acked = rows(r.db, "event_id = ? AND acked = 1", ("e-dup",))
        everything = rows(r.db)
    assert len(acked) == 1
    assert acked[0]["duplicates"] == 3
    assert acked[0]["last_duplicate_at"] is not None
    assert [(x["answer_code"], x["acked"], x["duplicates"]) for x in everything] == [
        (200, 1, 3),
        (401, 0, 0),
    ]
    assert bytes(everything[1]["body"]) == body
    wait_for(lambda: len(seen) == 5, 5, "on_request for every request")
    assert [s.duplicate for s in seen[:4]] == [False, True, True, True]
    assert {s.id for s in seen[:4]} == {acked[0]["id"]}


def test_a_failed_attempt_then_a_success_is_two_rows(tmp_path):
    body = event("ticket.created", "e-retry")
    with receiver(tmp_path, fail_every=2) as r:
        other = event("ticket.created", "e-first")
        assert r.post(other, {SIG: "x"}).status_code == 200
        assert r.post(body, {SIG: "x"}).status_code == 500
        assert r.post(body, {SIG: "x"}).status_code == 200
        stored = rows(r.db, "event_id = ?", ("e-retry",))
    assert [(x["answer_code"], x["acked"], x["duplicates"]) for x in stored] == [
        (500, 0, 0),
        (200, 1, 0),
    ]


# --fsync commits from a thread of its own; without it, on the event loop: both must hold
MODES = pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])


@MODES
def test_concurrent_copies_of_one_event_are_stored_once(tmp_path, synchronous):
    body = event("ticket.created", "e-race")
    n = 20
    with receiver(tmp_path, secret=SECRET, synchronous=synchronous) as r:
        url = r.url()
        barrier = threading.Barrier(n)

        def send(_: int) -> tuple[int, Any]:
            with httpx.Client(trust_env=False, timeout=10) as client:
                barrier.wait(timeout=10)
                response = client.post(url, content=body, headers=signed(body))
                return response.status_code, response.json()

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(send, range(n)))
        stored = rows(r.db, "event_id = ?", ("e-race",))
    assert answers == [(200, SUCCESS)] * n
    assert len(stored) == 1
    assert (stored[0]["acked"], stored[0]["duplicates"]) == (1, n - 1)


@MODES
def test_concurrent_distinct_events_are_all_stored(tmp_path, synchronous):
    async def main(url: str) -> list[int]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            bodies = [event("ticket.created", f"c{i}") for i in range(60)]
            answers = await asyncio.gather(
                *(client.post(url, content=b, headers=signed(b)) for b in bodies)
            )
            return [a.status_code for a in answers]

    with receiver(tmp_path, secret=SECRET, synchronous=synchronous) as r:
        assert asyncio.run(main(r.url())) == [200] * 60
        stored = rows(r.db)
    assert sorted(row["event_id"] for row in stored) == sorted(f"c{i}" for i in range(60))
    assert {row["duplicates"] for row in stored} == {0}


@MODES
def test_a_store_that_cannot_commit_answers_503_never_2xx(tmp_path, synchronous):
    body = event("ticket.created", "e-locked")
    with receiver(tmp_path, secret=SECRET, busy_timeout_ms=50, synchronous=synchronous) as r:
        lock = sqlite3.connect(r.db, isolation_level=None, timeout=5)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            for headers in (signed(body), {}):  # a verified event, and a test event
                response = r.post(body, headers)
                assert response.status_code == 503
                message = response.json()["message"]
                assert message.startswith("Inbox unavailable, not acknowledged")
                assert "locked" in message
            lock.execute("ROLLBACK")
        finally:
            lock.close()
        again = r.post(body, signed(body))
        assert (again.status_code, again.json()) == (200, SUCCESS)
        stored = rows(r.db)
    assert [(x["event_id"], x["answer_code"], x["duplicates"]) for x in stored] == [
        ("e-locked", 200, 0)
    ]


@MODES
def test_an_unexpected_store_error_is_503_and_no_request_hangs(tmp_path, synchronous, caplog):
    with receiver(tmp_path, secret=SECRET, synchronous=synchronous) as r:
        assert r.app.writer is not None
        committing = r.app.writer.fast or r.app.writer.inbox  # on the loop, or in the thread
        assert committing is not None
        real = committing.add_many

        def broken(batch: Sequence[NewRequest]) -> Any:
            raise RuntimeError("a bug in the store")

        committing.add_many = broken  # type: ignore[method-assign]
        body = event()
        response = r.post(body, signed(body))
        assert response.status_code == 503
        assert "RuntimeError: a bug in the store" in response.json()["message"]
        committing.add_many = real  # type: ignore[method-assign]
        assert r.post(body, signed(body)).status_code == 200
    assert "a bug in the store" in caplog.text


class _CountingInbox:
    """An inbox that stores nothing and counts the size of each commit."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def add_many(self, batch: Sequence[NewRequest]) -> list[Stored]:
        self.batches.append(len(batch))
        return [Stored(i, False) for i in range(len(batch))]

    def close(self) -> None:
        pass


def _request() -> NewRequest:
    return NewRequest(0.0, "POST", "/webhook", [], b"{}", "test", None, None, None, 200, "{}")


def test_a_lone_request_is_committed_at_once_and_others_gather_behind_a_commit():
    """The writer's thread commits what is queued; what arrives while it commits goes
    into the next transaction together."""
    release = threading.Event()

    class SlowInbox(_CountingInbox):
        def add_many(self, batch: Sequence[NewRequest]) -> list[Stored]:
            if not self.batches:
                release.wait(10)
            return super().add_many(batch)

    async def main() -> list[int]:
        inbox = SlowInbox()
        writer = BatchWriter(inbox, asyncio.get_running_loop())  # type: ignore[arg-type]
        first = writer.add(_request())
        while not writer._committing:  # the first commit is under way
            await asyncio.sleep(0.001)
        rest = [writer.add(_request()) for _ in range(5)]
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)
        await asyncio.to_thread(writer.close)
        return inbox.batches

    assert asyncio.run(main()) == [1, 5]


def _arrivals(per_turn: int, turns: int) -> list[int]:
    """The size of each commit on the loop when `per_turn` requests reach the writer in
    each of `turns` loop turns (as tasks do, after the flush scheduled in the turn before)."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        inbox = _CountingInbox()
        writer = BatchWriter(inbox, loop, fast=inbox)  # type: ignore[arg-type]
        futures: list[asyncio.Future[Stored]] = []

        def arrive(left: int) -> None:
            futures.extend(writer.add(_request()) for _ in range(per_turn))
            if left > 1:
                loop.call_soon(arrive, left - 1)

        loop.call_soon(arrive, turns)
        while len(futures) < per_turn * turns or not all(f.done() for f in futures):
            await asyncio.sleep(0)
        await asyncio.to_thread(writer.close)
        return inbox.batches

    return asyncio.run(main())


def test_a_commit_on_the_loop_waits_while_its_batch_grows_for_max_turns_at_most():
    assert BatchWriter.MAX_TURNS == 3
    assert _arrivals(per_turn=2, turns=10) == [6, 6, 6, 2]  # three turns' worth each
    assert _arrivals(per_turn=1, turns=5) == [1] * 5  # one at a time: none waits


# -- graceful shutdown ---------------------------------------------------------------------


@MODES
def test_requests_in_flight_at_shutdown_are_answered_and_stored(tmp_path, synchronous):
    settings = ReceiverSettings(
        db=tmp_path / "inbox.sqlite3", secret=SECRET, delay=0.5, synchronous=synchronous
    )
    app = create_app(settings)
    srv = BackgroundServer(app)
    srv.__enter__()
    url = srv.url("/webhook")
    results: dict[int, Any] = {}

    def send(i: int) -> None:
        body = event("ticket.created", f"inflight-{i}")
        try:
            with httpx.Client(trust_env=False, timeout=10) as client:
                response = client.post(url, content=body, headers=signed(body))
                results[i] = (response.status_code, response.json())
        except httpx.HTTPError as e:
            results[i] = e

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while app.in_flight < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.in_flight == 6  # all six are waiting for their answer
    started = time.monotonic()
    srv.__exit__(None, None, None)
    for t in threads:
        t.join(timeout=10)
    assert time.monotonic() - started >= 0.1  # it waited for them
    assert results == dict.fromkeys(range(6), (200, SUCCESS))
    assert sorted(row["event_id"] for row in rows(settings.db)) == sorted(
        f"inflight-{i}" for i in range(6)
    )
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, content=b"{}", trust_env=False, timeout=2)


# -- forwarding ------------------------------------------------------------------------------


@dataclass
class Hit:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Target:
    """The user's app: records what it gets; answers `status`, or the queued codes first."""

    status: int = 200
    queued: deque[int] = field(default_factory=deque)
    hits: list[Hit] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        code = self.queued.popleft() if self.queued else self.status
        self.hits.append(Hit(time.time(), scope["path"], headers, body, code))
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def forward_row(db: Path, event_id: str) -> sqlite3.Row:
    (row,) = rows(db, "event_id = ? AND acked = 1", (event_id,))
    return row


def test_forwarding_relays_the_raw_body_re_signed(tmp_path):
    target = Target()
    notices: list[str] = []
    body = b'{"event":  {"id": "e-fw", "name": "ticket.created"},\n "data": {"x": 1}}'
    original_ts = now_ms(-60)
    with BackgroundServer(target) as app_srv:
        fwd = app_srv.url("/app/hook")
        with receiver(
            tmp_path,
            secret=SECRET,
            forward_to=fwd,
            forward_secret="app-secret",
            on_notice=notices.append,
        ) as r:
            response = r.post(body, signed(body, ts=original_ts))
            assert (response.status_code, response.json()) == (200, SUCCESS)
            wait_for(lambda: target.hits, what="the forward")
            row = wait_for(
                lambda: (x := forward_row(r.db, "e-fw"))["forward_status"] == "delivered" and x,
                what="delivered",
            )
            # rejected requests are not forwarded
            bad = event("user.created", "e-no")
            assert r.post(bad, signed(bad)).status_code == 400
            time.sleep(0.3)
    (hit,) = target.hits
    assert hit.path == "/app/hook"
    assert hit.body == body
    assert hit.headers[SIG] == hmac_hex(body, "app-secret")
    assert hit.headers[SIG] != hmac_hex(body, SECRET)
    assert signature.check(hit.body, hit.headers[SIG], hit.headers[TS], "app-secret") is None
    assert int(hit.headers[TS]) > original_ts + 50_000  # a fresh timestamp
    assert abs(int(hit.headers[TS]) / 1000 - hit.at) < 5
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["x-atwh-inbox-id"] == str(row["id"])
    assert (row["forward_attempts"], row["forward_code"], row["forward_error"]) == (1, 200, None)
    assert row["forwarded_at"] is not None
    assert rows(r.db, "event_id = 'e-no'")[0]["forward_status"] is None
    assert any(n.startswith(f"forwarded #{row['id']} ticket.created") for n in notices)


def test_forwarding_re_signs_with_the_secret_and_forwards_duplicates_once(tmp_path):
    target = Target()
    body = event("ticket.updated", "e-once")
    with BackgroundServer(target) as app_srv:
        with receiver(
            tmp_path, secret=SECRET, forward_to=app_srv.url("/in"), forward_unsigned=True
        ) as r:
            assert r.post(body, signed(body)).status_code == 200
            wait_for(lambda: forward_row(r.db, "e-once")["forward_status"] == "delivered")
            assert r.post(body, signed(body)).status_code == 200  # a duplicate
            from atwh.client.webhooks import TEST_EVENT_BODY as test  # the registration's

            assert r.post(test).json() == TEST_EVENT
            wait_for(lambda: len(target.hits) >= 2, what="the test event forwarded")
            time.sleep(0.3)
    assert [h.body for h in target.hits] == [body, test]
    first, second = target.hits
    assert signature.check(first.body, first.headers[SIG], first.headers[TS], SECRET) is None
    assert SIG not in second.headers  # a test event goes on as it came: unsigned
    assert forward_row(r.db, "e-once")["duplicates"] == 1


def test_forwarding_without_any_secret_passes_signature_and_timestamp_on_unchanged(tmp_path):
    # a 10-minute-old replay must reach the app as old as it is: the app verifies it
    target = Target()
    body = event("ticket.created", "e-pass")
    headers = signed(body, secret="their-secret", ts=now_ms(-600))
    with BackgroundServer(target) as app_srv:
        with receiver(tmp_path, forward_to=app_srv.url("/in")) as r:
            assert r.post(body, headers).status_code == 200
            wait_for(lambda: target.hits)
    (hit,) = target.hits
    assert (hit.headers[SIG], hit.headers[TS]) == (headers[SIG], headers[TS])
    rejection = signature.check(hit.body, hit.headers[SIG], hit.headers[TS], "their-secret")
    assert rejection is not None and rejection.reason == "too_old"


def test_with_a_secret_unsigned_requests_are_answered_but_not_relayed(tmp_path):
    # not an open relay: an unsigned request gets 200 (the registration check needs it), or
    # 401 when it carries an event, and reaches the app only with --forward-unsigned
    target = Target()
    body = b'{"message": "relay me", "id": "e-relay"}'
    forged = event("user.deleted", "e-forged")
    signed_body = event("ticket.created", "e-signed")
    with BackgroundServer(target) as app_srv:
        with receiver(tmp_path, secret=SECRET, forward_to=app_srv.url("/in")) as r:
            assert r.post(body).json() == TEST_EVENT
            assert r.post(forged).status_code == 401
            assert r.post(signed_body, signed(signed_body)).status_code == 200
            wait_for(lambda: target.hits, what="the signed event forwarded")
            time.sleep(0.5)
    assert [h.body for h in target.hits] == [signed_body]
    relay, refused = rows(r.db, "event_id IS NULL OR event_id = 'e-forged'")
    assert (relay["verdict"], relay["answer_code"], relay["forward_status"]) == ("test", 200, None)
    assert (refused["verdict"], refused["answer_code"], refused["forward_status"]) == (
        "rejected",
        401,
        None,
    )


def test_a_forward_answered_500_is_retried_until_delivered(tmp_path):
    target = Target(status=500)
    body = event("ticket.created", "e-500")
    with BackgroundServer(target) as app_srv:
        with receiver(
            tmp_path, secret=SECRET, forward_to=app_srv.url("/in"), forward_max_delay=0.2
        ) as r:
            started = time.monotonic()
            assert r.post(body, signed(body)).status_code == 200  # acknowledged at once
            assert time.monotonic() - started < 2
            retrying = wait_for(
                lambda: (x := forward_row(r.db, "e-500"))["forward_attempts"] >= 2 and x,
                what="two failed attempts",
            )
            assert retrying["forward_status"] == "retrying"
            assert (retrying["forward_code"], retrying["forward_error"]) == (500, "HTTP 500")
            assert retrying["forward_next_at"] is not None
            target.status = 200
            done = wait_for(
                lambda: (x := forward_row(r.db, "e-500"))["forward_status"] == "delivered" and x,
                what="delivered",
            )
    assert [h.answered for h in target.hits][-1] == 200
    assert {h.answered for h in target.hits[:-1]} == {500}
    assert done["forward_attempts"] == len(target.hits)
    assert (done["forward_code"], done["forward_error"]) == (200, None)
    assert {h.body for h in target.hits} == {body}


def test_an_app_that_is_down_gets_the_event_when_it_comes_back(tmp_path):
    port = free_port()
    body = event("ticket.created", "e-down")
    target = Target()
    with receiver(
        tmp_path,
        secret=SECRET,
        forward_to=f"http://127.0.0.1:{port}/in",
        forward_max_delay=0.2,
    ) as r:
        assert r.post(body, signed(body)).status_code == 200
        failing = wait_for(
            lambda: (x := forward_row(r.db, "e-down"))["forward_attempts"] >= 2 and x,
            what="failed attempts",
        )
        assert failing["forward_status"] == "retrying"
        assert failing["forward_code"] is None
        assert failing["forward_error"] == f"cannot reach 127.0.0.1:{port}: connection refused"
        with BackgroundServer(target, port=port):
            done = wait_for(
                lambda: (x := forward_row(r.db, "e-down"))["forward_status"] == "delivered" and x,
                what="delivered after the app came back",
            )
    assert [h.body for h in target.hits] == [body]
    assert done["forward_attempts"] >= 3
    assert (done["forward_code"], done["forward_error"]) == (200, None)


def test_a_restarted_receiver_resumes_pending_forwards(tmp_path):
    port = free_port()
    forward_to = f"http://127.0.0.1:{port}/in"
    db = tmp_path / "inbox.sqlite3"
    bodies = [event("ticket.created", f"e-r{i}") for i in range(3)]
    with receiver(tmp_path, secret=SECRET, forward_to=forward_to, forward_max_delay=0.2) as r:
        for b in bodies:
            assert r.post(b, signed(b)).status_code == 200
        wait_for(
            lambda: all(x["forward_attempts"] >= 1 for x in rows(db, "acked = 1")),
            what="a first failed attempt each",
        )
    assert {x["forward_status"] for x in rows(db)} == {"retrying"}
    # and one acknowledged while no receiver ran a forwarder: still pending
    with Inbox(db) as inbox:
        late = event("ticket.updated", "e-pending")
        pending = NewRequest(
            received_at=time.time(),
            method="POST",
            path="/webhook",
            headers=[],
            body=late,
            verdict="verified",
            reason=None,
            event_id="e-pending",
            event_name="ticket.updated",
            answer_code=200,
            answer_body='{"message":"success"}',
            forward=True,
        )
        inbox.add_many([pending])
    assert forward_row(db, "e-pending")["forward_status"] == "pending"
    target = Target()
    with (
        BackgroundServer(target, port=port),
        receiver(tmp_path, secret=SECRET, forward_to=forward_to, forward_max_delay=0.2),
    ):
        wait_for(
            lambda: {x["forward_status"] for x in rows(db)} == {"delivered"},
            what="every forward delivered",
        )
        time.sleep(0.3)
    assert sorted(h.body for h in target.hits) == sorted([*bodies, late])
    for hit in target.hits:
        assert signature.check(hit.body, hit.headers[SIG], hit.headers[TS], SECRET) is None


# -- the live view ---------------------------------------------------------------------------


def _lines(stream: io.StringIO, n: int) -> list[str]:
    wait_for(lambda: len(stream.getvalue().splitlines()) >= n, 5, f"{n} lines")
    return stream.getvalue().splitlines()


def test_the_live_view_prints_one_line_per_request(tmp_path):
    stream = io.StringIO()
    live = LiveView(stream, colour=False)
    with receiver(tmp_path, secret=SECRET, on_request=live.request) as r:
        ok = event("ticket.created", "e-live-1")
        r.post(ok, signed(ok))
        r.post(ok, signed(ok))
        r.post(ok, {SIG: "0" * 64, TS: str(now_ms())})
        unexpected = event("user.created", "e-live-2")
        r.post(unexpected, signed(unexpected))
        r.post(b"{}")
        lines = _lines(stream, 5)
    assert len(lines) == 5
    first, dup, unsigned, rejected, test = (line.split() for line in lines)
    assert first[1:3] == ["verified", "200"] and first[4:6] == ["e-live-1", "ticket.created"]
    assert dup[1:3] == ["verified", "200"] and dup[4:] == [
        "e-live-1",
        "ticket.created",
        "duplicate",
    ]
    assert unsigned[1:3] == ["rejected", "401"] and unsigned[-1] == "bad_signature"
    assert rejected[1:3] == ["rejected", "400"]
    assert rejected[4:] == ["e-live-2", "user.created", "unexpected_event"]
    assert test[1:3] == ["test", "200"] and test[4:] == ["-", "-"]
    assert all(line.split()[3].endswith("ms") for line in lines)
    assert "\x1b[" not in stream.getvalue()


def test_each_live_line_shows_its_own_request_however_many_differ():
    """The view keeps the painted verdicts and codes and the printable names it made (at
    most 256 of each: names come from the network). Every line must still show its own
    request's values, in colour or not, with names and ids made safe for one line."""
    from atwh.errors import printable

    rng = random.Random(7)
    verdicts = [
        ("verified", None),
        ("unverified", None),
        ("test", None),
        ("rejected", "bad_signature"),
        ("rejected", "unexpected_event"),
    ]
    colours = {"verified": "32", "test": "36", "unverified": "33", "rejected": "31"}
    for colour in (False, True):
        stream = io.StringIO()
        live = LiveView(stream, colour=colour)
        expected = []
        for i in range(700):  # more names than the view keeps
            verdict, reason = rng.choice(verdicts)
            duplicate = rng.random() < 0.2
            code = rng.choice([200, 200, 401, 400, 500, 503])
            name = rng.choice(["ticket.created", f"ticket.\x1b[2J{i}\n", "x" * 70 + str(i), ""])
            eid = rng.choice([f"e-{i}", f" lead  {i}", f"id  with\ttab {i}", "i" * 45 + str(i), ""])
            ts = 1_700_000_000 + i * 0.0137
            r = NewRequest(
                ts,
                "POST",
                "/webhook",
                [],
                b"{}",
                verdict,
                reason,
                eid or None,
                name or None,
                code,
                "{}",
            )
            live.request(r, Stored(i, duplicate), i / 7)
            shown_verdict, shown_code = f"{verdict:<10}", str(code)
            if colour:
                shown_verdict = f"\x1b[{colours[verdict]}m{shown_verdict}\x1b[0m"
                shown_code = f"\x1b[{'32' if code < 300 else '31'}m{shown_code}\x1b[0m"
            clock = time.strftime("%H:%M:%S", time.localtime(int(ts)))
            millis = int((ts - int(ts)) * 1000)
            extra = ", ".join(x for x in (reason, "duplicate" if duplicate else None) if x)
            expected.append(
                f"{clock}.{millis:03d} {shown_verdict} {shown_code} {f'{i / 7:.1f}ms':>7}  "
                f"{printable(eid or '-', 256)}  {printable(name or '-', 60)}"
                + (f"  {extra}" if extra else "")
            )
        live.flush()
        assert stream.getvalue().splitlines() == expected
        assert len(live._names) <= 256 and len(live._painted) <= 256


def test_the_live_view_as_ndjson(tmp_path):
    stream = io.StringIO()
    live = LiveView(stream, as_json=True)
    with receiver(tmp_path, fail_every=2, on_request=live.request) as r:
        for i in range(2):
            body = event("ticket.updated", f"j{i}")
            r.post(body, {SIG: "x"})
        lines = _lines(stream, 2)
    records = [json.loads(line) for line in lines]
    assert [
        (x["eventId"], x["eventName"], x["verdict"], x["answerCode"], x["duplicate"])
        for x in records
    ] == [
        ("j0", "ticket.updated", "unverified", 200, False),
        ("j1", "ticket.updated", "unverified", 500, False),
    ]
    assert records[1]["reason"] == "simulated: --fail-every 2"
    assert [x["id"] for x in records] == [row["id"] for row in rows(r.db)]
    assert all("payload" not in x for x in records)
    assert all(isinstance(x["latencyMs"], float | int) for x in records)


def test_the_verbose_live_view_adds_the_payload(tmp_path):
    body = event("ticket.created", "v1", subject="Leaking tap")
    for as_json in (True, False):
        stream = io.StringIO()
        live = LiveView(stream, as_json=as_json, verbose=True, colour=False)
        db = tmp_path / f"verbose-{as_json}.sqlite3"
        with receiver(tmp_path, db=db, on_request=live.request) as r:
            r.post(body, {SIG: "x"})
            wait_for(lambda s=stream: "v1" in s.getvalue(), 5)
            time.sleep(0.05)
        text = stream.getvalue()
        if as_json:
            (line,) = text.splitlines()
            assert json.loads(line)["payload"] == json.loads(body)
        else:
            head, *payload = text.splitlines()
            assert "v1" in head and "200" in head
            assert payload == [
                "    " + p for p in json.dumps(json.loads(body), indent=2).splitlines()
            ]


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def started(monkeypatch) -> Iterator[list[tuple[Any, socket.socket]]]:
    """`atwh serve` builds its app and hands it to server.run: capture it instead."""
    calls: list[tuple[Any, socket.socket]] = []
    monkeypatch.setattr(server, "run", lambda app, sock, **kw: calls.append((app, sock)))
    yield calls
    for _, sock in calls:
        sock.close()


def built(atwh, started, *args: str) -> tuple[ReceiverSettings, socket.socket, Any]:
    result = atwh("serve", *args)
    assert result.exit_code == 0, result.output
    ((app, sock),) = started
    assert isinstance(app, Receiver)
    return app.s, sock, result


def test_serve_defaults(atwh, started, tmp_path):
    s, sock, result = built(atwh, started, "--port", "0")
    port = sock.getsockname()[1]
    assert sock.getsockname()[0] == "127.0.0.1" and port > 0
    assert s.db == tmp_path / "data" / "inbox.sqlite3"
    assert s.db.exists()
    assert (s.path, s.secret, s.tolerance, s.max_body) == ("/webhook", None, 120.0, 1024 * 1024)
    assert s.events == frozenset({"ticket.created", "ticket.updated"})
    assert s.accept_any_event is False
    assert (s.respond, s.fail_every, s.fail_rate, s.seed, s.delay) == (None, None, None, None, 0.0)
    assert (s.synchronous, s.forward_to, s.forward_secret) == ("NORMAL", None, None)
    lines = result.stderr.splitlines()
    assert lines[0] == f"atwh serve: POST webhooks to http://127.0.0.1:{port}/webhook"
    assert lines[1].startswith("  NOT verifying: no secret given")
    assert not any(line.strip().startswith("verifying") for line in lines)
    assert lines[-1] == f"Stopped after 0 requests; inbox: {s.db}"
    assert result.stdout == ""


def test_serve_builds_the_settings_from_its_flags(atwh, started, tmp_path):
    fwd = "http://127.0.0.1:3000/webhook"
    s, sock, result = built(
        atwh, started,
        "--port", "0", "--host", "127.0.0.2", "--path", "/in/hooks",
        "--secret", "shh", "--tolerance", "5m", "--events", "custom.a, custom.b,",
        "--accept-any-event", "--max-body", "512KiB", "--respond", "503",
        "--fail-every", "4", "--fail-rate", "0.25", "--seed", "42", "--delay", "2s",
        "--db", str(tmp_path / "my.db"), "--forward-to", fwd, "--forward-secret", "fwd",
        "--fsync",
    )  # fmt: skip
    assert sock.getsockname()[0] == "127.0.0.2"
    assert s.path == "/in/hooks"
    assert s.secret == "shh"
    assert s.tolerance == 300.0
    assert s.events == frozenset({"ticket.created", "ticket.updated", "custom.a", "custom.b"})
    assert s.accept_any_event is True
    assert s.max_body == 512 * 1024
    assert (s.respond, s.fail_every, s.fail_rate, s.seed, s.delay) == (503, 4, 0.25, 42, 2.0)
    assert s.db == tmp_path / "my.db" and s.db.exists()
    assert (s.forward_to, s.forward_secret, s.synchronous) == (fwd, "fwd", "FULL")
    lines = result.stderr.splitlines()
    port = sock.getsockname()[1]
    assert lines[0] == f"atwh serve: POST webhooks to http://127.0.0.2:{port}/in/hooks"
    assert lines[1] == "  verifying: HMAC-SHA256 signatures, timestamps within 300s"
    assert "  accepting: every event name" in lines
    assert f"  forwarding signed events to {fwd}" in lines


@pytest.mark.parametrize(
    ("text", "size"), [("2000", 2000), ("1MiB", 1048576), ("1.5k", 1500), ("10 kb", 10000)]
)
def test_serve_max_body_sizes(atwh, started, text, size):
    s, _, _ = built(atwh, started, "--port", "0", "--max-body", text)
    assert s.max_body == size


def test_serve_reads_port_and_secrets_from_the_environment(atwh, started, monkeypatch):
    port = free_port()
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.setenv("SHARED_WEBHOOK_SECRET", "from-shared")
    s, sock, result = built(atwh, started)
    assert sock.getsockname()[1] == port
    assert s.secret == "from-shared"
    assert result.stderr.splitlines()[1].startswith("  verifying:")
    started.clear()
    sock.close()
    monkeypatch.setenv("ALLTHINGS_WEBHOOK_SECRET", "from-allthings")
    s, _, _ = built(atwh, started, "--port", "0")
    assert s.secret == "from-allthings"
    started.pop()[1].close()
    s, _, _ = built(atwh, started, "--port", "0", "--secret", "from-flag")
    assert s.secret == "from-flag"


def test_serve_live_view_options(atwh, started):
    plain, _, _ = built(atwh, started, "--port", "0")
    app, sock = started.pop()
    sock.close()
    assert isinstance(app.on_request.__self__, LiveView)
    assert (app.on_request.__self__.as_json, app.on_request.__self__.verbose) == (False, False)
    built(atwh, started, "--port", "0", "--json", "-v")
    view = started[0][0].on_request.__self__
    assert (view.as_json, view.verbose) == (True, True)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tolerance", "7x"], "--tolerance"),
        (["--delay", "soon"], "--delay"),
        (["--max-body", "1XB"], "--max-body"),
        (["--max-body", "0"], "--max-body"),
        (["--respond", "99"], "--respond"),
        (["--respond", "600"], "--respond"),
        (["--fail-rate", "2"], "--fail-rate"),
        (["--fail-every", "0"], "--fail-every"),
        (["--path", "nope"], "--path"),
        (["--forward-to", "ftp://x"], "--forward-to"),
        (["--forward-to", "not a url"], "--forward-to"),
        (["--port", "70000"], "--port"),
    ],
)
def test_serve_bad_input_is_exit_2_with_one_line(atwh, started, args, needle):
    result = atwh("serve", "--port", "0", *args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    assert needle in line
    assert started == []


def test_serve_on_a_port_in_use_is_exit_6(atwh, started):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        result = atwh("serve", "--port", str(port))
    finally:
        holder.close()
    assert result.exit_code == 6, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(stop what listens there, or give --port 0 for any free port)"
    )
    assert started == []


def test_serve_reads_the_secret_of_a_webhook_from_the_api(atwh, started, fake_api):
    fake_api.responses.append(
        httpx.Response(200, json={"data": {"webhook": {"id": "w1", "secret": "abc"}}})
    )
    s, _, result = built(atwh, started, "--port", "0", "--webhook", "w1")
    assert s.secret == "abc"
    assert "  verifying:" in result.stderr
    (request,) = fake_api.requests
    assert request["body"]["variables"] == {"id": "w1"}
    assert "secret" in request["body"]["query"]
    assert request["headers"]["authorization"] == "Bearer test-token"


def test_serve_webhook_wins_over_a_secret_from_the_environment(
    atwh, started, fake_api, monkeypatch
):
    monkeypatch.setenv("SHARED_WEBHOOK_SECRET", "env")
    fake_api.responses.append(
        httpx.Response(200, json={"data": {"webhook": {"id": "w1", "secret": "api"}}})
    )
    s, _, _ = built(atwh, started, "--port", "0", "--webhook", "w1")
    assert s.secret == "api"


def test_serve_secret_and_webhook_together_is_exit_2(atwh, started, fake_api):
    result = atwh("serve", "--port", "0", "--secret", "x", "--webhook", "w1")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == "Error: give --secret or --webhook, not both"
    assert fake_api.requests == [] and started == []


@pytest.mark.parametrize(
    ("answer", "code", "needle"),
    [
        ({"data": {"webhook": None}}, 4, "webhook w9 not found"),
        ({"data": {"webhook": {"id": "w9", "secret": None}}}, 2, "no secret for webhook w9"),
    ],
)
def test_serve_webhook_without_a_secret(atwh, started, fake_api, answer, code, needle):
    fake_api.responses.append(httpx.Response(200, json=answer))
    result = atwh("serve", "--port", "0", "--webhook", "w9")
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and needle in line
    assert started == []


def test_serve_runs_the_app_it_builds(tmp_path, monkeypatch, atwh):
    """The app the command builds, served for real: answers, verifies, stores."""
    captured: list[Any] = []
    monkeypatch.setattr(server, "run", lambda app, sock, **kw: captured.append((app, sock)))
    db = tmp_path / "cli.sqlite3"
    result = atwh("serve", "--port", "0", "--db", str(db), "--secret", SECRET, "--json")
    assert result.exit_code == 0, result.output
    ((app, sock),) = captured
    sock.close()
    with BackgroundServer(app) as srv, httpx.Client(trust_env=False) as client:
        body = event("ticket.created", "e-cli")
        response = client.post(srv.url("/webhook"), content=body, headers=signed(body))
        assert (response.status_code, response.json()) == (200, SUCCESS)
    assert [(x["event_id"], x["verdict"]) for x in rows(db)] == [("e-cli", "verified")]
