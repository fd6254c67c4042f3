"""client.wire reads a page of deliveries straight from the answer's bytes: whatever it
reads must be what the general path (operations.execution_result, then delivery_row) reads, and
whatever it cannot read exactly so it must leave to the general path."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import msgspec
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from atwh.client.api import ApiClient, Page
from atwh.client.auth import StaticToken
from atwh.client.model import ReadNodes, header_dicts, parse_webhook
from atwh.client.operations import execution_result
from atwh.client.wire import read_page
from tests.cli.test_export_fields import PATHS, nodes, odd_values, usual, with_odd_field
from tests.conftest import API_URL


def answer(
    page_nodes: list[Any], webhook: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    """An answer to the paged query, as the API sends it."""
    hook = {
        "id": "wh-1",
        "description": "Tickets",
        "url": "https://hooks.example.test/t",
        "enabled": True,
        "deliveries": {
            "totalCount": 250,
            "pageInfo": {"hasNextPage": True, "endCursor": "c100"},
            "nodes": page_nodes,
        },
    }
    hook.update(webhook or {})
    return {"data": {"webhook": hook}, **top}


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # integers beyond 64 bits too


def view(data: dict[str, Any]) -> tuple[Any, ...]:
    """What paging reads of a page's data (ApiClient._page): the webhook, the pageInfo and
    the rows of its nodes, with the headers as header_dicts() reads them."""
    raw = data["webhook"]
    connection = raw["deliveries"]
    page_info = connection.get("pageInfo")
    page = Page(parse_webhook(raw, "wh-1"), connection["nodes"], "wh-1")
    rows = [msgspec.structs.replace(r, headers=header_dicts(r.headers)) for r in page.rows()]
    if isinstance(page_info, dict):  # ApiClient.pages and PageCursors read these two
        page_info = (page_info.get("hasNextPage"), page_info.get("endCursor"))
    else:
        page_info = None
    return parse_webhook(raw, "wh-1"), page_info, rows


def general(content: bytes) -> Any:
    """(data, errors) as the general path reads them, or the exception it raises."""
    try:
        result = execution_result(httpx.Response(200, content=content))
    except Exception as e:
        return e
    return result.data, result.errors


def assert_read_alike(content: bytes) -> bool:
    """The fast read of `content` equals the general one, or it declined; whether it read."""
    fast = read_page(content)
    if fast is None:
        return False
    data, errors = general(content)
    assert errors is None
    assert view(fast) == view(data)
    return True


@given(st.lists(usual, max_size=5))
def test_a_page_as_the_api_sends_it_is_read_fast_and_alike(page_nodes):
    assert assert_read_alike(encoded(answer(page_nodes)))


@pytest.mark.parametrize("path", PATHS, ids="/".join)
@given(usual, usual, odd_values)
def test_a_page_with_an_odd_field_in_a_node_is_read_alike_or_declined(path, first, node, value):
    page = [first, with_odd_field(node, path, value)]
    assert_read_alike(encoded(answer(page)))


@given(st.lists(nodes, max_size=4))
def test_a_page_of_any_nodes_is_read_alike_or_declined(page_nodes):
    assert_read_alike(encoded(answer(page_nodes)))


ENVELOPE_PATHS = [
    ("id",),
    ("description",),
    ("url",),
    ("enabled",),
    ("deliveries", "totalCount"),
    ("deliveries", "pageInfo"),
    ("deliveries", "pageInfo", "hasNextPage"),
    ("deliveries", "pageInfo", "endCursor"),
    ("deliveries", "nodes"),
]


@pytest.mark.parametrize("path", ENVELOPE_PATHS, ids="/".join)
@given(usual, odd_values)
def test_a_page_with_an_odd_webhook_or_page_info_is_read_alike_or_declined(path, node, value):
    whole = answer([node])
    whole["data"]["webhook"] = with_odd_field(whole["data"]["webhook"], path, value)
    assert_read_alike(encoded(whole))


@given(usual, st.one_of(st.none(), st.just([]), st.just({}), st.just(0), st.just("")))
def test_errors_that_say_nothing_are_read_as_none(node, errors):
    assert assert_read_alike(encoded(answer([node], errors=errors)))


@pytest.mark.parametrize(
    "errors", [[{"message": "partly failed"}], {"message": "x"}, "boom", 1, [1]]
)
def test_an_answer_with_errors_is_left_to_the_general_path(errors):
    node = {
        "id": "d1",
        "createdDate": "2026-11-30T10:00:00.000Z",
        "deliveryDate": None,
        "status": "FAILED",
        "result": None,
        "event": {"id": "e1", "name": "t", "urn": None, "payload": None, "createdDate": None},
        "retry": None,
    }
    assert read_page(encoded(answer([node], errors=errors))) is None
    assert read_page(encoded(answer([node]))) is not None


NODE = (
    b'{"id":"d1","createdDate":"2026-11-30T10:00:00.000Z","deliveryDate":null,'
    b'"status":"FAILED","result":{"statusCode":500,"body":"b","message":null,'
    b'"headers":HEADERS},"event":{"id":"e1","name":"t","urn":null,"payload":null,'
    b'"createdDate":null},"retry":null}'
)


def page_bytes(headers: bytes, extra: bytes = b"") -> bytes:
    node = NODE.replace(b"HEADERS", headers)
    return (
        b'{"data":{"webhook":{"id":"wh-1","deliveries":{"totalCount":1,'
        b'"pageInfo":{"hasNextPage":false,"endCursor":null},"nodes":['
        + node
        + b"]}}}"
        + extra
        + b"}"
    )


@pytest.mark.parametrize(
    "headers",
    [
        b'[{"name":"server","value":"nginx"}]',
        b'[{"name":"a","value":1e999},{"name":"b","value":"\\u00e9\\n"}]',
        b'[{"name":123456789012345678901234567890,"value":"x"},{"value":"no name"}]',
        b'[{"name":"a","name":"b","value":"twice"}]',
        b'"not a list"',
        b"null",
        b"{}",
    ],
)
def test_headers_are_read_when_asked_for_by_the_general_rule(headers):
    content = page_bytes(headers)
    assert assert_read_alike(content)


@pytest.mark.parametrize(
    "extra",
    [
        b',"extensions":{"note":"\xff"}',  # not UTF-8, in a value nobody reads
        b',"extensions":{"note":"\\ud800"}',  # a lone surrogate
        b',"extensions":{"big":1e999}',  # a number orjson refuses
    ],
)
def test_what_the_fast_read_skips_is_still_checked(extra):
    content = page_bytes(b"[]", extra)
    fast = read_page(content)
    result = general(content)
    if isinstance(result, Exception):  # not JSON for the general path: not for this one
        assert fast is None
    else:
        assert fast is None or view(fast) == view(result[0])


def test_bytes_that_are_not_json_or_not_this_query_are_declined():
    for content in [b"", b"{", b"[]", b'{"data":null}', b'{"data":{"webhook":null}}']:
        assert read_page(content) is None


@respx.mock
def test_the_client_reads_usual_pages_fast_and_others_as_before():
    usual_node = {
        "id": "d1",
        "createdDate": "2026-11-30T10:00:00.000Z",
        "deliveryDate": "2026-11-30T10:00:01.500Z",
        "status": "FAILED",
        "result": {"statusCode": 503, "body": "down", "message": None, "headers": []},
        "event": {
            "id": "e1",
            "name": "ticket.created",
            "urn": "urn:x",
            "payload": "{}",
            "createdDate": "2026-11-30T09:59:59.000Z",
        },
        "retry": None,
    }
    epoch_node = copy.deepcopy(usual_node)
    epoch_node["id"] = "d2"
    epoch_node["createdDate"] = 1764496800000  # epoch milliseconds
    epoch_node["result"]["statusCode"] = "503"  # digits, not a number: the general rules
    first = answer([usual_node])
    second = answer([epoch_node])
    second["data"]["webhook"]["deliveries"]["pageInfo"] = {"hasNextPage": False}
    respx.post(API_URL).mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )
    with ApiClient(StaticToken("t"), url=API_URL) as client:
        pages = list(client.pages("wh-1"))
    assert [p.nodes.__class__ for p in pages] == [ReadNodes, list]
    deliveries = [d for p in pages for d in p.deliveries]
    assert [d.id for d in deliveries] == ["d1", "d2"]
    assert deliveries[1].created is not None
    assert deliveries[1].created.isoformat() == "2025-11-30T10:00:00+00:00"
    assert deliveries[0].result is not None and deliveries[0].result.headers == []


@pytest.mark.parametrize("total", [2**63 - 1, 2**63, 2**64 + 1, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_read_as_the_general_path_reads_them(total):
    node = {
        "id": "d1",
        "createdDate": None,
        "deliveryDate": None,
        "status": None,
        "result": None,
        "event": {"id": None, "name": None, "urn": None, "payload": None, "createdDate": None},
        "retry": None,
    }
    content = encoded(answer([node], {"deliveries": {"totalCount": total, "nodes": [node]}}))
    assert_read_alike(content)


@pytest.mark.parametrize(
    "date",
    [
        "2026-11-30T10:00:00.000Z",
        "2026-11-30T10:00:00+00:00",
        "2026-11-30T10:00:00.000+00:00",
        "2026-11-30T11:00:00.123456+01:00",
        "2026-11-30T10:00:00Z",
        1764496800000,
        None,
    ],
)
def test_a_page_with_dates_in_any_form_is_read_fast_with_the_apis_text(date):
    node = {
        "id": "d1",
        "createdDate": date,
        "deliveryDate": date,
        "status": "FAILED",
        "result": None,
        "event": {"id": "e1", "name": "t", "urn": None, "payload": None, "createdDate": date},
        "retry": None,
    }
    content = encoded(answer([node]))
    assert assert_read_alike(content)
    data = read_page(content)
    assert data is not None
    [row] = data["webhook"]["deliveries"]["nodes"]
    text = date if isinstance(date, str) else None
    assert (row.created_text, row.delivered_text, row.event_created_text) == (text,) * 3


header_values = st.one_of(
    st.none(), st.text(), st.integers(), st.booleans(), st.lists(st.text(), max_size=2)
)
header_lists = st.lists(
    st.one_of(
        st.fixed_dictionaries({"name": st.one_of(st.text(), st.none()), "value": header_values}),
        st.fixed_dictionaries({"value": header_values, "name": st.text()}),  # value first
        st.fixed_dictionaries({"name": st.text(), "value": st.text(), "x": st.integers()}),
        st.integers(),
    ),
    max_size=4,
)


@given(header_lists, st.sampled_from(["compact", "spaced", "ascii"]))
def test_headers_kept_as_the_api_wrote_them_encode_as_if_decoded_and_encoded_again(headers, style):
    """NDJSON writes an answer's headers as the API's own text when that text is exactly what
    decoding and encoding it again would give; the record's bytes are then the same either
    way, and any other text (spaces, another key order, values that are not text, escapes)
    goes the long way."""
    from atwh.client.model import header_json
    from atwh.core import jsontext

    if style == "compact":
        text = json.dumps(headers, ensure_ascii=False, separators=(",", ":"))
    elif style == "spaced":
        text = json.dumps(headers, ensure_ascii=False)
    else:
        text = json.dumps(headers, separators=(",", ":"))
    raw = msgspec.Raw(text.encode("utf-8", "surrogatepass"))
    fast = jsontext.dumps({"headers": header_json(raw), "n": 1})
    slow = jsontext.dumps({"headers": header_dicts(raw), "n": 1})
    assert fast == slow


def test_the_usual_headers_are_written_without_being_decoded():
    from atwh.client.model import header_json
    from atwh.core.jsontext import RawJson

    text = b'[{"name":"content-type","value":"application/json"},{"name":"x","value":null}]'
    assert isinstance(header_json(msgspec.Raw(text)), RawJson)
    assert not isinstance(header_json(msgspec.Raw(text.replace(b",", b", "))), RawJson)


@pytest.mark.parametrize(
    "text",
    [
        b'[{"name":"a","value":"\\ud800"}]',  # a lone surrogate: escaped as it came
        b'[{"name":"a\\u0041","value":"x"}]',  # an escape not needed: written as "aA"
        b'[{"name":"a","name":"b","value":null}]',  # a key twice: the last one, once
    ],
)
def test_headers_the_api_wrote_otherwise_are_written_as_decoded(text):
    from atwh.client.model import header_json
    from atwh.core import jsontext

    raw = msgspec.Raw(text)
    assert isinstance(header_json(raw), list)
    assert jsontext.dumps(header_json(raw)) == jsontext.dumps(header_dicts(raw))


def test_a_kept_row_lets_go_of_its_page_once_detached():
    """A row's headers stay undecoded (msgspec.Raw, a view into the page's bytes), so a
    listing that kept 50 rows kept up to 50 whole pages: `deliveries W` at a million
    attempts grew to 58 MB. A kept row is detached: its headers copied out, the same."""
    import gc
    import tracemalloc

    from atwh.client.model import detached
    from tests.conftest import node

    def kept_size(keep) -> int:
        big = [node(i, code=500, body="x" * 10_000) for i in range(100)]  # a page of ~1 MB
        tracemalloc.start()
        try:
            content = encoded(answer(big))
            read = read_page(content)
            assert read is not None
            rows = list(read["webhook"]["deliveries"]["nodes"])
            row = keep(rows[0])
            del content, read, rows
            gc.collect()
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert header_dicts(row.headers) == header_dicts(rows_headers_of(big[0]))
        return size

    assert kept_size(lambda r: r) > 1_000_000  # the page, held by the row's headers
    assert kept_size(detached) < 100_000  # the row alone


def rows_headers_of(raw_node: dict[str, Any]) -> Any:
    return raw_node["result"]["headers"]
