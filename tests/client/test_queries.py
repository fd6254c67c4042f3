"""The GraphQL operations: valid against the published schema, shipped inside the wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from atwh.client import queries

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"


def schema(emulator: bool = False):
    sdl = queries.load(queries.SCHEMA_FILE)
    if emulator:
        sdl += "\n" + queries.load(queries.EMULATOR_SCHEMA_FILE)
    return build_schema(sdl)


@pytest.mark.parametrize("name", queries.operation_names())
def test_every_operation_is_valid_against_the_published_schema(name):
    """Operations for the real API against the published schema alone; the emulator's
    own operations (named Emulator…) against it plus what only the emulator adds."""
    errors = validate(schema(name.startswith("Emulator")), parse(queries.load(name)))
    assert errors == []


def test_only_emulator_operations_use_the_emulator_extension():
    for name in queries.operation_names():
        if not name.startswith("Emulator"):
            assert "emitEvent" not in queries.load(name)


def test_the_operations_the_commands_need_are_there():
    assert {"QueryWebhookDeliveries", "QueryWebhookDeliveriesPage"} <= set(
        queries.operation_names()
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"#.*", "", text)).strip()


def test_vendor_query_is_as_published_but_for_the_id_variable():
    published = (ROOT / "queries" / "QueryWebhookDeliveries.graphql").read_text()
    vendor_doc = (
        'query QueryWebhookDeliveries { webhook(id: "<your webhook ID here>") { id description url '
        "deliveries { totalCount nodes { id createdDate deliveryDate status result { body "
        "headers { name value } message statusCode } event { id name urn payload createdDate } "
        "} } } }"
    )
    ours = _squash(published)
    ours = ours.replace("QueryWebhookDeliveries($id: ID!)", "QueryWebhookDeliveries")
    ours = ours.replace("webhook(id: $id)", 'webhook(id: "<your webhook ID here>")')
    assert ours == vendor_doc


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="shared/reference is not beside the checkout")
def test_schema_is_the_published_one():
    ours = (ROOT / "queries" / queries.SCHEMA_FILE).read_text()
    assert ours == (REFERENCE / "webhooks-schema.graphql").read_text()


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="shared/reference is not beside the checkout")
def test_vendor_query_matches_the_vendor_page():
    page = (REFERENCE / "build-a-webhook-endpoint.md").read_text()
    block = re.search(r"```graphql\n(query QueryWebhookDeliveries.*?)```", page, re.S)
    assert block is not None
    ours = _squash((ROOT / "queries" / "QueryWebhookDeliveries.graphql").read_text())
    expected = (
        _squash(block.group(1))
        .replace("QueryWebhookDeliveries {", "QueryWebhookDeliveries($id: ID!) {", 1)
        .replace('webhook(id: "<your webhook ID here>")', "webhook(id: $id)")
    )
    assert ours == expected


@pytest.mark.slow
def test_queries_ship_inside_the_installed_wheel(tmp_path):
    """Build the wheel, install it alone into a fresh venv, read the queries from there."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("atwh-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir)  # no pip in it: this pip installs into it (--python), seconds sooner
    py = env_dir / "bin" / "python"
    subprocess.run(  # the wheel alone: reading the queries needs none of its dependencies
        [sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    code = (
        "import atwh.client.queries as o, json; "
        "print(json.dumps([str(o.queries_dir()), o.operation_names(), "
        "len(o.load('QueryWebhookDeliveries'))]))"
        "; import atwh.signature as s; print(json.dumps(str(s.vectors_file())))"
    )
    out = subprocess.run(
        [py, "-I", "-c", code],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    ).stdout
    import json

    first, second = out.splitlines()
    where, names, length = json.loads(first)
    vectors = json.loads(second)  # the published signing vectors ship beside the queries
    assert vectors.startswith(site) and vectors.endswith(
        os.path.join("atwh", "vectors", "signing.json")
    )
    assert Path(vectors).read_bytes() == (ROOT / "vectors" / "signing.json").read_bytes()
    assert where.startswith(site) and where.endswith(os.path.join("atwh", "queries"))
    assert str(ROOT) not in where
    assert names == queries.operation_names()
    assert length > 100
