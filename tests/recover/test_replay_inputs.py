"""`atwh replay` against bad inputs: a mocked API (respx) and targets that misbehave."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from tests.conftest import API_URL, FakeApi, free_port, hmac_hex, node

TARGET = "https://example.com/webhook"
SECRET = "s3cret"


@pytest.fixture
def mock() -> Iterator[tuple[FakeApi, respx.MockRouter]]:
    fake = FakeApi()
    with respx.mock(assert_all_called=False) as router:
        router.post(API_URL).mock(side_effect=fake)
        router.route(host="127.0.0.1").pass_through()
        yield fake, router


def failing(n: int, **kw) -> list[dict]:
    """n events, each with one attempt answered 500, oldest last (as the API lists them)."""
    from datetime import timedelta

    return [node(i, code=500, age=timedelta(minutes=n - i + 1), **kw) for i in range(n, 0, -1)]


def with_secret(fake: FakeApi, webhook_id: str, nodes: list[dict], secret: str | None = SECRET):
    fake.add(webhook_id, nodes, url=TARGET)
    if secret is not None:
        fake.webhooks[webhook_id]["secret"] = secret


def test_unknown_webhook(mock, atwh):
    result = atwh("replay", "nope")
    assert result.exit_code == 4
    assert result.stderr.strip() == (
        "Error: webhook nope not found (check the id, and that the token's app can see it)"
    )


def test_no_secret_readable_and_none_given(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(1), secret=None)
    sent = router.post(TARGET).respond(200)
    result = atwh("replay", "w1")
    assert result.exit_code == 2
    assert "no secret for webhook w1" in result.stderr and "--secret" in result.stderr
    assert not sent.called
    # a dry run needs no secret
    assert atwh("replay", "w1", "--dry-run").exit_code == 0


def test_signed_with_the_api_secret_and_the_payload_as_is(mock, atwh):
    fake, router = mock
    nodes = failing(2)
    nodes[0]["event"]["payload"] = "not json at all \u00e9"  # sent as is, not re-encoded
    with_secret(fake, "w1", nodes)
    sent = router.post(TARGET).respond(200, json={"message": "success"})
    result = atwh("replay", "w1")
    assert result.exit_code == 0, result.output
    bodies = [c.request.content for c in sent.calls]
    assert bodies == [n["event"]["payload"].encode() for n in reversed(nodes)]  # oldest first
    for call in sent.calls:
        r = call.request
        assert r.headers["x-allthings-signature"] == hmac_hex(r.content, SECRET)
        assert r.headers["x-allthings-signature-timestamp"].isdigit()
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-atwh-replay-of"] in ("d1", "d2")
    # --secret wins over the API's
    assert atwh("replay", "w1", "--force", "--secret", "other").exit_code == 0
    r = sent.calls[-1].request
    assert r.headers["x-allthings-signature"] == hmac_hex(r.content, "other")


def test_target_refusing_connections(mock, atwh):
    fake, _ = mock
    with_secret(fake, "w1", failing(2))
    url = f"http://127.0.0.1:{free_port()}/webhook"
    result = atwh("replay", "w1", "--to", url, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [r["result"] for r in report] == ["still failing", "still failing"]
    assert all(r["statusCode"] is None and "cannot connect" in r["detail"] for r in report)
    assert "0 fixed, 2 still failing" in result.stderr


def test_a_redirect_is_a_failure_as_allthings_counts_it(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(1))
    router.post(TARGET).respond(301, headers={"location": "https://example.com/new"})
    result = atwh("replay", "w1", "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["result"] == "still failing" and row["statusCode"] == 301
    assert "redirect to https://example.com/new" in row["detail"]


def test_429_and_503_wait_for_retry_after_then_send_again(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(1))
    sent = router.post(TARGET).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}),
            httpx.Response(503, headers={"retry-after": "0"}),
            httpx.Response(200),
        ]
    )
    result = atwh("replay", "w1", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["result"], row["tries"]) == ("fixed", 3)
    assert sent.call_count == 3


def test_an_answer_that_never_ends_in_time_is_a_failure(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(1))
    router.post(TARGET).mock(side_effect=httpx.ReadTimeout("slow"))
    result = atwh("replay", "w1", "--timeout", "1", "--json")
    assert result.exit_code == 1
    assert "no answer within 1s" in json.loads(result.stdout)[0]["detail"]


def test_many_events_to_a_remote_host_need_yes(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(21))
    sent = router.post(TARGET).respond(200)
    result = atwh("replay", "w1")
    assert result.exit_code == 2
    assert "about to send 21 events to https://example.com/webhook" in result.stderr
    assert "--yes" in result.stderr and not sent.called
    result = atwh("replay", "w1", "--yes", "--concurrency", "4")
    assert result.exit_code == 0, result.output
    assert sent.call_count == 21


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--all-failed"], "--all-failed and --all disagree"),
        (["--rate", "fast"], "--rate 'fast'"),
        (["--to", "ftp://x"], "--to 'ftp://x' is not an http(s) URL"),
        (["--as", "wget"], "--as 'wget'"),
        (["--format", "csv"], "--format csv"),
        (["--delivery", "zz"], "--delivery 'zz': no delivery id starts with it"),
        (["--event-id", "e"], "--event-id 'e' is ambiguous"),
    ],
)
def test_bad_options(mock, atwh, args, message):
    fake, _ = mock
    with_secret(fake, "w1", failing(3))
    result = atwh("replay", "w1", *args)
    assert result.exit_code in (2, 4), result.output
    assert message in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_nothing_to_replay_says_why(mock, atwh):
    fake, _ = mock
    with_secret(fake, "w1", [node(1, code=200)])
    result = atwh("replay", "w1")
    assert result.exit_code == 0
    assert "Nothing to replay: no event is still failing" in result.stderr


@pytest.mark.parametrize(
    ("answer", "sent_count", "says"), [("n\n", 0, "Nothing sent."), ("y\n", 21, "21 fixed")]
)
def test_on_a_terminal_many_events_to_a_remote_host_ask_first(
    mock, atwh, monkeypatch, answer, sent_count, says
):
    import atwh.cli.context as command

    fake, router = mock
    with_secret(fake, "w1", failing(21))
    sent = router.post(TARGET).respond(200)
    monkeypatch.setattr(command, "interactive", lambda: True)
    result = atwh("replay", "w1", input=answer)
    assert result.exit_code == 0, result.output
    assert "Send 21 events to https://example.com/webhook? [y/N]" in result.stderr
    assert says in result.stderr and sent.call_count == sent_count


def test_twenty_events_or_loopback_need_no_confirmation(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(20))
    sent = router.post(TARGET).respond(200)
    assert atwh("replay", "w1").exit_code == 0 and sent.call_count == 20


def test_a_disabled_webhook_is_replayed_with_a_warning(mock, atwh):
    fake, router = mock
    with_secret(fake, "w1", failing(1))
    fake.webhooks["w1"]["enabled"] = False
    router.post(TARGET).respond(200)
    result = atwh("replay", "w1")
    assert result.exit_code == 0
    assert "Warning: webhook w1 is disabled" in result.stderr


def test_ndjson_to_a_file_and_the_history_table(mock, atwh, tmp_path):
    fake, router = mock
    assert "No replays yet" in atwh("replay", "--history").stderr
    with_secret(fake, "w1", failing(3))
    router.post(TARGET).mock(
        side_effect=[httpx.Response(200), httpx.Response(500, text="boom")] * 2
    )
    out = tmp_path / "report.ndjson"
    result = atwh("replay", "w1", "--output", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["result"], r["statusCode"]) for r in rows] == [
        ("fixed", 200),
        ("still failing", 500),
        ("fixed", 200),
    ]
    assert rows[1]["detail"] == "boom"
    history = atwh("replay", "--history")
    assert history.exit_code == 0
    assert "webhook:w1" in history.stdout and TARGET in history.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--event-id", ""],
        ["--delivery", ""],
        ["--event-id", ","],
        ["--delivery", "d1,"],
        ["--event-id", "  "],
    ],
)
def test_an_empty_selector_is_a_usage_error_and_sends_nothing(mock, atwh, args):
    """Issue 22, item 4: `--event-id "$UNSET" --yes` selected every failing event."""
    fake, router = mock
    with_secret(fake, "w1", failing(3))
    sent = router.post(TARGET).respond(200)
    result = atwh("replay", "w1", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {args[0]} ")
    assert "not an empty string" in result.stderr
    assert not sent.called


def test_an_empty_id_for_inbox_replay_is_a_usage_error(atwh, tmp_path):
    from atwh.receiver.inbox import Inbox

    db = tmp_path / "inbox.sqlite3"
    Inbox(db).close()
    result = atwh("inbox", "replay", "", "--db", str(db), "--to", "http://127.0.0.1:9/x")
    assert result.exit_code == 2, result.output
    assert "not an empty string" in result.stderr


CREDENTIALED = "https://hook-user:pa55word-xyz@example.com/webhook"


def test_credentials_in_a_webhook_url_are_never_shown_nor_stored(mock, atwh, tmp_path):
    """Issue 22, item 5: the userinfo of the URL is redacted in the totals, the dry run, the
    report, --history (table and JSON), errors and the ledger; the request still carries it."""
    fake, router = mock
    with_secret(fake, "w1", failing(2))
    fake.webhooks["w1"]["url"] = CREDENTIALED
    sent = router.post(TARGET).respond(500, text=f"no, {CREDENTIALED} is wrong")
    ledger = tmp_path / "private" / "replays.sqlite3"
    shown = []
    for args in (["--dry-run"], ["--format", "table"], ["--json"], []):
        result = atwh("replay", "w1", "--force", "--ledger", str(ledger), *args)
        assert result.exit_code in (0, 1), result.output
        shown.append(result.stdout + result.stderr)
    assert sent.called
    assert sent.calls[0].request.headers["authorization"].startswith("Basic ")
    for args in (["--format", "table"], ["--json"], []):
        result = atwh("replay", "--history", "--ledger", str(ledger), *args)
        assert result.exit_code == 0, result.output
        shown.append(result.stdout + result.stderr)
    bad = atwh("replay", "w1", "--to", "ftp://hook-user:pa55word-xyz@example.com/")
    assert bad.exit_code == 2
    shown.append(bad.stderr)
    for text in shown:
        assert "pa55word" not in text and "hook-user" not in text, text
    assert any("https://[redacted]@example.com/webhook" in text for text in shown)
    for path in ledger.parent.iterdir():
        assert b"pa55word" not in path.read_bytes(), path


def test_the_ledger_and_saved_requests_are_private(mock, atwh, tmp_path):
    """Issue 22, item 5: they hold payloads and signatures: 0600 files, 0700 directories."""
    import stat

    fake, router = mock
    with_secret(fake, "w1", failing(2))
    router.post(TARGET).respond(200)
    ledger = tmp_path / "data" / "replays.sqlite3"
    saved = tmp_path / "fixtures"
    assert atwh("replay", "w1", "--ledger", str(ledger)).exit_code == 0
    assert atwh("replay", "w1", "--force", "--save", str(saved)).exit_code == 0
    for directory in (ledger.parent, saved):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("how", [["--save", "DIR"], ["--as", "curl"]])
def test_dry_run_with_save_or_as_curl_writes_the_requests(mock, atwh, tmp_path, how):
    """A dry run read no payloads, yet --save and --as curl (which send nothing either)
    write them: 'replay --dry-run --save DIR' ended in an AssertionError (exit 70). The
    payloads are read whenever they are to be written down."""
    fake, _ = mock
    with_secret(fake, "w1", [node(1, code=500), node(2, code=503)])
    how = [str(tmp_path / "saved") if a == "DIR" else a for a in how]
    result = atwh("replay", "w1", "--dry-run", "--ledger", str(tmp_path / "l.db"), *how)
    assert result.exit_code == 0, result.stderr
    if "--save" in how:
        assert len(list((tmp_path / "saved").glob("*.body"))) == 2
    else:
        assert result.stdout.count("curl ") == 2 and "--data-binary" in result.stdout
