"""Which events a replay takes, for any history of attempts (hypothesis), and pacing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atwh.client.filters import DeliveryFilter, StatusCodeMatch
from atwh.client.model import parse_delivery
from atwh.recover.replay import ReplayOptions, replay
from atwh.recover.selection import EventLog
from tests.conftest import node

T0 = datetime(2026, 11, 1, tzinfo=UTC)
codes = st.sampled_from([200, 204, 301, 400, 429, 500, 503, None])
histories = st.lists(st.lists(codes, min_size=1, max_size=5), min_size=0, max_size=12)


def log_of(history: list[list[int | None]]) -> EventLog:
    log = EventLog(payloads=True)
    n = 0
    for e, attempts in enumerate(history):
        for a, code in enumerate(attempts):
            n += 1
            raw = node(n, code=code, event_id=f"e{e:02d}", message="timeout")
            raw["createdDate"] = (T0 + timedelta(minutes=e + a * 100)).isoformat()
            raw["event"]["createdDate"] = (T0 + timedelta(minutes=e)).isoformat()
            d = parse_delivery(raw)
            assert d is not None
            log.add(d)
    return log


@settings(max_examples=200, deadline=None)
@given(histories)
def test_each_event_once_oldest_first_and_modes_nest(history):
    log = log_of(history)
    failing = [c.key for c in log.select("failing")]
    failed = [c.key for c in log.select("failed")]
    everything = [c.key for c in log.select("all")]
    assert everything == [f"e{e:02d}" for e in range(len(history))]  # once each, in order
    assert set(failing) <= set(failed) <= set(everything)
    for e, attempts in enumerate(history):
        key = f"e{e:02d}"
        last_ok = attempts[-1] is not None and 200 <= attempts[-1] <= 299
        assert (key in failing) == (not last_ok)
        assert (key in failed) == any(c is None or not 200 <= c <= 299 for c in attempts)


def test_a_payload_that_is_not_unicode_is_skipped_with_the_reason():
    raw = node(1, code=500)
    raw["event"]["payload"] = '{"x": "\ud800"}'
    log = EventLog(payloads=True)
    log.add(parse_delivery(raw))
    (c,) = log.select()
    assert c.bodies is None and c.skip == "the payload in the log is not valid Unicode"


@pytest.mark.parametrize("concurrency", [1, 2])
def test_rate_spaces_the_starts(monkeypatch, concurrency):
    """Five events at 20/s: the last starts at least 0.2 s after the first (a lower bound,
    whatever the load), one at a time or several."""
    from atwh.endpoint.send import Answer, Sender

    starts: list[float] = []

    def post(self, url, body, headers):
        starts.append(time.monotonic())
        return Answer(200, 0.001, b"{}")

    monkeypatch.setattr(Sender, "post", post)
    report = replay(
        log_of([[500]] * 5).select(),
        ReplayOptions(target="http://127.0.0.1:9/", secret="s", rate=20, concurrency=concurrency),
    )
    assert report.count("fixed") == 5
    assert starts[-1] - starts[0] >= 4 / 20 - 0.01


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_request_is_sent_once_by_the_sync_client(monkeypatch, concurrency):
    """Whatever the concurrency, each event goes out once by endpoint.send.Sender, signed,
    with the same report; one at a time on the loop's thread, several in threads."""
    import threading

    from atwh.endpoint.send import Answer, Sender

    sent: list[tuple[bytes, bool]] = []

    def post(self, url, body, headers):
        assert headers["x-atwh-replay-of"] and "x-allthings-signature" in {
            k.lower() for k in headers
        }
        sent.append((body, threading.current_thread() is threading.main_thread()))
        return Answer(200, 0.001, b'{"ok":true}', [("content-type", "application/json")])

    monkeypatch.setattr(Sender, "post", post)
    candidates = log_of([[500]] * 5).select()
    report = replay(candidates, ReplayOptions("http://127.0.0.1:9/", "s", concurrency=concurrency))
    assert report.count("fixed") == 5
    assert [o.detail for o in report.outcomes] == ['{"ok":true}'] * 5
    bodies = [body for body, _ in sent]
    assert sorted(bodies) == sorted(c.payload() for c in candidates)
    # one at a time: in order
    assert concurrency > 1 or bodies == [c.payload() for c in candidates]
    assert {on_main for _, on_main in sent} == {concurrency == 1}


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10), ("10", 10), ("600/m", 10), ("0.5/s", 0.5)]
)
def test_rate_forms(text, per_second):
    from atwh.cli.params import parse_rate

    assert parse_rate(text) == per_second


# -- the compact log against the log as it was: every attempt kept as an object ----------


def _oracle(deliveries, flt, mode):
    """What the EventLog chose when it kept every attempt (before issue 27), as
    (key, name, created, origin, attempts, last code, last cause, skip, body)."""
    events: dict = {}
    for d in deliveries:
        key = d.event.id or f"delivery:{d.id}"
        e = events.get(key)
        if e is None:
            e = events[key] = {"event": d.event, "payload": d.event.payload, "attempts": []}
        elif d.event.payload is not None and (
            e["payload"] is None
            or d.created is not None
            and max((a.created or NEVER for a in e["attempts"]), default=NEVER) < d.created
        ):
            e["payload"] = d.event.payload
        e["attempts"].append(d)
    out = []
    for key, e in events.items():
        attempts = sorted(e["attempts"], key=lambda a: (a.created or NEVER, a.id))
        last = attempts[-1]

        def ok(a):
            return not a.failed and (a.status_code is not None or (a.status or "") == "SUCCESS")

        if not any(flt.matches(a) for a in attempts):
            continue
        failing = last.failed and not any(
            ok(a) and (a.created or NEVER) >= (last.created or NEVER) for a in attempts
        )
        if mode == "failing" and not failing:
            continue
        if mode == "failed" and not any(a.failed for a in attempts):
            continue
        skip = body = None
        if e["payload"] is None:
            skip = "the log has no payload for this event"
        else:
            try:
                body = e["payload"].encode("utf-8")
            except UnicodeEncodeError:
                skip = "the payload in the log is not valid Unicode"
        created = e["event"].created or attempts[0].created
        out.append(
            (key, e["event"].name, created, last.id, len(attempts), last.status_code,
             last.cause if last.failed else None, skip, body)
        )  # fmt: skip
    out.sort(key=lambda c: (c[2] or NEVER, c[0]))
    return out


NEVER = datetime.min.replace(tzinfo=UTC)
attempt = st.tuples(
    st.sampled_from([200, 204, 301, 500, 503, None, "pending"]),  # code, or pending
    st.sampled_from([None, 0, 1, 2, 5]),  # minutes after T0 (ties), or no date
    st.booleans(),  # with the event's payload (else none)
)
event_histories = st.lists(
    st.tuples(
        st.lists(attempt, min_size=1, max_size=4),
        st.booleans(),  # the event has its own date
        st.sampled_from(["ok", "bad", "none"]),  # its payload
        st.booleans(),  # an event id (else each attempt is its own event)
    ),
    max_size=8,
)
windows = st.sampled_from(
    [
        DeliveryFilter(),
        DeliveryFilter(since=T0 + timedelta(minutes=1)),
        DeliveryFilter(events=["ticket.*"]),
        DeliveryFilter(status_codes=[StatusCodeMatch("5xx")]),
    ]
)


def _deliveries(history):
    out = []
    n = 0
    for e, (attempts, own_date, payload, has_id) in enumerate(history):
        for code, minutes, with_payload in attempts:
            n += 1
            pending = code == "pending"
            raw = node(
                n,
                code=None if pending else code,
                status="PENDING" if pending else None,
                event="ticket.created" if e % 2 else "user.created",
                event_id=f"e{e:02d}" if has_id else None,
                message=None if pending else "timeout",
            )
            if not has_id:
                raw["event"]["id"] = None
            raw["createdDate"] = (
                None if minutes is None else (T0 + timedelta(minutes=minutes)).isoformat()
            )
            own = (T0 - timedelta(minutes=e)).isoformat()
            raw["event"]["createdDate"] = own if own_date else None
            text = {"ok": f'{{"e": {e}}}', "bad": '{"x": "\ud800"}', "none": None}[payload]
            raw["event"]["payload"] = text if with_payload else None
            d = parse_delivery(raw)
            assert d is not None
            out.append(d)
    return out


def _chosen(log, mode):
    return [
        (c.key, c.event_name, c.created, c.origin, c.attempts, c.last_code, c.last_cause,
         c.skip, None if c.skip else c.payload())
        for c in log.select(mode)
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(event_histories, windows, st.sampled_from(["failing", "failed", "all"]))
def test_the_compact_log_chooses_as_the_log_of_every_attempt(history, flt, mode):
    deliveries = _deliveries(history)
    expected = _oracle(deliveries, flt, mode)
    log = EventLog(flt, payloads=True)
    log.extend(deliveries)
    assert _chosen(log, mode) == expected
    # lean: one acknowledged attempt is a float until another comes, which gives the event's
    # fields (payload, date) again: in the schema they are the event's, the same on each of
    # its attempts, so lean is held to the full log where the history is such a log
    if mode == "failing" and all(len({a[2] for a in attempts}) == 1 for attempts, *_ in history):
        lean = EventLog(flt, payloads=True, lean=True)
        lean.extend(deliveries)
        assert _chosen(lean, mode) == expected
    dry = EventLog(flt, lean=mode == "failing")  # a dry run: the same, without the bodies
    dry.extend(deliveries)
    events = len(dry)
    drained = [
        (c.key, c.event_name, c.created, c.origin, c.attempts, c.last_code, c.last_cause, c.skip)
        for c in dry.select(mode, drain=True)
    ]
    assert drained == [c[:-1] for c in expected]
    assert not dry.records and len(dry) == events


def test_memory_grows_with_events_not_attempts():
    """Ten attempts of each event cost what one does: nothing of an attempt is kept."""
    import tracemalloc

    def held(attempts_per_event: int) -> int:
        deliveries = []
        for e in range(500):
            for a in range(attempts_per_event):
                raw = node(e * 100 + a, code=500 if a % 2 else 200, event_id=f"e{e:04d}")
                raw["createdDate"] = (T0 + timedelta(minutes=a)).isoformat()
                deliveries.append(parse_delivery(raw))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            log = EventLog(payloads=True).extend(deliveries)
            size = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(log) == 500
        return size

    one, ten = held(1), held(10)
    assert ten < one * 1.3, (one, ten)


def test_a_lean_event_takes_its_own_date_from_the_attempt_that_follows():
    """An acknowledged attempt kept as a float, then a failed one: the event's date is the
    event's own (createdDate), as in the full log, not the first attempt's."""
    history = [
        ([(200, 0, True)], True, "ok", True),
        ([(200, 0, True), (500, 1, True)], True, "ok", True),  # its own date: T0 - 1 minute
    ]
    deliveries = _deliveries(history)
    lean = EventLog(DeliveryFilter(), payloads=True, lean=True)
    lean.extend(deliveries)
    (chosen,) = lean.select("failing")
    assert chosen.created == T0 - timedelta(minutes=1) and chosen.payload() == b'{"e": 1}'
    assert _chosen(lean, "failing") == _oracle(deliveries, DeliveryFilter(), "failing")


def test_names_and_causes_past_the_shared_table_and_odd_text_are_kept_exactly(monkeypatch):
    """A record is packed into bytes: a name or a cause past the table of shared texts goes
    inline, and ids and texts with lone surrogates (JSON escapes) come back as they were."""
    from atwh.recover import selection

    monkeypatch.setattr(selection, "MAX_NAMES", 2)
    log = EventLog(payloads=True)
    for n in range(1, 7):
        raw = node(n, code=None, event_id=f"e{n}\ud800é", message=f"gave up #{n} \udcff")
        raw["id"] = f"d{n}\udfff"
        raw["event"]["name"] = f"ticket.kind{n}"
        raw["event"]["createdDate"] = (T0 + timedelta(minutes=n)).isoformat()
        log.add(parse_delivery(raw))
    chosen = log.select()
    assert [(c.key, c.origin, c.event_name, c.last_cause) for c in chosen] == [
        (f"e{n}\ud800é", f"d{n}\udfff", f"ticket.kind{n}", f"gave up #{n} \udcff")
        for n in range(1, 7)
    ]
    assert len(log._texts) == 3  # None and the two shared; the rest inline


def test_payloads_to_send_wait_on_disk_and_come_back_byte_for_byte_from_any_thread():
    """A replay keeps the payloads it will send in a temporary file, not in memory: each
    candidate reads its own back when it is sent."""
    from concurrent.futures import ThreadPoolExecutor

    log = EventLog(payloads=True)
    texts = [f'{{"n": {n}, "text": "{"é✓" * n}"}}' for n in range(200)]
    for n, text in enumerate(texts):
        raw = node(n + 1, code=500, event_id=f"e{n:03d}")
        raw["event"]["payload"] = text
        raw["event"]["createdDate"] = (T0 + timedelta(minutes=n)).isoformat()
        log.add(parse_delivery(raw))
    assert log.payload("e007") == texts[7]
    chosen = log.select(drain=True)
    assert all(c.body is None for c in chosen)  # nothing held in memory
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda c: c.payload(), chosen))
    assert bodies == [t.encode() for t in texts]


def test_a_temporary_directory_that_cannot_be_written_is_one_clear_error(monkeypatch, tmp_path):
    import tempfile

    from atwh.errors import OutputError
    from atwh.recover.selection import Spool

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with pytest.raises(OutputError) as e:
        Spool().put("{}")
    assert (
        str(tmp_path / "gone") in e.value.message
        and e.value.hint == "set TMPDIR to a directory with room"
    )


def test_payloads_past_4_gib_of_spool_are_kept_and_read_back():
    """A payload's place was offset << 32 | length in one 64-bit field: past 4 GiB of
    spooled payloads (half a million events of 8.6 KB) packing it raised struct.error, a
    crash after the whole log was read. The offset and the length are packed apart. (A
    sparse file stands for the 4 GiB before: nothing is written there.)"""
    log = EventLog(payloads=True)
    log.add(parse_delivery(node(1, code=500, event_id="e1")))
    spool = log._spool
    assert spool._file is not None
    spool._file.flush()
    spool._file.seek(2**32)
    spool._size = 2**32
    raw = node(2, code=500, event_id="e2")
    raw["event"]["payload"] = '{"far": "beyond 4 GiB"}'
    log.add(parse_delivery(raw))
    first, second = log.select()
    assert second.payload() == b'{"far": "beyond 4 GiB"}' and first.payload().startswith(b"{")


def test_an_event_dated_at_the_end_of_year_9999_is_chosen_not_a_crash():
    """Dates go through float seconds: 9999-12-31T23:59:59.999999 rounds into year 10000,
    which datetime refuses (ValueError: a crash, exit 70). It reads as the last date."""
    raw = node(1, code=500)
    raw["event"]["createdDate"] = "9999-12-31T23:59:59.999999Z"
    log = EventLog(payloads=True)
    log.add(parse_delivery(raw))
    (c,) = log.select()
    assert c.created is not None and c.created.year == 9999


def test_the_spool_reads_back_without_pread_as_on_windows(monkeypatch):
    from atwh.recover import selection

    monkeypatch.setattr(selection, "_PREAD", None)
    spool = selection.Spool()
    places = [spool.put(text) for text in ("one", "", "três")]
    assert [spool.text(p) for p in reversed(places)] == ["três", "", "one"]
