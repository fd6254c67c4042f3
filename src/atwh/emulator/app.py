"""An emulator of the Allthings Webhooks API that really delivers.

It serves the published schema (queries/webhooks-schema.graphql) with graphql-core, plus
one emulator-only mutation, `emitEvent`. Events go to every enabled webhook subscribed
to them, signed as Allthings signs them; failed attempts are retried with exponential
back-off for up to seven days (each delay divided by `time_scale`), each attempt a
WebhookDelivery linked to the next by `retry`. State lives in memory, or in SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from atwh import signature
from atwh.client import queries

log = logging.getLogger("atwh.emulator.app")

DAY = 86400.0
RETRY_HORIZON = 7 * DAY
HISTORY_DAYS = 30
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_BODY_KEPT = 64 * 1024
EVENT_NAME = re.compile(r"^[a-z][a-z.-]*[a-z]$")
URN = re.compile(r"^urn:allthings:[a-z-]+:[A-Za-z0-9*._-]+(:[A-Za-z0-9*._-]+)*:?\*?$")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

REGISTERABLE_EVENTS = [
    ("ticket", "ticket.created", "A ticket was created."),
    ("ticket", "ticket.updated", "A ticket changed: status, assignee, category or fields."),
    ("ticket", "ticket.deleted", "A ticket was deleted."),
    ("ticket", "ticket-comment.created", "Someone commented on a ticket."),
    ("community-article", "community-article.published", "A community article went live."),
    ("booking", "booking.created", "A booking was made."),
    ("booking", "booking.cancelled", "A booking was cancelled."),
    ("user", "user.registered", "A user registered in an app."),
]


def retry_delay(attempt: int) -> float:
    """Seconds (unscaled) to wait after the `attempt`-th failed attempt: 1m, 3m, 9m, …, 1d."""
    return min(60.0 * 3 ** (attempt - 1), DAY)


def iso_now(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- state ----------------------------------------------------------------------------


@dataclass
class WebhookRec:
    id: str
    created: float
    events: list[str]
    urns: list[str]
    url: str
    enabled: bool
    secret: str
    description: str | None = None


@dataclass
class EventRec:
    id: str
    created: float
    name: str
    urn: str
    payload: str  # the exact JSON body delivered


@dataclass
class DeliveryRec:
    id: str
    created: float
    event_id: str
    webhook_id: str
    attempt: int = 1
    delivered: float | None = None
    status: str = "PENDING"
    result: dict[str, Any] | None = None
    retry_id: str | None = None
    next_retry_at: float | None = None  # scheduled, not yet made (real time)
    first_attempt: float = 0.0  # when the chain started, for the 7-day horizon
    emulated_elapsed: float = 0.0  # unscaled seconds of back-off so far


class State:
    """Webhooks, events and deliveries; in memory, written through to SQLite with `db`."""

    def __init__(self, db: Path | None = None) -> None:
        self.webhooks: dict[str, WebhookRec] = {}
        self.events: dict[str, EventRec] = {}
        self.deliveries: dict[str, DeliveryRec] = {}
        self.by_webhook: dict[str, list[str]] = {}  # delivery ids, oldest first
        self._unsorted: set[str] = set()
        self.conn: sqlite3.Connection | None = None
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS objects (kind TEXT, id TEXT, data TEXT, "
                "PRIMARY KEY (kind, id))"
            )
            self._load()

    def _load(self) -> None:
        assert self.conn is not None
        kinds = {"webhook": WebhookRec, "event": EventRec, "delivery": DeliveryRec}
        for kind, _, data in self.conn.execute("SELECT kind, id, data FROM objects ORDER BY rowid"):
            rec = kinds[kind](**json.loads(data))
            self._put(rec, save=False)
        self._unsorted.update(self.by_webhook)

    def _save(self, rec: WebhookRec | EventRec | DeliveryRec) -> None:
        if self.conn is None:
            return
        kind = {WebhookRec: "webhook", EventRec: "event", DeliveryRec: "delivery"}[type(rec)]
        self.conn.execute(
            "INSERT INTO objects (kind, id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data",
            (kind, rec.id, json.dumps(asdict(rec))),
        )

    def _put(self, rec: WebhookRec | EventRec | DeliveryRec, save: bool = True) -> None:
        if isinstance(rec, WebhookRec):
            self.webhooks[rec.id] = rec
            self.by_webhook.setdefault(rec.id, [])
        elif isinstance(rec, EventRec):
            self.events[rec.id] = rec
        else:
            if rec.id not in self.deliveries:
                ids = self.by_webhook.setdefault(rec.webhook_id, [])
                ids.append(rec.id)
                if len(ids) > 1 and self.deliveries[ids[-2]].created > rec.created:
                    self._unsorted.add(rec.webhook_id)  # sorted when next read
            self.deliveries[rec.id] = rec
        if save:
            self._save(rec)

    put = _put

    def delivery_ids(self, webhook_id: str) -> list[str]:
        """A webhook's delivery ids, oldest first."""
        ids = self.by_webhook.get(webhook_id, [])
        if webhook_id in self._unsorted:
            ids.sort(key=lambda i: (self.deliveries[i].created, i))
            self._unsorted.discard(webhook_id)
        return ids

    def remove_webhook(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)
        if self.conn is not None:
            self.conn.execute(
                "DELETE FROM objects WHERE kind = 'webhook' AND id = ?", (webhook_id,)
            )

    def prune(self, older_than: float) -> int:
        """Forget deliveries created before `older_than`: history is kept for 30 days."""
        gone = [d.id for d in self.deliveries.values() if d.created < older_than]
        for i in gone:
            d = self.deliveries.pop(i)
            ids = self.by_webhook.get(d.webhook_id)
            if ids is not None and i in ids:
                ids.remove(i)
        if self.conn is not None and gone:
            self.conn.executemany(
                "DELETE FROM objects WHERE kind = 'delivery' AND id = ?", [(i,) for i in gone]
            )
        return len(gone)


# -- GraphQL views ----------------------------------------------------------------------


def _cursor(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(f"delivery:{delivery_id}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    from graphql import GraphQLError

    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from None
    kind, _, value = text.partition(":")
    if kind != "delivery" or not value:
        raise GraphQLError(f"Invalid cursor: {cursor!r}")
    return value


def _page_size(first: int | None) -> int:
    from graphql import GraphQLError

    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        raise GraphQLError("Argument 'first' must not be negative.")
    return min(first, MAX_PAGE)


class EventView:
    def __init__(self, rec: EventRec) -> None:
        self.id = rec.id
        self.createdDate = iso_now(rec.created)
        self.name = rec.name
        self.urn = rec.urn
        self.payload = rec.payload


class DeliveryView:
    def __init__(self, emu: Emulator, rec: DeliveryRec) -> None:
        self._emu = emu
        self._rec = rec
        self.id = rec.id
        self.createdDate = iso_now(rec.created)
        self.deliveryDate = iso_now(rec.delivered) if rec.delivered is not None else None
        self.status = rec.status
        self.result = rec.result

    def event(self, info: Any) -> EventView:
        return EventView(self._emu.state.events[self._rec.event_id])

    def retry(self, info: Any) -> DeliveryView | None:
        rec = self._emu.state.deliveries.get(self._rec.retry_id or "")
        return DeliveryView(self._emu, rec) if rec else None

    def webhook(self, info: Any) -> WebhookView:
        hook = self._emu.state.webhooks.get(self._rec.webhook_id)
        if hook is None:  # removed since: still answer with what it was
            hook = WebhookRec(
                self._rec.webhook_id, 0, [], [], "https://removed.invalid/", False, ""
            )
        return WebhookView(self._emu, hook)


class WebhookView:
    def __init__(self, emu: Emulator, rec: WebhookRec) -> None:
        self._emu = emu
        self._rec = rec
        self.id = rec.id
        self.createdDate = iso_now(rec.created)
        self.events = rec.events
        self.urns = rec.urns
        self.url = rec.url
        self.enabled = rec.enabled
        self.secret = rec.secret
        self.description = rec.description

    def deliveries(self, info: Any, first: int | None = None, after: str | None = None) -> dict:
        ids = self._emu.state.delivery_ids(self._rec.id)
        newest_first = ids[::-1]
        start = 0
        if after is not None:
            anchor = _uncursor(after)
            try:
                start = newest_first.index(anchor) + 1
            except ValueError:
                from graphql import GraphQLError

                raise GraphQLError(f"Invalid cursor: {after!r} (that delivery is gone)") from None
        size = _page_size(first)
        chunk = newest_first[start : start + size]
        nodes = [DeliveryView(self._emu, self._emu.state.deliveries[i]) for i in chunk]
        return {
            "edges": [{"cursor": _cursor(n.id), "node": n} for n in nodes],
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": start + len(chunk) < len(newest_first),
                "hasPreviousPage": start > 0,
                "startCursor": _cursor(chunk[0]) if chunk else None,
                "endCursor": _cursor(chunk[-1]) if chunk else None,
            },
            "totalCount": len(newest_first),
        }


def _check_url(url: str) -> str | None:
    """Why an URL is not acceptable, or None. https only, http for loopback hosts."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return f"Invalid URL: {url!r}"
    if parsed.scheme == "https" and parsed.host:
        return None
    if parsed.scheme == "http" and parsed.host in LOOPBACK:
        return None
    return f"URL must be https (http only for loopback hosts): {url!r}"


def _result(code: str, success: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "success": success, "message": message, **extra}


class Root:
    """Query and mutation fields."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    # queries
    def registerableWebhookEvents(self, info: Any) -> list[dict[str, str]]:
        return [
            {"namespace": ns, "eventName": name, "description": text}
            for ns, name, text in REGISTERABLE_EVENTS
        ]

    def webhook(self, info: Any, id: str) -> WebhookView | None:
        rec = self.emu.state.webhooks.get(id)
        return WebhookView(self.emu, rec) if rec else None

    def webhooks(
        self, info: Any, filter: dict[str, Any], first: int | None = None, after: str | None = None
    ) -> dict[str, Any]:
        from graphql import GraphQLError

        app_id, project_id = filter.get("appId"), filter.get("projectId")
        if not app_id and not project_id:
            raise GraphQLError("WebhooksFilter needs appId or projectId.")
        wanted = (
            f"urn:allthings:app:{app_id}:" if app_id else f"urn:allthings:project:{project_id}:"
        )
        hooks = sorted(
            (
                h
                for h in self.emu.state.webhooks.values()
                if any((u + ":").startswith(wanted) or u.startswith(wanted) for u in h.urns)
            ),
            key=lambda h: (h.created, h.id),
        )
        start = 0
        if after is not None:
            ids = [h.id for h in hooks]
            anchor = (
                base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
                .decode(errors="replace")
                .partition(":")[2]
            )
            if anchor not in ids:
                raise GraphQLError(f"Invalid cursor: {after!r}")
            start = ids.index(anchor) + 1
        chunk = hooks[start : start + _page_size(first)]

        def cur(h: WebhookRec) -> str:
            return base64.urlsafe_b64encode(f"webhook:{h.id}".encode()).decode().rstrip("=")

        nodes = [WebhookView(self.emu, h) for h in chunk]
        return {
            "edges": [{"cursor": cur(h), "node": n} for h, n in zip(chunk, nodes, strict=True)],
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": start + len(chunk) < len(hooks),
                "hasPreviousPage": start > 0,
                "startCursor": cur(chunk[0]) if chunk else None,
                "endCursor": cur(chunk[-1]) if chunk else None,
            },
            "totalCount": len(hooks),
        }

    # mutations
    async def registerWebhook(self, info: Any, webhook: dict[str, Any]) -> dict[str, Any]:
        problem = self.emu.validate_webhook_input(webhook, partial=False)
        if problem:
            return _result("BAD_USER_INPUT", False, problem, webhook=None)
        check = await self.emu.check_endpoint(webhook["url"])
        if check:
            return _result("URL_CHECK_FAILED", False, check, webhook=None)
        rec = WebhookRec(
            id=str(uuid.uuid4()),
            created=time.time(),
            events=list(dict.fromkeys(webhook["events"])),
            urns=list(dict.fromkeys(webhook["urns"])),
            url=webhook["url"],
            enabled=webhook.get("enabled") is not False,
            secret=secrets.token_hex(32),
            description=webhook.get("description"),
        )
        self.emu.state.put(rec)
        log.info("registered webhook %s → %s", rec.id, rec.url)
        return _result("CREATED", True, "Webhook registered.", webhook=WebhookView(self.emu, rec))

    async def updateWebhook(self, info: Any, id: str, webhook: dict[str, Any]) -> dict[str, Any]:
        rec = self.emu.state.webhooks.get(id)
        if rec is None:
            return _result("NOT_FOUND", False, f"No webhook {id}.", webhook=None)
        problem = self.emu.validate_webhook_input(webhook, partial=True)
        if problem:
            return _result("BAD_USER_INPUT", False, problem, webhook=None)
        if webhook.get("url") and webhook["url"] != rec.url:
            check = await self.emu.check_endpoint(webhook["url"])
            if check:
                return _result("URL_CHECK_FAILED", False, check, webhook=None)
            rec.url = webhook["url"]
        for key in ("events", "urns"):
            if webhook.get(key) is not None:
                setattr(rec, key, list(dict.fromkeys(webhook[key])))
        if webhook.get("enabled") is not None:
            rec.enabled = bool(webhook["enabled"])
        if "description" in webhook:
            rec.description = webhook["description"]
        self.emu.state.put(rec)
        return _result("UPDATED", True, "Webhook updated.", webhook=WebhookView(self.emu, rec))

    def removeWebhook(self, info: Any, id: str) -> dict[str, Any]:
        rec = self.emu.state.webhooks.get(id)
        if rec is None:
            return _result("NOT_FOUND", False, f"No webhook {id}.", webhook=None)
        self.emu.state.remove_webhook(id)
        return _result("REMOVED", True, "Webhook removed.", webhook=WebhookView(self.emu, rec))

    def emitEvent(self, info: Any, name: str, urn: str, data: Any = None) -> dict[str, Any]:
        event, count = self.emu.emit(name, urn, data)
        return _result(
            "EMITTED",
            True,
            f"Delivering to {count} webhook{'s' * (count != 1)}.",
            event=EventView(event),
            webhooks=count,
        )


# -- the emulator -----------------------------------------------------------------------


def _scalar(schema: Any, name: str, check: Callable[[Any], Any]) -> None:
    scalar = schema.type_map[name]

    def parse_value(value: Any) -> Any:
        return check(value)

    def parse_literal(node: Any, variables: Any = None, *_: Any) -> Any:
        from graphql import value_from_ast_untyped

        return check(value_from_ast_untyped(node, variables))

    scalar.parse_value = parse_value
    scalar.parse_literal = parse_literal
    # graphql-core 3.3 coerces inputs through these instead of parse_value/parse_literal
    scalar.coerce_input_value = parse_value
    scalar.coerce_input_literal = parse_literal


def _event_name(value: Any) -> str:
    if not isinstance(value, str) or not EVENT_NAME.match(value):
        raise TypeError(f"EventName must be lowercase letters, dots and hyphens: {value!r}")
    return value


def _urn(value: Any) -> str:
    if not isinstance(value, str) or not URN.match(value):
        raise TypeError(f"Urn must look like urn:allthings:app:<id>:*, not {value!r}")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("Url must be a string")
    problem = _check_url(value)
    if problem:
        raise TypeError(problem)
    return value


def _datetime(value: Any) -> str:
    from atwh.client.model import parse_datetime

    if parse_datetime(value) is None:
        raise TypeError(f"DateTime must be ISO 8601: {value!r}")
    return str(value)


def build_schema() -> Any:
    import graphql

    sdl = queries.load(queries.SCHEMA_FILE) + "\n" + queries.load(queries.EMULATOR_SCHEMA_FILE)
    schema = graphql.build_schema(sdl)
    _scalar(schema, "EventName", _event_name)
    _scalar(schema, "Urn", _urn)
    _scalar(schema, "Url", _url)
    _scalar(schema, "DateTime", _datetime)
    schema.type_map["MutationResult"].resolve_type = lambda value, info, t: (  # type: ignore[attr-defined]
        "WebhookMutationResult" if "webhook" in value else "EmitEventResult"
    )
    schema.type_map["Node"].resolve_type = lambda value, info, t: (  # type: ignore[attr-defined]
        "WebhookDelivery"
        if isinstance(value, DeliveryView)
        else "Event"
        if isinstance(value, EventView)
        else "Webhook"
    )
    return schema


@dataclass
class EmulatorSettings:
    token: str | None = None  # None: any non-empty bearer token
    time_scale: float = 1.0
    attempt_timeout: float = 10.0
    db: Path | None = None
    history: int = 0
    seed: int | None = None
    log: Callable[[str], None] | None = None
    prune_every: float = 60.0


class Emulator:
    """The ASGI app of `atwh emulator`; its delivery engine runs on the same loop."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.s = settings
        self.state = State(settings.db)
        self.schema = build_schema()
        self.root = Root(self)
        self.say = settings.log or (lambda line: log.info("%s", line))
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: Any = None
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

        body = json.dumps({"message": "Allthings webhook URL check"}).encode()
        try:
            response = await self._http().post(
                url,
                content=body,
                headers={"content-type": "application/json"},
                timeout=self.s.attempt_timeout,
            )
        except httpx.HTTPError as e:
            return f"The URL did not answer the test request: {type(e).__name__}."
        if response.status_code != 200:
            return f"The URL answered the test request with {response.status_code}, not 200."
        return None

    def _http(self) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.s.attempt_timeout,
                follow_redirects=False,
                headers={"user-agent": "Allthings-Webhooks (atwh emulator)"},
            )
        return self._client

    # -- events and deliveries ----------------------------------------------------------

    def emit(self, name: str, urn: str, data: Any) -> tuple[EventRec, int]:
        now = time.time()
        event_id = str(uuid.uuid4())
        payload = json.dumps(
            {
                "event": {
                    "id": event_id,
                    "name": name,
                    "urn": urn,
                    "createdDate": iso_now(now),
                    "data": data if data is not None else {},
                }
            },
            separators=(",", ":"),
        )
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
        headers = signature.headers_for(body, hook.secret)
        started = time.time()
        answer: str
        try:
            response = await self._http().post(hook.url, content=body, headers=headers)
            text = response.content[:MAX_BODY_KEPT].decode("utf-8", errors="replace")
            rec.result = {
                "statusCode": response.status_code,
                "body": text,
                "message": response.reason_phrase or None,
                "headers": [{"name": k, "value": v} for k, v in response.headers.items()],
            }
            ok = 200 <= response.status_code <= 299
            answer = str(response.status_code)
        except httpx.TimeoutException:
            rec.result, ok, answer = None, False, f"timeout after {self.s.attempt_timeout:g}s"
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

    # -- HTTP ---------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("bearer "):
            return False
        token = header[7:].strip()
        if not token:
            return False
        return self.s.token is None or secrets.compare_digest(token, self.s.token)

    async def execute(self, payload: Any) -> tuple[int, dict[str, Any]]:
        import graphql

        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return 400, {"errors": [{"message": "POST a JSON object with a 'query' string."}]}
        variables = payload.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return 400, {"errors": [{"message": "'variables' must be an object."}]}
        operation = payload.get("operationName")
        result = await graphql.graphql(
            self.schema,
            payload["query"],
            root_value=self.root,
            variable_values=variables,
            operation_name=operation if isinstance(operation, str) else None,
        )
        return 200, dict(result.formatted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await _send_json(
                send, 200, {"status": "ok", "webhooks": len(self.state.webhooks)}
            )
        if scope["method"] != "POST":
            return await _send_json(
                send, 405, {"errors": [{"message": "POST GraphQL requests to /"}]}
            )
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 1024 * 1024:
                return await _send_json(send, 413, {"errors": [{"message": "Request too large"}]})
            if not message.get("more_body"):
                break
        if not self.authorized(auth):
            return await _send_json(
                send,
                401,
                {
                    "errors": [
                        {
                            "message": "Unauthorized: send Authorization: Bearer <token>",
                            "extensions": {"code": "UNAUTHENTICATED"},
                        }
                    ]
                },
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return await _send_json(send, 400, {"errors": [{"message": "Body is not JSON"}]})
        try:
            code, result = await self.execute(payload)
        except Exception as e:  # never a 500 for what a client sent
            log.exception("GraphQL execution failed")
            code, result = 200, {"errors": [{"message": f"Internal error: {type(e).__name__}"}]}
        await _send_json(send, code, result)


async def _send_json(send: Any, code: int, data: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


def _human(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < DAY:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / DAY:.0f}d"


def create_app(settings: EmulatorSettings) -> Emulator:
    return Emulator(settings)
