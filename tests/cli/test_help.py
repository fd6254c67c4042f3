"""Help that reads like the rest of it, walked for every command, and errors that name the
option and the value."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys

import pytest
import typer
from typer.main import get_command

from atwh.cli import app
from atwh.signature import Verifier


def _commands(group=None, path=()):
    group = group or get_command(app)
    yield path, group
    if hasattr(group, "list_commands"):  # a group: its commands, made as atwh makes them
        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            yield from _commands(group.get_command(ctx, name), (*path, name))


COMMANDS = [path for path, _ in _commands()]


def test_atwh_alone_prints_the_help_and_exits_0(runner):
    result = runner.invoke(app, [], prog_name="atwh")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: atwh [OPTIONS] COMMAND")
    assert "deliveries" in result.stdout and result.stderr == ""


def test_a_group_alone_prints_its_help_and_exits_0():
    # `inbox` and `emulator` alone do something (list, run); `webhooks` alone is its help
    done = subprocess.run(
        [sys.executable, "-m", "atwh", "webhooks"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: atwh webhooks [OPTIONS] COMMAND")
    assert "Commands:" in done.stdout and done.stderr == ""


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "atwh")
def test_help_has_placeholders_not_click_internals(runner, path):
    result = runner.invoke(app, [*path, "--help"], prog_name="atwh", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    for internal in ("<int", "<str", "<float", "range>", "[x>", "x<=", "INTEGER", "FLOAT", "TEXT"):
        assert internal not in text, (path, internal)
    assert not re.search(r"\{[A-Za-z_]+\}", text), text  # Typer's {ARG} in the usage line
    assert "…" not in text  # every example can be pasted
    for line in text.splitlines():
        if line.strip().startswith("atwh "):
            assert "<" not in line or "<<" in line, line


def test_the_shared_options_read_as_placeholders(runner):
    text = runner.invoke(app, ["deliveries", "--help"], env={"COLUMNS": "120"}).stdout
    for placeholder in ("--limit N", "--timeout SECONDS", "--api-url URL", "--token TOKEN"):
        assert placeholder in text


def test_every_summary_in_atwh_help_is_a_whole_sentence(runner):
    text = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout
    commands = text[text.index("Commands:") :].splitlines()[1:]
    assert len(commands) >= 6
    for line in commands:
        name, summary = line.split(None, 1)
        assert summary.endswith(".") and not summary.endswith("..."), line


def test_format_values_are_completed():
    env = {**os.environ, "_ATWH_COMPLETE": "complete_bash", "COMP_CWORD": "4"}
    env["COMP_WORDS"] = "atwh deliveries w1 --format "
    done = subprocess.run(
        [sys.executable, "-m", "atwh"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.split() == ["table", "json", "ndjson", "csv"]


# -- errors that name the option and the value ----------------------------------------------


def one_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    return line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--since", "yesterday"],
            "Error: --since: 'yesterday' is not a duration or a date (try 1d, 12h or ",
        ),
        (["--until", "soon"], "Error: --until: 'soon' is not a duration or a date"),
        (["--since", "1764620000"], "Error: --since: '1764620000' looks like seconds since 1970"),
        (["--limit", "0"], "Error: --limit 0: give a whole number of at least 1"),
        (["--limit", "many"], "Error: Invalid value for '--limit' / '-n': 'many' is not a whole"),
        (["--timeout", "0"], "Error: --timeout 0: give a number of seconds above 0"),
        (["--format", "xml"], "Error: --format 'xml' is not a format: use one of table, json"),
        (["-o", "out.xml"], "Error: --output 'out.xml': cannot tell the format from its"),
        (["--status-code", "abc"], "Error: --status-code 'abc': use a code (500), a class"),
    ],
)
def test_errors_name_the_option_and_the_value(atwh, fake_api, args, said):
    fake_api.add("w1", [])
    assert one_error(atwh("deliveries", "w1", *args), 2).startswith(said)


def test_since_takes_epoch_milliseconds(atwh, fake_api):
    fake_api.add("w1", [])
    assert atwh("deliveries", "w1", "--since", "1764620000000", "--json").exit_code == 0


def test_connection_errors_keep_the_port(atwh):
    line = one_error(atwh("deliveries", "w1", "--api-url", "http://127.0.0.1:1/"), 6)
    assert line == "Error: cannot reach the API at 127.0.0.1:1: connection refused"


@pytest.mark.parametrize("fmt", [[], ["--format", "table"], ["--json"], ["--format", "csv"]])
def test_output_to_a_directory_says_so(atwh, fake_api, tmp_path, fmt):
    fake_api.add("w1", [])
    line = one_error(atwh("deliveries", "w1", "-o", str(tmp_path), *fmt), 7)
    assert line == f"Error: cannot write {tmp_path}: it is a directory"


def test_a_port_in_use_points_at_port_0(runner):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    line = one_error(result, 6)
    assert f"127.0.0.1:{port}: the port is in use" in line and "--port 0" in line


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["inbox"], ["inbox", "show", "1"]])
@pytest.mark.parametrize("kind", ["not sqlite", "other sqlite"])
def test_a_db_that_is_not_an_inbox_is_a_usage_error(runner, tmp_path, command, kind):
    db = tmp_path / "other.db"
    if kind == "not sqlite":
        db.write_text("hello, not a database\n" * 100)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE notes (text)")
    result = runner.invoke(app, [*command, "--db", str(db)])
    line = one_error(result, 2)
    assert line.startswith(f"Error: --db {db} is not an atwh inbox")
    if kind == "other sqlite":  # serve did not write its tables into someone else's database
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert tables == {"notes"}


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["inbox", "show", "1"]])
def test_an_empty_secret_is_an_error(runner, command):
    line = one_error(runner.invoke(app, [*command, "--secret", ""]), 2)
    assert line.startswith("Error: --secret is empty")


def test_a_signature_timestamp_in_seconds_is_spotted():
    now = 1_764_620_000.0
    rejection = Verifier("s3cret", tolerance=120, future_skew=30).check(
        b"{}", "00", str(int(now)), now=now
    )
    assert rejection is not None and rejection.reason == "too_old"
    assert "looks like seconds" in rejection.message and "milliseconds" in rejection.message


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--id", "d1", "--since", "2h"], "Error: --id shows one delivery: --since would do"),
        (
            ["--id", "d1", "--failed", "-n", "3"],
            "Error: --id shows one delivery: --failed, --limit",
        ),
        (["--limit", "5", "--all"], "Error: --limit 5 and --all disagree: give one of them"),
    ],
)
def test_options_that_would_do_nothing_together_are_refused(atwh, fake_api, args, said):
    fake_api.add("w1", [])
    assert one_error(atwh("deliveries", "w1", *args), 2).startswith(said)


def test_every_example_in_readme_can_be_pasted():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    inline = re.findall(r"`(atwh [^`]*)`", readme)
    commands = [line for block in blocks for line in block.splitlines()] + inline
    assert len(commands) > 20
    for command in commands:
        assert "…" not in command, command


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "atwh")
def test_help_says_what_runs(runner, path):
    result = runner.invoke(app, [*path, "--help"], prog_name="atwh", env={"COLUMNS": "200"})
    text = result.stdout
    assert "x>=" not in text and not re.search(r"default: \d+\.0\]", text), text  # 30, not 30.0
    if "Same as --format json." in text:
        assert "--format" in text.replace("Same as --format json.", ""), path
    if (
        "--format" in text
        and "tab-separated" not in text
        and "table" in text.split("--format")[1][:80]
    ):
        raise AssertionError(f"{path}: --format's default does not say what a pipe gets")
    if path and path[0] == "inbox":
        assert "Only deliveries" not in text, path  # the inbox holds requests
    ids = set(
        re.findall(
            r"^\s+atwh (?:\w+ )*?(?:deliveries|failures|stats|tail|replay|reconcile)"
            r" ([\w-]+)",
            text,
            re.M,
        )
    )
    ids = {i for i in ids if not i.isdigit()}  # `inbox replay 42`: inbox ids
    assert ids <= {"wh-history", "--history", "--since"}, ids  # runnable on the emulator


@pytest.mark.parametrize("value", ["", "  "])
@pytest.mark.parametrize("name", ["ALLTHINGS_WEBHOOK_SECRET", "SHARED_WEBHOOK_SECRET"])
def test_small_ones_an_empty_secret_in_the_environment_is_an_error(tmp_path, name, value):
    """Issue 22, item 14: set but empty is an error, as `--secret ''` is, not a receiver
    that quietly verifies nothing. (A subprocess, bounded: a serve that starts would run.)"""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("WEBHOOK_SECRET")}
    env.update({name: value, "XDG_DATA_HOME": str(tmp_path)})
    for command in (["serve", "--port", "0"], ["inbox", "show", "1"]):
        done = subprocess.run(
            [sys.executable, "-m", "atwh", *command, "--db", str(tmp_path / "inbox.sqlite3")],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"Error: {name} is set but empty"), done.stderr
