"""`atwh demo`: the emulator and the receiver in-process, a realistic mix of events, then
what `atwh deliveries` and `atwh failures` show, in under 20 seconds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

LIMIT = 20.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Any]:
    """`python -m atwh demo`, run once, as a user would run it."""
    home = tmp_path_factory.mktemp("demo")
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
        COLUMNS="200",
        TMPDIR=str(home),
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "atwh", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=home,
    )
    return {
        "code": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "seconds": time.monotonic() - started,
    }


def _row(stdout: str, cause: str, event: str) -> tuple[int, int, int, int]:
    """Failures, events, recovered, still failing: one row of the failures summary."""
    pattern = rf"^{re.escape(cause)}\s+{re.escape(event)}\S*\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s"
    match = re.search(pattern, stdout, re.MULTILINE)
    assert match, f"no row for {cause} {event} in:\n{stdout}"
    failures, events, recovered, still = (int(g) for g in match.groups())
    return failures, events, recovered, still


def test_the_demo_exits_0_in_under_20_seconds(demo):
    assert demo["code"] == 0, demo["stderr"]
    assert demo["seconds"] < LIMIT, f"took {demo['seconds']:.1f}s"
    assert "Traceback" not in demo["stderr"]


def test_it_shows_the_deliveries_table_of_the_demo_webhook(demo):
    stderr, stdout = demo["stderr"], demo["stdout"]
    match = re.search(r"^\$ atwh deliveries (\S+) ", stderr, re.MULTILINE)
    assert match, stderr
    webhook_id = match.group(1)
    assert re.search(rf"^\$ atwh failures {re.escape(webhook_id)}\b.*--since", stderr, re.M)
    assert f"Webhook {webhook_id}" in stdout
    assert re.search(r"^URL\s+http://127\.0\.0\.1:\d+/webhook$", stdout, re.MULTILINE)
    header = re.search(r"^Created\s+Status\s+Code\s+Event\s.*Response", stdout, re.MULTILINE)
    assert header, stdout
    total = re.search(r"^(\d+) deliveries \((\d+) shown\)$", stdout, re.MULTILINE)
    assert total, stdout
    assert int(total.group(2)) <= int(total.group(1))
    assert int(total.group(1)) > 20  # events and their retries
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
    failed, total, still = (int(g) for g in summary.groups())
    assert 0 < failed < total

    # rejected every time for 7 days: still failing
    failures, events, recovered, still_failing = _row(
        stdout, "HTTP 400", "community-article.publish"
    )
    assert events >= 1 and recovered == 0 and still_failing == events
    assert failures >= events * 10  # a full week of retries each
    assert still == still_failing

    # a burst of 500s that the retries got through
    failures, events, recovered, still_failing = _row(stdout, "HTTP 500", "ticket.created")
    assert events >= 1 and recovered == events and still_failing == 0

    # an answer too slow to wait for, then delivered on a retry
    failures, events, recovered, still_failing = _row(stdout, "no answer", "ticket.updated")
    assert events >= 1 and recovered == events and still_failing == 0

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
    assert any("atwh failures" in c for c in commands)
    # nothing else after them: the last line belongs to the "What next" block
    assert tail[-1].startswith("  ")


def test_the_inbox_it_points_at_holds_what_the_receiver_verified(demo, atwh):
    match = re.search(r"atwh inbox --db (\S+)", demo["stderr"])
    assert match, demo["stderr"]
    db = Path(match.group(1))
    assert db.exists()
    result = atwh("inbox", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert "verified" in result.stdout
    assert "ticket.created" in result.stdout


def test_the_narration_tells_the_story(demo):
    stderr = demo["stderr"]
    for step in ("Registered webhook", "timed out", "500", "400", "retries"):
        assert step in stderr, step
