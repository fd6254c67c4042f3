"""Fixtures every test shares: isolated user dirs and env, and a fake Webhooks API."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import settings
from typer.testing import CliRunner

from atwh.cli import app
from atwh.client import api as api_module
from atwh.errors import forget_secrets

API_URL = "https://webhooks.allthings.me/"
NOW = datetime.now(UTC)

# Hypothesis: no deadline (a loaded machine, or a test's first example warming caches, is
# not a failure), and fewer examples than hypothesis' 100 for the tests that do not choose
# their own; `HYPOTHESIS_PROFILE=thorough python -m pytest` tries 1000 of each.
settings.register_profile("default", deadline=None, max_examples=50)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers a core, at most 8 (most tests wait on a socket or a
    subprocess rather than compute; a file is one worker's, so more would idle)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, min(2 * (cores or 1), 8))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch) -> Iterator[None]:
    """No test reads or writes the user's real config, cache or data, or sees their env."""
    import os

    for name in list(os.environ):
        if name.startswith(("ATWH_", "ALLTHINGS_")) or name in ("SHARED_WEBHOOK_SECRET", "PORT"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATWH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ATWH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATWH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    # retries sleep for real nowhere in the tests
    monkeypatch.setattr(api_module.RetryPolicy, "__init__", _fast_retry_init(api_module))
    yield
    forget_secrets()  # the credentials one test gave are not redacted from the next one's


def _fast_retry_init(mod: Any) -> Callable[..., None]:
    original = mod.RetryPolicy.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if "sleep" not in kwargs:
            self.sleep = lambda seconds: None

    return init


def node(
    i: int,
    *,
    code: int | None = 200,
    status: str | None = None,
    event: str = "ticket.created",
    event_id: str | None = None,
    age: timedelta = timedelta(hours=1),
    message: str | None = None,
    body: str | None = '{"message":"success"}',
    retry: str | None = None,
) -> dict[str, Any]:
    """A delivery node as the API sends it."""
    created = NOW - age
    if status is None:
        status = "SUCCESS" if code is not None and 200 <= code < 300 else "FAILED"
    result = None
    if code is None and message is not None:  # no HTTP answer, but the API says why
        result = {"statusCode": None, "body": None, "message": message, "headers": []}
    if code is not None:
        result = {
            "statusCode": code,
            "body": body,
            "message": message,
            "headers": [{"name": "content-type", "value": "application/json"}],
        }
    return {
        "id": f"d{i}",
        "createdDate": created.isoformat().replace("+00:00", "Z"),
        "deliveryDate": (created + timedelta(milliseconds=250)).isoformat(),
        "status": status,
        "result": result,
        "event": {
            "id": event_id or f"e{i}",
            "name": event,
            "urn": "urn:allthings:app:a1:*",
            "payload": json.dumps({"event": {"name": event, "data": {"id": i}}}),
            "createdDate": created.isoformat(),
        },
        "retry": {"id": retry} if retry else None,
    }


@dataclass
class FakeApi:
    """The Webhooks API, enough of it: `webhook(id)` with paged deliveries."""

    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_size_cap: int = 100
    reject_paging: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)  # served first, in order

    def add(self, webhook_id: str, nodes: list[dict[str, Any]], **extra: Any) -> None:
        self.webhooks[webhook_id] = {
            "id": webhook_id,
            "description": extra.get("description", f"hook {webhook_id}"),
            "url": extra.get("url", "https://example.com/webhook"),
            "enabled": extra.get("enabled", True),
            "nodes": nodes,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.responses:
            return self.responses.pop(0)
        query, variables = body["query"], body.get("variables") or {}
        paged = "pageInfo" in query
        if paged and self.reject_paging:
            return httpx.Response(
                200,
                json={
                    "errors": [
                        {
                            "message": "Unknown argument 'first' on field 'Webhook.deliveries'.",
                            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                        }
                    ]
                },
            )
        hook = self.webhooks.get(variables.get("id"))
        if hook is None:
            return httpx.Response(200, json={"data": {"webhook": None}})
        nodes = hook["nodes"]
        data = {k: v for k, v in hook.items() if k != "nodes"}
        if not paged:
            data.pop("enabled")
            data["deliveries"] = {"totalCount": len(nodes), "nodes": nodes}
            return httpx.Response(200, json={"data": {"webhook": data}})
        first = min(variables.get("first") or self.page_size_cap, self.page_size_cap)
        start = int(variables["after"][1:]) if variables.get("after") else 0
        chunk = nodes[start : start + first]
        end = start + len(chunk)
        data["deliveries"] = {
            "totalCount": len(nodes),
            "pageInfo": {"hasNextPage": end < len(nodes), "endCursor": f"c{end}"},
            "nodes": chunk,
        }
        return httpx.Response(200, json={"data": {"webhook": data}})


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    fake = FakeApi()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(API_URL).mock(side_effect=fake)
        yield fake


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def atwh(runner: CliRunner, monkeypatch) -> Callable[..., Any]:
    """Run `atwh ARGS…` with a token set; the result has exit_code, stdout and stderr."""
    monkeypatch.setenv("ATWH_TOKEN", "test-token")

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input, prog_name="atwh")

    return run


# -- helpers the loopback tests share ------------------------------------------------------


def hmac_hex(body: bytes, secret: str) -> str:
    """The signature computed here, independently of atwh.signature."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def request_body(scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
    """For the small ASGI apps of the tests: answers the lifespan protocol (then None), or
    reads a request's whole body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return None
    if scope["type"] != "http":
        return None
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` until it is truthy; its value. Bounded: an AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@contextlib.contextmanager
def verifying_receiver(db: Any, secret: str) -> Iterator[str]:
    """`atwh serve` verifying with `secret`, storing into `db`, on a free loopback port:
    its webhook URL."""
    from atwh.receiver import ReceiverSettings, create_app
    from atwh.server import BackgroundServer

    with BackgroundServer(create_app(ReceiverSettings(db=db, secret=secret))) as srv:
        yield srv.url("/webhook")


def stored_requests(db: Any) -> list[Any]:
    """What a receiver stored in `db`, oldest first."""
    from atwh.receiver.inbox import Inbox

    with Inbox(db, create=False) as box:
        return sorted(box.records(), key=lambda r: r.id)
