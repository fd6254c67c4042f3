"""`atwh stats`: numbers checked against values worked out by hand, percentiles at the edge
sizes, the chart at 80 columns, the monitoring bars' exit codes, and real HTTP against the
emulator."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from rich.console import Console

from atwh.client.model import Delivery, Event, Result
from atwh.core.dates import parse_datetime
from atwh.observe.stats import Stats, WebhookStats, nearest_rank
from atwh.output.stats import _split, chart, stats_view
from tests.conftest import NOW, node
from tests.observe.conftest import emulator

H = timedelta(hours=1)
M = timedelta(minutes=1)
LAG = timedelta(milliseconds=250)


def at(age: timedelta) -> str:
    return (NOW - age).isoformat().replace("+00:00", "Z")


def attempt(
    i: int,
    event_id: str,
    event_age: timedelta,
    age: timedelta,
    code: int | None,
    *,
    name: str = "ticket.created",
    status: str | None = None,
    message: str | None = None,
) -> dict:
    """A node whose event was created `event_age` ago and this attempt `age` ago; answered
    attempts are delivered 250 ms after they were made."""
    n = node(i, code=code, status=status, event=name, event_id=event_id, age=age, message=message)
    n["event"]["createdDate"] = at(event_age)
    n["deliveryDate"] = at(age - LAG) if code is not None else None
    return n


def small_history() -> list[dict]:
    """Four events, six attempts in the window and one before it:
    A fails (500), then succeeds 10 minutes later (recovered);
    B succeeds at once; C gets no answer, then 404 10 minutes later (still failing);
    D is still pending; E's only attempt is 8 days old (outside the default 7 days)."""
    return [
        attempt(6, "D", 10 * M, 10 * M, None, name="ticket.updated", status="PENDING"),
        attempt(5, "C", 1 * H, 50 * M, 404, name="ticket.updated"),
        attempt(4, "C", 1 * H, 1 * H, None, name="ticket.updated", message="timeout"),
        attempt(3, "B", 2 * H, 2 * H, 200),
        attempt(2, "A", 3 * H, 3 * H - 10 * M, 200),
        attempt(1, "A", 3 * H, 3 * H, 500),
        attempt(7, "E", 8 * 24 * H, 8 * 24 * H, 200),
    ]


EXPECTED = {
    "webhook_id": "wh1",
    "attempts": 6,
    "succeeded": 2,
    "failed": 3,
    "pending": 1,
    "events": 4,
    "events_succeeded": 2,
    "attempt_success_rate": 2 / 5,  # pending left out
    "event_success_rate": 2 / 3,  # A and B of A, B, C (D has no result yet)
    "first_attempt_success_rate": 1 / 3,  # only B of A, B, C
    "retries_per_event": {"mean": 0.5, "max": 1},
    "answers": {"2xx": 2, "3xx": 0, "4xx": 1, "5xx": 1, "none": 1},
    "top_codes": [
        {"code": 200, "count": 2},
        {"code": 404, "count": 1},
        {"code": 500, "count": 1},
    ],
    "top_causes": [
        {"cause": "HTTP 404", "count": 1},
        {"cause": "HTTP 500", "count": 1},
        {"cause": "timeout", "count": 1},
    ],
    # lags: A#1 0.25 s, A#2 600.25 s, B 0.25 s, C#2 600.25 s (C#1 and D: not delivered)
    "lag_seconds": {"count": 4, "p50": 0.25, "p95": 600.25, "p99": 600.25, "max": 600.25},
    "recovery_seconds": {"count": 1, "p50": 600.0, "p95": 600.0},
    "still_failing_events": 1,
    "odd_dates": 0,
    "by_event": [
        {
            "event_name": "ticket.created",
            "attempts": 3,
            "succeeded": 2,
            "failed": 1,
            "pending": 0,
            "attempt_success_rate": 2 / 3,
        },
        {
            "event_name": "ticket.updated",
            "attempts": 3,
            "succeeded": 0,
            "failed": 2,
            "pending": 1,
            "attempt_success_rate": 0.0,
        },
    ],
    "by_code": [
        {"code": "200", "attempts": 2},
        {"code": "404", "attempts": 1},
        {"code": "500", "attempts": 1},
        {"code": "none", "attempts": 1},
    ],
}


# -- percentiles ------------------------------------------------------------------------


def test_nearest_rank_at_the_edge_sizes():
    assert nearest_rank([], 50) is None
    assert [nearest_rank([7.0], p) for p in (50, 95, 99)] == [7.0, 7.0, 7.0]
    assert [nearest_rank([1.0, 2.0], p) for p in (1, 50, 51, 95, 99, 100)] == [
        1.0,
        1.0,
        2.0,
        2.0,
        2.0,
        2.0,
    ]


def test_nearest_rank_is_the_ceiling_rank_without_float_error():
    values = [float(i) for i in range(1, 21)]  # 1..20
    assert nearest_rank(values, 95) == 19.0  # rank ceil(0.95 × 20) = 19, not 20
    assert nearest_rank(values, 50) == 10.0
    hundred = [float(i) for i in range(1, 101)]
    for p in (1, 50, 95, 99, 100):
        assert nearest_rank(hundred, p) == float(p)
    for n in range(1, 60):
        ordered = [float(i) for i in range(n)]
        for p in (50, 95, 99):
            assert nearest_rank(ordered, p) == ordered[max(1, math.ceil(p * n / 100)) - 1]


def delivery(i: int, code: int | None, lag: float | None, status: str | None = None) -> Delivery:
    created = datetime(2026, 11, 2, 12, 0, tzinfo=UTC) + timedelta(minutes=i)
    delivered = created + timedelta(seconds=lag) if lag is not None else None
    status = status or ("SUCCESS" if code and 200 <= code < 300 else "FAILED")
    result = Result(code) if code is not None else None
    return Delivery(
        f"d{i}", created, delivered, status, result, Event(f"e{i}", "x", None, None, created)
    )


@pytest.mark.parametrize("n", [0, 1, 2])
def test_summary_at_zero_one_and_two_attempts(n):
    stats = WebhookStats("w")
    for i in range(n):
        stats.add(delivery(i, 200 if i == 0 else 500, lag=float(i + 1)))
    s = stats.summary()
    assert s["attempts"] == n
    lag = s["lag_seconds"]
    if n == 0:
        assert s["attempt_success_rate"] is None
        assert s["event_success_rate"] is None
        assert s["retries_per_event"] == {"mean": None, "max": None}
        assert lag == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
        assert s["buckets"] == []
    elif n == 1:
        assert s["attempt_success_rate"] == 1.0
        assert lag == {"count": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}
    else:
        assert s["attempt_success_rate"] == 0.5
        assert lag == {"count": 2, "p50": 1.0, "p95": 2.0, "p99": 2.0, "max": 2.0}
        assert s["still_failing_events"] == 1


# -- numbers by hand, over respx ------------------------------------------------------


def test_numbers_match_the_hand_computed_ones(atwh, fake_api):
    fake_api.add("wh1", small_history())
    before = datetime.now(UTC)
    result = atwh("stats", "wh1", "--json")
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["by"] == "day"
    assert data["until"] is None
    since = parse_datetime(data["since"])
    # seven days before the command ran (not before the module was loaded: a slow run may
    # reach this test minutes later)
    week = timedelta(days=7)
    assert since is not None and before - week - timedelta(seconds=1) <= since <= after - week
    (hook,) = data["webhooks"]
    buckets = hook.pop("buckets")
    assert hook == EXPECTED
    assert sum(b["attempts"] for b in buckets) == 6
    assert sum(b["failed"] for b in buckets) == 3
    assert sum(b["pending"] for b in buckets) == 1


def test_the_order_of_the_attempts_does_not_change_a_number():
    nodes = small_history()[:6]
    from atwh.client.model import parse_delivery

    forward = [parse_delivery(n, "wh1") for n in nodes]
    one = Stats(["wh1"]).add_all(d for d in forward if d).summary(None, None)
    two = Stats(["wh1"]).add_all(d for d in reversed(forward) if d).summary(None, None)
    assert one == two


def test_filters_apply_to_the_numbers(atwh, fake_api):
    fake_api.add("wh1", small_history())
    data = json.loads(atwh("stats", "wh1", "--json", "--event", "ticket.created").stdout)
    (hook,) = data["webhooks"]
    assert (hook["attempts"], hook["events"], hook["event_success_rate"]) == (3, 2, 1.0)
    data = json.loads(atwh("stats", "wh1", "--json", "--since", "30d").stdout)
    assert data["webhooks"][0]["attempts"] == 7  # E, 8 days old, is in now


def test_several_webhooks_side_by_side(atwh, fake_api):
    fake_api.add("wh1", small_history())
    fake_api.add("wh2", [attempt(20, "Z", H, H, 200)])
    data = json.loads(atwh("stats", "wh2", "wh1", "--json").stdout)
    assert [w["webhook_id"] for w in data["webhooks"]] == ["wh2", "wh1"]
    assert [w["attempts"] for w in data["webhooks"]] == [1, 6]
    result = atwh("stats", "wh1", "wh2")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "wh1" in line)
    assert header.index("wh1") < header.index("wh2")  # one column each, in the given order
    rate = next(line for line in result.stdout.splitlines() if "Event success rate" in line)
    assert rate.split()[-2:] == ["66.67%", "100.00%"]


def test_the_table_shows_the_numbers(atwh, fake_api):
    fake_api.add("wh1", small_history())
    result = atwh("stats", "wh1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "Attempts                6 (1 pending)",
        "Events                  4",
        "Attempt success rate    40.00%",
        "Event success rate      66.67%",
        "First-attempt success   33.33%",
        "Retries per event       0.50 mean, 1 max",
        "Lag p50 / p95           250ms / 10m",
        "Recovery p50 / p95      10m00s / 10m00s (1 event)",  # one event, not '1 events'
        "Still failing events    1",
    ):
        assert re.sub(r" +", " ", expected) in re.sub(r" +", " ", out), expected
    assert "Attempts per day" in out


@pytest.mark.parametrize("by,heading", [("event", "Attempts by event name"), ("code", "HTTP")])
def test_breakdowns(atwh, fake_api, by, heading):
    fake_api.add("wh1", small_history())
    result = atwh("stats", "wh1", "--by", by, "--format", "table")
    assert result.exit_code == 0, result.output
    assert heading in result.stdout
    assert "Attempts per day" not in result.stdout
    if by == "event":
        row = next(line for line in result.stdout.splitlines() if "ticket.updated" in line)
        assert row.split()[1:] == ["3", "0", "2", "1", "0.00%"]
    else:
        row = next(line for line in result.stdout.splitlines() if "no answer" in line)
        assert row.split()[2:] == ["1", "20.0%"]


def test_breakdowns_piped_are_tsv_with_a_header(atwh, fake_api):
    fake_api.add("wh1", small_history())
    rows = [line.split("\t") for line in atwh("stats", "wh1", "--by", "event").stdout.splitlines()]
    assert rows == [
        ["event", "attempts", "succeeded", "failed", "pending", "success_rate"],
        ["ticket.created", "3", "2", "1", "0", "0.6667"],
        ["ticket.updated", "3", "0", "2", "1", "0.0"],
    ]
    fake_api.add("wh2", [attempt(20, "Z", H, H, 200)])
    result = atwh("stats", "wh1", "wh2", "--by", "code")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["webhook", "code", "attempts", "share"]
    assert ["wh1", "none", "1", "0.2"] in rows and ["wh2", "200", "1", "1.0"] in rows


@pytest.mark.parametrize("columns", [60, 80])
def test_breakdown_by_event_at_60_and_80_columns_keeps_names_whole(
    atwh, fake_api, monkeypatch, columns
):
    name = "ticket.assignee.external.changed.again"
    fake_api.add("wh1", small_history() + [attempt(30, "Q", H, H, 500, name=name)])
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("stats", "wh1", "--by", "event", "--format", "table")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if name in line)
    assert row.split()[1] == "1"  # the attempts
    assert "Failed" in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= columns


def test_by_hour_buckets(atwh, fake_api):
    fake_api.add("wh1", small_history())
    data = json.loads(atwh("stats", "wh1", "--json", "--by", "hour").stdout)
    buckets = data["webhooks"][0]["buckets"]
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert all(b - a == H for a, b in zip(starts, starts[1:], strict=False))  # gaps filled
    assert all(s.minute == 0 and s.second == 0 for s in starts)
    assert sum(b["attempts"] for b in buckets) == 6


# -- monitoring bars ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,code,line",
    [
        (["--fail-under", "0.9"], 1, "event success rate 0.6667 is under --fail-under 0.9 by"),
        (["--fail-under", "90%"], 1, "by 0.2333"),
        (["--fail-under", "0.5"], 0, None),
        (["--fail-over-lag", "5m"], 1, "p95 lag 10m00s is over --fail-over-lag 5m by 5m00s"),
        (["--fail-over-lag", "11m"], 0, None),
        (["--fail-under", "0.5", "--fail-over-lag", "1s"], 1, "p95 lag"),
    ],
)
def test_monitoring_bars(atwh, fake_api, args, code, line):
    fake_api.add("wh1", small_history())
    result = atwh("stats", "wh1", "--json", *args)
    assert result.exit_code == code, result.output
    json.loads(result.stdout)  # the numbers are printed either way
    if line is None:
        assert "Below the bar" not in result.stderr
    else:
        (missed,) = [m for m in result.stderr.splitlines() if m.startswith("Below the bar")]
        assert "wh1" in missed and line in missed


def test_a_bar_without_data_is_not_checked_and_says_so(atwh, fake_api):
    fake_api.add("wh1", [])
    result = atwh("stats", "wh1", "--fail-under", "0.99", "--fail-over-lag", "1m")
    assert result.exit_code == 0
    assert "--fail-under not checked" in result.stderr
    assert "--fail-over-lag not checked" in result.stderr
    assert "No attempts in the window" in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--fail-under", "2"], "--fail-under '2'"),
        (["--fail-under", "abc"], "--fail-under 'abc'"),
        (["--fail-over-lag", "soon"], "--fail-over-lag 'soon'"),
        (["--by", "week"], "--by 'week'"),
        (["--since", "yesterday"], "'yesterday'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(atwh, fake_api, args, message):
    result = atwh("stats", "wh1", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_webhook_is_exit_4(atwh, fake_api):
    result = atwh("stats", "nope")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: webhook nope not found")


# -- the chart --------------------------------------------------------------------------


def render(renderable: object, width: int = 80, color: bool = False) -> str:
    out = StringIO()
    system = "standard" if color else None
    console = Console(file=out, width=width, force_terminal=color, color_system=system)
    console.print(renderable)
    return out.getvalue()


def buckets(*counts: tuple[int, int]) -> list[dict]:
    start = datetime(2026, 11, 20).astimezone()
    return [
        {
            "start": (start + timedelta(days=i)).isoformat(),
            "attempts": ok + bad,
            "succeeded": ok,
            "failed": bad,
            "pending": 0,
        }
        for i, (ok, bad) in enumerate(counts)
    ]


def test_the_chart_fits_80_columns_without_colour():
    text = render(chart(buckets((1200, 3), (0, 0), (400, 400), (1, 0)), "day"))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert "\x1b[" not in text
    assert "█ succeeded" in lines[0] and "▒ failed" in lines[0]
    busy, empty, half, one = lines[2:6]
    assert busy.startswith("Fri 11-20 ") and "▒" in busy  # 3 of 1,203 still shows
    assert busy.rstrip().endswith("1,203      3")
    assert "█" not in empty and "▒" not in empty and empty.split()[-2:] == ["0", "0"]
    assert half.count("█") == half.count("▒")
    assert one.count("█") == 1
    assert busy.count("█") + busy.count("▒") > half.count("█") + half.count("▒")


def test_the_chart_in_colour_and_narrow(monkeypatch):
    monkeypatch.delenv("NO_COLOR")
    text = render(chart(buckets((10, 5)), "day"), width=40, color=True)
    assert "\x1b[32m█" in text and "\x1b[31m▒" in text
    plain = render(chart(buckets((10, 5)), "day"), width=40)
    assert max(map(len, plain.splitlines())) <= 40
    assert "\x1b[" not in plain


def test_split_keeps_every_part_and_the_width():
    assert _split(1000, 1, 0, 1001, 50) == (49, 1, 0)
    assert _split(0, 0, 0, 10, 50) == (0, 0, 0)
    assert _split(5, 5, 0, 10, 10) == (5, 5, 0)
    for ok, bad, wait in [(1, 1, 1), (100, 1, 1), (0, 7, 0), (3, 0, 9)]:
        top = ok + bad + wait
        parts = _split(ok, bad, wait, top, 10)
        assert sum(parts) <= 10
        assert all((p > 0) == (c > 0) for p, c in zip(parts, (ok, bad, wait), strict=True))


def test_the_whole_view_at_80_columns(atwh, fake_api, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    fake_api.add("wh1", small_history())
    fake_api.add("wh2", [attempt(20, "Z", H, H, 200)])
    fake_api.add("wh3", [attempt(21, "Y", H, H, 503)])
    result = atwh("stats", "wh1", "wh2", "wh3")
    assert result.exit_code == 0, result.output
    assert max(map(len, result.stdout.splitlines())) <= 80
    assert "\x1b[" not in result.stdout
    assert result.stdout.count("Attempts per day") == 3


# -- real HTTP, against the emulator's history ----------------------------------------


def test_against_the_emulator_history(atwh):
    """The numbers over real HTTP agree with a count made here from the raw nodes."""
    with emulator(history=300, seed=5) as emu:
        nodes = emu.deliveries("wh-history")
        result = atwh("stats", "wh-history", "--since", "31d", "--json", "--api-url", emu.url)
    assert result.exit_code == 0, result.output
    (hook,) = json.loads(result.stdout)["webhooks"]
    assert len(nodes) == 300
    ok = [n for n in nodes if n["status"] == "SUCCESS"]
    events = {n["event"]["id"] for n in nodes}
    won = {n["event"]["id"] for n in ok}
    lags = sorted(
        (when(n["deliveryDate"]) - when(n["event"]["createdDate"])).total_seconds()
        for n in nodes
        if n["deliveryDate"]
    )
    assert hook["attempts"] == 300
    assert hook["succeeded"] == len(ok)
    assert hook["failed"] == 300 - len(ok)
    assert hook["events"] == len(events)
    assert hook["event_success_rate"] == pytest.approx(len(won) / len(events))
    assert hook["answers"]["none"] == sum(1 for n in nodes if n["result"] is None)
    assert hook["lag_seconds"]["count"] == len(lags)
    for p in (50, 95, 99):
        expected = lags[math.ceil(p / 100 * len(lags)) - 1]
        assert hook["lag_seconds"][f"p{p}"] == pytest.approx(expected, abs=1e-6)
    assert hook["lag_seconds"]["max"] == pytest.approx(lags[-1], abs=1e-6)
    by_chain = {}
    for n in sorted(nodes, key=lambda n: n["createdDate"]):
        by_chain[n["event"]["id"]] = n["status"]  # the last attempt's status wins
    assert hook["still_failing_events"] == sum(s == "FAILED" for s in by_chain.values())


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_view_renders_every_number_for_the_emulator_history():
    with emulator(history=200, seed=9) as emu:
        from atwh.client.api import ApiClient
        from atwh.client.auth import StaticToken

        with ApiClient(StaticToken("t"), url=emu.url) as client:
            stats = Stats(["wh-history"]).add_all(client.deliveries("wh-history"))
    text = render(stats_view(stats.summary(None, None), "day"))
    assert max(map(len, text.splitlines())) <= 80
    assert "Event success rate" in text and "Attempts per day" in text


def test_interleaved_webhooks_are_counted_apart():
    ds = [delivery(i, 200 if i % 3 else 500, lag=1.0) for i in range(9)]
    for i, d in enumerate(ds):
        d.webhook_id = "a" if i in (0, 1, 4, 8) else "b"
    stats = Stats(["b", "a"]).add_all(ds).summary(None, None)
    assert [(w["webhook_id"], w["attempts"], w["failed"]) for w in stats["webhooks"]] == [
        ("b", 5, 2),  # 2, 3, 5, 6, 7: 3 and 6 failed
        ("a", 4, 1),  # 0, 1, 4, 8: 0 failed
    ]


# -- properties -------------------------------------------------------------------------

from fractions import Fraction  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=300),
    st.integers(min_value=1, max_value=100),
)
def test_nearest_rank_is_the_definition(values, p):
    ordered = sorted(values)
    got = nearest_rank(ordered, p)
    if not values:
        assert got is None
        return
    rank = math.ceil(Fraction(p, 100) * len(values))  # exact, in rationals
    assert got == ordered[rank - 1]
    assert sum(v <= got for v in ordered) >= Fraction(p, 100) * len(values)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # event
            st.integers(0, 200),  # minutes after noon
            st.sampled_from([200, 204, 301, 404, 500, 503, None, "pending"]),
        ),
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_no_number_depends_on_the_order_of_the_log(attempts, rnd):
    ds = []
    for i, (event, minute, code) in enumerate(attempts):
        d = delivery(minute, None if code == "pending" else code, lag=0.5 if code else None)
        d.id = f"d{i}"
        d.event.id = f"e{event}"
        d.webhook_id = "w"
        if code == "pending":
            d.status = "PENDING"
        ds.append(d)
    one = Stats(["w"]).add_all(ds).summary(None, None)
    shuffled = list(ds)
    rnd.shuffle(shuffled)
    two = Stats(["w"]).add_all(shuffled).summary(None, None)
    assert one == two
    (w,) = one["webhooks"]
    assert w["succeeded"] + w["failed"] + w["pending"] == w["attempts"] == len(ds)
    assert sum(w["answers"].values()) == w["succeeded"] + w["failed"]
    assert w["events_succeeded"] <= w["events"]
    assert w["still_failing_events"] <= w["events"]  # (an event can succeed, then fail)


def test_the_charts_of_several_webhooks_share_one_scale():
    def hook(name: str, ok: int) -> dict:
        return {"webhook_id": name, "buckets": buckets((ok, 0)), **_numbers()}

    summary = {"since": None, "until": None, "webhooks": [hook("a", 10), hook("b", 100)]}
    lines = render(stats_view(summary, "day")).splitlines()
    bars = [line.count("█") for line in lines if line.startswith("Fri 11-20")]
    assert len(bars) == 2 and bars[1] >= 40 and abs(bars[0] * 10 - bars[1]) <= 10


def _numbers() -> dict:
    stats = WebhookStats("x").summary()
    stats.pop("buckets")
    stats.pop("webhook_id")
    return stats


# -- odd dates (issue 22, item 6) --------------------------------------------------------


def test_stats_on_odd_dates_are_counted_and_kept_out_of_the_chart(atwh, fake_api):
    """Year 1 and year 9999 beside an ordinary attempt: the chart spans the window only (not
    a bucket per hour up to 9999, nor OverflowError at the calendar's end); the odd ones are
    counted, and said once."""
    nodes = [attempt(1, "A", H, H, 200), attempt(2, "B", H, H, 500), attempt(3, "C", H, H, 200)]
    nodes[1]["createdDate"] = "9999-12-31T23:59:59.999Z"
    nodes[1]["deliveryDate"] = "9999-12-31T23:59:59.999Z"
    nodes[2]["createdDate"] = "0001-01-01T00:00:00.000Z"
    nodes[2]["event"]["createdDate"] = "0001-01-01T00:00:00.000Z"
    fake_api.add("wh1", nodes)
    for by in ("hour", "day"):
        result = atwh("stats", "wh1", "--json", "--by", by, "--since", "0001-01-01T00:00Z")
        assert result.exit_code == 0, result.output
        (hook,) = json.loads(result.stdout)["webhooks"]
        assert hook["attempts"] == 3
        assert hook["odd_dates"] == 2
        assert sum(b["attempts"] for b in hook["buckets"]) == 1
        assert len(hook["buckets"]) == 1
        assert hook["lag_seconds"]["count"] == 1  # the ordinary attempt's
        assert result.stderr.count("dated outside") == 1
        assert "9999-12-31T23:59:59.999Z" in result.stderr


def test_stats_on_a_date_far_ahead_is_not_charted_up_to_it():
    """One attempt two centuries ahead: no chart of 70,000 empty days up to it."""
    ds = [delivery(1, 200, 0.5), delivery(2, 200, 0.5)]
    ds[1] = Delivery(
        "d2",
        datetime(2226, 1, 1, tzinfo=UTC),
        None,
        "SUCCESS",
        Result(200),
        Event("e2", "x", None, None, None),
    )
    stats = WebhookStats("w")
    for d in ds:
        stats.add(d)
    hook = stats.summary()
    assert len(hook["buckets"]) == 1
    assert hook.get("odd_dates") == 1
