"""Peak memory of the commands that read a whole inbox or a whole file of ids (issue 22,
item 11): each should stay under 200 MiB of RSS whatever the size of what it reads.

    python bench/memory_bench.py                        # a 512 MiB inbox, a 282 MiB file
    python bench/memory_bench.py --inbox-mib 1024 --stored-mib 282
    python bench/memory_bench.py --src /tmp/old/src     # the same, with another atwh's code

Builds, under bench/results/memory/ (gitignored), an inbox of verified events with bodies of
--body-kib each (under 64 KiB, so that `--as curl` puts them in the commands) and a file of
one event id a line; then runs, each in its own process, with stdout to /dev/null:

    atwh inbox replay --dry-run      (every stored request, would send)
    atwh inbox --all                 (piped: every row)
    atwh inbox replay --as curl      (a command per request)
    atwh reconcile WEBHOOK --stored FILE --json   (against bench/fake_api.py)

and prints each one's peak RSS (ru_maxrss of the child, from os.wait4) and wall time. Exit 1
when one is over --limit-mib (200). Nothing reaches the internet: the fake API listens on
127.0.0.1, and the replays never send (--dry-run, --as curl).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "memory"


def build_inbox(path: Path, mib: int, body_kib: int) -> int:
    from atwh.receiver.inbox import Inbox, NewRequest

    count = mib * 1024 // body_kib
    if path.exists():
        return count
    filler = "x" * (body_kib * 1024 - 120)
    with Inbox(path) as box:
        for start in range(0, count, 200):
            box.add_many(
                [
                    NewRequest(
                        1_700_000_000.0 + i,
                        "POST",
                        "/webhook",
                        [("content-type", "application/json")],
                        json.dumps(
                            {"event": {"id": f"E-{i}", "name": "ticket.created", "f": filler}}
                        ).encode(),
                        "verified",
                        None,
                        f"E-{i}",
                        "ticket.created",
                        200,
                        "{}",
                    )  # fmt: skip
                    for i in range(start, min(start + 200, count))
                ]
            )
    return count


def build_stored(path: Path, mib: int) -> int:
    if path.exists():
        return sum(1 for _ in path.open())
    n = 0
    with path.open("w") as f:
        while f.tell() < mib * 1024 * 1024:
            f.write("".join(f"{uuid.UUID(int=n * 1000 + k)}\n" for k in range(1000)))
            n += 1000
    return n


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Peak RSS in MiB, seconds, exit status of `atwh ARGS`."""
    started = time.monotonic()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "atwh", *args],
            stdout=devnull,
            stderr=subprocess.PIPE,
            env=env,
            cwd=OUT,
        )
        assert proc.stderr is not None
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        print(f"  exit {code}: {err.strip()[-300:]}", file=sys.stderr)
    return usage.ru_maxrss / 1024, time.monotonic() - started, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inbox-mib", type=int, default=512)
    parser.add_argument("--body-kib", type=int, default=48)
    parser.add_argument("--stored-mib", type=int, default=282)
    parser.add_argument("--limit-mib", type=int, default=200)
    parser.add_argument("--src", help="run the atwh found here (PYTHONPATH) instead")
    a = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    inbox = OUT / f"inbox-{a.inbox_mib}m-{a.body_kib}k.sqlite3"
    stored = OUT / f"stored-{a.stored_mib}m.txt"
    print(f"inbox: {build_inbox(inbox, a.inbox_mib, a.body_kib):,} requests in {inbox}")
    print(f"stored: {build_stored(stored, a.stored_mib):,} ids in {stored}")

    env = {**os.environ, "XDG_DATA_HOME": str(OUT / "data"), "ATWH_TOKEN": "bench"}
    env["PYTHONPYCACHEPREFIX"] = str(HERE / "results" / "pycache")
    if a.src:
        env["PYTHONPATH"] = a.src
    fake = subprocess.Popen(
        [sys.executable, str(HERE / "fake_api.py"), "--count", "2000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        port = fake.stdout.readline().split()[1]
        env["ATWH_API_URL"] = f"http://127.0.0.1:{port}/graphql"
        to = ["--to", "http://127.0.0.1:9/x", "--secret", "s3cret"]
        runs = {
            "inbox replay --dry-run": ["inbox", "replay", "--db", str(inbox), *to, "--dry-run"],
            "inbox --all": ["inbox", "--db", str(inbox), "--all"],
            "inbox replay --as curl": ["inbox", "replay", "--db", str(inbox), *to, "--as", "curl"],
            "reconcile --stored": [
                "reconcile",
                "wh-bench-0001",
                "--stored",
                str(stored),
                "--json",
            ],  # fmt: skip
        }
        over = False
        print(f"{'command':<26} {'peak RSS':>10} {'time':>8}")
        for name, args in runs.items():
            rss, seconds, _ = run(args, env)
            over |= rss > a.limit_mib
            print(f"{name:<26} {rss:>6.0f} MiB {seconds:>7.1f}s", flush=True)
    finally:
        fake.terminate()
        fake.wait(10)
    print(("OVER" if over else "all under") + f" {a.limit_mib} MiB")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
