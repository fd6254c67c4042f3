"""`atwh check URL`: run against endpoints on loopback: `atwh serve`, a faithful Python
imitation of the vendor's Koa example, and small endpoints each with one usual mistake."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from atwh.endpoint import check
from atwh.endpoint.check import CHECKS, RULES, CheckOptions
from atwh.receiver import ReceiverSettings, create_app
from atwh.server import BackgroundServer
from tests.conftest import free_port, hmac_hex, request_body

SECRET = "check-secret"


# -- the endpoints -------------------------------------------------------------------------


async def _answer(send: Any, code: int, doc: Any, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    if code in (204, 304):  # no body, by HTTP's rules
        body = b""
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class App:
    """A small ASGI endpoint: reads each request whole, counts it, and hands it to `handle`
    with its headers (lower-case names)."""

    def __init__(self) -> None:
        self.hits = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        self.hits += 1
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        await self.handle(scope, headers, body, send)

    async def handle(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Any
    ) -> None:
        raise NotImplementedError


class Vendor(App):
    """The vendor's example receiver (build-a-webhook-endpoint.md), line by line: Koa with
    koa-router (POST /webhook) and koa-bodyparser. It never checks the signature: without
    the header it is a test (200), else `body.event.name` picks the handler, 400 for any
    other name; a missing `event` (a TypeError in Node) is Koa's 500."""

    async def handle(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Any
    ) -> None:
        if scope["path"] != "/webhook":
            return await _answer(send, 404, b"Not Found", [])
        if scope["method"] != "POST":
            return await _answer(send, 405, b"Method Not Allowed", [(b"allow", b"POST")])
        try:  # koa-bodyparser: JSON bodies parsed, an unparseable one is 400
            parsed = json.loads(body) if body.strip() else {}
        except ValueError:
            return await _answer(send, 400, b"invalid JSON", [])
        if "x-allthings-signature" not in headers:
            return await _answer(send, 200, {"message": "Received test event."}, [])
        try:
            name = parsed["event"]["name"]
            if name == "ticket.created":
                _ = parsed["event"]["data"]
            elif name == "ticket.updated":
                _ = parsed["event"]["data"]["delta"] if "data" in parsed["event"] else None
            else:
                return await _answer(send, 400, {"message": "Unexpected event type"}, [])
        except (KeyError, TypeError):
            return await _answer(send, 500, b"Internal Server Error", [])
        return await _answer(send, 200, {"message": "success"}, [])


def _js_number(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() else number


@dataclass
class Mistakes:
    """An endpoint that does everything right, but for the mistakes switched on."""

    secret: str = SECRET
    ping_code: int = 200  # what an unsigned request without an event gets
    unsigned_code: int = 401  # what an unsigned event gets
    verify: bool = True
    reserialise: bool = False  # verify JSON.stringify(JSON.parse(body)), not the body
    check_timestamp: bool = True
    future_skew: float = 30.0
    duplicate_code: int = 200  # what an event id seen before gets
    needs_created: bool = False  # an update of an unknown entity gets 422
    unknown_code: int = 200
    redirect_to: str | None = None
    slow_for: str | None = None  # an event name answered after `delay` (*: every event,
    # forgery: every bad signature)
    delay: float = 0.0
    fail_every: int = 0  # every nth request is answered fail_code (a flaky database)
    fail_on: tuple[str, ...] = ()  # so are the events whose id ends -<one of these>
    fail_code: int = 500
    seen: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)


class Endpoint(App):
    """One server for every test: each sets the mistakes it wants (`with_mistakes`)."""

    def __init__(self) -> None:
        super().__init__()
        self.m = Mistakes()

    async def handle(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Any
    ) -> None:
        m = self.m
        if m.redirect_to:
            return await _answer(send, 308, b"", [(b"location", m.redirect_to.encode())])
        doc = json.loads(body)
        event = doc.get("event") if isinstance(doc, dict) else None
        event_id = str(event.get("id")) if isinstance(event, dict) else ""
        if (m.fail_every and self.hits % m.fail_every == 0) or any(
            event_id.endswith(f"-{label}") for label in m.fail_on
        ):
            return await _answer(send, m.fail_code, {"message": "db error"}, [])
        if m.slow_for and isinstance(event, dict) and m.slow_for in (event.get("name"), "*"):
            await asyncio.sleep(m.delay)
        sig = headers.get("x-allthings-signature")
        if sig is None:
            code = m.unsigned_code if event else m.ping_code
            return await _answer(send, code, {"message": "unsigned"}, [])
        if m.verify:
            signed = body
            if m.reserialise:  # what `JSON.stringify(req.body)` gives back (1.0 is 1)
                js = json.loads(body, parse_float=_js_number)
                signed = json.dumps(js, separators=(",", ":"), ensure_ascii=False).encode()
            if not hmac.compare_digest(hmac_hex(signed, m.secret), sig):
                if m.slow_for == "forgery":
                    await asyncio.sleep(m.delay)
                return await _answer(send, 401, {"message": "bad signature"}, [])
        if m.check_timestamp:
            sent = int(headers.get("x-allthings-signature-timestamp", "0")) / 1000
            if not -m.future_skew <= time.time() - sent <= 120:
                return await _answer(send, 401, {"message": "stale"}, [])
        assert isinstance(event, dict)
        if event["name"] not in ("ticket.created", "ticket.updated"):
            return await _answer(send, m.unknown_code, {"message": "ignored"}, [])
        if event["id"] in m.seen:
            return await _answer(send, m.duplicate_code, {"message": "seen"}, [])
        entity = event["data"]["id"]
        if m.needs_created and event["name"] == "ticket.updated" and entity not in m.entities:
            return await _answer(send, 422, {"message": "unknown ticket"}, [])
        m.seen.add(event["id"])
        m.entities.add(entity)
        return await _answer(send, 200, {"message": "success"}, [])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    app = Endpoint()
    with BackgroundServer(app) as srv:
        yield app, srv.url("/webhook")


def with_mistakes(endpoint: tuple[Endpoint, str], **mistakes: Any) -> str:
    app, url = endpoint
    app.m = replace(Mistakes(), **mistakes)
    app.hits = 0
    return url


def verdicts(report: check.Report) -> dict[str, str]:
    return {c.id: c.verdict for c in report.checks}


def run(url: str, **options: Any) -> check.Report:
    return check.run(CheckOptions(url, options.pop("secret", SECRET), **options))


ALL_PASS = dict.fromkeys(CHECKS, "pass")


# -- serve and the vendor's example ----------------------------------------------------------


def test_atwh_serve_with_a_secret_passes_every_check(tmp_path, atwh):
    settings = ReceiverSettings(db=tmp_path / "inbox.sqlite3", secret=SECRET, accept_any_event=True)
    with BackgroundServer(create_app(settings)) as srv:
        url = srv.url("/webhook")
        result = atwh("check", url, "--secret", SECRET, "--inbox", str(settings.db), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {c["id"]: c["verdict"] for c in report["checks"]} == ALL_PASS
    duplicate = next(c for c in report["checks"] if c["id"] == "duplicate")
    assert duplicate["codes"] == [200, 200]
    assert "the inbox stored it once (1 later delivery counted)" in duplicate["detail"]
    # every event sent is marked as a test
    from atwh.receiver.inbox import Inbox

    with Inbox(settings.db, create=False) as inbox:
        stored = [r for r in inbox.records() if r.event_id]
    assert stored and all(r.event_id.startswith("atwh-check-") for r in stored)
    for r in stored:
        data = json.loads(r.body)["event"]["data"]
        assert data["test"] is True and "atwh check" in data["note"]


def test_the_vendors_example_accepts_forgeries_and_stale_events(endpoint):
    app = Vendor()
    with BackgroundServer(app) as srv:
        report = run(srv.url("/webhook"))
    assert verdicts(report) == {
        **ALL_PASS,
        "wrong-secret": "fail",
        "tampered": "fail",
        "unsigned": "warn",
        "stale": "fail",
        "unknown-event": "warn",
    }
    assert report.failed
    by_id = {c.id: c for c in report.checks}
    assert by_id["wrong-secret"].codes == [200]
    assert by_id["wrong-secret"].detail.startswith("accepts forgeries: 200")
    assert by_id["unknown-event"].codes == [400]
    assert "Unexpected event type" in by_id["unknown-event"].detail
    assert by_id["ping"].codes == [200] and by_id["signed"].codes == [200, 200]
    assert by_id["raw-body"].codes == [200] * 5


# -- one mistake at a time -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mistakes", "expected"),
    [
        ({}, {}),
        ({"ping_code": 204}, {"ping": "fail"}),
        ({"ping_code": 401, "unsigned_code": 200}, {"ping": "fail", "unsigned": "warn"}),
        ({"reserialise": True}, {"raw-body": "fail"}),
        ({"verify": False}, {"wrong-secret": "fail", "tampered": "fail"}),
        ({"check_timestamp": False}, {"stale": "fail"}),
        ({"future_skew": 0.0}, {"skew": "warn"}),
        ({"duplicate_code": 409}, {"duplicate": "fail"}),
        ({"needs_created": True}, {"out-of-order": "warn"}),
        ({"unknown_code": 400}, {"unknown-event": "warn"}),
    ],
)
def test_each_mistake_gets_its_verdict(endpoint, mistakes, expected):
    report = run(with_mistakes(endpoint, **mistakes))
    assert verdicts(report) == {**ALL_PASS, **expected}
    assert report.failed == ("fail" in expected.values())
    for c in report.checks:
        assert (c.fix is None) == (c.verdict == "pass")


def test_raw_body_names_the_variants_that_failed(endpoint):
    report = run(with_mistakes(endpoint, reserialise=True))
    raw = next(c for c in report.checks if c.id == "raw-body")
    assert raw.codes == [401] * 5  # none of them is JSON.stringify's own spelling
    assert raw.detail.startswith(
        "the endpoint verifies re-serialised JSON: pretty, \\u-escaped, trailing newline, "
        "1.0, \\/: 401"
    )
    assert [x.label for x in raw.exchanges] == list(check.VARIANTS)


def test_a_wrong_secret_fails_signed_and_says_so(endpoint):
    report = run(with_mistakes(endpoint, secret="another"))
    signed = next(c for c in report.checks if c.id == "signed")
    assert signed.verdict == "fail" and signed.codes == [401, 401]
    assert "(is the secret the webhook's? is the HMAC over the raw body alone" in signed.detail
    stale = next(c for c in report.checks if c.id == "stale")
    assert "no signed event was accepted" in stale.detail


def test_a_redirect_fails_and_is_never_followed(endpoint):
    target = Vendor()
    with BackgroundServer(target) as elsewhere:
        url = with_mistakes(endpoint, redirect_to=elsewhere.url("/webhook"))
        report = run(url)
    assert target.hits == 0
    v = verdicts(report)
    assert v["redirect"] == "fail" and v["ping"] == "fail" and v["signed"] == "fail"
    redirect = next(c for c in report.checks if c.id == "redirect")
    assert set(redirect.codes) == {308} and len(redirect.codes) == report.requests
    assert "redirect to http://127.0.0.1" in redirect.detail


def test_an_answer_past_the_timeout_fails_latency_and_one_past_slow_warns(endpoint):
    # the other answers must come within the timeout even on a loaded machine: 0.8 s
    url = with_mistakes(endpoint, slow_for="atwh-check.unknown-event", delay=1.5)
    report = run(url, timeout=0.8)
    v = verdicts(report)
    # no answer to a genuine event: a failure of the endpoint, not "refuses an unknown name"
    assert v["latency"] == "fail" and v["unknown-event"] == "fail"
    unknown = next(c for c in report.checks if c.id == "unknown-event")
    assert unknown.detail.startswith("got no answer, not a sign that it refuses an unknown")
    latency = next(c for c in report.checks if c.id == "latency")
    assert latency.codes == [None] and "(unknown-event)" in latency.detail
    url = with_mistakes(endpoint, slow_for="atwh-check.unknown-event", delay=0.1)
    report = run(url, timeout=5, slow=0.05)
    assert verdicts(report) == {**ALL_PASS, "latency": "warn"}


def test_no_answer_to_a_forgery_is_not_a_refusal_and_fails_latency(endpoint):
    """No answer acknowledges nothing, but it is not a refusal either: the check could not
    tell whether the endpoint refuses forgeries, so it does not pass."""
    url = with_mistakes(endpoint, slow_for="forgery", delay=1.5)
    report = run(url, timeout=0.8)
    expected = {"wrong-secret": "fail", "tampered": "fail", "latency": "fail"}
    assert verdicts(report) == {**ALL_PASS, **expected}
    by_id = {c.id: c for c in report.checks}
    assert by_id["wrong-secret"].codes == [None] and by_id["tampered"].codes == [None]
    assert by_id["wrong-secret"].detail.startswith(
        "got no answer, so the check cannot tell whether it refuses forgeries: "
        "no answer (no answer within 0.8s)"
    )
    assert "accepts forgeries" not in by_id["wrong-secret"].detail
    assert by_id["latency"].codes == [None, None]
    assert "(wrong-secret, tampered)" in by_id["latency"].detail


def test_no_more_is_sent_after_three_requests_without_an_answer(endpoint):
    url = with_mistakes(endpoint, slow_for="*", delay=0.3)
    report = run(url, timeout=0.1)
    app, _ = endpoint
    assert report.requests == app.hits == 1 + 3  # the ping answered, then 3 in silence
    v = verdicts(report)
    assert v["signed"] == "fail" and v["latency"] == "fail"
    # raw-body's first got no answer; what was never sent is not run: no pass, no fail
    assert v["raw-body"] == "fail"
    assert {c: v[c] for c in CHECKS[3:-1]} == dict.fromkeys(CHECKS[3:-1], "skip")
    duplicate = next(c for c in report.checks if c.id == "duplicate")
    assert duplicate.codes == [None, None] and duplicate.fix is None
    assert "not sent (3 requests had got no answer)" in duplicate.detail
    assert report.stopped == "3 requests had got no answer"
    assert "9 not run; stopped sending: 3 requests had got no answer;" in report.summary()


def test_no_more_is_sent_past_the_runs_budget(endpoint):
    url = with_mistakes(endpoint, slow_for="*", delay=0.1)
    report = run(url, budget=0.15)
    assert report.requests < 18
    unknown = next(c for c in report.checks if c.id == "unknown-event")
    assert unknown.verdict == "skip" and unknown.codes == [None]
    assert "not sent (the run had taken over 0.15 s)" in unknown.detail
    # every answer was right: no failure, but what was not run is no pass either
    assert report.count("fail") == 0 and report.count("pass") < 13
    assert report.exit_status == 1
    assert "stopped sending: the run had taken over 0.15 s" in report.summary()


# -- the endpoint's own trouble: 5xx, 429 -----------------------------------------------------


def test_a_flaky_endpoints_5xx_is_never_a_refusal_nor_the_checks_cause(endpoint):
    """Every third request gets 500 (a flaky database), otherwise all is right: the 500s
    are not refusals of a forgery or a stale timestamp, and not re-serialised JSON."""
    report = run(with_mistakes(endpoint, fail_every=3))
    by_id = {c.id: c for c in report.checks}
    # requests 3, 6, 9, ...: signed's second, raw-body's third, wrong-secret, stale, the
    # duplicate's second, unknown-event
    assert by_id["wrong-secret"].codes == [500] and by_id["stale"].codes == [500]
    assert verdicts(report) == {
        **ALL_PASS,
        **dict.fromkeys(["signed", "raw-body", "wrong-secret", "stale"], "fail"),
        **dict.fromkeys(["duplicate", "unknown-event"], "fail"),
    }
    assert by_id["signed"].detail.startswith(
        "answered 500: the endpoint failed, not a signature problem: ticket.updated: 500"
    )
    raw = by_id["raw-body"]
    assert raw.codes == [200, 200, 500, 200, 200]
    assert raw.detail.startswith(
        "answered 500: the endpoint failed, not a sign that it verifies re-serialised JSON: "
        "trailing newline: 500"
    )
    assert by_id["wrong-secret"].detail.startswith(
        "answered 500: the endpoint failed, so the check cannot tell whether it refuses "
        "forgeries: 500"
    )
    assert by_id["stale"].why == (
        "answered 500: the endpoint failed, so the check cannot tell whether it checks the "
        "timestamp"
    )
    for c in report.checks:
        if c.verdict != "pass":
            assert RULES[c.id].why not in c.detail  # not the check's own cause
            assert c.fix == check.FIX_5XX
    assert report.notes == [
        "intermittent 5xx: 6 of 18 answers were 5xx, and the same request got both "
        "(ticket.created signed right got 2xx 6x, 5xx 1x): the endpoint fails now and then "
        "(a flaky dependency?); run check again once it is fixed"
    ]
    assert report.summary().endswith(report.notes[0])


@pytest.mark.parametrize(
    ("mistakes", "expected", "why"),
    [
        # a must-refuse check that gets a 5xx could not tell: its own otherwise verdict
        ({"fail_on": ("unsigned",)}, "warn", "answered 500: the endpoint failed, so the check"),
        ({"fail_on": ("tampered",), "fail_code": 503}, "fail", "answered 503: the endpoint"),
        # a must-accept check: a 5xx or a 429 to a genuine event is a failure, whatever the
        # check's otherwise verdict
        ({"fail_on": ("skew",)}, "fail", "answered 500: the endpoint failed, not a sign that"),
        ({"fail_on": ("out-of-order-1",)}, "fail", "answered 500: the endpoint failed"),
        ({"fail_on": ("skew",), "fail_code": 429}, "fail", "answered 429: the endpoint is rate"),
        ({"fail_on": ("stale",), "fail_code": 429}, "fail", "answered 429: the endpoint is rate"),
    ],
)
def test_the_endpoints_own_trouble_is_said_as_such(endpoint, mistakes, expected, why):
    report = run(with_mistakes(endpoint, **mistakes))
    label = mistakes["fail_on"][0]
    failed = "out-of-order" if label.startswith("out-of-order") else label
    assert verdicts(report) == {**ALL_PASS, failed: expected}
    result = next(c for c in report.checks if c.id == failed)
    assert result.why is not None and result.why.startswith(why)
    assert RULES[failed].why not in result.detail
    assert report.notes == []  # that kind of request failed every time: not "intermittent"


def test_a_5xx_beside_the_telltale_answer_is_said_too(endpoint):
    """An endpoint that verifies re-serialised JSON, and failed once: the 401s are the
    cause, the 500 is said apart."""
    report = run(with_mistakes(endpoint, reserialise=True, fail_on=("raw-body-2",)))
    raw = next(c for c in report.checks if c.id == "raw-body")
    assert raw.verdict == "fail" and raw.codes == [401, 500, 401, 401, 401]
    assert raw.detail.startswith(
        "the endpoint verifies re-serialised JSON: pretty, trailing newline, 1.0, \\/: 401"
    )
    assert '; also answered 500: the endpoint failed: \\u-escaped: 500 {"message": "db error"}' in (
        raw.detail
    )
    assert raw.fix == RULES["raw-body"].fix


# -- checks not run ----------------------------------------------------------------------------


def test_checks_not_run_say_so_in_the_table_tsv_and_json(endpoint, atwh):
    """Every answer too late: after 3 requests without one nothing more is sent, and the
    checks whose requests never went out are `skip` (`not run` on a terminal): never a
    pass or a fail, with no fix and no cause."""
    from rich.console import Console

    from atwh.output.check import report_table

    url = with_mistakes(endpoint, slow_for="*", delay=0.5)
    not_run = [c for c in CHECKS if c not in ("ping", "signed", "raw-body", "latency")]
    report = run(url, timeout=0.2)
    ran = {"ping": "pass", "signed": "fail", "raw-body": "fail", "latency": "fail"}
    assert verdicts(report) == {**dict.fromkeys(not_run, "skip"), **ran}
    for width in (80, 200):
        console = Console(width=width, record=True, no_color=True)
        console.print(report_table(report))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        for c in not_run:
            assert re.search(rf"^{re.escape(c)} +not run ", text, re.M), (c, text)
        assert "accepts forgeries" not in text and "the timestamp is never checked" not in text
        assert "wrong-secret   FAIL" not in text and "redirect       pass" not in text
        assert "not sent (3 requests had got no answer)" in text
        flat = " ".join(text.split())
        assert (
            "0 failed" not in flat and "9 not run; stopped sending: 3 requests had got no" in flat
        )
        assert ("To send: ticket.created signed with another secret" in flat) == (width == 80)

    result = atwh("check", url, "--secret", SECRET, "--timeout", "0.2")
    assert result.exit_code == 1, result.output
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()[1:]}
    for c in not_run:
        assert rows[c][1] == "skip" and rows[c][6] == "", rows[c]
    assert "not sent (3 requests had got no answer)" in rows["wrong-secret"][5]
    assert "stopped sending: 3 requests had got no answer" in result.stderr

    result = atwh("check", url, "--secret", SECRET, "--timeout", "0.2", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert {c["id"]: c["verdict"] for c in doc["checks"] if c["id"] in not_run} == dict.fromkeys(
        not_run, "skip"
    )
    assert all(c["fix"] is None for c in doc["checks"] if c["verdict"] == "skip")
    summary = doc["summary"]
    assert summary["skip"] == len(not_run) and summary["stopped"] == "3 requests had got no answer"
    assert summary["exitCode"] == 1


# -- the command ---------------------------------------------------------------------------


def test_json_has_every_check_in_the_issues_shape(endpoint, atwh):
    url = with_mistakes(endpoint, verify=False)
    result = atwh("check", url, "--secret", SECRET, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["url"] == url
    assert [c["id"] for c in report["checks"]] == list(CHECKS)
    for c in report["checks"]:
        assert {"id", "verdict", "codes", "detail"} <= set(c)
        assert c["verdict"] in ("pass", "warn", "fail", "skip")
        assert all(code is None or isinstance(code, int) for code in c["codes"])
    summary = report["summary"]
    assert (summary["pass"], summary["warn"], summary["fail"]) == (11, 0, 2)
    assert summary["exitCode"] == 1 and summary["requests"] == 18
    ids = [r["eventId"] for c in report["checks"] for r in c["requests"] if r["eventId"]]
    assert len(ids) == 17 and all(i.startswith("atwh-check-") for i in ids)
    assert len(set(ids)) == 16  # the duplicate's twice


def test_piped_it_is_tsv_and_the_summary_goes_to_stderr(endpoint, atwh):
    url = with_mistakes(endpoint, unknown_code=400)
    result = atwh("check", url, "--secret", SECRET)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "id\tverdict\tcodes\tms\tsent\tdetail\tfix"
    assert [line.split("\t")[0] for line in lines[1:]] == list(CHECKS)
    unknown = lines[1 + CHECKS.index("unknown-event")].split("\t")
    assert unknown[1:3] == ["warn", "400"]
    assert unknown[6].startswith("answer 2xx to an event name")
    assert "12 passed, 1 warning, 0 failed; 18 requests in" in result.stderr


def test_strict_makes_a_warning_fail(endpoint, atwh):
    url = with_mistakes(endpoint, unknown_code=400)
    result = atwh("check", url, "--secret", SECRET, "--strict", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)["summary"]
    assert (summary["warn"], summary["fail"], summary["strict"]) == (1, 0, True)


def test_events_given_are_the_ones_signed(endpoint, atwh):
    url = with_mistakes(endpoint)
    result = atwh(
        "check", url, "--secret", SECRET, "-e", "booking.accepted", "-e", "ticket.created", "--json"
    )
    report = json.loads(result.stdout)
    signed = report["checks"][CHECKS.index("signed")]
    assert [r["sent"] for r in signed["requests"]] == ["booking.accepted", "ticket.created"]
    # booking.accepted is answered 200 (an unknown name ignored): the other checks send it
    wrong = report["checks"][CHECKS.index("wrong-secret")]
    assert [r["sent"] for r in wrong["requests"]] == ["booking.accepted"]
    # no ticket.updated to go with ticket.created: the probe twice, the newer first
    order = report["checks"][CHECKS.index("out-of-order")]
    assert order["sent"] == "booking.accepted for one entity, the newer first"
    assert result.exit_code == 0, result.output


class Sleepy(App):
    """Takes every connection, answers every request too late."""

    async def handle(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Any
    ) -> None:
        await asyncio.sleep(0.5)
        await _answer(send, 200, {"message": "success"}, [])


def test_an_endpoint_too_slow_for_every_answer_is_graded_not_exit_6(atwh):
    """It is there (it takes the connections), only slower than --timeout: latency fails,
    exit 1 with the report; exit 6 is for nothing there at all."""
    with BackgroundServer(Sleepy()) as srv:
        result = atwh(
            "check", srv.url("/webhook"), "--secret", SECRET, "--timeout", "0.1", "--json"
        )
    assert result.exit_code == 1, result.output
    by_id = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert by_id["latency"]["verdict"] == "fail" and by_id["ping"]["verdict"] == "fail"
    assert by_id["ping"]["codes"] == [None] and "past 0.1 s" in by_id["latency"]["detail"]


def test_nothing_answering_is_exit_6_in_one_line(atwh):
    url = f"http://127.0.0.1:{free_port()}/webhook"
    result = atwh("check", url, "--secret", SECRET)
    assert result.exit_code == 6
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: nothing answered at {url}: no answer (cannot connect")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:9/webhook"], "no secret: give the webhook's --secret"),
        (["ftp://127.0.0.1/x", "--secret", "s"], "is not an http(s) URL"),
        (["--secret", "s"], "give the URL to check, or --webhook"),
        (["http://127.0.0.1:9/", "--secret", "s", "-e", "Bad Name"], "is not an event name"),
        (["http://127.0.0.1:9/", "--secret", " "], "--secret is empty"),
        (["http://127.0.0.1:9/", "--secret", "s", "--timeout", "0"], "--timeout '0' is below 0.1s"),
        (["http://127.0.0.1:9/", "--secret", "s", "--inbox", "/nonexistent/db"], "no inbox at"),
    ],
)
def test_usage_errors_are_exit_2(atwh, args, message):
    result = atwh("check", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_a_url_not_on_this_machine_needs_yes_and_nothing_is_sent(atwh, monkeypatch):
    sent = []
    monkeypatch.setattr(check.Sender, "post", lambda *a, **k: sent.append(a))
    result = atwh("check", "https://hooks.example.com/webhook", "--secret", "s")
    assert result.exit_code == 2
    assert "is not on this machine: give --yes" in result.stderr
    assert sent == []


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/x", True),
        ("http://127.3.2.1/x", True),
        ("http://[::1]:8000/x", True),
        ("http://localhost/x", True),
        ("http://app.localhost/x", True),
        ("https://example.com/x", False),
        ("http://10.0.0.1/x", False),
        ("http://localhost.example.com/x", False),
    ],
)
def test_what_is_on_this_machine(url, local):
    assert check.on_this_machine(url) is local


def test_webhook_takes_url_secret_and_events_from_the_api(tmp_path, atwh):
    """Against the emulator: a webhook registered for serve's URL; `check --webhook` reads
    its URL, secret and events, as `serve --webhook` reads the secret."""
    from tests.emulator.test_emulator import emulator, receiver

    with emulator() as emu, receiver(tmp_path, accept_any_event=True) as rcv:
        created = atwh(
            "webhooks", "create", "--url", rcv.url, "-e", "ticket.updated", "--app", "a1",
            "--api-url", emu.url,
        )  # fmt: skip
        assert created.exit_code == 0, created.stderr
        (hook_id,) = emu.app.state.webhooks
        rcv.settings.secret = emu.app.state.webhooks[hook_id].secret  # serve --webhook
        result = atwh("check", "--webhook", hook_id, "--api-url", emu.url, "--json")
        both = atwh("check", "--webhook", hook_id, "--secret", "x", "--api-url", emu.url)
        url = rcv.url
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["url"] == url
    assert {c["id"]: c["verdict"] for c in report["checks"]} == ALL_PASS
    signed = report["checks"][CHECKS.index("signed")]
    assert [r["sent"] for r in signed["requests"]] == ["ticket.updated"]
    assert both.exit_code == 2 and "not both" in both.stderr


def test_the_table_fits_the_terminal_with_the_fix_of_each_failure(endpoint):
    from rich.console import Console

    from atwh.output.check import report_table

    report = run(with_mistakes(endpoint, verify=False, unknown_code=400))
    for width in (80, 200):
        console = Console(width=width, record=True, no_color=True)
        console.print(report_table(report))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "accepts forgeries" in text and "wrong-secret   FAIL" in text
        assert "unknown-event  WARN" in text
        assert "10 passed, 1 warning, 2 failed; 18 requests in" in text
        fix = " ".join(text.split())  # wrapped at 80 columns
        assert "and answer 401 when it does not match" in fix
        assert ("Sent  " in text.splitlines()[1]) == (width == 200)  # the column
        assert ("Fix: verify" in text) == (width == 80)
        # what was sent, in a column or, narrow, under a warning's or a failure's answer
        assert "ticket.created signed with another secret" in fix
        assert ("Sent: ticket.created signed with another secret" in fix) == (width == 80)


@pytest.mark.parametrize("answer", [True, False])
def test_on_a_terminal_a_url_elsewhere_is_asked_about(monkeypatch, answer):
    import io
    import sys

    from atwh.cli import check as command
    from atwh.errors import UsageError

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setattr(command.typer, "confirm", lambda text, **kw: asked.append(text) or answer)
    if answer:
        command._confirm("https://hooks.example.com/webhook")
    else:
        with pytest.raises(UsageError, match="nothing sent"):
            command._confirm("https://hooks.example.com/webhook")
    assert asked == ["Send test events to https://hooks.example.com/webhook? It may act on them"]


def test_an_event_name_not_in_the_catalogue_is_said_with_the_nearest(atwh):
    with socket.socket() as s:  # a port where nothing listens: nothing answers, exit 6
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = atwh("check", f"http://127.0.0.1:{closed}/x", "--secret", "s", "-e", "ticket.creatd")
    assert result.exit_code == 6, result.output
    assert (
        "Warning: --event 'ticket.creatd' is not a known event name "
        "(did you mean ticket.created?); it is sent as given"
    ) in result.stderr
    assert "Traceback" not in result.output
