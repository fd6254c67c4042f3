"""The receiver behind `atwh serve`: an ASGI app that answers like the vendor's reference
endpoint, verifies signatures, and commits every request to the inbox before answering.

Built by `create_app(settings)`; the command only starts a server with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from atwh import signature
from atwh.core import jsontext
from atwh.receiver.forward import FORWARDED_BY, Forwarder
from atwh.receiver.inbox import Inbox, NewRequest, Stored, event_key
from atwh.receiver.settings import ReceiverSettings
from atwh.receiver.store import BatchWriter, Checkpointer, InboxFiles, Shared, StoreUnavailable

log = logging.getLogger("atwh.receiver.app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class Decision:
    code: int
    message: str
    verdict: str  # verified | unverified | test | rejected
    reason: str | None = None
    event_id: str | None = None
    event_name: str | None = None
    extra: dict[str, str] | None = None
    event_key: str | None = None  # the dedupe key: inbox.event_key() of the id as JSON gave it

    def answer(self) -> str:
        """The JSON answer; the few common ones are built once."""
        if self.extra:
            return json.dumps({"message": self.message, **self.extra})
        text = _ANSWERS.get(self.message)
        if text is None:
            text = json.dumps({"message": self.message})
            if len(_ANSWERS) < 256:
                _ANSWERS[self.message] = text
        return text


_ANSWERS: dict[str, str] = {}


def _storable(text: str) -> str:
    """JSON can carry lone surrogates (\\ud800), which UTF-8, and so SQLite, cannot hold;
    they are kept escaped."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _event_of(obj: Any) -> tuple[str | None, str | None, str | None]:
    """The event's id as shown, its name, and its dedupe key (see inbox.event_key)."""
    event = obj.get("event") if isinstance(obj, dict) else None
    if not isinstance(event, dict):
        return None, None, None
    raw, name = event.get("id"), event.get("name")
    key = event_key(raw)
    eid = None if key is None else _storable(raw) if isinstance(raw, str) else str(raw)
    return eid, _storable(name) if isinstance(name, str) and name else None, key


def _load(body: bytes) -> Any:
    """The body as JSON, as json.loads reads UTF-8 (jsontext); ValueError if it is not."""
    return jsontext.decode(body, exact=_exact_event_id)


def _exact_event_id(obj: Any) -> bool:
    """False when orjson may have read the event's id otherwise than json (a huge integer
    id becomes a float)."""
    event = obj.get("event") if isinstance(obj, dict) else None
    return not (isinstance(event, dict) and isinstance(event.get("id"), float))


def _peek_event(body: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        return _event_of(_load(body))
    except ValueError:
        return None, None, None


class Simulation:
    """--respond, --fail-every and --fail-rate: which accepted events get a failure instead."""

    def __init__(self, s: ReceiverSettings) -> None:
        self.respond = s.respond
        self.every = s.fail_every
        self.rate = s.fail_rate
        self.rng = random.Random(s.seed)
        self.count = 0

    def __bool__(self) -> bool:
        return bool(self.respond or self.every or self.rate)

    def outcome(self) -> tuple[int, str] | None:
        self.count += 1
        if self.respond is not None:
            return self.respond, f"--respond {self.respond}"
        if self.every and self.count % self.every == 0:
            return 500, f"--fail-every {self.every}"
        if self.rate and self.rng.random() < self.rate:
            return 500, f"--fail-rate {self.rate:g}"
        return None


def decide(
    body: bytes,
    sig: str | None,
    timestamp: str | None,
    s: ReceiverSettings,
    simulation: Simulation | None = None,
    now: float | None = None,
) -> Decision:
    """What the vendor's reference endpoint would answer, with verification added."""
    if sig is None:
        eid, name, key = _peek_event(body)
        if s.secret and (eid is not None or name is not None):
            # With a secret, an unsigned request that carries an event is a forgery or a
            # sender without the secret: refused, where the vendor's example answers 200 and
            # leaves it to the code to not process it. The registration's test request
            # (no event in it) still gets its 200.
            return Decision(
                401,
                f"Unsigned event: no {signature.SIGNATURE_HEADER} header",
                "rejected",
                "unsigned",
                eid,
                name,
                extra={"reason": "unsigned"},
            )
        return Decision(200, signature.TEST_EVENT_ANSWER, "test", None, eid, name, event_key=key)
    verdict = "unverified"
    if s.secret:
        rejection = signature.verifier(s.secret, s.tolerance, s.future_skew).check(
            body, sig, timestamp, now
        )
        if rejection is not None:  # the event named only for display: it is not trusted
            eid, name, _ = _peek_event(body)
            return Decision(
                401,
                rejection.message,
                "rejected",
                rejection.reason,
                eid,
                name,
                extra={"reason": rejection.reason},
            )

        verdict = "verified"
    try:
        obj = _load(body)
    except UnicodeDecodeError:
        return Decision(400, "Body is not valid UTF-8", "rejected", "invalid_utf8")
    except ValueError:
        return Decision(400, "Body is not valid JSON", "rejected", "invalid_json")
    if not isinstance(obj, dict):
        return Decision(400, "Body is not a JSON object", "rejected", "not_an_object")
    eid, name, key = _event_of(obj)
    if name is None:
        return Decision(400, "No event.name in the body", "rejected", "no_event_name", eid)
    if not (s.accept_any_event or name in s.events):
        return Decision(400, "Unexpected event type", "rejected", "unexpected_event", eid, name)
    if simulation:
        failure = simulation.outcome()
        if failure is not None:
            code, why = failure
            message = "success" if 200 <= code <= 299 else f"Simulated failure ({why})"
            return Decision(code, message, verdict, f"simulated: {why}", eid, name, event_key=key)
    return Decision(200, "success", verdict, None, eid, name, event_key=key)


class _Refused(Exception):
    pass


# The header block is bounded as nginx and h11 bound it, before anything is read or stored.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024
_FORWARDED_BY = FORWARDED_BY.encode()


def _refused_head(
    headers: Sequence[tuple[bytes, bytes]], forwarded_by: bytes | None, instance: str | None
) -> Decision | None:
    """A 431 for too many or too large headers, a 508 for this receiver's own forward come
    back; None for the usual request."""
    if len(headers) > MAX_HEADERS:
        return Decision(431, f"More than {MAX_HEADERS} headers", "rejected", "headers_too_large")
    if sum(len(n) + len(v) + 4 for n, v in headers) > MAX_HEADER_BYTES:
        return Decision(
            431,
            f"Headers larger than {MAX_HEADER_BYTES} bytes",
            "rejected",
            "headers_too_large",
        )
    if (
        forwarded_by is not None
        and instance
        and instance.encode() in (p.strip() for p in forwarded_by.split(b","))
    ):
        return Decision(
            508,
            "Loop detected: this request was forwarded by this receiver",
            "rejected",
            "forward_loop",
        )
    return None


Headers = tuple[tuple[bytes, bytes], ...]


@lru_cache(maxsize=256)
def _json_headers(length: int) -> Headers:
    """The headers of a JSON answer of this length, made once for each length."""
    return ((b"content-type", b"application/json"), (b"content-length", b"%d" % length))


async def _answer(send: Send, code: int, body: bytes, extra: Headers = ()) -> None:
    """An answer in its two ASGI messages, with a Content-Length, so the server writes it
    as it is rather than in chunks. The messages are new each time: the server owns them."""
    headers = _json_headers(len(body))
    await send({"type": "http.response.start", "status": code, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


def _text(value: bytes | None) -> str | None:
    """A header's value as text (HTTP header bytes are latin-1), or None if it is absent."""
    return None if value is None else value.decode("latin-1")


class _TooLarge(Exception):
    pass


_STOPPING = "atwh: stopping"
_STOPPING_ANSWER = b'{"message": "The receiver is stopping; not stored, send it again"}'


class _ForwardThread:
    """The forwarder on an event loop of its own, in a thread of its own: its inbox
    queries and updates (which wait up to the busy timeout on a locked inbox) never hold
    up the loop that answers requests. Its notices are shown from the main loop."""

    def __init__(self, receiver: Receiver, main: asyncio.AbstractEventLoop) -> None:
        assert receiver.files is not None
        self.inbox = Shared(receiver.files, receiver.s.busy_timeout_ms)
        notice = receiver.on_notice

        def notify(message: str) -> None:
            with contextlib.suppress(RuntimeError):  # the main loop is closed
                main.call_soon_threadsafe(notice, message)

        self.forwarder = Forwarder(receiver.s, self.inbox, notify)  # type: ignore[arg-type]
        receiver.forwarder = self.forwarder
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(started,), name="atwh-forward", daemon=True
        )
        self.thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.forwarder.run())
        self.loop.call_soon(started.set)
        try:
            self.loop.run_until_complete(self._task)
        except (asyncio.CancelledError, Exception) as e:
            if not isinstance(e, asyncio.CancelledError):
                log.exception("forwarding stopped")
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.forwarder.wake.set)

    def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(15)
        self.inbox.close()


class Receiver:
    """The ASGI app."""

    def __init__(
        self,
        settings: ReceiverSettings,
        on_request: Callable[[NewRequest, Stored | None, float], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.s = settings
        self.on_request = on_request
        self.on_notice = on_notice or (lambda message: log.info("%s", message))
        self.simulation = Simulation(settings)
        self.writer: BatchWriter | None = None
        self.inbox: Inbox | None = None
        self.files: InboxFiles | None = None
        self.forwarder: Forwarder | None = None
        self.checkpointer: Checkpointer | None = None
        self._forwarding: _ForwardThread | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None  # set on SIGINT/SIGTERM
        self._reading: set[asyncio.Task[Any]] = set()  # requests still reading their body
        self.started = time.time()
        self.answered = 0
        self.in_flight = 0  # requests to the webhook path not answered yet

    # -- lifespan -----------------------------------------------------------------------

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        s = self.s

        def open_inbox() -> Inbox:
            return Inbox(
                s.db,
                synchronous=s.synchronous,
                busy_timeout_ms=s.busy_timeout_ms,
                autocheckpoint=False,
            )

        def open_fast() -> Inbox:  # for commits on the loop: never waits for a lock
            fast = Inbox(s.db, create=False, busy_timeout_ms=0, autocheckpoint=False)
            fast.conn.execute(f"PRAGMA synchronous = {s.synchronous}")
            return fast

        self.inbox = open_inbox()
        fsync = s.synchronous == "FULL"  # then every commit is in the writer's thread
        self.files = InboxFiles(s.db)
        self.checkpointer = Checkpointer(self.files)
        self.writer = BatchWriter(
            self.inbox,
            loop,
            self._committed if s.forward_to else None,
            files=self.files,
            reopen=open_inbox,
            notice=self.on_notice,
            max_wait=s.store_max_wait,
            fast=None if fsync else open_fast(),
            reopen_fast=None if fsync else open_fast,
        )
        if s.forward_to:
            self._forwarding = _ForwardThread(self, loop)

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: S110
                pass
        if self._forwarding is not None:
            await asyncio.to_thread(self._forwarding.close)
        if self.writer is not None:
            self.writer.hand_over()  # what this loop turn added, before the thread ends
            await asyncio.to_thread(self.writer.close)
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.close)

    def stopping(self) -> None:
        """SIGINT or SIGTERM (called by the server, in the loop's thread, maybe inside a
        signal handler): the requests in flight end their --delay at once, and those
        still sending their body are answered 503 before the server's grace ends."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        assert self._loop is not None
        self._loop.call_later(max(0.0, self.s.stop_grace), self._stop_reading)

    def _stop_reading(self) -> None:
        for task in list(self._reading):
            task.cancel(_STOPPING)

    def _forwarded(self, decision: Decision) -> bool:
        """Whether an answered request is to be forwarded (if acknowledged): with a secret,
        an unsigned one only with --forward-unsigned (the app is not an open relay)."""
        if not self.s.forward_to:
            return False
        return decision.verdict != "test" or not self.s.secret or self.s.forward_unsigned

    def _committed(self, batch: Sequence[NewRequest], stored: Sequence[Stored]) -> None:
        if self._forwarding is not None and any(r.forward and r.acked for r in batch):
            self._forwarding.wake()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == self.s.path and scope["method"] == "POST":
                self.in_flight += 1
                try:
                    await self._webhook(scope, receive, send)
                except asyncio.CancelledError:  # the server's grace ran out: no traceback
                    with contextlib.suppress(Exception):
                        await _answer(send, 503, _STOPPING_ANSWER)
                finally:
                    self.in_flight -= 1
            else:
                await self.other(scope, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests -----------------------------------------------------------------------

    async def _delay(self) -> None:
        """--delay, cut short by SIGINT/SIGTERM: the answer goes out as decided."""
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.s.delay)

    async def other(self, scope: Scope, send: Send) -> None:
        """Everything but a POST to the webhook path."""
        path, method = scope["path"], scope["method"]
        if path == "/health":
            if method not in ("GET", "HEAD"):
                return await _answer(
                    send, 405, b'{"message":"Method not allowed"}', ((b"allow", b"GET, HEAD"),)
                )
            body = json.dumps(
                {
                    "status": "ok",
                    "path": self.s.path,
                    "answered": self.answered,
                    "in_flight": self.in_flight,
                    "verifying": bool(self.s.secret),
                }
            ).encode()
            return await _answer(send, 200, body)
        if path != self.s.path:
            msg = json.dumps({"message": f"Not found: POST webhooks to {self.s.path}"}).encode()
            return await _answer(send, 404, msg)
        return await _answer(
            send, 405, b'{"message":"Method not allowed: use POST"}', ((b"allow", b"POST"),)
        )

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        received_at = time.time()
        headers = scope["headers"]
        named = dict(headers)  # a repeated header: the last one, as before
        sig = _text(named.get(b"x-allthings-signature"))
        stamp = _text(named.get(b"x-allthings-signature-timestamp"))
        length = _text(named.get(b"content-length"))
        limit = self.s.max_body
        task = asyncio.current_task()
        assert task is not None
        self._reading.add(task)
        try:
            forwarder = self.forwarder  # its forwards are marked with its instance token
            instance = forwarder.instance if forwarder is not None else None
            refusal = _refused_head(headers, named.get(_FORWARDED_BY), instance)
            if refusal is not None:  # nothing of it is read, and no header of it stored
                if refusal.code == 431:
                    headers = ()
                raise _Refused()
            if length is not None:  # declared: refused before reading
                if not (length.strip().isascii() and length.strip().isdigit()):
                    raise ValueError(length)
                if int(length) > limit:
                    raise _TooLarge()
            message = await receive()
            body = message.get("body", b"")
            if message["type"] != "http.request" or message.get("more_body", False):
                body = await _read_rest(message, receive, limit)
            elif len(body) > limit:
                raise _TooLarge()
        except _Refused:
            assert refusal is not None
            decision, body = refusal, b""
        except _TooLarge:
            decision = Decision(
                413, f"Body larger than {self.s.max_body} bytes", "rejected", "too_large"
            )
            body = b""
        except ValueError:
            decision = Decision(400, "Unreadable Content-Length", "rejected", "bad_length")
            body = b""
        except _Disconnected:
            return
        except asyncio.CancelledError as e:
            if e.args != (_STOPPING,):
                raise
            self.answered += 1  # the body did not come before the end of the grace
            await _answer(send, 503, _STOPPING_ANSWER)
            return
        else:
            decision = decide(body, sig, stamp, self.s, self.simulation)
        finally:
            self._reading.discard(task)

        if self.s.delay > 0:  # --delay: a slow endpoint, for exercising a sender's timeouts
            await self._delay()
        request = NewRequest(
            received_at,
            "POST",
            self.s.path,
            headers,
            body,
            decision.verdict,
            decision.reason,
            decision.event_id,
            decision.event_name,
            decision.code,
            decision.answer(),
            self._forwarded(decision),
            decision.event_key,
        )
        assert self.writer is not None, "the app was not started (lifespan)"
        try:
            stored: Stored | None = await self.writer.add(request)
        except StoreUnavailable as e:
            stored = None
            request.answer_code = 503
            request.answer_body = json.dumps(
                {"message": f"Inbox unavailable, not acknowledged: {e}"}
            )
            request.reason = "store_unavailable"
        self.answered += 1
        await _answer(send, request.answer_code, request.answer_body.encode())
        if self.on_request is not None:
            self.on_request(request, stored, (time.perf_counter() - start) * 1000)


async def _read_rest(message: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """A body that comes in more than one message (chunked, or a slow sender)."""
    chunks = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


class _Disconnected(Exception):
    pass


def create_app(
    settings: ReceiverSettings,
    on_request: Callable[[NewRequest, Stored | None, float], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> Receiver:
    return Receiver(settings, on_request, on_notice)
