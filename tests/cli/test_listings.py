"""What every listing shares, through the commands: TSV when piped, the newest 50, what was
left out, empty results, the paging stop with --since, and ids given by a prefix."""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta

import pytest

from tests.conftest import NOW, node


def newest_first(count: int, step: timedelta = timedelta(minutes=10)) -> list[dict]:
    return [node(i, age=step * (i + 1)) for i in range(count)]


def since_119_minutes() -> str:
    """--since as an absolute time: 119 of `newest_first(…, step=1 minute)` fall after it,
    however long the test run has taken since conftest's NOW."""
    return (NOW - timedelta(minutes=119, seconds=30)).isoformat()


def test_piped_without_format_is_tsv_with_a_header(atwh, fake_api):
    fake_api.add("w1", newest_first(3))
    result = atwh("deliveries", "w1")  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["created", "status", "code", "delivery"]
    assert [line.split("\t")[3] for line in lines[1:]] == ["d0", "d1", "d2"]
    assert "Webhook" not in result.stdout  # data only


def test_format_table_forces_the_rich_table(atwh, fake_api):
    fake_api.add("w1", newest_first(3))
    result = atwh("deliveries", "w1", "--format", "table")
    assert "\t" not in result.stdout
    assert "Webhook w1" in result.stdout and "Delivery" in result.stdout


@pytest.mark.parametrize("fmt", [[], ["--format", "table"]])
def test_a_table_shows_the_newest_50_and_says_what_it_left_out(atwh, fake_api, fmt):
    fake_api.add("w1", newest_first(250))
    result = atwh("deliveries", "w1", *fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == "50 of 250 deliveries shown (--limit N or --all for more)\n"
    assert "d0" in result.stdout and "d49" in result.stdout and "d50" not in result.stdout
    assert len(fake_api.requests) == 1  # newest first: one page was enough


def test_the_newest_50_of_an_unordered_history_reads_every_page(atwh, fake_api):
    nodes = newest_first(250)
    random.Random(3).shuffle(nodes)
    fake_api.add("w1", nodes)
    result = atwh("deliveries", "w1", "--limit", "5")
    assert [line.split("\t")[3] for line in result.stdout.splitlines()[1:]] == [
        "d0",
        "d1",
        "d2",
        "d3",
        "d4",
    ]
    assert len(fake_api.requests) == 3
    assert result.stderr == "5 of 250 deliveries shown (--limit N or --all for more)\n"


def test_all_shows_everything_and_exports_are_never_cut(atwh, fake_api):
    fake_api.add("w1", newest_first(120))
    every = atwh("deliveries", "w1", "--all")
    assert len(every.stdout.splitlines()) == 121 and every.stderr == ""
    assert len(json.loads(atwh("deliveries", "w1", "--json").stdout)) == 120
    assert len(atwh("deliveries", "w1", "--format", "ndjson").stdout.splitlines()) == 120
    assert len(json.loads(atwh("deliveries", "w1", "--json", "-n", "7").stdout)) == 7


def test_with_a_filter_it_says_more_match_without_counting_them(atwh, fake_api):
    fake_api.add("w1", newest_first(250))
    result = atwh("deliveries", "w1", "--event", "ticket.*", "--limit", "10")
    assert (
        result.stderr
        == "The newest 10 deliveries shown; more match (--limit N or --all for more)\n"
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--event", "ticket"],
            "No deliveries match --event 'ticket' (names are matched whole; "
            "did you mean 'ticket.*'?)",
        ),
        (["--since", "2099-01-01"], "No deliveries: --since '2099-01-01' is in the future"),
        (["--since", "5m"], "No deliveries since "),
        (
            ["--status-code", "418"],
            "No deliveries match --status-code '418' (checked 3 deliveries)",
        ),
    ],
)
@pytest.mark.parametrize("fmt", [[], ["--format", "table"], ["--json"], ["--format", "csv"]])
def test_an_empty_result_is_one_line_on_stderr_saying_why(atwh, fake_api, args, said, fmt):
    fake_api.add("w1", newest_first(3))
    result = atwh("deliveries", "w1", *args, *fmt)
    assert result.exit_code == 0, result.output
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(said)
    if fmt == ["--json"]:
        assert json.loads(result.stdout) == []
    elif fmt == ["--format", "csv"]:
        assert len(result.stdout.splitlines()) == 1  # the header
    else:
        assert result.stdout == ""


def test_since_stops_paging_after_a_page_older_than_the_window(atwh, fake_api):
    fake_api.add("w1", newest_first(1000, step=timedelta(minutes=1)))  # 10 pages, ~16 hours
    result = atwh("deliveries", "w1", "--since", since_119_minutes(), "--format", "ndjson")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 119  # created 1 to 119 minutes ago
    # pages of 100: 1-100 and 101-200 minutes ago hold matches, 201-300 is wholly older
    assert len(fake_api.requests) == 3


def test_since_reads_every_page_when_the_order_is_not_newest_first(atwh, fake_api):
    nodes = newest_first(1000, step=timedelta(minutes=1))
    random.Random(5).shuffle(nodes)
    fake_api.add("w1", nodes)
    result = atwh("deliveries", "w1", "--since", since_119_minutes(), "--format", "ndjson")
    assert len(result.stdout.splitlines()) == 119
    assert len(fake_api.requests) == 10


def test_since_reads_every_page_when_a_later_page_breaks_the_order(atwh, fake_api):
    nodes = newest_first(1000, step=timedelta(minutes=1))
    nodes[950], nodes[5] = nodes[5], nodes[950]  # one recent delivery on the last page
    fake_api.add("w1", nodes)
    result = atwh("deliveries", "w1", "--since", since_119_minutes(), "--format", "ndjson")
    assert len(result.stdout.splitlines()) == 119
    assert len(fake_api.requests) == 10  # page 1 is out of order itself


def test_failures_headline_counts_only_the_deliveries_in_the_window(atwh, fake_api):
    nodes = [
        node(i, code=500 if i % 3 == 0 else 200, age=timedelta(minutes=10 * (i + 1)))
        for i in range(500)
    ]  # one every 10 minutes: 11 in the last 2 hours, 4 of them failed
    fake_api.add("w1", nodes)
    since = (NOW - timedelta(minutes=115)).isoformat()  # not moved by the length of the run
    result = atwh("failures", "w1", "--since", since, "--format", "table")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("4 failed attempts in 11 deliveries of 1 webhook;"), first


def test_singular_and_plural_agree(atwh, fake_api):
    fake_api.add("w1", [node(1, code=500), node(2, code=200, age=timedelta(minutes=1))])
    result = atwh("failures", "w1", "--format", "table")
    assert result.stdout.splitlines()[0] == (
        "1 failed attempt in 2 deliveries of 1 webhook; 1 event still failing"
    )


def test_failures_no_longer_offers_failed(atwh, fake_api):
    fake_api.add("w1", [node(1, code=500)])
    result = atwh("failures", "w1", "--failed")
    assert result.exit_code == 2
    assert "No such option: --failed" in result.stderr


# -- ids by a unique prefix --------------------------------------------------------------------


@pytest.fixture
def uuids(fake_api):
    nodes = newest_first(3)
    for n, i in zip(nodes, ("3f2a1c00-0000", "3f2a9e00-0000", "9b0d0000-0000"), strict=True):
        n["id"] = i
    fake_api.add("w1", nodes)
    return fake_api


def test_id_takes_a_unique_prefix(atwh, uuids):
    result = atwh("deliveries", "w1", "--id", "3f2a1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "3f2a1c00-0000"
    table = atwh("deliveries", "w1", "--id", "9b")
    assert "9b0d0000-0000" in table.stdout and table.exit_code == 0


def test_an_ambiguous_prefix_names_the_candidates(atwh, uuids):
    result = atwh("deliveries", "w1", "--id", "3f2a")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --id '3f2a' is ambiguous: 2 delivery ids start with it")
    assert "3f2a1c00-0000" in result.stderr and "3f2a9e00-0000" in result.stderr


def test_a_prefix_that_matches_nothing_is_not_found(atwh, uuids):
    result = atwh("deliveries", "w1", "--id", "ffff")
    assert result.exit_code == 4
    assert result.stderr == "Error: --id 'ffff': no delivery id starts with it\n"


def test_one_is_singular_everywhere(atwh, fake_api):
    fake_api.add("w1", [node(1, code=200), node(2, code=200, age=timedelta(hours=2))])
    one = atwh("deliveries", "w1", "--limit", "1", "--format", "table")
    assert "2 deliveries (1 shown)" in one.stdout
    assert one.stderr == "1 of 2 deliveries shown (--limit N or --all for more)\n"
    filtered = atwh("deliveries", "w1", "--limit", "1", "--event", "ticket.*")
    assert (
        filtered.stderr == "The newest delivery shown; more match (--limit N or --all for more)\n"
    )
    fake_api.add("w2", [node(1, code=200)])
    assert "1 delivery (1 shown)" in atwh("deliveries", "w2", "--format", "table").stdout


@pytest.mark.parametrize("command", ["deliveries", "failures"])
def test_columns_picks_what_a_listing_shows_on_a_terminal_and_piped(
    atwh, fake_api, command, monkeypatch
):
    fake_api.add("w1", [node(0, code=500), node(1, code=503)])
    piped = atwh(command, "w1", "--columns", "delivery,created")
    assert piped.stdout.splitlines()[0] == "delivery\tcreated", piped.output
    monkeypatch.setenv("COLUMNS", "60")
    table = atwh(command, "w1", "--columns", "event,age", "--format", "table")
    assert table.exit_code == 0, table.output
    assert re.search(r"^Event +Age", table.stdout, re.M) and "Delivery" not in table.stdout
    bad = atwh(command, "w1", "--columns", "nope")
    assert bad.exit_code == 2 and "choose from created,age,status" in bad.stderr


def test_a_filtered_total_says_what_matches_and_of_how_many(atwh, fake_api):
    fake_api.add("w1", [node(i, code=500 if i % 2 else 200) for i in range(10)])
    limited = atwh("deliveries", "w1", "--failed", "--limit", "3", "--format", "table")
    assert "The newest 3 deliveries that match --failed (more do, of 10 in all)" in (limited.stdout)
    assert "10 deliveries (3 shown)" not in limited.stdout
    whole = atwh("deliveries", "w1", "--failed", "--format", "table")
    assert "5 deliveries match --failed (of 10 in all)" in whole.stdout
    both = atwh("deliveries", "w1", "-c", "5xx", "--event", "ticket.*", "--format", "table")
    assert "5 deliveries match --event 'ticket.*' --status-code '5xx'" in both.stdout
