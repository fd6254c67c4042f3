"""`atwh stats` against `atwh failures --format csv` over the same history: time and memory.

    python bench/stats_bench.py [--counts 10000,100000] [--repeat 3]

For each count N it starts bench/fake_api.py (as bench/export_bench.py does: 127.0.0.1, a
port the OS picks, pages of 100 built up front, every delivery its own event, about half
of them failures) and runs, alternating, --repeat times each:

  failures csv  atwh failures WEBHOOK --since 30d --format csv -o OUT.csv   (the reference)
  stats json    atwh stats WEBHOOK --since 30d --json -o OUT.json
  stats table   atwh stats WEBHOOK --since 30d -o OUT.txt                   (with the chart)

Both fetch every page the same way, so the ratio is what the analysis costs over parsing
and writing CSV. Goals (the issue's): at 100,000 deliveries stats takes <= 1.2x the time of
the CSV export, in the same run; memory about flat from 10,000 to 100,000 (reported as the
ratio of peak RSS, the child's ru_maxrss). Stats keeps, per attempt, its lag (8 bytes in
an array) and, per event, a few numbers, so its memory is not quite flat the way a
streaming export is: the figures say by how much.

Nothing here touches the network beyond 127.0.0.1. Stdlib only (the children use httpx).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from export_bench import (
    WEBHOOK_ID,
    FakeApi,
    Runs,
    child_env,
    parse_args,
    run_measured,
    save_record,
)

TIME_GOAL = 1.2  # stats / failures csv, median wall time, at TIME_GOAL_N
TIME_GOAL_N = 100_000
VARIANTS = ("failures csv", "stats json", "stats table")


def warm(env: dict[str, str]) -> None:
    import subprocess

    modules = (
        "atwh.cli, atwh.cli.failures, atwh.cli.stats, atwh.output.show, atwh.client.api, "
        "atwh.output.export, atwh.output.stats, atwh.observe.stats, atwh.client.filters, "
        "httpx, csv, json, rich.table"
    )
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, check=True)


def bench_count(n: int, repeat: int, atwh: str, work: Path, timeout: float) -> dict[str, Runs]:
    env = child_env(work)
    warm(env)
    print(f"\n[N={n:,}] building pages…", file=sys.stderr, flush=True)
    api = FakeApi(n, env)
    env["ATWH_API_URL"] = api.url
    env["COLUMNS"] = "100"
    outs = {v: work / f"{n}-{v.replace(' ', '-')}.out" for v in VARIANTS}
    cmds = {
        "failures csv": [atwh, "failures", WEBHOOK_ID, "--since", "30d", "--format", "csv"],
        "stats json": [atwh, "stats", WEBHOOK_ID, "--since", "30d", "--json"],
        "stats table": [atwh, "stats", WEBHOOK_ID, "--since", "30d"],
    }
    runs = {v: Runs() for v in VARIANTS}
    try:
        for i in range(repeat):
            for v in VARIANTS:
                log = work / f"{n}-{v.replace(' ', '-')}.stderr"
                before = api.requests_served()
                cmd = [*cmds[v], "-o", str(outs[v])]
                seconds, cpu, rss, code = run_measured(cmd, env, log, timeout)
                served = api.requests_served() - before
                if code != 0:
                    sys.stderr.write(log.read_text(errors="replace")[-2000:])
                    raise SystemExit(f"{v} exited {code} at N={n} (command: {' '.join(cmd)})")
                r = runs[v]
                r.seconds.append(seconds)
                r.cpu.append(cpu)
                r.rss_kib.append(rss)
                r.requests.append(served)
                print(
                    f"[N={n:,}] run {i + 1}/{repeat} {v:<12} {seconds:7.2f}s  cpu {cpu:6.2f}s  "
                    f"{rss / 1024:6.1f} MB  {served} requests",
                    file=sys.stderr,
                    flush=True,
                )
        attempts = json.loads(outs["stats json"].read_text())["webhooks"][0]["attempts"]
        if attempts != n:
            raise SystemExit(f"stats counted {attempts} attempts of {n}")
    finally:
        api.close()
    return runs


def main() -> int:
    args, counts, atwh = parse_args(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="atwh-stats-bench-"))
    results: dict[int, dict[str, Runs]] = {}
    try:
        for n in counts:
            results[n] = bench_count(n, args.repeat, str(atwh), work, args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"atwh stats vs atwh failures --format csv (median of {args.repeat}; peak RSS in MiB)")
    print(f"{'N':>8}  {'variant':<12} {'median s':>9} {'x csv':>7} {'cpu s':>7} {'peak RSS':>9}")
    ok = True
    for n, runs in results.items():
        base = runs["failures csv"].median
        for v in VARIANTS:
            r = runs[v]
            print(
                f"{n:>8,}  {v:<12} {r.median:>9.2f} {r.median / base:>6.2f}x "
                f"{r.cpu_median:>7.2f} {r.peak_mb:>9.1f}"
            )
    print()
    print(f"Goal: stats <= {TIME_GOAL}x the CSV export's time at N={TIME_GOAL_N:,}")
    lo, hi = min(results), max(results)
    for v in VARIANTS[1:]:
        for n, runs in results.items():
            ratio = runs[v].median / runs["failures csv"].median
            if n == TIME_GOAL_N:
                passed = ratio <= TIME_GOAL
                ok &= passed
                print(f"  {'PASS' if passed else 'MISS'}  {v} N={n:,}: {ratio:.2f}x time")
            else:
                print(f"  info  {v} N={n:,}: {ratio:.2f}x time (no goal at this N)")
        if lo != hi:
            growth = results[hi][v].peak_mb / results[lo][v].peak_mb
            base_growth = results[hi]["failures csv"].peak_mb / results[lo]["failures csv"].peak_mb
            print(
                f"  info  {v}: peak RSS at {hi:,} / at {lo:,} = {growth:.2f}x "
                f"(+{results[hi][v].peak_mb - results[lo][v].peak_mb:.1f} MB; "
                f"the CSV export: {base_growth:.2f}x)"
            )

    save_record("stats", args.repeat, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
