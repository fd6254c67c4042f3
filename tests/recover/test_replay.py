"""`atwh replay` over real HTTP: the emulated API's log, `atwh serve` as the endpoint."""

from __future__ import annotations

import json

import pytest

from tests.conftest import wait_for
from tests.recover.conftest import Loop


def outage(loop: Loop, failing: int = 3) -> tuple[list[str], list[str]]:
    """Events delivered fine, then an outage (every retry answered 500), then one retried
    into success. The still-failing ids and the others, each in the order emitted."""
    ok = [loop.emit(id="T-1")]
    loop.settled(*ok)
    loop.receiver.simulation.respond = 500
    failed = [loop.emit(id=f"T-{10 + i}") for i in range(failing)]
    loop.settled(*failed)
    loop.receiver.simulation.respond = None
    return failed, ok


def test_replay_sends_each_still_failing_event_once_oldest_first_signed(loop, atwh):
    failed, ok = outage(loop)
    result = atwh("replay", *loop.args("--since", "1h"))
    assert result.exit_code == 0, result.output
    got = loop.replays()
    assert [r.event_id for r in got] == failed  # once each, oldest first, nothing else
    assert all(r.verdict == "verified" and r.answer_code == 200 for r in got)
    for r in got:
        headers = dict(r.headers)
        origin = headers["x-atwh-replay-of"]
        assert loop.emulator.state.deliveries[origin].event_id == r.event_id
        # the body is the log's payload, byte for byte
        assert r.body == loop.emulator.state.events[r.event_id].payload.encode()
    assert "3 fixed, 0 still failing" in result.stderr
    for e in failed:
        assert e in result.stdout


def test_a_second_run_sends_nothing_and_force_sends_again(loop, atwh):
    failed, _ = outage(loop, failing=2)
    assert atwh("replay", *loop.args("--since", "1h")).exit_code == 0
    again = atwh("replay", *loop.args("--since", "1h", "--json"))
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert [r["result"] for r in report] == ["skipped", "skipped"]
    assert "already replayed" in report[0]["detail"]
    assert len(loop.replays()) == 2
    forced = atwh("replay", *loop.args("--since", "1h", "--force"))
    assert forced.exit_code == 0, forced.output
    assert [r.event_id for r in loop.replays()] == failed  # acknowledged as duplicates
    assert all(r.duplicates == 1 for r in loop.replays())


def test_a_partial_success_then_only_what_is_left(loop, atwh):
    failed, _ = outage(loop, failing=3)
    loop.receiver.simulation.respond = 500
    first = atwh("replay", *loop.args("--since", "1h", "--event-id", failed[1][:10]))
    assert first.exit_code == 1, first.output  # sent, answered 500: still failing
    loop.receiver.simulation.respond = None
    second = atwh(
        "replay", *loop.args("--since", "1h", "--delivery", loop.attempts(failed[0])[-1].id)
    )
    assert second.exit_code == 0
    rest = atwh("replay", *loop.args("--since", "1h", "--json"))
    report = {r["eventId"]: r for r in json.loads(rest.stdout)}
    assert report[failed[0]]["result"] == "skipped"
    assert report[failed[1]]["result"] == "fixed"
    assert report[failed[2]]["result"] == "fixed"
    history = atwh("replay", "--history", "--json")
    runs = json.loads(history.stdout)
    assert [(r["sent"], r["fixed"], r["failing"]) for r in runs] == [
        (2, 2, 0),
        (1, 1, 0),
        (1, 0, 1),
    ]


def test_all_takes_every_event_and_a_dry_run_sends_nothing(loop, atwh):
    failed, ok = outage(loop, failing=1)
    dry = atwh("replay", *loop.args("--all", "--dry-run", "--json"))
    assert dry.exit_code == 0
    assert [r["eventId"] for r in json.loads(dry.stdout)] == ok + failed
    assert {r["result"] for r in json.loads(dry.stdout)} == {"would send"}
    assert loop.replays() == []  # a dry run sends nothing
    assert "2 to send to " + loop.receiver_url in dry.stderr


def test_all_failed_also_takes_events_that_recovered(loop, atwh):
    failed, _ = outage(loop, failing=1)
    loop.receiver.simulation.respond = None
    loop.receiver.simulation.every = 2  # every 2nd answer is a 500: the first try fails...
    loop.receiver.simulation.count = 1
    recovered = loop.emit(id="T-99")
    loop.settled(recovered)
    loop.receiver.simulation.every = None
    assert [a.status for a in loop.attempts(recovered)] == ["FAILED", "SUCCESS"]
    default = json.loads(atwh("replay", *loop.args("--dry-run", "--json")).stdout)
    assert [r["eventId"] for r in default] == failed
    taken = json.loads(atwh("replay", *loop.args("--all-failed", "--dry-run", "--json")).stdout)
    assert [r["eventId"] for r in taken] == [*failed, recovered]


def test_ctrl_c_stops_sending_finishes_in_flight_and_keeps_the_ledger_consistent(loop, tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.conftest import wait_for

    failed, _ = outage(loop, failing=6)
    loop.settings.delay = 0.4  # each answer takes a while: Ctrl-C lands mid-way
    ledger = tmp_path / "ledger.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "atwh", "replay", *loop.args("--ledger", str(ledger), "--json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        wait_for(lambda: len(loop.replays()) >= 1, timeout=30, what="the first replay")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    report = json.loads(out)
    fixed = [r["eventId"] for r in report if r["result"] == "fixed"]
    assert 1 <= len(fixed) < len(failed)
    assert fixed == failed[: len(fixed)]  # in order, the in-flight one finished
    assert {r["detail"] for r in report if r["result"] == "skipped"} == {"not sent: interrupted"}
    assert [r.event_id for r in loop.replays()] == fixed
    assert b"Interrupted" in err and b"Traceback" not in err
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT event_key, ok, finished_at FROM attempts ORDER BY id").fetchall()
        (interrupted,) = db.execute("SELECT interrupted FROM runs").fetchone()
    assert [(k, ok) for k, ok, _ in rows] == [(e, 1) for e in fixed]
    assert all(done is not None for _, _, done in rows) and interrupted == 1


@pytest.mark.parametrize("loop", [{"time_scale": 1}], indirect=True)
def test_replay_while_the_emulator_still_retries(loop, atwh):
    """The first retry is a minute away: the events are still failing, and replay fixes them."""
    loop.receiver.simulation.respond = 500
    failed = [loop.emit(id=f"T-{i}") for i in range(2)]

    def retry_scheduled() -> bool:
        return all(
            (a := loop.attempts(e)) and a[-1].status == "FAILED" and a[-1].next_retry_at
            for e in failed
        )

    wait_for(retry_scheduled, timeout=30, what="a failed first attempt of each event")
    loop.receiver.simulation.respond = None
    result = atwh("replay", *loop.args("--since", "1h", "--json"))
    assert result.exit_code == 0, result.output
    assert [r["result"] for r in json.loads(result.stdout)] == ["fixed", "fixed"]
    assert [r.event_id for r in loop.replays()] == failed
    assert all(r.verdict == "verified" for r in loop.replays())
