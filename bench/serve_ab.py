"""Two checkouts of atwh serve against each other, at the same time on the same core.

Run by hand: `python bench/serve_ab.py --b ../other-checkout [--a .] [--conns 16]
[--duration 4] [--rounds 3] [--a-python PY] [--b-python PY]`. Needs wrk and taskset, like
bench/serve_bench.py. --a-python and --b-python run a side with another interpreter (one
with atwh's dependencies installed), to compare Python builds rather than checkouts.

Requests/s measured one server after the other swing by ±15-30 % here, because the
machine's speed does, so a change of a few percent cannot be seen that way. This runs
atwh serve from checkout A and from checkout B at once, both on core 0, each loaded by
its own wrk on core 1 with the same kind of unique signed events. Both see the same
machine at the same moment and share the core, so B's requests/s over A's tells which
one costs less CPU per request: identical checkouts give 0.99-1.01 here. What it cannot
show is time a server spends waiting (the other server fills it), so the throughput goal
itself is measured by serve_bench.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serve_bench import (
    IDS,
    WARM_UP,
    at_least_1,
    atwh_serve,
    events_needed,
    free_port,
    lua_script,
    need,
    serve_log,
    signatures_file,
    threads_for,
    wait_port,
    warm_up_offset,
    wrk,
)

ROOT = Path(__file__).resolve().parents[1]


def checkout(text: str) -> Path:
    src = Path(text).resolve() / "src"
    if not (src / "atwh" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: not an atwh checkout (no src/atwh)")
    return src


def interpreter(text: str) -> str:
    """--a-python/--b-python: a Python 3.11 or newer. If it lacks a package atwh needs,
    the first round stops with atwh serve's own word on which."""
    try:
        done = subprocess.run(
            [text, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise argparse.ArgumentTypeError(f"{text!r}: cannot run it ({e})") from None
    if done.returncode != 0:
        raise argparse.ArgumentTypeError(f"{text!r}: not a Python 3.11 or newer")
    return text


def one_round(
    sides: tuple[tuple[Path, str], tuple[Path, str]],
    conns: int,
    duration: int,
    script: Path,
    work: Path,
) -> float:
    ports = free_port(), free_port()
    started = [
        atwh_serve(port, work, src, python)
        for (src, python), port in zip(sides, ports, strict=True)
    ]
    procs = [proc for proc, _ in started]
    try:
        for port, (proc, db) in zip(ports, started, strict=True):
            wait_port(port, proc, serve_log(db))
        with ThreadPoolExecutor(2) as pool:
            warm = warm_up_offset(duration, threads_for(conns))
            list(pool.map(lambda p: wrk(p, conns, WARM_UP, script, warm), ports))
            ra, rb = pool.map(lambda p: wrk(p, conns, duration, script), ports)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    bad = ra["non2xx"] + rb["non2xx"] + ra["errors"] + rb["errors"]
    ratio = rb["rps"] / ra["rps"]
    note = "  (non-2xx answers or socket errors)" if bad else ""
    print(f"  A {ra['rps']:8.0f} req/s   B {rb['rps']:8.0f} req/s   B/A {ratio:.3f}{note}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=checkout, default=str(ROOT), help="checkout A (this one)")
    parser.add_argument("--b", type=checkout, required=True, help="checkout B")
    parser.add_argument("--conns", type=at_least_1, default=16, help="connections per server")
    parser.add_argument("--duration", type=at_least_1, default=4, help="seconds per round")
    parser.add_argument("--rounds", type=at_least_1, default=3)
    parser.add_argument("--a-python", type=interpreter, default=sys.executable, help="runs A")
    parser.add_argument("--b-python", type=interpreter, default=sys.executable, help="runs B")
    parser.add_argument("--ids", choices=IDS, default="sequential", help="the events' ids")
    args = parser.parse_args()
    need("wrk", "taskset")
    with tempfile.TemporaryDirectory(prefix="atwh-serve-ab-") as tmp:
        work = Path(tmp)
        signatures = signatures_file(work, events_needed(args.duration), args.ids)
        script = lua_script(work, args.conns, signatures, args.ids)
        print(f"A: {args.a} ({os.path.abspath(args.a_python)})")
        print(f"B: {args.b} ({os.path.abspath(args.b_python)})")
        print(f"{args.conns} connections each, {args.duration} s, {args.ids} event ids")
        sides = (args.a, args.a_python), (args.b, args.b_python)
        ratios = [
            one_round(sides, args.conns, args.duration, script, work) for _ in range(args.rounds)
        ]
    print(
        f"B/A median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} rounds)"
    )


if __name__ == "__main__":
    main()
