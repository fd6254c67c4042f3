"""JSON nested a hundred thousand deep (a few hundred kilobytes, well inside every size
cap) is text that is not JSON atwh can read, wherever it comes from: never a
RecursionError, never a traceback."""

from __future__ import annotations

import httpx
import pytest
import respx

from atwh.core import jsontext
from tests.conftest import API_URL, node

DEEP = "[" * 100_000 + "]" * 100_000


def test_the_reader_says_it_is_not_json():
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.loads(DEEP)
    assert jsontext.loads("[[1]]") == [[1]]


@pytest.mark.parametrize("where", ["extensions", "data"])
def test_an_api_answer_nested_too_deeply_is_one_error_line(atwh, where):
    if where == "data":
        body = '{"data":' + DEEP + "}"
    else:
        body = '{"extensions":' + DEEP + ',"data":{"webhook":null}}'
    with respx.mock:
        respx.post(API_URL).mock(return_value=httpx.Response(200, content=body.encode()))
        result = atwh("deliveries", "w1")
    assert result.exit_code == 5, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "not a GraphQL response" in result.stderr


def test_a_payload_nested_too_deeply_is_shown_as_text(atwh, fake_api):
    deep = node(1, code=500)
    deep["event"]["payload"] = "[" * 5000 + "]" * 5000
    fake_api.add("w1", [deep])
    result = atwh("deliveries", "w1", "--id", "d1", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "[[[[" in result.stdout
    record = atwh("deliveries", "w1", "--json")
    assert record.exit_code == 0, record.output


def test_emit_data_nested_too_deeply_is_a_usage_error(atwh):
    result = atwh("emulator", "emit", "ticket.created", "--urn", "urn:x", "--data", DEEP)
    assert result.exit_code == 2, result.output
    assert "--data is not JSON: JSON nested too deeply" in result.stderr


# One reader of JSON from outside: the receiver's body, an API answer and a file read alike.


@pytest.mark.parametrize("read", [jsontext.loads, jsontext.decode])
def test_bytes_from_outside_are_utf8_or_not_json(read):
    text = '{"event": {"id": "é"}}'
    assert read(text.encode("utf-8")) == {"event": {"id": "é"}}
    for encoding in ("utf-16", "utf-8-sig", "latin-1"):  # json.loads guessed the first two
        with pytest.raises(ValueError):
            read(text.encode(encoding))


def test_decode_reads_again_what_orjson_may_have_read_otherwise():
    huge = b'{"id": 123456789012345678901234567890}'
    assert isinstance(jsontext.decode(huge)["id"], float)  # orjson's reading, fast
    exact = jsontext.decode(huge, exact=lambda v: not isinstance(v["id"], float))
    assert exact == {"id": 123456789012345678901234567890}
    assert jsontext.decode(b'{"n": NaN}')["n"] != 0  # orjson refuses NaN; json reads it


def test_the_receiver_reads_bodies_with_the_one_reader(monkeypatch):
    from atwh.receiver import app

    seen = []
    real = jsontext.decode
    monkeypatch.setattr(jsontext, "decode", lambda *a, **k: seen.append(a[0]) or real(*a, **k))
    body = b'{"event": {"id": 123456789012345678901234567890, "name": "x"}}'
    assert app._peek_event(body)[0] == "123456789012345678901234567890"
    assert seen == [body]


def test_raw_json_is_written_as_it_is_by_orjson_not_the_slow_path(monkeypatch):
    """RawJson goes into orjson as a Fragment; the json module is only for what orjson
    refuses (an orjson that gave up on RawJson would make every NDJSON row 10 us slower)."""
    import json

    from atwh.core import jsontext

    def refuse(*a, **kw):
        raise AssertionError("the json module was used")

    monkeypatch.setattr(json, "dumps", refuse)
    record = {"headers": jsontext.RawJson(b'[{"name":"a","value":"b"}]'), "n": 1}
    assert jsontext.dumps(record) == b'{"headers":[{"name":"a","value":"b"}],"n":1}'


def test_what_orjson_refuses_is_written_by_the_json_module_raw_json_included():
    from atwh.core import jsontext

    record = {"big": 2**70, "raw": jsontext.RawJson(b"[1]"), "lone": "\ud800"}
    assert jsontext.dumps(record) == b'{"big":1180591620717411303424,"raw":[1],"lone":"\\ud800"}'
