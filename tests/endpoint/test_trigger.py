"""`atwh trigger`: realistic signed events sent to `atwh serve`, to an imitation of the vendor's
example receiver, and with --webhook through the emulator's API."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atwh import samples
from atwh.receiver.inbox import Inbox
from atwh.server import BackgroundServer
from tests.conftest import free_port, hmac_hex, request_body, stored_requests, verifying_receiver
from tests.recover.conftest import TOKEN, Loop, loop  # noqa: F401  (the fixture)

SECRET = "trigger-secret"
SIG = "x-allthings-signature"
TS = "x-allthings-signature-timestamp"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`atwh serve` verifying with SECRET."""
    db = tmp_path / "serve.sqlite3"
    with verifying_receiver(db, SECRET) as url:
        yield url, db


received = stored_requests


def run(atwh: Any, url: str, *args: str) -> Any:
    return atwh("trigger", *args, "--url", url, "--secret", SECRET)


def test_events_go_out_as_allthings_sends_them(atwh, serve):
    url, db = serve
    before = int(time.time() * 1000)
    result = run(atwh, url, "ticket.created", "ticket.updated", "booking.accepted")
    # serve accepts ticket.* and answers 400 Unexpected event type for the rest: exit 1
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["event", "event_id", "code", "time", "answer"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [(r[0], r[2]) for r in rows] == [
        ("ticket.created", "200"),
        ("ticket.updated", "200"),
        ("booking.accepted", "400"),
    ]
    assert "Unexpected event type" in rows[2][4]
    assert "2 of 3 acknowledged (2xx)" in result.stderr
    got = received(db)
    assert [r.verdict for r in got] == ["verified", "verified", "rejected"]
    for r, row in zip(got, rows, strict=True):
        headers = dict(r.headers)
        # the signature is the HMAC of the raw bytes, computed here independently
        assert headers[SIG] == hmac_hex(r.body, SECRET)
        assert before <= int(headers[TS]) <= int(time.time() * 1000)
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == samples.USER_AGENT
        doc = json.loads(r.body)
        # JSON.stringify's bytes: compact, non-ASCII as is
        assert r.body == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        assert set(doc) == {"event"} and doc["event"]["id"] == row[1] == r.event_id
        assert {"id", "name", "urn", "createdDate", "data"} <= set(doc["event"])
    assert "delta" in json.loads(got[1].body)["event"]["data"]  # ticket.updated's changes


def test_count_id_data_set_and_a_burst(atwh, serve):
    url, db = serve
    result = run(
        atwh, url, "ticket.updated", "--count", "6", "--concurrency", "3",
        "--data", '{"title": "Fuite au 3ème", "extra": {"a": 1}}',
        "--set", "delta.status.to=closed", "--set", "extra.b=[1,2]",
        "--set", "event.urn=urn:allthings:app:x:tickets", "--set", "note=plain text",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = received(db)
    assert len(got) == 6 and len({r.event_id for r in got}) == 6  # distinct ids
    for r in got:
        event = json.loads(r.body)["event"]
        assert event["urn"] == "urn:allthings:app:x:tickets"
        data = event["data"]
        assert data["title"] == "Fuite au 3ème" and "3ème".encode() in r.body
        assert data["extra"] == {"a": 1, "b": [1, 2]}
        assert data["delta"]["status"]["to"] == "closed" and data["note"] == "plain text"
    again = run(atwh, url, "ticket.created", "--count", "3", "--id", "same-id")
    assert again.exit_code == 0, again.output
    with Inbox(db, create=False) as box:  # serve keeps one record and counts the duplicates
        same = [r for r in box.records() if r.event_id == "same-id"]
    assert len(same) == 1 and same[0].duplicates == 2 and same[0].conflict_of is None


def test_body_is_sent_byte_for_byte_and_signed(atwh, serve, tmp_path):
    url, db = serve
    raw = b'{\n  "event": {"id": "cap-1", "name": "ticket.created", "data": {"t": "\\u00e9"}}\n}\n'
    path = tmp_path / "captured.json"
    path.write_bytes(raw)
    result = atwh("trigger", "--body", str(path), "--url", url, "--secret", SECRET, "--json")
    assert result.exit_code == 0, result.output
    (record,) = received(db)
    assert record.body == raw and record.verdict == "verified"
    (row,) = json.loads(result.stdout)
    assert (row["eventName"], row["eventId"], row["statusCode"]) == ("ticket.created", "cap-1", 200)
    both = atwh("trigger", "ticket.created", "--body", str(path), "--url", url, "--secret", "s")
    assert both.exit_code == 2 and "--body sends its bytes as they are" in both.stderr


def test_timestamps_and_unsigned(atwh, serve):
    url, db = serve
    stale = run(atwh, url, "ticket.created", "--timestamp", "-10m")
    assert stale.exit_code == 1, stale.output
    assert "too_old" in stale.stdout
    fixed = run(atwh, url, "ticket.created", "--timestamp", "1700000000000")
    assert fixed.exit_code == 1
    unsigned = atwh("trigger", "ticket.created", "--url", url, "--unsigned")
    # serve with a secret refuses an unsigned event (the vendor's example takes it for a test)
    assert unsigned.exit_code == 1, unsigned.output
    assert '"reason": "unsigned"' in unsigned.stdout
    got = received(db)
    assert dict(got[1].headers)[TS] == "1700000000000"
    assert got[2].verdict == "rejected" and SIG not in dict(got[2].headers)
    assert TS not in dict(got[2].headers)
    bad = run(atwh, url, "ticket.created", "--timestamp", "yesterday")
    assert bad.exit_code == 2 and "--timestamp 'yesterday'" in bad.stderr


def test_names_are_checked_against_the_catalogue(atwh, serve):
    url, db = serve
    typo = run(atwh, url, "tiket.created")
    assert typo.exit_code == 2
    assert "did you mean ticket.created?" in typo.stderr
    assert typo.stderr.count("\n") == 1 and "Traceback" not in typo.output
    unknown = run(atwh, url, "parcel.arrived")
    assert unknown.exit_code == 2 and "'atwh webhooks events'" in unknown.stderr
    anyway = run(atwh, url, "parcel.arrived", "--any-name")
    assert anyway.exit_code == 1  # sent; serve answers 400 for a name it does not accept
    assert [r.event_name for r in received(db)] == ["parcel.arrived"]
    none = run(atwh, url)
    assert none.exit_code == 2 and "give one or more event NAMEs" in none.stderr
    nosecret = atwh("trigger", "ticket.created", "--url", url)
    assert nosecret.exit_code == 2 and "--unsigned" in nosecret.stderr
    nourl = atwh("trigger", "ticket.created", "--secret", "s")
    assert nourl.exit_code == 2 and "--url" in nourl.stderr


def test_an_unreachable_url_is_exit_6_and_stops_sending(atwh):
    url = f"http://127.0.0.1:{free_port()}/webhook"
    result = run(atwh, url, "ticket.created", "--count", "5")
    assert result.exit_code == 6, result.output
    assert "cannot connect" in result.stdout
    assert "1 got no answer; 4 not sent once the URL could not be reached" in result.stderr


class Hits:
    def __init__(self) -> None:
        self.paths: list[str] = []


async def sleepy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An endpoint that takes the request and answers too late."""
    if await request_body(scope, receive, send) is None:
        return
    await asyncio.sleep(0.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"late"})


def test_an_answer_past_the_timeout_is_a_failure_not_unreachable(atwh):
    """The endpoint was reached, only too slow: exit 1 (a failed attempt), not 6."""
    with BackgroundServer(sleepy) as srv:
        result = run(atwh, srv.url("/webhook"), "ticket.created", "--timeout", "0.1", "--json")
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)
    assert row["statusCode"] is None and row["error"] == "no answer within 0.1s"


def redirecting(hits: Hits) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await request_body(scope, receive, send) is None:
            return
        hits.paths.append(scope["path"])
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", b"/else")]}
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def test_a_redirect_is_a_failure_and_never_followed(atwh):
    hits = Hits()
    with BackgroundServer(redirecting(hits)) as srv:
        result = run(atwh, srv.url("/webhook"), "ticket.created", "--json")
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)
    assert row["statusCode"] == 302 and row["location"] == "/else" and not row["ok"]
    assert hits.paths == ["/webhook"]
    assert "redirected (a 3xx is a failure; not followed)" in result.stderr


def vendor_example(seen: list[dict[str, Any]]) -> Any:
    """The vendor's example receiver (build-a-webhook-endpoint.md), in ASGI: no signature
    header is a test event (200); ticket.created reads event.data, ticket.updated
    event.data.delta; any other name is 400."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = await request_body(scope, receive, send)
        if raw is None:
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if SIG not in headers:
            status, message = 200, "Received test event."
        else:
            body = json.loads(raw)
            name = body["event"]["name"]
            if name == "ticket.created":
                seen.append(body["event"]["data"])
                status, message = 200, "success"
            elif name == "ticket.updated":
                seen.append(body["event"]["data"]["delta"])  # a KeyError would be a 500
                status, message = 200, "success"
            else:
                status, message = 400, "Unexpected event type"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send(
            {"type": "http.response.body", "body": json.dumps({"message": message}).encode()}
        )

    return app


def test_the_vendors_example_receiver(atwh):
    seen: list[dict[str, Any]] = []
    with BackgroundServer(vendor_example(seen)) as srv:
        url = srv.url("/webhook")
        tickets = run(atwh, url, "ticket.created", "ticket.updated")
        other = run(atwh, url, "booking.accepted")
        test = atwh("trigger", "ticket.created", "--url", url, "--unsigned")
    assert tickets.exit_code == 0, tickets.output
    assert [line.split("\t")[4] for line in tickets.stdout.splitlines()[1:]] == [
        '{"message": "success"}'
    ] * 2
    assert "id" in seen[0] and "status" in seen[1]
    assert other.exit_code == 1 and "Unexpected event type" in other.stdout
    assert test.exit_code == 0 and "Received test event." in test.stdout


def test_unsigned_without_a_name_is_the_registration_test_request(atwh, serve):
    """`--unsigned` is the registration's test request: without NAME it sends that request
    (no event), which the vendor's example and serve with a secret both answer 200."""
    url, db = serve
    to_serve = atwh("trigger", "--unsigned", "--url", url)
    assert to_serve.exit_code == 0, to_serve.output
    (row,) = [line.split("\t") for line in to_serve.stdout.splitlines()[1:]]
    assert row[:3] == ["test request", "—", "200"] and "Received test event." in row[4]
    (record,) = received(db)
    assert record.verdict == "test" and SIG not in dict(record.headers)
    assert record.body == samples.TEST_EVENT_BODY
    with BackgroundServer(vendor_example([])) as srv:
        to_vendor = atwh("trigger", "--unsigned", "--url", srv.url("/webhook"), "--json")
    assert to_vendor.exit_code == 0, to_vendor.output
    (answer,) = json.loads(to_vendor.stdout)
    assert answer["eventName"] is None and answer["statusCode"] == 200
    # what shapes events still needs their names
    counted = atwh("trigger", "--unsigned", "--count", "2", "--url", url)
    assert counted.exit_code == 2 and "give one or more event NAMEs" in counted.stderr


def test_events_are_written_as_json_stringify_writes_numbers(atwh, serve):
    """--data 1.0 goes out as JSON.stringify writes it (1), as a JavaScript sender would."""
    url, db = serve
    result = run(atwh, url, "ticket.created", "--data", '{"rating": 1.0, "ratio": 1e-07}')
    assert result.exit_code == 0, result.output
    (record,) = received(db)
    assert b'"rating":1,"ratio":1e-7}' in record.body


def test_webhook_takes_url_secret_and_names_from_the_emulator(loop: Loop, atwh):  # noqa: F811
    common = ("--webhook", loop.webhook_id, "--api-url", loop.api_url, "--token", TOKEN)
    result = atwh("trigger", *common)
    assert result.exit_code == 0, result.output
    names = [line.split("\t")[0] for line in result.stdout.splitlines()[1:]]
    assert names == ["ticket.created", "ticket.updated"]  # the webhook's events
    ids = {line.split("\t")[1] for line in result.stdout.splitlines()[1:]}
    got = {r.event_id: r for r in loop.inbox()}
    assert all(got[i].verdict == "verified" for i in ids)  # signed with the webhook's secret
    # the API's catalogue decides the names
    typo = atwh("trigger", "booking.acepted", *common)
    assert typo.exit_code == 2 and "did you mean booking.accepted?" in typo.stderr
    both = atwh("trigger", *common, "--secret", "x")
    assert both.exit_code == 2 and "--secret or --webhook" in both.stderr


def test_as_curl_and_dry_run_send_nothing(atwh, serve, tmp_path, monkeypatch):
    url, db = serve
    monkeypatch.chdir(tmp_path)
    small = run(atwh, url, "ticket.created", "--as", "curl")
    assert small.exit_code == 0, small.output
    words = shlex.split(small.stdout)
    assert words[:5] == ["curl", "-sS", "-X", "POST", url]
    headers = dict(h.split(": ", 1) for h in words[6:-2:2])
    body = words[-1].encode()
    assert headers[SIG] == hmac_hex(body, SECRET) and json.loads(body)["event"]["name"]
    large = run(
        atwh, url, "ticket.created", "--as", "curl", "--data", json.dumps({"n": "x" * 5000})
    )
    words = shlex.split(large.stdout)
    assert words[-2:] == ["--data-binary", f"@{tmp_path / 'atwh-trigger-1.json'}"]
    body = (tmp_path / "atwh-trigger-1.json").read_bytes()
    assert dict(h.split(": ", 1) for h in words[6:-2:2])[SIG] == hmac_hex(body, SECRET)
    assert "Wrote the body of 1 request" in large.stderr
    dry = run(atwh, url, "ticket.created", "ticket.updated", "--dry-run")
    assert dry.exit_code == 0 and dry.stdout.count(f"POST {url}") == 2
    assert f"{SIG}: " in dry.stdout and "2 requests shown; nothing sent." in dry.stderr
    assert received(db) == []
    bad = run(atwh, url, "ticket.created", "--as", "wget")
    assert bad.exit_code == 2


def test_names_come_from_a_named_api_else_from_the_emulators_list(loop: Loop, atwh, serve):  # noqa: F811
    url, db = serve
    api = ("--api-url", loop.api_url, "--token", TOKEN)
    typo = atwh("trigger", "booking.acepted", "--url", url, "--secret", SECRET, *api)
    assert typo.exit_code == 2 and "did you mean booking.accepted?" in typo.stderr
    unknown = atwh("trigger", "parcel.sent", "--url", url, "--secret", SECRET, *api)
    assert unknown.exit_code == 2 and "--any-name sends it anyway" in unknown.stderr
    gone = ("--api-url", f"http://127.0.0.1:{free_port()}/", "--token", TOKEN)
    result = atwh("trigger", "ticket.created", "--url", url, "--secret", SECRET, *gone)
    assert result.exit_code == 0, result.output
    assert "Warning: the event names come from the emulator's list" in result.stderr
