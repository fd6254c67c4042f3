"""`atwh tail`: every new attempt once and in order, whatever the page order, through bursts
and outages; PENDING then its result; the command's outputs and exit codes."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from atwh.client.api import ApiClient, RetryPolicy
from atwh.client.auth import StaticToken
from atwh.client.filters import DeliveryFilter
from atwh.observe.tail import RECHECK, Follower, Item
from tests.conftest import API_URL, NOW, FakeApi, node, wait_for
from tests.observe.conftest import emulator, receiving

S = timedelta(seconds=1)
STEP = 30 * S  # between two attempts of a Log: past tail's one-minute overlap in 3 steps


def client_for(url: str = API_URL, page_size: int = 100) -> Callable[[], ApiClient]:
    return lambda: ApiClient(
        StaticToken("t"), url=url, page_size=page_size, retry=RetryPolicy(attempts=1)
    )


class Log:
    """A webhook's log in a FakeApi, newest first or oldest first, that grows."""

    def __init__(self, fake: FakeApi, newest_first: bool, webhook_id: str = "wh1") -> None:
        self.fake = fake
        self.newest_first = newest_first
        self.webhook_id = webhook_id
        self.nodes: list[dict[str, Any]] = []
        self.count = 0
        fake.add(webhook_id, [])

    def add(self, n: int = 1, **kw: Any) -> list[str]:
        """n new attempts, each STEP after the last; their ids."""
        ids = []
        for _ in range(n):
            self.count += 1
            i = self.count
            age = timedelta(hours=2) - i * STEP
            self.nodes.append(node(i, age=age, **kw))
            ids.append(f"d{i}")
        self._publish()
        return ids

    def set(self, delivery_id: str, **kw: Any) -> None:
        i = int(delivery_id[1:])
        age = timedelta(hours=2) - i * STEP
        self.nodes[[n["id"] for n in self.nodes].index(delivery_id)] = node(i, age=age, **kw)
        self._publish()

    def _publish(self) -> None:
        ordered = self.nodes[::-1] if self.newest_first else list(self.nodes)
        self.fake.webhooks[self.webhook_id]["nodes"] = ordered


@dataclass
class Running:
    """A Follower following in a thread: what it printed and said so far."""

    follower: Follower
    got: list[Item] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


@contextmanager
def following(follower: Follower, **kw: Any) -> Iterator[Running]:
    """follow() in a thread until the block ends; then it must stop within 10 s."""
    run = Running(follower)
    stop = threading.Event()

    def emit(items: list[Item]) -> bool:
        run.got.extend(items)
        return False

    thread = threading.Thread(
        target=follower.follow,
        args=(emit, run.said.append),
        kwargs={"stop": stop, **kw},
        daemon=True,
    )
    thread.start()
    try:
        yield run
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def ids(items: list[Item]) -> list[str]:
    return [i.delivery.id for i in items]


@pytest.fixture(params=[True, False], ids=["newest-first", "oldest-first"])
def log(request, fake_api) -> Log:
    fake_api.page_size_cap = 5
    return Log(fake_api, newest_first=request.param)


def test_only_new_attempts_once_and_in_order(log):
    log.add(12)
    follower = Follower(["wh1"], client_for(page_size=5))
    assert follower.poll() == []  # what was there before is not new
    assert follower.poll() == []
    new = log.add(2)
    assert ids(follower.poll()) == new
    assert follower.poll() == []
    later = log.add(1)
    assert ids(follower.poll()) == later


def test_a_burst_of_three_pages_between_two_polls(log, fake_api):
    log.add(7)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    burst = log.add(16)  # more than three pages of five
    before = len(fake_api.requests)
    assert ids(follower.poll()) == burst
    pages = len(fake_api.requests) - before
    if log.newest_first:
        assert pages == 4  # 16 new ones and the page that reaches back to what it saw
    else:
        assert pages == 5  # oldest first: the whole log, every time
    assert follower.poll() == []


def test_since_prints_the_recent_ones_first(log):
    log.add(10)  # d1 … d10, made 2 h − i × STEP ago
    since = NOW - timedelta(hours=2) + 5.5 * STEP  # after d5, before d6
    follower = Follower(["wh1"], client_for(page_size=5), since=since)
    assert ids(follower.poll()) == ["d6", "d7", "d8", "d9", "d10"]
    assert ids(follower.poll()) == []
    assert ids((log.add(1), follower.poll())[1]) == ["d11"]


def test_pending_then_its_result(log):
    log.add(3)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    (pending,) = log.add(1, code=None, status="PENDING")
    (first,) = follower.poll()
    assert (first.delivery.id, first.delivery.status, first.update) == (pending, "PENDING", False)
    assert follower.poll() == []  # still pending: nothing new
    log.add(6)  # pushes the pending one to the second page
    assert len(follower.poll()) == 6
    log.set(pending, code=200)
    (update,) = follower.poll()
    assert (update.delivery.id, update.delivery.status, update.update) == (
        pending,
        "SUCCESS",
        True,
    )
    assert follower.poll() == []


def test_tail_prints_an_attempt_missing_from_one_answer_once(log):
    """Issue 22, item 7: an attempt left out of one poll's answer and back in the next is not
    new again."""
    log.add(12)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    new = log.add(2)
    assert ids(follower.poll()) == new
    hidden = log.nodes.pop(-2)  # the API leaves the first of them out, once
    log._publish()
    assert follower.poll() == []
    log.nodes.insert(len(log.nodes) - 1, hidden)
    log._publish()
    assert follower.poll() == []
    assert ids((log.add(1), follower.poll())[1]) == ["d15"]


def test_tail_prints_each_later_status_of_an_attempt_once_as_an_update(log):
    """Issue 22, item 7: PENDING, then FAILED, then SUCCESS: three lines, the last two
    updates; none twice."""
    log.add(3)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    (attempt,) = log.add(1, code=None, status="PENDING")
    seen = follower.poll()
    assert [(i.delivery.status, i.update) for i in seen] == [("PENDING", False)]
    log.set(attempt, code=500)
    seen = follower.poll()
    assert [(i.delivery.status, i.update) for i in seen] == [("FAILED", True)]
    assert follower.poll() == []
    log.set(attempt, code=200)
    seen = follower.poll()
    assert [(i.delivery.id, i.delivery.status, i.update) for i in seen] == [
        (attempt, "SUCCESS", True)
    ]
    assert follower.poll() == []


def test_tail_with_an_attempt_pending_for_long_does_not_reread_the_log(fake_api):
    """Issue 22, item 8: one attempt pending while 40 newer ones came (20 minutes, 8 pages):
    a poll reads the pages back to what it saw, not back to the pending attempt; once per
    RECHECK a poll reads back to it, and its result is printed then."""
    fake_api.page_size_cap = 5
    log = Log(fake_api, newest_first=True)
    log.add(3)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    (stuck,) = log.add(1, code=None, status="PENDING")
    assert ids(follower.poll()) == [stuck]
    assert len(follower.poll() + follower.poll()) == 0  # (recent: read back to, 1 page)
    log.add(40)
    assert len(follower.poll()) == 40
    for _ in range(3):
        before = len(fake_api.requests)
        assert ids((log.add(2), follower.poll())[1]) == [f"d{log.count - 1}", f"d{log.count}"]
        assert len(fake_api.requests) - before <= 2  # not the 10 pages back to it
    log.set(stuck, code=200)
    assert follower.poll() == []  # not re-read yet
    later = follower.clock() + RECHECK
    follower.clock = lambda: later
    (update,) = follower.poll()
    assert (update.delivery.id, update.delivery.status, update.update) == (stuck, "SUCCESS", True)


def test_a_pending_attempt_filtered_out_shows_when_it_fails(log):
    log.add(2)
    follower = Follower(["wh1"], client_for(), DeliveryFilter(failed_only=True))
    follower.poll()
    (pending,) = log.add(1, code=None, status="PENDING")
    assert follower.poll() == []  # not failed (yet)
    log.set(pending, code=500)
    (item,) = follower.poll()
    assert (item.delivery.id, item.update) == (pending, False)  # never printed before


def test_the_api_down_then_back_loses_and_doubles_nothing(log, fake_api):
    log.add(4)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    during = log.add(3)
    fake_api.responses += [httpx.Response(503), httpx.Response(502)]
    for _ in range(2):
        with pytest.raises(Exception, match="HTTP 50"):
            follower.poll()
    more = log.add(9)
    assert ids(follower.poll()) == during + more
    assert follower.poll() == []


def test_a_poll_failing_half_way_marks_nothing_seen():
    fake_api = FakeApi(page_size_cap=5)
    log = Log(fake_api, newest_first=True)
    fail_at = {"request": -1}

    def second_page_fails(request: httpx.Request) -> httpx.Response:
        if len(fake_api.requests) == fail_at["request"]:
            fail_at["request"] = -1
            raise httpx.ConnectError("network is unreachable")
        return fake_api(request)

    with respx.mock(assert_all_called=False) as mock:
        mock.post(API_URL).mock(side_effect=second_page_fails)
        log.add(5)
        follower = Follower(["wh1"], client_for(page_size=5))
        follower.poll()
        burst = log.add(12)
        fail_at["request"] = len(fake_api.requests) + 1  # the poll's second page
        with pytest.raises(Exception, match="cannot reach the API"):
            follower.poll()
        assert ids(follower.poll()) == burst


def test_follow_says_once_when_the_api_is_lost_and_when_it_is_back():
    fake_api = FakeApi()
    log = Log(fake_api, newest_first=True)
    log.add(3)
    down = threading.Event()

    def flaky(request: httpx.Request) -> httpx.Response:
        if down.is_set():
            raise httpx.ConnectError("connection refused")
        return fake_api(request)

    follower = Follower(["wh1"], client_for())
    with respx.mock(assert_all_called=False) as mock:
        mock.post(API_URL).mock(side_effect=flaky)
        with following(follower, interval=0.02, max_backoff=0.1) as run:
            wait_for(lambda: follower.polls >= 2, what="two polls")
            down.set()
            first = log.add(2)
            wait_for(lambda: run.said, what="the lost line")
            time.sleep(0.3)  # several failed polls: still one line
            assert len(run.said) == 1
            assert run.said[0].startswith("lost the API: cannot reach the API")
            assert run.said[0].endswith("; retrying")
            second = log.add(2)
            down.clear()
            wait_for(lambda: len(run.got) >= 4, what="the attempts made while it was down")
    assert ids(run.got) == first + second
    assert len(run.said) == 2 and run.said[1].startswith("the API is back after ")


def test_the_first_poll_fails_loudly(fake_api):
    follower = Follower(["nope"], client_for())
    with pytest.raises(Exception, match="webhook nope not found"):
        follower.follow(lambda items: False, lambda line: None, interval=0.01)


def test_several_webhooks_merge_in_order(fake_api):
    a = Log(fake_api, newest_first=True, webhook_id="wh1")
    b = Log(fake_api, newest_first=False, webhook_id="wh2")
    follower = Follower(["wh1", "wh2"], client_for())
    follower.poll()
    a.add(2)
    b.add(3)  # the same ids and times as a's: told apart by webhook
    items = follower.poll()
    assert [(i.delivery.webhook_id, i.delivery.id) for i in items] == [
        ("wh1", "d1"),
        ("wh2", "d1"),
        ("wh1", "d2"),
        ("wh2", "d2"),
        ("wh2", "d3"),
    ]


# -- the command ----------------------------------------------------------------------


def test_exit_on_failure_prints_ndjson_and_exits_1(atwh, fake_api):
    fake_api.add("wh1", [node(2, code=500, age=timedelta(minutes=5)), node(1, age=2 * S * 900)])
    result = atwh(
        "tail", "wh1", "--since", "1h", "--json", "--interval", "0.02", "--exit-on-failure"
    )
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["id"], x["status"], x["update"]) for x in lines] == [
        ("d1", "SUCCESS", False),
        ("d2", "FAILED", False),
    ]
    assert lines[0]["event"]["name"] == "ticket.created"


def test_exit_on_failure_stops_at_the_first_failed_attempt_of_a_poll(atwh, fake_api):
    """Several failed attempts in one poll: it printed them all, then exited; the docs say
    it exits after printing the first failed attempt, and so it does."""
    fake_api.add(
        "wh1",
        [
            node(4, code=503, age=timedelta(minutes=2)),
            node(3, code=500, age=timedelta(minutes=3)),
            node(2, code=404, age=timedelta(minutes=4)),
            node(1, age=timedelta(minutes=5)),
        ],
    )
    result = atwh(
        "tail", "wh1", "--since", "1h", "--json", "--interval", "0.02", "--exit-on-failure"
    )
    assert result.exit_code == 1, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["d1", "d2"]


def test_piped_output_is_tab_separated(atwh, fake_api):
    fake_api.add("wh1", [node(2, code=404, age=timedelta(minutes=5)), node(1, age=30 * 60 * S)])
    result = atwh("tail", "wh1", "--since", "1h", "--interval", "0.02", "--exit-on-failure")
    assert result.exit_code == 1, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[1:6] for r in rows[1:]] == [
        ["SUCCESS", "200", "d1", "ticket.created", "e1"],
        ["FAILED", "404", "d2", "ticket.created", "e2"],
    ]
    assert rows[1][0].endswith("Z") and rows[1][-1] == "false"


@pytest.mark.parametrize("ids", [["wh1"], ["wh1", "wh2"]])
def test_piped_columns_are_those_of_deliveries_then_update(atwh, fake_api, ids):
    for w in ids:
        fake_api.add(w, [node(1, code=500, age=timedelta(minutes=5))])
    listed = atwh("deliveries", "wh1") if len(ids) == 1 else atwh("failures", *ids)
    tailed = atwh("tail", *ids, "--since", "1h", "--interval", "0.02", "--exit-on-failure")
    assert tailed.exit_code == 1, tailed.output
    header, *listed_rows = [line.split("\t") for line in listed.stdout.splitlines()]
    tailed_header, *tailed_rows = [line.split("\t") for line in tailed.stdout.splitlines()]
    assert tailed_header == [*header, "update"]
    # (the first failed attempt ends it: one row, the same as the listing's)
    assert len(tailed_rows) == 1 and tailed_rows[0][:-1] in listed_rows


def test_filters_apply(atwh, fake_api):
    fake_api.add(
        "wh1",
        [
            node(3, code=503, event="ticket.updated", age=timedelta(minutes=1)),
            node(2, code=500, age=timedelta(minutes=5)),
            node(1, age=timedelta(minutes=9)),
        ],
    )
    result = atwh(
        "tail", "wh1", "--since", "1h", "--json", "--event", "ticket.updated",
        "--interval", "0.02", "--exit-on-failure",
    )  # fmt: skip
    assert result.exit_code == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["d3"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["wh1", "--interval", "0"], 2, "--interval"),
        (["wh1", "--since", "soon"], 2, "'soon'"),
        (["wh1", "--status-code", "6xx"], 2, "--status-code '6xx'"),
        (["nope"], 4, "webhook nope not found"),
    ],
)
def test_bad_input(atwh, fake_api, args, code, message):
    fake_api.add("wh1", [])
    result = atwh("tail", *args)
    assert result.exit_code == code
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.output


def test_against_the_emulator_events_appear_once_and_in_order():
    """Real HTTP: events emitted while tail runs, including a burst of three pages."""
    with receiving() as url, emulator() as emu:
        webhook = emu.register(url)
        for n in range(4):
            emu.emit(n)
        wait_for(emu.settled, what="the first deliveries")
        follower = Follower([webhook], client_for(emu.url, page_size=5))
        with following(follower, interval=0.05) as run:
            wait_for(lambda: follower.polls >= 1, what="the first poll")
            events = [emu.emit(n) for n in range(4, 8)]
            time.sleep(0.1)
            events += [emu.emit(n) for n in range(8, 24)]  # 16 at once: three pages and more
            wait_for(emu.settled, what="the deliveries")
            wait_for(lambda: delivered(run.got) >= set(events), timeout=20, what="every event")
    new = [i for i in run.got if not i.update]
    assert len({i.delivery.id for i in new}) == len(new)  # none twice
    assert [i.delivery.event.id for i in new] == events  # in the order they happened
    created = [i.delivery.created for i in new]
    assert created == sorted(created)  # type: ignore[type-var]
    updates = [i for i in run.got if i.update]
    assert {i.delivery.id for i in updates} <= {i.delivery.id for i in new}
    assert all(i.delivery.status == "SUCCESS" for i in updates)


def delivered(got: list[Item]) -> set[str | None]:
    """The events with a successful attempt among what tail printed."""
    return {i.delivery.event.id for i in got if i.delivery.status == "SUCCESS"}


def test_ctrl_c_exits_0_with_what_was_printed(tmp_path):
    """The real command in a process, against the emulator; SIGINT as a terminal sends it."""
    with receiving() as url, emulator() as emu:
        webhook = emu.register(url)
        first = emu.emit(1)
        wait_for(emu.settled, what="the delivery")
        env = {**os.environ, "ATWH_TOKEN": "t", "ATWH_API_URL": emu.url}
        command = ["tail", webhook, "--since", "1h", "--json", "--interval", "0.05"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "atwh", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            line = json.loads(_readline(proc, timeout=30))
            assert line["event"]["id"] == first
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        raise AssertionError("tail printed nothing in time")
    return result[0]


# -- how it looks ---------------------------------------------------------------------


def test_rows_keep_their_columns_from_batch_to_batch_at_80_columns():
    from io import StringIO

    from rich.console import Console

    from atwh.client.model import parse_delivery
    from atwh.output.tail import Rows

    out = StringIO()
    rows = Rows(Console(file=out, width=80, color_system=None), show_webhook=False)

    def item(i: int, **kw: Any) -> Item:
        d = parse_delivery(node(i, **kw), "wh1")
        assert d is not None
        return Item(d, update=kw.get("code") == 201)

    rows.print([item(1, event="ticket.created"), item(2, code=500, body="x" * 300)])
    rows.print([item(3, event="ticket.updated", code=201)])  # no wider: the same columns
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:5] == ["Created", "Status", "Code", "Delivery", "Event"]
    assert len(lines) == 4 and max(map(len, lines)) <= 80  # one header, no wrapping
    # codes in one column, under its header, in both batches (found by the header, not by
    # a " 2": that matched the creation time at some hours and the lag at others)
    end = lines[0].index("Code") + len("Code")
    assert [line[end - 4 : end] for line in lines[1:]] == [" 200", " 500", " 201"]
    assert "SUCCESS ↻" in lines[3]  # an update is marked beside its status


@pytest.mark.parametrize("columns", [60, 80])
def test_rows_keep_ids_whole_and_say_again_what_the_columns_are_when_they_change(columns):
    from io import StringIO

    from rich.console import Console

    from atwh.client.model import parse_delivery
    from atwh.output.tail import Rows

    out = StringIO()
    rows = Rows(Console(file=out, width=columns, color_system=None), show_webhook=True)

    def item(i: int, delivery_id: str, **kw: Any) -> Item:
        n = node(i, **kw)
        n["id"] = delivery_id
        d = parse_delivery(n, "wh-2f1c")
        assert d is not None
        return Item(d, update=False)

    first, wider = "d-short", "b5f5842d-83be-4f0e-9d3c-2b7e1f4a9c11"
    rows.print([item(1, first), item(2, first + "2", code=503)])
    rows.print([item(3, wider, event="community-article.published")])
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= columns
    assert wider in lines[-1] and first in lines[1]
    headers = [line.split() for line in lines if "Delivery" in line.split()]
    assert len(headers) == 2 and lines.index(lines[-2]) == len(lines) - 2
    assert lines[-2].split()[-3:] == ["Status", "Code", "Delivery"]  # again, fewer
    assert "Event" in headers[0] and "Event" not in headers[1]


def _uuid(i: int) -> str:
    return f"{i:08x}-83be-4390-8e28-06fca96042fb"


def _tail_rows(width: int, multi: bool) -> list[str]:
    """What tail prints at this width: two batches of real-sized ids (UUIDs), an update in
    the second, one lag short and one long."""
    from io import StringIO

    from rich.console import Console

    from atwh.client.model import parse_delivery
    from atwh.output.tail import Rows

    out = StringIO()
    rows = Rows(Console(file=out, width=width, color_system=None), show_webhook=multi)

    def item(i: int, update: bool = False, **kw: Any) -> Item:
        n = node(i, **kw)
        n["id"] = _uuid(i)
        n["event"]["id"] = _uuid(100 + i)
        if i == 3:  # a lag wider than any before
            n["deliveryDate"] = (NOW + timedelta(hours=3)).isoformat()
        d = parse_delivery(n, _uuid(1000 + i % 2))
        assert d is not None
        return Item(d, update=update)

    rows.print([item(1, event="ticket-comment.created"), item(2, code=500)])
    rows.print([item(3, update=True, event="community-article.published", code=200)])
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("multi", [False, True])
def test_tail_always_shows_when_and_marks_updates_under_one_header(width, multi):
    lines = _tail_rows(width, multi)
    assert len(lines) == 4, lines  # one header: nothing widened the columns mid-stream
    assert lines[0].split()[0] == "Created" and max(map(len, lines)) <= width
    assert all(re.match(r"\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in lines[1:])
    assert "↻" in lines[3] and "↻" not in lines[1] + lines[2]
    for i, line in enumerate(lines[1:], 1):
        assert _uuid(i) in line  # the delivery id whole
    if multi:  # which webhook, shortened at 80 rather than dropped
        assert "Webhook" in lines[0]
        assert _uuid(1001)[:8] in lines[1] and _uuid(1000)[:8] in lines[2]


def test_tail_at_60_columns_keeps_the_ids_status_and_code():
    lines = _tail_rows(60, multi=True)
    assert lines[0].split() == ["Status", "Code", "Delivery"]
    assert all(_uuid(i) in line for i, line in enumerate(lines[1:], 1))


def test_the_status_line_fits_and_is_cleared(monkeypatch):
    from datetime import datetime
    from io import StringIO

    from atwh.output.tail import StatusLine

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "40")
    term = Terminal()
    status = StatusLine(term)
    status.show(datetime.now().astimezone(), "following wh-" + "x" * 80)
    shown = term.getvalue().split("\x1b[2K")[-1]
    assert len(shown) <= 39 and shown.startswith("last polled ") and shown.endswith("…")
    status.say("lost the API: cannot reach it; retrying")
    assert term.getvalue().endswith("lost the API: cannot reach it; retrying\n")
    assert "\r\x1b[2K" in term.getvalue()
    plain = StringIO()
    StatusLine(plain).show(datetime.now().astimezone(), "following wh1")
    assert plain.getvalue() == ""  # not a terminal: no status line


# -- never skips, never repeats: random logs, bursts, page sizes, orders and outages -------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from atwh.client.api import Page  # noqa: E402
from atwh.client.model import Webhook, parse_delivery  # noqa: E402
from atwh.errors import NetworkError  # noqa: E402


class MemoryClient:
    """Pages straight from a list (no HTTP), and a network that can drop mid-poll."""

    def __init__(self, log: list[dict[str, Any]], newest_first: bool, size: int) -> None:
        self.log, self.newest_first, self.size = log, newest_first, size
        self.fail_at_page: int | None = None

    def pages(self, webhook_id: str) -> Any:
        nodes = self.log[::-1] if self.newest_first else list(self.log)
        hook = Webhook(webhook_id, None, None, True, len(nodes))
        for n, start in enumerate(range(0, max(len(nodes), 1), self.size)):
            if self.fail_at_page == n:
                self.fail_at_page = None
                raise NetworkError("cannot reach the API: dropped")
            chunk = [parse_delivery(x, webhook_id) for x in nodes[start : start + self.size]]
            yield Page.of(hook, [d for d in chunk if d is not None])

    def close(self) -> None:
        pass


@settings(max_examples=80, deadline=None)
@given(
    newest_first=st.booleans(),
    size=st.integers(1, 7),
    before=st.integers(0, 12),
    steps=st.lists(
        st.tuples(
            st.integers(0, 15),  # new attempts before this poll
            st.integers(0, 2),  # of them pending
            st.booleans(),  # settle the pending ones first
            st.one_of(st.none(), st.integers(0, 4)),  # the page where the network drops
        ),
        max_size=8,
    ),
)
def test_every_attempt_once_and_in_order_whatever_happens(newest_first, size, before, steps):
    log: list[dict[str, Any]] = []
    count = {"n": 0}

    def add(n: int, pending: int = 0) -> list[str]:
        made = []
        for k in range(n):
            count["n"] += 1
            i = count["n"]
            waiting = k >= n - pending
            kw: dict[str, Any] = {"code": None, "status": "PENDING"} if waiting else {}
            log.append(node(i, age=timedelta(hours=3) - i * STEP, **kw))
            made.append(f"d{i}")
        return made

    add(before)
    client = MemoryClient(log, newest_first, size)
    # every poll RECHECK seconds after the last: each one reads back to every pending attempt
    clock = itertools.count(0, RECHECK).__next__
    follower = Follower(["wh1"], lambda: client, clock=clock)  # type: ignore[arg-type, return-value]
    assert follower.poll() == []
    expected: list[str] = []
    printed: list[Item] = []
    settled: list[str] = []  # pending attempts, each seen by a poll, that got their result
    for new, pending, settle, drop in steps:
        if settle:
            for n in log:
                if n["status"] == "PENDING":
                    settled.append(n["id"])
                    n.update(
                        node(int(n["id"][1:]), age=timedelta(hours=3) - int(n["id"][1:]) * STEP)
                    )
        expected += add(new, min(pending, new))
        client.fail_at_page = drop
        try:
            printed += follower.poll()
        except NetworkError:
            printed += follower.poll()  # the next poll makes up for it
    fresh = [i.delivery.id for i in printed if not i.update]
    assert fresh == expected  # each once, in order, none skipped
    updates = [i.delivery.id for i in printed if i.update]
    assert sorted(updates) == sorted(settled)  # each result once, none missed
    first_status = {i.delivery.id: i.delivery.status for i in printed if not i.update}
    assert all(first_status[u] == "PENDING" for u in updates)


def test_what_it_remembers_stays_small_in_the_api_order(fake_api):
    fake_api.page_size_cap = 5
    log = Log(fake_api, newest_first=True)
    log.add(20)
    follower = Follower(["wh1"], client_for(page_size=5))
    follower.poll()
    printed = []
    for _ in range(40):
        made = log.add(3)
        printed += follower.poll()
        assert ids(printed[-3:]) == made
        assert len(follower.logs[0].seen) <= 10  # the pages of the last poll, not the log
    assert len(printed) == 120


def test_against_the_emulator_a_burst_of_three_pages_between_two_polls():
    with receiving() as url, emulator() as emu:
        webhook = emu.register(url)
        emu.emit(0)
        wait_for(emu.settled, what="the first delivery")
        follower = Follower([webhook], client_for(emu.url, page_size=5))
        assert follower.poll() == []
        events = [emu.emit(n) for n in range(1, 17)]  # 16: three pages of five and one more
        wait_for(emu.settled, what="the burst's deliveries")
        pages = follower.pages
        items = follower.poll()
        assert follower.pages - pages == 4  # the three and a half pages, no more
        assert [i.delivery.event.id for i in items] == events
        assert all(i.delivery.status == "SUCCESS" and not i.update for i in items)
        assert follower.poll() == []


def test_against_the_emulator_the_api_down_then_back():
    """Events delivered while the API answers 503 appear once it is back: none lost or
    doubled, and stderr's two lines."""
    with receiving() as url, emulator() as emu:
        webhook = emu.register(url)
        follower = Follower([webhook], client_for(emu.url, page_size=5))
        with following(follower, interval=0.05, max_backoff=0.2) as run:
            wait_for(lambda: follower.polls >= 1, what="the first poll")
            before = emu.emit(0)
            wait_for(lambda: before in delivered(run.got), what="the first event")
            emu.switch.down = True
            wait_for(lambda: run.said, what="the lost line")
            events = [emu.emit(n) for n in range(1, 13)]  # while the API is down
            wait_for(emu.settled, what="the deliveries")
            time.sleep(0.3)
            emu.switch.down = False
            wanted = {before, *events}
            wait_for(lambda: delivered(run.got) >= wanted, timeout=20, what="every event")
    new = [i for i in run.got if not i.update]
    assert [i.delivery.event.id for i in new] == [before, *events]
    assert len(run.said) == 2
    assert run.said[0] == "lost the API: the API answered HTTP 503; retrying"
    assert run.said[1].startswith("the API is back after ")
