"""`atwh reconcile`: the log of the emulated API joined with an inbox or a file of ids."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atwh.emulator import Emulator, EmulatorSettings
from atwh.emulator.history import DEMO_WEBHOOK_ID
from atwh.receiver.inbox import Inbox, NewRequest
from atwh.server import BackgroundServer
from tests.conftest import node
from tests.recover.conftest import TOKEN, Loop
from tests.recover.test_replay import outage


def delete_from_inbox(loop: Loop, event_id: str) -> None:
    with sqlite3.connect(loop.settings.db) as db:
        db.execute("DELETE FROM requests WHERE event_id = ?", (event_id,))


def test_lost_and_not_delivered_from_an_inbox_with_rows_deleted(loop, atwh):
    failed, ok = outage(loop, failing=2)
    kept = loop.emit(id="T-50")
    loop.settled(kept)
    delete_from_inbox(loop, ok[0])  # acknowledged, then dropped: lost
    result = atwh("reconcile", *loop.args("--db", str(loop.settings.db), "--json"))
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["totals"] == {
        "lost": 1,
        "notDelivered": 2,
        "unknown": 0,
        "duplicated": 0,
        "conflicting": 0,
        "ok": 1,
    }
    by_category = {}
    for e in data["events"]:
        by_category.setdefault(e["category"], []).append(e["eventId"])
    assert by_category == {"lost": ok, "not delivered": failed}
    assert {"category": "not delivered", "eventName": "ticket.created", "events": 2} in data[
        "summary"
    ]
    table = atwh("reconcile", *loop.args("--db", str(loop.settings.db), "--format", "table"))
    assert table.exit_code == 1
    assert "Lost (1)" in table.stdout and "Not delivered (2)" in table.stdout
    assert ok[0] in table.stdout and failed[1] in table.stdout
    assert "1 lost, 2 not delivered, 0 unknown, 0 duplicated, 0 conflicting, 1 ok" in table.stderr
    piped = atwh("reconcile", *loop.args("--db", str(loop.settings.db)))
    assert piped.exit_code == 1
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert lines[0][:3] == ["category", "event_id", "name"]
    assert [(row[0], row[1]) for row in lines[1:]] == [("lost", ok[0])] + [
        ("not delivered", e) for e in failed
    ]


def test_backfill_then_replay_leaves_nothing_missing(loop, atwh):
    failed, ok = outage(loop, failing=2)
    delete_from_inbox(loop, ok[0])
    db = str(loop.settings.db)
    result = atwh("reconcile", *loop.args("--db", db, "--backfill", "--json"))
    assert result.exit_code == 1
    assert "Backfilled 1 lost events" in result.stderr
    with Inbox(loop.settings.db, create=False) as box:
        row = box.get(ok[0])
    assert row is not None and row.verdict == "backfilled" and row.acked
    assert row.body == loop.emulator.state.events[ok[0]].payload.encode()
    replayed = atwh("reconcile", *loop.args("--db", db, "--replay", "--json"))
    assert replayed.exit_code == 0, replayed.output
    assert [o["eventId"] for o in json.loads(replayed.stdout)["replay"]] == failed
    after = atwh("reconcile", *loop.args("--db", db, "--json"))
    assert after.exit_code == 0
    assert json.loads(after.stdout)["totals"]["ok"] == 3


@pytest.mark.parametrize(
    "write",
    [
        lambda ids: "\n".join(ids) + "\n",
        lambda ids: json.dumps(ids),
        lambda ids: json.dumps([{"id": i} for i in ids]),
        lambda ids: "name,event_id\n" + "".join(f"x,{i}\n" for i in ids),
        lambda ids: "id\n" + "".join(f"{i}\n" for i in ids),
    ],
    ids=["lines", "json", "json-objects", "csv-event_id", "csv-id"],
)
def test_a_stored_file_with_duplicates_and_strangers(loop, atwh, tmp_path, write):
    failed, ok = outage(loop, failing=1)
    second = loop.emit(id="T-60")
    loop.settled(second)
    stored = tmp_path / "stored"
    stored.write_text(write([ok[0], second, second, "not-from-this-webhook-7"]))
    result = atwh("reconcile", *loop.args("--stored", str(stored), "--json"))
    assert result.exit_code == 1  # the failed one was never delivered
    data = json.loads(result.stdout)
    assert data["totals"] == {
        "lost": 0,
        "notDelivered": 1,
        "unknown": 1,
        "duplicated": 1,
        "conflicting": 0,
        "ok": 1,
    }
    categories = {e["eventId"]: (e["category"], e["stored"]) for e in data["events"]}
    assert categories == {
        failed[0]: ("not delivered", 0),
        second: ("duplicated", 2),
        "not-from-this-webhook-7": ("unknown", 1),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8 text"),
        (b"[1, 2", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (JSON nested too deeply)"),
        (b"[[1]]", "a JSON array of event ids"),
        (b"name,other\nx,y\n", "needs an 'event_id' or 'id' column"),
    ],
)
def test_an_unreadable_stored_file(fake_api, atwh, tmp_path, content, message):
    fake_api.add("w1", [])
    stored = tmp_path / "stored"
    stored.write_bytes(content)
    result = atwh("reconcile", "w1", "--stored", str(stored))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --stored {stored}: ") and message in result.stderr


def test_a_file_where_nothing_looks_like_an_id_is_a_usage_error(fake_api, atwh, tmp_path):
    fake_api.add("w1", [node(1, event_id="e1")])
    readme = tmp_path / "README.md"
    readme.write_text("# atwh\n\nA command line for webhooks.\n```sh\natwh serve\n```\nsame.\n")
    result = atwh("reconcile", "w1", "--stored", str(readme))
    assert result.exit_code == 2, result.output
    assert "nothing in it looks like an event id (e.g. '# atwh')" in result.stderr


def test_lines_that_do_not_look_like_ids_are_counted_and_said(fake_api, atwh, tmp_path):
    fake_api.add("w1", [node(1, event_id="e1")])
    stored = tmp_path / "ids.txt"
    stored.write_text("e1\n# exported by our worker\n")
    result = atwh("reconcile", "w1", "--stored", str(stored))
    assert result.exit_code == 0, result.output
    assert "skipped 1 of 2 entries that do not look like event ids" in result.stderr


def test_a_missing_stored_file_and_bad_combinations(fake_api, atwh, tmp_path):
    fake_api.add("w1", [])
    missing = atwh("reconcile", "w1", "--stored", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "cannot read it: No such file" in missing.stderr
    neither = atwh("reconcile", "w1")
    assert neither.exit_code == 2 and "give --db INBOX or --stored FILE" in neither.stderr
    backfill = atwh("reconcile", "w1", "--stored", str(tmp_path / "x"), "--backfill")
    assert backfill.exit_code == 2 and "--backfill writes into an inbox" in backfill.stderr
    no_inbox = atwh("reconcile", "w1", "--db", str(tmp_path / "none.sqlite3"))
    assert no_inbox.exit_code == 2 and "no inbox at" in no_inbox.stderr


def test_a_history_of_10000_deliveries(tmp_path, atwh):
    emulator = Emulator(
        EmulatorSettings(token=TOKEN, history=10_000, seed=3, log=lambda line: None)
    )
    state = emulator.state
    succeeded = sorted({d.event_id for d in state.deliveries.values() if d.status == "SUCCESS"})
    never = {d.event_id for d in state.deliveries.values()} - set(succeeded)
    dropped = set(succeeded[::50])  # every 50th acknowledged event went missing
    with Inbox(tmp_path / "inbox.sqlite3") as box:
        box.add_many(
            [
                NewRequest(
                    time.time(),
                    "POST",
                    "/webhook",
                    [],
                    b"{}",
                    "verified",
                    None,
                    e,
                    state.events[e].name,
                    200,
                    "{}",
                )
                for e in succeeded
                if e not in dropped
            ]
        )
    with BackgroundServer(emulator) as api:
        result = atwh(
            "reconcile",
            DEMO_WEBHOOK_ID,
            "--db",
            str(tmp_path / "inbox.sqlite3"),
            "--json",
            "--api-url",
            api.url("/"),
            "--token",
            TOKEN,
        )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["lost"] == len(dropped)
    assert data["totals"]["notDelivered"] == len(never)
    assert data["totals"]["ok"] == len(succeeded) - len(dropped)
    assert data["totals"]["unknown"] == 0
    lost = {e["eventId"] for e in data["events"] if e["category"] == "lost"}
    assert lost == dropped


ids = st.lists(
    st.text(alphabet="abcdef0123456789-_.:", min_size=1, max_size=40).filter(
        lambda i: any(c.isdigit() for c in i)  # a text file's lines: what looks like an id
    ),
    min_size=0,
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(ids, st.sampled_from(["lines", "json", "json-objects", "csv"]))
def test_every_file_form_reads_back_the_same_ids_and_counts(tmp_path_factory, given_ids, form):
    import csv
    import io
    from collections import Counter

    from atwh.recover.reconcile import stored_in_file

    path = tmp_path_factory.mktemp("stored") / "ids"
    if form == "lines":
        path.write_text("".join(f"{i}\n" for i in given_ids))
    elif form == "json":
        path.write_text(json.dumps(given_ids))
    elif form == "json-objects":
        path.write_text(json.dumps([{"event_id": i, "other": 1} for i in given_ids]))
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["when", "event_id"])
        writer.writerows([["2026-11-01", i] for i in given_ids])
        path.write_text(out.getvalue())
    assert Counter({k: n for k, n, _ in stored_in_file(path).items()}) == Counter(given_ids)


def test_reconcile_categories_an_inbox_holding_two_events_under_one_id_as_conflicting(
    atwh, fake_api, tmp_path
):
    """Issue 22, item 12: the inbox keeps one row per event, so an id stored twice there is
    never `duplicated` (a --stored file's category): it is two events under one id, the id
    once as a number and once as a string, or a duplicate whose body differs."""
    from datetime import timedelta

    from tests.conftest import node

    nodes = [node(i, code=200, age=timedelta(minutes=10 - i)) for i in (1, 2, 3)]
    nodes[0]["event"]["id"] = "12345"
    nodes[1]["event"]["id"] = "E-2"
    nodes[2]["event"]["id"] = "E-3"
    fake_api.add("wh1", nodes)
    db = tmp_path / "inbox.sqlite3"

    def request(event_id: object, text: str) -> NewRequest:
        body = json.dumps({"event": {"id": event_id, "name": "ticket.created", "t": text}})
        return NewRequest(
            time.time(),
            "POST",
            "/webhook",
            [],
            body.encode(),
            "verified",
            None,
            str(event_id),
            "ticket.created",
            200,
            "{}",
        )

    with Inbox(db) as box:
        box.add_many([request(12345, "a"), request("12345", "a")])  # number and string
        box.add_many([request("E-2", "a"), request("E-2", "b")])  # another body: a conflict
        box.add_many([request("E-3", "a"), request("E-3", "a")])  # a plain retry: one row
    result = atwh("reconcile", "wh1", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"] == {
        "lost": 0,
        "notDelivered": 0,
        "unknown": 0,
        "duplicated": 0,
        "conflicting": 2,
        "ok": 1,
    }
    assert {e["eventId"]: (e["category"], e["stored"]) for e in data["events"]} == {
        "12345": ("conflicting", 2),
        "E-2": ("conflicting", 2),
    }
    table = atwh("reconcile", "wh1", "--db", str(db), "--format", "table")
    assert "Conflicting (2)" in table.stdout and "Duplicated" not in table.stdout


# -- the join over the compact log, against the join of every attempt kept (issue 27) ------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([200, 500, None]), st.integers(0, 4)),
        max_size=20,
    ),
    st.dictionaries(st.sampled_from([f"e{i}" for i in range(7)]), st.integers(1, 3)),
    st.booleans(),
    st.booleans(),
)
def test_the_compact_log_joins_as_the_log_of_every_attempt(attempts, counts, windowed, drain):
    from datetime import UTC, datetime, timedelta

    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import parse_delivery
    from atwh.recover.reconcile import Join, Stored, reconcile
    from atwh.recover.selection import EventLog
    from tests.conftest import node

    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    never = datetime.min.replace(tzinfo=UTC)
    deliveries = []
    for n, (event, code, minutes) in enumerate(attempts):
        raw = node(n, code=code, event_id=f"e{event}", message="timeout")
        raw["createdDate"] = (t0 + timedelta(minutes=minutes)).isoformat()
        raw["event"]["createdDate"] = (t0 - timedelta(minutes=event)).isoformat()
        deliveries.append(parse_delivery(raw, "w"))
    since = t0 + timedelta(minutes=2) if windowed else None
    window = DeliveryFilter(since=since)
    # the join as it was: every attempt of each event kept
    expected = []
    events: dict = {}
    for d in deliveries:
        events.setdefault(d.event.id, []).append(d)
    for key, tries in events.items():
        if not any(window.matches(d) for d in tries):
            continue
        tries.sort(key=lambda a: (a.created or never, a.id))
        count = counts.get(key, 0)
        ok = any(not a.failed and a.status_code is not None for a in tries)
        category = (
            "duplicated" if count > 1 else "ok" if count == 1 else "lost" if ok else "not delivered"
        )
        expected.append(
            (key, "ticket.created", category, tries[0].event.created, len(tries),
             tries[-1].status_code, tries[-1].id, count)
        )  # fmt: skip
    expected.sort(key=lambda r: (r[3] or never, r[0]))
    stored = Stored("test")
    for key, n in counts.items():
        for _ in range(n):
            stored.add(key)
    try:
        join = Join(stored, EventLog(window))
        rows = [d.row() for d in deliveries]
        for i in range(0, len(rows), 3):  # pages of 3: an event's attempts on several
            join.add_rows(rows[i : i + 3])
        result = reconcile(join, since, drain=drain)
        got = [
            (e.event_id, e.event_name, e.category, e.created, e.attempts, e.last_code,
             e.last_delivery, e.stored)
            for e in result.entries
        ]  # fmt: skip
        # the events not ok one by one, the ok ones counted by name
        assert got == [r for r in expected if r[2] != "ok"]
        assert result.ok == Counter(r[1] for r in expected if r[2] == "ok")
        assert result.count("ok") == sum(r[2] == "ok" for r in expected)
        # the others: stored, and no attempt in the window
        in_window = {r[0] for r in expected}
        assert [(e.event_id, e.stored) for e in result.others()] == [
            (k, n) for k, n in counts.items() if k not in in_window
        ]
        assert not drain or not join.log.records
    finally:
        stored.close()


def test_events_that_are_ok_are_counted_never_kept():
    """Issue 27: of 20,000 events stored once (ok) nothing is kept per event, neither in
    the log nor as an entry: only a count by name. Beside them, one event of each other
    category is listed as before."""
    import tracemalloc

    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import parse_delivery
    from atwh.recover.reconcile import Join, Stored, reconcile
    from atwh.recover.selection import EventLog

    n = 20_000
    rows = [parse_delivery(node(i, code=200, event_id=f"ok-{i}"), "w").row() for i in range(n)]
    rows += [
        parse_delivery(node(n + 1, code=200, event_id="lost-1"), "w").row(),
        parse_delivery(node(n + 2, code=500, event_id="failed-1"), "w").row(),
        parse_delivery(node(n + 3, code=200, event_id="twice-1"), "w").row(),
    ]
    stored = Stored("test")
    for i in range(n):
        stored.add(f"ok-{i}")
    for key in ("twice-1", "twice-1", "stranger-1"):
        stored.add(key)
    try:
        join = Join(stored, EventLog(DeliveryFilter()))
        tracemalloc.start()
        try:
            for i in range(0, len(rows), 100):
                join.add_rows(rows[i : i + 100])
            assert len(join.log.records) == 3  # lost-1, failed-1, twice-1: not the ok ones
            result = reconcile(join, None, drain=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert sorted((e.event_id, e.category) for e in result.entries) == [
            ("failed-1", "not delivered"), ("lost-1", "lost"), ("twice-1", "duplicated")
        ]  # fmt: skip
        assert result.count("ok") == n and result.ok == Counter({"ticket.created": n})
        assert [e.event_id for e in result.others()] == ["stranger-1"]
        # a record or an entry per ok event would be several MB: a few pages' worth
        assert peak < 1_000_000, peak
    finally:
        stored.close()


def test_the_entries_tsv_is_what_the_general_writer_writes():
    """reconcile's own TSV writer (a line in one f-string) against write_tsv over its
    columns: the same text, odd ids and names included."""
    import io
    from datetime import UTC, datetime

    from atwh.output.listing import write_tsv
    from atwh.output.recover import entry_columns, write_entries_tsv
    from atwh.recover.reconcile import Entry

    when = datetime(2026, 11, 30, 10, 0, 0, 123000, tzinfo=UTC)
    entries = [
        Entry("e1", "ticket.created", "lost", when, 2, 200, "d1", 0),
        Entry("e\t2\n", "bad\x1bname", "not delivered", when, 1, None, "d2", 0),
        Entry("e3", None, "unknown", None, 0, None, None, 1),
        Entry("12345", "ticket.updated", "conflicting", when, 3, 503, "d4", 2, backfilled=True),
    ]
    general, own = io.StringIO(), io.StringIO()
    write_tsv(entry_columns(with_category=True), entries, general)
    write_entries_tsv(entries, own)
    assert own.getvalue() == general.getvalue()
    # a tab or a line break in an id never passes through: 7 fields a line, a line an event
    assert [len(line.split("\t")) for line in own.getvalue().splitlines()] == [7] * 5
