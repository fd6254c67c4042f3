"""`atwh trigger`: realistic events, signed exactly as Allthings signs them, sent to the
endpoint a user builds, and what it answered.

The events come from `atwh.samples` (the emulator's source too), in the vendor's shape and
JSON.stringify's bytes; a captured body (`--body`) is sent byte for byte. Each request is
one `Sender.post`: no redirect followed (a 3xx is a failure, as Allthings counts it), the
answer bounded.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atwh import samples, signature
from atwh.core.interrupt import on_sigint
from atwh.endpoint.send import CANNOT_CONNECT, Answer, Sender
from atwh.errors import ExitStatus, UsageError, printable

if TYPE_CHECKING:
    from atwh.client.api import ApiClient

MAX_BODY_FILE = 64 * 1024 * 1024  # a body read from a file or stdin, at most


@dataclass(slots=True)
class Request:
    """One request to send: the body, and the headers besides the signature's."""

    body: bytes
    name: str | None = None  # the event's name and id, for the report
    event_id: str | None = None
    timestamp: str | None = None  # the timestamp header as given; None: the time it is sent
    signed: bool = True

    def headers(self, secret: str | None) -> dict[str, str]:
        """The request's headers, signed with `secret` (and a fresh timestamp unless one was
        given) unless unsigned."""
        headers = {"content-type": "application/json"}
        if self.signed and secret is not None:
            headers[signature.SIGNATURE_HEADER] = signature.sign(self.body, secret)
            headers[signature.TIMESTAMP_HEADER] = (
                self.timestamp if self.timestamp is not None else str(int(time.time() * 1000))
            )
        return headers


@dataclass(slots=True)
class Result:
    """What one request got."""

    request: Request
    answer: Answer
    abandoned: bool = False  # still in flight at a second Ctrl-C: its answer not waited for

    def to_api(self) -> dict[str, Any]:
        a = self.answer
        return {
            "eventName": self.request.name,
            "eventId": self.request.event_id,
            "statusCode": a.code,
            "ok": a.ok,
            "ms": None if self.abandoned else round(a.seconds * 1000, 1),
            "answer": a.body.decode("utf-8", "replace") if a.code is not None else None,
            "answerTruncated": a.cut,
            "location": a.header("location") if a.redirect else None,
            "error": a.error,
        }


@dataclass(slots=True)
class Report:
    """What a run got, counted as the answers come: a run of 100,000 events keeps no row
    (whoever shows them keeps what it shows)."""

    sent: int = 0
    ok: int = 0  # 2xx
    redirects: int = 0  # 3xx: a failure, never followed
    unanswered: int = 0  # no HTTP answer at all (abandoned ones aside)
    unreached: int = 0  # ... and not because the endpoint was slow
    abandoned: int = 0  # in flight at a second Ctrl-C, not waited for
    not_sent: int = 0  # left unsent: the URL could not be reached, or Ctrl-C
    interrupted: bool = False  # Ctrl-C (SIGINT) stopped the run

    def add(self, result: Result) -> None:
        a = result.answer
        self.sent += 1
        if result.abandoned:
            self.abandoned += 1
            return
        self.ok += a.ok
        self.redirects += a.redirect
        if a.code is None:
            self.unanswered += 1
            self.unreached += not a.late

    @property
    def exit_status(self) -> int:
        """130 when Ctrl-C stopped the run; 0 when every answer is 2xx; 6 when the URL could
        not be reached (a request got no answer, and not because the endpoint was slow: too
        late is a failed attempt, as Allthings counts it); else 1."""
        if self.interrupted:
            return ExitStatus.INTERRUPTED
        if self.not_sent or self.unreached:
            return ExitStatus.NETWORK
        return ExitStatus.OK if self.ok == self.sent else ExitStatus.FAILED


# -- what is sent ------------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What `atwh trigger` was asked to send."""

    names: list[str] = field(default_factory=list)
    body: str | None = None  # --body FILE|-: these bytes instead of events
    count: int = 1
    event_id: str | None = None
    data: str | None = None  # --data JSON
    sets: list[str] = field(default_factory=list)  # --set path=value
    timestamp: str | None = None  # --timestamp as given
    unsigned: bool = False
    any_name: bool = False


def requests_for(plan: Plan, catalogue: Sequence[str]) -> Collection[Request]:
    """The requests a plan makes: the captured body, or the events (names checked against
    the catalogue, made as they are sent); UsageError for what does not fit together."""
    stamp = timestamp_ms(plan.timestamp)
    if plan.body is not None:
        if plan.names or plan.data or plan.sets or plan.event_id or plan.count != 1:
            raise UsageError(
                "--body sends its bytes as they are: drop NAME, --data, --set, --id and --count"
            )
        return [raw(read_body(plan.body, "--body"), stamp, not plan.unsigned)]
    if not plan.names and plan.unsigned and not _shapes_events(plan):
        return [test_request()]
    if not plan.names:
        raise UsageError(
            "give one or more event NAMEs (or --body FILE)",
            hint="see 'atwh webhooks events' for the names",
        )
    names = check_names(plan.names, catalogue, plan.any_name)
    data, sets = parse_data(plan.data), parse_sets(plan.sets)
    made = events(names, plan.count, plan.event_id, data, sets, stamp, not plan.unsigned)
    next(iter(made))  # the first one made now: what --data and --set cannot make fails here
    return made


def _shapes_events(plan: Plan) -> bool:
    """Whether the plan says anything about events (then it needs their names)."""
    return bool(plan.data or plan.sets or plan.event_id or plan.count != 1 or plan.timestamp)


def test_request() -> Request:
    """The unsigned request Allthings sends a webhook's URL when the webhook is saved (the
    emulator's body, as `atwh webhooks ping` and `atwh check`'s ping send it)."""
    return Request(samples.TEST_EVENT_BODY, signed=False)


def check_names(names: Sequence[str], catalogue: Sequence[str], any_name: bool) -> list[str]:
    """The names, each in the catalogue (a misspelt one is a UsageError with the nearest
    name), or any EventName with `any_name`."""
    from atwh.client.webhooks import EVENT_NAME, EventType, check_events

    if any_name:
        for name in names:
            if not EVENT_NAME.match(name):
                raise UsageError(
                    f"NAME {printable(name, 100)!r} is not an event name "
                    "(lowercase letters, dots and hyphens)"
                )
        return list(names)
    known = [EventType("", n, "") for n in catalogue]
    try:
        return check_events(names, known, "NAME")
    except UsageError as e:
        if e.hint and e.hint.startswith("did you mean"):
            raise
        raise UsageError(e.message, hint=f"{e.hint}; --any-name sends it anyway") from None


def webhook_target(client: ApiClient, webhook_id: str) -> tuple[str | None, str, list[str]]:
    """A webhook's URL, secret and event names, from the API."""
    from atwh.client.secret import webhook_secret
    from atwh.client.webhooks import Webhooks

    info = Webhooks(client).get(webhook_id)
    return info.url, info.secret or webhook_secret(client, webhook_id), info.events


def target(
    plan: Plan,
    url: str | None,
    secret: str | None,
    webhook: str | None,
    make_client: Callable[[], ApiClient],
    ask_api: bool,
    warn: Callable[[str], None],
) -> tuple[str, str | None, list[str]]:
    """Where to send (the URL checked), the secret to sign with, and the event names known.
    With `webhook`, its URL (unless `url` sends elsewhere: a tunnel's inside), secret and,
    without NAME or --body, events from the API; else as given, the names from the API when
    `ask_api` (the emulator's, say), else (or when it cannot say, with a warning) the
    emulator's list."""
    from atwh.core.config import http_url
    from atwh.errors import AtwhError

    if webhook is not None:
        with make_client() as client:
            hook_url, secret, hook_events = webhook_target(client, webhook)
            if plan.body is None:  # no NAME: the webhook's events
                plan.names = plan.names or hook_events
            catalogue = api_catalogue(client)
        url = url or hook_url
    elif ask_api:
        try:
            with make_client() as client:
                catalogue = api_catalogue(client)
        except AtwhError as e:
            warn(f"the event names come from the emulator's list: {e.message}")
            catalogue = offline_catalogue()
    else:
        catalogue = offline_catalogue()
    if url is None:
        raise UsageError("give the endpoint's --url (or --webhook WEBHOOK_ID)")
    url = http_url("--url", url)
    if secret is not None and not secret.strip():
        raise UsageError("--secret is empty: give the webhook's secret, or --unsigned")
    if secret is None and not plan.unsigned:
        raise UsageError(
            "no secret to sign with: give --secret (or ALLTHINGS_WEBHOOK_SECRET), "
            "or --unsigned for the test request"
        )
    return url, secret, catalogue


def api_catalogue(client: ApiClient) -> list[str]:
    """The event names one can subscribe to, from the API (`registerableWebhookEvents`)."""
    from atwh.client.webhooks import Webhooks

    return [e.name for e in Webhooks(client).events()]


def offline_catalogue() -> list[str]:
    """The event names without the API: the emulator's (the vendor's attested names and
    the emulator's own)."""
    from atwh.emulator.state import REGISTERABLE_EVENTS

    return [name for _, name, _ in REGISTERABLE_EVENTS]


def parse_data(text: str | None) -> dict[str, Any]:
    """--data: a JSON object merged into event.data."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError(f"--data {printable(text, 80)!r} is not JSON") from None
    if not isinstance(value, dict):
        raise UsageError("--data must be a JSON object, merged into event.data")
    return value


def parse_sets(items: Sequence[str]) -> list[tuple[list[str], Any]]:
    """--set path=value: the dotted path (in event.data, or from the top when it starts with
    `event.`) and the value (JSON when it reads as JSON, else the text)."""
    out = []
    for item in items:
        path, sep, raw = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise UsageError(
                f"--set {printable(item, 80)!r}: give path=value, such as title=Broken or "
                "delta.status.to=closed"
            )
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = raw
        out.append((keys, value))
    return out


def _set(document: dict[str, Any], keys: list[str], value: Any) -> None:
    target = document if keys[0] == "event" else document["event"]["data"]
    for key in keys[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[keys[-1]] = value


def events(
    names: Sequence[str],
    count: int = 1,
    event_id: str | None = None,
    data: dict[str, Any] | None = None,
    sets: Sequence[tuple[list[str], Any]] = (),
    timestamp: str | None = None,
    signed: bool = True,
) -> Events:
    """`count` requests per name, each a realistic event with `data` merged into event.data
    and `sets` applied, in JSON.stringify's bytes. Each has its own event id; with
    `event_id`, every copy is the same event, byte for byte, as a retry delivers it. Made
    as they are iterated: 100,000 events are never held at once."""
    return Events(list(names), count, event_id, data or {}, list(sets), timestamp, signed)


@dataclass(slots=True, frozen=True)
class Events(Collection[Request]):
    """The requests of `events()`, made one at a time as they are iterated (each iteration
    makes new event ids)."""

    names: list[str]
    count: int
    event_id: str | None
    data: dict[str, Any]
    sets: list[tuple[list[str], Any]]
    timestamp: str | None
    signed: bool

    def __len__(self) -> int:
        return len(self.names) * self.count

    def __contains__(self, item: object) -> bool:
        return any(item == r for r in self)

    def __iter__(self) -> Iterator[Request]:
        for name in self.names:
            if self.event_id is not None:  # the same event, byte for byte, every time
                one = self._make(name)
                for _ in range(self.count):
                    yield copy.copy(one)
                continue
            for _ in range(self.count):
                yield self._make(name)

    def _make(self, name: str) -> Request:
        body = samples.sample_data(name)
        body.update(copy.deepcopy(self.data))
        document = samples.event(name, body, self.event_id)
        for keys, value in self.sets:
            _set(document, keys, copy.deepcopy(value))
        ev: Any = document.get("event")
        ev = ev if isinstance(ev, dict) else {}
        return Request(
            signature.js_stringify(document).encode(),
            _text(ev.get("name")),
            _text(ev.get("id")),
            self.timestamp,
            self.signed,
        )


def raw(body: bytes, timestamp: str | None = None, signed: bool = True) -> Request:
    """A captured body, sent exactly as it is; its event's name and id read for the report."""
    name = eid = None
    try:
        ev = json.loads(body).get("event")
        if isinstance(ev, dict):
            name, eid = _text(ev.get("name")), _text(ev.get("id"))
    except (ValueError, RecursionError, AttributeError):
        pass
    return Request(body, name, eid, timestamp, signed)


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def read_body(source: str, what: str = "FILE") -> bytes:
    """The bytes of a file, or of stdin for `-`, exactly; at most MAX_BODY_FILE."""
    if not source.strip():
        raise UsageError(f"{what} is empty: give a file's path, or '-' for stdin")
    if source == "-":
        if sys.stdin.isatty():
            raise UsageError(f"{what} is '-' but stdin is a terminal: pipe the body in")
        data = sys.stdin.buffer.read(MAX_BODY_FILE + 1)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_BODY_FILE + 1)
        except OSError as e:
            raise UsageError(f"{what} {printable(source, 200)}: {e.strerror or e}") from None
    if len(data) > MAX_BODY_FILE:
        raise UsageError(f"{what} is larger than {MAX_BODY_FILE // (1024 * 1024)} MiB")
    return data


def timestamp_ms(text: str | None, now_ms: int | None = None) -> str | None:
    """--timestamp: milliseconds as given (any digits, kept as the header's text: seconds
    too, to test a receiver with them), `now`, or relative to now (`-10m`, `+30s`)."""
    from atwh.client.filters import parse_duration

    if text is None:
        return None
    s = text.strip()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if s.isascii() and s.isdigit():
        return s
    if s == "now":
        return str(now_ms)
    if s[:1] in "+-" and len(s) > 1:
        try:
            offset = parse_duration(s[1:]).total_seconds()
        except ValueError:
            offset = None
        if offset is not None:
            return str(now_ms + round(offset * 1000) * (1 if s[0] == "+" else -1))
    raise UsageError(
        f"--timestamp {printable(text, 60)!r}: give milliseconds since 1970, 'now', or a time "
        "relative to now such as -10m or +30s"
    )


# -- sending -----------------------------------------------------------------------------------


class Abandoned(KeyboardInterrupt):
    """A second Ctrl-C while the main thread waits for an answer (--concurrency 1)."""


class Stop:
    """Whether a run is to stop: Ctrl-C once (no new request; the ones in flight are waited
    for), twice (those are abandoned)."""

    def __init__(self, on_stopping: Callable[[int], None] | None = None) -> None:
        self.event = threading.Event()
        self.interrupted = False
        self.abandoned = False
        self.on_stopping = on_stopping  # told once, on the first Ctrl-C, how many are in flight
        self.told = False
        self.in_request = False  # the main thread itself waits for an answer

    def interrupt(self) -> None:
        """Ctrl-C (SIGINT's handler, on the main thread)."""
        if self.interrupted:
            self.abandoned = True
        self.interrupted = True
        self.event.set()
        if self.in_request:
            if self.abandoned:
                raise Abandoned
            self.tell(1)

    def tell(self, in_flight: int) -> None:
        if not self.told and self.on_stopping is not None:
            self.told = True
            self.on_stopping(in_flight)

    def is_set(self) -> bool:
        return self.event.is_set()


POLL = 0.1  # seconds between looks at Ctrl-C while an answer is awaited
ABANDONED = "abandoned in flight (a second Ctrl-C): its answer not waited for"


def send(
    url: str,
    requests: Iterable[Request],
    secret: str | None,
    concurrency: int = 1,
    timeout: float = 10.0,
    on_result: Callable[[Result], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
    total: int | None = None,
) -> Report:
    """POST every request to `url` (`concurrency` at once), taking them from `requests` as
    they go out (at most twice `concurrency` ahead), and call `on_result` with each result
    in request order as soon as it and those before it have their answer. The Report counts.

    Once one cannot connect at all, the ones not yet started are left (`not_sent`, of
    `total`: len(requests) unless given). On the main thread, Ctrl-C (SIGINT) stops it: no
    new request, `on_stopping(in_flight)` once, the ones in flight waited for (each within
    `timeout`); a second Ctrl-C abandons them (results marked `abandoned`)."""
    if total is None:
        total = len(requests) if isinstance(requests, Collection) else 0
    report = Report()
    stop = Stop(on_stopping)
    gave_up = threading.Event()
    emit = on_result or (lambda r: None)
    sender = Sender(timeout)

    def post(request: Request) -> Answer | None:
        if stop.is_set() or gave_up.is_set():
            return None  # not sent
        answer = sender.post(url, request.body, request.headers(secret))
        if answer.code is None and (answer.error or "").startswith(CANNOT_CONNECT):
            gave_up.set()
        return answer

    def done(request: Request, answer: Answer | None) -> None:
        """An answer (None: abandoned in flight) counted and passed on."""
        if answer is None:
            result = Result(request, Answer(None, 0.0, error=ABANDONED), abandoned=True)
        else:
            result = Result(request, answer)
        report.add(result)
        emit(result)

    restore = on_sigint(stop.interrupt)
    try:
        if concurrency <= 1:  # on this thread: a request costs a quarter less than in a pool
            for request in requests:
                if stop.is_set() or gave_up.is_set():
                    break
                stop.in_request = True
                try:
                    answer = post(request)
                except Abandoned:
                    answer = None
                finally:
                    stop.in_request = False
                done(request, answer)
        else:
            _in_pool(requests, concurrency, post, done, stop, gave_up)
    finally:
        stop.event.set()  # (an error on the way: nothing more starts)
        if not stop.abandoned:  # (else each thread's client goes with its last request)
            sender.close()
        restore()
    report.interrupted = stop.interrupted
    report.not_sent = max(total - report.sent, 0)
    return report


def _in_pool(
    requests: Iterable[Request],
    concurrency: int,
    post: Callable[[Request], Answer | None],
    done: Callable[[Request, Answer | None], None],
    stop: Stop,
    gave_up: threading.Event,
) -> None:
    """`concurrency` requests at once, `done` called in request order."""
    pending: deque[tuple[Request, Future[Answer | None]]] = deque()
    ahead = 2 * concurrency  # requests taken ahead of the oldest unanswered, at most

    def answered(future: Future[Answer | None]) -> bool:
        """Wait for the answer; False when a second Ctrl-C gives up on it."""
        while not wait([future], POLL).done:
            if stop.abandoned:
                return False
            if stop.interrupted:
                stop.tell(sum(f.running() for _, f in pending))
        return True

    source = iter(requests)
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="atwh-trigger")
    try:
        while True:
            while len(pending) < ahead and not (stop.is_set() or gave_up.is_set()):
                request = next(source, None)
                if request is None:
                    break
                pending.append((request, pool.submit(post, request)))
            if not pending:
                return
            request, future = pending[0]
            if not answered(future):
                break
            pending.popleft()
            answer = future.result()
            if answer is not None:
                done(request, answer)
        # a second Ctrl-C: the ones in flight are abandoned (those answered meanwhile not)
        for request, future in pending:
            if not future.cancel() and not (future.done() and future.result() is None):
                done(request, future.result() if future.done() else None)
    finally:
        stop.event.set()
        for _, future in pending:
            future.cancel()
        # abandoned requests end within --timeout, unwaited (the interpreter's exit joins
        # the pool's threads: at most --timeout later)
        pool.shutdown(wait=not stop.abandoned, cancel_futures=True)


# -- written down instead ----------------------------------------------------------------------

INLINE_MAX = 4096  # a larger body goes into a file beside the curl command


def curl_lines(
    url: str, requests: Iterable[Request], secret: str | None, directory: Path
) -> tuple[list[str], int]:
    """A curl command per request, and how many bodies went into files: a body larger than
    INLINE_MAX bytes, or one a terminal would not show as it is, is written into `directory`
    (`atwh-trigger-N.json`) and sent from there."""
    from atwh.curl import curl_command

    lines = []
    files = 0
    for i, request in enumerate(requests, 1):
        body_file = spill(request.body, directory / f"atwh-trigger-{i}.json")
        files += body_file is not None
        headers = {"user-agent": samples.USER_AGENT, **request.headers(secret)}
        lines.append(curl_command(url, headers, request.body, body_file))
    return lines, files


def spill(body: bytes, path: Path) -> str | None:
    """Where a curl command reads `body` from: `path`, written now, when the body is larger
    than INLINE_MAX bytes or one a terminal would not show as it is (a command line holds
    128 KiB at most); None when it goes inline."""
    from atwh.curl import shows_as_is

    if len(body) <= INLINE_MAX and shows_as_is(body):
        return None
    try:
        path.write_bytes(body)
    except OSError as e:
        from atwh.errors import OutputError

        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    return str(path)


def dry_run_text(url: str, request: Request, secret: str | None) -> str:
    """One request as HTTP shows it: the request line, the headers, the body."""
    headers = {"user-agent": samples.USER_AGENT, **request.headers(secret)}
    head = [f"POST {url}", *(f"{k}: {v}" for k, v in headers.items())]
    body = printable(request.body.decode("utf-8", "replace"), None, lines=True)
    return "\n".join(head) + "\n\n" + body + "\n"
