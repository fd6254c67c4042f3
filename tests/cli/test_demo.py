"""`atwh demo`: the emulator and the receiver in-process, a realistic mix of events, then
what `atwh deliveries` and `atwh failures` show. The two runs the tests read happen once,
side by side, bounded (60 s); how long the demo takes is measured by hand, not asserted here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _env(home: Path, columns: int = 200) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ATWH_", "ALLTHINGS_")) and k not in ("SHARED_WEBHOOK_SECRET", "PORT")
    }
    env.update(
        ATWH_CONFIG_DIR=str(home / "config"),
        ATWH_CACHE_DIR=str(home / "cache"),
        ATWH_DATA_DIR=str(home / "data"),
        NO_COLOR="1",
        COLUMNS=str(columns),
        TMPDIR=str(home),
    )
    return env


def _start(home: Path, *args: str, columns: int = 200) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "atwh", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home, columns),
        cwd=home,
    )


def _finish(proc: subprocess.Popen[str], home: Path, deadline: float) -> dict[str, Any]:
    try:
        stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"code": proc.returncode, "stdout": stdout, "stderr": stderr, "home": home}


@pytest.fixture(scope="session")
def demos(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """The two runs the tests read, side by side (the demo mostly waits for its time-scaled
    retries, so two at once take the time of one): `python -m atwh demo --keep` at 200
    columns, and `python -m atwh demo` at 80. Bounded: 60 s for both."""
    deadline = time.monotonic() + 60
    homes = {"keep": tmp_path_factory.mktemp("demo"), "at_80": tmp_path_factory.mktemp("demo80")}
    procs = {"keep": _start(homes["keep"], "--keep"), "at_80": _start(homes["at_80"], columns=80)}
    try:
        return {name: _finish(proc, homes[name], deadline) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def demo(demos) -> dict[str, Any]:
    """`python -m atwh demo --keep`, as a user would run it."""
    return demos["keep"]


@pytest.fixture
def demo_at_80(demos) -> dict[str, Any]:
    """`python -m atwh demo` at 80 columns, without --keep."""
    return demos["at_80"]


def _row(stdout: str, cause: str, event: str) -> tuple[int, int, int, int]:
    """Failures, events, recovered, still failing: one row of the failures summary."""
    pattern = rf"^{re.escape(cause)}\s+{re.escape(event)}\S*\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s"
    match = re.search(pattern, stdout, re.MULTILINE)
    assert match, f"no row for {cause} {event} in:\n{stdout}"
    failures, events, recovered, still = (int(g) for g in match.groups())
    return failures, events, recovered, still


def test_the_demo_exits_0(demo):
    assert demo["code"] == 0, demo["stderr"]
    assert "Traceback" not in demo["stderr"]


def test_it_shows_the_deliveries_table_of_the_demo_webhook(demo):
    stderr, stdout = demo["stderr"], demo["stdout"]
    match = re.search(r"^\$ atwh deliveries (\S+) ", stderr, re.MULTILINE)
    assert match, stderr
    webhook_id = match.group(1)
    assert re.search(rf"^\$ atwh failures {re.escape(webhook_id)}\b.*--since", stderr, re.M)
    assert f"Webhook {webhook_id}  atwh demo: ticket sync" in stdout  # nothing redacted
    assert re.search(r"^URL\s+http://127\.0\.0\.1:\d+/webhook$", stdout, re.MULTILINE)
    header = r"^Created\s+Age\s+Status\s+Code\s+Delivery\s+Event\s+Event id\s+Lag\s+Response"
    assert re.search(header, stdout, re.MULTILINE), stdout
    # the same totals every run: 14 attempts of the rejected event over its week of
    # retries, 2 delivered at once, 2 for the timeout and 2 for the 500 that recovered
    assert re.search(r"^20 deliveries \(7 shown\)$", stdout, re.MULTILINE), stdout
    # the deliveries table comes before the failures summary
    assert stdout.index("deliveries (") < stdout.index("failed attempts in")


def test_it_shows_the_failures_summary_with_the_expected_causes(demo):
    stdout = demo["stdout"]
    summary = re.search(
        r"^(\d+) failed attempts in (\d+) deliveries of 1 webhook; (\d+) events? still failing$",
        stdout,
        re.MULTILINE,
    )
    assert summary, stdout
    assert tuple(int(g) for g in summary.groups()) == (16, 20, 1)

    # rejected every time for 7 days (14 attempts), still failing
    assert _row(stdout, "HTTP 400", "community-article.publish") == (14, 1, 0, 1)

    # a 500 that the retry got through
    assert _row(stdout, "HTTP 500", "ticket-comment.created") == (1, 1, 1, 0)

    # an answer too slow to wait for, then delivered on a retry
    assert _row(stdout, "no answer", "ticket.updated") == (1, 1, 1, 0)

    assert "Failed attempts (" in stdout


def test_it_ends_with_the_commands_to_run_next(demo):
    stderr = demo["stderr"].rstrip()
    assert "What next:" in stderr
    tail = stderr[stderr.rindex("What next:") :].splitlines()[1:]
    commands = [line.strip() for line in tail if line.startswith("  ") and "atwh " in line]
    assert len(commands) >= 3
    assert any(c.startswith("atwh inbox") for c in commands)
    assert any(c.startswith("atwh emulator") for c in commands)
    assert any(c.startswith("atwh serve") for c in commands)
    assert any(c.startswith("atwh check") for c in commands)  # the endpoint the user builds
    assert any("atwh failures" in c for c in commands)
    # nothing else after them: the last line belongs to the "What next" block
    assert tail[-1].startswith("  ")
    # each line can be pasted whole into a shell: what a command is for is a `#` comment,
    # not words after it that the command would take for arguments
    for line in tail:
        assert "  " not in line.strip().split("  #")[0], line
        assert len(line) <= 80 or line.startswith("  atwh inbox --db "), line


def test_the_inbox_it_points_at_holds_what_the_receiver_verified(demo, atwh):
    match = re.search(r"atwh inbox --db (\S+)", demo["stderr"])
    assert match, demo["stderr"]
    db = Path(match.group(1))
    assert db.exists()
    assert f"Kept the demo's inbox in {db.parent}" in demo["stderr"]
    result = atwh("inbox", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert "verified" in result.stdout
    assert "ticket.created" in result.stdout


def test_the_narration_tells_the_story(demo):
    stderr = demo["stderr"]
    for step in ("Registered webhook", "timed out", "500", "400", "retries"):
        assert step in stderr, step


EVENTS = (
    "ticket-comment.created",
    "ticket.updated",
    "ticket.created",
    "community-article.published",
)


def test_at_80_columns_one_screen_shows_the_whole_story(demo_at_80):
    """A 200, the 500 and the timeout each followed by their recovery, the rejected type."""
    assert demo_at_80["code"] == 0, demo_at_80["stderr"]
    out = demo_at_80["stdout"]
    table = out[: out.index("failed attempts in")]
    # when (the age), status, code, delivery id, and the event name, shortened if need be
    rows = [
        line.split()[-4:] for line in table.splitlines() if re.search(r" (SUCCESS|FAILED) ", line)
    ]
    for r in rows:
        r[3] = {n[:18]: n for n in EVENTS}.get(r[3].rstrip("…")[:18], r[3])
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("SUCCESS", "200", "ticket-comment.created"),
        ("FAILED", "500", "ticket-comment.created"),
        ("SUCCESS", "200", "ticket.updated"),
        ("FAILED", "—", "ticket.updated"),
        ("SUCCESS", "200", "ticket.created"),
        ("SUCCESS", "200", "ticket.created"),
        ("FAILED", "400", "community-article.published"),
    ], out
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r[2]) for r in rows)  # ids whole
    assert all(re.match(r"(now|\d+s ago) ", line) for line in table.splitlines() if "ED " in line)
    assert len(table.splitlines()) <= 24
    assert all(len(line) <= 80 for line in out.splitlines())
    # the narration and the hints too: a terminal would wrap a longer line mid-word
    said = demo_at_80["stderr"].splitlines()
    assert all(len(line) <= 80 for line in said), [x for x in said if len(x) > 80]
    assert len(said) + len(out.splitlines()) <= 42  # about one screen, as the README says


def test_the_same_totals_every_run(demo, demo_at_80):
    line = r"^\d+ failed attempts in \d+ deliveries of 1 webhook; \d+ events? still failing$"
    first = re.search(line, demo["stdout"], re.MULTILINE)
    second = re.search(line, demo_at_80["stdout"], re.MULTILINE)
    assert first and second and first.group(0) == second.group(0)


def test_without_keep_it_leaves_nothing_behind(demo_at_80):
    assert list(demo_at_80["home"].glob("atwh-demo-*")) == []
    assert "atwh demo --keep" in demo_at_80["stderr"]


def test_kept_with_keep(demo):
    (kept,) = demo["home"].glob("atwh-demo-*")
    assert (kept / "inbox.sqlite3").exists()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_removes_what_it_created(tmp_path, signame):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "atwh", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the scenario is under way: its directory exists
            if "Registered webhook" in line:
                break
        assert list(tmp_path.glob("atwh-demo-*")), "the demo made no directory"
        proc.send_signal(getattr(signal, signame))
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert list(tmp_path.glob("atwh-demo-*")) == []
