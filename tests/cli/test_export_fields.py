"""An export writes CSV rows from the API's DeliveryRows without making Delivery objects
(output.show.export_pages): what it writes must be what the deliveries would give."""

from __future__ import annotations

import copy
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atwh.client.api import Page
from atwh.client.filters import DeliveryFilter, StatusCodeMatch
from atwh.client.model import Webhook, delivery_row, parse_delivery
from atwh.output.export import csv_row, csv_row_of
from atwh.output.show import export_pages, write_export

WEBHOOK = Webhook("wh-1", None, None, True, None)

junk = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.integers(-3, 2**65),
    st.booleans(),
    st.just({"a": [1]}),
    st.just([1, "x"]),
    st.floats(allow_nan=False, allow_infinity=False),
)
dates = st.one_of(
    st.none(),
    st.just("2026-11-30T10:00:00.000Z"),
    st.just("2026-11-30T10:00:00Z"),
    st.just("2026-11-30T12:00:00.123+02:00"),
    st.just("2026-11-30 10:00"),
    st.just("1764496800000"),
    st.integers(0, 2**42),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    junk,
)
codes = st.one_of(
    st.none(), st.integers(-1, 700), st.sampled_from(["500", " 204 ", "5xx", ""]), st.booleans()
)
headers = st.one_of(
    st.none(),
    st.just("h"),
    st.lists(st.fixed_dictionaries({"name": st.text(max_size=3), "value": junk}), max_size=2),
)
results = st.one_of(
    st.none(),
    st.just("oops"),
    st.fixed_dictionaries(
        {},
        optional={"statusCode": codes, "body": junk, "message": junk, "headers": headers},
    ),
)
events = st.one_of(
    st.none(),
    st.just([]),
    st.fixed_dictionaries(
        {},
        optional={
            "id": junk,
            "name": st.one_of(st.sampled_from(["ticket.created", "user.created"]), junk),
            "urn": junk,
            "payload": junk,
            "createdDate": dates,
        },
    ),
)
_instants = st.datetimes(
    min_value=datetime(2026, 11, 30, 9, 30),
    max_value=datetime(2026, 11, 30, 11, 30),
    timezones=st.just(UTC),
)
# Every form of date the API could send: JavaScript's (`.000Z`), ISO 8601 with an offset
# or without a fraction, and epoch milliseconds (webhooks-api.md).
iso_dates = st.one_of(
    _instants.map(lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    _instants.map(lambda d: d.isoformat(timespec="milliseconds")),
    _instants.map(lambda d: d.isoformat(timespec="seconds").replace("+00:00", "Z")),
    _instants.map(lambda d: d.isoformat()),
    _instants.map(lambda d: d.astimezone(timezone(timedelta(hours=2))).isoformat()),
    _instants.map(lambda d: round(d.timestamp() * 1000)),
)
usual = st.fixed_dictionaries(  # as the API sends them: what most exports are made of
    {
        "id": st.text("abc0123", min_size=1, max_size=4),
        "createdDate": iso_dates,
        "deliveryDate": st.one_of(st.none(), iso_dates),
        "status": st.sampled_from(["SUCCESS", "FAILED", "PENDING"]),
        "result": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "statusCode": st.one_of(st.none(), st.sampled_from([200, 204, 302, 500, 503])),
                    "body": st.one_of(st.none(), st.text(max_size=4)),
                    "message": st.one_of(st.none(), st.just("timeout")),
                    "headers": st.just([{"name": "server", "value": "x"}]),
                }
            ),
        ),
        "event": st.fixed_dictionaries(
            {
                "id": st.text("ef", min_size=1, max_size=2),
                "name": st.sampled_from(["ticket.created", "user.created"]),
                "urn": st.just("urn:x"),
                "payload": st.just("{}"),
                "createdDate": iso_dates,
            }
        ),
        "retry": st.one_of(st.none(), st.fixed_dictionaries({"id": st.just("d9")})),
    }
)
PATHS = [
    ("id",),
    ("status",),
    ("createdDate",),
    ("deliveryDate",),
    ("result",),
    ("result", "statusCode"),
    ("result", "body"),
    ("result", "message"),
    ("result", "headers"),
    ("event",),
    ("event", "id"),
    ("event", "name"),
    ("event", "urn"),
    ("event", "payload"),
    ("event", "createdDate"),
    ("retry",),
    ("retry", "id"),
]
_GONE = object()
odd_values = st.one_of(  # for any field: the wrong type, out of range, or left out
    st.just(_GONE),
    st.none(),
    st.integers(-2, 99),
    st.integers(600, 2**65),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.just({"a": 1}),
    st.just([1]),
    dates,
)


def with_odd_field(node: dict, path: tuple[str, ...], value: object) -> dict:
    """The node with the field at `path` changed to `value`, or left out (_GONE)."""
    node = copy.deepcopy(node)
    *parents, key = path
    target = node
    for parent in parents:
        if not isinstance(target.get(parent), dict):
            return node  # nothing there to change
        target = target[parent]
    if value is _GONE:
        target.pop(key, None)
    else:
        target[key] = value
    return node


@st.composite
def one_odd_field(draw):
    """A usual node with one field changed to anything, or left out."""
    return with_odd_field(draw(usual), draw(st.sampled_from(PATHS)), draw(odd_values))


nodes = st.one_of(
    usual,
    one_odd_field(),
    one_odd_field(),
    st.none(),
    st.integers(),
    st.fixed_dictionaries(
        {"id": st.one_of(st.text(min_size=1, max_size=6), st.integers(), st.none(), st.just({}))},
        optional={
            "createdDate": dates,
            "deliveryDate": dates,
            "status": st.one_of(st.sampled_from(["SUCCESS", "FAILED", "PENDING", " failed"]), junk),
            "result": results,
            "event": events,
            "retry": st.one_of(st.none(), st.fixed_dictionaries({"id": junk})),
        },
    ),
)
filters = st.builds(
    DeliveryFilter,
    since=st.one_of(st.none(), st.just(datetime(2026, 11, 30, 10, tzinfo=UTC))),
    until=st.one_of(st.none(), st.just(datetime(2026, 11, 30, 11, tzinfo=UTC))),
    events=st.one_of(st.just([]), st.just(["ticket.*"])),
    status_codes=st.one_of(st.just([]), st.just([StatusCodeMatch("5xx")])),
    failed_only=st.booleans(),
    limit=st.one_of(st.none(), st.integers(0, 6)),
)


@given(nodes)
def test_a_csv_row_from_a_delivery_row_is_the_row_of_the_delivery(node):
    row = delivery_row(node)
    delivery = parse_delivery(node, "wh-1")
    assert (row is None) == (delivery is None)
    if delivery is not None:
        assert row is not None
        assert row.failed == delivery.failed
        assert csv_row_of(row, "wh-1", row.failed) == csv_row(delivery)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30T10:00:00.000Z",
        "2026-11-30T10:00:00+00:00",
        "2026-11-30T10:00:00.123456+00:00",
        "2026-11-30T12:00:00.5+02:00",
        "2026-11-30T10:00:00Z",
    ],
)
def test_an_export_writes_the_dates_as_the_api_sent_them(text):
    node = {
        "id": "d1",
        "createdDate": text,
        "deliveryDate": text,
        "status": "FAILED",
        "result": None,
        "event": {"id": "e1", "name": "t", "createdDate": text},
    }
    for fmt in ("csv", "ndjson"):
        out = _export([Page(WEBHOOK, [node])], DeliveryFilter(), fmt, fast=True)
        assert out.count(text) == 3, out
        assert out == _export([Page(WEBHOOK, [node])], DeliveryFilter(), fmt, fast=False)


def test_an_export_writes_epoch_milliseconds_as_iso_8601():
    node = {"id": "d1", "createdDate": 1764496800000, "status": "FAILED", "event": {}}
    out = _export([Page(WEBHOOK, [node])], DeliveryFilter(), "csv", fast=True)
    assert "d1,2025-11-30T10:00:00.000Z," in out


def _export(pages, flt, fmt, fast: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / f"out.{fmt}")
        if fast:
            export_pages(pages, flt, fmt, out)
        else:
            deliveries = (d for p in pages for d in p.deliveries)
            write_export(flt.apply(deliveries), fmt, out)
        return Path(out).read_text(encoding="utf-8")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(nodes, max_size=6), min_size=1, max_size=3), filters)
def test_an_export_from_pages_writes_what_the_deliveries_give(chunks, flt):
    for fmt in ("csv", "ndjson", "json"):
        fast = _export([Page(WEBHOOK, nodes) for nodes in chunks], flt, fmt, fast=True)
        slow = _export([Page(WEBHOOK, nodes) for nodes in chunks], flt, fmt, fast=False)
        assert fast == slow


def test_an_export_counts_what_it_read_and_stops_at_the_limit():
    def node(i: int, code: int) -> dict:
        return {
            "id": f"d{i}",
            "createdDate": f"2026-11-30T10:00:{59 - i:02d}.000Z",
            "status": "FAILED" if code >= 400 else "SUCCESS",
            "result": {"statusCode": code, "body": "x"},
            "event": {"id": f"e{i}", "name": "ticket.created"},
        }

    pages = [Page(WEBHOOK, [node(0, 500), node(1, 200), None]), Page(WEBHOOK, [node(2, 502)])]
    flt = DeliveryFilter(failed_only=True, limit=1)
    with tempfile.TemporaryDirectory() as tmp:
        done = export_pages(pages, flt, "csv", str(Path(tmp) / "o.csv"))
        lines = (Path(tmp) / "o.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", "d0"]
    assert (done.written, done.scanned) == (1, 3)
    assert done.newest == datetime(2026, 11, 30, 10, 0, 59, tzinfo=UTC)

    pages = [Page(WEBHOOK, [node(1, 200)])]
    with tempfile.TemporaryDirectory() as tmp:
        done = export_pages(
            pages, DeliveryFilter(failed_only=True), "csv", str(Path(tmp) / "o.csv")
        )
    assert (done.written, done.scanned) == (0, 1)


def test_a_payload_with_a_lone_surrogate_is_exported_as_the_escape_it_came_as():
    """orjson refuses a lone surrogate (a JSON escape such as \\ud800 in the API's text);
    the json module's fallback wrote it unencodable and the export ended in a
    UnicodeEncodeError traceback. It is written as the escape again."""
    node = {
        "id": "d1",
        "createdDate": "2026-11-30T10:00:00.000Z",
        "status": "FAILED",
        "result": None,
        "event": {"id": "e1", "name": "t", "payload": '{"x": "\ud800"}'},
    }
    for fmt in ("ndjson", "json"):
        for fast in (True, False):
            out = _export([Page(WEBHOOK, [node])], DeliveryFilter(), fmt, fast=fast)
            assert '"payload":"{\\"x\\": \\"\\ud800\\"}"' in out, out
