"""`replay` (its report, --dry-run, --history) and `reconcile` as listings: TSV with a header
when piped, rich tables with ids whole at 60 and 80 columns, --format table anywhere."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from atwh.recover.ledger import Ledger
from tests.conftest import node
from tests.recover import test_replay_inputs as inputs
from tests.recover.test_replay_inputs import TARGET, with_secret

mock = inputs.mock  # the mocked API, and the target

UUIDS = [
    "b5f5842d-83be-4f0e-9d3c-2b7e1f4a9c1%d" % i  # noqa: UP031
    for i in range(3)
]


def uuid_log() -> list[dict]:
    """Three failed events with uuid-long event and delivery ids, newest first."""
    nodes = []
    for i in range(3):
        n = node(i, code=500, age=timedelta(minutes=10 - i), body="upstream says no " * 10)
        n["id"] = "d" + UUIDS[i][1:]
        n["event"]["id"] = UUIDS[i]
        n["event"]["name"] = "community-article.published"
        nodes.append(n)
    return nodes[::-1]


def rows(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


def test_dry_run_piped_is_tsv_with_a_header_and_ids_whole(mock, atwh):
    fake, _ = mock
    with_secret(fake, "w1", uuid_log())
    result = atwh("replay", "w1", "--dry-run")
    assert result.exit_code == 0, result.output
    header, *body = rows(result.stdout)
    # nothing is sent, so there is no code, time or answer to show
    assert header == ["result", "event", "event_id", "replay_of"]
    assert [(r[0], r[2]) for r in body] == [("would send", u) for u in UUIDS]
    assert "3 to send to" in result.stderr


def test_report_piped_is_tsv_with_the_whole_answer(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", uuid_log())
    long_answer = "no: " + "x" * 300
    router.post(TARGET).mock(
        side_effect=[httpx.Response(200), httpx.Response(500, text=long_answer)] * 2
    )
    result = atwh("replay", "w1")
    assert result.exit_code == 1, result.output
    header, *body = rows(result.stdout)
    assert [(r[0], r[1], r[3]) for r in body] == [
        ("fixed", "200", UUIDS[0]),
        ("still failing", "500", UUIDS[1]),
        ("fixed", "200", UUIDS[2]),
    ]
    # the answer as the report keeps it (its first 200 characters), not cut to a width
    assert len(body[1][6]) > 150 and long_answer.startswith(body[1][6].rstrip("…"))


@pytest.mark.parametrize("columns", [60, 80])
def test_dry_run_table_keeps_event_ids_whole(mock, atwh, monkeypatch, columns):
    fake, _ = mock
    with_secret(fake, "w1", uuid_log())
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("replay", "w1", "--dry-run", "--format", "table")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["Result", "Event"]
    assert "Code" not in lines[0] and "Answer" not in lines[0]
    assert all(u in result.stdout for u in UUIDS)
    assert max(map(len, lines)) <= columns


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    path = tmp_path / "replays.sqlite3"
    with Ledger(path) as book:
        for i in range(2):
            run = book.start_run(f"webhook:{UUIDS[i]}", "https://example.com/" + "long/" * 12)
            book.record(run, "webhook:w1", "e1", "ticket.created", "d1", TARGET, 0.0, 200, None)
            book.finish_run(run, interrupted=i == 1)
    return str(path)


def test_history_piped_is_tsv_with_a_header(atwh, ledger):
    result = atwh("replay", "--history", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    header, *body = rows(result.stdout)
    assert header == ["run", "started", "source", "target", "sent", "fixed", "failing", "note"]
    assert [r[0] for r in body] == ["2", "1"]
    assert body[0][2] == f"webhook:{UUIDS[1]}" and body[0][7] == "interrupted"
    assert body[0][3] == "https://example.com/" + "long/" * 12


@pytest.mark.parametrize("columns", [60, 80])
def test_history_table_fits(atwh, ledger, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("replay", "--history", "--ledger", ledger, "--format", "table")
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "Run" and "Target" in lines[0]
    assert max(map(len, lines)) <= columns
    assert "…" in result.stdout  # the long target is shortened, not the run number


@pytest.fixture
def reconciled(mock, tmp_path):
    fake, _ = mock
    with_secret(fake, "w1", uuid_log())
    stored = tmp_path / "stored.txt"
    stored.write_text(UUIDS[0] + "\nd7a04c1e-7a7a-4b8e-8e8e-0a0a0a0a0a0a\n")
    return str(stored)


def test_reconcile_piped_is_its_events_with_their_category(atwh, reconciled):
    result = atwh("reconcile", "w1", "--stored", reconciled)
    assert result.exit_code == 1, result.output
    header, *body = rows(result.stdout)
    assert header[:3] == ["category", "event_id", "name"]
    assert [(r[0], r[1]) for r in body] == [
        ("not delivered", UUIDS[1]),
        ("not delivered", UUIDS[2]),
        ("unknown", "d7a04c1e-7a7a-4b8e-8e8e-0a0a0a0a0a0a"),
    ]
    data = json.loads(atwh("reconcile", "w1", "--stored", reconciled, "--json").stdout)
    assert data["totals"]["ok"] == 1  # --json unchanged: every event


@pytest.mark.parametrize("columns", [60, 80])
def test_reconcile_tables_keep_event_ids_whole(atwh, reconciled, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    result = atwh("reconcile", "w1", "--stored", reconciled, "--format", "table")
    assert "Not delivered (2)" in result.stdout
    assert UUIDS[1] in result.stdout and "d7a04c1e-7a7a-4b8e-8e8e-0a0a0a0a0a0a" in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= columns


def _replay_twice(mock, atwh, tmp_path):
    """A replay that fixes all three, then the same replay: every event skipped."""
    fake, router = mock
    with_secret(fake, "w1", uuid_log())
    router.post(TARGET).mock(return_value=httpx.Response(200, json={"message": "ok"}))
    ledger = str(tmp_path / "ledger.sqlite3")
    assert atwh("replay", "w1", "--ledger", ledger).exit_code == 0
    return ledger


@pytest.mark.parametrize("columns", [80, 120])
def test_a_skipped_event_says_why_and_empty_columns_go(mock, atwh, tmp_path, monkeypatch, columns):
    ledger = _replay_twice(mock, atwh, tmp_path)
    monkeypatch.setenv("COLUMNS", str(columns))
    again = atwh("replay", "w1", "--ledger", ledger, "--format", "table")
    assert again.exit_code == 0, again.output
    header, *lines = again.stdout.splitlines()
    assert "Code" not in header and "Time" not in header  # nothing sent: nothing to show
    assert len(lines) == 3 and all("already replayed with a 2xx" in line for line in lines)
    assert all(u in again.stdout for u in UUIDS) and max(map(len, lines)) <= columns
    assert "3 skipped, already replayed with a 2xx (--force sends again)" in again.stderr


def test_on_a_terminal_each_result_is_printed_once(mock, atwh, monkeypatch):
    fake, router = mock
    with_secret(fake, "w1", uuid_log())
    router.post(TARGET).mock(return_value=httpx.Response(200, json={"message": "ok"}))
    monkeypatch.setattr("atwh.cli.context.stderr_is_terminal", lambda: True)
    result = atwh("replay", "w1", "--format", "table")
    assert result.exit_code == 0, result.output
    for u in UUIDS:  # in the report, not also in progress lines on stderr
        assert (result.stdout + result.stderr).count(u) == 1, result.output


def test_a_replay_to_a_dead_target_stops_after_a_run_of_connection_failures(mock, atwh):
    fake, router = mock
    nodes = [node(i, code=500, event_id=f"ev-{i}", age=timedelta(minutes=30 - i)) for i in range(8)]
    with_secret(fake, "w1", nodes[::-1])
    dead = router.post(TARGET).mock(side_effect=httpx.ConnectError("Connection refused"))
    result = atwh("replay", "w1", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    body = rows(result.stdout)[1:]
    assert dead.call_count < 8 * 2  # not every event, each with its retries
    assert [r[0] for r in body].count("still failing") == 5
    assert [r[6] for r in body if r[0] == "skipped"] == [
        "not sent: the target could not be reached"
    ] * 3
    assert "Stopped after 5 connection failures in a row" in result.stderr
    assert "run the same command again" in result.stderr
