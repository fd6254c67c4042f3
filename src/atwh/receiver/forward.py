"""`atwh serve --forward-to`: relays acknowledged requests from the inbox to the user's app.

The forwarder's SQLite work runs in a thread of its own, never on the event loop that
answers requests. Nothing one record does stops it: any error is recorded on that record,
which is tried again later, and the forwarder goes on with the others.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from atwh import signature
from atwh.errors import printable
from atwh.receiver.inbox import Inbox, InboxRecord
from atwh.receiver.settings import ReceiverSettings

log = logging.getLogger("atwh.receiver.forward")
T = TypeVar("T")

FORWARDED_BY = "x-atwh-forwarded-by"  # the instance tokens of the receivers it went through
BATCH = 32
LOOP_DETECTED = 508  # what atwh serve answers a forward of its own that came back
LEASE_MARGIN = 5.0  # a claimed record is due again after the timeout and this, if unsaved
Result = tuple[int | None, str | None, float | None]  # a forward's code, error, next attempt


class Forwarder:
    """Relays acknowledged requests to the user's app, from the inbox, until each gets a 2xx."""

    def __init__(
        self,
        s: ReceiverSettings,
        inbox: Inbox,
        notify: Callable[[str], None],
    ) -> None:
        self.s = s
        self.inbox = inbox
        self.notify = notify
        self.instance = secrets.token_hex(8)  # in x-atwh-forwarded-by: a loop is a 508
        self.wake = asyncio.Event()
        self.in_flight: set[int] = set()
        self.rng = random.Random()
        self._client: Any = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="atwh-forward")
        # results that could not be saved yet (record id → code, error, next attempt):
        # saved before anything new is claimed, so a record is not forwarded again meanwhile
        self._unsaved: dict[int, Result] = {}

    async def _in_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def _save(self, record_id: int, result: Result) -> None:
        """Save a forward's result in the db thread. A stop that cancels the wait does not
        cancel the save: it was queued, and runs there before _hand_back's release (one
        thread, first in first out). Without the shield, a stop dropped the queued saves of
        the forwards it cut short while they were no longer in flight, so their claims were
        neither saved nor released: a restarted receiver waited out their lease."""
        job = self._db.submit(self.inbox.forward_result, record_id, *result)
        await asyncio.shield(asyncio.wrap_future(job))

    async def run(self) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.s.forward_timeout) as client:
                self._client = client
                failures = 0
                while True:
                    try:
                        busy = await self._step()
                        failures = 0
                    except Exception as e:  # the inbox is locked, full or gone: later
                        failures += 1
                        wait = self._delay(failures)
                        log.error("forwarding paused %.1fs: the inbox: %s", wait, printable(e))
                        await asyncio.sleep(wait)
                        continue
                    if not busy:
                        await self._idle()
        finally:  # stopping: what was claimed and not finished is due again at once
            self._hand_back()
            self._db.shutdown(wait=True)

    def _hand_back(self) -> None:
        """Save the results not saved yet, and release the claims of the forwards cut short,
        so that the next receiver on this inbox does not wait for their lease."""
        try:
            for record_id, result in list(self._unsaved.items()):
                self._db.submit(self.inbox.forward_result, record_id, *result).result(5)
                del self._unsaved[record_id]
            # in the db thread, after any claim still running there: what it claimed too
            self._db.submit(self._release_in_flight).result(5)
        except Exception as e:  # their lease runs out on its own
            log.warning("forwarding: could not hand back what was in flight: %s", printable(e))

    async def _step(self) -> bool:
        """Save what is unsaved, then forward what is due; whether there was anything."""
        for record_id, result in list(self._unsaved.items()):
            try:
                await self._save(record_id, result)
            except asyncio.CancelledError:  # queued in the db thread all the same: not twice,
                del self._unsaved[record_id]  # and released after it by _hand_back
                self.in_flight.add(record_id)
                raise
            del self._unsaved[record_id]
        now = time.time()
        lease = now + self.s.forward_timeout + LEASE_MARGIN
        due = await self._in_db(self._claim, now, lease)
        await asyncio.gather(*(self._forward(r) for r in due))
        return bool(due)

    def _claim(self, now: float, lease: float) -> list[InboxRecord]:
        """In the db thread: claim what is due, in flight from then on (a stop that cuts
        the claim short still knows what it claimed)."""
        claimed = self.inbox.claim_forwards(now, lease, BATCH)
        self.in_flight.update(r.id for r in claimed)
        return claimed

    def _release_in_flight(self) -> None:
        if self.in_flight:
            self.inbox.release_claims(sorted(self.in_flight), time.time())

    async def _idle(self) -> None:
        next_at = await self._in_db(self.inbox.next_forward_at)
        wait = 1.0 if next_at is None else min(max(next_at - time.time(), 0.01), 1.0)
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=wait)
        except TimeoutError:
            pass

    def _delay(self, attempt: int) -> float:
        delay = min(self.s.forward_max_delay, 0.25 * 2 ** min(attempt, 20))
        return self.rng.uniform(delay / 2, delay)

    def headers(self, r: InboxRecord) -> list[tuple[bytes, bytes]]:
        """The headers of a forward, as bytes: stored values go on byte for byte.

        A verified request is re-signed (--forward-secret, else --secret) with a fresh
        timestamp. Any other signed one goes on with its own signature and timestamp, for
        the app to verify (never re-signed: that would make an old replay look fresh). A
        test delivery goes on unsigned, as it came."""
        original = {n.lower(): v for n, v in r.headers}
        chain = ",".join(filter(None, (original.get(FORWARDED_BY), self.instance)))
        out = [
            (b"content-type", _raw(original.get("content-type", "application/json"))),
            (b"x-atwh-inbox-id", str(r.id).encode()),
        ]
        if chain:
            out.append((FORWARDED_BY.encode(), _raw(chain)))
        if r.verdict == "test":
            return out
        if r.verdict == "verified" and self.s.secret:
            fresh = signature.headers_for(r.body, self.s.forward_secret or self.s.secret)
            return out + [(k.encode(), v.encode()) for k, v in fresh.items()]
        for name in (signature.SIGNATURE_HEADER, signature.TIMESTAMP_HEADER):
            if name in original:
                out.append((name.encode(), _raw(original[name])))
        return out

    async def _forward(self, r: InboxRecord) -> None:
        """One attempt at one record. Never raises: whatever fails is that record's error."""
        import httpx

        assert self.s.forward_to is not None
        code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.s.forward_timeout):  # the whole attempt, too
                response = await self._client.post(
                    self.s.forward_to, content=r.body, headers=self.headers(r)
                )
            code = response.status_code
            if not 200 <= code <= 299:
                error = f"HTTP {code}"
        except (httpx.HTTPError, TimeoutError) as e:
            error = failure_text(e, self.s.forward_to, self.s.forward_timeout)
        except Exception as e:  # atwh could not even send it (a header httpx refuses, a bug)
            error = f"could not send it: {type(e).__name__}: {printable(e, 200)}"
            log.error("forward of #%d failed: %s", r.id, error)
        attempt = r.forward_attempts + 1
        next_at = None if error is None else time.time() + self._delay(attempt)
        if code == LOOP_DETECTED:  # it came back to an atwh serve that sent it: never again
            error = "HTTP 508: a forwarding loop (the request came back to atwh serve)"
            next_at = None
        try:
            await self._save(r.id, (code, error, next_at))
        except Exception as e:  # kept, and saved before anything else is claimed
            self._unsaved[r.id] = (code, error, next_at)
            log.error("could not record the forward of #%d: %s", r.id, printable(e, 200))
        # (cancelled: the save still runs, and the record stays in flight, so that
        # _hand_back releases it after the save: due at once for the next receiver)
        self.in_flight.discard(r.id)
        name = printable(r.event_name or "", 60)
        if error is None:
            self.notify(f"forwarded #{r.id} {name} → {code} (attempt {attempt})")
        else:
            then = "not retried" if next_at is None else f"next in {next_at - time.time():.1f}s"
            self.notify(f"forward of #{r.id} {name} failed: {error} (attempt {attempt}, {then})")


def _raw(value: str) -> bytes:
    """A stored header value as the bytes it came as (stored headers are latin-1 text)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def failure_text(e: BaseException, url: str, timeout: float) -> str:
    """Why a forward got no answer, as a person would say it:
    `cannot reach 127.0.0.1:3000: connection refused`."""
    import httpx

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.hostname}:{port}"
    if isinstance(e, httpx.ConnectTimeout):
        return f"cannot reach {where}: no connection within {timeout:g}s"
    if isinstance(e, httpx.TimeoutException | TimeoutError):
        return f"{where} did not answer within {timeout:g}s"
    if isinstance(e, httpx.ConnectError):
        return f"cannot reach {where}: {_os_reason(e)}"
    if isinstance(e, httpx.RemoteProtocolError):
        return f"{where} closed the connection without a valid answer"
    if isinstance(e, httpx.TooManyRedirects | httpx.DecodingError):
        return f"{where} answered with something unreadable: {printable(e, 200)}"
    detail = printable(e, 200) or type(e).__name__
    return f"forwarding to {where} failed: {detail}"


def _os_reason(e: BaseException) -> str:
    """The operating system's words for a failed connection (`connection refused`)."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            break
        code = seen.errno if isinstance(seen, OSError) else None
        if code is not None and code in errno.errorcode:
            return os.strerror(code).lower()
        if isinstance(seen, OSError) and seen.strerror:
            return str(seen.strerror).lower()
        seen = seen.__cause__ or seen.__context__
    text = printable(e, 200)
    return (text[:1].lower() + text[1:]) if text else "connection failed"


def loops_back(url: str, listening: tuple[Any, ...]) -> bool:
    """Whether `url` reaches the receiver listening at `listening` (a socket's address):
    forwarding there would send every event round for ever."""
    import ipaddress
    import socket

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if port != listening[1] or not parts.hostname:
        return False
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        ours = ipaddress.ip_address(listening[0])
    except (OSError, ValueError):
        return False
    local: set[Any] = set()
    if ours.is_unspecified:  # every address of this host reaches it
        try:
            names = socket.gethostbyname_ex(socket.gethostname())[2]
            local = {ipaddress.ip_address(a) for a in names}
        except (OSError, ValueError):
            pass
    for *_, address in infos:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if ip == ours or (ip.is_unspecified and ours.is_loopback):
            return True
        if ours.is_unspecified and (ip.is_loopback or ip.is_unspecified or ip in local):
            return True
    return False
