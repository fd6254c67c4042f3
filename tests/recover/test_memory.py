"""Issue 22, item 11: the commands that read a whole inbox or a whole file of ids hold one
body (or a batch of ids) at a time. Measured here with tracemalloc (what Python allocates,
not time); bench/memory_bench.py measures the peak RSS of a 1 GiB inbox and a 282 MiB file."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atwh.receiver.inbox import Inbox, NewRequest
from tests.conftest import node

MIB = 1024 * 1024


def peak_of(run: Callable[[], Any]) -> tuple[Any, float]:
    """What `run()` returns, and the most Python memory it held at once, in MiB."""
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / MIB


def big_inbox(path: Path, count: int = 24, size: int = MIB) -> Path:
    with Inbox(path) as box:
        for i in range(count):
            body = json.dumps({"event": {"id": f"E-{i}", "name": "t", "f": "x" * size}})
            box.add_many(
                [
                    NewRequest(
                        1000.0 + i,
                        "POST",
                        "/webhook",
                        [],
                        body.encode(),
                        "verified",
                        None,
                        f"E-{i}",
                        "t",
                        200,
                        "{}",
                    )  # fmt: skip
                ]
            )
    return path


def test_memory_inbox_replay_dry_run_as_curl_and_inbox_all_hold_no_body_at_once(
    atwh, tmp_path, monkeypatch
):
    """24 bodies of 1 MiB: a dry run and a listing read none of them, --as curl one at a
    time (written beside, as it is over 64 KiB)."""
    db = big_inbox(tmp_path / "inbox.sqlite3")
    monkeypatch.chdir(tmp_path)
    to = ["--to", "http://127.0.0.1:9/x", "--secret", "s3cret"]
    for args, most in [
        (["inbox", "replay", "--db", str(db), *to, "--dry-run"], 4),
        (["inbox", "--db", str(db), "--all"], 4),
        (["inbox", "replay", "--db", str(db), *to, "--as", "curl"], 8),
    ]:
        result, peak = peak_of(lambda args=args: atwh(*args))
        assert result.exit_code == 0, result.output
        assert "E-23" in result.stdout or "--as" in args
        assert peak < most, f"{args[:2]}: {peak:.1f} MiB at once"
    assert len(list(tmp_path.glob("atwh-curl-*.body"))) == 24


def test_memory_reconcile_stored_reads_the_file_as_a_stream(atwh, fake_api, tmp_path):
    """100,000 ids (4 MiB of text): counted on disk, joined with the log, written out as
    they go; the events stored and not in the log are all in the JSON."""
    fake_api.add("wh1", [node(i) for i in range(1, 4)])
    stored = tmp_path / "ids.txt"
    with stored.open("w") as f:
        f.write("e1\ne2\ne2\n")
        f.writelines(f"{i:08d}-aaaa-bbbb-cccc-{i:012d}\n" for i in range(100_000))
    out = tmp_path / "report.json"
    args = ["reconcile", "wh1", "--stored", str(stored), "--json", "-o", str(out)]
    result, peak = peak_of(lambda: atwh(*args))
    assert result.exit_code == 1, result.output  # e3: not stored, lost
    assert peak < 12, f"{peak:.1f} MiB at once"
    report = json.loads(out.read_text())
    assert report["totals"]["unknown"] == 100_000
    assert report["totals"]["duplicated"] == 1 and report["totals"]["ok"] == 1
    assert len(report["events"]) == 100_002
