"""Every reading command against the export over the same history: time and memory.

    python bench/scale_bench.py [--counts 100000,300000] [--repeat 3] [--only failures,stats]

For each count N it starts bench/fake_api.py (127.0.0.1, a port the OS picks, pages of 100
built up front, every delivery its own event, about half of them failed, in no order) and
runs, alternating, --repeat times each:

  floor          python bench/baseline_export.py URL W - --floor  (pages downloaded with
                 httpx and decoded with orjson, nothing else: the least any command does)
  export         atwh deliveries W --all --format csv -o OUT.csv  (the reference)
  failures       atwh failures W --since 30d                      (piped: 50 rows, TSV)
  replay         atwh replay W --since 30d --dry-run              (every still-failing event)
  reconcile      atwh reconcile W --stored IDS --since 30d        (IDS: every other event id)
  stats          atwh stats W --since 30d
  deliveries     atwh deliveries W                                (the newest 50, piped)
  deliveries nf  the same against a second fake API that lists newest first (--newest-first)

and prints the median wall and CPU time of each, their ratios to the export's (medians of
the same run), and the peak RSS (the child's ru_maxrss; Linux keeps a process's peak
across fork and exec, so no figure can be below this process's own, about 20 MB).
Goals (issue 27): every reading command <= 1.3x the export's time; failures, replay,
reconcile and stats peak under 150 MB at 300,000 attempts and under 250 MB at 1,000,000;
`deliveries W` under 60 MB at 1,000,000, newest first or not. It exits 1 when a goal set
for the N measured is missed.

Nothing here touches the network beyond 127.0.0.1. Stdlib only (the children use httpx).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from export_bench import (
    HERE,
    WEBHOOK_ID,
    FakeApi,
    Runs,
    child_env,
    run_measured,
    save_record,
)

TIME_GOAL = 1.3  # x the export's median wall time, same run
DECIDING = ("failures", "replay", "reconcile", "stats")
MEMORY_GOALS = {300_000: 150.0, 1_000_000: 250.0}  # MB, the deciding commands, by N
LISTING_GOAL = (1_000_000, 60.0)  # `deliveries W`: MB at this N
VARIANTS = (
    "floor",
    "export",
    "failures",
    "replay",
    "reconcile",
    "stats",
    "deliveries",
    "deliveries nf",
)


def warm(env: dict[str, str]) -> None:
    import subprocess

    modules = (
        "atwh.cli, atwh.cli.failures, atwh.cli.stats, atwh.cli.replay, atwh.cli.reconcile, "
        "atwh.cli.deliveries, atwh.cli.context, atwh.output.show, atwh.client.api, "
        "atwh.client.wire, "
        "atwh.output.export, atwh.output.stats, atwh.output.tables, atwh.output.recover, "
        "atwh.observe.stats, atwh.recover.selection, atwh.recover.reconcile, "
        "atwh.recover.replay, atwh.client.failures, httpx, csv, rich.table"
    )
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, check=True)


def commands(
    n: int, atwh: str, url: str, nf_url: str | None, work: Path
) -> dict[str, tuple[list[str], str]]:
    """Each variant's command, and the API it talks to."""
    ids = work / f"{n}-stored.txt"
    if not ids.exists():  # the fake API's event ids are e00000000, e00000001, …
        # line by line: a child's peak RSS (ru_maxrss) starts at this process's own, kept
        # across the fork and exec, so this process stays small
        with open(ids, "w") as f:
            for i in range(0, n, 2):
                f.write(f"e{i:08d}\n")
    out = work / f"{n}-export.csv"
    w = WEBHOOK_ID
    cmds: dict[str, tuple[list[str], str]] = {
        "floor": ([sys.executable, str(HERE / "baseline_export.py"), url, w, "-", "--floor"], url),
        "export": ([atwh, "deliveries", w, "--all", "--format", "csv", "-o", str(out)], url),
        "failures": ([atwh, "failures", w, "--since", "30d"], url),
        "replay": (
            [atwh, "replay", w, "--since", "30d", "--dry-run", "--ledger", str(work / "l.db")],
            url,
        ),
        "reconcile": ([atwh, "reconcile", w, "--stored", str(ids), "--since", "30d"], url),
        "stats": ([atwh, "stats", w, "--since", "30d"], url),
        "deliveries": ([atwh, "deliveries", w], url),
    }
    if nf_url is not None:
        cmds["deliveries nf"] = ([atwh, "deliveries", w], nf_url)
    return cmds


def bench_count(
    n: int, repeat: int, atwh: str, work: Path, timeout: float, only: list[str]
) -> dict[str, Runs]:
    env = child_env(work)
    env["COLUMNS"] = "120"
    warm(env)
    print(f"\n[N={n:,}] building pages…", file=sys.stderr, flush=True)
    apis = [FakeApi(n, env, startup_timeout=1800)]
    try:
        nf_url = None
        if "deliveries nf" in only:
            apis.append(FakeApi(n, env, startup_timeout=1800, extra=("--newest-first",)))
            nf_url = apis[1].url
        cmds = commands(n, atwh, apis[0].url, nf_url, work)
        runs = {v: Runs() for v in only}
        for i in range(repeat):
            for v in only:
                cmd, url = cmds[v]
                env["ATWH_API_URL"] = url
                log = work / f"{n}-{v.replace(' ', '-')}.stderr"
                seconds, cpu, rss, code = run_measured(cmd, env, log, timeout)
                # reconcile exits 1 when events were not delivered, as half of them are
                if code not in ((0, 1) if v in ("reconcile", "failures") else (0,)):
                    sys.stderr.write(log.read_text(errors="replace")[-2000:])
                    raise SystemExit(f"{v} exited {code} at N={n} (command: {' '.join(cmd)})")
                r = runs[v]
                r.seconds.append(seconds)
                r.cpu.append(cpu)
                r.rss_kib.append(rss)
                print(
                    f"[N={n:,}] run {i + 1}/{repeat} {v:<13} {seconds:7.2f}s  cpu {cpu:6.2f}s  "
                    f"{rss / 1024:7.1f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for api in apis:
            api.close()
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100000,300000", help="attempts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (default 3)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a kill")
    parser.add_argument(
        "--only", default=",".join(VARIANTS), help="variants to run, comma-separated (export kept)"
    )
    args = parser.parse_args()
    counts = [int(c.replace("_", "")) for c in args.counts.split(",") if c.strip()]
    only = [v.strip() for v in args.only.split(",") if v.strip()]
    unknown = set(only) - set(VARIANTS)
    if unknown or args.repeat < 1 or not counts:
        parser.error(f"unknown variants {sorted(unknown)}" if unknown else "nothing to run")
    if "export" not in only:
        only.insert(0, "export")
    only = [v for v in VARIANTS if v in only]
    atwh = Path(sys.executable).parent / "atwh"
    if not atwh.exists():
        raise SystemExit(f"no atwh beside {sys.executable}: activate the dev venv first")

    work = Path(tempfile.mkdtemp(prefix="atwh-scale-bench-"))
    results: dict[int, dict[str, Runs]] = {}
    try:
        for n in counts:
            results[n] = bench_count(n, args.repeat, str(atwh), work, args.timeout, only)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"Every reading command vs `deliveries --all --format csv` (median of {args.repeat})")
    print(
        f"{'N':>9}  {'variant':<13} {'median s':>9} {'x export':>9} {'cpu s':>7} "
        f"{'x export':>9} {'peak RSS MB':>12}"
    )
    for n, runs in results.items():
        base, base_cpu = runs["export"].median, runs["export"].cpu_median
        for v, r in runs.items():
            print(
                f"{n:>9,}  {v:<13} {r.median:>9.2f} {r.median / base:>8.2f}x "
                f"{r.cpu_median:>7.2f} {r.cpu_median / base_cpu:>8.2f}x {r.peak_mb:>12.1f}"
            )
    print()
    ok = True
    for n, runs in results.items():
        base = runs["export"].median
        for v, r in runs.items():
            if v in ("floor", "export"):
                continue
            ratio = r.median / base
            passed = ratio <= TIME_GOAL
            ok &= passed
            print(f"  {'PASS' if passed else 'MISS'}  {v} N={n:,}: {ratio:.2f}x the export's time")
            limit = MEMORY_GOALS.get(n) if v in DECIDING else None
            if v.startswith("deliveries") and n == LISTING_GOAL[0]:
                limit = LISTING_GOAL[1]
            if limit is not None:
                passed = r.peak_mb < limit
                ok &= passed
                print(
                    f"  {'PASS' if passed else 'MISS'}  {v} N={n:,}: peak RSS "
                    f"{r.peak_mb:.1f} MB (goal < {limit:g} MB)"
                )
    save_record("scale", args.repeat, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
