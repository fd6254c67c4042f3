"""The API client on its own: paging, fallback, retries and error classes (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from atwh.client.api import ApiClient, RetryPolicy, parse_retry_after
from atwh.client.auth import StaticToken
from atwh.errors import ApiError, AuthError, NetworkError, NotFoundError
from tests.conftest import API_URL, node


def client(**kwargs) -> ApiClient:
    return ApiClient(StaticToken("t"), url=API_URL, **kwargs)


def page(nodes, has_next, cursor):
    info = {"hasNextPage": has_next, "endCursor": cursor}
    return {"data": {"webhook": {"id": "w", "deliveries": {"pageInfo": info, "nodes": nodes}}}}


def test_several_pages_in_order(fake_api):
    fake_api.add("w", [node(i) for i in range(230)])
    ids = [d.id for d in client().deliveries("w")]
    assert ids == [f"d{i}" for i in range(230)]
    assert [r["body"]["variables"] for r in fake_api.requests] == [
        {"id": "w", "first": 100},
        {"id": "w", "first": 100, "after": "c100"},
        {"id": "w", "first": 100, "after": "c200"},
    ]


def test_server_page_size_smaller_than_asked(fake_api):
    fake_api.page_size_cap = 7
    fake_api.add("w", [node(i) for i in range(20)])
    assert len(list(client().deliveries("w"))) == 20
    assert len(fake_api.requests) == 3


def test_missing_first_is_never_trusted_to_mean_everything(fake_api):
    fake_api.add("w", [node(i) for i in range(5)])
    list(client().deliveries("w"))
    assert all(r["body"]["variables"]["first"] == 100 for r in fake_api.requests)


@respx.mock
def test_repeated_cursor_stops_with_an_error():
    respx.post(API_URL).mock(
        side_effect=[
            httpx.Response(200, json=page([node(1)], True, "same")),
            httpx.Response(200, json=page([node(2)], True, "same")),
        ]
    )
    with pytest.raises(ApiError, match="repeated the page cursor"):
        list(client().deliveries("w"))


@respx.mock
def test_endless_empty_pages_stop_with_an_error():
    route = respx.post(API_URL).mock(
        side_effect=[httpx.Response(200, json=page([], True, f"c{i}")) for i in range(50)]
    )
    with pytest.raises(ApiError, match="empty pages"):
        list(client().deliveries("w"))
    assert route.call_count == 5


@respx.mock
def test_more_pages_without_a_cursor_is_an_error():
    respx.post(API_URL).mock(return_value=httpx.Response(200, json=page([node(1)], True, None)))
    with pytest.raises(ApiError, match="no cursor"):
        list(client().deliveries("w"))


def test_fallback_to_the_vendor_query_once_per_client(fake_api):
    fake_api.reject_paging = True
    fake_api.add("w", [node(i) for i in range(3)])
    c = client()
    assert len(list(c.deliveries("w"))) == 3
    assert len(list(c.deliveries("w"))) == 3
    queries = [r["body"]["query"] for r in fake_api.requests]
    assert ["pageInfo" in q for q in queries] == [True, False, False]
    assert fake_api.requests[1]["body"]["variables"] == {"id": "w"}


@respx.mock
def test_other_validation_errors_do_not_trigger_the_fallback():
    respx.post(API_URL).mock(
        return_value=httpx.Response(200, json={"errors": [{"message": "Rate limit on 'foo'"}]})
    )
    with pytest.raises(ApiError, match="Rate limit"):
        list(client().deliveries("w"))


def test_unknown_webhook_is_not_found(fake_api):
    with pytest.raises(NotFoundError, match="webhook nope not found"):
        list(client().deliveries("nope"))


@respx.mock
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    route = respx.post(API_URL).mock(
        side_effect=[
            httpx.Response(status, text="busy"),
            httpx.Response(200, json=page([node(1)], False, "c")),
        ]
    )
    assert [d.id for d in client().deliveries("w")] == ["d1"]
    assert route.call_count == 2


@respx.mock
def test_retries_are_bounded():
    sleeps: list[float] = []
    route = respx.post(API_URL).mock(return_value=httpx.Response(503, text="down"))
    with pytest.raises(ApiError, match="503"):
        list(client(retry=RetryPolicy(attempts=3, sleep=sleeps.append)).deliveries("w"))
    assert route.call_count == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 8 for s in sleeps)


@respx.mock
def test_retry_after_is_honoured_and_capped():
    sleeps: list[float] = []
    respx.post(API_URL).mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"errors": [{"message": "slow down"}]}
            ),
            httpx.Response(429, headers={"Retry-After": "3600"}, text="no"),
            httpx.Response(200, json=page([node(1)], False, "c")),
        ]
    )
    policy = RetryPolicy(attempts=4, sleep=sleeps.append, retry_after_cap=60)
    assert len(list(client(retry=policy).deliveries("w"))) == 1
    assert sleeps == [7.0, 60.0]


def test_parse_retry_after_forms():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@respx.mock
@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_other_errors_are_not_retried(status):
    route = respx.post(API_URL).mock(return_value=httpx.Response(status, text="nope"))
    with pytest.raises(ApiError):
        list(client().deliveries("w"))
    assert route.call_count == 1


@respx.mock
def test_connection_errors_and_timeouts_are_retried_then_reported():
    route = respx.post(API_URL).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.ConnectError("refused"),
        ]
    )
    with pytest.raises(NetworkError, match="cannot reach the API at webhooks.allthings.me"):
        list(client().deliveries("w"))
    assert route.call_count == 4


@respx.mock
def test_timeout_message():
    respx.post(API_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(NetworkError, match="did not answer in time"):
        list(client(retry=RetryPolicy(attempts=1)).deliveries("w"))


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, text="Unauthorized"),
        httpx.Response(401, json={"errors": [{"message": "jwt expired"}]}),
        httpx.Response(
            200, json={"errors": [{"message": "nope", "extensions": {"code": "UNAUTHENTICATED"}}]}
        ),
        httpx.Response(403, json={"errors": [{"message": "forbidden"}]}),
        httpx.Response(
            200,
            json={"errors": [{"message": "no", "extensions": {"code": "FORBIDDEN"}}], "data": None},
        ),
    ],
)
def test_auth_failures(response):
    respx.post(API_URL).mock(return_value=response)
    with pytest.raises(AuthError):
        list(client().deliveries("w"))


@respx.mock
def test_errors_beside_data_are_warnings():
    warnings: list[str] = []
    body = page([node(1)], False, "c")
    body["errors"] = [{"message": "field 'retry' partly unavailable"}]
    respx.post(API_URL).mock(return_value=httpx.Response(200, json=body))
    assert len(list(client(warn=warnings.append).deliveries("w"))) == 1
    assert warnings == ["the API reported errors beside the data: field 'retry' partly unavailable"]


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json={"hello": "world"}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"data": None}),
    ],
)
def test_answers_that_are_not_graphql(response):
    respx.post(API_URL).mock(return_value=response)
    with pytest.raises(ApiError):
        list(client().deliveries("w"))


@respx.mock
def test_junk_nodes_are_skipped_with_a_warning():
    warnings: list[str] = []
    body = page([node(1), "junk", None, {"no": "id"}, node(2)], False, "c")
    respx.post(API_URL).mock(return_value=httpx.Response(200, json=body))
    assert [d.id for d in client(warn=warnings.append).deliveries("w")] == ["d1", "d2"]
    assert warnings == ["skipped 3 unreadable deliveries"]


@respx.mock
def test_request_is_graphql_with_variables_not_pasted_into_the_query():
    route = respx.post(API_URL).mock(return_value=httpx.Response(200, json=page([], False, None)))
    list(client().deliveries('w"){evil}'))
    sent = json.loads(route.calls[0].request.content)
    assert sent["variables"]["id"] == 'w"){evil}'
    assert "evil" not in sent["query"]
    assert route.calls[0].request.headers["authorization"] == "Bearer t"


def test_a_count_past_the_total_is_said_with_grouped_thousands():
    from atwh.client.api import _check_count

    _check_count(2_100, 1_000, 100)  # twice the total and a page: still believed
    with pytest.raises(ApiError, match=r"sent 2,101 deliveries but counts 1,000 \(totalCount\)"):
        _check_count(2_101, 1_000, 100)
