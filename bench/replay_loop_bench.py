"""The whole `atwh replay` command against a plain httpx loop doing the same job.

    python bench/replay_loop_bench.py [--events 1000] [--rounds 5] [--concurrency 1,8]

bench/fake_api.py serves a log of 2 x EVENTS deliveries (every delivery its own event,
about half of them failed: about EVENTS events still failing), and bench/floor_app.py is
the receiver (uvicorn; it checks each signature, parses the body, stores nothing, answers
200). Each round runs, in processes of their own, alternating:

  loop        python bench/replay_loop_bench.py --loop API RECEIVER: one httpx.Client pages
              the log (the query atwh sends), and for each failed delivery POSTs its payload,
              signed (atwh.signature.headers_for), to the receiver; nothing else
  atwh c1     atwh replay W --since 30d --to RECEIVER --secret S --concurrency 1 --ledger L
  atwh c8     the same with --concurrency 8

and prints the median wall and CPU time (the child's user + system) of each and their
ratio to the loop's, round by round. Goal (issue 27): atwh at most 1.2x the loop's time.
Both send the same bodies: the count of 2xx answers must agree.

Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from export_bench import HERE, WEBHOOK_ID, FakeApi, child_env

SECRET = "bench-secret"
GOAL = 1.2


def loop(api: str, receiver: str) -> None:
    """The plain loop: page the log, POST each failed delivery's payload, signed."""
    import httpx

    from atwh import signature

    query = (HERE.parent / "queries" / "QueryWebhookDeliveriesPage.graphql").read_text()
    after = None
    sent = ok = 0
    with (
        httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=30) as http,
        httpx.Client(timeout=30) as out,
    ):
        while True:
            variables = {"id": WEBHOOK_ID, "first": 100}
            if after is not None:
                variables["after"] = after
            answer = http.post(api, json={"query": query, "variables": variables})
            connection = answer.json()["data"]["webhook"]["deliveries"]
            for n in connection["nodes"]:
                if n["status"] != "FAILED":
                    continue
                body = n["event"]["payload"].encode()
                headers = signature.headers_for(body, SECRET)
                headers["content-type"] = "application/json"
                headers["x-atwh-replay-of"] = n["id"]
                sent += 1
                ok += out.post(receiver, content=body, headers=headers).status_code == 200
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
    print(json.dumps({"sent": sent, "ok": ok}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    if sys.argv[1:2] == ["--loop"]:
        loop(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()
    atwh = str(Path(sys.executable).parent / "atwh")
    work = Path(tempfile.mkdtemp(prefix="atwh-replay-loop-"))
    env = child_env(work)
    api = FakeApi(2 * args.events, env)
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(HERE / "floor_app.py"), str(port), SECRET],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/webhook"
    try:
        for _ in range(100):  # up within 10 s
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        env["ATWH_API_URL"] = api.url
        cmds = {"loop": [sys.executable, __file__, "--loop", api.url, url]}
        for c in args.concurrency.split(","):
            cmds[f"atwh c{c}"] = [
                atwh, "replay", WEBHOOK_ID, "--since", "30d", "--to", url, "--secret", SECRET,
                "--concurrency", c, "--json", "--ledger", str(work / f"ledger-c{c}.db"),
            ]  # fmt: skip
        runs: dict[str, list[tuple[float, float]]] = {v: [] for v in cmds}
        for r in range(args.rounds):
            for v, cmd in cmds.items():
                (work / f"ledger-{v[-2:]}.db").unlink(missing_ok=True)
                log = work / "stderr"
                out = work / "stdout"
                with open(out, "wb") as stdout, open(log, "wb") as stderr:
                    started = time.perf_counter()
                    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr)
                    _, status, usage = os.wait4(proc.pid, 0)
                    wall = time.perf_counter() - started
                if status != 0:
                    raise SystemExit(f"{v} failed: {log.read_text()[-800:]}")
                text = out.read_text()
                sent = json.loads(text)["sent"] if v == "loop" else len(json.loads(text))
                runs[v].append((wall, usage.ru_utime + usage.ru_stime))
                print(f"round {r + 1} {v:<8} {wall:6.2f} s  cpu {runs[v][-1][1]:5.2f} s  "
                      f"{sent} sent", file=sys.stderr, flush=True)  # fmt: skip
        base = statistics.median(w for w, _ in runs["loop"])
        base_cpu = statistics.median(c for _, c in runs["loop"])
        print(f"\n~{args.events} still-failing events of {2 * args.events} deliveries, "
              f"{args.rounds} rounds (medians)")  # fmt: skip
        print("| variant | wall s | x loop | CPU s | x loop |\n|---|---|---|---|---|")
        ok = True
        for v, rs in runs.items():
            wall = statistics.median(w for w, _ in rs)
            cpu = statistics.median(c for _, c in rs)
            print(f"| {v} | {wall:.2f} | {wall / base:.2f}x | {cpu:.2f} | {cpu / base_cpu:.2f}x |")
            if v != "loop":
                ok &= wall / base <= GOAL
        print(f"\nGoal: atwh <= {GOAL}x the loop's wall time: {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        receiver.terminate()
        receiver.wait(timeout=15)
        api.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
