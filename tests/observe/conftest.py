"""The emulator on 127.0.0.1 (port 0) for the observe tests, and an endpoint for it to
deliver to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from atwh.emulator.app import Emulator, EmulatorSettings
from atwh.server import BackgroundServer
from tests.conftest import request_body

URN = "urn:allthings:app:a1:tickets"
NODE = """
id createdDate deliveryDate status
result { statusCode body message headers { name value } }
event { id name urn payload createdDate }
retry { id }"""
DELIVERIES = (
    "query($id: ID!, $first: Int, $after: ID) { webhook(id: $id) {"
    " deliveries(first: $first, after: $after) {"
    " pageInfo { hasNextPage endCursor } nodes {" + NODE + "} } } }"
)
REGISTER = """
mutation($w: RegisterWebhookInput!) {
  registerWebhook(webhook: $w) { success message webhook { id } }
}"""
EMIT = """
mutation($name: EventName!, $urn: Urn!, $data: Json) {
  emitEvent(name: $name, urn: $urn, data: $data) { success message event { id } }
}"""


class Switch:
    """The emulator's HTTP side, switchable: while `down`, every request gets 503, except
    those the test itself makes with the `x-test: bypass` header (to emit events)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.down = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        bypass = (b"x-test", b"bypass") in scope.get("headers", [])
        if scope["type"] == "http" and self.down and not bypass:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down for the test"})
            return
        await self.app(scope, receive, send)


@dataclass
class Emu:
    app: Emulator
    url: str
    http: httpx.Client
    switch: Switch

    def data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(
            self.url,
            json={"query": query, "variables": variables},
            headers={"authorization": "Bearer t", "x-test": "bypass"},
        ).json()
        assert not answer.get("errors"), answer
        return answer["data"]

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            connection = self.data(DELIVERIES, {"id": webhook_id, "first": 100, "after": after})[
                "webhook"
            ]["deliveries"]
            out += connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return out
            after = connection["pageInfo"]["endCursor"]

    def register(self, url: str) -> str:
        w = {"url": url, "events": ["ticket.created", "ticket.updated"], "urns": [URN[:-7] + "*"]}
        result = self.data(REGISTER, {"w": w})["registerWebhook"]
        assert result["success"], result
        return str(result["webhook"]["id"])

    def emit(self, n: int) -> str:
        result = self.data(EMIT, {"name": "ticket.created", "urn": URN, "data": {"n": n}})
        assert result["emitEvent"]["success"], result
        return str(result["emitEvent"]["event"]["id"])

    def settled(self) -> bool:
        """No attempt is under way or still PENDING."""
        return all(d.status != "PENDING" for d in list(self.app.state.deliveries.values()))


@contextmanager
def emulator(**settings: Any) -> Iterator[Emu]:
    settings.setdefault("time_scale", 1e6)
    settings.setdefault("attempt_timeout", 2.0)
    settings.setdefault("log", lambda line: None)
    app = Emulator(EmulatorSettings(**settings))
    switch = Switch(app)
    with BackgroundServer(switch) as srv, httpx.Client(trust_env=False, timeout=10) as http:
        yield Emu(app, srv.url("/"), http, switch)


async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 to every POST (the emulator's URL check included)."""
    if await request_body(scope, receive, send) is None:
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def receiving() -> Iterator[str]:
    """A URL on 127.0.0.1 that accepts every delivery."""
    with BackgroundServer(endpoint) as srv:
        yield srv.url("/hook")
