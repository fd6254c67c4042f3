"""The emulator's GraphQL schema: the published SDL plus `emitEvent`, its scalars, and the
resolvers that read and change the state through the delivery engine."""

from __future__ import annotations

import base64
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from atwh.client import queries
from atwh.client.webhooks import is_loopback
from atwh.emulator.engine import Engine
from atwh.emulator.state import (
    DEFAULT_PAGE,
    EVENT_NAME,
    MAX_PAGE,
    REGISTERABLE_EVENTS,
    URN,
    DeliveryRec,
    EventRec,
    WebhookRec,
    iso_now,
)

log = logging.getLogger("atwh.emulator.schema")


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
    def __init__(self, emu: Engine, rec: DeliveryRec) -> None:
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
    def __init__(self, emu: Engine, rec: WebhookRec) -> None:
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
        if self._emu.s.order == "shuffled":
            import random

            random.Random(len(newest_first)).shuffle(newest_first)
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
    if parsed.scheme == "http" and is_loopback(parsed.host):
        return None
    return f"URL must be https (http only for loopback hosts): {url!r}"


def _result(code: str, success: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "success": success, "message": message, **extra}


class Root:
    """Query and mutation fields."""

    def __init__(self, emu: Engine) -> None:
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
        self.emu.remove_webhook(id)
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
    from atwh.core.dates import parse_datetime

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
