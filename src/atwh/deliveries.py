"""Deliveries as atwh sees them: tolerant parsing of what the API returns, and what failed."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("PENDING", "SUCCESS", "FAILED")


def parse_datetime(value: Any) -> datetime | None:
    """An API date: ISO 8601 with `Z` or an offset, or epoch milliseconds (number or digits).

    Naive ISO values are taken as UTC. Anything else is None, never an exception.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch_ms(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return _from_epoch_ms(float(text))
        except ValueError:
            return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _from_epoch_ms(ms: float) -> datetime | None:
    if not math.isfinite(ms):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and `Z`, as JavaScript writes dates."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class Header:
    name: str
    value: str | None


@dataclass(slots=True)
class Result:
    """The HTTP answer to one attempt."""

    status_code: int | None
    body: str | None = None
    message: str | None = None
    headers: list[Header] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    id: str | None
    name: str | None
    urn: str | None
    payload: str | None  # the API's stringified JSON, or whatever it sent
    created: datetime | None

    def payload_value(self) -> Any:
        """The payload decoded from JSON; the raw text when it is not JSON."""
        if self.payload is None:
            return None
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.payload


@dataclass(slots=True)
class Delivery:
    """One delivery attempt."""

    id: str
    created: datetime | None
    delivered: datetime | None
    status: str | None  # as the API said it, even outside the published enum
    result: Result | None
    event: Event
    retry_id: str | None = None
    webhook_id: str | None = None

    @property
    def status_code(self) -> int | None:
        return self.result.status_code if self.result else None

    @property
    def event_name(self) -> str | None:
        return self.event.name

    @property
    def failed(self) -> bool:
        return is_failure(self.status, self.status_code, self.result is not None)

    @property
    def lag_seconds(self) -> float | None:
        if self.created is None or self.delivered is None:
            return None
        return (self.delivered - self.created).total_seconds()

    @property
    def cause(self) -> str:
        """Why it failed, in a few words: `HTTP 500`, or the message when there was no answer."""
        if self.result is not None and self.result.status_code is not None:
            return f"HTTP {self.result.status_code}"
        message = self.result.message if self.result else None
        if message:
            return message
        return "no answer" if (self.status or "").upper() != "PENDING" else "pending"

    def to_api(self) -> dict[str, Any]:
        """The delivery with the API's own field names (the shape of `--json`)."""
        result = None
        if self.result is not None:
            result = {
                "statusCode": self.result.status_code,
                "body": self.result.body,
                "message": self.result.message,
                "headers": [{"name": h.name, "value": h.value} for h in self.result.headers],
            }
        data: dict[str, Any] = {
            "id": self.id,
            "createdDate": iso(self.created),
            "deliveryDate": iso(self.delivered),
            "status": self.status,
            "result": result,
            "event": {
                "id": self.event.id,
                "name": self.event.name,
                "urn": self.event.urn,
                "payload": self.event.payload,
                "createdDate": iso(self.event.created),
            },
            "retry": {"id": self.retry_id} if self.retry_id else None,
        }
        if self.webhook_id is not None:
            data["webhookId"] = self.webhook_id
        return data


def is_failure(status: str | None, status_code: int | None, answered: bool) -> bool:
    """A failed attempt: no answer, a code outside 2xx (3xx included), or status FAILED.

    The answer decides first: a 2xx answer is a success unless the status says FAILED.
    The one exception to "no answer is a failure": a PENDING attempt not yet answered.
    """
    normalized = (status or "").strip().upper()
    if normalized == "FAILED":
        return True
    if answered:
        return status_code is None or not 200 <= status_code <= 299
    return normalized != "PENDING"


def parse_delivery(node: Any, webhook_id: str | None = None) -> Delivery | None:
    """A delivery from an API node; None when the node is not an object or has no id."""
    if not isinstance(node, dict):
        return None
    delivery_id = node.get("id")
    if delivery_id is None or isinstance(delivery_id, dict | list):
        return None
    raw_result = node.get("result")
    result = None
    if isinstance(raw_result, dict):
        code = raw_result.get("statusCode")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        headers = [
            Header(str(h.get("name")), _str(h.get("value")))
            for h in raw_result.get("headers") or []
            if isinstance(h, dict) and h.get("name") is not None
        ]
        if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
            code = None  # no HTTP answer (some servers say 0); the message says why
        result = Result(
            status_code=code,
            body=_str(raw_result.get("body")),
            message=_str(raw_result.get("message")),
            headers=headers,
        )
    event = _dict(node.get("event"))
    retry = node.get("retry")
    status = node.get("status")
    return Delivery(
        id=str(delivery_id),
        created=parse_datetime(node.get("createdDate")),
        delivered=parse_datetime(node.get("deliveryDate")),
        status=str(status) if status is not None else None,
        result=result,
        event=Event(
            id=_str(event.get("id")),
            name=_str(event.get("name")),
            urn=_str(event.get("urn")),
            payload=_str(event.get("payload")),
            created=parse_datetime(event.get("createdDate")),
        ),
        retry_id=_str(retry.get("id")) if isinstance(retry, dict) else None,
        webhook_id=webhook_id,
    )


@dataclass(slots=True)
class Webhook:
    id: str
    description: str | None
    url: str | None
    enabled: bool | None  # None when the server does not say
    total_count: int | None


def parse_webhook(data: dict[str, Any], requested_id: str) -> Webhook:
    connection = _dict(data.get("deliveries"))
    total = connection.get("totalCount")
    enabled = data.get("enabled")
    return Webhook(
        id=_str(data.get("id")) or requested_id,
        description=_str(data.get("description")),
        url=_str(data.get("url")),
        enabled=enabled if isinstance(enabled, bool) else None,
        total_count=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def attempts_of(delivery: Delivery, deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Every attempt to deliver the same event, oldest first (the retry chain).

    The chain is the attempts that share the event id, joined with what the `retry`
    links say, so it holds whether or not the server reports `retry`.
    """
    by_id = {d.id: d for d in deliveries}
    chain = {delivery.id: delivery}
    if delivery.event.id:
        chain.update((d.id, d) for d in by_id.values() if d.event.id == delivery.event.id)
    changed = True
    while changed:  # follow retry links both ways until nothing new joins
        changed = False
        for d in by_id.values():
            if d.id in chain:
                nxt = by_id.get(d.retry_id or "")
                if nxt is not None and nxt.id not in chain:
                    chain[nxt.id] = nxt
                    changed = True
            elif d.retry_id in chain:
                chain[d.id] = d
                changed = True
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(chain.values(), key=lambda d: (d.created or floor, d.id))
