"""Export throughput and memory: `atwh failures` against a plain httpx + csv script.

    python bench/export_bench.py [--counts 10000,100000] [--repeat 3]

For each count N it starts bench/fake_api.py (a local GraphQL stand-in on 127.0.0.1, port
picked by the OS, pages of 100 built up front, about half of them failures) and runs,
alternating, --repeat times each:

  baseline     python bench/baseline_export.py URL WEBHOOK OUT.csv   (httpx + csv, the floor)
  atwh csv     atwh failures WEBHOOK --since 30d --format csv -o OUT.csv
  atwh ndjson  atwh failures WEBHOOK --since 30d --format ndjson -o OUT.ndjson

and prints the median wall time, its ratio to the baseline's (of the medians, and
"paired": the median of each round's ratio), and each variant's peak RSS (the child's
ru_maxrss, from os.wait4). With --instructions, each variant also runs once under
valgrind's callgrind, whose instruction counts do not move with the machine's load.
Goals (the issue's): at 100,000 deliveries atwh takes <= 1.0x the baseline's time
(1.3x with --mixed, where the baseline filters too); peak RSS < 100 MB, and about the
same at 10k as at 100k (it streams page by page). Smaller N are timed too, for
information: there the fixed cost of starting (Python, Typer and httpx imports) weighs
more.

Nothing here touches the network beyond 127.0.0.1. Stdlib only (the children use httpx).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WEBHOOK_ID = "wh-bench-0001"
TIME_GOAL = 1.0  # atwh / baseline, median wall time: every delivery failed, 10 columns
MIXED_TIME_GOAL = 1.3  # with --mixed: half failed, the baseline filters as atwh does
TABLE_N = 20_000  # `atwh deliveries W` as a table: the newest 50 of this many
TABLE_GOAL = 1.0  # seconds, median wall time
TIME_GOAL_N = 100_000  # the issue sets the time goal for this many deliveries
RSS_GOAL_MB = 100.0
RSS_FLAT_GOAL = 1.2  # peak RSS at the largest N / at the smallest N
VARIANTS = ("baseline", "atwh csv", "atwh ndjson")


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the child
    rss_kib: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    instructions: int | None = None  # with --instructions: one run under callgrind

    def paired(self, base: Runs) -> float:
        """The median over rounds of this run's wall time / the baseline's in that round:
        steadier than a ratio of medians where the machine's speed drifts between rounds."""
        return statistics.median(a / b for a, b in zip(self.seconds, base.seconds, strict=True))

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def peak_mb(self) -> float:
        return max(self.rss_kib) / 1024


class FakeApi:
    """bench/fake_api.py in its own process, for one count of deliveries."""

    def __init__(
        self,
        count: int,
        env: dict[str, str],
        startup_timeout: float = 300,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_api.py"), "--count", str(count), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], startup_timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.close()
            raise SystemExit(f"fake API did not start (got {line!r})")
        parts = line.split()
        self.port = int(parts[1])
        self.pages = int(parts[3])
        self.bytes = int(parts[5])
        self.url = f"http://127.0.0.1:{self.port}/"

    def requests_served(self) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stats")
            return int(json.loads(conn.getresponse().read())["requests"])
        finally:
            conn.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # this process only, by its own handle
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_measured(
    cmd: list[str], env: dict[str, str], log: Path, timeout: float
) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (KiB) and exit code of one
    child, killed after `timeout`."""
    with open(log, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode


def count_rows(path: Path, fmt: str) -> int:
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "csv":
            return sum(1 for _ in csv.reader(f)) - 1
        return sum(1 for line in f if line.strip())


def child_env(base_dir: Path) -> dict[str, str]:
    """The environment without proxies, user config or debug switches, and with bytecode
    cached (as an installed atwh has it) under results/pycache, leaving src/ untouched."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().endswith("_PROXY") and not k.startswith(("ATWH_", "ALLTHINGS_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["ATWH_CONFIG"] = str(base_dir / "no-config.toml")
    env["ATWH_CACHE_DIR"] = str(base_dir / "cache")
    env["ATWH_TOKEN"] = "bench"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / "pycache")
    return env


def warm_bytecode(env: dict[str, str]) -> None:
    """Compile what the children import once, so no timed run pays for it."""
    modules = (
        "atwh.cli, atwh.cli.failures, atwh.output.show, atwh.client.api, atwh.output.export, "
        "atwh.client.filters, atwh.client.failures, atwh.client.operations, atwh.client.wire, "
        "httpx, gql, csv, json"
    )
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, check=True)


def count_instructions(cmd: list[str], env: dict[str, str], timeout: float) -> int:
    """The instructions one run executes (valgrind's callgrind): the same count whatever
    else the machine is doing, unlike its time."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout * 100,
    )
    found = [line for line in done.stderr.splitlines() if "Collected :" in line]
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind run failed ({done.returncode}): {' '.join(cmd)}")
    return int(found[-1].rsplit(":", 1)[1].strip())


def bench_count(
    n: int,
    repeat: int,
    atwh: str,
    work: Path,
    timeout: float,
    keep: bool,
    mixed: bool,
    instructions: bool = False,
    dates: str = "z",
) -> dict[str, Runs]:
    env = child_env(work)
    warm_bytecode(env)
    print(f"\n[N={n:,}] building pages…", file=sys.stderr, flush=True)
    api = FakeApi(n, env, extra=(*(() if mixed else ("--failed-only",)), "--dates", dates))
    env["ATWH_API_URL"] = api.url
    print(
        f"[N={n:,}] fake API on {api.url}: {api.pages} pages, {api.bytes / 1e6:.1f} MB of JSON",
        file=sys.stderr,
        flush=True,
    )
    out = {
        v: work / f"{n}-{v.replace(' ', '-')}.{'ndjson' if 'ndjson' in v else 'csv'}"
        for v in VARIANTS
    }
    cmds = {
        "baseline": [
            sys.executable,
            str(HERE / "baseline_export.py"),
            api.url,
            WEBHOOK_ID,
            str(out["baseline"]),
            *(() if mixed else ("--plain",)),
        ],
        **{
            f"atwh {fmt}": [atwh, "failures", WEBHOOK_ID, "--since", "30d"]
            + ["--format", fmt, "-o", str(out[f"atwh {fmt}"])]
            for fmt in ("csv", "ndjson")
        },
    }
    runs = {v: Runs() for v in VARIANTS}
    try:
        for i in range(repeat):
            for v in VARIANTS:
                log = work / f"{n}-{v.replace(' ', '-')}.stderr"
                before = api.requests_served()
                seconds, cpu, rss, code = run_measured(cmds[v], env, log, timeout)
                served = api.requests_served() - before
                if code != 0:
                    sys.stderr.write(log.read_text(errors="replace")[-2000:])
                    raise SystemExit(f"{v} exited {code} at N={n} (command: {' '.join(cmds[v])})")
                rows = count_rows(out[v], "ndjson" if "ndjson" in v else "csv")
                r = runs[v]
                r.seconds.append(seconds)
                r.cpu.append(cpu)
                r.rss_kib.append(rss)
                r.rows.append(rows)
                r.requests.append(served)
                print(
                    f"[N={n:,}] run {i + 1}/{repeat} {v:<12} {seconds:7.2f}s  cpu {cpu:6.2f}s  "
                    f"{rss / 1024:6.1f} MB  {rows:,} rows  {served} requests",
                    file=sys.stderr,
                    flush=True,
                )
        if instructions:
            for v in VARIANTS:
                print(f"[N={n:,}] {v} under callgrind…", file=sys.stderr, flush=True)
                runs[v].instructions = count_instructions(cmds[v], env, timeout)
        same = out["baseline"].read_bytes() == out["atwh csv"].read_bytes()
        print(f"[N={n:,}] atwh csv byte-identical to the baseline's: {same}", file=sys.stderr)
        if keep:
            print(f"[N={n:,}] outputs kept in {work}", file=sys.stderr)
    finally:
        api.close()
    return runs


def bench_table(repeat: int) -> int:
    """`atwh deliveries W` (TSV, piped) and `--format table` on TABLE_N deliveries listed
    newest first, against `atwh --version` (the start-up floor) in the same run."""
    work = Path(tempfile.mkdtemp(prefix="atwh-bench-"))
    atwh = str(Path(sys.executable).parent / "atwh")
    env = child_env(work)
    env["COLUMNS"] = "120"
    warm_bytecode(env)
    api = FakeApi(TABLE_N, env, extra=("--newest-first",))
    env["ATWH_API_URL"] = api.url
    cmds = {
        "atwh --version": [atwh, "--version"],
        "deliveries (tsv)": [atwh, "deliveries", WEBHOOK_ID],
        "deliveries (table)": [atwh, "deliveries", WEBHOOK_ID, "--format", "table"],
        "deliveries --all": [atwh, "deliveries", WEBHOOK_ID, "--all"],
    }
    runs = {v: Runs() for v in cmds}
    try:
        for _ in range(repeat):
            for v, cmd in cmds.items():
                before = api.requests_served()
                seconds, cpu, rss, code = run_measured(cmd, env, work / "table.stderr", 300)
                if code != 0:
                    raise SystemExit(f"{v} exited {code}")
                runs[v].seconds.append(seconds)
                runs[v].cpu.append(cpu)
                runs[v].rss_kib.append(rss)
                runs[v].requests.append(api.requests_served() - before)
    finally:
        api.close()
        shutil.rmtree(work, ignore_errors=True)
    floor = runs["atwh --version"].median
    print(f"\n`atwh deliveries` on {TABLE_N:,} deliveries, newest first (median of {repeat})")
    print(f"{'variant':<20} {'median s':>9} {'x start-up':>11} {'peak RSS MB':>12} {'requests':>9}")
    for v, r in runs.items():
        print(
            f"{v:<20} {r.median:>9.2f} {r.median / floor:>10.2f}x {r.peak_mb:>12.1f} "
            f"{r.requests[-1]:>9}"
        )
    ok = all(runs[v].median < TABLE_GOAL for v in ("deliveries (tsv)", "deliveries (table)"))
    print(f"\n  {'PASS' if ok else 'MISS'}  the newest 50 as a table in < {TABLE_GOAL:g} s")
    return 0 if ok else 1


def save_record(kind: str, repeat: int, results: dict[int, dict[str, Runs]]) -> Path:
    """Every run's figures, as JSON under bench/results/ (also used by stats_bench.py)."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {
        "python": sys.version.split()[0],
        "repeat": repeat,
        "results": {
            str(n): {
                v: vars(r) | {"median": r.median, "cpu_median": r.cpu_median, "peak_mb": r.peak_mb}
                for v, r in runs.items()
            }
            for n, runs in results.items()
        },
    }
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nraw figures: {path.relative_to(HERE.parent)}")
    return path


def parse_args(
    description: str, export: bool = False
) -> tuple[argparse.Namespace, list[int], Path]:
    """The options both benches take; the counts; the atwh beside this Python."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--counts",
        default="10000,100000",
        help="deliveries served, comma-separated (default: 10000,100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (default 3)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    parser.add_argument("--keep", action="store_true", help="keep the output files")
    if export:  # this bench's own options, not stats_bench.py's
        parser.add_argument(
            "--mixed",
            action="store_true",
            help="half the deliveries fail, and the baseline filters them with atwh's rule and "
            f"columns (goal {MIXED_TIME_GOAL}x); default: every delivery failed, the baseline "
            f"writes 10 columns unfiltered (goal {TIME_GOAL}x)",
        )
        parser.add_argument(
            "--dates",
            choices=("z", "offset", "micro", "epoch"),
            default="z",
            help="the form of the served dates (fake_api.py --dates): z (`.000Z`, the "
            "default), offset (`.000+00:00`), micro (`.123456+00:00`), epoch (milliseconds)",
        )
        parser.add_argument(
            "--instructions",
            action="store_true",
            help="also run each variant once under valgrind's callgrind and compare the "
            "instructions executed (steady where times are not; each run takes ~50x longer)",
        )
        parser.add_argument(
            "--table",
            action="store_true",
            help=f"instead: `atwh deliveries` as a table on {TABLE_N:,} deliveries, newest first",
        )
    args = parser.parse_args()
    counts = [int(c.replace("_", "")) for c in args.counts.split(",") if c.strip()]
    if args.repeat < 1 or not counts or min(counts) < 1:
        parser.error("--repeat and every count must be at least 1")

    atwh = Path(sys.executable).parent / "atwh"
    if not atwh.exists():
        raise SystemExit(f"no atwh beside {sys.executable}: activate the dev venv first")
    return args, counts, atwh


def main() -> int:
    args, counts, atwh = parse_args(__doc__.splitlines()[0], export=True)
    if args.table:
        return bench_table(args.repeat)

    work = Path(tempfile.mkdtemp(prefix="atwh-bench-"))
    results: dict[int, dict[str, Runs]] = {}
    try:
        for n in counts:
            results[n] = bench_count(
                n,
                args.repeat,
                str(atwh),
                work,
                args.timeout,
                args.keep,
                args.mixed,
                args.instructions,
                args.dates,
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"atwh failures export vs httpx+csv baseline, dates in form {args.dates!r} "
        f"(median of {args.repeat}; "
        f"cpu = user+sys of the child; peak RSS = max over runs, MiB)"
    )
    print(
        f"{'N':>8}  {'variant':<12} {'median s':>9} {'x base':>7} {'paired':>7} {'cpu s':>7} "
        f"{'x base':>7} {'peak RSS MB':>12} {'rows':>8} {'requests':>8} {'instructions':>16}"
    )
    ok = True
    goal = MIXED_TIME_GOAL if args.mixed else TIME_GOAL
    for n, runs in results.items():
        base = runs["baseline"].median
        base_cpu = runs["baseline"].cpu_median
        for v in VARIANTS:
            r = runs[v]
            instr = ""
            if r.instructions is not None and runs["baseline"].instructions:
                ratio = r.instructions / runs["baseline"].instructions
                instr = f"{r.instructions / 1e9:>8.2f} G {ratio:>5.3f}x"
            print(
                f"{n:>8,}  {v:<12} {r.median:>9.2f} {r.median / base:>6.2f}x "
                f"{r.paired(runs['baseline']):>6.2f}x "
                f"{r.cpu_median:>7.2f} {r.cpu_median / base_cpu:>6.2f}x "
                f"{r.peak_mb:>12.1f} {r.rows[-1]:>8,} {r.requests[-1]:>8} {instr:>16}"
            )
        if len(set(runs["baseline"].rows + runs["atwh csv"].rows)) != 1:
            ok = False
            print(
                f"  ROW COUNT MISMATCH at N={n}: baseline {runs['baseline'].rows}, "
                f"atwh csv {runs['atwh csv'].rows}"
            )

    print()
    print(
        f"Goals: atwh <= {goal}x baseline time at N={TIME_GOAL_N:,}; peak RSS < "
        f"{RSS_GOAL_MB:.0f} MB, about the same at every N (largest/smallest <= {RSS_FLAT_GOAL}x)"
    )
    lo, hi = min(results), max(results)
    for v in VARIANTS[1:]:
        for n, runs in results.items():
            ratio = runs[v].median / runs["baseline"].median
            if n != TIME_GOAL_N:
                print(f"  info  {v} N={n:,}: {ratio:.2f}x time (no goal at this N)")
                continue
            passed = ratio <= goal
            ok &= passed
            print(f"  {'PASS' if passed else 'MISS'}  {v} N={n:,}: {ratio:.2f}x time")
        worst = max(results[n][v].peak_mb for n in results)
        passed = worst < RSS_GOAL_MB
        ok &= passed
        print(f"  {'PASS' if passed else 'MISS'}  {v}: peak RSS {worst:.1f} MB")
        if lo != hi:
            growth = results[hi][v].peak_mb / results[lo][v].peak_mb
            passed = growth <= RSS_FLAT_GOAL
            ok &= passed
            print(
                f"  {'PASS' if passed else 'MISS'}  {v}: RSS at {hi:,} / at {lo:,} = {growth:.2f}x"
            )

    save_record("export", args.repeat, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
