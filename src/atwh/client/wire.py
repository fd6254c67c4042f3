"""A page of deliveries read straight from the API's bytes, when it is in the usual shape.

An export of 100,000 deliveries spends most of its time decoding pages: made into dicts
by orjson, then read by delivery_row(). Here msgspec decodes a page of the paged query
(queries/QueryWebhookDeliveriesPage.graphql) into typed structs in one pass, checking
every type the schema gives as it goes, without making the objects nobody reads: each
result's `headers` stay undecoded JSON (msgspec.Raw) until asked for (model.header_dicts),
and fields the query did not ask for are skipped. About four times faster than orjson
and delivery_row() together (bench/README.md). Dates are read by model.read_date, as the
general path reads them, whatever form they take (ISO 8601 with `Z` or an offset, epoch
milliseconds): no form of date sends a page off this path.

It reads a page only when it gives exactly what the general path
(operations.execution_result, then delivery_row) gives; any other answer (errors, a
value outside the schema's types) is declined, None, and read by the general path.
tests/client/test_wire.py holds the two to the same results.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Raw, Struct

from atwh.client.model import DeliveryRow, ReadNodes, read_date

# A signed 64-bit integer, which orjson and the json module read alike (orjson reads
# integers beyond 64 bits as floats): the general path's value, or declined.
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
_Code = Annotated[int, Meta(ge=100, le=599)]  # delivery_row's range for an HTTP status
# A date as the API may send it: ISO 8601 text in any form, or epoch milliseconds.
_Date = str | int | float | None  # any int: read_date reads one beyond 64 bits as None


# The usual node: every key present, with these types; anything else is declined.
class _Result(Struct):
    statusCode: _Code | None
    body: str | None
    message: str | None
    headers: Raw  # any JSON: read by the general rule when needed


class _Event(Struct):
    id: str | None
    name: str | None
    urn: str | None
    payload: str | None
    createdDate: _Date


class _Retry(Struct):
    id: str | None


class _Node(Struct):
    id: str
    createdDate: _Date
    deliveryDate: _Date
    status: str | None
    result: _Result | None
    event: _Event
    retry: _Retry | None


# The envelope, as ApiClient._page reads it (a missing key reads as null there too).
class _PageInfo(Struct):
    hasNextPage: bool | None = None
    endCursor: str | None = None


class _Connection(Struct):
    nodes: list[_Node]
    totalCount: _Int | None = None
    pageInfo: _PageInfo | None = None


class _Webhook(Struct):
    deliveries: _Connection
    id: str | None = None
    description: str | None = None
    url: str | None = None
    enabled: bool | None = None


class _Data(Struct):
    webhook: _Webhook


class _Answer(Struct):
    data: _Data
    errors: Any = None


_decoder = msgspec.json.Decoder(_Answer)


def read_page(content: bytes) -> dict[str, Any] | None:
    """The `data` of an answer to the paged query, as the general path reads it, with the
    nodes already read (ReadNodes of DeliveryRows); None when the answer is not in the
    usual shape (the general path then reads it)."""
    if not content.isascii():
        try:  # skipped values are not checked for UTF-8; the general path refuses them
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        answer = _decoder.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if answer.errors:
        return None
    webhook = answer.data.webhook
    connection = webhook.deliveries
    nodes = ReadNodes(map(_row, connection.nodes))
    info = connection.pageInfo
    return {
        "webhook": {
            "id": webhook.id,
            "description": webhook.description,
            "url": webhook.url,
            "enabled": webhook.enabled,
            "deliveries": {
                "totalCount": connection.totalCount,
                "pageInfo": None
                if info is None
                else {"hasNextPage": info.hasNextPage, "endCursor": info.endCursor},
                "nodes": nodes,
            },
        }
    }


def _row(node: _Node) -> DeliveryRow:
    """delivery_row() of a usual node."""
    result = node.result
    event = node.event
    retry = node.retry
    if result is None:
        answered = False
        code = body = message = headers = None
    else:
        answered = True
        code = result.statusCode
        body = result.body
        message = result.message
        headers = result.headers
    created, created_text = read_date(node.createdDate)
    delivered, delivered_text = read_date(node.deliveryDate)
    event_created, event_created_text = read_date(event.createdDate)
    return DeliveryRow(
        node.id,
        created,
        created_text,
        delivered,
        delivered_text,
        node.status,
        answered,
        code,
        body,
        message,
        headers,
        event.id,
        event.name,
        event.urn,
        event.payload,
        event_created,
        event_created_text,
        None if retry is None else retry.id,
    )
