"""Deliveries as atwh sees them: tolerant parsing of what the API returns, and what failed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from atwh.core.dates import iso, read_date
from atwh.core.jsontext import RawJson

STATUSES = ("PENDING", "SUCCESS", "FAILED")
T = TypeVar("T")


def _str(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
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


def _parse_headers(raw: Any) -> list[Header]:
    """The headers of a result, as header_dicts() reads them."""
    return [Header(h["name"] or "", h["value"]) for h in header_dicts(raw)]  # name: a str


class Result:
    """The HTTP answer to one attempt.

    A dataclass in all but name: the headers as the API sent them are read into Header
    objects only when asked for (a CSV export never is), once.
    """

    __slots__ = ("status_code", "body", "message", "_headers", "_raw_headers")
    __match_args__ = ("status_code", "body", "message", "headers")

    def __init__(
        self,
        status_code: int | None,
        body: str | None = None,
        message: str | None = None,
        headers: list[Header] | None = None,
        *,
        raw_headers: list[Any] | None = None,  # the API's list, read on first use instead
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.message = message
        if raw_headers is None:
            self._headers: list[Header] | None = headers if headers is not None else []
            self._raw_headers: list[Any] | None = None
        else:
            self._headers = None
            self._raw_headers = raw_headers

    @property
    def headers(self) -> list[Header]:
        headers = self._headers
        if headers is None:
            headers = self._headers = _parse_headers(self._raw_headers)
            self._raw_headers = None
        return headers

    @headers.setter
    def headers(self, value: list[Header]) -> None:
        self._headers = value
        self._raw_headers = None

    def _header_dicts(self) -> list[dict[str, str | None]]:
        """The headers as the API names their fields, without making Header objects."""
        if self._headers is not None:
            return [{"name": h.name, "value": h.value} for h in self._headers]
        return header_dicts(self._raw_headers)

    def _fields(self) -> tuple[Any, ...]:
        return (self.status_code, self.body, self.message, self.headers)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Result)
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # as a dataclass with eq=True

    def __repr__(self) -> str:
        return (
            f"Result(status_code={self.status_code!r}, body={self.body!r}, "
            f"message={self.message!r}, headers={self.headers!r})"
        )


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
        from atwh.core import jsontext

        try:
            return jsontext.loads(self.payload)
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
    # From parse_delivery: created, delivered and event.created, each followed by the API's
    # text it was read from (read_date). iso_dates() hands that text out, while the date is
    # still the one read from it, instead of formatting the date again.
    _api_dates: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def iso_dates(self) -> tuple[str | None, str | None, str | None]:
        """created, delivered and event.created as ISO 8601 text: as the API sent them while
        they are the dates read from that text, else iso() of the dates."""
        created, delivered, event_created = self.created, self.delivered, self.event.created
        api = self._api_dates
        if api is None:
            return iso(created), iso(delivered), iso(event_created)
        return (
            api[1] if api[0] is created and api[1] is not None else iso(created),
            api[3] if api[2] is delivered and api[3] is not None else iso(delivered),
            api[5] if api[4] is event_created and api[5] is not None else iso(event_created),
        )

    def row(self) -> DeliveryRow:
        """The delivery as the DeliveryRow delivery_row() reads (its dates' texts as
        iso_dates() gives them)."""
        r = self.result
        event = self.event
        created_text, delivered_text, event_created_text = self.iso_dates()
        return DeliveryRow(
            self.id,
            self.created,
            created_text,
            self.delivered,
            delivered_text,
            self.status,
            r is not None,
            r.status_code if r is not None else None,
            r.body if r is not None else None,
            r.message if r is not None else None,
            r._header_dicts() if r is not None else None,
            event.id,
            event.name,
            event.urn,
            event.payload,
            event.created,
            event_created_text,
            self.retry_id,
        )

    @property
    def status_code(self) -> int | None:
        return self.result.status_code if self.result else None

    @property
    def event_name(self) -> str | None:
        return self.event.name

    @property
    def failed(self) -> bool:
        r = self.result
        if r is None:
            return is_failure(self.status, None, False)
        return is_failure(self.status, r.status_code, True)

    @property
    def lag_seconds(self) -> float | None:
        if self.created is None or self.delivered is None:
            return None
        return (self.delivered - self.created).total_seconds()

    @property
    def cause(self) -> str:
        """Why it failed, in a few words: `HTTP 500`, or the message when there was no answer."""
        r = self.result
        return cause_of(r.status_code if r else None, self.status, r.message if r else None)

    def to_api(self) -> dict[str, Any]:
        """The delivery with the API's own field names (the shape of `--json`)."""
        return api_record(self.row(), self.webhook_id)


def header_dicts(raw: Any) -> list[dict[str, str | None]]:
    """A result's headers as the API sent them, as {name, value} with a name and a text
    value (or null); what is not such a header is left out."""
    if raw.__class__ is not list:
        raw = _decoded(raw)
        if not isinstance(raw, list):
            return []
    return [
        {"name": str(h.get("name")), "value": _str(h.get("value"))}
        for h in raw
        if isinstance(h, dict) and h.get("name") is not None
    ]


def detached(row: DeliveryRow) -> DeliveryRow:
    """The row without a hold on its page: its undecoded headers (msgspec.Raw, a view into
    the bytes of the whole page) copied out, so that a listing keeping 50 rows keeps 50
    rows, not up to 50 pages of 100 deliveries each."""
    headers = row.headers
    if headers.__class__ is msgspec.Raw:
        return msgspec.structs.replace(row, headers=headers.copy())
    return row


def detached_pair(item: tuple[DeliveryRow, T]) -> tuple[DeliveryRow, T]:
    """detached() of a (row, anything) pair, as listings keep them."""
    return detached(item[0]), item[1]


class _Header(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    value: str | None


_read_headers = msgspec.json.Decoder(list[_Header]).decode


def header_json(raw: Any) -> Any:
    """header_dicts(raw), for a record that is encoded as JSON: the API's own text (RawJson,
    written as it is) when it is exactly what encoding header_dicts() would give (compact,
    each header a name and a text value, in that order), which is how the API writes them;
    else header_dicts(). Decoding each answer's headers and encoding them again was most of
    what NDJSON costs beyond CSV."""
    if raw.__class__ is msgspec.Raw:
        text = bytes(raw)
        try:
            if msgspec.json.encode(_read_headers(text)) == text:
                return RawJson(text)
        except (msgspec.DecodeError, msgspec.EncodeError, UnicodeError):
            pass
    return header_dicts(raw)


def _decoded(raw: Any) -> Any:
    """A value as the API sent it: client.wire leaves a result's headers as undecoded JSON
    (msgspec.Raw) until here, read as the rest of the answer was (jsontext.decode)."""
    if raw.__class__.__module__ != "msgspec":
        return raw
    from atwh.core import jsontext

    try:
        return jsontext.decode(bytes(raw))
    except ValueError:  # nested deeper than the json module reads: unreadable headers
        return None


def api_record(row: DeliveryRow, webhook_id: str | None, encoded: bool = False) -> dict[str, Any]:
    """A delivery with the API's own field names (the shape of `--json` and NDJSON), from
    delivery_row() or Delivery.row(). `encoded`: the record is only to be encoded as JSON
    (jsontext.dumps), so the headers may stay the API's text (header_json)."""
    created_text = row.created_text
    delivered_text = row.delivered_text
    event_created_text = row.event_created_text
    data: dict[str, Any] = {
        "id": row.id,
        "createdDate": created_text if created_text is not None else iso(row.created),
        "deliveryDate": delivered_text if delivered_text is not None else iso(row.delivered),
        "status": row.status,
        "result": {
            "statusCode": row.status_code,
            "body": row.body,
            "message": row.message,
            "headers": header_json(row.headers) if encoded else header_dicts(row.headers),
        }
        if row.answered
        else None,
        "event": {
            "id": row.event_id,
            "name": row.event_name,
            "urn": row.event_urn,
            "payload": row.payload,
            "createdDate": event_created_text
            if event_created_text is not None
            else iso(row.event_created),
        },
        "retry": {"id": row.retry_id} if row.retry_id else None,
    }
    if webhook_id is not None:
        data["webhookId"] = webhook_id
    return data


def cause_of(status_code: int | None, status: str | None, message: str | None) -> str:
    """Why an attempt failed, in a few words (Delivery.cause), from its fields."""
    if status_code is not None:
        return f"HTTP {status_code}"
    if message:
        return message
    return "no answer" if (status or "").upper() != "PENDING" else "pending"


def is_failure(status: str | None, status_code: int | None, answered: bool) -> bool:
    """A failed attempt: no answer, a code outside 2xx (3xx included), or status FAILED.

    The answer decides first: a 2xx answer is a success unless the status says FAILED.
    The one exception to "no answer is a failure": a PENDING attempt not yet answered.
    """
    if status == "FAILED":  # the usual spellings first, without normalizing
        return True
    if status == "SUCCESS":
        return not answered or status_code is None or not 200 <= status_code <= 299
    normalized = (status or "").strip().upper()
    if normalized == "FAILED":
        return True
    if answered:
        return status_code is None or not 200 <= status_code <= 299
    return normalized != "PENDING"


class DeliveryRow(msgspec.Struct, gc=False):
    """One delivery as the API sent it, read into the schema's types: what an export writes
    from without making objects, and what a Delivery is made of (delivery_of_row).

    Made by client.wire from a page in the usual shape, else by delivery_row() from any
    node; both give the same (tests/client/test_wire.py). Left out of the garbage
    collector (gc=False): it holds no container that could hold it back."""

    id: str
    created: datetime | None
    created_text: str | None  # the API's own text of `created` (read_date), or None
    delivered: datetime | None
    delivered_text: str | None
    status: str | None  # as the API said it, even outside the published enum
    answered: bool  # whether the node has a result: an HTTP answer, or a message why not
    status_code: int | None  # 100-599 or None
    body: str | None
    message: str | None
    # the result's headers as the API sent them (a list, normally), or their JSON undecoded
    # (client.wire): read them with header_dicts()
    headers: Any
    event_id: str | None
    event_name: str | None
    event_urn: str | None
    payload: str | None
    event_created: datetime | None
    event_created_text: str | None
    retry_id: str | None

    @property
    def failed(self) -> bool:
        return is_failure(self.status, self.status_code, self.answered)


class ReadNodes(list[DeliveryRow]):
    """The nodes of a page, already read into DeliveryRows (by client.wire): a Page made
    of them reads them no more."""


def delivery_row(node: Any) -> DeliveryRow | None:
    """One delivery of any API node, read tolerantly (`_str`, `_status_code`, read_date);
    None when the node is not an object or has no id. parse_delivery() makes the objects
    from it. A page in the usual shape is read by client.wire without coming here."""
    if node.__class__ is not dict and not isinstance(node, dict):
        return None
    get = node.get
    delivery_id = get("id")
    if delivery_id.__class__ is not str:
        if delivery_id is None or isinstance(delivery_id, dict | list):
            return None
        delivery_id = str(delivery_id)
    raw_result = get("result")
    if raw_result.__class__ is dict or isinstance(raw_result, dict):
        answered = True
        code = raw_result.get("statusCode")
        if code.__class__ is not int or not 100 <= code <= 599:
            code = _status_code(code)
        body = raw_result.get("body")
        if body is not None and body.__class__ is not str:
            body = _str(body)
        message = raw_result.get("message")
        if message is not None and message.__class__ is not str:
            message = _str(message)
        headers = raw_result.get("headers")
    else:
        answered = False
        code = body = message = headers = None
    event = get("event")
    if event.__class__ is not dict and not isinstance(event, dict):
        event = {}
    event_get = event.get
    status = get("status")
    if status is not None and status.__class__ is not str:
        status = str(status)
    created, created_text = read_date(get("createdDate"))
    delivered, delivered_text = read_date(get("deliveryDate"))
    event_created, event_created_text = read_date(event_get("createdDate"))
    event_id = event_get("id")
    name = event_get("name")
    urn = event_get("urn")
    payload = event_get("payload")
    retry = get("retry")
    retry_id = retry.get("id") if retry.__class__ is dict or isinstance(retry, dict) else None
    return DeliveryRow(
        delivery_id,
        created,
        created_text,
        delivered,
        delivered_text,
        status,
        answered,
        code,
        body,
        message,
        headers,
        event_id if event_id is None or event_id.__class__ is str else _str(event_id),
        name if name is None or name.__class__ is str else _str(name),
        urn if urn is None or urn.__class__ is str else _str(urn),
        payload if payload is None or payload.__class__ is str else _str(payload),
        event_created,
        event_created_text,
        retry_id if retry_id is None or retry_id.__class__ is str else _str(retry_id),
    )


def parse_delivery(node: Any, webhook_id: str | None = None) -> Delivery | None:
    """A delivery from an API node; None when the node is not an object or has no id."""
    row = delivery_row(node)
    return None if row is None else delivery_of_row(row, webhook_id)


def delivery_of_row(row: DeliveryRow, webhook_id: str | None = None) -> Delivery:
    """The Delivery that delivery_row() or client.wire read."""
    result = None
    if row.answered:
        headers = row.headers
        if headers.__class__ is list:  # read when asked for (Result.headers)
            result = Result(row.status_code, row.body, row.message, raw_headers=headers)
        else:
            result = Result(row.status_code, row.body, row.message, _parse_headers(headers))
    created = row.created
    delivered = row.delivered
    event_created = row.event_created
    delivery = Delivery(
        row.id,
        created,
        delivered,
        row.status,
        result,
        Event(row.event_id, row.event_name, row.event_urn, row.payload, event_created),
        row.retry_id,
        webhook_id,
    )
    delivery._api_dates = (
        created,
        row.created_text,
        delivered,
        row.delivered_text,
        event_created,
        row.event_created_text,
    )
    return delivery


def _status_code(code: Any) -> int | None:
    """An answer's HTTP status code: an int from 100 to 599 (digits are read as one), else
    None: no HTTP answer (some servers say 0), and the message says why."""
    if code.__class__ is not int:
        if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            return None
    return code if 100 <= code <= 599 else None


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
