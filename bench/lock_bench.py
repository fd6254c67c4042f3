"""atwh serve while its inbox is locked by another process: does the receiver freeze?

Run by hand: `python bench/lock_bench.py [--src PATH] [--lock 3] [--forwards 32]`.
`--src` runs another checkout's atwh (its `src` first on PYTHONPATH), to compare before
and after. Everything listens on 127.0.0.1 on ports the OS picks; every wait is bounded.

What it does: starts `atwh serve --forward-to` an app that answers each forward after
0.3 s, sends `--forwards` events (so that their forwards finish while the inbox is
locked), then holds the inbox's write lock (`BEGIN IMMEDIATE` from another connection)
for `--lock` seconds. Meanwhile one client asks `GET /health` every 50 ms and another
POSTs events one after the other. It prints the longest and median /health time, and
the POSTs' median and longest time and their answers. With the inbox on the event loop
(before), /health waited for every commit and forward bookkeeping stuck on the lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from atwh.server import BackgroundServer  # noqa: E402


async def slow_app(scope, receive, send):  # type: ignore[no-untyped-def]
    more = True  # (served with lifespan off: HTTP only)
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def event(eid: str) -> bytes:
    return json.dumps({"event": {"id": eid, "name": "ticket.created", "data": {}}}).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--lock", type=float, default=3.0)
    parser.add_argument("--forwards", type=int, default=32)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=args.src)
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(slow_app, lifespan="off") as target:
        db = Path(tmp) / "inbox.sqlite3"
        err = Path(tmp) / "serve.err"
        command = [sys.executable, "-m", "atwh", "serve", "--port", "0", "--db", str(db)]
        command += ["--forward-to", target.url("/hook")]
        with err.open("wb") as e:
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=e, env=env)
        try:
            deadline = time.monotonic() + 20
            while not (m := re.search(r"http://\S+/webhook", err.read_text())):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"atwh serve did not start: {err.read_text()}")
                time.sleep(0.05)
            url = m.group(0)
            health_url = url.rsplit("/", 1)[0] + "/health"
            client = httpx.Client(trust_env=False, timeout=30)
            for i in range(args.forwards):
                client.post(url, content=event(f"fwd-{i}"))
            lock = sqlite3.connect(db, isolation_level=None, timeout=10)
            lock.execute("BEGIN IMMEDIATE")
            stop = time.monotonic() + args.lock
            health: list[float] = []
            posts: list[float] = []
            codes: Counter[int] = Counter()

            def poll_health() -> None:
                with httpx.Client(trust_env=False, timeout=30) as c:
                    while time.monotonic() < stop:
                        t = time.perf_counter()
                        c.get(health_url)
                        health.append(time.perf_counter() - t)
                        time.sleep(0.05)

            def send() -> None:
                with httpx.Client(trust_env=False, timeout=30) as c:
                    i = 0
                    while time.monotonic() < stop:
                        t = time.perf_counter()
                        codes[c.post(url, content=event(f"during-{i}")).status_code] += 1
                        posts.append(time.perf_counter() - t)
                        i += 1

            threads = [threading.Thread(target=poll_health), threading.Thread(target=send)]
            for t in threads:
                t.start()
            time.sleep(args.lock)
            lock.execute("ROLLBACK")
            lock.close()
            for t in threads:
                t.join(timeout=60)
            ms = 1000
            print(
                f"{args.src}: lock {args.lock:g}s, {args.forwards} forwards\n"
                f"  GET /health: {len(health)} answered, longest {max(health) * ms:.0f} ms, "
                f"median {statistics.median(health) * ms:.1f} ms\n"
                f"  POST: {len(posts)} answered {dict(codes)}, median "
                f"{statistics.median(posts) * ms:.0f} ms, longest {max(posts) * ms:.0f} ms"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
