"""Tables for people at every width, TSV for pipes, ages, durations and the one time format."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from rich.text import Text

from atwh.client.failures import FailureSummary
from atwh.client.model import parse_delivery
from atwh.output.listing import ALWAYS, Column, fit, table, write_tsv
from atwh.output.tables import (
    age,
    deliveries_table,
    delivery_columns,
    duration,
    failures_table,
    inbox_table,
    when,
)
from atwh.receiver.inbox import InboxRecord
from tests.conftest import node

WIDTHS = (60, 80, 120, 200)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid(i: int) -> str:
    return f"{i:08x}-83be-4390-8e28-06fca96042fb"


def deliveries() -> list:
    nodes = [
        node(1, code=200, age=timedelta(seconds=3)),
        node(2, code=500, event="community-article.published", age=timedelta(minutes=50)),
        node(3, code=None, message="ESOCKETTIMEDOUT", age=timedelta(hours=5)),
        node(4, code=404, body="x" * 300, event="ticket-comment.created", age=timedelta(days=29)),
    ]
    for i, n in enumerate(nodes):
        n["id"] = uuid(i)
        n["event"]["id"] = uuid(100 + i)
    return [parse_delivery(n, "5f3a0c7e2b1d") for n in nodes]


def render(renderable: object, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, no_color=True, force_terminal=False).print(renderable)
    return out.getvalue()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("multi", [False, True])
def test_deliveries_keep_ids_status_and_code_whole_at_every_width(width, multi):
    rows = deliveries()
    text = render(deliveries_table(rows, multi), width)
    lines = text.rstrip("\n").splitlines()
    assert all(len(line.rstrip()) <= width for line in lines), text
    assert len(lines) == 1 + len(rows)  # one line a row
    assert "…" not in " ".join(UUID.findall(text))
    for d, line in zip(rows, lines[1:], strict=True):
        assert d.id in line  # the delivery id, whole
        assert (d.status or "") in line
        assert str(d.status_code or "—") in line
        for cut in re.findall(r"\S*…", line):  # only the response and event name are cut
            assert cut.rstrip("…") in (d.result.body or "") + " " + (d.event.name or "")


def test_the_order_columns_go_in_as_the_width_shrinks():
    def header(width: int) -> list[str]:
        first = render(deliveries_table(deliveries()), width).splitlines()[0]
        return re.split(r"\s{2,}", first.strip())

    assert header(200) == [
        "Created",
        "Age",
        "Status",
        "Code",
        "Delivery",
        "Event",
        "Event id",
        "Lag",
        "Response",
    ]
    assert header(140) == [
        "Created",
        "Age",
        "Status",
        "Code",
        "Delivery",
        "Event",
        "Lag",
        "Response",
    ]
    assert header(120) == ["Created", "Age", "Status", "Code", "Delivery", "Event", "Lag"]
    assert header(80) == ["Age", "Status", "Code", "Delivery", "Event"]
    assert header(60) == ["Age", "Status", "Code", "Delivery"]


@pytest.mark.parametrize("width", WIDTHS)
def test_when_it_happened_always_shows_and_the_event_name_is_shortened_first(width):
    text = render(deliveries_table(deliveries(), show_webhook=False), width)
    lines = text.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip())[0] in ("Created", "Age")
    for line in lines[1:]:
        assert re.match(r"(\d\d-\d\d \d\d:\d\d:\d\d  )?\d+[smhd] ago ", line), line
    if width >= 80:  # the event name stays, shortened, rather than the time going
        assert "Event" in lines[0] and "community-art" in text


def test_columns_chooses_the_columns_and_their_order_at_any_width():
    from atwh.errors import UsageError
    from atwh.output.listing import choose

    chosen = choose(delivery_columns(), "created, event,code")
    text = render(table(chosen, deliveries()), 60)
    assert re.split(r"\s{2,}", text.splitlines()[0].strip()) == ["Created", "Event", "Code"]
    assert "community-article.published" in text  # chosen: whole, not dropped at 60
    out = io.StringIO()
    write_tsv(choose(delivery_columns(), "age,delivery"), deliveries()[:1], out)
    assert out.getvalue().splitlines()[0] == "age\tdelivery"
    with pytest.raises(UsageError, match="no column 'evnt'; choose from created,age,"):
        choose(delivery_columns(), "created,evnt")


def test_fit_drops_the_least_important_first_and_shrinks_only_what_may_shrink():
    cols = [
        Column("A", str, keep=ALWAYS),
        Column("B", str, keep=5),
        Column("C", str, keep=1, shrink=4),
        Column("D", str, keep=3),
    ]
    assert fit([10, 10, 30, 10], cols, 200) == [10, 10, 30, 10]
    assert fit([10, 10, 30, 10], cols, 40) == [10, 10, 4, 10]  # C shrinks before D goes
    assert fit([10, 10, 30, 10], cols, 34) == [10, 10, 0, 10]
    assert fit([10, 10, 30, 10], cols, 22) == [10, 10, 0, 0]
    assert fit([10, 10, 30, 10], cols, 5) == [10, 0, 0, 0]  # an ALWAYS column stays


def test_fit_gives_the_room_left_first_to_the_columns_it_makes_whole():
    cols = [
        Column("Id", str, keep=ALWAYS),
        Column("Events", str, keep=50, shrink=4),
        Column("Description", str, keep=40, shrink=4),
    ]
    # 8 columns spare: not enough for Events whole (20 short), enough for Description (6)
    assert fit([10, 24, 10], cols, 30) == [10, 6, 10]


def test_fit_shortens_an_always_column_that_overflows_down_to_8():
    cols = [Column("Id", str, keep=ALWAYS), Column("URL", str, keep=ALWAYS, shrink=40)]
    assert fit([36, 60], cols, 60) == [36, 22]
    assert fit([36, 60], cols, 40) == [36, 8]  # never narrower than 8


@pytest.mark.parametrize("width", WIDTHS)
def test_failures_summary_fits_with_cause_and_counts(width):
    summary = FailureSummary()
    for d in deliveries():
        summary.observe(d, d.failed)
    text = render(failures_table(summary.groups()), width)
    assert all(len(line.rstrip()) <= width for line in text.splitlines())
    assert "HTTP 500" in text and "Failures" in text
    assert "4…" not in text  # the HTTP code is never cut
    for example in UUID.findall(text):
        assert len(example) == 36


def _record(i: int, **extra) -> InboxRecord:
    fields = {
        "id": i,
        "received": datetime.now(UTC) - timedelta(minutes=i),
        "method": "POST",
        "path": "/webhook",
        "headers": [],
        "body": b"{}",
        "verdict": "rejected" if i % 2 else "verified",
        "reason": "bad_signature" if i % 2 else None,
        "answer_code": 401 if i % 2 else 200,
        "answer_body": "",
        "event_id": uuid(i),
        "event_name": "ticket.created",
        "duplicates": i % 3,
        "forward_status": "delivered" if i % 2 == 0 else None,
        "forward_attempts": 1,
        "forward_code": 200,
        "forward_error": None,
        "acked": i % 2 == 0,
        "forwarded_at": None,
    }
    fields.update(extra)
    return InboxRecord(**fields)


@pytest.mark.parametrize("width", WIDTHS)
def test_inbox_is_one_line_a_row(width):
    records = [_record(i) for i in range(1, 6)]
    text = render(inbox_table(records), width)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) == 1 + len(records)
    assert all(len(line.rstrip()) <= width for line in lines)
    if width >= 80:
        assert all("ticket.created" in line for line in lines[1:])
    for r, line in zip(records, lines[1:], strict=True):
        assert re.match(rf"\s*{r.id}\s", line)
        assert str(r.answer_code) in line


def test_tsv_is_every_column_untruncated_under_a_header():
    rows = deliveries()
    out = io.StringIO()
    write_tsv(delivery_columns(), rows, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "created\tstatus\tcode\tdelivery\tevent\tevent_id\tlag_ms\tresponse"
    fields = [line.split("\t") for line in lines[1:]]
    assert all(len(f) == 8 for f in fields)
    assert fields[3][7] == "x" * 300  # nothing cut
    assert fields[2][2] == ""  # no answer: empty, not a dash
    assert fields[0][0] == rows[0].iso_dates()[0]  # ISO 8601 UTC, as the API sends it
    assert "  " not in out.getvalue()  # never padded


def test_tsv_fields_never_carry_tabs_or_line_breaks():
    out = io.StringIO()
    cols = [Column("Text", str)]
    write_tsv(cols, ["a\tb\nc\rd"], out)
    assert out.getvalue().count("\t") == 0 and out.getvalue().count("\n") == 2


def test_a_rich_cell_is_plain_in_tsv():
    out = io.StringIO()
    write_tsv([Column("Styled", lambda r: Text(r, style="red"))], ["x"], out)
    assert out.getvalue() == "styled\nx\n"


NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def test_age_renders_every_second_up_to_two_days_and_every_minute_to_thirty():
    seen = set()
    previous = None
    for seconds in [*range(0, 2 * 86400), *range(2 * 86400, 30 * 86400 + 1, 60)]:
        text = age(NOW - timedelta(seconds=seconds), NOW)
        assert text and len(text) <= 8, (seconds, text)
        assert text == "now" or re.fullmatch(r"\d+[smhd] ago", text), (seconds, text)
        if text != previous:
            seen.add(text)
            previous = text
    assert {"now", "1s ago", "59s ago", "1m ago", "59m ago", "1h ago", "23h ago", "30d ago"} <= seen


def test_age_in_the_future_and_unknown():
    assert age(NOW + timedelta(minutes=5), NOW) == "in 5m"
    assert age(None, NOW) == "?"


def test_duration_renders_every_value_from_zero_to_thirty_days():
    for tenths in range(0, 36000):  # 0 to 1 hour, in tenths of a second
        text = duration(tenths / 10)
        assert text and len(text) <= 7, (tenths, text)
    for seconds in range(3600, 30 * 86400 + 1, 7):
        text = duration(seconds)
        assert text and len(text) <= 7, (seconds, text)
    assert [duration(s) for s in (0.25, 2.0, 59.94, 59.96, 185, 7620, 273600)] == [
        "250ms",
        "2.0s",
        "59.9s",
        "1m00s",
        "3m05s",
        "2h07m",
        "3d04h",
    ]


def test_one_time_format_with_the_year_only_when_it_is_not_this_one():
    now = datetime.now(UTC)
    this_year = now - timedelta(hours=1)
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", when(this_year, now))
    last_year = now.replace(year=now.year - 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when(last_year, now))
    assert when(last_year, now).startswith(str(last_year.astimezone().year))


def test_a_listing_built_from_columns_renders_as_a_table():
    cols = [Column("Id", lambda r: r, keep=ALWAYS), Column("Len", lambda r: str(len(r)))]
    text = render(table(cols, ["abc", "de"]), 40)
    assert [line.rstrip() for line in text.splitlines()] == ["Id   Len", "abc  3", "de   2"]


# -- narrow tables cut the right things (issue 26, item 8) --------------------------------


def _header(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[0].strip())


def test_failures_at_60_keeps_what_still_fails_before_what_recovered():
    summary = FailureSummary()
    for d in deliveries():
        summary.observe(d, d.failed)
    header = _header(render(failures_table(summary.groups()), 60))
    assert "Still failing" in header and "Recovered" not in header
    assert header[:2] == ["Cause", "Event"]


def test_stats_of_two_webhooks_at_80_keeps_each_id_on_one_line(atwh, fake_api, monkeypatch):
    first, second = uuid(7001), uuid(7002)
    fake_api.add(first, [node(1, code=200), node(2, code=500)])
    fake_api.add(second, [node(3, code=200)])
    for width, side_by_side in ((80, False), (200, True)):
        monkeypatch.setenv("COLUMNS", str(width))
        result = atwh("stats", first, second, "--format", "table")
        assert result.exit_code == 0, result.output
        lines = result.stdout.partition("Attempts per day")[0].splitlines()  # the numbers
        assert all(len(line) <= width for line in lines)
        holding = [line for line in lines if first in line or second in line]
        assert (len(holding) == 1) == side_by_side, result.stdout  # one header, or a title each
        assert first in result.stdout and second in result.stdout  # each whole, on one line


@pytest.mark.parametrize("width", [60, 80])
def test_webhooks_list_shortens_a_url_after_its_host_and_port(width):
    from atwh.client.webhooks import WebhookInfo
    from atwh.output.tables import webhook_columns

    hook = WebhookInfo(uuid(1), url="http://127.0.0.1:18731/webhooks/allthings/tickets")
    text = render(table(webhook_columns(), [hook]), width)
    assert uuid(1) in text and "127.0.0.1:18731" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_short_url_keeps_the_host_and_port():
    from atwh.output.listing import short_url

    url = "http://127.0.0.1:18731/webhook"
    assert short_url(url, 40) == url
    assert short_url(url, 25) == "http://127.0.0.1:18731/w…"
    assert short_url(url, 22) == "127.0.0.1:18731/webho…"
    assert short_url(url, 12) == "…0.0.1:18731"


def test_webhook_events_at_60_drop_the_namespace_and_keep_the_descriptions_start():
    from atwh.client.webhooks import EventType
    from atwh.output.tables import event_type_columns

    rows = [
        EventType("ticket", "ticket.created", "A ticket was created."),
        EventType(
            "user",
            "user.registered",
            "Emulator's own addition, not attested by Allthings: a user registered.",
        ),
    ]
    text = render(table(event_type_columns(), rows), 60)
    assert _header(text) == ["Name", "Description"]
    assert "Emulator's own addition" in text


def test_reconcile_lists_of_lost_events_have_no_always_0_stored_column():
    from atwh.output.recover import entry_columns
    from atwh.recover.reconcile import Entry

    entry = Entry(uuid(3), "ticket-comment.created", "lost", attempts=1, last_code=200)
    text = render(table(entry_columns(stored=False), [entry]), 80)
    assert "Stored" not in text and "ticket-comment.created" in text  # the name whole
    assert "Stored" in render(table(entry_columns(), [entry]), 80)


def test_inbox_at_80_has_no_empty_forward_column():
    rows = [_record(i, forward_status=None) for i in range(1, 4)]
    assert "Forward" not in render(inbox_table(rows), 80)
    assert "Forward" in render(inbox_table([_record(2)]), 200)


def test_the_retry_chain_of_deliveries_id_at_80_keeps_ids_whole_and_the_marker_on_its_line():
    from atwh.output.tables import delivery_detail

    chain = deliveries()
    text = render(delivery_detail(chain[1], chain), 80)
    attempts = text[text.index("Attempts for this event") :]
    for d in chain:
        assert d.id in attempts
    (marked,) = [line for line in attempts.splitlines() if "◀" in line]
    assert chain[1].id in marked


# -- small inconsistencies (issue 26, item 12) ----------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_one_dash_for_no_value_in_code_and_lag(width):
    n = node(9, code=None)
    n["deliveryDate"] = None  # no answer: never delivered, no lag
    rows = [parse_delivery(n, "w")]
    text = render(table(delivery_columns(), rows), width)
    assert "–" not in text  # an en dash nowhere; the em dash of Code, in Lag too
    if width >= 120:
        assert text.splitlines()[1].count("—") == 2, text  # Code's and Lag's


def test_piped_lag_is_milliseconds_and_no_answer_an_empty_field():
    out = io.StringIO()
    write_tsv(delivery_columns(), deliveries(), out)
    header, *lines = [line.split("\t") for line in out.getvalue().splitlines()]
    assert header[-2:] == ["lag_ms", "response"]
    assert lines[0][-2] == "250"  # a number, no unit
    no_answer = lines[2]  # ESOCKETTIMEDOUT: the API's message, nothing made up around it
    assert no_answer[2] == "" and no_answer[-1] == "ESOCKETTIMEDOUT"
    out = io.StringIO()
    bare = parse_delivery(node(9, code=None), "w")
    write_tsv(delivery_columns(), [bare], out)
    assert out.getvalue().splitlines()[1].endswith("\t")  # empty: no "(no answer)"


def test_piped_tables_and_detail_views_have_no_padding_and_fit_their_content(atwh, fake_api):
    fake_api.add("w1", [node(1), node(2, code=500)])
    for args in (
        ["deliveries", "w1", "--format", "table"],
        ["deliveries", "w1", "--id", "d1"],
    ):
        result = atwh(*args)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines and all(line == line.rstrip() for line in lines), args
        assert max(map(len, lines)) < 160, args  # no box drawn to 160 columns


def _trigger_results(answer: bytes) -> list:
    from atwh.endpoint.send import Answer
    from atwh.endpoint.trigger import Request, Result

    return [
        Result(Request(b"{}", "ticket.created", uuid(i), None, True), Answer(401, 0.003, answer))
        for i in range(2)
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_trigger_shows_the_whole_answer_under_its_row_when_the_column_is_too_narrow(width):
    """At 80 columns the answer column had 14 characters: a 401's reason was cut after
    `{"message": "`. An answer that does not fit goes under its row, whole (folded), and the
    event id and the code stay whole in the row."""
    from atwh.output.endpoint import trigger_columns

    reason = b'{"message": "signature does not match the body", "reason": "bad_signature"}'
    text = render(table(trigger_columns(), _trigger_results(reason)), width)
    lines = text.rstrip("\n").splitlines()
    assert all(len(line) <= width for line in lines)
    flat = " ".join(line.strip() for line in lines)
    assert flat.count(reason.decode()) == 2 and "…" not in text
    assert flat.count(uuid(0)) == 1 and flat.count(" 401 ") == 2
    if width >= 160:  # room for it: one line a row, the answer in its column
        assert len(lines) == 3 and "Answer" in lines[0]
    else:
        assert "Answer" not in lines[0] and lines[2].startswith("  {")


def test_a_column_below_stays_in_the_table_when_it_fits_and_empty_cells_add_no_line():
    cols = [
        Column("Id", lambda r: r[0], keep=ALWAYS),
        Column("Note", lambda r: r[1], keep=1, below=True),
    ]
    rows = [("a" * 30, ""), ("b" * 30, "x" * 100)]
    assert render(table(cols, rows), 200).splitlines()[0].split() == ["Id", "Note"]
    narrow = [line.rstrip() for line in render(table(cols, rows), 60).splitlines()]
    assert narrow == ["Id", "a" * 30, "b" * 30, "  " + "x" * 58, "  " + "x" * 42]


def test_a_request_without_an_event_shows_the_missing_value_sign_and_an_empty_tsv_field():
    """The inbox's Event column showed '-' for a test request, and piped it as a literal
    '-'; a missing value is '—' in a table, as in every other column, and empty in TSV."""
    from atwh.output.tables import inbox_columns

    test = _record(2, verdict="test", event_id=None, event_name=None)
    line = render(inbox_table([test]), 200).splitlines()[1]
    assert " — " in line and " - " not in line
    out = io.StringIO()
    write_tsv(inbox_columns(), [test], out)
    header, row = (line.split("\t") for line in out.getvalue().splitlines())
    assert row[header.index("event")] == ""
