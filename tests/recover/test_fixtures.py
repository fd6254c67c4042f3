"""`--save DIR` and `--as curl`: replays written down instead of sent."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from atwh import signature
from atwh.recover.fixtures import curl_commands
from atwh.recover.selection import Candidate
from atwh.server import BackgroundServer
from tests.conftest import hmac_hex, request_body
from tests.recover.test_replay import outage


def test_save_writes_each_request_and_sends_nothing(loop, atwh, tmp_path):
    failed, _ = outage(loop, failing=2)
    out = tmp_path / "fixtures"
    result = atwh("replay", *loop.args("--save", str(out)))
    assert result.exit_code == 0, result.output
    assert "Wrote 2 requests" in result.stderr
    assert loop.replays() == []
    saved = sorted(out.glob("*.json"))
    assert [json.loads(p.read_text())["eventId"] for p in saved] == failed
    for p in saved:
        request = json.loads(p.read_text())
        body = (out / request["body"]).read_bytes()
        assert body == loop.emulator.state.events[request["eventId"]].payload.encode()
        assert request["url"] == loop.receiver_url and request["method"] == "POST"
        assert request["headers"]["x-allthings-signature"] == hmac_hex(body, loop.secret)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_commands_run_as_printed_and_verify(loop, atwh):
    failed, _ = outage(loop, failing=2)
    result = atwh("replay", *loop.args("--as", "curl"))
    assert result.exit_code == 0, result.output
    assert "timestamp" in result.stderr and "tolerance" in result.stderr
    commands = result.stdout.strip().splitlines()
    assert len(commands) == 2 and loop.replays() == []
    for command in commands:
        answer = subprocess.run(
            ["bash", "-c", command], capture_output=True, timeout=30, check=True
        )
        assert json.loads(answer.stdout) == {"message": "success"}
    assert [r.event_id for r in loop.replays()] == failed
    assert all(r.verdict == "verified" for r in loop.replays())


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_sends_any_body_byte_for_byte():
    """Bodies a shell or curl would mangle: `@file`, a NUL, bytes that are not UTF-8, quotes."""
    bodies = [b"@/etc/passwd", b"a\x00b", b"\xff\xfe", b'it\'s "quoted" $HOME `x`']
    got: list[tuple[bytes, str]] = []

    async def app(scope, receive, send):
        body = await request_body(scope, receive, send)
        if body is None:
            return
        headers = dict(scope["headers"])
        got.append((body, headers[b"x-allthings-signature"].decode()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    candidates = [Candidate(f"e{i}", f"e{i}", "x", None, f"d{i}", b) for i, b in enumerate(bodies)]
    with BackgroundServer(app) as srv:
        for command in curl_commands(candidates, srv.url("/hook"), "s"):
            subprocess.run(["bash", "-c", command], capture_output=True, timeout=30, check=True)
    assert got == [(b, signature.sign(b, "s")) for b in bodies]
    # what a terminal shows of the commands holds no control character
    shown = "\n".join(curl_commands(candidates, "http://127.0.0.1:9/x", "s"))
    assert shown.replace("\n", "").isprintable()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_as_curl_with_a_body_file_runs_for_a_3_mb_payload(atwh, tmp_path, monkeypatch):
    """Issue 22, item 13: a 3 MB payload as one argument fails to run ("Argument list too
    long"); above 64 KiB the body goes into a file beside, read with --data-binary @FILE."""
    import stat

    from atwh.receiver.inbox import Inbox, NewRequest

    got: list[tuple[bytes, str]] = []

    async def app(scope, receive, send):
        body = await request_body(scope, receive, send)
        if body is None:
            return
        got.append((body, dict(scope["headers"])[b"x-allthings-signature"].decode()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    big = json.dumps({"event": {"id": "E-1", "name": "ticket.created", "x": "é" * 1_500_000}})
    db = tmp_path / "inbox.sqlite3"
    with Inbox(db) as box:
        request = NewRequest(
            1.0, "POST", "/webhook", [], big.encode(), "verified", None, "E-1",
            "ticket.created", 200, "{}",
        )  # fmt: skip
        box.add_many([request])
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    with BackgroundServer(app) as srv:
        result = atwh(
            "inbox", "replay", "--db", str(db), "--to", srv.url("/hook"), "--secret", "s",
            "--as", "curl",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        (command,) = result.stdout.strip().splitlines()
        assert len(command) < 4096
        done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert got == [(big.encode(), signature.sign(big.encode(), "s"))]
    (written,) = here.iterdir()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
