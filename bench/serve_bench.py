"""atwh serve against the vendor's reference endpoint (the Koa app), under wrk.

Run by hand: `python bench/serve_bench.py [--conns 1,16,64] [--duration 5] [--rounds 2]`.
Needs node/npm (the Koa app's packages are installed with npm into a temp dir) and wrk
and taskset (Debian: `apt-get install -y wrk util-linux`). Everything listens on
127.0.0.1 on ports the OS picks; every run is bounded by --duration.

Both servers get the same unique, signed ~1 KB events. atwh serve verifies each signature
and commits each event to its inbox before answering, live view on (sent to /dev/null);
the Koa app verifies and stores nothing. Server on core 0, wrk on core 1, the two servers
alternating (koa first in one round, last in the next), one fresh atwh inbox per run.
Goal: atwh at least matches Koa's requests/s at 16 and 64 connections, with p99 under
10 ms at 16.

Each round's runs are seconds apart, so the table gives atwh's requests/s over Koa's round
by round: the median over the rounds, with a 95 % bootstrap interval for it, and in how
many rounds atwh did at least as well. Here a server's requests/s swing by ±30 % from one
run to the next (Koa's more than atwh's), so a few rounds cannot tell 0.9x from 1.1x: the
interval says when more rounds are needed.

With --floor, a third server takes its turn: bench/floor_app.py, an ASGI app that verifies
and parses and stores nothing, on the same server and settings as atwh serve. It is the
most any app on that server could do here.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "build-a-webhook-endpoint.md"
SECRET = "bench-secret"
MAX_RATE = 40_000  # requests/s, above what any server here reaches: sizes the event file
WARM_UP = 1  # second
MAX_THREADS = 2  # wrk threads: one per connection, two at most


def threads_for(conns: int) -> int:
    return min(conns, MAX_THREADS)


def events_needed(duration: int) -> int:
    """Enough events that a run and its warm-up never send one twice."""
    return MAX_RATE * (duration + MAX_THREADS * WARM_UP)


def warm_up_offset(duration: int, threads: int) -> int:
    """Where each wrk thread's warm-up starts in its share of the events (every threads-th
    one): far enough from the end for the whole rate in one thread (wrk's threads are not
    always even), and past anything the measured run, starting at 0, reaches."""
    return events_needed(duration) // threads - MAX_RATE * WARM_UP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Until the server listens. A server that exits first ends the benchmark, with the
    last line of its stderr, when that went to the file `log` (atwh serve's does)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is None:
                time.sleep(0.05)
                continue
        command = " ".join(map(str, proc.args))  # type: ignore[arg-type]
        last = log.read_text(errors="replace").strip().splitlines()[-1:] if log else []
        said = f": {last[0]}" if last else ""
        raise SystemExit(f"{command} exited with {proc.returncode}{said}")
    proc.kill()
    raise SystemExit(f"nothing listens on {port} after 15 s")


def serve_log(db: Path) -> Path:
    """Where atwh serve's stderr goes: its banner, or why it did not start."""
    return db.with_name("stderr.txt")


def koa_dir(work: Path) -> Path:
    page = REFERENCE.read_text()
    code = re.search(r"```js\n(.*?)```", page, re.S)
    if code is None:
        raise SystemExit(f"no JavaScript in {REFERENCE}")
    d = work / "koa"
    d.mkdir()
    (d / "server.js").write_text(code.group(1))
    subprocess.run(["npm", "init", "-y"], cwd=d, check=True, capture_output=True)
    subprocess.run(
        ["npm", "install", "--silent", "koa", "koa-bodyparser", "koa-logger", "koa-router"],
        cwd=d,
        check=True,
        capture_output=True,
    )
    return d


PAD = "lorem ipsum dolor sit amet " * 24
# The event body, with its id and its number (the ticket's id); wrk's Lua script fills it
# in the same way, so only the signatures need a file.
BODY = (
    '{"event":{"id":"%s","name":"ticket.created","urn":"urn:allthings:app:bench:tickets",'
    '"createdDate":"2026-11-29T00:00:00.000Z","data":{"id":%d,"title":"Leaking tap",'
    '"description":"' + PAD + '"}}}'
)
# Allthings does not publish the form of its event ids. "sequential" ids (evt-00000001, …)
# each land at the end of the inbox's unique index; "scattered" ones, shaped like UUIDs and
# in no order, each land on a page of their own, as random ids would. Each is written here
# and, the same way, in Lua (ID_LUA): a difference would show as 401s in the run.
IDS = ("sequential", "scattered")
_M1, _M2, _M3 = 2654435761, 2246822519, 3266489917  # odd: n -> n*M mod 2^32 is one-to-one


def event_id(n: int, ids: str = "sequential") -> str:
    if ids == "sequential":
        return f"evt-{n:08d}"
    h1, h2, h3 = (n * m % 2**32 for m in (_M1, _M2, _M3))
    return f"{h1:08x}-{h2 // 65536:04x}-4{h2 % 4096:03x}-8{h3 % 4096:03x}-{h3 // 65536:04x}{h2:08x}"


ID_LUA = {
    "sequential": 'return string.format("evt-%08d", n)',
    "scattered": f"""local h1 = (n * {_M1}) % 4294967296
  local h2 = (n * {_M2}) % 4294967296
  local h3 = (n * {_M3}) % 4294967296
  return string.format("%08x-%04x-4%03x-8%03x-%04x%08x",
    h1, math.floor(h2 / 65536), h2 % 4096, h3 % 4096, math.floor(h3 / 65536), h2)""",
}


def event(i: int, ids: str = "sequential") -> tuple[str, str]:
    """The i-th unique ~1 KB event body, and its signature."""
    body = BODY % (event_id(i, ids), i)
    return body, hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()


def signatures_file(work: Path, count: int, ids: str = "sequential") -> Path:
    """The signatures of events 0 to count-1, one a line. wrk's threads read it before
    they start, and a thread can start sending before the next one has read it: with the
    ~1 KB bodies in the file too, that took seconds and inflated wrk's requests/s."""
    path = work / "signatures.txt"
    with path.open("w") as f:
        for i in range(count):
            f.write(event(i, ids)[1] + "\n")
    return path


LUA = """
local sigs = {}
local nthreads, tid_next = %(threads)d, 0
local body_format = [[%(body)s]]
function setup(thread) thread:set("tid", tid_next); tid_next = tid_next + 1 end
function event_id(n)
  %(event_id)s
end
function init(args)
  local i = 0
  for line in io.lines("%(signatures)s") do
    if i %% nthreads == tid then sigs[#sigs + 1] = line end
    i = i + 1
  end
  counter = tonumber(args[1] or "0")  -- where in this thread's events to start
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
end
function request()
  local k = counter %% #sigs  -- this thread's k-th event: event k * nthreads + tid
  counter = counter + 1
  local n = k * nthreads + tid
  wrk.headers["x-allthings-signature"] = sigs[k + 1]
  wrk.headers["x-allthings-signature-timestamp"] = string.format("%%d", os.time() * 1000)
  return wrk.format(nil, nil, nil, string.format(body_format, event_id(n), n))
end
"""


def lua_script(work: Path, conns: int, signatures: Path, ids: str = "sequential") -> Path:
    script = work / f"post-{conns}.lua"
    values = {"threads": threads_for(conns), "body": BODY, "signatures": signatures}
    script.write_text(LUA % {**values, "event_id": ID_LUA[ids]})
    return script


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"cannot read wrk's latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(port: int, conns: int, duration: int, script: Path, offset: int = 0) -> dict[str, float]:
    """wrk's figures; each of its threads starts `offset` events into its share."""
    threads = threads_for(conns)
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/webhook",
            "--",
            str(offset),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "50%" not in out:
        raise SystemExit(f"wrk gave no latency figures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": 1 if errors else 0,
    }


def atwh_serve(
    port: int, work: Path, src: Path | None = None, python: str = sys.executable
) -> tuple[subprocess.Popen[bytes], Path]:
    """`atwh serve` on core 0 with the secret and a fresh inbox; from the checkout whose
    `src` is given, else the installed atwh; run by the given Python, else this one."""
    db = Path(tempfile.mkdtemp(dir=work)) / "inbox.sqlite3"
    cmd = ["taskset", "-c", "0", python, "-m", "atwh", "serve"]
    cmd += ["--port", str(port), "--db", str(db), "--secret", SECRET]
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    with serve_log(db).open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return proc, db


def start(
    kind: str, port: int, work: Path, koa: Path
) -> tuple[subprocess.Popen[bytes], Path | None]:
    devnull = open(os.devnull, "wb")  # noqa: SIM115
    db = None
    if kind == "koa":
        cmd = ["taskset", "-c", "0", "node", "server.js"]
        proc = subprocess.Popen(
            cmd, cwd=koa, env={**os.environ, "PORT": str(port)}, stdout=devnull, stderr=devnull
        )
    elif kind == "floor":
        floor = Path(__file__).with_name("floor_app.py")
        cmd = ["taskset", "-c", "0", sys.executable, str(floor), str(port), SECRET]
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=devnull)
    else:
        proc, db = atwh_serve(port, work)
    wait_port(port, proc, serve_log(db) if db else None)
    return proc, db


def versions() -> str:
    """What ran the servers: the same code runs several percent faster on some Python
    builds than on others (see bench/README.md), so the figures name theirs."""
    from importlib.metadata import version

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"python {sys.version.split()[0]} ({sys.executable}), uvicorn {version('uvicorn')}, "
        f"uvloop {version('uvloop')}, httptools {version('httptools')}, node {node}"
    )


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (see the docstring)")


def at_least_1(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, at least 1")
    return int(text)


def connections(text: str) -> list[int]:
    """--conns: a comma-separated list of connection counts, each at least 1."""
    try:
        counts = [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give counts such as 1,16,64") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every count must be at least 1")
    return counts


def bootstrap_median(values: list[float], resamples: int = 4000) -> tuple[float, float]:
    """A 95 % interval for the median of values (percentile bootstrap, fixed seed)."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def summary(
    results: dict[tuple[str, int], list[dict[str, float]]], conns: list[int], kinds: tuple[str, ...]
) -> str:
    """The table: each server's medians, and its requests/s over Koa's in the same round
    (the two runs seconds apart), as the median over the rounds with a 95 % interval."""
    lines = [
        "\n| conns | server | req/s | p50 ms | p99 ms | req/s / koa's: median of rounds "
        "[95 % interval] | rounds at or above koa |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in conns:
        koa = [r["rps"] for r in results[("koa", c)]]
        for kind in kinds:
            runs = results[(kind, c)]
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            paired, above = "", ""
            if kind != "koa":
                ratios = [r["rps"] / k for r, k in zip(runs, koa, strict=True)]
                low, high = bootstrap_median(ratios)
                paired = f"{statistics.median(ratios):.2f}x [{low:.2f}-{high:.2f}]"
                above = f"{sum(x >= 1 for x in ratios)}/{len(ratios)}"
            row = f"| {c} | {kind} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {paired} | {above} |"
            lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=connections, default="1,16,64")
    parser.add_argument("--duration", type=at_least_1, default=5, help="seconds a run")
    parser.add_argument("--rounds", type=at_least_1, default=2)
    parser.add_argument("--floor", action="store_true", help="also run bench/floor_app.py")
    parser.add_argument("--ids", choices=IDS, default="sequential", help="the events' ids")
    args = parser.parse_args()
    kinds = ("koa", "atwh", "floor") if args.floor else ("koa", "atwh")
    need("wrk", "taskset", "node", "npm")
    ran_with = f"{versions()}; {args.ids} event ids"  # before the runs: it cannot fail after
    work = Path(tempfile.mkdtemp(prefix="atwh-serve-bench-"))
    try:
        print("installing koa with npm, writing events …", file=sys.stderr)
        koa = koa_dir(work)
        signatures = signatures_file(work, events_needed(args.duration), args.ids)
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for conns in args.conns:
            script = lua_script(work, conns, signatures, args.ids)
            warm = warm_up_offset(args.duration, threads_for(conns))
            for round_ in range(args.rounds):
                # koa, atwh, floor, then floor, atwh, koa: a drift of the machine's speed
                # within a pair of rounds favours neither server
                for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
                    port = free_port()
                    proc, db = start(kind, port, work, koa)
                    try:
                        wrk(port, conns, WARM_UP, script, warm)
                        r = wrk(port, conns, args.duration, script)
                    finally:
                        proc.send_signal(signal.SIGINT)
                        proc.wait(timeout=30)
                    if db is not None:
                        with sqlite3.connect(db) as c:
                            r["stored"], r["duplicates"] = c.execute(
                                "SELECT count(*), coalesce(sum(duplicates), 0) FROM requests"
                                " WHERE acked = 1"
                            ).fetchone()
                    results.setdefault((kind, conns), []).append(r)
                    inbox = f"  stored {r['stored']}, twice {r['duplicates']}" if db else ""
                    print(
                        f"  {kind:5s} c={conns:<3d} {r['rps']:8.0f} req/s  p50 {r['p50']:.2f} ms"
                        f"  p99 {r['p99']:.2f} ms{inbox}",
                        file=sys.stderr,
                    )
        print(f"\n{ran_with}")
        print(summary(results, args.conns, kinds))
        bad = [r for rs in results.values() for r in rs if r["non2xx"] or r["errors"]]
        print(f"\nruns with non-2xx answers or socket errors: {len(bad)}")
        atwh = [r for (kind, _), rs in results.items() if kind == "atwh" for r in rs]
        print(f"atwh rows stored per run (warm-up included): {[r['stored'] for r in atwh]}")
        twice = sum(r["duplicates"] for r in atwh)
        print(f"events atwh got twice (should be 0, every event sent is unique): {twice}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
