"""atwh replay's sending against a plain httpx loop, both to `atwh serve` on loopback.

Run by hand: `python bench/replay_bench.py [--events 1000] [--concurrency 8] [--rounds 5]`.
Everything listens on 127.0.0.1 on ports the OS picks; every request has a timeout.

`atwh serve --secret` runs in its own process (verifying every signature, committing every
event before it answers). The same N events (~400-byte JSON payloads, fresh event ids each
run, so that the receiver stores each one) are sent by:

- baseline: one `httpx.AsyncClient`, N signed bodies prepared up front, `--concurrency`
  workers each POSTing the next one; nothing recorded. The floor for httpx on asyncio.
- atwh: `atwh.recover.replay.replay()`, what `atwh replay` runs once the events are chosen:
  signing each request as it goes, the ledger (one SQLite write a request), the report.

Each run is a process of its own (a warm-up of 50 events, then N timed), so neither variant
inherits the other's imports. The two alternate, round by round; the table gives the median
wall and CPU time of each and the medians of atwh's over the baseline's, round by round.
Goal: at most 1.2x the wall time. On a loaded machine the wall time swings (the receiver
shares the cores); the CPU time of the sending process is the steadier figure.

Then, once, for information: the whole command, `atwh replay wh-history --all --to … --yes
--concurrency N`, against `atwh emulator --history` (start-up, paging the log from the API,
reading the secret, sending), with its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from atwh import signature
from atwh.recover.ledger import Ledger
from atwh.recover.replay import ReplayOptions, replay
from atwh.recover.selection import Candidate

SECRET = "bench-secret"
GOAL = 1.2
ATWH = str(Path(sys.executable).with_name("atwh"))


def start(args: list[str], pattern: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start an atwh server; its process and the URL its banner names (10 s at most)."""
    proc = subprocess.Popen(
        [ATWH, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 10
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(pattern, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise SystemExit(f"atwh {args[0]} did not start")


def events(n: int) -> list[Candidate]:
    out = []
    for i in range(n):
        event_id = str(uuid.uuid4())
        payload = {
            "event": {
                "id": event_id,
                "name": "ticket.created",
                "urn": "urn:allthings:app:bench:tickets",
                "createdDate": "2026-11-30T10:00:00.000Z",
                "data": {"id": f"T-{i}", "title": "Heating not working", "x": "." * 200},
            }
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        out.append(Candidate(event_id, event_id, "ticket.created", None, f"d{i}", body))
    return out


async def baseline(url: str, batch: list[Candidate], concurrency: int) -> int:
    prepared = [
        (c.body, {**signature.headers_for(c.body, SECRET), "x-atwh-replay-of": c.origin})
        for c in batch
    ]
    ok = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        it = iter(prepared)

        async def work() -> None:
            nonlocal ok
            for body, headers in it:
                response = await client.post(url, content=body, headers=headers)
                ok += 200 <= response.status_code <= 299

        await asyncio.gather(*(work() for _ in range(concurrency)))
    return ok


def run_baseline(url: str, n: int, concurrency: int, _ledger: Path) -> None:
    batch = events(n)
    ok = asyncio.run(baseline(url, batch, concurrency))
    assert ok == n, f"baseline: {ok} of {n} answered 2xx"


def run_atwh(url: str, n: int, concurrency: int, ledger: Path) -> None:
    batch = events(n)
    opts = ReplayOptions(target=url, secret=SECRET, concurrency=concurrency)
    with Ledger(ledger) as book:
        report = replay(batch, opts, book, "bench")
    fixed = report.count("fixed")
    assert fixed == n, f"atwh: {fixed} of {n} fixed"


VARIANTS = {"baseline": run_baseline, "atwh": run_atwh}


def child(variant: str, url: str, n: int, concurrency: int, ledger: Path) -> None:
    """One timed run, in a process of its own (so that neither variant inherits the other's
    imports or state): a warm-up of 50 events, then N; prints wall and CPU seconds."""
    VARIANTS[variant](url, 50, concurrency, ledger.with_suffix(".warm"))
    wall, cpu = time.perf_counter(), time.process_time()
    VARIANTS[variant](url, n, concurrency, ledger)
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))


def timed(variant: str, url: str, n: int, concurrency: int, ledger: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", variant, url, str(n), str(concurrency), str(ledger)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def whole_command(tmp: Path, url: str, concurrency: int, env: dict[str, str]) -> None:
    emulator, api = start(
        ["emulator", "--port", "0", "--history", "1500", "--seed", "1"],
        r"the Webhooks API at (http://\S+)",
        env,
    )
    try:
        cmd = [
            ATWH, "replay", "wh-history", "--all", "--to", url, "--secret", SECRET, "--yes",
            "--force", "--concurrency", str(concurrency), "--json",
            "--ledger", str(tmp / "whole.sqlite3"), "--api-url", api, "--token", "bench",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        took = time.perf_counter() - started
        report = json.loads(done.stdout or "[]")
        print(
            f"\nWhole command (start-up, paging the log, sending) for {len(report)} events "
            f"of `atwh emulator --history 1500`: {took:.2f} s, exit {done.returncode}"
        )
        print("  ", done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
    finally:
        emulator.terminate()
        emulator.wait(timeout=15)


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        variant, url, n, concurrency, ledger = sys.argv[2:7]
        child(variant, url, int(n), int(concurrency), Path(ledger))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atwh-replay-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(ATWH_DATA_DIR=str(tmp / "data"), NO_COLOR="1")
        serve, url = start(
            [
                "serve",
                "--port",
                "0",
                "--secret",
                SECRET,
                "--accept-any-event",
                "--db",
                str(tmp / "inbox.sqlite3"),
            ],
            r"POST webhooks to (http://\S+)",
            env,
        )
        try:
            runs: dict[str, list[dict[str, float]]] = {"baseline": [], "atwh": []}
            ratios = []
            for r in range(args.rounds):
                order = ("baseline", "atwh") if r % 2 == 0 else ("atwh", "baseline")
                for variant in order:
                    ledger = tmp / f"ledger-{variant}-{r}.sqlite3"
                    runs[variant].append(timed(variant, url, args.events, args.concurrency, ledger))
                b, a = runs["baseline"][-1], runs["atwh"][-1]
                ratios.append(a["wall"] / b["wall"])
                print(
                    f"round {r + 1}: baseline {b['wall']:.3f} s (CPU {b['cpu']:.3f}), "
                    f"atwh {a['wall']:.3f} s (CPU {a['cpu']:.3f}), {ratios[-1]:.2f}x"
                )
            ratio = statistics.median(ratios)
            print(
                f"\n{args.events} events, --concurrency {args.concurrency}, {args.rounds} rounds"
                "\n| variant | median wall s | events/s | median CPU s |\n|---|---|---|---|"
            )
            for variant, label in (("baseline", "httpx loop"), ("atwh", "atwh replay")):
                wall = statistics.median(x["wall"] for x in runs[variant])
                cpu = statistics.median(x["cpu"] for x in runs[variant])
                print(f"| {label} | {wall:.3f} | {args.events / wall:.0f} | {cpu:.3f} |")
            cpu_ratio = statistics.median(
                a["cpu"] / b["cpu"] for a, b in zip(runs["atwh"], runs["baseline"], strict=True)
            )
            print(
                f"atwh / baseline, median of the rounds: wall {ratio:.2f}x (goal ≤ {GOAL}x: "
                f"{'met' if ratio <= GOAL else 'MISSED'}), CPU {cpu_ratio:.2f}x"
            )
            whole_command(tmp, url, args.concurrency, env)
        finally:
            serve.terminate()
            serve.wait(timeout=15)
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
