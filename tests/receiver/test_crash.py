"""Nothing acknowledged is lost: `atwh serve` killed with SIGKILL, again and again, while
senders post to it; every event that got a 2xx is in the inbox, exactly once."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

SECRET = "crash-secret"
SENDERS = 8
KILLS = 5
BANNER = re.compile(r"atwh serve: POST webhooks to (http://127\.0\.0\.1:\d+/webhook)")


def start(db: Path, log: Path, deadline: float) -> tuple[subprocess.Popen[bytes], str]:
    """`atwh serve` in a process of its own; its URL, from the banner's first line."""
    command = [sys.executable, "-m", "atwh", "serve", "--port", "0", "--db", str(db)]
    command += ["--secret", SECRET, "--accept-any-event"]
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=os.environ)
    while time.monotonic() < deadline:
        first = log.read_text(errors="replace").partition("\n")
        if first[1]:
            match = BANNER.fullmatch(first[0])
            assert match, f"unexpected banner: {first[0]!r}"
            return proc, match.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"atwh serve exited with {proc.returncode}: {log.read_text()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("atwh serve did not start in time")


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(tmp_path):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    deadline = time.monotonic() + 35  # the whole test, with margin under 40 s
    db = tmp_path / "crash.sqlite3"
    current: dict[str, str | None] = {"url": None}
    stop = threading.Event()
    lock = threading.Lock()
    acked: set[str] = set()
    sent: set[str] = set()
    answers: Counter[str] = Counter()
    acked_per_round: Counter[int] = Counter()
    round_no = [0]

    def sender(n: int) -> None:
        timeout = httpx.Timeout(3.0, connect=0.5)
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            i = 0
            eid = None
            while not stop.is_set():
                url = current["url"]
                if url is None:
                    time.sleep(0.005)
                    continue
                if eid is None:  # a new event; a failed one is sent again, like Allthings does
                    eid = f"s{n}-{i}"
                    i += 1
                body = json.dumps(
                    {"event": {"id": eid, "name": "crash.test", "data": {"sender": n}}}
                ).encode()
                headers = {
                    "content-type": "application/json",
                    "x-allthings-signature": hmac.new(
                        SECRET.encode(), body, hashlib.sha256
                    ).hexdigest(),
                    "x-allthings-signature-timestamp": str(int(time.time() * 1000)),
                }
                with lock:
                    sent.add(eid)
                try:
                    response = client.post(url, content=body, headers=headers)
                except httpx.HTTPError as e:
                    with lock:
                        answers[type(e).__name__] += 1
                    time.sleep(0.005)
                    continue
                with lock:
                    answers[str(response.status_code)] += 1
                    if 200 <= response.status_code <= 299:
                        acked.add(eid)
                        acked_per_round[round_no[0]] += 1
                        eid = None

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(SENDERS)]
    for t in threads:
        t.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for k in range(KILLS):
            round_no[0] = k
            proc, url = start(db, tmp_path / f"serve-{k}.log", deadline)
            procs.append(proc)
            current["url"] = url
            time.sleep(rng.uniform(0.5, 1.5))  # the moment to kill it: somewhere in the traffic
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)
            current["url"] = None
            assert proc.returncode == -signal.SIGKILL
            assert time.monotonic() < deadline, "the crash test ran out of time"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)

    conn = sqlite3.connect(db)  # recovers the WAL the killed server left
    try:
        counts = dict(
            conn.execute(
                "SELECT event_id, count(*) FROM requests WHERE acked = 1 GROUP BY event_id"
            ).fetchall()
        )
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    lost = sorted(acked - counts.keys())
    twice = sorted(e for e, c in counts.items() if c != 1)
    stored = len(acked & counts.keys())
    print(
        f"sent {len(sent)} events, acked {len(acked)}, stored {stored} of them "
        f"({len(counts)} stored in all), lost {len(lost)}; answers {dict(answers)}; "
        f"acked per round {dict(acked_per_round)}"
    )
    assert integrity == "ok"
    assert lost == []
    assert twice == []
    assert all(acked_per_round[k] > 0 for k in range(KILLS)), dict(acked_per_round)
    assert len(acked) >= 100
    assert counts.keys() <= sent  # nothing stored that was not sent
