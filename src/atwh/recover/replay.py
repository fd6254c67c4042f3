"""Re-sending events as Allthings sends them: the stored payload, byte for byte, signed with
the webhook's secret and a fresh timestamp, oldest first, and a report of what each got.

Sending runs on one asyncio loop: `concurrency` workers take the events in order, paced by
`rate`; a 429 or 503 is retried after its Retry-After (or a growing back-off), a bounded
number of times. Each request is made by httpx's sync client (endpoint.send.Sender): one at
a time on the loop's thread, several at once each in a thread of a pool; everything else,
the ledger included, stays on the loop's thread. Ctrl-C stops taking new events, lets the
requests in flight finish, and the report still comes back (`interrupted` set); a second
one gives up on them. Every answered try is written to the ledger.

Every event ends with a true result: fixed, still failing (the target answered otherwise, or
not at all), skipped (and why), or error: it could not be sent (a header that cannot be
encoded, say), with the reason; nothing stops a run silently. Each event is claimed in the
ledger just before it is sent, so that replays that overlap send it once. When the ledger
cannot be written (locked, a full disk), sending stops: the events sent keep their results,
the rest are errors, and the report says why (`ledger_error`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, overload

import httpx

from atwh import signature
from atwh.client.api import parse_retry_after
from atwh.core.dates import iso
from atwh.core.interrupt import on_sigint
from atwh.core.transport import on_this_machine
from atwh.endpoint.send import CANNOT_CONNECT, Answer, Sender, answer_line
from atwh.errors import UsageError, printable
from atwh.recover.ledger import Ledger, LedgerError
from atwh.recover.selection import Candidate

REPLAY_HEADER = "x-atwh-replay-of"  # marks a replay, and names the original delivery
BODY_KEPT = 4096  # bytes of each answer read, for the report's one line
RETRY_STATUSES = frozenset({429, 503})
CONFIRM_ABOVE = 20  # events sent to a host other than loopback without asking

FIXED = "fixed"
FAILING = "still failing"
SKIPPED = "skipped"
# why an event is skipped, short enough to be read whole beside its id at 80 columns; the
# totals line says what to do about it (--history, --force)
ALREADY_REPLAYED = "already replayed with a 2xx"
# connection failures in a row after which a replay stops: the target is not there, and
# sending the rest would only fail the same way
UNREACHABLE_AFTER = 5
NOT_SENT_UNREACHABLE = "not sent: the target could not be reached"
WOULD_SEND = "would send"
ERROR = "error"  # not sent, and why


@dataclass(slots=True)
class ReplayOptions:
    target: str
    secret: str | None  # None: sent unsigned
    concurrency: int = 1
    rate: float | None = None  # requests per second at most
    timeout: float = 30.0  # per request, answer included
    max_tries: int = 4  # per event, when answered 429 or 503
    backoff: float = 1.0  # first back-off without Retry-After; doubles
    retry_after_cap: float = 60.0
    user_agent: str = "atwh"
    force: bool = False  # send events the ledger says were answered 2xx
    sleep_jitter: random.Random = field(default_factory=random.Random)

    @property
    def lease(self) -> float:
        """Seconds an event is claimed for: as long as its tries can take, and a margin."""
        return self.max_tries * (self.timeout + self.retry_after_cap) + 30.0


@dataclass(slots=True)
class Outcome:
    candidate: Candidate
    result: str  # fixed | still failing | skipped | error | would send
    code: int | None = None
    detail: str | None = None  # one line of the answer, the network error, or why skipped
    tries: int = 0
    seconds: float | None = None

    @property
    def sent(self) -> bool:
        return self.tries > 0

    def to_api(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "eventId": c.event_id,
            "eventName": c.event_name,
            "eventCreatedDate": iso(c.created),
            "replayOf": c.origin,
            "result": self.result,
            "statusCode": self.code,
            "detail": self.detail,
            "tries": self.tries,
            "ms": round(self.seconds * 1000) if self.seconds is not None else None,
        }


@dataclass(slots=True)
class Report:
    target: str
    outcomes: Sequence[Outcome]
    interrupted: bool = False
    dry_run: bool = False
    ledger_error: str | None = None  # sending stopped: the ledger could not be written
    unreachable: int = 0  # stopped after this many connection failures in a row (0: not)

    def count(self, result: str) -> int:
        return self.totals_by_result()[result]

    def totals_by_result(self) -> Counter[str]:
        """How many outcomes have each result, in one pass over them."""
        if isinstance(self.outcomes, _Plan):  # (a plan's, without making them)
            return self.outcomes.results()
        return Counter(o.result for o in self.outcomes)

    def totals(self) -> dict[str, int]:
        n = self.totals_by_result()
        return {
            "fixed": n[FIXED],
            "stillFailing": n[FAILING],
            "skipped": n[SKIPPED],
            "errors": n[ERROR],
            "wouldSend": n[WOULD_SEND],
        }

    @property
    def all_fixed(self) -> bool:
        """Every event sent was answered 2xx, and none failed to be sent (true when nothing
        was to be sent)."""
        return not any(o.result in (FAILING, ERROR) for o in self.outcomes)


def acknowledged(code: int | None, answer: str | None) -> bool:
    """A 2xx that is not the reference receiver's answer to the registration's test request
    (an event sent unsigned, or whose headers did not reach it, is taken for one there and
    processed by nobody)."""
    if code is None or not 200 <= code <= 299:
        return False
    return answer is None or signature.TEST_EVENT_ANSWER not in answer


def needs_confirmation(url: str, count: int) -> bool:
    """More than CONFIRM_ABOVE events to a host other than loopback."""
    return count > CONFIRM_ABOVE and not on_this_machine(url)


def request_headers(
    c: Candidate,
    secret: str | None,
    user_agent: str = "atwh",
    now_ms: int | None = None,
    body: bytes | None = None,
) -> dict[str, str]:
    """The headers of a replay: Allthings' signature headers (with a secret), the content
    type, and REPLAY_HEADER naming the original delivery. `body`: the payload, if read."""
    headers = {"content-type": c.content_type, "user-agent": user_agent}
    if secret:
        body = body if body is not None else c.payload()
        headers.update(signature.headers_for(body, secret, now_ms))
        headers["content-type"] = c.content_type
    headers[REPLAY_HEADER] = c.origin
    return headers


def skip_replayed(
    candidates: Sequence[Candidate], ledger: Ledger | None, source: str, target: str
) -> None:
    """Mark the events the ledger says were already answered 2xx at `target`."""
    if ledger is None:
        return
    done = ledger.replayed(source, target, (c.key for c in candidates if c.skip is None))
    for c in candidates:
        if c.skip is None and c.key in done:
            c.skip = ALREADY_REPLAYED


def dry_run(candidates: Sequence[Candidate], target: str) -> Report:
    return Report(target, _Plan(candidates), dry_run=True)


class _Plan(Sequence[Outcome]):
    """A dry run's outcomes, each made as it is read: a plan of half a million events
    holds their candidates, and no Outcome beside each."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = candidates

    def __len__(self) -> int:
        return len(self.candidates)

    @overload
    def __getitem__(self, i: int) -> Outcome: ...
    @overload
    def __getitem__(self, i: slice) -> list[Outcome]: ...
    def __getitem__(self, i: int | slice) -> Outcome | list[Outcome]:
        if isinstance(i, slice):
            return [_planned(c) for c in self.candidates[i]]
        return _planned(self.candidates[i])

    def __iter__(self) -> Iterator[Outcome]:
        return map(_planned, self.candidates)

    def results(self) -> Counter[str]:
        skipped = sum(c.skip is not None for c in self.candidates)
        return Counter({SKIPPED: skipped, WOULD_SEND: len(self.candidates) - skipped})


def _planned(c: Candidate) -> Outcome:
    return Outcome(c, SKIPPED, detail=c.skip) if c.skip else Outcome(c, WOULD_SEND)


def replay(
    candidates: Sequence[Candidate],
    opts: ReplayOptions,
    ledger: Ledger | None = None,
    source: str = "",
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Send every candidate not marked to skip; the report, in the candidates' order.

    Runs its own event loop; on the main thread, SIGINT (Ctrl-C) stops it gently (a second
    one cancels the requests in flight).
    """
    if opts.concurrency < 1:
        raise UsageError("--concurrency: give at least 1")
    return asyncio.run(_Run(candidates, opts, ledger, source, on_outcome).main())


class _NotSent(Exception):
    """The request could not be made at all: nothing reached the target."""


class _Run:
    def __init__(
        self,
        candidates: Sequence[Candidate],
        opts: ReplayOptions,
        ledger: Ledger | None,
        source: str,
        on_outcome: Callable[[Outcome], None] | None,
    ) -> None:
        self.candidates = list(candidates)
        self.opts = opts
        self.ledger = ledger
        self.source = source
        self.on_outcome = on_outcome or (lambda o: None)
        self.outcomes: list[Outcome | None] = [None] * len(self.candidates)
        self.next = 0
        self.next_start = 0.0
        self.run_id = 0
        self.failed_to_connect = 0  # in a row
        self.unreachable = False
        self.stop: asyncio.Event
        self.interrupted = False  # Ctrl-C
        self.abandoned = False  # a second Ctrl-C: the requests in flight are not waited for
        self.sigints = 0  # Ctrl-C seen, before the loop's turn to handle it (_interrupt)
        self.ledger_error: str | None = None
        self.unrecorded: set[str] = set()  # events whose answer the ledger could not keep
        self.workers: list[asyncio.Task[None]] = []
        # every request is made by httpx's sync client, which costs half what its async one
        # does per request (bench/replay_loop_bench.py): --concurrency 1 on the loop's
        # thread, N > 1 in N threads (one client each); the ledger stays on the loop's thread
        self.sender = Sender(opts.timeout, opts.user_agent, max_answer=BODY_KEPT)
        self.pool: ThreadPoolExecutor | None = None

    async def main(self) -> Report:
        loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        if self.ledger is not None:  # (a ledger that cannot be written: before any send)
            self.run_id = self.ledger.start_run(self.source, self.opts.target)
        restore = on_sigint(lambda: self._sigint(loop))
        workers = min(self.opts.concurrency, max(len(self.candidates), 1))
        if workers > 1:
            self.pool = ThreadPoolExecutor(workers, thread_name_prefix="atwh-replay")
        try:
            self.workers = [asyncio.ensure_future(self._work()) for _ in range(workers)]
            await asyncio.gather(*self.workers, return_exceptions=True)
        finally:
            if self.pool is not None:  # abandoned requests end within --timeout, unwaited
                self.pool.shutdown(wait=not self.abandoned, cancel_futures=True)
            if self.pool is None or not self.abandoned:  # (else each thread's client goes
                self.sender.close()  # with its last request, which ends within --timeout)
            restore()
            if self.ledger is not None:
                try:
                    self.ledger.finish_run(self.run_id, self.interrupted)
                except LedgerError as e:
                    self._ledger_failed(e)
        outcomes = []
        unsent = NOT_SENT_UNREACHABLE if self.unreachable else "not sent: interrupted"
        for c, o in zip(self.candidates, self.outcomes, strict=True):
            if o is None:
                if c.skip is not None:
                    o = Outcome(c, SKIPPED, detail=c.skip)
                elif self.ledger_error is not None:
                    o = Outcome(c, ERROR, detail=f"not sent: {self.ledger_error}")
                else:
                    o = Outcome(c, SKIPPED, detail=unsent)
            outcomes.append(o)
        return Report(
            self.opts.target,
            outcomes,
            interrupted=self.interrupted,
            ledger_error=self.ledger_error,
            unreachable=self.failed_to_connect if self.unreachable else 0,
        )

    def _sigint(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ctrl-C, seen at once (core.interrupt: even while a request blocks the loop, whose
        own handler would see it only turns later, with --concurrency 1 after more events
        were claimed and sent): counted, so that no further event is claimed or taken, then
        handled on the loop (_interrupt)."""
        self.sigints += 1
        loop.call_soon_threadsafe(self._interrupt)

    def _interrupt(self) -> None:
        if self.stop.is_set():  # the second Ctrl-C: give up on what is in flight
            self.abandoned = True
            for task in self.workers:
                task.cancel()
        self.interrupted = True
        self.stop.set()

    def _ledger_failed(self, e: LedgerError) -> None:
        """The ledger cannot be written: stop sending (what is not recorded would be sent
        again by the next run, and overlapping runs could not share the work)."""
        if self.ledger_error is None:
            self.ledger_error = e.message
        self.stop.set()

    async def _pace(self) -> bool:
        """Wait for the next start under --rate; False when stopped meanwhile."""
        if not self.opts.rate:
            return not self.stop.is_set()
        now = time.monotonic()
        at = max(now, self.next_start)
        self.next_start = at + 1.0 / self.opts.rate
        if at > now:
            await self._sleep(at - now)
        return not self.stop.is_set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    def _take(self) -> int | None:
        """The index of the next event to send, taken (those marked to skip on the way get
        their outcome); None when there is none left."""
        i = self.next
        while i < len(self.candidates) and self.candidates[i].skip is not None:
            c = self.candidates[i]
            self.outcomes[i] = Outcome(c, SKIPPED, detail=c.skip)
            i += 1
        if i >= len(self.candidates):
            self.next = i
            return None
        self.next = i + 1
        return i

    async def _work(self) -> None:
        ahead: _Ahead | None = None  # the next event, claimed with the last one's answer
        while not self.stop.is_set() and not self.sigints:
            if ahead is None:
                i = self._take()
                if i is None or not await self._pace():
                    return
            else:
                i = ahead.index
            c = self.candidates[i]
            try:
                if ahead is not None and ahead.why is not None:
                    outcome, ahead = Outcome(c, SKIPPED, detail=ahead.why), None
                else:
                    outcome, ahead = await self._event(c, claimed=ahead is not None)
            except asyncio.CancelledError:  # the second Ctrl-C
                self.outcomes[i] = Outcome(
                    c,
                    FAILING,
                    detail="abandoned in flight (a second Ctrl-C): its answer is unknown",
                    tries=1,
                )
                raise
            except LedgerError as e:  # the claim could not be written: not sent
                self._ledger_failed(e)
                outcome, ahead = Outcome(c, ERROR, detail=f"not sent: {e.message}"), None
            except Exception as e:  # whatever it is, this event's result, not the run's end
                outcome, ahead = Outcome(c, ERROR, detail=f"not sent: {_local_error(e)}"), None
            self.outcomes[i] = outcome
            try:
                self.on_outcome(outcome)
            except Exception:  # a progress line that cannot be shown stops nothing
                pass
            if outcome.code is None and (outcome.detail or "").startswith(CANNOT_CONNECT):
                self.failed_to_connect += 1
                if self.failed_to_connect >= UNREACHABLE_AFTER and not self.stop.is_set():
                    self.unreachable = True
                    self.stop.set()
            else:
                self.failed_to_connect = 0
            if self.pool is None:  # (requests made on this thread: the loop's turn)
                await asyncio.sleep(0)  # a Ctrl-C meanwhile is seen now

    async def _event(self, c: Candidate, claimed: bool) -> tuple[Outcome, _Ahead | None]:
        """Claim the event (unless `claimed` with the last one), send it, release it: its
        outcome, and the event this worker sends next when claimed with its last answer."""
        opts, ledger = self.opts, self.ledger
        if ledger is not None and not claimed:
            why = ledger.claim(self.run_id, self.source, opts.target, c.key, opts.lease, opts.force)
            if why is not None:
                return Outcome(c, SKIPPED, detail=why), None
        done = _Done()
        try:
            outcome = await self._send(c, done)
        except _NotSent as e:
            outcome = Outcome(c, ERROR, detail=f"not sent: {e}")
        finally:
            if ledger is not None and not done.released:
                try:
                    ledger.release(self.run_id, self.source, opts.target, c.key)
                except LedgerError as e:
                    self._ledger_failed(e)
        if c.key in self.unrecorded:
            note = f"not recorded in the ledger: {self.ledger_error}"
            outcome.detail = f"{outcome.detail}; {note}" if outcome.detail else note
        return outcome, done.ahead

    async def _send(self, c: Candidate, done: _Done) -> Outcome:
        opts = self.opts
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            code, detail, retry_after, sent_at = await self._try(c)
            answer = detail  # as the ledger keeps it
            if acknowledged(code, detail):
                result = FIXED
            elif code is not None and 200 <= code <= 299:
                result, detail = FAILING, f"answered as a test request, not processed: {detail}"
            elif code in RETRY_STATUSES and tries < opts.max_tries and not self.stop.is_set():
                self._record(c, sent_at, code, answer)
                if retry_after is not None:
                    delay = min(retry_after, opts.retry_after_cap)
                else:
                    delay = opts.backoff * 2 ** (tries - 1) * opts.sleep_jitter.uniform(0.5, 1.0)
                await self._sleep(delay)
                if not self.stop.is_set():
                    continue
                return Outcome(c, FAILING, code, detail, tries, time.monotonic() - started)
            else:
                result = FAILING
            self._record(c, sent_at, code, answer, done)  # the last try
            return Outcome(c, result, code, detail, tries, time.monotonic() - started)

    async def _try(self, c: Candidate) -> tuple[int | None, str | None, float | None, float]:
        """One request: its code (None: no answer), one line of body or the error, its
        Retry-After in seconds, and when it was sent. Raises _NotSent when the request
        could not be made.

        The body is read and signed here, on the loop's thread (an inbox's body comes from
        its database); only the request itself goes to a thread when there are several at
        once. With one at a time it is made on this thread, blocking the loop (nothing else
        runs on it meanwhile; a Ctrl-C is seen once the answer is in, within --timeout).
        Either way it is bounded in time as a whole (endpoint.send.Sender)."""
        opts = self.opts
        try:
            body = c.payload()  # (from the inbox: read now, dropped after)
            headers = request_headers(c, opts.secret, opts.user_agent, body=body)
        except Exception as e:
            raise _NotSent(_local_error(e)) from e
        sent_at = time.time()
        try:
            if self.pool is None:
                answer = self.sender.post(opts.target, body, headers)
            else:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.pool, self.sender.post, opts.target, body, headers
                )
        except Exception as e:  # (a network error is an Answer): nothing reached the target
            raise _NotSent(_local_error(e)) from e
        return (*_read(answer), sent_at)

    def _record(
        self,
        c: Candidate,
        started: float,
        code: int | None,
        detail: str | None,
        done: _Done | None = None,
    ) -> None:
        """One answered try (or one that failed on the network), into the ledger. The last
        of its event (`done`) releases its claim and, unless --rate spaces the starts, claims
        the event this worker sends next, all in one transaction (see `done`)."""
        if self.ledger is None:
            return
        following = None
        if done is not None and not self.opts.rate and not self.stop.is_set() and not self.sigints:
            following = self._take()
        opts = self.opts
        try:
            why = self.ledger.record(
                self.run_id, self.source, c.key, c.event_name, c.origin, opts.target,
                started, code, detail, ok=acknowledged(code, detail),
                release=done is not None,
                claim=None if following is None else self.candidates[following].key,
                lease=opts.lease, force=opts.force,
            )  # fmt: skip
        except LedgerError as e:
            self._ledger_failed(e)
            self.unrecorded.add(c.key)
            return
        if done is not None:
            done.released = True
            if following is not None:
                done.ahead = _Ahead(following, why)


@dataclass(slots=True)
class _Ahead:
    """The event a worker sends next, claimed with its last answer: its index, and why it
    is not to be sent (None: claimed)."""

    index: int
    why: str | None


@dataclass(slots=True)
class _Done:
    """What the last answer of an event did besides: its claim released, the next claimed."""

    released: bool = False
    ahead: _Ahead | None = None


def _read(answer: Answer) -> tuple[int | None, str | None, float | None]:
    """An answer as a replay reports it: its code (None: no answer), one line of its body
    (or the network error), and its Retry-After in seconds."""
    code = answer.code
    if code is None:
        return None, answer.error, None
    line = answer_line(
        answer.body[:BODY_KEPT],
        code,
        answer.header("location"),
        httpx.codes.get_reason_phrase(code),
    )
    return code, line or None, parse_retry_after(answer.header("retry-after"))


def _local_error(e: BaseException) -> str:
    """What went wrong before a request could be made, in one line."""
    what = printable(str(e), 160)
    return f"{type(e).__name__}: {what}" if what else type(e).__name__
