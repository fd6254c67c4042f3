"""`atwh deliveries`: table, filters, one delivery in full, and every export format."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest

from atwh.output.export import CSV_COLUMNS
from tests.conftest import node


@pytest.fixture
def hook(fake_api):
    nodes = [
        node(1, code=200, age=timedelta(minutes=5)),
        node(2, code=500, body="Internal Server Error", age=timedelta(hours=3), event_id="e9"),
        node(3, code=None, message="ESOCKETTIMEDOUT", age=timedelta(days=2)),
        node(4, code=302, event="ticket.updated", age=timedelta(days=10)),
        node(5, code=200, event="ticket.updated", age=timedelta(hours=2), event_id="e9"),
    ]
    nodes[1]["retry"] = {"id": "d5"}
    fake_api.add("w1", nodes, description="Ticket sync", url="https://app.example/hook")
    return fake_api


def test_table_shows_webhook_and_rows_newest_first(atwh, hook):
    result = atwh("deliveries", "w1", "--format", "table")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Ticket sync" in out and "https://app.example/hook" in out
    assert "Enabled  yes" in out
    assert "5 deliveries (5 shown)" in out
    order = [out.index(f" e{i}") if f" e{i}" in out else None for i in (1, 3, 4)]
    assert order == sorted(order)  # d1 (5 min) before d3 (2 days) before d4 (10 days)
    assert "ESOCKETTIMEDOUT" in out and "Internal Server Error" in out
    assert "250ms" in out  # delivery lag


def test_since_keeps_recent_only(atwh, hook):
    result = atwh("deliveries", "w1", "--since", "1d", "--json")
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in json.loads(result.stdout)] == ["d1", "d2", "d5"]


def test_until_and_since_window(atwh, hook):
    result = atwh("deliveries", "w1", "--since", "3d", "--until", "1d", "--json")
    assert [d["id"] for d in json.loads(result.stdout)] == ["d3"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--event", "ticket.updated"], ["d4", "d5"]),
        (["--event", "ticket.*"], ["d1", "d2", "d3", "d4", "d5"]),
        (["-e", "nope.*"], []),
        (["--status-code", "500"], ["d2"]),
        (["--status-code", "5xx", "--status-code", "3xx"], ["d2", "d4"]),
        (["--status-code", "none"], ["d3"]),
        (["--status-code", "2xx,none"], ["d1", "d3", "d5"]),
        (["--failed"], ["d2", "d3", "d4"]),
        (["--limit", "2"], ["d1", "d2"]),
        (["--failed", "--event", "ticket.updated"], ["d4"]),
    ],
)
def test_filters(atwh, hook, args, expected):
    result = atwh("deliveries", "w1", "--json", *args)
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in json.loads(result.stdout)] == expected


def test_json_uses_the_api_field_names(atwh, hook):
    result = atwh("deliveries", "w1", "--json", "--status-code", "500")
    (d,) = json.loads(result.stdout)
    assert set(d) >= {"id", "createdDate", "deliveryDate", "status", "result", "event"}
    assert set(d["result"]) == {"statusCode", "body", "message", "headers"}
    assert set(d["event"]) == {"id", "name", "urn", "payload", "createdDate"}
    assert d["result"]["statusCode"] == 500
    assert d["createdDate"].endswith("Z")
    assert json.loads(d["event"]["payload"])["event"]["data"] == {"id": 2}
    assert d["retry"] == {"id": "d5"}


def test_ndjson_one_object_per_line(atwh, hook):
    result = atwh("deliveries", "w1", "--format", "ndjson")
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert [json.loads(line)["id"] for line in lines] == ["d1", "d2", "d3", "d4", "d5"]


def test_csv_columns_and_rows(atwh, hook):
    result = atwh("deliveries", "w1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert list(CSV_COLUMNS[:11]) == [
        "id",
        "created_date",
        "delivery_date",
        "status",
        "status_code",
        "event_id",
        "event_name",
        "event_urn",
        "message",
        "response_body",
        "webhook_id",
    ]
    by_id = {r["id"]: r for r in rows}
    assert by_id["d2"]["status_code"] == "500"
    assert by_id["d2"]["failed"] == "true"
    assert by_id["d3"]["status_code"] == "" and by_id["d3"]["message"] == "ESOCKETTIMEDOUT"
    assert by_id["d1"]["webhook_id"] == "w1"
    assert by_id["d1"]["lag_ms"] == "250"


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("out.json", lambda text: len(json.loads(text)) == 5),
        ("out.ndjson", lambda text: len(text.splitlines()) == 5),
        ("out.jsonl", lambda text: len(text.splitlines()) == 5),
        ("out.csv", lambda text: text.startswith("id,created_date")),
        ("out.txt", lambda text: "5 deliveries (5 shown)" in text),
    ],
)
def test_output_file_format_from_extension(atwh, hook, tmp_path, name, check):
    target = tmp_path / name
    result = atwh("deliveries", "w1", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert check(target.read_text())
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind


def test_format_wins_over_extension(atwh, hook, tmp_path):
    target = tmp_path / "out.txt"
    assert atwh("deliveries", "w1", "-f", "ndjson", "-o", str(target)).exit_code == 0
    assert len(target.read_text().splitlines()) == 5


def test_show_one_delivery_in_full(atwh, hook):
    result = atwh("deliveries", "w1", "--id", "d2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Internal Server Error" in out
    assert "content-type" in out and "application/json" in out
    assert "urn:allthings:app:a1:*" in out
    assert '"id": 2' in out  # payload pretty-printed
    assert "Attempts for this event (2)" in out
    chain = out[out.index("Attempts for this event") :]
    assert re.search(r"d2 +◀", chain).start() < chain.index("d5")  # the chain, oldest first


def test_show_one_delivery_as_json(atwh, hook):
    result = atwh("deliveries", "w1", "--id", "d3", "--json")
    d = json.loads(result.stdout)
    assert d["id"] == "d3"
    assert d["result"]["statusCode"] is None
    assert d["result"]["message"] == "ESOCKETTIMEDOUT"


def test_show_unknown_delivery(atwh, hook):
    result = atwh("deliveries", "w1", "--id", "nope")
    assert result.exit_code == 4
    assert result.stderr.strip() == "Error: --id 'nope': no delivery id starts with it"


def test_pages_are_followed(atwh, fake_api):
    fake_api.add("w1", [node(i) for i in range(250)])
    result = atwh("deliveries", "w1", "--format", "ndjson")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 250
    assert [r["body"]["variables"].get("after") for r in fake_api.requests] == [
        None,
        "c100",
        "c200",
    ]


def test_server_without_paging_gets_the_vendor_query(atwh, fake_api):
    fake_api.reject_paging = True
    fake_api.add("w1", [node(i) for i in range(3)])
    result = atwh("deliveries", "w1", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3
    assert result.stderr == ""  # noted in debug output only
    vendor = fake_api.requests[-1]["body"]
    assert "QueryWebhookDeliveries(" in vendor["query"] and "first" not in vendor["query"]
    table = atwh("deliveries", "w1", "--format", "table")
    assert "Enabled  not reported by the API" in table.stdout


def test_empty_webhook(atwh, fake_api):
    fake_api.add("w1", [])
    for args in ([], ["--format", "table"]):
        result = atwh("deliveries", "w1", *args)
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr == "No deliveries on webhook w1 (Allthings keeps them for 30 days)\n"
    assert json.loads(atwh("deliveries", "w1", "--json").stdout) == []


def test_token_is_sent_and_never_printed(atwh, hook):
    result = atwh("--debug", "deliveries", "w1", "--json")
    assert result.exit_code == 0
    assert hook.requests[0]["headers"]["authorization"] == "Bearer test-token"
    assert "test-token" not in result.output


def test_counts_of_thousands_are_grouped_in_the_header_and_the_note(atwh, fake_api):
    fake_api.add("w1", [node(i, age=timedelta(minutes=i)) for i in range(1500)])
    table = atwh("deliveries", "w1", "--format", "table")
    assert table.exit_code == 0, table.output
    assert "1,500 deliveries (50 shown)" in table.stdout
    piped = atwh("deliveries", "w1")
    assert "50 of 1,500 deliveries shown" in piped.stderr


def test_a_failed_attempt_without_an_answer_says_what_is_known(atwh, fake_api):
    nodes = [node(1, code=None), node(2, code=None, message="ESOCKETTIMEDOUT")]
    for n in nodes:
        n["deliveryDate"] = None  # as the API gives it: never delivered
    fake_api.add("w1", nodes)
    bare = atwh("deliveries", "w1", "--id", "d1")
    assert bare.exit_code == 0, bare.output
    assert "not yet" not in bare.stdout and "Lag" not in bare.stdout
    assert "Delivered  no: the attempt failed" in bare.stdout
    assert "the log records no reason: a timeout, a refused or a reset" in bare.stdout
    said = atwh("deliveries", "w1", "--id", "d2")
    assert "none: ESOCKETTIMEDOUT" in said.stdout
    rows = list(csv.DictReader(io.StringIO(atwh("deliveries", "w1", "--format", "csv").stdout)))
    assert [r["message"] for r in rows] == [
        "no answer (the log records no reason: a timeout, a refused or a reset connection)",
        "ESOCKETTIMEDOUT",
    ]
    failures = atwh("failures", "w1", "--format", "table")
    assert "no answer: the log gives no reason" in failures.stdout


def test_output_to_a_link_or_a_fifo_writes_through_it_and_never_replaces_it(atwh, hook, tmp_path):
    """`-o /dev/null` as root once replaced /dev/null with a regular file: a file renamed
    over a device, a FIFO or a link replaces it. Those are written in place, as `>` does."""
    import os
    import threading

    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert atwh("deliveries", "w1", "-o", str(link)).exit_code == 0
    assert link.is_symlink() and real.read_text().startswith("id,created_date")

    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    assert atwh("deliveries", "w1", "-o", str(fifo)).exit_code == 0
    reader.join(10)
    assert fifo.is_fifo() and len(got[0].splitlines()) == 5
