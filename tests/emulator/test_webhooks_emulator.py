"""`atwh webhooks` over real HTTP against the emulator: the create → list → update → show →
ping → remove round trip, confirmation on a real terminal, `--debug` without the secret,
and `atwh emulator emit` / the banner pointing at what works locally."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
import respx

from tests.conftest import free_port
from tests.emulator.test_emulator import APP_URNS, emulator, receiver

TIMEOUT = 60  # seconds any one subprocess may take, however loaded the machine is


def created_id(stderr: str) -> str:
    match = re.search(r"^Registered webhook (\S+)\.$", stderr, re.M)
    assert match, stderr
    return match.group(1)


def test_create_list_update_show_ping_remove(tmp_path, atwh):
    with emulator() as emu, receiver(tmp_path) as rcv:
        url = ["--api-url", emu.url]
        created = atwh(
            "webhooks",
            "create",
            "--url",
            rcv.url,
            "-e",
            "ticket.created",
            "--app",
            "a1",
            "--description",
            "round trip",
            *url,
        )
        assert created.exit_code == 0, created.stderr
        hook_id = created_id(created.stderr)
        secret = emu.app.state.webhooks[hook_id].secret
        assert secret[:4] + "…" in created.stdout and secret not in created.stdout
        serve = f"atwh serve --webhook {hook_id} --port {rcv.port} --api-url {emu.url}"
        assert serve in created.stderr
        assert [r["verdict"] for r in rcv.rows()] == ["test"]  # the emulator's URL check

        listed = atwh("webhooks", "list", "--app", "a1", "--json", *url)
        assert listed.exit_code == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert row["id"] == hook_id and row["urns"] == APP_URNS and row["enabled"] is True
        assert hook_id in atwh("webhooks", "list", "--app", "a1", *url).stdout

        updated = atwh(
            "webhooks", "update", hook_id, "--add-event", "ticket.updated", "--disable", *url
        )
        assert updated.exit_code == 0, updated.stderr
        assert "events: +ticket.updated" in updated.stdout
        assert "enabled: yes → no" in updated.stdout

        shown = atwh("webhooks", "show", hook_id, "--json", "--show-secret", *url)
        got = json.loads(shown.stdout)
        assert got["events"] == ["ticket.created", "ticket.updated"]
        assert got["enabled"] is False and got["description"] == "round trip"
        assert got["secret"] == secret

        pinged = atwh("webhooks", "ping", hook_id, *url)
        assert pinged.exit_code == 0, pinged.stdout + pinged.stderr
        assert "would be accepted" in pinged.stdout

        removed = atwh("webhooks", "remove", hook_id, "--yes", *url)
        assert removed.exit_code == 0, removed.stderr
        assert hook_id not in emu.app.state.webhooks
        assert atwh("webhooks", "show", hook_id, *url).exit_code == 4
        assert atwh("webhooks", "remove", hook_id, "--yes", *url).exit_code == 4


def test_the_emulator_refuses_what_the_vendor_refuses(tmp_path, atwh):
    with emulator() as emu:
        url = ["--api-url", emu.url]
        dead = f"http://127.0.0.1:{free_port()}/webhook"
        refused = atwh(
            "webhooks", "create", "--url", dead, "-e", "ticket.created", "--app", "a", *url
        )
        assert refused.exit_code == 5
        assert refused.stderr.startswith("Error: the API refused: URL_CHECK_FAILED: ")
        assert "atwh webhooks ping --url" in refused.stderr
        with receiver(tmp_path) as rcv:
            hook = emu.register(rcv.url)
        moved = atwh("webhooks", "update", hook["id"], "--url", dead, *url)
        assert moved.exit_code == 5 and "URL_CHECK_FAILED" in moved.stderr
        events = json.loads(atwh("webhooks", "events", "--json", *url).stdout)
        names = {e["eventName"]: e["description"] for e in events}
        for attested in (
            "ticket.created",
            "ticket.updated",
            "booking.accepted",
            "community-article.published",
        ):
            assert "emulator's own" not in names.pop(attested)
        assert names and all(text.startswith("Emulator's own addition") for text in names.values())


def test_emit_with_no_subscriber_shows_the_create_that_would(tmp_path, atwh, monkeypatch):
    import shlex
    import socket

    from atwh.client import emit
    from atwh.receiver.inbox import default_path
    from atwh.receiver.lock import InboxLock

    # serve's default port may be taken by a receiver someone runs on this machine: the
    # default URL the suggestion tries is one where nothing listens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr(emit, "RECEIVER_URL", f"http://127.0.0.1:{closed}/webhook")
    with emulator() as emu:
        urn = "urn:allthings:app:zz:tickets"
        alone = atwh("emulator", "emit", "ticket.created", "--urn", urn, "--emulator-url", emu.url)
        assert alone.exit_code == 0, alone.stderr
        # no receiver runs: no URL to suggest, and no command that would fail when copied
        assert "start a receiver ('atwh serve'), then, with the URL it prints:" in alone.stderr
        assert (
            "  atwh webhooks create --url URL --event ticket.created "
            f"--urn 'urn:allthings:app:zz:*' --api-url {emu.url}"
        ) in alone.stderr
        with receiver(tmp_path) as rcv:
            lock = InboxLock(default_path(), url=rcv.url)  # as `atwh serve` holds its inbox
            result = atwh("emulator", "emit", "ticket.created", "--urn", urn, "--api-url", emu.url)
            assert "No enabled webhook subscribes to ticket.created" in result.stderr
            suggested = re.search(r"^  (atwh webhooks create .*)$", result.stderr, re.M)
            assert suggested, result.stderr
            assert suggested.group(1) == (  # the port the receiver listens on
                f"atwh webhooks create --url {rcv.url} --event ticket.created "
                f"--urn 'urn:allthings:app:zz:*' --api-url {emu.url}"
            )
            created = atwh(*shlex.split(suggested.group(1))[1:])  # copied as it is
            assert created.exit_code == 0, created.stderr
            hook_id = created_id(created.stderr)
            again = atwh("emulator", "emit", "ticket.created", "--urn", urn, "--api-url", emu.url)
            assert "1 webhook" in again.stdout and "No enabled webhook" not in again.stderr

            def suggestion(event: str) -> list[str]:
                emitted = atwh("emulator", "emit", event, "--urn", urn, "--api-url", emu.url)
                assert "Delivering to 0 webhooks" in emitted.stdout, emitted.stderr
                line = re.search(r"^  atwh (.*)$", emitted.stderr, re.M)
                assert line, emitted.stderr
                return line.group(1).split()

            assert suggestion("ticket.updated") == [
                "webhooks", "update", hook_id, "--add-event", "ticket.updated",
                "--api-url", emu.url,
            ]  # fmt: skip
            assert atwh(*suggestion("ticket.updated")).exit_code == 0
            assert atwh("webhooks", "disable", hook_id, "--api-url", emu.url).exit_code == 0
            assert suggestion("ticket.updated") == [
                "webhooks",
                "enable",
                hook_id,
                "--api-url",
                emu.url,
            ]
            assert atwh(*suggestion("ticket.updated")).exit_code == 0
            last = atwh("emulator", "emit", "ticket.updated", "--urn", urn, "--api-url", emu.url)
            assert "1 webhook" in last.stdout, last.stderr
            lock.release()


def test_emit_goes_to_the_local_emulator_by_default(atwh, monkeypatch):
    answer = {
        "data": {
            "emitEvent": {
                "code": "EMITTED",
                "success": True,
                "message": "Delivering to 1 webhook.",
                "webhooks": 1,
                "event": {"id": "e1", "name": "ticket.created", "urn": "u", "createdDate": "x"},
            }
        }
    }
    monkeypatch.setenv("ATWH_API_URL", "https://webhooks.allthings.me/")
    with respx.mock(assert_all_called=False) as mock:
        local = mock.post("http://127.0.0.1:4000/").mock(
            return_value=httpx.Response(200, json=answer)
        )
        other = mock.post("http://127.0.0.1:4555/").mock(
            return_value=httpx.Response(200, json=answer)
        )
        real = mock.post("https://webhooks.allthings.me/")
        args = ("emulator", "emit", "ticket.created", "--urn", "urn:allthings:app:a:*")
        assert atwh(*args).exit_code == 0
        monkeypatch.setenv("ATWH_EMULATOR_URL", "http://127.0.0.1:4555/")
        assert atwh(*args).exit_code == 0
    assert local.call_count == 1 and other.call_count == 1 and real.call_count == 0


# -- real processes ------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATWH_", "ALLTHINGS_"))}
    for name in ("ATWH_CONFIG_DIR", "ATWH_CACHE_DIR", "ATWH_DATA_DIR"):
        env[name] = os.environ[name]
    env.update(NO_COLOR="1", ATWH_TOKEN="any", **extra)
    return env


def test_debug_never_logs_the_secret(tmp_path):
    with emulator() as emu, receiver(tmp_path) as rcv:
        hook = emu.register(rcv.url)
        for args in (
            ["show", hook["id"]],
            ["show", hook["id"], "--json"],
            ["create", "--url", rcv.url, "-e", "ticket.created", "--app", "a1", "--json"],
            ["update", hook["id"], "--description", "d", "--json"],
        ):
            run = subprocess.run(
                [sys.executable, "-m", "atwh", "--debug", "webhooks", *args, "--api-url", emu.url],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=_env(),
            )
            assert run.returncode == 0, run.stderr
            assert "debug: " in run.stderr  # it did log
            secrets = [h.secret for h in emu.app.state.webhooks.values()]
            for secret in secrets:
                assert secret not in run.stdout + run.stderr, args


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    import select

    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} on the terminal; saw {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
@pytest.mark.parametrize("answer", ["n", "y"])
def test_remove_asks_on_a_real_terminal(tmp_path, answer):
    import pty

    with emulator() as emu, receiver(tmp_path) as rcv:
        hook = emu.register(rcv.url, description="on a tty")
        main, other = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "atwh", "webhooks", "remove", hook["id"], "--api-url", emu.url],
            stdin=other,
            stdout=other,
            stderr=other,
            env=_env(),
        )
        os.close(other)
        try:
            deadline = time.monotonic() + TIMEOUT
            asked = _read_until(main, b"[y/N]", deadline)
            assert b"Remove webhook " + hook["id"].encode() + b" (on a tty, " in asked
            os.write(main, answer.encode() + b"\n")
            rest = _read_until(main, b"webhook", deadline)
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)
        if answer == "y":
            assert hook["id"] not in emu.app.state.webhooks
        else:
            assert b"Kept webhook" in rest + _drain(main)
            assert hook["id"] in emu.app.state.webhooks


def _drain(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def test_the_banner_suggests_a_token_that_works(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "atwh", "emulator", "--port", "0", "--token", "s3cret-dev"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + TIMEOUT
        lines: list[str] = []
        while not any("try:" in line for line in lines):
            assert time.monotonic() < deadline, lines
            line = proc.stderr.readline().decode()
            assert line, lines
            lines.append(line)
        suggestion = next(line for line in lines if "try:" in line)
        env = dict(re.findall(r"(ATWH_\w+)=(\S+)", suggestion))
        assert env["ATWH_TOKEN"] == "s3cret-dev"
        assert len(suggestion.rstrip("\n")) <= 80  # one line at 80 columns, not wrapped
        run = subprocess.run(
            [sys.executable, "-m", "atwh", "webhooks", "events"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**_env(), **env},
        )
        assert run.returncode == 0, run.stderr
        assert "ticket.created" in run.stdout
        # emit finds this emulator (not on port 4000) by ATWH_API_URL alone
        emitted = subprocess.run(
            [sys.executable, "-m", "atwh", "emulator", "emit", "ticket.created"]
            + ["--urn", "urn:allthings:app:a1:tickets"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**_env(), **env},
        )
        assert emitted.returncode == 0, emitted.stderr
        assert "Delivering to 0 webhooks" in emitted.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


@pytest.mark.parametrize(
    "args, code, said",
    [
        (["--urn", "foo"], 2, "Error: --urn 'foo' is not a URN such as urn:allthings:app:"),
        (
            ["--urn", "urn:allthings:app:a:x", "--emulator-url", "https://webhooks.allthings.me/"],
            2,
            "is not on this machine: emit talks to an 'atwh emulator' on a loopback host",
        ),
        (
            [
                "--urn",
                "urn:allthings:app:a:x",
                "--emulator-url",
                f"http://127.0.0.1:{free_port()}/",
            ],
            6,
            "start one in another shell with 'atwh emulator'",
        ),
    ],
)
def test_emit_says_in_one_line_what_is_wrong(atwh, args, code, said):
    with respx.mock(assert_all_called=False) as mock:
        real = mock.post("https://webhooks.allthings.me/")
        mock.route(host="127.0.0.1").pass_through()
        result = atwh("emulator", "emit", "ticket.created", *args)
    assert result.exit_code == code, result.output
    assert said in result.stderr and len(result.stderr.splitlines()) == 1
    assert real.call_count == 0  # never the real API


def test_emit_of_an_event_nobody_can_subscribe_to_suggests_nothing_that_fails(atwh):
    with emulator() as emu:
        result = atwh(
            "emulator", "emit", "no.such.event", "--urn", "urn:allthings:app:zz:x",
            "--api-url", emu.url,
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "none can: it is not an event one can subscribe to" in result.stderr
    assert "--add-event" not in result.stderr and "  atwh " not in result.stderr


def test_messages_are_wrapped_at_spaces_and_commands_kept_whole():
    from atwh.output.tables import wrapped

    hook = "6ab9c0e7-e10d-46cd-87a0-26d43a5fd6be"
    message = (
        "No enabled webhook subscribes to booking.accepted on "
        "urn:allthings:app:demo-app:bookings: the event was recorded and delivered nowhere; "
        f"webhook {hook} covers the URN but not the event:\n"
        f"  atwh webhooks update {hook} --add-event booking.accepted"
    )
    lines = wrapped(message, 80).splitlines()
    assert all(len(line) <= 80 for line in lines[:-1])
    assert any(hook in line for line in lines[:-1])  # the id whole, on one line
    assert lines[-1] == f"  atwh webhooks update {hook} --add-event booking.accepted"
    assert " ".join(lines[:-1]) == message.splitlines()[0]
