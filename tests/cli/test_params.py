"""The values options take (cli/params.py): every duration option reads the same forms, sizes
and rates read as documented, bad values are one usage line naming the option, and help
shows defaults as a person types them."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from hypothesis import given
from hypothesis import strategies as st

from atwh.cli import app, params
from atwh.core.durations import duration, parse_duration
from atwh.errors import UsageError


def parsed(*args: str) -> dict[str, Any]:
    """The values `atwh ARGS` parses into, without running the command."""
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while rest and hasattr(command, "get_command"):
        found = command.get_command(None, rest[0])
        if found is None:
            break
        command, rest = found, rest[1:]
    return dict(command.make_context("atwh", rest).params)


# Every option that takes a duration, with the command around it.
DURATION_OPTIONS = [
    (["tail", "w1"], "--interval", "interval"),
    (["serve"], "--delay", "delay"),
    (["serve"], "--tolerance", "tolerance"),
    (["serve"], "--request-timeout", "request_timeout"),
    (["deliveries", "w1"], "--timeout", "timeout"),
    (["replay", "w1"], "--timeout", "timeout"),
    (["inbox", "replay", "--to", "http://127.0.0.1:9/"], "--timeout", "timeout"),
    (["webhooks", "ping", "--url", "http://127.0.0.1:9/"], "--timeout", "timeout"),
    (["emulator"], "--attempt-timeout", "attempt_timeout"),
    (["stats", "w1"], "--fail-over-lag", "fail_over_lag"),
    (["trigger"], "--timeout", "request_timeout"),
]


@pytest.mark.parametrize(("command", "option", "name"), DURATION_OPTIONS)
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("12s", 12), ("2m", 120), ("1h30m", 5400), ("30", 30), ("0.5", 0.5)],
)
def test_every_duration_option_takes_the_same_forms(command, option, name, text, seconds):
    assert parsed(*command, option, text)[name] == seconds


@pytest.mark.parametrize(("command", "option", "name"), DURATION_OPTIONS)
def test_a_duration_that_is_not_one_is_one_usage_line_naming_the_option(command, option, name):
    with pytest.raises(UsageError, match=f"^{option} 'soon': give a duration such as 90s"):
        parsed(*command, option, "soon")


def test_tail_takes_1s(atwh):
    """issue 26: `tail --interval 1s` was refused ('1s' is not a valid float range)."""
    result = atwh("tail", "--interval", "1s")  # no webhook: refused for that, not for 1s
    assert result.exit_code == 2
    assert "no webhook id" in result.stderr and "--interval" not in result.stderr


def test_bounds_are_said_in_the_option_s_words():
    with pytest.raises(UsageError, match=r"^--interval '0' is below 0.01s$"):
        parsed("tail", "w1", "--interval", "0")
    with pytest.raises(UsageError, match=r"^--request-timeout '0s': give a duration above 0$"):
        parsed("serve", "--request-timeout", "0s")


@pytest.mark.parametrize(
    ("args", "shown", "not_shown"),
    [
        (["tail"], "[default: 5s]", "5.0"),
        (["replay"], "[default: 30s]", "30.0"),
        (["serve"], "[default: 2m]", "120"),
        (["serve"], "[default: 1MiB]", "1048576"),
        (["emulator"], "[default: 10s]", "10.0"),
    ],
)
def test_help_shows_defaults_as_typed(runner, args, shown, not_shown):
    text = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).stdout
    assert shown in text
    assert not_shown not in text and "x>=" not in text


@pytest.mark.parametrize(
    ("text", "size"), [("2000", 2000), ("1MiB", 1048576), ("1.5k", 1500), ("10 kb", 10000)]
)
def test_sizes(text, size):
    assert parsed("serve", "--max-body", text)["max_body"] == size


def test_rates():
    assert parsed("replay", "w1", "--rate", "600/m")["rate"] == 10
    with pytest.raises(UsageError, match=r"^--rate 'fast': give requests a second"):
        parsed("replay", "w1", "--rate", "fast")


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=999))
def test_a_duration_said_back_exactly_reads_back_the_same(whole, ms):
    seconds = whole + ms / 1000
    assert params.seconds_of(duration(seconds, exact=True)) == pytest.approx(seconds)


def test_durations_said_back_are_as_typed():
    assert [duration(s, exact=True) for s in (30, 120, 5400, 0.5, 0, 86400 + 60)] == [
        "30s",
        "2m",
        "1h30m",
        "0.5s",
        "0s",
        "1d1m",
    ]
    assert parse_duration("1d1m").total_seconds() == 86460


def test_the_stats_window_reads_in_the_one_time_format():
    """issue 26: `2026-12-05 12:05` in the stats header, `12-05 13:04:13` elsewhere."""
    from datetime import UTC, datetime, timedelta

    from atwh.output.stats import window_line
    from atwh.output.tables import when

    since = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    line = window_line({"since": since.isoformat().replace("+00:00", "Z")}).plain
    assert line == f"Attempts created since {when(since)} until now"
