"""Every error a user can cause: one `Error: ` line on stderr, a documented exit code,
no traceback (unless --debug), and never the token."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import httpx
import pytest

from atwh.cli import app
from atwh.errors import ExitStatus
from tests.conftest import node

COMMANDS = {
    "deliveries": ["deliveries", "w1"],
    "failures": ["failures", "w1"],
}
both = pytest.mark.parametrize("command", list(COMMANDS))


def one_error(result: Any, code: int, *needles: str) -> str:
    """Assert the run failed with `code` and exactly one `Error: ` line; that line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: "), line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture
def hook(fake_api):
    fake_api.add(
        "w1",
        [
            node(1, code=200, age=timedelta(minutes=5)),
            node(2, code=500, age=timedelta(hours=3)),
            node(3, code=None, message="ESOCKETTIMEDOUT", age=timedelta(days=2)),
        ],
    )
    return fake_api


@pytest.fixture
def debug_log(caplog) -> pytest.LogCaptureFixture:
    """Every log record of the run, at debug level: where --debug output goes under pytest
    (pytest's own handlers on the root logger make --debug's basicConfig a no-op here)."""
    caplog.set_level(logging.DEBUG)
    return caplog


def invoke_without_credentials(*args: str) -> Any:
    from typer.testing import CliRunner

    assert not os.environ.get("ATWH_TOKEN", "").strip()
    return CliRunner().invoke(app, list(args), prog_name="atwh")


# -- options and arguments: exit 2 --------------------------------------------------------

USAGE = [
    pytest.param(["--since", "7x"], ["7x"], id="since-7x"),
    pytest.param(["--until", "yesterday"], ["yesterday"], id="until-yesterday"),
    pytest.param(["--since", ""], [], id="since-empty"),
    pytest.param(["--until", ""], [], id="until-empty"),
    pytest.param(
        ["--since", "1d", "--until", "2d"], ["--since", "--until"], id="since-after-until"
    ),
    pytest.param(["--format", "xml"], ["xml"], id="format-xml"),
    pytest.param(["--json", "--format", "csv"], ["--json", "csv"], id="json-and-csv"),
    pytest.param(["--limit", "0"], ["--limit"], id="limit-0"),
    pytest.param(["--limit", "-3"], ["--limit"], id="limit-negative"),
    pytest.param(["--limit", "lots"], ["--limit"], id="limit-word"),
    pytest.param(["--status-code", "99"], ["99"], id="status-99"),
    pytest.param(["--status-code", "abc"], ["abc"], id="status-abc"),
    pytest.param(["--status-code", "500,600"], ["600"], id="status-600"),
    pytest.param(["--timeout", "0"], ["--timeout"], id="timeout-0"),
    pytest.param(["--timeout", "soon"], ["--timeout"], id="timeout-word"),
    pytest.param(["--bogus"], ["--bogus"], id="bogus-option"),
    pytest.param(["--api-url", "ftp://x"], ["ftp://x"], id="api-url-ftp"),
    pytest.param(["--api-url", "not a url"], ["not a url"], id="api-url-words"),
]


@both
@pytest.mark.parametrize(("args", "needles"), USAGE)
def test_usage_errors(atwh, hook, command, args, needles):
    result = atwh(*COMMANDS[command], *args)
    one_error(result, ExitStatus.USAGE, *needles)
    assert result.stdout == ""
    assert hook.requests == []  # refused before asking the API anything


@both
def test_output_with_unknown_extension(atwh, hook, tmp_path, command):
    target = tmp_path / "out.xlsx"
    result = atwh(*COMMANDS[command], "--output", str(target))
    one_error(result, ExitStatus.USAGE, "out.xlsx", "--format")
    assert list(tmp_path.iterdir()) == []


def test_unknown_command(atwh, hook):
    one_error(atwh("nope"), ExitStatus.USAGE, "nope")


def test_deliveries_without_webhook_id(atwh, hook):
    result = atwh("deliveries", "--json")
    line = one_error(result, ExitStatus.USAGE)
    assert "webhook_id" in line.lower()
    assert hook.requests == []


@pytest.mark.parametrize(
    ("args", "given"),
    [
        (["deliveries", ""], "WEBHOOK_ID"),
        (["reconcile", " ", "--db", "inbox.sqlite3"], "WEBHOOK_ID"),
        (["webhooks", "show", ""], "WEBHOOK_ID"),
        (["webhooks", "remove", "", "--yes"], "WEBHOOK_ID"),
        (["webhooks", "ping", ""], "WEBHOOK_ID"),
        (["serve", "--webhook", ""], "--webhook"),
        (["check", "--webhook", ""], "--webhook"),
        (["trigger", "--webhook", ""], "--webhook"),
    ],
)
def test_an_empty_webhook_id_is_a_usage_error(atwh, hook, args, given):
    """`--webhook "$UNSET"` says the id is empty (exit 2), not "webhook  not found" (exit 4)."""
    line = one_error(atwh(*args), ExitStatus.USAGE, f"{given} is empty")
    assert "atwh webhooks list" in line
    assert hook.requests == []


def test_deliveries_with_no_arguments_at_all(atwh, hook):
    result = atwh("deliveries")
    one_error(result, ExitStatus.USAGE)
    assert hook.requests == []


def test_api_url_from_env_is_checked(atwh, hook, monkeypatch):
    monkeypatch.setenv("ATWH_API_URL", "ftp://x")
    one_error(atwh("deliveries", "w1"), ExitStatus.USAGE, "ftp://x")


def test_api_url_from_config_is_checked(atwh, hook, tmp_path):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('api_url = "ftp://x"\n')
    one_error(atwh("deliveries", "w1"), ExitStatus.USAGE, "ftp://x")


# -- the config file: exit 2 --------------------------------------------------------------


@pytest.fixture
def broken_config(tmp_path):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('webhooks = ["w1"\napi_url = \n')
    return config


@both
def test_config_file_not_toml(atwh, hook, broken_config, command):
    result = atwh(*COMMANDS[command])
    one_error(result, ExitStatus.USAGE, str(broken_config), "not valid TOML")
    assert hook.requests == []


def test_config_file_not_toml_when_ids_come_from_it(atwh, hook, broken_config):
    one_error(atwh("failures"), ExitStatus.USAGE, str(broken_config), "not valid TOML")


def test_config_file_from_atwh_config_not_toml(atwh, hook, tmp_path, monkeypatch):
    elsewhere = tmp_path / "mine.toml"
    elsewhere.write_text("this is = = not toml")
    monkeypatch.setenv("ATWH_CONFIG", str(elsewhere))
    one_error(atwh("failures"), ExitStatus.USAGE, str(elsewhere), "not valid TOML")


def test_config_file_webhooks_not_a_list(atwh, hook, tmp_path):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text("webhooks = 5\n")
    one_error(atwh("failures"), ExitStatus.USAGE, "webhooks")


# -- the output file: exit 7, and nothing left behind -------------------------------------


@both
@pytest.mark.parametrize("name", ["out.json", "out.csv", "out.txt"])
def test_output_in_a_missing_directory(atwh, hook, tmp_path, command, name):
    target = tmp_path / "missing" / name
    result = atwh(*COMMANDS[command], "--output", str(target))
    one_error(result, ExitStatus.OUTPUT, "cannot write", str(target))
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@both
@pytest.mark.parametrize(
    ("name", "args"),
    [("out.json", []), ("out.txt", []), ("somedir", ["--format", "csv"]), ("d", ["--json"])],
)
def test_output_is_a_directory(atwh, hook, tmp_path, command, name, args):
    target = tmp_path / name
    target.mkdir()
    result = atwh(*COMMANDS[command], *args, "--output", str(target))
    one_error(result, ExitStatus.OUTPUT, str(target), "directory")
    assert result.stdout == ""
    assert list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
@both
@pytest.mark.parametrize("name", ["out.json", "out.txt"])
def test_output_in_a_read_only_directory(atwh, hook, tmp_path, command, name):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = atwh(*COMMANDS[command], "--output", str(locked / name))
        one_error(result, ExitStatus.OUTPUT, "cannot write", str(locked / name))
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_output_error_after_an_api_error_leaves_no_file(atwh, fake_api, tmp_path):
    fake_api.responses.append(httpx.Response(500, text="boom"))
    target = tmp_path / "out.json"
    one_error(atwh("deliveries", "w1", "-o", str(target)), ExitStatus.API, "500")
    assert list(tmp_path.iterdir()) == []


@both
@pytest.mark.parametrize("name", ["out.json", "out.csv", "out.txt"])
def test_api_error_on_a_later_page_leaves_no_file(atwh, fake_api, tmp_path, command, name):
    fake_api.responses.append(_page([node(i, code=500) for i in range(100)], has_next=True))
    fake_api.responses.append(httpx.Response(500, text="boom"))
    target = tmp_path / name
    every = ["--all"] if name == "out.txt" else []  # a table shows the newest 50 by default
    result = atwh(*COMMANDS[command], "--output", str(target), *every)
    one_error(result, ExitStatus.API, "500")
    assert len(fake_api.requests) == 2
    assert list(tmp_path.iterdir()) == []


def test_timeout_from_env_is_checked(atwh, hook, monkeypatch):
    monkeypatch.setenv("ATWH_TIMEOUT", "never")
    one_error(atwh("deliveries", "w1"), ExitStatus.USAGE, "timeout")


# -- credentials: exit 3 ------------------------------------------------------------------


@both
def test_no_credentials_at_all(fake_api, command):
    fake_api.add("w1", [node(1)])
    result = invoke_without_credentials(*COMMANDS[command])
    one_error(result, ExitStatus.AUTH, "ATWH_TOKEN", "ALLTHINGS_OAUTH_CLIENT_ID")
    assert result.stdout == ""
    assert fake_api.requests == []


def test_blank_token_is_no_credentials(fake_api, monkeypatch):
    monkeypatch.setenv("ATWH_TOKEN", "  ")
    result = invoke_without_credentials("deliveries", "w1")
    one_error(result, ExitStatus.AUTH, "ATWH_TOKEN", "ALLTHINGS_OAUTH_CLIENT_ID")
    assert fake_api.requests == []


@both
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(
            httpx.Response(401, json={"errors": [{"message": "Unauthorized"}]}), id="json"
        ),
        pytest.param(httpx.Response(401, text="Unauthorized"), id="text"),
    ],
)
def test_api_answers_401(atwh, hook, command, response):
    hook.responses.append(response)
    result = atwh(*COMMANDS[command])
    one_error(result, ExitStatus.AUTH, "401")
    assert len(hook.requests) == 1  # a static token cannot be renewed: no retry


@both
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(403, json={"errors": [{"message": "Forbidden"}]}), id="json"),
        pytest.param(httpx.Response(403, text="Forbidden"), id="text"),
    ],
)
def test_api_answers_403(atwh, hook, command, response):
    hook.responses.append(response)
    one_error(atwh(*COMMANDS[command]), ExitStatus.AUTH, "403")


def test_graphql_unauthenticated_without_data(atwh, hook):
    hook.responses.append(
        httpx.Response(
            200,
            json={"errors": [{"message": "nope", "extensions": {"code": "UNAUTHENTICATED"}}]},
        )
    )
    one_error(atwh("deliveries", "w1"), ExitStatus.AUTH)


# -- the webhook: exit 4 ------------------------------------------------------------------


@both
@pytest.mark.parametrize("extra", [[], ["--json"], ["--format", "csv"]])
def test_unknown_webhook(atwh, fake_api, command, extra):
    result = atwh(command, "nope", *extra)
    one_error(result, ExitStatus.NOT_FOUND, "webhook nope not found")


def test_unknown_webhook_with_output_file_leaves_nothing(atwh, fake_api, tmp_path):
    result = atwh("failures", "nope", "-o", str(tmp_path / "f.csv"))
    one_error(result, ExitStatus.NOT_FOUND, "nope")
    assert list(tmp_path.iterdir()) == []


# -- the API: exit 5 ----------------------------------------------------------------------


@both
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(500, text="Internal Server Error"), id="text"),
        pytest.param(httpx.Response(500, json={"errors": [{"message": "db down"}]}), id="json"),
    ],
)
def test_api_answers_500(atwh, hook, command, response):
    hook.responses.append(response)
    one_error(atwh(*COMMANDS[command]), ExitStatus.API, "500")


@both
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retried_statuses_give_up_after_four_tries(atwh, hook, command, status):
    hook.responses.extend(httpx.Response(status, text="busy") for _ in range(4))
    one_error(atwh(*COMMANDS[command]), ExitStatus.API, str(status))
    assert len(hook.requests) == 4


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retried_statuses_then_an_answer(atwh, hook, status):
    hook.responses.extend(httpx.Response(status, text="busy") for _ in range(3))
    result = atwh("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert len(hook.requests) == 4


@both
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(200, text="<html>maintenance</html>"), id="html"),
        pytest.param(httpx.Response(200, text=""), id="empty"),
        pytest.param(httpx.Response(200, json=[1, 2]), id="json-list"),
    ],
)
def test_api_answers_not_graphql(atwh, hook, command, response):
    hook.responses.append(response)
    one_error(atwh(*COMMANDS[command]), ExitStatus.API)


@both
def test_graphql_errors_without_data(atwh, hook, command):
    hook.responses.append(
        httpx.Response(200, json={"errors": [{"message": "Cannot query webhooks right now"}]})
    )
    result = atwh(*COMMANDS[command])
    one_error(result, ExitStatus.API, "Cannot query webhooks right now")
    assert result.stdout == ""


def _page(
    nodes: list[dict[str, Any]], errors: list[str] = (), has_next: bool = False
) -> httpx.Response:
    """One page of w1's deliveries as the paged query gets it, maybe with GraphQL errors."""
    body: dict[str, Any] = {
        "data": {
            "webhook": {
                "id": "w1",
                "description": "hook w1",
                "url": "https://example.com/webhook",
                "enabled": True,
                "deliveries": {
                    "totalCount": len(nodes) + 100 * has_next,
                    "pageInfo": {"hasNextPage": has_next, "endCursor": f"c{len(nodes)}"},
                    "nodes": nodes,
                },
            }
        }
    }
    if errors:
        body["errors"] = [{"message": m, "path": ["webhook"]} for m in errors]
    return httpx.Response(200, json=body)


def _page_with_errors(nodes: list[dict[str, Any]]) -> httpx.Response:
    return _page(nodes, ["event payload unavailable"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["deliveries", "w1", "--json"], ["d1", "d2"]),
        (["failures", "w1", "--json"], ["d2"]),
    ],
)
def test_graphql_errors_beside_data(atwh, fake_api, args, expected):
    import json

    fake_api.responses.append(_page_with_errors([node(1, code=200), node(2, code=500)]))
    result = atwh(*args)
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in json.loads(result.stdout)] == expected
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Warning: ")
    assert "event payload unavailable" in lines[0]
    assert "Traceback" not in result.output


def test_graphql_errors_beside_data_in_the_table(atwh, fake_api):
    fake_api.responses.append(_page_with_errors([node(1, code=200), node(2, code=500)]))
    result = atwh("deliveries", "w1", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "2 deliveries (2 shown)" in result.stdout
    assert result.stderr.startswith("Warning: ")


# -- the network: exit 6 ------------------------------------------------------------------


@both
def test_unreachable_server(atwh, command):
    result = atwh(*COMMANDS[command], "--api-url", "http://127.0.0.1:1/")
    one_error(result, ExitStatus.NETWORK, "127.0.0.1")
    assert result.stdout == ""


def test_api_does_not_answer_in_time(atwh):
    import respx

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post("https://slow.example/").mock(side_effect=httpx.ReadTimeout("slow"))
        result = atwh("deliveries", "w1", "--api-url", "https://slow.example/")
    one_error(result, ExitStatus.NETWORK, "slow.example", "in time")
    assert route.call_count == 4  # retried


# -- --debug, and the token ---------------------------------------------------------------


def test_debug_shows_the_traceback(atwh, fake_api):
    plain = atwh("deliveries", "nope")
    one_error(plain, ExitStatus.NOT_FOUND, "nope")
    debug = atwh("--debug", "deliveries", "nope")
    assert debug.exit_code == ExitStatus.NOT_FOUND
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NotFoundError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_debug_from_env_shows_the_traceback(atwh, fake_api, monkeypatch):
    monkeypatch.setenv("ATWH_DEBUG", "1")
    result = atwh("failures", "w1", "--since", "7x")
    assert result.exit_code == ExitStatus.USAGE
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


SECRET = "s3cr3t-T0KEN-value-4711"


@pytest.mark.parametrize(
    ("args", "response", "code"),
    [
        pytest.param(["deliveries", "w1", "--json"], None, 0, id="deliveries-ok"),
        pytest.param(["failures", "w1"], None, 0, id="failures-ok"),
        pytest.param(["deliveries", "w1", "--id", "d2"], None, 0, id="one-delivery"),
        pytest.param(["deliveries", "w1"], httpx.Response(401, text="bad token"), 3, id="401"),
        pytest.param(["failures", "w1"], httpx.Response(403, text="no"), 3, id="403"),
        pytest.param(["deliveries", "w1"], httpx.Response(500, text="x"), 5, id="500"),
        pytest.param(["deliveries", "nope"], None, 4, id="not-found"),
        pytest.param(["failures", "w1", "--since", "7x"], None, 2, id="usage"),
    ],
)
@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_token_never_printed(runner, hook, debug_log, args, response, code, debug):
    if response is not None:
        hook.responses.append(response)
    result = runner.invoke(app, [*debug, *args, "--token", SECRET], prog_name="atwh")
    assert result.exit_code == code, result.output
    assert SECRET not in result.output
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "s3cr3t" not in result.output
    if hook.requests:
        assert hook.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in debug_log.text
    if hook.requests:  # requests were logged, and still no token
        assert any(r.name.startswith(("httpx", "httpcore")) for r in debug_log.records)


def test_token_from_env_never_printed_with_debug(runner, hook, debug_log, monkeypatch):
    monkeypatch.setenv("ATWH_TOKEN", SECRET)
    hook.responses.append(httpx.Response(401, text="bad token"))
    result = runner.invoke(app, ["--debug", "failures", "w1"], prog_name="atwh")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    assert SECRET not in result.output
    assert SECRET not in debug_log.text


def test_a_value_out_of_range_reads_as_a_person_says_it():
    from typer.testing import CliRunner

    from atwh.cli import app

    result = CliRunner().invoke(app, ["tail", "wh-1", "--interval", "0"])
    assert result.exit_code == 2
    assert "--interval" in result.output and "is below 0.01" in result.output
    assert "x>=" not in result.output


def test_ctrl_c_in_any_command_says_interrupted_and_exits_130(tmp_path):
    """Typer turns a KeyboardInterrupt into a silent exit 130 before atwh's main sees it:
    Ctrl-C in `atwh demo` (or any command that does not handle it itself) ended with
    nothing said. Here a command waits on an API that takes the connection and never
    answers; SIGINT ends it with one line, 'Interrupted.', and exit 130."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(15)  # (atwh never connecting fails the test, not hangs it)
        port = listener.getsockname()[1]
        env = {**os.environ, "ATWH_TOKEN": "t", "ATWH_CONFIG": str(tmp_path / "none.toml")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "atwh", "deliveries", "wh-1", "--timeout", "30",
             "--api-url", f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            conn, _ = listener.accept()  # the request is on its way: atwh waits for an answer
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
            conn.close()
        finally:
            proc.kill()
    assert proc.returncode == ExitStatus.INTERRUPTED
    assert err.decode().strip() == "Interrupted." and out == b""
