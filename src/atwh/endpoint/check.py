"""`atwh check`: grade a webhook endpoint before Allthings sends it real events.

A short scripted series of requests, one at a time, each bounded by the timeout, and a
verdict for each behaviour (CHECKS, in the order of the report). The rules come from the
vendor's pages (docs/check.md names them): a 2xx acknowledges, anything else (3xx
included) is retried for 7 days; the signature is the HMAC-SHA256 of the raw body; the
timestamp is within 2 minutes; Allthings checks a webhook's URL with an unsigned request
that must get 200; events arrive more than once and in any order.

Every event id starts with `atwh-check-`, and every event's data says it is a test.
`run` returns a `Report` (data); output/check.py shows it.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atwh import samples, signature
from atwh.core.transport import on_this_machine
from atwh.endpoint.send import Answer, Sender
from atwh.errors import ExitStatus, NetworkError, printable

if TYPE_CHECKING:
    from atwh.receiver.inbox import Inbox

PASS, WARN, FAIL = "pass", "warn", "fail"
SKIP = "skip"  # not run: its requests were never sent (the run had stopped)
VERDICTS = (PASS, WARN, FAIL, SKIP)
DEFAULT_EVENTS = ("ticket.created", "ticket.updated")
ID_PREFIX = "atwh-check-"
UNKNOWN_EVENT = "atwh-check.unknown-event"  # a valid EventName no endpoint subscribes to
STALE_SECONDS = 600  # the `stale` signature's age: past the vendor's 2 minutes (and 5)
SKEW_SECONDS = 30  # the `skew` signature's time ahead of this machine's clock
SLOW = 1.0  # seconds: an answer slower than this is a warning
MAX_SILENT = 3  # requests without an answer, after which no more are sent
MIN_BUDGET = 60.0  # seconds after which no more are sent (4 timeouts, if that is longer)
TEST_NOTE = "A test event sent by atwh check: not a real ticket; do not act on it."
# The raw-body variants: the event written as other JSON writers write it. Each is valid
# JSON that JSON.stringify (or json.dumps) of the parsed body does not give back.
VARIANTS = ("pretty", "\\u-escaped", "trailing newline", "1.0", "\\/")


@dataclass(frozen=True, slots=True)
class Rule:
    """What a check wants, and what it says when it does not get it."""

    otherwise: str  # the verdict when it does not pass: warn or fail
    why: str  # what that means, in a few words
    fix: str  # what to change, in one line
    # after "answered 500: the endpoint failed, ": what such an answer does not show
    untold: str = ""


RULES: dict[str, Rule] = {
    "ping": Rule(
        FAIL,
        "Allthings refuses to register the webhook",
        "answer exactly 200 to a POST without x-allthings-signature: Allthings sends one "
        "when the webhook is saved",
        untold="and Allthings refuses to register the webhook",
    ),
    "signed": Rule(
        FAIL,
        "a genuine event is not acknowledged, and is retried for 7 days",
        "answer 2xx to every event whose signature verifies (check the secret, the path "
        "and the event names)",
        untold="not a signature problem",
    ),
    "raw-body": Rule(
        FAIL,
        "the endpoint verifies re-serialised JSON",
        "compute the HMAC over the raw body bytes, before any JSON parser touches them",
        untold="not a sign that it verifies re-serialised JSON",
    ),
    "wrong-secret": Rule(
        FAIL,
        "accepts forgeries",
        "verify x-allthings-signature (HMAC-SHA256 of the raw body with the webhook's "
        "secret) and answer 401 when it does not match",
        untold="so the check cannot tell whether it refuses forgeries",
    ),
    "tampered": Rule(
        FAIL,
        "accepts a body changed after it was signed",
        "compare the HMAC of the body as received with x-allthings-signature, in constant "
        "time, before using the body",
        untold="so the check cannot tell whether it refuses a changed body",
    ),
    "unsigned": Rule(
        WARN,
        "the vendor's example answers 200 to any unsigned request as a test; make sure it "
        "is not processed",
        "treat an unsigned request as the registration test only: never process it, or "
        "answer 401 when it carries an event",
        untold="so the check cannot tell whether it refuses an unsigned event",
    ),
    "stale": Rule(
        FAIL,
        "the timestamp is never checked",
        "refuse a request whose x-allthings-signature-timestamp (ms) is more than 2 minutes old",
        untold="so the check cannot tell whether it checks the timestamp",
    ),
    "skew": Rule(
        WARN,
        "a sender's clock a little ahead is refused",
        "allow about 30 s of clock skew into the future when checking the timestamp",
        untold="not a sign that it refuses a clock a little ahead",
    ),
    "duplicate": Rule(
        FAIL,
        "a retry of a delivered event fails, and is retried for 7 days",
        "answer 2xx to an event id already received, without processing it again",
        untold="not by itself a sign that it refuses a retry",
    ),
    "out-of-order": Rule(
        WARN,
        "events arrive in no guaranteed order, and one was refused",
        "accept an event about an entity not seen yet (keep it, or fetch the entity)",
        untold="not a sign that it needs events in order",
    ),
    "unknown-event": Rule(
        WARN,
        "any non-2xx is retried for 7 days",
        "answer 2xx to an event name you do not handle, and ignore it",
        untold="not a sign that it refuses an unknown event name",
    ),
    "redirect": Rule(
        FAIL,
        "a 3xx counts as a failure; it is never followed",
        "register the final URL (scheme, host, path and trailing slash as the server "
        "wants them), and answer there",
    ),
    "latency": Rule(
        FAIL,
        "an answer past the timeout counts as a failure",
        "answer 2xx at once, and do the slow work after (a queue, a background task)",
    ),
}
CHECKS = tuple(RULES)  # the ids, in the order of the report


@dataclass(slots=True)
class Exchange:
    """One request and what came back."""

    label: str  # what this request was, in a few words
    event_id: str | None
    answer: Answer | None  # None: not sent (the run had stopped)
    not_sent: str | None = None  # why not
    good: bool | None = None  # what its check wanted, once graded
    name: str | None = None  # the event's name (None: the registration test request)

    @property
    def outcome(self) -> str:
        """`2xx`, `4xx` (a refusal: 429 is not one), `error` (5xx, 429, no answer, 1xx:
        the endpoint's own trouble), `3xx`, or `not sent`."""
        if self.answer is None:
            return "not sent"
        code = self.answer.code
        if code is None or code == 429 or code >= 500 or code < 200:
            return "error"
        return f"{code // 100}xx"

    @property
    def code(self) -> int | None:
        return None if self.answer is None else self.answer.code

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok

    @property
    def answered_in(self) -> float | None:
        """Seconds to the HTTP answer; None without one."""
        return None if self.answer is None or self.answer.code is None else self.answer.seconds

    def evidence(self, limit: int = 80) -> str:
        """What came back, in one line safe for a terminal."""
        if self.answer is None:
            return f"not sent ({self.not_sent})"
        if self.answer.code is None:
            return f"no answer ({self.answer.text(limit)})"
        text = self.answer.text(limit)
        return f"{self.answer.code} {text}" if text else str(self.answer.code)

    def as_json(self) -> dict[str, Any]:
        a = self.answer
        return {
            "sent": self.label,
            "eventId": self.event_id,
            "code": self.code,
            "ms": None if a is None else round(a.seconds * 1000, 1),
            "answer": None if a is None or a.code is None else a.text(500),
            "error": (self.not_sent and f"not sent: {self.not_sent}")
            if a is None
            else (a.error and printable(a.error, 300)),
        }


@dataclass(slots=True)
class CheckResult:
    id: str
    verdict: str  # pass | warn | fail
    sent: str  # what was sent, in one line
    detail: str  # what came back and what it means, in one line
    exchanges: list[Exchange] = field(default_factory=list)
    codes: list[int | None] = field(default_factory=list)
    note: str | None = None  # worth showing even on a pass (what --inbox says)
    why: str | None = None  # what a warning or a failure means (or why it was not run)
    own_fix: str | None = None  # instead of the rule's fix (the endpoint failed)

    @property
    def fix(self) -> str | None:
        if self.verdict in (PASS, SKIP):
            return None
        return self.own_fix or RULES[self.id].fix

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": self.verdict,
            "codes": self.codes,
            "detail": self.detail,
            "sent": self.sent,
            "fix": self.fix,
            "requests": [x.as_json() for x in self.exchanges],
        }


@dataclass(slots=True)
class Report:
    url: str
    checks: list[CheckResult]
    seconds: float
    requests: int  # requests sent
    strict: bool = False
    stopped: str | None = None  # why the run stopped sending, if it did
    notes: list[str] = field(default_factory=list)  # about the whole run (intermittent 5xx)

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.checks if c.verdict == verdict)

    @property
    def failed(self) -> bool:
        """Any fail, any check not run (not a pass), any warning too when strict: the run
        exits 1."""
        return (
            self.count(FAIL) > 0 or self.count(SKIP) > 0 or (self.strict and self.count(WARN) > 0)
        )

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.FAILED if self.failed else ExitStatus.OK

    def summary(self) -> str:
        passed, warned, failed = self.count(PASS), self.count(WARN), self.count(FAIL)
        parts = [f"{passed} passed", f"{warned} warning{'' if warned == 1 else 's'}"]
        parts.append(f"{failed} failed")
        if skipped := self.count(SKIP):
            parts.append(f"{skipped} not run")
        line = ", ".join(parts)
        if self.strict and warned:
            line += " (--strict: warnings fail)"
        if self.stopped:
            line += f"; stopped sending: {self.stopped}"
        ms = [t for c in self.checks for x in c.exchanges if (t := x.answered_in) is not None]
        timing = f"{self.requests} requests in {self.seconds:.1f} s"
        if ms:
            timing += (
                f", p50 {short_time(percentile(ms, 50))}, p95 {short_time(percentile(ms, 95))}"
            )
        return "; ".join([line, timing, *self.notes])

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "checks": [c.as_json() for c in self.checks],
            "summary": {
                "pass": self.count(PASS),
                "warn": self.count(WARN),
                "fail": self.count(FAIL),
                "skip": self.count(SKIP),
                "requests": self.requests,
                "seconds": round(self.seconds, 3),
                "strict": self.strict,
                "exitCode": int(self.exit_status),
                "stopped": self.stopped,
                "notes": self.notes,
                "text": self.summary(),
            },
        }


@dataclass(slots=True)
class CheckOptions:
    url: str
    secret: str
    events: Sequence[str] = DEFAULT_EVENTS
    timeout: float = samples.ATTEMPT_TIMEOUT
    inbox: Path | None = None  # an `atwh serve` inbox in front of the endpoint
    strict: bool = False
    slow: float = SLOW
    budget: float | None = None  # default: max(MIN_BUDGET, 4 timeouts)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p50 of 1, 2, 3, 4 is 2)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(seconds: Sequence[float]) -> str:
    """`p50 3 ms, p95 9 ms`."""
    return f"p50 {short_time(percentile(seconds, 50))}, p95 {short_time(percentile(seconds, 95))}"


def short_time(seconds: float) -> str:
    """`3 ms`, `950 ms`, `12 s`."""
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


def js_json_variant(doc: dict[str, Any], variant: str) -> bytes:
    """The event document written as another JSON writer writes it (see VARIANTS)."""
    if variant == "pretty":
        return json.dumps(doc, indent=2, ensure_ascii=False).encode()
    if variant == "\\u-escaped":  # non-ASCII as \\uXXXX: Python's and PHP's default
        return json.dumps(doc, separators=(",", ":")).encode()
    if variant == "trailing newline":
        return samples.js_json(doc) + b"\n"
    if variant == "1.0":  # a float written as 1.0 (JSON.stringify writes 1)
        with_float = json.loads(json.dumps(doc))
        with_float["event"]["data"]["rating"] = 1.0
        return samples.js_json(with_float)
    if variant == "\\/":  # every / escaped, as PHP's json_encode does ("/" is only in strings)
        return samples.js_json(doc).replace(b"/", b"\\/")
    raise ValueError(variant)


class _Run:
    """One run: the requests, in order, and the state they share."""

    def __init__(
        self, o: CheckOptions, sender: Sender, progress: Callable[[str], None] | None
    ) -> None:
        self.o = o
        self.sender = sender
        self.progress = progress
        self.tag = uuid.uuid4().hex[:12]
        self.rng = random.Random()
        self.started = time.monotonic()
        self.budget = o.budget if o.budget is not None else max(MIN_BUDGET, 4 * o.timeout)
        self.silent = 0  # requests that got no answer
        self.stopped: str | None = None
        self.sent = 0
        self.exchanges: list[tuple[str, Exchange]] = []  # (check id, exchange), in order

    # -- what is sent ---------------------------------------------------------------------

    def event_id(self, label: str) -> str:
        return f"{ID_PREFIX}{self.tag}-{label}"

    def data(self, name: str, entity: str | None = None) -> dict[str, Any]:
        """Realistic data for `name`, which says it is a test."""
        data = samples.sample_data(name, self.rng)
        if entity is not None:
            data["id"] = entity
        if isinstance(data.get("title"), str):
            data["title"] = f"[atwh check] {data['title']}"
        data["test"] = True
        data["note"] = TEST_NOTE
        return data

    def doc(
        self, name: str, label: str, entity: str | None = None, created: float | None = None
    ) -> dict[str, Any]:
        return samples.event(name, self.data(name, entity), self.event_id(label), created)

    def headers(self, body: bytes, secret: str | None = None, ahead: float = 0.0) -> dict[str, str]:
        now_ms = int((time.time() + ahead) * 1000)
        return signature.headers_for(body, self.o.secret if secret is None else secret, now_ms)

    def post(
        self,
        check: str,
        label: str,
        body: bytes,
        headers: dict[str, str],
        event_id: str | None,
        name: str | None = None,
    ) -> Exchange:
        if self.stopped is None and time.monotonic() - self.started > self.budget:
            self.stopped = f"the run had taken over {self.budget:g} s"
        if self.stopped is not None:
            x = Exchange(label, event_id, None, self.stopped, name=name)
        else:
            if self.progress is not None:
                self.progress(f"{check}: {label}")
            answer = self.sender.post(self.o.url, body, headers)
            self.sent += 1
            if answer.code is None:
                self.silent += 1
                if self.silent >= MAX_SILENT:
                    self.stopped = f"{MAX_SILENT} requests had got no answer"
            x = Exchange(label, event_id, answer, name=name)
        self.exchanges.append((check, x))
        return x

    def send_event(
        self,
        check: str,
        doc: dict[str, Any],
        label: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        body = samples.js_json(doc) if body is None else body
        headers = self.headers(body) if headers is None else headers
        event = doc["event"]
        return self.post(check, label or event["name"], body, headers, event["id"], event["name"])


def run(
    options: CheckOptions,
    sender: Sender | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Send the checks' requests to `options.url`, one at a time, and grade the answers.
    NetworkError when no request got an answer at all (and none timed out after connecting:
    that is the latency check's failure); UsageError for a bad --inbox."""
    inbox = _open_inbox(options.inbox) if options.inbox is not None else None
    own = sender is None
    sender = sender or Sender(options.timeout)
    r = _Run(options, sender, progress)
    try:
        results = _checks(r, inbox)
    finally:
        if own:
            sender.close()
        if inbox is not None:
            inbox.close()
    # an endpoint that took the connections but answered none in time is there: too slow
    # (latency), not unreachable
    answered = [x for _, x in r.exchanges if x.code is not None or (x.answer and x.answer.late)]
    if not answered:
        first = next((x for _, x in r.exchanges if x.answer is not None), None)
        why = first.evidence(200) if first is not None else "nothing was sent"
        raise NetworkError(
            f"nothing answered at {printable(options.url, 200)}: {why}",
            hint="is the endpoint running, and is the URL right?",
        )
    unsent = any(x.answer is None for _, x in r.exchanges)
    return Report(
        options.url,
        results,
        time.monotonic() - r.started,
        r.sent,
        options.strict,
        r.stopped if unsent else None,
        _intermittent(r.exchanges),
    )


def _open_inbox(path: Path) -> Inbox:
    from atwh.receiver.inbox import Inbox

    return Inbox(path, create=False, busy_timeout_ms=2000)


def _checks(r: _Run, inbox: Inbox | None) -> list[CheckResult]:
    o = r.o
    results: dict[str, CheckResult] = {}

    # ping: the registration's unsigned test request; exactly 200
    x = r.post(
        "ping", "test request", samples.TEST_EVENT_BODY, {"content-type": "application/json"}, None
    )
    results["ping"] = _graded("ping", "the unsigned registration test request", [x], EXACTLY_200)

    # signed: each event, signed right, all about one entity (ticket.created before its
    # ticket.updated, as they happen)
    entity = f"{r.rng.getrandbits(48):012x}"
    signed = [
        r.send_event("signed", r.doc(name, f"signed-{i}", entity))
        for i, name in enumerate(o.events, 1)
    ]
    results["signed"] = _graded("signed", f"{', '.join(o.events)}, signed", signed, ACCEPT)
    if all(x.code in (401, 403) for x in signed):
        results["signed"].detail += (
            " (is the secret the webhook's? is the HMAC over the raw body alone, as in the "
            "vendor's example?)"
        )
    probe = next((x.label for x in signed if x.ok), o.events[0])
    accepted = any(x.ok for x in signed)

    # raw-body: the same event written by other JSON writers, each signed over its bytes
    raw = []
    for i, variant in enumerate(VARIANTS, 1):
        doc = r.doc(probe, f"raw-body-{i}")
        doc["event"]["data"]["description"] = "Wasserhahn in der Küche tropft – bitte prüfen"
        doc["event"]["data"]["link"] = f"https://example.com/tickets/{doc['event']['data']['id']}"
        raw.append(r.send_event("raw-body", doc, variant, js_json_variant(doc, variant)))
    results["raw-body"] = _graded(
        "raw-body", f"{probe} as {', '.join(VARIANTS)}", raw, ACCEPT, labelled=True
    )

    # wrong-secret, tampered, unsigned, stale: each must be refused
    doc = r.doc(probe, "wrong-secret")
    body = samples.js_json(doc)
    other = f"atwh-check-not-the-secret-{r.tag}"
    x = r.send_event("wrong-secret", doc, body=body, headers=r.headers(body, other))
    results["wrong-secret"] = _graded(
        "wrong-secret", f"{probe} signed with another secret", [x], REFUSE
    )

    doc = r.doc(probe, "tampered")
    headers = r.headers(samples.js_json(doc))
    doc["event"]["data"]["status"] = "closed (changed after signing)"
    x = r.send_event("tampered", doc, headers=headers)
    results["tampered"] = _graded("tampered", f"{probe} changed after signing", [x], REFUSE)

    doc = r.doc(probe, "unsigned")
    x = r.send_event("unsigned", doc, headers={"content-type": "application/json"})
    results["unsigned"] = _graded("unsigned", f"{probe} without signature headers", [x], REFUSE)

    doc = r.doc(probe, "stale", created=time.time() - STALE_SECONDS)
    body = samples.js_json(doc)
    x = r.send_event("stale", doc, body=body, headers=r.headers(body, ahead=-STALE_SECONDS))
    results["stale"] = _graded(
        "stale", f"{probe} signed right, timestamp {STALE_SECONDS // 60} min old", [x], REFUSE
    )

    # skew: a sender's clock a little ahead
    doc = r.doc(probe, "skew")
    body = samples.js_json(doc)
    x = r.send_event("skew", doc, body=body, headers=r.headers(body, ahead=SKEW_SECONDS))
    results["skew"] = _graded(
        "skew", f"{probe} signed right, timestamp {SKEW_SECONDS} s ahead", [x], ACCEPT
    )

    # duplicate: the same event twice, as Allthings retries it (a new timestamp)
    doc = r.doc(probe, "duplicate")
    body = samples.js_json(doc)
    twice = [
        r.send_event("duplicate", doc, "first", body, r.headers(body)),
        r.send_event("duplicate", doc, "again", body, r.headers(body)),
    ]
    results["duplicate"] = _graded(
        "duplicate", f"{probe} twice, same id and body", twice, ACCEPT, labelled=True
    )
    if inbox is not None and results["duplicate"].verdict != SKIP:
        _inbox_says(results["duplicate"], inbox, doc["event"]["id"])

    # out-of-order: an update of an entity before its creation
    created_name, updated_name = _pair(o.events, probe)
    entity = f"{r.rng.getrandbits(48):012x}"
    then = time.time() - 60
    later = r.doc(updated_name, "out-of-order-2", entity, then + 30)
    earlier = r.doc(created_name, "out-of-order-1", entity, then)
    both = [
        r.send_event("out-of-order", later, f"{updated_name} (newer)"),
        r.send_event("out-of-order", earlier, f"{created_name} (older)"),
    ]
    what = (
        f"{updated_name} before its {created_name}"
        if created_name != updated_name
        else f"{probe} for one entity, the newer first"
    )
    results["out-of-order"] = _graded("out-of-order", what, both, ACCEPT, labelled=True)

    # unknown-event: a name the endpoint was not told about
    x = r.send_event("unknown-event", r.doc(UNKNOWN_EVENT, "unknown-event"))
    results["unknown-event"] = _graded("unknown-event", f"{UNKNOWN_EVENT}, signed", [x], ACCEPT)

    results["redirect"] = _redirects(r.exchanges)
    results["latency"] = _latency(r.exchanges, o.timeout, o.slow)

    if not accepted:  # then what the other checks saw says little about the endpoint
        for check in CHECKS[CHECKS.index("raw-body") : CHECKS.index("out-of-order") + 1]:
            if results[check].verdict != SKIP:
                results[check].detail += "; but no signed event was accepted (see signed)"
    return [results[c] for c in CHECKS]


ACCEPT, REFUSE, EXACTLY_200 = "accept", "refuse", "exactly 200"  # what a check wants
# the checks whose requests are events signed right and sent as Allthings sends them, a
# healthy endpoint's answer to each of one name the same
SAME_KIND = ("signed", "raw-body", "duplicate")
FIX_5XX = (
    "find in the endpoint's log why it answered 5xx (a database, a crash) and make it "
    "answer; then run check again"
)
FIX_429 = "do not rate-limit Allthings' deliveries; then run check again"
FIX_SILENT = "answer every request within the timeout (see latency); then run check again"


def _good(x: Exchange, wants: str) -> bool:
    """What the check wants: a 2xx; exactly 200; or a refusal, which is a 4xx only (a 5xx
    is the endpoint failing, a 3xx a redirect, no answer nothing at all)."""
    if wants == EXACTLY_200:
        return x.code == 200
    return x.outcome == ("4xx" if wants == REFUSE else "2xx")


def _telltale(x: Exchange, wants: str) -> bool:
    """An answer, not what the check wants, that shows the check's cause: a 2xx to what
    must be refused, a 4xx (or another 2xx than 200) to what must be accepted. The
    endpoint's own trouble (5xx, 429, no answer) and a 3xx show nothing of it."""
    return x.outcome == "2xx" if wants == REFUSE else x.outcome in ("2xx", "4xx")


def _trouble(xs: Sequence[Exchange]) -> str:
    """What went wrong at the endpoint: `answered 500: the endpoint failed`."""

    def codes(test: Callable[[int], bool]) -> str:
        return " ".join(str(c) for c in sorted({x.code for x in xs if x.code and test(x.code)}))

    said = []
    if failed := codes(lambda c: c >= 500):
        said.append(f"answered {failed}: the endpoint failed")
    if any(x.code == 429 for x in xs):
        said.append("answered 429: the endpoint is rate-limiting (too many requests)")
    if any(x.code is None and x.answer is not None for x in xs):
        said.append("got no answer")
    if moved := codes(lambda c: 300 <= c <= 399):
        said.append(f"answered {moved}: a redirect (see redirect)")
    if early := codes(lambda c: c < 200):
        said.append(f"answered {early}")
    return "; ".join(said)


def _trouble_fix(xs: Sequence[Exchange]) -> str:
    if any(x.code is not None and x.code >= 500 for x in xs):
        return FIX_5XX
    if any(x.code == 429 for x in xs):
        return FIX_429
    if any(x.code is None for x in xs):
        return FIX_SILENT
    return RULES["redirect"].fix


def _intermittent(exchanges: Sequence[tuple[str, Exchange]]) -> list[str]:
    """A note when requests of one kind (an event of one name, signed right, sent once,
    a healthy endpoint's answer to each the same) got both 2xx and 5xx: the endpoint
    fails now and then, whatever the check. Not skew, out-of-order, the duplicate's second
    or unknown-event: a crash there is that check's own finding."""
    seen: dict[str, list[Exchange]] = {}
    for check, x in exchanges:
        if check in SAME_KIND and x.label != "again" and x.name and x.answer is not None:
            seen.setdefault(x.name, []).append(x)
    mixed = []
    for name, xs in seen.items():
        ok = sum(1 for x in xs if x.outcome == "2xx")
        failed = sum(1 for x in xs if x.code is not None and x.code >= 500)
        if ok and failed:
            mixed.append(f"{name} signed right got 2xx {ok}x, 5xx {failed}x")
    if not mixed:
        return []
    answered = [x for _, x in exchanges if x.code is not None]
    failed = sum(1 for x in answered if x.code is not None and x.code >= 500)
    return [
        f"intermittent 5xx: {failed} of {len(answered)} answers were 5xx, and the same "
        f"request got both ({'; '.join(mixed)}): the endpoint fails now and then (a flaky "
        "dependency?); run check again once it is fixed"
    ]


def _pair(events: Sequence[str], probe: str) -> tuple[str, str]:
    """The `<noun>.created` and `<noun>.updated` of the events checked (ticket's first);
    without such a pair, the probe event twice."""
    nouns = [n[: -len(".created")] for n in events if n.endswith(".created")]
    nouns.sort(key=lambda n: n != "ticket")
    for noun in nouns:
        if f"{noun}.updated" in events:
            return f"{noun}.created", f"{noun}.updated"
    return probe, probe


def _graded(
    check: str,
    sent: str,
    exchanges: list[Exchange],
    wants: str,
    labelled: bool | None = None,
) -> CheckResult:
    """Pass when every request got what the check `wants` (ACCEPT, REFUSE, EXACTLY_200).
    Else the check's `otherwise` verdict and why, when an answer shows its cause; when
    only the endpoint's trouble (5xx, 429, no answer, 3xx) came back, a why that says so:
    a fail for what must be accepted (a genuine event got it), the `otherwise` verdict
    for what must be refused (the check could not tell). SKIP when nothing was wrong but
    a request was not sent (the run had stopped)."""
    rule = RULES[check]
    labelled = len(exchanges) > 1 if labelled is None else labelled
    for x in exchanges:
        x.good = x.answer is not None and _good(x, wants)
    codes = [x.code for x in exchanges]
    unsent = [x for x in exchanges if x.answer is None]
    bad = [x for x in exchanges if not x.good and x.answer is not None]
    if not bad and not unsent:
        return CheckResult(check, PASS, sent, _evidence(exchanges, labelled), exchanges, codes)
    if not bad:
        why = f"not run: {unsent[0].not_sent}"
        detail = _evidence(exchanges, labelled)
        return CheckResult(check, SKIP, sent, detail, exchanges, codes, why=why)
    told = [x for x in bad if _telltale(x, wants)]
    trouble = [x for x in bad if not _telltale(x, wants)]
    own_fix = None
    if told:
        why = rule.why
        detail = f"{why}: {_evidence(told, labelled)}"
        if trouble:
            detail += f"; also {_trouble(trouble)}: {_evidence(trouble, labelled)}"
        verdict = FAIL if trouble and wants != REFUSE else rule.otherwise
    else:
        why = f"{_trouble(trouble)}, {rule.untold}"
        detail = f"{why}: {_evidence(trouble, labelled)}"
        verdict = rule.otherwise if wants == REFUSE else FAIL
        own_fix = _trouble_fix(trouble)
    if unsent:
        detail += f"; {_evidence(unsent, labelled)}"
    return CheckResult(check, verdict, sent, detail, exchanges, codes, why=why, own_fix=own_fix)


def _evidence(exchanges: Sequence[Exchange], labelled: bool) -> str:
    """What came back, briefly: `200 {"message":"success"} ×5`, or each with its label."""
    said = [x.evidence(60) for x in exchanges]
    if len(said) > 1 and len(set(said)) == 1:
        if labelled:
            return f"{', '.join(x.label for x in exchanges)}: {said[0]}"
        return f"{said[0]} ×{len(said)}"
    if not labelled:
        return "; ".join(said)
    return "; ".join(f"{x.label}: {s}" for x, s in zip(exchanges, said, strict=True))


def _redirects(exchanges: Sequence[tuple[str, Exchange]]) -> CheckResult:
    moved = [(check, x) for check, x in exchanges if x.answer is not None and x.answer.redirect]
    sent = "(over all answers)"
    if not moved:
        if partly := _partly(exchanges):
            detail = f"no 3xx answer, but {partly[0]}"
            return CheckResult("redirect", SKIP, sent, detail, [], [], why=partly[1])
        return CheckResult("redirect", PASS, sent, "no 3xx answer", [], [])
    checks = list(dict.fromkeys(check for check, _ in moved))
    first = moved[0][1]
    detail = f"{RULES['redirect'].why}: {first.evidence(100)} (answered to {', '.join(checks)})"
    codes = [x.code for _, x in moved]
    return CheckResult("redirect", FAIL, sent, detail, [], codes, why=RULES["redirect"].why)


def _latency(exchanges: Sequence[tuple[str, Exchange]], timeout: float, slow: float) -> CheckResult:
    sent = "(over all answers)"
    timed = [(c, x.answer) for c, x in exchanges if x.answer is not None]
    answered = [a.seconds for _, a in timed if a.code is not None]
    # past the timeout: an answer that came too late, or none because the time ran out
    # (a refused connection is not slow: it has no time to speak of)
    late = [(c, a) for c, a in timed if a.seconds >= timeout * 0.99]
    slowish = [(c, a) for c, a in timed if a.code is not None and a.seconds > slow]
    stats = "no answer to time"
    if answered:
        stats = f"{spread(answered)}, slowest {short_time(max(answered))}"
    for verdict, found, why in (
        (FAIL, late, f"{RULES['latency'].why}: past {timeout:g} s"),
        (WARN, slowish, f"slower than {slow:g} s, close to a timeout"),
    ):
        if found:
            names = ", ".join(dict.fromkeys(c for c, _ in found))
            detail = f"{why} ({names}); {stats}"
            codes = [a.code for _, a in found]
            return CheckResult("latency", verdict, sent, detail, [], codes, why=why)
    if partly := _partly(exchanges):
        return CheckResult(
            "latency", SKIP, sent, f"{stats}, but {partly[0]}", [], [], why=partly[1]
        )
    return CheckResult("latency", PASS, sent, stats, [], [])


def _partly(exchanges: Sequence[tuple[str, Exchange]]) -> tuple[str, str] | None:
    """For a check over all answers: what was not sent, and the why of its SKIP; None
    when every request was sent."""
    unsent = [x for _, x in exchanges if x.answer is None]
    if not unsent:
        return None
    why = f"not run: {unsent[0].not_sent}"
    return f"{len(unsent)} of {len(exchanges)} requests not sent ({unsent[0].not_sent})", why


def _inbox_says(result: CheckResult, inbox: Inbox, event_id: str) -> None:
    """With --inbox: whether the duplicate was stored once (serve keeps it to one row and
    counts the second delivery), added to the `duplicate` check."""
    copies = inbox.copies(event_id)
    kept = [c for c in copies if c.acked and c.verdict != "test" and c.conflict_of is None]
    if not copies:
        note = f"the inbox has no request with id {event_id}: is it the inbox of this URL?"
        if result.verdict == PASS:
            result.verdict, result.why = WARN, "the inbox cannot tell"
    elif len(kept) == 1:
        note = f"the inbox stored it once ({kept[0].duplicates} later delivery counted)"
        if kept[0].forward_status:
            note += f", forwarded once ({kept[0].forward_status})"
    elif not kept:
        note = "the inbox has it, never acknowledged"
    else:
        note = f"the inbox stored it {len(kept)} times"
        result.verdict, result.why = FAIL, "the same event is processed twice"
    result.note = note
    result.detail += f"; {note}"


__all__ = [
    "CHECKS",
    "CheckOptions",
    "CheckResult",
    "Exchange",
    "Report",
    "RULES",
    "SKIP",
    "VERDICTS",
    "on_this_machine",
    "run",
]
