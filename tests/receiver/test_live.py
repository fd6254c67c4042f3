"""`atwh serve` as a person sees it in a terminal: the live line at every width, with ids
whole, durations people read, and the banner's ordinals."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import pytest

from atwh import server
from atwh.core.durations import duration
from atwh.output.serve import ordinal
from atwh.receiver.inbox import NewRequest, Stored
from atwh.receiver.live import LiveView, fit

VERDICTS = [
    ("verified", None, 200, False),
    ("verified", None, 200, True),
    ("unverified", "simulated: --fail-every 3", 500, False),
    ("test", None, 200, False),
    ("rejected", "bad_signature", 401, False),
    ("rejected", "unexpected_event", 400, False),
    ("rejected", "store_unavailable", 503, False),
]


def lines_at(width: int | None, eid: str, name: str | None = "ticket.created") -> list[str]:
    stream = io.StringIO()
    live = LiveView(stream, colour=False, width=width)
    for i, (verdict, reason, code, duplicate) in enumerate(VERDICTS):
        request = NewRequest(
            1_700_000_000 + i, "POST", "/webhook", [], b"{}", verdict, reason, eid, name, code, "{}"
        )
        live.request(request, Stored(i, duplicate), 2002.1 if i == 2 else 3.14)
    live.flush()
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
@pytest.mark.parametrize("eid", [str(uuid.UUID(int=7)), "evt-00000001", "x" * 50])
def test_each_live_line_fits_its_terminal_with_the_id_whole(width, eid):
    lines = lines_at(width, eid)
    assert len(lines) == len(VERDICTS)
    for line, (verdict, reason, code, duplicate) in zip(lines, VERDICTS, strict=True):
        if len(eid) + 20 < width:  # else the id alone is too wide: the line wraps
            assert len(line) < width, line
        if reason or duplicate:  # the reason outranks the id's tail
            assert f"  {eid[:8]}" in line
        else:
            assert f"  {eid}" in line  # whole, never cut
        assert line.split()[0 if width < 100 else 1] == verdict
        assert f" {code} " in line
    # the verdict column is as wide as the longest verdict: the codes line up
    columns = {line.index(f" {c} ") for line, (_, _, c, _) in zip(lines, VERDICTS, strict=True)}
    assert len(columns) == 1


def test_a_wide_terminal_shows_everything_and_a_narrow_one_drops_the_time_first():
    eid = str(uuid.UUID(int=9))
    wide = lines_at(200, eid)
    assert wide == lines_at(None, eid)  # piped: the same, never cut
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} rejected   401   3\.1ms  ", wide[4])
    assert wide[4].endswith(f"{eid}  ticket.created  bad_signature")
    assert wide[1].endswith("ticket.created  duplicate")
    at_80 = lines_at(80, eid)
    assert at_80[0] == f"verified   200   3.1ms  {eid}  ticket.created"  # no time
    at_60 = lines_at(60, eid)
    assert at_60[0].startswith(f"verified   200  {eid}  ")  # no latency either


@pytest.mark.parametrize("width", [60, 80])
def test_the_reason_and_duplicate_outrank_the_latency_and_the_event_ids_tail(width):
    eid = str(uuid.UUID(int=9))
    lines = lines_at(width, eid)
    assert lines[4].startswith("rejected   401  ")
    assert lines[4].endswith("…  ticket.created  bad_signature"), lines[4]
    assert lines[1].endswith("…  ticket.created  duplicate"), lines[1]
    assert lines[5].endswith("…  ticket.created  unexpected_event"), lines[5]
    assert f"  {eid}  tick" in lines[0]  # nothing to say: the id whole
    assert all(len(line) < width for line in lines)


def test_durations_from_a_second_on_are_in_seconds():
    def latency(ms: float) -> str:  # as the live view writes one
        return duration(ms / 1000, ms_decimals=1)

    assert latency(0.04) == "0.0ms"
    assert latency(3.14) == "3.1ms"
    assert latency(999.9) == "999.9ms"
    assert latency(999.96) == "1.0s"
    assert latency(2002.1) == "2.0s"
    assert latency(12_345) == "12.3s"
    assert latency(75_000) == "1m15s"  # the one formatter's minutes, as tables write them
    assert "2.0s" in lines_at(None, "e")[2]


def test_the_name_is_shortened_before_the_reason_and_a_stub_of_a_reason_is_dropped():
    assert fit("ticket.created", "  bad_signature", 40) == ("ticket.created", "  bad_signature")
    assert fit("ticket.created.with.a.long.name", "  bad_signature", 28) == (
        "ticket.creat…",
        "  bad_signature",
    )
    assert fit("ticket.created", "  bad_signature", 20) == ("ticket.created", "")
    assert fit("ticket.created", "", 5) == ("tick…", "")
    for room in range(1, 60):
        name, extra = fit("n" * 30, "  " + "r" * 20, room)
        assert len(name) + len(extra) <= max(room, 1) and name


@pytest.mark.parametrize(
    "n, text",
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th")]
    + [(21, "21st"), (22, "22nd"), (23, "23rd"), (101, "101st"), (111, "111th"), (112, "112th")],
)
def test_ordinals(n, text):
    assert ordinal(n) == text


def test_the_banner_says_every_3rd_event(atwh, monkeypatch, tmp_path):
    calls: list[Any] = []
    monkeypatch.setattr(server, "run", lambda app, sock, **kw: calls.append(sock))
    result = atwh("serve", "--port", "0", "--db", str(tmp_path / "i.db"), "--fail-every", "3")
    for sock in calls:
        sock.close()
    assert result.exit_code == 0, result.output
    assert "simulating: 500 for every 3rd event" in result.stderr
    assert "limits:    1,000 connections at once, 30s to send a request" in result.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--max-connections", "0"], "--max-connections 0: give 1 or more"),
        (["--request-timeout", "0s"], "--request-timeout '0s': give a duration above 0"),
        (["--request-timeout", "soon"], "--request-timeout 'soon': give a duration such as"),
    ],
)
def test_bad_limits_are_exit_2_with_one_line(atwh, monkeypatch, tmp_path, args, needle):
    monkeypatch.setattr(server, "run", lambda *a, **kw: pytest.fail("started"))
    result = atwh("serve", "--port", "0", "--db", str(tmp_path / "i.db"), *args)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and needle in line


def test_the_limits_reach_the_server(atwh, monkeypatch, tmp_path):
    seen: list[dict[str, Any]] = []

    def run(app: Any, sock: Any, **kw: Any) -> list[int]:
        sock.close()
        seen.append(kw)
        return []

    monkeypatch.setattr(server, "run", run)
    args = ["--max-connections", "7", "--request-timeout", "2m"]
    result = atwh("serve", "--port", "0", "--db", str(tmp_path / "i.db"), *args)
    assert result.exit_code == 0, result.output
    assert seen == [{"request_timeout": 120.0, "max_connections": 7}]
    assert "limits:    7 connections at once, 2m to send a request" in result.stderr
    assert "Stopped after 0 requests; inbox: " in result.stderr
