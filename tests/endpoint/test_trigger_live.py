"""`atwh trigger` as a long run: rows as the answers come when piped, `| head` ends it
quietly, Ctrl-C (SIGINT) prints what was sent and exits 130, and nothing grows with --count
(real subprocesses against receivers on loopback, every wait bounded)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from atwh.server import BackgroundServer
from tests.conftest import request_body, wait_for

SECRET = "trigger-secret"
HOLD = 20.0  # seconds a held request waits at most for the test to let it go


class Held:
    """A receiver that answers the first `free` requests at once and holds each later one
    until the test sets `open` (HOLD seconds at most); how many it holds now, and got."""

    def __init__(self, free: int = 1) -> None:
        self.free = free
        self.open = threading.Event()
        self.got = 0
        self.holding = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await request_body(scope, receive, send) is None:
            return
        self.got += 1
        if self.got > self.free:
            self.holding += 1
            try:
                deadline = time.monotonic() + HOLD
                while not self.open.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            finally:
                self.holding -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def fast(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if await request_body(scope, receive, send) is None:
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def trigger(url: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATWH_", "ALLTHINGS_"))}
    env.update(NO_COLOR="1", XDG_DATA_HOME=str(tmp_path / "data"))
    command = [sys.executable, "-m", "atwh", "trigger", "ticket.created", "--url", url]
    return subprocess.Popen(
        [*command, "--secret", SECRET, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # unbuffered: line_within's select() sees every line, none kept in a Python buffer
        # by the readline before (two rows that came together made the second wait 10 s)
        bufsize=0,
    )


def line_within(proc: subprocess.Popen[bytes], seconds: float) -> bytes:
    """The next line of the command's stdout; b"" when none came within `seconds`."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    return proc.stdout.readline() if ready else b""


def test_piped_rows_come_while_it_still_sends(tmp_path):
    """The first answer's row is on stdout while the second request is still held (before,
    nothing came until every answer had)."""
    held = Held(free=1)
    with BackgroundServer(held) as srv:
        proc = trigger(srv.url("/webhook"), tmp_path, "--count", "3")
        try:
            header = line_within(proc, 10)
            first = line_within(proc, 10)
            # the next request is held after the row came: the run goes on
            wait_for(lambda: held.holding == 1, timeout=10, what="the second request")
            running = proc.poll() is None
            held.open.set()
            out, err = proc.communicate(timeout=60)
        finally:
            held.open.set()
            proc.kill()
    assert header.startswith(b"event\tevent_id\tcode")
    assert first.startswith(b"ticket.created\t") and b"\t200\t" in first
    assert running
    assert proc.returncode == 0, err.decode()
    assert len(out.splitlines()) == 2 and b"3 of 3 acknowledged" in err


@pytest.mark.parametrize("args", [[], ["--format", "ndjson"], ["--json"]], ids=repr)
def test_a_closed_pipe_ends_it_quietly_with_exit_0(tmp_path, args):
    """`| head -2` of a run of 100,000 (the receiver holding the third request): over as
    soon as the next row is written, exit 0, nothing on stderr."""
    held = Held(free=2)
    with BackgroundServer(held) as srv:
        proc = trigger(srv.url("/webhook"), tmp_path, "--count", "100000", *args)
        try:
            lines = [line_within(proc, 10), line_within(proc, 10)]
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            held.open.set()
            proc.wait(timeout=60)
            err = proc.stderr.read()
            got = held.got
        finally:
            held.open.set()
            proc.kill()
    assert all(lines), lines
    assert proc.returncode == 0, err.decode()
    assert err == b""
    assert got < 10  # it stopped sending


TOTALS = re.compile(rb"Interrupted: (\d+) of (\d+) acknowledged \(2xx\) by \S+; (\d+) not sent")


@pytest.mark.parametrize(
    "args",
    [["--concurrency", "1"], ["--format", "ndjson", "--concurrency", "4"], ["--json"]],
    ids=" ".join,
)
def test_sigint_stops_sending_waits_for_those_in_flight_and_prints_what_was_sent(tmp_path, args):
    """SIGINT while requests are held: no new one is sent, the held ones are answered and
    shown, the totals line says interrupted, exit 130."""
    held = Held(free=5)
    with BackgroundServer(held) as srv:
        proc = trigger(srv.url("/webhook"), tmp_path, "--count", "1000", *args)
        try:
            wait_for(lambda: held.holding >= 1, timeout=30, what="a request held")
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            held.open.set()
            out, err = proc.communicate(timeout=60)
            got = held.got
        finally:
            held.open.set()
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    totals = TOTALS.search(err)
    assert totals is not None, err.decode()
    ok, sent, not_sent = map(int, totals.groups())
    assert ok == sent == got and sent + not_sent == 1000 and 6 <= sent < 1000
    if "--json" in args:
        rows = json.loads(out)
    elif "ndjson" in args:
        rows = [json.loads(line) for line in out.splitlines()]
    else:
        rows = out.splitlines()[1:]
    assert len(rows) == sent


def test_a_second_sigint_abandons_the_request_in_flight(tmp_path):
    held = Held(free=2)
    with BackgroundServer(held) as srv:
        proc = trigger(srv.url("/webhook"), tmp_path, "--count", "10", "--format", "ndjson")
        try:
            wait_for(lambda: held.holding == 1, timeout=30, what="a request held")
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=HOLD / 2)  # not waiting for the held one
        finally:
            held.open.set()
            proc.kill()
    assert proc.returncode == 130, err.decode()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["statusCode"] for r in rows] == [200, 200, None]
    assert rows[2]["error"].startswith("abandoned in flight")
    assert rows[2]["ms"] is None and rows[0]["ms"] is not None  # not waited for: no time
    assert b"1 abandoned in flight (a second Ctrl-C); 7 not sent" in err


@pytest.mark.parametrize("concurrency", [1, 3])
def test_events_are_made_as_they_go_and_rows_written_as_they_come(atwh, monkeypatch, concurrency):
    """--count 300, piped: when each row is written, at most a few events beyond it have
    been made (before, all 300 were made, and every result kept, before the first row)."""
    from atwh.endpoint.trigger import Events
    from atwh.output.listing import TsvWriter

    made: list[int] = []
    ahead: list[int] = []
    make, write = Events._make, TsvWriter.write

    def counting_make(self: Any, name: str) -> Any:
        made.append(1)
        return make(self, name)

    def watching_write(self: Any, row: Any) -> None:
        ahead.append(len(made) - len(ahead))
        write(self, row)

    monkeypatch.setattr(Events, "_make", counting_make)
    monkeypatch.setattr(TsvWriter, "write", watching_write)
    with BackgroundServer(fast) as srv:
        result = atwh(
            "trigger", "ticket.created", "--url", srv.url("/webhook"), "--secret", SECRET,
            "--count", "300", "--concurrency", str(concurrency),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 301 and len(ahead) == 300
    # one made to check --data and --set before sending, then at most 2 x concurrency ahead
    assert max(ahead) <= 2 * concurrency + 1


def test_a_terminals_table_keeps_the_failures_first_and_says_what_it_left_out(capsys):
    from atwh.endpoint.send import Answer
    from atwh.endpoint.trigger import Report, Request, Result
    from atwh.output.endpoint import TABLE_ROWS, TriggerRows

    rows = TriggerRows("table")
    report = Report()
    for i in range(300):
        code = 500 if i % 50 == 49 else 200
        result = Result(Request(b"{}", "ticket.created", f"id-{i}"), Answer(code, 0.001))
        report.add(result)
        rows.add(result)
    assert len(rows.failed) + len(rows.acknowledged) <= 2 * TABLE_ROWS
    rows.close(report)
    out, err = capsys.readouterr()
    shown = re.findall(r"id-(\d+)", out)
    assert len(shown) == TABLE_ROWS
    assert {"49", "99", "149", "199", "249", "299"} <= set(shown)
    assert [int(s) for s in shown] == sorted(int(s) for s in shown)  # in the order sent
    assert "50 of 300 events shown (the 6 not acknowledged, then the first 44 acknowledged)" in err
