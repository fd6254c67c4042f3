"""`replay`, `reconcile` and `stats` stop paging at --since as `deliveries` does, while the
log comes newest first, and read it whole when it does not."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from tests.cli.test_listings import newest_first, since_119_minutes

MINUTE = timedelta(minutes=1)


def log(shuffled: bool = False) -> list[dict]:
    nodes = newest_first(1000, step=MINUTE)  # pages of 100, ~16 hours
    if shuffled:
        random.Random(7).shuffle(nodes)
    return nodes


def replay_dry_run(atwh, *args: str) -> list[dict]:
    result = atwh("replay", "w1", "--since", since_119_minutes(), "--dry-run", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_replay_with_since_reads_only_the_pages_it_needs(atwh, fake_api):
    fake_api.add("w1", log())
    assert len(replay_dry_run(atwh, "--all")) == 119
    # 1-100 and 101-200 minutes ago hold events of the window, 201-300 is wholly older
    assert len(fake_api.requests) == 3


def test_replay_reads_a_shuffled_log_whole(atwh, fake_api):
    fake_api.add("w1", log(shuffled=True))
    assert len(replay_dry_run(atwh, "--all")) == 119
    assert len(fake_api.requests) == 10


def test_replay_all_failed_reads_back_the_retry_horizon(atwh, fake_api):
    # an event of the window may have failed days before it: 7 days more are read
    fake_api.add("w1", log())
    result = atwh("replay", "w1", "--since", since_119_minutes(), "--dry-run", "--all-failed")
    assert result.exit_code == 0, result.output
    assert "no event has a failed attempt" in result.stderr
    assert len(fake_api.requests) == 10


def test_replay_of_given_events_reads_the_whole_log(atwh, fake_api):
    fake_api.add("w1", log())
    result = atwh("replay", "w1", "--event-id", "e999", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert [o["eventId"] for o in json.loads(result.stdout)] == ["e999"]
    assert len(fake_api.requests) == 10


@pytest.mark.parametrize(("shuffled", "pages"), [(False, 3), (True, 10)])
def test_stats_with_since_reads_only_the_pages_it_needs(atwh, fake_api, shuffled, pages):
    fake_api.add("w1", log(shuffled))
    result = atwh("stats", "w1", "--since", since_119_minutes(), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["webhooks"][0]["attempts"] == 119
    assert len(fake_api.requests) == pages
