"""Which events a replay takes, for any history of attempts (hypothesis), and pacing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atwh.client.filters import DeliveryFilter
from atwh.client.model import parse_delivery
from atwh.recover.replay import ReplayOptions, replay
from atwh.recover.selection import EventLog
from tests.conftest import node

T0 = datetime(2026, 11, 1, tzinfo=UTC)
codes = st.sampled_from([200, 204, 301, 400, 429, 500, 503, None])
histories = st.lists(st.lists(codes, min_size=1, max_size=5), min_size=0, max_size=12)


def log_of(history: list[list[int | None]]) -> EventLog:
    log = EventLog()
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
    flt = DeliveryFilter()
    failing = [c.key for c in log.select(flt, "failing")]
    failed = [c.key for c in log.select(flt, "failed")]
    everything = [c.key for c in log.select(flt, "all")]
    assert everything == [f"e{e:02d}" for e in range(len(history))]  # once each, in order
    assert set(failing) <= set(failed) <= set(everything)
    for e, attempts in enumerate(history):
        key = f"e{e:02d}"
        last_ok = attempts[-1] is not None and 200 <= attempts[-1] <= 299
        assert (key in failing) == (not last_ok)
        assert (key in failed) == any(c is None or not 200 <= c <= 299 for c in attempts)


def test_a_payload_that_is_not_unicode_is_skipped_with_the_reason():
    log = log_of([[500]])
    log.events["e00"].payload = '{"x": "\ud800"}'
    (c,) = log.select(DeliveryFilter())
    assert c.body is None and c.skip == "the payload in the log is not valid Unicode"


def test_rate_spaces_the_starts(monkeypatch):
    """Five events at 20/s: the last starts at least 0.2 s after the first (a lower bound,
    whatever the load)."""
    starts: list[float] = []
    log = log_of([[500]] * 5)

    class Client:
        def __init__(self, *a, **kw): ...
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return None

        def stream(self, *a, **kw):
            starts.append(time.monotonic())
            return Answer()

    class Answer:
        status_code = 200
        headers: dict[str, str] = {}
        reason_phrase = "OK"

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return None

        async def aiter_raw(self):
            yield b"{}"

    import atwh.recover.replay as module

    monkeypatch.setattr(module.httpx, "AsyncClient", Client)
    report = replay(
        log.select(DeliveryFilter()),
        ReplayOptions(target="http://127.0.0.1:9/", secret="s", rate=20),
    )
    assert report.count("fixed") == 5
    assert starts[-1] - starts[0] >= 4 / 20 - 0.01


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10), ("10", 10), ("600/m", 10), ("0.5/s", 0.5)]
)
def test_rate_forms(text, per_second):
    from atwh.cli.params import parse_rate

    assert parse_rate(text) == per_second
