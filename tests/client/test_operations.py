"""Every operation goes through gql: parsed and validated against the bundled schema once,
run by gql's session over the bounded transport; gql is loaded only when one runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx
from gql.client import SyncClientSession

from atwh.client import operations, queries
from atwh.client.api import ApiClient
from atwh.client.auth import StaticToken
from tests.conftest import API_URL


@pytest.fixture
def queries_in(tmp_path, monkeypatch):
    """`queries/` replaced by a copy in tmp_path, with the caches that read it emptied."""
    for cached in (queries.load, operations.document, operations.schema):
        cached.cache_clear()
    for f in Path(str(queries.queries_dir())).iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(queries, "queries_dir", lambda: tmp_path)
    yield tmp_path
    for cached in (queries.load, operations.document, operations.schema):
        cached.cache_clear()


@respx.mock
def test_an_operation_the_schema_does_not_validate_is_never_sent(queries_in):
    (queries_in / "QueryOdd.graphql").write_text(
        "query QueryOdd($id: ID!) { webhook(id: $id) { id secretSauce } }"
    )
    route = respx.post(API_URL).mock(return_value=httpx.Response(200, json={"data": {}}))
    with ApiClient(StaticToken("t"), url=API_URL) as client:
        with pytest.raises(operations.InvalidOperation, match="secretSauce"):
            client.execute("QueryOdd", {"id": "w"})
    assert not route.called


@respx.mock
def test_an_emulator_operation_is_valid_against_the_emulator_schema_only(queries_in):
    assert operations.document("EmulatorEmitEvent")
    (queries_in / "QueryEmits.graphql").write_text(queries.load("EmulatorEmitEvent"))
    with pytest.raises(operations.InvalidOperation, match="emitEvent"):
        operations.document("QueryEmits")


@respx.mock
def test_operations_run_through_a_gql_session_and_are_parsed_once():
    route = respx.post(API_URL).mock(
        return_value=httpx.Response(200, json={"data": {"webhook": {"id": "w"}}})
    )
    operations.document.cache_clear()
    with ApiClient(StaticToken("t"), url=API_URL) as client:
        for _ in range(3):
            assert client.execute("QueryWebhook", {"id": "w"}) == {"webhook": {"id": "w"}}
        session = client._session
        assert isinstance(session, SyncClientSession)
        assert isinstance(session.transport, operations.BoundedTransport)
    assert operations.document.cache_info().misses == 1
    assert route.call_count == 3
    sent = route.calls[0].request
    assert json.loads(sent.content) == {
        "query": queries.load("QueryWebhook"),
        "variables": {"id": "w"},
    }


def test_gql_is_not_loaded_until_an_operation_runs():
    code = (
        "import sys\nfrom atwh.cli import main\nsys.argv = ['atwh', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import atwh.client.api\n"
        "print(sorted(m for m in ('gql', 'graphql') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
