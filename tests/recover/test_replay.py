"""`atwh replay` over real HTTP: the emulated API's log, `atwh serve` as the endpoint."""

from __future__ import annotations

import json

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
    second = atwh("replay", *loop.args("--since", "1h", "--delivery", loop.attempts(failed[0])[-1].id))
    assert second.exit_code == 0
    rest = atwh("replay", *loop.args("--since", "1h", "--json"))
    report = {r["eventId"]: r for r in json.loads(rest.stdout)}
    assert report[failed[0]]["result"] == "skipped"
    assert report[failed[1]]["result"] == "fixed"
    assert report[failed[2]]["result"] == "fixed"
    history = atwh("replay", "--history", "--json")
    runs = json.loads(history.stdout)
    assert [(r["sent"], r["fixed"], r["failing"]) for r in runs] == [(2, 2, 0), (1, 1, 0), (1, 0, 1)]


def test_all_failed_takes_recovered_events_and_all_takes_every_event(loop, atwh):
    failed, ok = outage(loop, failing=1)
    dry = atwh("replay", *loop.args("--all", "--dry-run", "--json"))
    assert dry.exit_code == 0
    assert [r["eventId"] for r in json.loads(dry.stdout)] == ok + failed
    assert {r["result"] for r in json.loads(dry.stdout)} == {"would send"}
    assert loop.replays() == []  # a dry run sends nothing
    assert "2 to send to " + loop.receiver_url in dry.stderr
