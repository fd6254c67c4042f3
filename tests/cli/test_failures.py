"""`atwh failures [WEBHOOK_ID ...]`: what counts as failed, the summary, exports, webhook ids."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import respx

from atwh.output.export import CSV_COLUMNS
from tests.conftest import API_URL, NOW, FakeApi, node


def seen(age: timedelta) -> str:
    """How the summary prints a first/last seen time (local time, to the second, the year
    only when it is not this one's)."""
    local = (NOW - age).astimezone()
    same_year = local.year == datetime.now(UTC).astimezone().year
    return local.strftime("%m-%d %H:%M:%S" if same_year else "%Y-%m-%d %H:%M:%S")


def ids_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [d["id"] for d in json.loads(result.stdout)]


def summary_row(text: str, needle: str) -> str:
    """The one line of the summary (above the table of attempts) that holds `needle`."""
    summary = text.partition("Failed attempts")[0]
    (line,) = [x for x in summary.splitlines() if needle in x]
    return line


@pytest.fixture
def hook(fake_api):
    """Two causes, each on one event name: one event recovered, two still failing."""
    fake_api.add(
        "w1",
        [
            node(1, code=500, age=timedelta(hours=3)),  # e1 fails…
            node(2, code=200, age=timedelta(hours=2), event_id="e1"),  # …then succeeds
            node(
                3,
                code=None,
                message="ESOCKETTIMEDOUT",
                event="ticket.updated",
                age=timedelta(days=2),
            ),
            node(
                4,
                code=None,
                message="ESOCKETTIMEDOUT",
                event="ticket.updated",
                age=timedelta(days=1),
                event_id="e3",
            ),  # a retry of e3, failing again
            node(5, code=500, age=timedelta(minutes=30)),  # e5, never succeeds
            node(6, code=200, age=timedelta(minutes=10)),
            node(7, code=302, event="ticket.deleted", age=timedelta(days=10)),
        ],
    )
    return fake_api


# -- what counts as a failed attempt -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"code": None, "status": "FAILED"}, True),  # result null
        ({"code": None, "status": "SUCCESS"}, True),  # result null, whatever the status says
        ({"code": None, "status": "PENDING"}, False),  # not answered yet
        ({"code": None, "message": "ECONNREFUSED"}, True),  # statusCode null, a message
        ({"code": 302}, True),  # 3xx is a failure
        ({"code": 404}, True),
        ({"code": 500, "status": "SUCCESS"}, True),  # the code decides, not the status
        ({"code": 503, "status": "PENDING"}, True),
        ({"code": 200, "status": "FAILED"}, True),  # status FAILED even with a 2xx
        ({"code": 200, "status": "SUCCESS"}, False),
        ({"code": 204, "status": "SUCCESS"}, False),
        ({"code": 299, "status": "SUCCESS"}, False),
    ],
)
def test_what_counts_as_failed(atwh, fake_api, kwargs, failed):
    fake_api.add("w1", [node(1, code=200), node(2, **kwargs)])
    result = atwh("failures", "w1", "--json")
    assert ids_of(result) == (["d2"] if failed else [])


# -- the summary --------------------------------------------------------------------------


def test_summary_groups_by_cause_and_event(atwh, hook):
    result = atwh("failures", "--format", "table", "w1")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = result.stdout
    summary, _, attempts = out.partition("Failed attempts")
    assert summary.splitlines()[0].strip() == (
        "5 failed attempts in 7 deliveries of 1 webhook; 3 events still failing"
    )
    header = summary_row(summary, "Cause")
    for column in (
        "Event",
        "Failures",
        "Recovered",
        "Still failing",
        "First seen",
        "Last seen",
        "Example",
    ):
        assert column in header
    # cause, event, failures, events, recovered, still failing, first, last, example
    assert summary_row(summary, "HTTP 500").split() == [
        "HTTP",
        "500",
        "ticket.created",
        "2",
        "2",
        "1",
        "1",
        *seen(timedelta(hours=3)).split(),
        *seen(timedelta(minutes=30)).split(),
        "d5",
    ]
    assert summary_row(summary, "ESOCKETTIMEDOUT").split() == [
        "ESOCKETTIMEDOUT",
        "ticket.updated",
        "2",
        "1",
        "0",
        "1",
        *seen(timedelta(days=2)).split(),
        *seen(timedelta(days=1)).split(),
        "d4",
    ]
    assert summary_row(summary, "HTTP 302").split() == [
        "HTTP",
        "302",
        "ticket.deleted",
        "1",
        "1",
        "0",
        "1",
        *seen(timedelta(days=10)).split(),
        *seen(timedelta(days=10)).split(),
        "d7",
    ]
    # largest groups first
    assert summary.index("HTTP 500") < summary.index("HTTP 302")
    assert summary.index("ESOCKETTIMEDOUT") < summary.index("HTTP 302")


def test_summary_then_the_failed_attempts_newest_first(atwh, hook):
    out = atwh("failures", "--format", "table", "w1").stdout
    _, _, attempts = out.partition("Failed attempts")
    assert attempts.startswith(" (5 shown), newest first")
    rows = attempts.splitlines()[2:]
    assert [_event_id(r) for r in rows if r.strip()] == ["e5", "e1", "e3", "e3", "e7"]
    assert "(no answer: ESOCKETTIMEDOUT)" in attempts
    assert " e6" not in out  # successes are not listed
    assert "SUCCESS" not in attempts


def _event_id(row: str) -> str:
    words = row.split()
    return next(w for w in words if w.startswith("e") and w[1:].isdigit())


def test_recovered_only_by_a_2xx_of_the_same_event(atwh, fake_api):
    fake_api.add(
        "w1",
        [
            node(1, code=500, age=timedelta(hours=5), event_id="ea"),
            node(2, code=500, age=timedelta(hours=4), event_id="ea"),
            node(3, code=200, age=timedelta(hours=3), event_id="ea"),  # ea recovered
            node(4, code=500, age=timedelta(hours=4), event_id="eb"),
            node(5, code=302, age=timedelta(hours=3), event_id="eb"),  # not a recovery
            node(6, code=None, status="PENDING", age=timedelta(hours=2), event_id="eb"),
            node(7, code=200, status="FAILED", age=timedelta(hours=1), event_id="eb"),
        ],
    )
    out = atwh("failures", "--format", "table", "w1").stdout
    assert "5 failed attempts in 7 deliveries of 1 webhook; 1 event still failing" in out
    assert summary_row(out, "HTTP 500").split()[2:7] == ["ticket.created", "3", "2", "1", "1"]
    assert summary_row(out, "HTTP 302").split()[2:7] == ["ticket.created", "1", "1", "0", "1"]
    assert summary_row(out, "HTTP 200").split()[2:7] == ["ticket.created", "1", "1", "0", "1"]


def test_a_success_before_the_failure_is_not_a_recovery(atwh, fake_api):
    """Recovered means the event *later* got a 2xx; one that failed after succeeding
    (a redelivery, say) is still failing."""
    fake_api.add(
        "w1",
        [
            node(1, code=200, age=timedelta(hours=3)),
            node(2, code=500, age=timedelta(hours=1), event_id="e1"),
        ],
    )
    out = atwh("failures", "--format", "table", "w1").stdout
    assert "1 failed attempt in 2 deliveries of 1 webhook; 1 event still failing" in out
    assert summary_row(out, "HTTP 500").split()[2:7] == ["ticket.created", "1", "1", "0", "1"]


def test_everything_recovered(atwh, fake_api):
    fake_api.add(
        "w1",
        [
            node(1, code=500, age=timedelta(hours=2)),
            node(2, code=201, age=timedelta(hours=1), event_id="e1"),
        ],
    )
    result = atwh("failures", "--format", "table", "w1")
    assert result.exit_code == 0
    assert "1 failed attempt in 2 deliveries of 1 webhook; 0 events still failing" in (
        result.stdout
    )
    assert summary_row(result.stdout, "HTTP 500").split()[2:7] == [
        "ticket.created",
        "1",
        "1",
        "1",
        "0",
    ]


def test_no_answer_without_a_message(atwh, fake_api):
    fake_api.add("w1", [node(1, code=None, age=timedelta(hours=1))])
    out = atwh("failures", "--format", "table", "w1").stdout
    assert summary_row(out, "ticket.created").split()[:3] == ["no", "answer", "ticket.created"]


def test_no_failures(atwh, fake_api):
    fake_api.add("w1", [node(1, code=200), node(2, code=None, status="PENDING")])
    result = atwh("failures", "--format", "table", "w1")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # an empty result is one line on stderr
    assert result.stderr == "No failed attempts in 2 deliveries of 1 webhook\n"
    assert json.loads(atwh("failures", "w1", "--json").stdout) == []


# -- exports ------------------------------------------------------------------------------


def test_json_is_the_failed_attempts_with_webhook_id(atwh, hook):
    result = atwh("failures", "w1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["id"] for d in data] == ["d1", "d3", "d4", "d5", "d7"]
    assert {d["webhookId"] for d in data} == {"w1"}
    by_id = {d["id"]: d for d in data}
    assert by_id["d1"]["result"]["statusCode"] == 500
    assert by_id["d3"]["result"] == {
        "statusCode": None,
        "body": None,
        "message": "ESOCKETTIMEDOUT",
        "headers": [],
    }
    assert by_id["d7"]["event"]["name"] == "ticket.deleted"


def test_ndjson(atwh, hook):
    result = atwh("failures", "w1", "--format", "ndjson")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["d1", "d3", "d4", "d5", "d7"]
    assert all(r["webhookId"] == "w1" for r in rows)


def test_csv(atwh, hook):
    result = atwh("failures", "w1", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["id"] for r in rows] == ["d1", "d3", "d4", "d5", "d7"]
    assert {r["webhook_id"] for r in rows} == {"w1"}
    assert {r["failed"] for r in rows} == {"true"}
    by_id = {r["id"]: r for r in rows}
    assert by_id["d3"]["status_code"] == "" and by_id["d3"]["message"] == "ESOCKETTIMEDOUT"
    assert by_id["d7"]["status_code"] == "302"


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("f.json", lambda text: [d["webhookId"] for d in json.loads(text)]),
        ("f.ndjson", lambda text: [json.loads(x)["webhookId"] for x in text.splitlines()]),
        ("f.jsonl", lambda text: [json.loads(x)["webhookId"] for x in text.splitlines()]),
        ("f.csv", lambda text: [r["webhook_id"] for r in csv.DictReader(io.StringIO(text))]),
    ],
)
def test_output_file(atwh, hook, tmp_path, name, read):
    target = tmp_path / name
    result = atwh("failures", "w1", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert read(target.read_text()) == ["w1"] * 5
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [name]


def test_output_file_as_table(atwh, hook, tmp_path):
    target = tmp_path / "report.txt"
    result = atwh("failures", "w1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = target.read_text()
    assert "5 failed attempts in 7 deliveries of 1 webhook" in text
    assert "ESOCKETTIMEDOUT" in text and "Failed attempts (5 shown)" in text


# -- which webhooks -----------------------------------------------------------------------


@pytest.fixture
def two_hooks(fake_api):
    fake_api.add("w1", [node(1, code=500), node(2, code=200)])
    fake_api.add("w2", [node(3, code=None, message="ECONNRESET"), node(4, code=200)])
    fake_api.add("w3", [node(5, code=404)])
    return fake_api


def webhook_ids_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return sorted({d["webhookId"] for d in json.loads(result.stdout)})


def test_ids_from_arguments(atwh, two_hooks, monkeypatch):
    monkeypatch.setenv("ATWH_WEBHOOK_ID", "w3")  # arguments win over the environment
    assert webhook_ids_of(atwh("failures", "w1", "w2", "--json")) == ["w1", "w2"]


def test_ids_from_env(atwh, two_hooks, monkeypatch, tmp_path):
    monkeypatch.setenv("ATWH_WEBHOOK_ID", "w1, w2")
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('webhooks = ["w3"]\n')  # the environment wins over the config file
    assert webhook_ids_of(atwh("failures", "--json")) == ["w1", "w2"]


def test_ids_from_config_dir(atwh, two_hooks, tmp_path):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('webhooks = ["w1", "w2"]\n')
    assert webhook_ids_of(atwh("failures", "--json")) == ["w1", "w2"]


def test_ids_from_atwh_config(atwh, two_hooks, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('webhooks = ["w2", "w3"]\n')
    monkeypatch.setenv("ATWH_CONFIG", str(elsewhere))
    assert webhook_ids_of(atwh("failures", "--json")) == ["w2", "w3"]


def test_no_ids_anywhere(atwh, two_hooks, monkeypatch):
    monkeypatch.setenv("ATWH_WEBHOOK_ID", " , ")
    result = atwh("failures")
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: no webhook id")
    assert "ATWH_WEBHOOK_ID" in line
    assert "webhooks = [" in line and "config.toml" in line
    assert "give one" in line  # arguments
    assert two_hooks.requests == []


def test_several_webhooks_in_the_table(atwh, two_hooks):
    result = atwh("failures", "--format", "table", "w1", "w2", "w3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "3 failed attempts in 5 deliveries of 3 webhooks; 3 events still failing" in out
    assert "Webhooks" in summary_row(out, "Cause")
    assert summary_row(out, "ECONNRESET").split()[-1] == "w2"
    assert summary_row(out, "HTTP 404").split()[-1] == "w3"


def test_several_webhooks_in_json(atwh, two_hooks):
    result = atwh("failures", "w1", "w2", "w3", "--json")
    assert result.exit_code == 0, result.output
    got = {d["id"]: d["webhookId"] for d in json.loads(result.stdout)}
    assert got == {"d1": "w1", "d3": "w2", "d5": "w3"}


def test_same_id_twice_is_fetched_once(atwh, two_hooks):
    result = atwh("failures", "w1", "w1", "--json")
    assert [d["id"] for d in json.loads(result.stdout)] == ["d1"]
    assert len(two_hooks.requests) == 1


@pytest.fixture
def rendezvous_api() -> Iterator[FakeApi]:
    """The fake API, but each webhook's first request waits until the other's has arrived:
    if they were fetched one after the other, the barrier would break."""
    fake = FakeApi()
    barrier = threading.Barrier(2, timeout=5)

    def handler(request):
        barrier.wait()
        return fake(request)

    with respx.mock(assert_all_called=False) as mock:
        mock.post(API_URL).mock(side_effect=handler)
        yield fake


def test_several_webhooks_are_fetched_concurrently(atwh, rendezvous_api):
    rendezvous_api.add("w1", [node(1, code=500)])
    rendezvous_api.add("w2", [node(2, code=502)])
    result = atwh("failures", "w1", "w2", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(d["id"] for d in json.loads(result.stdout)) == ["d1", "d2"]


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_unknown_webhook_among_several(atwh, two_hooks, extra):
    result = atwh("failures", "w1", "nope", "w2", *extra)
    assert result.exit_code == 4
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: webhook nope not found")


def test_many_pages_of_several_webhooks(atwh, fake_api):
    fake_api.add("w1", [node(i, code=500 if i % 10 == 0 else 200) for i in range(230)])
    fake_api.add("w2", [node(i, code=None if i % 25 == 0 else 200) for i in range(120)])
    result = atwh("failures", "w1", "w2", "--format", "ndjson")
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert sum(r["webhookId"] == "w1" for r in rows) == 23
    assert sum(r["webhookId"] == "w2" for r in rows) == 5


# -- --exit-code --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["--format", "table"], [], ["--json"], ["--format", "ndjson"], ["--format", "csv"]],
)
def test_exit_code_when_failures_are_found(atwh, hook, args):
    with_flag = atwh("failures", "w1", "--exit-code", *args)
    assert with_flag.exit_code == 1, with_flag.output
    assert "Error" not in with_flag.stderr
    assert "d5" in with_flag.stdout  # the output is there all the same
    without = atwh("failures", "w1", *args)
    assert without.exit_code == 0, without.output
    assert without.stdout == with_flag.stdout or args == ["--format", "table"]  # (ages)


def test_exit_code_with_output_file(atwh, hook, tmp_path):
    target = tmp_path / "f.json"
    result = atwh("failures", "w1", "--exit-code", "-o", str(target))
    assert result.exit_code == 1
    assert len(json.loads(target.read_text())) == 5


@pytest.mark.parametrize("args", [["--format", "table"], [], ["--json"], ["--format", "csv"]])
def test_exit_code_when_nothing_failed(atwh, fake_api, args):
    fake_api.add("w1", [node(1, code=200), node(2, code=204)])
    result = atwh("failures", "w1", "--exit-code", *args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [["--format", "table"], [], ["--json"]])
def test_exit_code_when_the_filters_leave_nothing(atwh, hook, args):
    result = atwh("failures", "w1", "--exit-code", "--since", "10m", *args)
    assert result.exit_code == 0, result.output


# -- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "7d"], ["d1", "d3", "d4", "d5"]),
        (["--since", "1h"], ["d5"]),
        (["--until", "1d"], ["d3", "d4", "d7"]),
        (["--since", "3d", "--until", "2h"], ["d1", "d3", "d4"]),
        (["--event", "ticket.updated"], ["d3", "d4"]),
        (["-e", "ticket.*", "--since", "7d"], ["d1", "d3", "d4", "d5"]),
        (["--event", "ticket.created,ticket.deleted"], ["d1", "d5", "d7"]),
        (["--status-code", "500"], ["d1", "d5"]),
        (["--status-code", "3xx"], ["d7"]),
        (["--status-code", "none"], ["d3", "d4"]),
        (["--status-code", "2xx"], []),  # successes stay out even when asked for
        (["--limit", "2"], ["d1", "d3"]),
        (["-n", "1", "--status-code", "none"], ["d3"]),
    ],
)
def test_filters_in_json(atwh, hook, args, expected):
    assert ids_of(atwh("failures", "w1", "--json", *args)) == expected


def test_since_in_the_table(atwh, hook):
    result = atwh("failures", "--format", "table", "w1", "--since", "7d")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("4 failed attempts")
    assert "HTTP 302" not in out and "ticket.deleted" not in out and " e7" not in out
    assert "Failed attempts (4 shown)" in out


def test_event_and_status_code_in_the_table(atwh, hook):
    out = atwh(
        "failures", "--format", "table", "w1", "--event", "ticket.created", "--status-code", "5xx"
    ).stdout
    assert out.startswith("2 failed attempts")
    assert "ESOCKETTIMEDOUT" not in out and "HTTP 302" not in out
    assert summary_row(out, "HTTP 500").split()[2:7] == ["ticket.created", "2", "2", "1", "1"]


def test_limit_in_the_table(atwh, hook):
    out = atwh("failures", "--format", "table", "w1", "--limit", "2").stdout
    _, _, attempts = out.partition("Failed attempts")
    assert attempts.startswith(" (2 of 5 shown)")
    assert [_event_id(r) for r in attempts.splitlines()[2:] if r.strip()] == ["e5", "e1"]


def test_recovery_outside_the_window_still_counts(atwh, fake_api):
    fake_api.add(
        "w1",
        [
            node(1, code=500, age=timedelta(days=3)),
            node(2, code=200, age=timedelta(hours=1), event_id="e1"),
        ],
    )
    out = atwh("failures", "--format", "table", "w1", "--until", "2d").stdout
    assert summary_row(out, "HTTP 500").split()[2:7] == ["ticket.created", "1", "1", "1", "0"]


def test_counts_of_thousands_are_grouped_as_people_read_them(atwh, fake_api):
    fake_api.add("w1", [node(i, code=500, age=timedelta(minutes=i)) for i in range(1234)])
    table = atwh("failures", "--format", "table", "w1")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].startswith("1,234 failed attempts in 1,234 deliveries")
    assert "Failed attempts (50 of 1,234 shown)" in table.stdout
    row = summary_row(table.stdout, "HTTP 500")
    assert row.split()[3:6] == ["1,234", "1,234", "0"]  # failures, events, recovered
    piped = atwh("failures", "w1")
    assert piped.exit_code == 0, piped.output
    assert "50 of 1,234 failed attempts shown" in piped.stderr


def test_the_listings_make_a_delivery_only_for_each_row_shown(fake_api, atwh, monkeypatch):
    """600 failures in no order: `failures` and `deliveries` show the newest 50 and make 50
    Delivery objects, not one per attempt read (issue 27: memory grows with the rows shown)."""
    import random

    import atwh.client.model as model

    nodes = [node(i, code=500, age=timedelta(minutes=i)) for i in range(600)]
    random.Random(2).shuffle(nodes)
    fake_api.add("w1", nodes)
    made = 0
    real = model.Delivery.__init__

    def counted(self, *args, **kwargs):
        nonlocal made
        made += 1
        real(self, *args, **kwargs)

    monkeypatch.setattr(model.Delivery, "__init__", counted)
    for command in ("failures", "deliveries"):
        made = 0
        result = atwh(command, "w1")
        assert result.exit_code == 0, result.output
        head, *rows = result.stdout.splitlines()
        column = head.split("\t").index("delivery")
        assert [r.split("\t")[column] for r in rows] == [f"d{i}" for i in range(50)]
        assert made == 50, (command, made)
