"""Against a real emulator on loopback: `| head` ends every format with exit 0 and no message
(real subprocesses), and the paging stop of --since in both orders of the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from atwh.client import ApiClient, StaticToken
from atwh.emulator import Emulator, EmulatorSettings
from atwh.server import BackgroundServer

TOKEN = "pipes"
HISTORY = 2000  # over 30 days: 20 pages of 100, about 67 deliveries a day


@pytest.fixture(scope="module", params=["newest-first", "shuffled"])
def emulator(request) -> Iterator[tuple[str, str]]:
    settings = EmulatorSettings(
        token=TOKEN, history=HISTORY, seed=11, order=request.param, log=lambda line: None
    )
    with BackgroundServer(Emulator(settings)) as server:
        yield server.url("/"), request.param


def _env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATWH_", "ALLTHINGS_"))}
    env.update(ATWH_API_URL=api_url, ATWH_TOKEN=TOKEN, NO_COLOR="1")
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["deliveries", "wh-history", "--all"],
        ["deliveries", "wh-history", "--all", "--format", "table"],
        ["deliveries", "wh-history", "--json"],
        ["deliveries", "wh-history", "--format", "ndjson"],
        ["deliveries", "wh-history", "--format", "csv"],
        ["failures", "wh-history", "--all"],
        ["failures", "wh-history", "--format", "table", "--all"],
        ["failures", "wh-history", "--json"],
    ],
    ids=" ".join,
)
def test_a_closed_pipe_ends_with_exit_0_and_no_message(emulator, args):
    api_url, order = emulator
    if order != "newest-first":
        pytest.skip("the order does not matter here")
    proc = subprocess.Popen(
        [sys.executable, "-m", "atwh", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(api_url),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # as `head -1` does, then it goes away
        assert first
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, stderr
    assert "Error" not in stderr and "Traceback" not in stderr and "Exception" not in stderr


def _pages(api_url: str, since: datetime | None) -> int:
    with ApiClient(StaticToken(TOKEN), url=api_url, timeout=10) as client:
        return sum(1 for _ in client.pages("wh-history", since))


def test_since_stops_paging_only_when_the_emulator_lists_newest_first(emulator):
    api_url, order = emulator
    since = datetime.now(UTC) - timedelta(days=1)
    every = _pages(api_url, None)
    assert every == HISTORY // 100
    if order == "newest-first":
        assert _pages(api_url, since) <= 3  # a day is about 100 deliveries
    else:
        assert _pages(api_url, since) == every


def test_since_finds_the_same_deliveries_in_both_orders(emulator):
    api_url, _ = emulator
    done = subprocess.run(
        [sys.executable, "-m", "atwh", "deliveries", "wh-history", "--since", "2d", "--json"],
        capture_output=True,
        env=_env(api_url),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    cutoff = datetime.now(UTC) - timedelta(days=2, minutes=1)
    assert found and all(datetime.fromisoformat(d["createdDate"]) >= cutoff for d in found)
    # what the whole history holds in the window, read without --since
    with ApiClient(StaticToken(TOKEN), url=api_url, timeout=10) as client:
        every = list(client.deliveries("wh-history"))
    start = datetime.now(UTC) - timedelta(days=2)
    expected = {d.id for d in every if d.created and d.created >= start}
    ids = {d["id"] for d in found}
    assert ids <= {d.id for d in every}
    assert len(expected - ids) <= 2  # the window moved on by the moment between the two
