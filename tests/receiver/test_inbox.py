"""`atwh inbox` and `atwh inbox show`: what `atwh serve` stored, listed, filtered, exported."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from atwh.receiver.app import ReceiverSettings, create_app
from atwh.receiver.inbox import Inbox, NewRequest
from atwh.server import BackgroundServer

SECRET = "inbox-secret"
SIG = "x-allthings-signature"
TS = "x-allthings-signature-timestamp"
NOW = time.time()
CSV_HEADER = [
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
]


def hmac_hex(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


BODY1 = b'{"event":  {"id": "e1", "name": "ticket.created"},\n  "data": {"n": 1}}'
STAMP1 = str(int((NOW - 3 * 3600) * 1000))
BODY3 = b'{"event": "\xff\xfe"}'
BODY4 = b'{"hello": "world"}'
BODY5 = b'{"event": {"id": "e4", "name": "ticket.updated", "data": {"try": 1}}}'
BODY6 = b'{"event": {"id": "e4", "name": "ticket.updated", "data": {"try": 2}}}'
STAMP6 = str(int((NOW - 60) * 1000))

# id: (seconds ago, verdict, reason, event id, name, code, body, headers)
RECORDS: dict[int, tuple[Any, ...]] = {
    1: (
        3 * 3600,
        "verified",
        None,
        "e1",
        "ticket.created",
        200,
        BODY1,
        [("content-type", "application/json"), (SIG, hmac_hex(BODY1)), (TS, STAMP1)],
    ),
    2: (
        2 * 3600,
        "rejected",
        "bad_signature",
        None,
        None,
        401,
        b'{"event": {"id": "e2", "name": "ticket.created"}}',
        [(SIG, "0" * 64), (TS, str(int((NOW - 7200) * 1000)))],
    ),
    3: (100 * 60, "rejected", "invalid_utf8", None, None, 400, BODY3, [(SIG, "abc")]),
    4: (30 * 60, "test", None, None, None, 200, BODY4, [("content-type", "application/json")]),
    5: (
        10 * 60,
        "unverified",
        "simulated: --fail-every 2",
        "e4",
        "ticket.updated",
        500,
        BODY5,
        [(SIG, "abc")],
    ),
    6: (
        60,
        "verified",
        None,
        "e4",
        "ticket.updated",
        200,
        BODY6,
        [(SIG, hmac_hex(STAMP6.encode() + b"." + BODY6)), (TS, STAMP6)],
    ),
}
ANSWERS = {
    200: '{"message": "success"}',
    401: '{"message": "signature does not match the body", "reason": "bad_signature"}',
    400: '{"message": "Body is not valid UTF-8"}',
    500: '{"message": "Simulated failure (--fail-every 2)"}',
}


def request(i: int, *, forward: bool = False, ago: float | None = None) -> NewRequest:
    age, verdict, reason, eid, name, code, body, headers = RECORDS[i]
    answer = '{"message": "Received test event."}' if verdict == "test" else ANSWERS[code]
    return NewRequest(
        received_at=NOW - (age if ago is None else ago),
        method="POST",
        path="/webhook",
        headers=headers,
        body=body,
        verdict=verdict,
        reason=reason,
        event_id=eid,
        event_name=name,
        answer_code=code,
        answer_body=answer,
        forward=forward,
    )


def fill(db: Path) -> Path:
    with Inbox(db) as inbox:
        stored = inbox.add_many([request(i, forward=i in (1, 6)) for i in RECORDS])
        assert [s.id for s in stored] == list(RECORDS)
        (dup,) = inbox.add_many([request(1, ago=30)])  # e1 again: a duplicate
        assert (dup.id, dup.duplicate) == (1, True)
        inbox.forward_result(1, 200, None, None)
    return db


def test_a_batch_tells_new_rows_from_duplicates_of_older_rows_and_of_each_other(tmp_path):
    def req(eid: str | None, code: int = 200, verdict: str = "verified") -> NewRequest:
        return NewRequest(NOW, "POST", "/webhook", [], b"{}", verdict, None, eid, "t", code, "{}")

    with Inbox(tmp_path / "inbox.sqlite3") as inbox:
        assert [(s.id, s.duplicate) for s in inbox.add_many([req("old")])] == [(1, False)]
        batch = [
            req("a"),
            req("old"),  # acknowledged before this batch
            req(None, verdict="test"),
            req("a"),  # earlier in this batch
            req("a", code=500),  # not acknowledged: a row of its own
            req("a", verdict="test"),  # a test delivery never counts as the event
            req("b"),
        ]
        stored = inbox.add_many(batch)
        assert [(s.id, s.duplicate) for s in stored] == [
            (2, False),
            (1, True),
            (3, False),
            (2, True),
            (4, False),
            (5, False),
            (6, False),
        ]
        assert inbox.count() == 6
        # a batch without duplicates takes consecutive ids
        assert [s.id for s in inbox.add_many([req("c"), req(None, code=401)])] == [7, 8]
        dups = dict(
            inbox.conn.execute(
                "SELECT event_id, duplicates FROM requests WHERE acked AND verdict <> 'test'"
            )
        )
        assert dups["old"] == 1 and dups["a"] == 1 and dups["b"] == 0


def test_bodies_are_stored_as_blobs_byte_for_byte(tmp_path):
    # bytes go through the identity adapter atwh.receiver.inbox registers with sqlite3
    bodies = [b"{}", b'{"a": "\xff\x00"}', bytes(range(256))]
    with Inbox(tmp_path / "inbox.sqlite3") as inbox:
        inbox.add_many(
            [
                NewRequest(NOW, "POST", "/webhook", [], b, "test", None, None, None, 200, "{}")
                for b in bodies
            ]
        )
        rows = inbox.conn.execute("SELECT typeof(body), body FROM requests ORDER BY id")
        assert list(rows) == [("blob", b) for b in bodies]


@pytest.fixture
def db(tmp_path) -> Path:
    return fill(tmp_path / "inbox.sqlite3")


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def ids(result) -> list[int]:
    return [r["id"] for r in json.loads(ok(result))]


def one_error_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


# -- the list ---------------------------------------------------------------------------------


def table_ids(text: str) -> list[int]:
    """The ids in the table's rows (a row: id, then the local date, its year only when it is
    not this one's)."""
    return [int(m.group(1)) for m in re.finditer(r"(?m)^\s*(\d+)\s+(\d{4}-)?\d\d-\d\d ", text)]


def test_the_table_lists_newest_first(atwh, db):
    text = ok(atwh("inbox", "--db", str(db), "--format", "table"))
    assert f"Inbox {db}" in text
    assert "6 requests (6 shown)" in text
    assert table_ids(text) == [6, 5, 4, 3, 2, 1]
    line = {
        i: next(x for x in text.splitlines() if re.match(rf"\s*{i}\s+\d\d", x)) for i in RECORDS
    }
    assert "verified" in line[1] and "+1 dup" in line[1] and "delivered 200" in line[1]
    assert "3h ago" in line[1]
    assert re.search(r"ticket\.created\s+e1\b", line[1])
    assert "rejected (bad_signature)" in line[2] and " 401 " in line[2]
    assert "rejected (invalid_utf8)" in line[3] and " 400 " in line[3]
    assert "test" in line[4] and " 200 " in line[4]
    assert "unverified (simulated: --fail-every 2)" in line[5] and " 500 " in line[5]
    assert re.search(r"ticket\.updated\s+e4\b", line[6]) and "pending" in line[6]
    local = datetime.fromtimestamp(NOW - 60).strftime("%m-%d %H:%M:%S")
    assert local in line[6]


def test_the_default_inbox_is_in_the_data_dir(atwh, tmp_path):
    fill(tmp_path / "data" / "inbox.sqlite3")
    assert table_ids(ok(atwh("inbox", "--format", "table"))) == [6, 5, 4, 3, 2, 1]


def test_json_is_an_array_of_records(atwh, db):
    records = json.loads(ok(atwh("inbox", "--db", str(db), "--json")))
    assert [r["id"] for r in records] == [6, 5, 4, 3, 2, 1]
    by_id = {r["id"]: r for r in records}
    first = by_id[1]
    assert first["eventId"] == "e1"
    assert first["eventName"] == "ticket.created"
    assert first["verdict"] == "verified"
    assert first["reason"] is None
    assert first["answerCode"] == 200
    assert first["answerBody"] == '{"message": "success"}'
    assert first["receivedAt"] == iso(NOW - 3 * 3600)
    assert first["duplicates"] == 1
    assert first["payload"] == {"event": {"id": "e1", "name": "ticket.created"}, "data": {"n": 1}}
    assert first["headers"] == [
        {"name": "content-type", "value": "application/json"},
        {"name": SIG, "value": hmac_hex(BODY1)},
        {"name": TS, "value": STAMP1},
    ]
    assert first["forward"]["status"] == "delivered"
    assert (first["forward"]["attempts"], first["forward"]["code"]) == (1, 200)
    assert by_id[6]["forward"]["status"] == "pending"
    assert by_id[2]["forward"] is None  # not acknowledged: never forwarded
    assert (by_id[2]["verdict"], by_id[2]["reason"], by_id[2]["answerCode"]) == (
        "rejected",
        "bad_signature",
        401,
    )
    assert by_id[3]["payload"] == BODY3.decode("utf-8", errors="replace")
    assert by_id[4]["payload"] == {"hello": "world"}
    assert (by_id[4]["verdict"], by_id[4]["eventId"]) == ("test", None)
    assert [by_id[i]["receivedAt"] for i in RECORDS] == [iso(NOW - RECORDS[i][0]) for i in RECORDS]


def test_ndjson_and_csv(atwh, db):
    array = json.loads(ok(atwh("inbox", "--db", str(db), "--json")))
    lines = ok(atwh("inbox", "--db", str(db), "--format", "ndjson")).splitlines()
    assert [json.loads(x) for x in lines] == array
    table = list(csv.reader(io.StringIO(ok(atwh("inbox", "--db", str(db), "-f", "csv")))))
    assert table[0] == CSV_HEADER
    assert [int(row[0]) for row in table[1:]] == [6, 5, 4, 3, 2, 1]
    by_id = {int(row[0]): row for row in table[1:]}
    assert by_id[1] == [
        "1",
        iso(NOW - 3 * 3600),
        "verified",
        "",
        "200",
        "e1",
        "ticket.created",
        "1",
        "delivered",
        "1",
        "200",
        BODY1.decode(),
    ]
    assert by_id[5][2:8] == [
        "unverified",
        "simulated: --fail-every 2",
        "500",
        "e4",
        "ticket.updated",
        "0",
    ]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("out.json", lambda text: [r["id"] for r in json.loads(text)] == [6, 5, 4, 3, 2, 1]),
        ("out.ndjson", lambda text: len(text.splitlines()) == 6),
        ("out.csv", lambda text: next(csv.reader(io.StringIO(text))) == CSV_HEADER),
        ("out.txt", lambda text: "6 requests (6 shown)" in text),
    ],
)
def test_output_to_a_file(atwh, db, tmp_path, name, check):
    target = tmp_path / name
    assert ok(atwh("inbox", "--db", str(db), "--output", str(target))) == ""
    assert check(target.read_text())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "1h"], [6, 5, 4]),
        (["--since", "150m"], [6, 5, 4, 3, 2]),
        (["--until", "1h"], [3, 2, 1]),
        (["--event", "ticket.updated"], [6, 5]),
        (["--event", "ticket.*"], [6, 5, 1]),
        (["-e", "ticket.created", "-e", "nothing.here"], [1]),
        (["--failed"], [5, 3, 2]),
        (["--status-code", "4xx"], [3, 2]),
        (["-c", "500"], [5]),
        (["-c", "200", "-c", "401"], [6, 4, 2, 1]),
        (["--limit", "2"], [6, 5]),
        (["--failed", "--limit", "1"], [5]),
        (["--since", "1h", "--failed"], [5]),
        (["--event", "user.*"], []),
    ],
)
def test_filters(atwh, db, args, expected):
    result = atwh("inbox", "--db", str(db), "--json", *args)
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == expected
    assert bool(result.stderr) == (not expected)  # an empty result says why on stderr


def test_a_filtered_table_counts_what_it_shows(atwh, db):
    text = ok(atwh("inbox", "--db", str(db), "--failed", "--format", "table"))
    assert "3 requests match --failed (of 6 in all)" in text
    assert table_ids(text) == [5, 3, 2]


def test_a_filtered_and_limited_table_says_how_many_match_of_how_many(atwh, db):
    result = atwh("inbox", "--db", str(db), "--failed", "--limit", "2", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "2 of 3 requests that match --failed (of 6 in all)" in result.stdout
    assert table_ids(result.stdout) == [5, 3]


@pytest.mark.parametrize(
    "args",
    [["--status-code", "abc"], ["--since", "yesterday-ish"], ["--format", "xml"], ["--limit", "0"]],
)
def test_bad_filters_are_exit_2(atwh, db, args):
    one_error_line(atwh("inbox", "--db", str(db), *args), 2)


def test_a_missing_inbox_is_exit_2_with_one_line(atwh, tmp_path):
    missing = tmp_path / "nowhere" / "inbox.sqlite3"
    line = one_error_line(atwh("inbox", "--db", str(missing)), 2)
    assert line == f"Error: no inbox at {missing} (start one with 'atwh serve')"
    line = one_error_line(atwh("inbox", "show", "1", "--db", str(missing)), 2)
    assert line == f"Error: no inbox at {missing} (start one with 'atwh serve')"
    line = one_error_line(atwh("inbox"), 2)
    assert str(tmp_path / "data" / "inbox.sqlite3") in line
    assert not missing.exists() and not missing.parent.exists()
    assert not (tmp_path / "data" / "inbox.sqlite3").exists()


# -- one record ---------------------------------------------------------------------------------


def facts(text: str) -> dict[str, str]:
    """The `Name  value` lines above the panels."""
    out = {}
    for line in text.split("Request headers")[0].splitlines():
        name, sep, value = line.strip().partition("  ")
        if sep:
            out[name] = value.strip()
    return out


def test_show_by_row_id(atwh, db):
    text = ok(atwh("inbox", "show", "2", "--db", str(db)))
    f = facts(text)
    assert f["Inbox id"] == "2"
    assert f["Request"] == "POST /webhook"
    assert f["Verdict"] == "rejected (bad_signature)"
    assert f["Answer"] == "401 " + ANSWERS[401]
    assert f"Raw body ({len(RECORDS[2][6]):,} bytes)" in text
    assert '{"event": {"id": "e2", "name": "ticket.created"}}' in text
    assert "0" * 64 in text  # the headers


def test_show_by_event_id_prefers_the_acknowledged_record(atwh, db):
    f = facts(ok(atwh("inbox", "show", "e4", "--db", str(db))))
    assert f["Inbox id"] == "6"
    assert f["Event"] == "ticket.updated e4"
    f = facts(ok(atwh("inbox", "--db", str(db), "show", "e1")))  # --db before the subcommand
    assert f["Inbox id"] == "1"
    assert f["Duplicates"] == "1 more deliveries of this event, acknowledged"
    assert f["Forward"].startswith("delivered 200")


def test_show_prints_the_raw_body_exactly(atwh, db):
    text = ok(atwh("inbox", "show", "1", "--db", str(db)))
    assert f"Raw body ({len(BODY1):,} bytes)" in text
    raw_panel = text.split("Raw body")[1].split("Payload")[0]
    assert '{"event":  {"id": "e1", "name": "ticket.created"},' in raw_panel
    assert '  "data": {"n": 1}}' in raw_panel


def test_show_json(atwh, db):
    data = json.loads(ok(atwh("inbox", "show", "6", "--db", str(db), "--json")))
    assert data["id"] == 6
    assert data["body"] == BODY6.decode()
    assert data["payload"] == json.loads(BODY6)
    assert (data["eventId"], data["eventName"], data["verdict"], data["answerCode"]) == (
        "e4",
        "ticket.updated",
        "verified",
        200,
    )
    assert data["receivedAt"] == iso(NOW - 60)
    assert {"name": TS, "value": STAMP6} in data["headers"]
    invalid = json.loads(ok(atwh("inbox", "show", "3", "--db", str(db), "--json")))
    assert invalid["body"] == BODY3.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("record", "secret", "verdict"),
    [
        ("1", SECRET, "matches the body scheme"),
        ("6", SECRET, "matches the timestamp.body scheme"),
        ("1", "wrong", "matches none of: body, timestamp.body, timestamp+body (wrong secret?)"),
    ],
)
def test_show_secret_reports_the_signature_scheme(atwh, db, record, secret, verdict):
    f = facts(ok(atwh("inbox", "show", record, "--db", str(db), "--secret", secret)))
    assert f["Signature"] == verdict


def test_show_secret_from_the_environment(atwh, db, monkeypatch):
    assert "Signature" not in facts(ok(atwh("inbox", "show", "1", "--db", str(db))))
    monkeypatch.setenv("SHARED_WEBHOOK_SECRET", SECRET)
    f = facts(ok(atwh("inbox", "show", "1", "--db", str(db))))
    assert f["Signature"] == "matches the body scheme"


@pytest.mark.parametrize("key", ["nope", "99", "e2"])
def test_show_an_unknown_id_is_exit_4(atwh, db, key):
    line = one_error_line(atwh("inbox", "show", key, "--db", str(db)), 4)
    assert line == (
        f"Error: ID '{key}': nothing in the inbox has that id, or an event id starting with it"
    )


# -- from a real receiver -----------------------------------------------------------------------


def test_what_a_receiver_stored_is_listed(atwh, tmp_path):
    db = tmp_path / "live.sqlite3"
    settings = ReceiverSettings(db=db, secret=SECRET)
    bodies = [
        json.dumps({"event": {"id": f"r{i}", "name": "ticket.created"}}).encode() for i in range(3)
    ]
    with BackgroundServer(create_app(settings)) as srv, httpx.Client(trust_env=False) as client:
        url = srv.url("/webhook")
        for body in bodies:
            stamp = str(int(time.time() * 1000))
            headers = {SIG: hmac_hex(body), TS: stamp}
            assert client.post(url, content=body, headers=headers).status_code == 200
        assert (
            client.post(url, content=bodies[0], headers={SIG: "bad", TS: stamp}).status_code == 401
        )
        again = client.post(url, content=bodies[1], headers={SIG: hmac_hex(bodies[1]), TS: stamp})
        assert again.status_code == 200
    records = json.loads(ok(atwh("inbox", "--db", str(db), "--json")))
    assert [(r["eventId"], r["verdict"], r["answerCode"], r["duplicates"]) for r in records] == [
        ("r0", "rejected", 401, 0),  # named for display, not trusted
        ("r2", "verified", 200, 0),
        ("r1", "verified", 200, 1),
        ("r0", "verified", 200, 0),
    ]
    assert [r["payload"] for r in records[1:]] == [json.loads(b) for b in reversed(bodies)]
    shown = json.loads(ok(atwh("inbox", "show", "r1", "--db", str(db), "--json")))
    assert shown["body"] == bodies[1].decode()
    f = facts(ok(atwh("inbox", "show", "r1", "--db", str(db), "--secret", SECRET)))
    assert f["Signature"] == "matches the body scheme"


def test_json_export_of_a_payload_with_a_huge_integer(atwh, tmp_path):
    """orjson stops at 64-bit integers; a received payload can hold any JSON number."""
    from atwh.receiver.inbox import Inbox, NewRequest

    db = tmp_path / "big.sqlite3"
    body = (
        b'{"event": {"id": "big", "name": "ticket.created", "n": 123456789012345678901234567890}}'
    )
    with Inbox(db) as inbox:
        inbox.add_many(
            [
                NewRequest(
                    time.time(),
                    "POST",
                    "/webhook",
                    [],
                    body,
                    "verified",
                    None,
                    "big",
                    "ticket.created",
                    200,
                    '{"message": "success"}',
                )
            ]
        )
    for fmt in ("json", "ndjson"):
        result = atwh("inbox", "--db", str(db), "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "123456789012345678901234567890" in result.stdout


# -- ids by a prefix, empty results ------------------------------------------------------------


def test_show_takes_a_unique_prefix_of_an_event_id(atwh, tmp_path):
    db = tmp_path / "prefix.sqlite3"
    with Inbox(db) as inbox:
        inbox.add_many(
            [
                NewRequest(
                    received_at=NOW - 60,
                    method="POST",
                    path="/webhook",
                    headers=[],
                    body=f'{{"event": {{"id": "{eid}", "name": "ticket.created"}}}}'.encode(),
                    verdict="test",
                    reason=None,
                    event_id=eid,
                    event_name="ticket.created",
                    answer_code=200,
                    answer_body="{}",
                    forward=False,
                )
                for eid in ("3f2a1c-aaaa", "3f2a9e-bbbb", "77-cccc")
            ]
        )
    shown = json.loads(ok(atwh("inbox", "show", "3f2a1", "--db", str(db), "--json")))
    assert shown["eventId"] == "3f2a1c-aaaa"
    line = one_error_line(atwh("inbox", "show", "3f2a", "--db", str(db)), 2)
    assert line.startswith("Error: ID '3f2a' is ambiguous: 2 event ids start with it")
    assert "3f2a1c-aaaa" in line and "3f2a9e-bbbb" in line


def test_an_empty_inbox_says_so_on_stderr(atwh, tmp_path):
    db = tmp_path / "empty.sqlite3"
    Inbox(db).close()
    result = atwh("inbox", "--db", str(db))
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == (
        f"The inbox {db} is empty: nothing received yet (start 'atwh serve')\n"
    )


def test_an_inbox_filtered_to_nothing_says_why(atwh, db):
    result = atwh("inbox", "--db", str(db), "--event", "ticket", "--format", "table")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith("No requests match --event 'ticket' (names are matched whole")


def test_inbox_show_piped_has_no_padding_and_no_box_to_160_columns(atwh, db):
    result = atwh("inbox", "show", "2", "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert max(map(len, lines)) < 160


def test_an_empty_db_is_a_usage_error_not_the_default_inbox(atwh):
    for args in (["inbox", "--db", ""], ["inbox", "show", "1", "--db", " "]):
        result = atwh(*args)
        assert result.exit_code == 2, result.output
        assert "--db is empty" in result.stderr


@pytest.mark.parametrize("key", ["¹", "٣", "²³"])
def test_an_id_of_digits_that_are_not_ascii_is_not_found_not_a_traceback(atwh, db, key):
    """str.isdigit() is true for '¹' and '٣', which int() refuses: `inbox show ¹` ended in
    a ValueError traceback."""
    line = one_error_line(atwh("inbox", "show", key, "--db", str(db)), 4)
    assert key in line
