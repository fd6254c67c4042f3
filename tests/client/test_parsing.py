"""Tolerant parsing of what the API sends; durations and the failure predicate (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atwh.client.filters import DeliveryFilter, StatusCodeMatch, parse_time
from atwh.client.model import is_failure, parse_delivery
from atwh.core.dates import parse_datetime
from atwh.core.durations import parse_duration
from atwh.errors import UsageError

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-01T12:00:00Z",
        "2026-11-01T12:00:00.000Z",
        "2026-11-01T14:00:00+02:00",
        "2026-11-01T07:00:00-05:00",
        "2026-11-01T12:00:00",
        1793534400000,
        1793534400000.0,
        "1793534400000",
    ],
)
def test_dates_in_every_form(value):
    assert parse_datetime(value) == T


@pytest.mark.parametrize(
    "value", [None, "", "yesterday", {}, [], True, float("nan"), 10**30, "2026-13-45"]
)
def test_unreadable_dates_are_none(value):
    assert parse_datetime(value) is None


def test_status_outside_the_enum_and_null():
    d = parse_delivery(
        {"id": "1", "status": "RETRYING", "result": {"statusCode": 200}, "event": {}}
    )
    assert d is not None and d.status == "RETRYING" and not d.failed
    d = parse_delivery({"id": "1", "status": None, "result": {"statusCode": 503}, "event": {}})
    assert d is not None and d.status is None and d.failed


def test_null_result_is_no_answer():
    d = parse_delivery({"id": "1", "status": "FAILED", "result": None, "event": None})
    assert d is not None and d.result is None and d.failed and d.cause == "no answer"
    assert d.event.name is None


@pytest.mark.parametrize(
    ("payload", "decoded"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),  # an object, not the published string
        ("not json {", "not json {"),
        (None, None),
        ([1, 2], [1, 2]),
    ],
)
def test_payload_as_string_object_or_not_json(payload, decoded):
    d = parse_delivery({"id": "1", "event": {"payload": payload}})
    assert d is not None and d.event.payload_value() == decoded
    assert d.to_api()["event"]["payload"] == (
        payload if isinstance(payload, str) or payload is None else json.dumps(payload)
    )


def test_junk_fields_do_not_break_parsing():
    d = parse_delivery(
        {
            "id": 42,
            "createdDate": {"x": 1},
            "result": {
                "statusCode": "502",
                "headers": [None, {"name": "a"}, "x"],
                "body": {"k": 1},
            },
            "event": {"id": 7, "name": ["x"]},
            "retry": "d2",
        }
    )
    assert d is not None
    assert d.id == "42" and d.created is None and d.status_code == 502
    assert [h.name for h in d.result.headers] == ["a"]
    assert d.result.body == '{"k": 1}' and d.event.id == "7" and d.retry_id is None


@pytest.mark.parametrize("code", [0, -1, 99, 600, "abc", True])
def test_impossible_status_codes_mean_no_answer(code):
    d = parse_delivery({"id": "1", "result": {"statusCode": code, "message": "ECONNREFUSED"}})
    assert d is not None and d.status_code is None and d.failed and d.cause == "ECONNREFUSED"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 2H ", 7200),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["7x", "", "d", "1", "-5m", "1h 30m", "h1", "1.2.3s"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smhdw")), min_size=1, max_size=4)
)
def test_duration_is_the_sum_of_its_parts(parts):
    text = "".join(f"{n}{u}" for n, u in parts)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    assert parse_duration(text) == timedelta(seconds=sum(n * units[u] for n, u in parts))


@given(st.text(max_size=12))
def test_duration_parser_never_crashes(text):
    try:
        assert parse_duration(text) >= timedelta(0)
    except ValueError:
        pass


@given(st.text(max_size=30))
def test_time_parser_gives_a_time_or_a_usage_error(text):
    try:
        assert isinstance(parse_time(text, now=T), datetime)
    except UsageError as e:
        assert "\n" not in e.message


def test_times():
    assert parse_time("2h", now=T) == T - timedelta(hours=2)
    assert parse_time("2026-10-01T00:00:00Z", now=T) == datetime(2026, 10, 1, tzinfo=UTC)
    local_midnight = parse_time("2026-10-01", now=T)
    assert local_midnight.tzinfo is not None and local_midnight.hour == 0
    with pytest.raises(UsageError, match="not a duration"):
        parse_time("7x", now=T)


STATUSES = st.sampled_from(["SUCCESS", "FAILED", "PENDING", None, "weird", "failed"])
CODES = st.one_of(st.none(), st.integers(100, 599))


@given(STATUSES, CODES, st.booleans())
def test_failure_predicate(status, code, answered):
    failed = is_failure(status, code if answered else None, answered)
    if (status or "").upper() == "FAILED":
        assert failed
    elif answered and code is not None and 200 <= code <= 299:
        assert not failed
    elif answered:
        assert failed  # 1xx, 3xx, 4xx, 5xx, or an answer without a code
    else:
        assert failed == ((status or "").upper() != "PENDING")


@given(CODES)
def test_status_code_classes(code):
    assert StatusCodeMatch.parse("none").matches(code) == (code is None)
    if code is not None:
        assert StatusCodeMatch.parse(f"{code // 100}xx").matches(code)
        assert StatusCodeMatch.parse(str(code)).matches(code)


def test_filter_limit_stops_early():
    seen = []

    def source():
        for i in range(100):
            seen.append(i)
            yield parse_delivery({"id": str(i), "result": {"statusCode": 200}})

    out = list(DeliveryFilter(limit=3).apply(source()))
    assert [d.id for d in out] == ["0", "1", "2"] and len(seen) == 3
