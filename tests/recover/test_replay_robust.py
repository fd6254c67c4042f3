"""Issue 22, items 2 and 3: a replay never stops silently (every event ends with a true
result, the exit code says whether all were fixed, a ledger that cannot be written gives the
report and exit 7), and replays that overlap on one ledger send each event once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atwh.receiver.inbox import Inbox, NewRequest
from atwh.recover.ledger import Ledger
from atwh.server import BackgroundServer
from tests.conftest import request_body, wait_for

SECRET = "s3cret"


class Target:
    """A receiver on loopback that answers 200 and counts the events it got, by id."""

    def __init__(self, delay: float = 0.0) -> None:
        self.got: Counter[str] = Counter()
        self.delay = delay

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        self.got[json.loads(body)["event"]["id"]] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"message":"success"}'})


@pytest.fixture
def target() -> Iterator[tuple[Target, str]]:
    app = Target()
    with BackgroundServer(app) as srv:
        yield app, srv.url("/hook")


def inbox_of(path: Path, n: int, headers: dict[int, list[tuple[bytes, bytes]]] | None = None):
    """An inbox of n verified events, E-1 … E-n, oldest first."""
    with Inbox(path) as box:
        box.add_many(
            [
                NewRequest(
                    1000.0 + i,
                    "POST",
                    "/webhook",
                    (headers or {}).get(i, []),
                    json.dumps({"event": {"id": f"E-{i}", "name": "ticket.created"}}).encode(),
                    "verified",
                    None,
                    f"E-{i}",
                    "ticket.created",
                    200,
                    "{}",
                )  # fmt: skip
                for i in range(1, n + 1)
            ]
        )
    return path


def replay(atwh, db: Path, url: str, *args: str):
    return atwh("inbox", "replay", "--db", str(db), "--to", url, "--secret", SECRET, *args)


def test_replays_that_stop_silently_a_header_that_cannot_be_sent_is_that_events_error(
    atwh, tmp_path, target
):
    """A stored Content-Type with a Latin-1 byte cannot go out as a header: that event is an
    error with its reason; the events after it are still sent; the exit code is 1."""
    app, url = target
    bad = [(b"content-type", b"application/json; charset=caf\xe9")]
    db = inbox_of(tmp_path / "inbox.sqlite3", 3, {2: bad})
    result = replay(atwh, db, url, "--json", "--ledger", str(tmp_path / "l.sqlite3"))
    assert result.exit_code == 1, result.output
    outcomes = {o["eventId"]: o for o in json.loads(result.stdout)}
    assert [outcomes[f"E-{i}"]["result"] for i in (1, 2, 3)] == ["fixed", "error", "fixed"]
    assert outcomes["E-2"]["detail"].startswith("not sent: UnicodeEncodeError")
    assert app.got == Counter({"E-1": 1, "E-3": 1})
    assert "1 not sent (error)" in result.stderr


@pytest.mark.parametrize("to", ["http://127.0.0.1:99999/x", "http://xn--a.com/", "http://[::1"])
def test_replays_that_stop_silently_a_to_that_cannot_be_a_url_is_a_usage_error(atwh, tmp_path, to):
    db = inbox_of(tmp_path / "inbox.sqlite3", 2)
    ledger = tmp_path / "l.sqlite3"
    result = replay(atwh, db, to, "--ledger", str(ledger))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: --to ")
    assert not ledger.exists()  # before anything: no run begun


class FullDisk:
    """A ledger connection whose disk fills up after `room` attempts are recorded."""

    def __init__(self, conn: sqlite3.Connection, room: int, message: str) -> None:
        self.conn, self.room, self.message = conn, room, message

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT INTO attempts"):
            if self.room <= 0:
                raise sqlite3.OperationalError(self.message)
            self.room -= 1
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.mark.parametrize("message", ["database or disk is full", "database is locked"])
def test_replays_that_stop_silently_a_ledger_that_cannot_be_written_gives_the_report_and_7(
    atwh, tmp_path, target, monkeypatch, message
):
    """The second event is delivered (2xx) but its answer cannot be recorded: it is fixed,
    and says it is not in the ledger; sending stops there, the third is an error, the
    report comes out, and the exit code is 7 (never 70, never 0)."""
    app, url = target
    opened = Ledger.__init__

    def full_after_one(self: Ledger, *args: Any, **kw: Any) -> None:
        opened(self, *args, **kw)
        self.conn = FullDisk(self.conn, 1, message)  # type: ignore[assignment]

    monkeypatch.setattr(Ledger, "__init__", full_after_one)
    db = inbox_of(tmp_path / "inbox.sqlite3", 3)
    result = replay(atwh, db, url, "--json", "--ledger", str(tmp_path / "l.sqlite3"))
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output
    outcomes = {o["eventId"]: o for o in json.loads(result.stdout)}
    assert [outcomes[f"E-{i}"]["result"] for i in (1, 2, 3)] == ["fixed", "fixed", "error"]
    assert "not recorded in the ledger" in outcomes["E-2"]["detail"]
    assert message in outcomes["E-3"]["detail"]
    assert app.got == Counter({"E-1": 1, "E-2": 1})
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert message in error and "replay ledger" in error


def test_two_overlapping_replays_send_each_event_once(tmp_path):
    """Two `inbox replay` processes on one ledger and one target, at once: 200 events, 200
    deliveries (each run skips what the other claimed or sent)."""
    app = Target(delay=0.002)
    db = inbox_of(tmp_path / "inbox.sqlite3", 200)
    ledger = tmp_path / "replays.sqlite3"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with BackgroundServer(app) as srv:
        command = [
            sys.executable, "-m", "atwh", "inbox", "replay", "--db", str(db),
            "--to", srv.url("/hook"), "--secret", SECRET, "--ledger", str(ledger),
            "--concurrency", "4", "--json",
        ]  # fmt: skip
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        try:
            answers = [run.communicate(timeout=120) for run in runs]
        finally:
            for run in runs:
                run.kill()
    for run, (_out, err) in zip(runs, answers, strict=True):
        assert run.returncode == 0, err.decode()
    assert sum(app.got.values()) == 200
    assert set(app.got.values()) == {1}
    results = Counter(o["result"] for out, _ in answers for o in json.loads(out))
    assert results["fixed"] == 200 and results["skipped"] == 200


class Gate:
    """A receiver on loopback that holds each request until `width` are in flight at once
    (then answers them and every later one at once), or, with `hold`, until the test sets
    `open`; 60 s at most either way. The events it got, by id, and the most it held."""

    def __init__(self, width: int, hold: bool = False) -> None:
        self.got: Counter[str] = Counter()
        self.width = width
        self.hold = hold
        self.open = threading.Event()
        self.in_flight = 0
        self.most = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        self.got[json.loads(body)["event"]["id"]] += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            if self.in_flight >= self.width and not self.hold:
                self.open.set()
            for _ in range(6000):
                if self.open.is_set():
                    break
                await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"message":"success"}'})


def test_several_at_once_send_each_event_once_never_more_than_asked(atwh, tmp_path):
    """--concurrency 4: four requests in flight at once (the receiver answers none before),
    never more; each event sent once, each answer in the ledger (which is written on the
    loop's thread only: sqlite refuses a connection used from another thread)."""
    gate = Gate(4)
    db = inbox_of(tmp_path / "inbox.sqlite3", 40)
    ledger = tmp_path / "l.sqlite3"
    with BackgroundServer(gate) as srv:
        result = replay(
            atwh, db, srv.url("/hook"), "--concurrency", "4", "--json", "--ledger", str(ledger)
        )
    assert result.exit_code == 0, result.output
    assert gate.got == Counter({f"E-{i}": 1 for i in range(1, 41)})
    assert gate.most == 4
    assert [o["result"] for o in json.loads(result.stdout)] == ["fixed"] * 40
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT event_key, ok FROM attempts").fetchall()
        claims = conn.execute("SELECT count(*) FROM claims").fetchone()[0]
    assert sorted(rows) == sorted((f"E-{i}", 1) for i in range(1, 41)) and claims == 0


def test_a_second_ctrl_c_gives_up_on_the_requests_in_flight(tmp_path):
    """Four requests held by the receiver; Ctrl-C, then Ctrl-C again: the run ends without
    waiting for their answers (its end is in the ledger while they are still held), they
    are reported abandoned and recorded nowhere (a later run sends them again), the rest
    not sent, exit 130."""
    gate = Gate(4, hold=True)
    db = inbox_of(tmp_path / "inbox.sqlite3", 10)
    ledger = tmp_path / "l.sqlite3"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}

    def finished() -> bool:
        with contextlib.closing(sqlite3.connect(ledger)) as conn:
            row = conn.execute("SELECT finished_at FROM runs").fetchone()
        return row is not None and row[0] is not None

    with BackgroundServer(gate) as srv:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atwh",
                "inbox",
                "replay",
                "--db",
                str(db),
                "--to",
                srv.url("/hook"),
                "--secret",
                SECRET,
                "--ledger",
                str(ledger),
                "--concurrency",
                "4",
                "--json",
            ],  # fmt: skip
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(lambda: gate.in_flight == 4, timeout=30, what="four requests in flight")
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)  # two signals, not one: a pending one is not queued twice
            proc.send_signal(signal.SIGINT)
            wait_for(finished, timeout=20, what="the run's end, the requests still held")
            assert gate.in_flight == 4
            gate.open.set()
            out, err = proc.communicate(timeout=30)
        finally:
            gate.open.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    report = {o["eventId"]: o for o in json.loads(out)}
    held = {f"E-{i}" for i in range(1, 5)}
    assert set(gate.got) == held
    for key, o in report.items():
        if key in held:
            assert (o["result"], o["tries"]) == ("still failing", 1)
            assert o["detail"].startswith("abandoned in flight (a second Ctrl-C)")
        else:
            assert (o["result"], o["detail"]) == ("skipped", "not sent: interrupted")
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0
        assert conn.execute("SELECT interrupted FROM runs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def candidates(n: int) -> list:
    from atwh.recover.selection import Candidate

    return [
        Candidate(f"E-{i}", f"E-{i}", "ticket.created", None, f"d-{i}", event_body(f"E-{i}"))
        for i in range(1, n + 1)
    ]


def event_body(event_id: str) -> bytes:
    return json.dumps({"event": {"id": event_id, "name": "ticket.created"}}).encode()


def test_each_event_costs_the_ledger_one_transaction(tmp_path, target):
    """Claim, answer, release: the answer that ends an event, its release and the claim of
    the next go in one transaction (a commit each costs), not three."""
    from atwh.recover.replay import ReplayOptions, replay

    app, url = target
    writes: list[str] = []
    with Ledger(tmp_path / "l.sqlite3") as book:
        inside = False

        def trace(sql: str) -> None:
            nonlocal inside
            verb = sql.split(None, 1)[0].upper()
            if verb == "BEGIN":
                inside = True
            elif verb in ("COMMIT", "ROLLBACK"):
                inside = False
                writes.append(verb)
            elif verb in ("INSERT", "UPDATE", "DELETE") and not inside:
                writes.append(verb)  # a transaction of its own

        book.conn.set_trace_callback(trace)
        report = replay(candidates(10), ReplayOptions(url, SECRET), book, "src")
        rows = book.conn.execute("SELECT event_key, ok FROM attempts ORDER BY id").fetchall()
        claims = book.conn.execute("SELECT count(*) FROM claims").fetchone()[0]
    assert report.count("fixed") == 10 and app.got == Counter(f"E-{i}" for i in range(1, 11))
    assert rows == [(f"E-{i}", 1) for i in range(1, 11)] and claims == 0
    # the run's start, the first claim, one per event, the run's end
    assert len(writes) == 1 + 1 + 10 + 1, writes


def test_an_event_claimed_by_another_run_meanwhile_is_skipped_the_next_sent(tmp_path, target):
    """The claim of the next event, made with the last answer, finds it held by another
    run: it is skipped with the reason, and the one after it is sent."""
    from atwh.recover.replay import ReplayOptions, replay

    app, url = target
    with Ledger(tmp_path / "l.sqlite3") as book:
        other = book.start_run("src", url)
        assert book.claim(other, "src", url, "E-2", lease=600) is None
        report = replay(candidates(3), ReplayOptions(url, SECRET), book, "src")
        held = book.conn.execute("SELECT event_key, run_id FROM claims").fetchall()
    assert [(o.result, o.detail) for o in report.outcomes][1] == (
        "skipped",
        f"being sent by another replay (run {other})",
    )
    assert [o.result for o in report.outcomes] == ["fixed", "skipped", "fixed"]
    assert app.got == Counter({"E-1": 1, "E-3": 1}) and held == [("E-2", other)]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_ctrl_c_lets_the_requests_in_flight_end_and_sends_no_more(monkeypatch, concurrency):
    """With --concurrency 1 the request blocks the loop, whose own signal handler saw a
    Ctrl-C only turns later: the run had claimed and sent two more events by then. A plain
    handler counts it at once: the events in flight end, no other is sent."""
    import os
    import signal
    import threading

    from atwh.endpoint.send import Answer, Sender
    from atwh.recover.replay import ReplayOptions, replay
    from tests.recover.test_selection import log_of

    sent: list[str] = []
    lock = threading.Lock()

    def post(self, url, body, headers):
        with lock:
            sent.append(headers["x-atwh-replay-of"])
            if len(sent) == 2:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while request 2 is in flight
        time.sleep(0.2)
        return Answer(200, 0.2, b"{}")

    monkeypatch.setattr(Sender, "post", post)
    options = ReplayOptions("http://127.0.0.1:9/", "s", concurrency=concurrency)
    report = replay(log_of([[500]] * 8).select(), options)
    assert report.interrupted
    # those in flight when it came (with 3 at once, the first three), none after
    assert len(sent) == 2 if concurrency == 1 else len(sent) <= concurrency
    assert report.count("fixed") == len(sent)
