"""The emulator's delivery engine: signs and POSTs each event to every subscribed webhook,
retries failed attempts on the seven-day schedule, and forgets what is older than 30 days."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from atwh import samples, signature
from atwh.emulator.state import (
    DAY,
    HISTORY_DAYS,
    MAX_BODY_KEPT,
    REGISTERABLE_EVENTS,
    RETRY_HORIZON,
    DeliveryRec,
    EventRec,
    State,
    WebhookRec,
    retry_delay,
)

log = logging.getLogger("atwh.emulator.engine")

# Attempts in flight to one webhook. More wait their turn, and their time does not start
# until then: a webhook whose receiver is slow delays its own deliveries, no one else's.
ATTEMPTS_PER_WEBHOOK = 8


@dataclass
class EmulatorSettings:
    token: str | None = None  # None: any non-empty bearer token
    time_scale: float = 1.0
    attempt_timeout: float = samples.ATTEMPT_TIMEOUT
    db: Path | None = None
    history: int = 0
    seed: int | None = None
    log: Callable[[str], None] | None = None
    prune_every: float = 60.0
    # Deliveries are listed newest first, as Allthings does, though its API does not promise
    # it; "shuffled" lists them in a fixed random order instead, to test clients that must
    # not rely on the order.
    order: str = "newest-first"


class Engine:
    """The state and the delivery loop; the HTTP app (`app.Emulator`) is built on it."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.s = settings
        self.state = State(settings.db)
        self.say = settings.log or (lambda line: log.info("%s", line))
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: Any = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        if settings.history:
            from atwh.emulator.history import populate

            populate(self.state, settings.history, settings.seed)

    # -- input --------------------------------------------------------------------------

    def validate_webhook_input(self, webhook: dict[str, Any], partial: bool) -> str | None:
        known = {name for _, name, _ in REGISTERABLE_EVENTS}
        events = webhook.get("events")
        if events is not None or not partial:
            if not events:
                return "A webhook needs at least one event."
            unknown = [str(e) for e in events if e not in known]
            if unknown:
                return f"Not a registerable event: {', '.join(unknown)}."
        urns = webhook.get("urns")
        if (urns is not None or not partial) and not urns:
            return "A webhook needs at least one URN."
        return None

    async def check_endpoint(self, url: str) -> str | None:
        """Allthings checks that a webhook's URL answers 200 to an unsigned test request."""
        import httpx

        from atwh.samples import TEST_EVENT_BODY as body  # what `webhooks ping` sends

        try:
            status, _, _ = await self._send(url, body, {"content-type": "application/json"})
        except TimeoutError:
            return f"The URL did not answer the test request in {self.s.attempt_timeout:g}s."
        except httpx.HTTPError as e:
            return f"The URL did not answer the test request: {type(e).__name__}."
        if status != 200:
            return f"The URL answered the test request with {status}, not 200."
        return None

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        """POST `body`: the answer's status, headers and first MAX_BODY_KEPT bytes.

        The whole of it (connecting, sending, the answer's head and what is kept of its
        body) takes at most `attempt_timeout`, or TimeoutError: httpx's own timeout bounds
        each read, which a receiver trickling a byte a second never trips."""
        async with asyncio.timeout(self.s.attempt_timeout):
            async with self._http().stream("POST", url, content=body, headers=headers) as answer:
                kept = bytearray()
                async for chunk in answer.aiter_bytes():
                    kept += chunk
                    if len(kept) >= MAX_BODY_KEPT:
                        break
                return answer.status_code, answer, bytes(kept[:MAX_BODY_KEPT])

    def remove_webhook(self, webhook_id: str) -> None:
        """Forget a webhook, and its attempt slots with it (attempts under way keep theirs)."""
        self.state.remove_webhook(webhook_id)
        self._slots.pop(webhook_id, None)

    def _http(self) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.s.attempt_timeout,
                follow_redirects=False,
                # no cap on connections (each webhook has its own, ATTEMPTS_PER_WEBHOOK):
                # a shared cap let slow receivers fill it and time out everyone's attempts
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
                headers={
                    "user-agent": samples.USER_AGENT,
                    "accept-encoding": "identity",  # what is kept of an answer is its bytes
                },
            )
        return self._client

    # -- events and deliveries ----------------------------------------------------------

    def emit(self, name: str, urn: str, data: Any) -> tuple[EventRec, int]:
        now = time.time()
        event_id = samples.new_event_id()
        payload = samples.event_body(name, data, event_id, now, urn).decode()
        event = EventRec(event_id, now, name, urn, payload)
        self.state.put(event)
        targets = [
            h
            for h in self.state.webhooks.values()
            if h.enabled and name in h.events and any(fnmatchcase(urn, u) for u in h.urns)
        ]
        for hook in targets:
            self._start(hook, event)
        return event, len(targets)

    def _start(self, hook: WebhookRec, event: EventRec) -> None:
        now = time.time()
        rec = DeliveryRec(str(uuid.uuid4()), now, event.id, hook.id, first_attempt=now)
        self.state.put(rec)
        self._spawn(self._attempt(rec))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, rec: DeliveryRec) -> None:
        import httpx

        hook = self.state.webhooks.get(rec.webhook_id)
        event = self.state.events.get(rec.event_id)
        if hook is None or event is None:
            rec.status = "FAILED"
            self.state.put(rec)
            return
        body = event.payload.encode()
        answer: str
        slot = self._slots.get(hook.id)
        if slot is None:
            slot = self._slots[hook.id] = asyncio.Semaphore(ATTEMPTS_PER_WEBHOOK)
        async with slot:
            headers = signature.headers_for(body, hook.secret)
            started = time.time()
            try:
                status, response, kept = await self._send(hook.url, body, headers)
                rec.result = {
                    "statusCode": status,
                    "body": kept.decode("utf-8", errors="replace"),
                    "message": response.reason_phrase or None,
                    "headers": [{"name": k, "value": v} for k, v in response.headers.items()],
                }
                ok = 200 <= status <= 299
                answer = str(status)
            except (TimeoutError, httpx.TimeoutException):
                rec.result, ok = None, False
                answer = f"timeout after {self.s.attempt_timeout:g}s"
            except httpx.HTTPError as e:
                rec.result, ok, answer = None, False, f"no answer ({type(e).__name__})"
        rec.delivered = time.time() if rec.result is not None else None
        rec.status = "SUCCESS" if ok else "FAILED"
        note = ""
        if not ok:
            delay = retry_delay(rec.attempt)
            if rec.emulated_elapsed + delay <= RETRY_HORIZON:
                rec.next_retry_at = time.time() + delay / self.s.time_scale
                note = f"; next retry in {_human(delay)}"
                if self.s.time_scale != 1:
                    note += (
                        f" ({delay / self.s.time_scale:.3g}s at time scale {self.s.time_scale:g})"
                    )
                self._spawn(self._retry_later(rec))
            else:
                note = "; gave up after 7 days of retries"
        self.state.put(rec)
        self.say(
            f"{event.name} {event.id[:8]} attempt {rec.attempt} → {hook.url}: {answer} "
            f"in {(time.time() - started) * 1000:.0f}ms{note}"
        )

    async def _retry_later(self, failed: DeliveryRec) -> None:
        assert failed.next_retry_at is not None
        await asyncio.sleep(max(failed.next_retry_at - time.time(), 0))
        if failed.retry_id is not None:
            return
        nxt = DeliveryRec(
            str(uuid.uuid4()),
            time.time(),
            failed.event_id,
            failed.webhook_id,
            attempt=failed.attempt + 1,
            first_attempt=failed.first_attempt,
            emulated_elapsed=failed.emulated_elapsed + retry_delay(failed.attempt),
        )
        failed.retry_id = nxt.id
        failed.next_retry_at = None
        self.state.put(nxt)
        self.state.put(failed)
        await self._attempt(nxt)

    def pending(self) -> int:
        """Attempts under way or scheduled."""
        return len(self._tasks)

    async def _prune_loop(self) -> None:
        while True:
            gone = self.state.prune(time.time() - HISTORY_DAYS * DAY)
            if gone:
                self.say(f"forgot {gone} deliveries older than {HISTORY_DAYS} days")
            await asyncio.sleep(self.s.prune_every)

    async def startup(self) -> None:
        self._loop = asyncio.get_running_loop()
        for rec in list(self.state.deliveries.values()):  # after a restart, with --db
            if rec.status == "PENDING":
                self._spawn(self._attempt(rec))
            elif rec.next_retry_at is not None and rec.retry_id is None:
                self._spawn(self._retry_later(rec))
        self._spawn(self._prune_loop())

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        if self.state.conn is not None:
            self.state.conn.close()


def _human(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < DAY:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / DAY:.0f}d"
