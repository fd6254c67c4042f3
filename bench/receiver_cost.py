"""What atwh serve's own work costs per request, in CPU instructions, without the server.

Run by hand: `python bench/receiver_cost.py` (needs valgrind: `apt-get install -y valgrind`).

The receiver app (atwh.receiver.app.create_app, the live view writing to /dev/null, a fresh
inbox) is driven in-process with the same signed ~1 KB events that bench/serve_bench.py
sends, 32 at a time, and counted with `valgrind --tool=callgrind`: instructions are the
same from run to run whatever else the machine does, unlike wall time here (±30 %), so a
change of a few percent shows. Each variant runs with N=1000 and N=3000 events; the
difference divided by 2000 is the cost of one request, start-up excluded. The harness
itself (making the events, calling the app) is measured alone ("harness") and subtracted.

Variants: full (what atwh serve does), nolive (no live view), nostore (the inbox replaced
by a no-op), bare (neither). SHA-256 runs in software under valgrind, so the HMAC weighs
more here than on the real CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serve_bench import SECRET, event  # the same events, signed with the same secret

MODES = ("harness", "full", "nolive", "nostore", "bare")


def events(n: int) -> list[tuple[bytes, bytes]]:
    return [(body.encode(), sig.encode()) for body, sig in map(event, range(n))]


async def drive(n: int, mode: str, db: Path) -> None:
    from atwh.receiver.app import ReceiverSettings, create_app
    from atwh.receiver.inbox import Stored
    from atwh.receiver.live import LiveView

    todo = events(n)
    live = LiveView(stream=open("/dev/null", "w"))  # noqa: SIM115
    app = create_app(
        ReceiverSettings(db=db, secret=SECRET),
        on_request=live.request if mode in ("full", "nostore") else None,
    )
    await app.startup()
    assert app.checkpointer is not None and app.writer is not None
    app.checkpointer.close()  # no thread of its own: the count stays repeatable
    app.checkpointer = None
    if mode in ("nostore", "bare"):

        class NoStore:
            def add(self, request: object) -> asyncio.Future[Stored]:
                future = asyncio.get_running_loop().create_future()
                future.set_result(Stored(1, False))
                return future

            def close(self) -> None:
                pass

        app.writer.close()
        app.writer = NoStore()  # type: ignore[assignment]
    stamp = str(int(time.time() * 1000)).encode()

    async def one(body: bytes, sig: bytes) -> None:
        scope = {
            "type": "http",
            "path": "/webhook",
            "method": "POST",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                (b"x-allthings-signature", sig),
                (b"x-allthings-signature-timestamp", stamp),
            ],
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: object) -> None:
            pass

        if mode == "harness":
            await receive()
            await send({})
            await send({})
        else:
            await app(scope, receive, send)

    for i in range(0, n, 32):
        await asyncio.gather(*(one(*e) for e in todo[i : i + 32]))
    await app.shutdown()


def instructions(n: int, mode: str) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        + [sys.executable, __file__, "--run", str(n), mode],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    match = re.search(r"Collected : (\d+)", out)
    if match is None:
        raise SystemExit(f"no count from valgrind:\n{out[-2000:]}")
    return int(match.group(1))


def per_request(mode: str) -> float:
    return (instructions(3000, mode) - instructions(1000, mode)) / 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if args.run:
        n, mode = int(args.run[0]), args.run[1]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                import uvloop

                uvloop.run(drive(n, mode, Path(tmp) / "inbox.sqlite3"))
            except ImportError:
                asyncio.run(drive(n, mode, Path(tmp) / "inbox.sqlite3"))
        return
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown --modes {','.join(unknown)}; choose from {','.join(MODES)}")
    harness = per_request("harness")
    print(f"harness: {harness:,.0f} instructions a request (subtracted below)")
    print("| variant | instructions a request |\n|---|---|")
    for mode in modes:
        if mode != "harness":
            print(f"| {mode} | {per_request(mode) - harness:,.0f} |")


if __name__ == "__main__":
    main()
