"""`atwh serve --forward-to`: relays acknowledged requests from the inbox to the user's app."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from atwh import signature
from atwh.receiver.inbox import Inbox, InboxRecord
from atwh.receiver.settings import ReceiverSettings

log = logging.getLogger("atwh.receiver.forward")


class Forwarder:
    """Relays acknowledged requests to the user's app, from the inbox, until each gets a 2xx."""

    def __init__(self, s: ReceiverSettings, inbox: Inbox, notify: Callable[[str], None]) -> None:
        self.s = s
        self.inbox = inbox
        self.notify = notify
        self.wake = asyncio.Event()
        self.in_flight: set[int] = set()
        self.rng = random.Random()
        self._client: Any = None

    async def run(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=self.s.forward_timeout) as client:
            self._client = client
            while True:
                due = [
                    r for r in self.inbox.forward_due(time.time(), 32) if r.id not in self.in_flight
                ]
                if due:
                    for r in due:
                        self.in_flight.add(r.id)
                    await asyncio.gather(*(self._forward(r) for r in due))
                    continue
                next_at = self.inbox.next_forward_at()
                wait = 1.0 if next_at is None else min(max(next_at - time.time(), 0.01), 1.0)
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=wait)
                except TimeoutError:
                    pass

    def headers(self, r: InboxRecord) -> dict[str, str]:
        original = {n.lower(): v for n, v in r.headers}
        secret = self.s.forward_secret or self.s.secret
        headers = {"content-type": original.get("content-type", "application/json")}
        if r.verdict == "test":  # forwarded as it came: a test delivery, unsigned
            return headers
        if secret:
            headers.update(signature.headers_for(r.body, secret))
        elif signature.SIGNATURE_HEADER in original:
            headers[signature.SIGNATURE_HEADER] = original[signature.SIGNATURE_HEADER]
            headers[signature.TIMESTAMP_HEADER] = str(int(time.time() * 1000))
        headers["x-atwh-inbox-id"] = str(r.id)
        return headers

    async def _forward(self, r: InboxRecord) -> None:
        import httpx

        assert self.s.forward_to is not None
        code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                self.s.forward_to, content=r.body, headers=self.headers(r)
            )
            code = response.status_code
            if not 200 <= code <= 299:
                error = f"HTTP {code}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        attempt = r.forward_attempts + 1
        next_at = None
        if error is not None:
            delay = min(self.s.forward_max_delay, 0.25 * 2 ** min(attempt, 20))
            next_at = time.time() + self.rng.uniform(delay / 2, delay)
        try:
            self.inbox.forward_result(r.id, code, error, next_at)
        except sqlite3.Error as e:
            log.error("could not record a forward result: %s", e)
        finally:
            self.in_flight.discard(r.id)
        if error is None:
            self.notify(f"forwarded #{r.id} {r.event_name or ''} → {code} (attempt {attempt})")
        else:
            wait = (next_at or time.time()) - time.time()
            self.notify(
                f"forward of #{r.id} {r.event_name or ''} failed: {error} "
                f"(attempt {attempt}, next in {wait:.1f}s)"
            )
