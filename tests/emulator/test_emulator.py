"""`atwh emulator`: the Webhooks API emulator over real HTTP on loopback, its delivery
engine against real receivers (`atwh serve` and a scripted one), and the real CLI
(`deliveries`, `failures`, exports, `emulator emit`) driven against it."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    build_schema,
    get_introspection_query,
)

from atwh import signature
from atwh.client import queries
from atwh.emulator.app import DeliveryRec, Emulator, EmulatorSettings, EventRec, State, WebhookRec
from atwh.receiver.app import Receiver, ReceiverSettings, create_app
from atwh.server import BackgroundServer
from tests.conftest import free_port, hmac_hex, request_body, wait_for

TOKEN = "emu-token"
APP_URNS = ["urn:allthings:app:a1:*"]
URN = "urn:allthings:app:a1:tickets"
DAY = 86400.0
# 1m, 3m, 9m, 27m, 81m, 243m, 729m, then daily: the 7 days of back-off allow 14 attempts
# (the first, 7 growing retries, then 6 daily ones; a 7th daily one would pass 7 days).
ATTEMPTS_IN_7_DAYS = 14
SCHEDULED_7_DAYS = 60 + 180 + 540 + 1620 + 4860 + 14580 + 43740 + 6 * DAY  # first → last

REGISTER = """
mutation Register($w: RegisterWebhookInput!) {
  registerWebhook(webhook: $w) {
    code success message
    webhook { id createdDate url secret events urns enabled description }
  }
}"""
UPDATE = """
mutation Update($id: ID!, $w: UpdateWebhookInput!) {
  updateWebhook(id: $id, webhook: $w) {
    code success message webhook { id url events urns enabled description secret }
  }
}"""
WEBHOOK = "query($id: ID!) { webhook(id: $id) { id } }"
REMOVE = """
mutation Remove($id: ID!) { removeWebhook(id: $id) { code success message webhook { id } } }"""
EMIT = """
mutation Emit($name: EventName!, $urn: Urn!, $data: Json) {
  emitEvent(name: $name, urn: $urn, data: $data) {
    code success message webhooks event { id name urn createdDate payload }
  }
}"""
DELIVERIES = """
query Deliveries($id: ID!, $first: Int, $after: ID) {
  webhook(id: $id) {
    id url enabled secret events urns
    deliveries(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id } }
      nodes {
        id createdDate deliveryDate status
        result { statusCode body message headers { name value } }
        event { id name urn payload createdDate }
        retry { id }
        webhook { id }
      }
    }
  }
}"""


# -- helpers -----------------------------------------------------------------------------


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Emu:
    app: Emulator
    srv: BackgroundServer
    http: httpx.Client
    log: list[str]
    url: str

    def post(self, payload: Any, token: str | None = TOKEN, raw: bytes | None = None):
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        if raw is not None:
            headers["content-type"] = "application/json"
            return self.http.post(self.url, content=raw, headers=headers)
        return self.http.post(self.url, json=payload, headers=headers)

    def gql(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> dict:
        response = self.post({"query": query, "variables": variables or {}}, **kw)
        assert response.status_code < 500, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict:
        answer = self.gql(query, variables)
        assert not answer.get("errors"), answer
        return answer["data"]

    def register(self, url: str, **webhook: Any) -> dict[str, Any]:
        webhook.setdefault("events", ["ticket.created", "ticket.updated"])
        webhook.setdefault("urns", APP_URNS)
        result = self.data(REGISTER, {"w": {"url": url, **webhook}})["registerWebhook"]
        assert result["success"] is True, result
        return result["webhook"]

    def emit(self, name: str, urn: str = URN, data: Any = None) -> dict[str, Any]:
        result = self.data(EMIT, {"name": name, "urn": urn, "data": data})["emitEvent"]
        assert result["success"] is True, result
        return result

    def deliveries(self, webhook_id: str, first: int = 100) -> list[dict[str, Any]]:
        """Every delivery of a webhook over GraphQL, following the cursors."""
        out: list[dict[str, Any]] = []
        after = None
        while True:
            hook = self.data(DELIVERIES, {"id": webhook_id, "first": first, "after": after})
            connection = hook["webhook"]["deliveries"]
            out += connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return out
            after = connection["pageInfo"]["endCursor"]

    # the delivery engine's own records, read from this thread
    def records(self) -> list[DeliveryRec]:
        for _ in range(100):
            try:
                return [replace(d) for d in list(self.app.state.deliveries.values())]
            except RuntimeError:  # changed size while copying: again
                continue
        raise AssertionError("could not read the emulator's deliveries")

    def attempts(self, event_id: str) -> list[DeliveryRec]:
        return sorted(
            (d for d in self.records() if d.event_id == event_id), key=lambda d: d.attempt
        )

    def _settled_now(self, event_id: str) -> int:
        attempts = self.attempts(event_id)
        if not attempts:
            return 0
        last = attempts[-1]
        done = last.status != "PENDING" and last.next_retry_at is None and last.retry_id is None
        return len(attempts) if done else 0

    def settled(self, event_id: str) -> bool:
        """The event's chain has ended (delivered, or given up), twice in a row."""
        first = self._settled_now(event_id)
        if not first:
            return False
        time.sleep(0.03)
        return self._settled_now(event_id) == first

    def wait_settled(self, *event_ids: str, timeout: float = 15.0) -> None:
        wait_for(lambda: all(self.settled(e) for e in event_ids), timeout, f"{event_ids} to settle")

    def delivered(self, event_id: str) -> bool:
        return any(d.status == "SUCCESS" for d in self.attempts(event_id))


@contextmanager
def emulator(app: Emulator | None = None, **settings: Any) -> Iterator[Emu]:
    lines: list[str] = []
    if app is None:
        settings.setdefault("time_scale", 1e6)
        # generous: an answer slower than this is a timeout, an extra failed attempt that
        # changes the counts a test expects; on a loaded machine (CI, 2 cores) a store in
        # atwh serve can take longer than 0.3 s. The test of a slow receiver sets its own.
        settings.setdefault("attempt_timeout", 5.0)
        settings.setdefault("log", lines.append)
        app = Emulator(EmulatorSettings(**settings))
    with BackgroundServer(app) as srv, httpx.Client(trust_env=False, timeout=10) as http:
        yield Emu(app, srv, http, lines, srv.url("/"))


@dataclass
class Rcv:
    srv: BackgroundServer
    settings: ReceiverSettings
    app: Receiver

    @property
    def url(self) -> str:
        return self.srv.url(self.settings.path)

    @property
    def port(self) -> int:
        return int(self.srv.sock.getsockname()[1])

    def rows(self) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.settings.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute("SELECT * FROM requests ORDER BY id").fetchall()
        finally:
            conn.close()


@contextmanager
def receiver(tmp_path: Path, port: int = 0, **settings: Any) -> Iterator[Rcv]:
    """`atwh serve`'s receiver, as the command builds it."""
    settings.setdefault("db", tmp_path / "inbox.sqlite3")
    s = ReceiverSettings(**settings)
    app = create_app(s)
    with BackgroundServer(app, port=port) as srv:
        yield Rcv(srv, s, app)


@dataclass
class Recorder:
    """A webhook endpoint that answers signed requests with the codes given, in turn
    (200 once they run out, and always to the unsigned URL check), and keeps every request."""

    codes: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    url: str = ""  # once it listens

    def signed(self) -> list[tuple[dict[str, str], bytes, int]]:
        return [r for r in list(self.requests) if signature.SIGNATURE_HEADER in r[0]]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        code = 200
        if signature.SIGNATURE_HEADER in headers and self.codes:
            code = self.codes.pop(0)
        self.requests.append((headers, body, code))
        answer = json.dumps({"message": "ok" if code == 200 else f"failed {code}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(b"content-type", b"application/json"), (b"x-recorder", b"yes")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@contextmanager
def recorder(codes: list[int] | None = None) -> Iterator[Recorder]:
    rec = Recorder(list(codes or []))
    with BackgroundServer(rec) as srv:
        rec.url = srv.url("/hook")
        yield rec


def emitted_id(stdout: str, name: str) -> str:
    match = re.fullmatch(rf"{re.escape(name)} (\S+): (.+)", stdout.strip())
    assert match, stdout
    return match.group(1)


def chain_of(nodes: list[dict[str, Any]], event_id: str) -> list[dict[str, Any]]:
    """An event's attempts, first to last, by following `retry` from the one nothing points at."""
    mine = {n["id"]: n for n in nodes if n["event"]["id"] == event_id}
    pointed = {n["retry"]["id"] for n in mine.values() if n["retry"]}
    (head,) = [n for i, n in mine.items() if i not in pointed]
    out = [head]
    while out[-1]["retry"]:
        out.append(mine[out[-1]["retry"]["id"]])
    assert len(out) == len(mine), "every attempt is on the chain"
    return out


# -- the schema as published ---------------------------------------------------------------


def _type_str(t: Any) -> str:
    return str(t)


def describe(schema: GraphQLSchema) -> dict[str, dict[str, Any]]:
    """Every named type: kind, fields (type, arguments with types), interfaces, values."""
    out: dict[str, dict[str, Any]] = {}
    for name, t in schema.type_map.items():
        if name.startswith("__"):
            continue
        entry: dict[str, Any] = {"kind": type(t).__name__}
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            entry["interfaces"] = sorted(i.name for i in t.interfaces)
            entry["fields"] = {
                f: (_type_str(d.type), {a: _type_str(ad.type) for a, ad in d.args.items()})
                for f, d in t.fields.items()
            }
        elif isinstance(t, GraphQLInputObjectType):
            entry["fields"] = {f: _type_str(d.type) for f, d in t.fields.items()}
        elif isinstance(t, GraphQLEnumType):
            entry["values"] = sorted(t.values)
        elif isinstance(t, GraphQLUnionType):
            entry["types"] = sorted(m.name for m in t.types)
        else:
            assert isinstance(t, GraphQLScalarType)
        out[name] = entry
    return out


@pytest.fixture(scope="module")
def shared() -> Iterator[Emu]:
    """One emulator for the tests that only read or add webhooks of their own."""
    with emulator() as emu:
        yield emu


@pytest.fixture
def emu() -> Iterator[Emu]:
    """An emulator of the test's own, for tests that deliver."""
    with emulator() as e:
        yield e


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Recorder]:
    with recorder() as rec:
        yield rec


def test_introspection_matches_the_published_schema_type_by_type(shared):
    answer = shared.data(get_introspection_query(descriptions=True))
    served = describe(build_client_schema(answer))
    published = describe(build_schema(queries.load(queries.SCHEMA_FILE)))

    assert set(served) - set(published) == {"EmitEventResult"}
    assert set(published) <= set(served)
    for name, expected in published.items():
        got = served[name]
        if name == "Mutation":
            assert set(got["fields"]) - set(expected["fields"]) == {"emitEvent"}
            got = {**got, "fields": {k: v for k, v in got["fields"].items() if k != "emitEvent"}}
        assert got == expected, name
    client = build_client_schema(answer)
    assert client.query_type is not None and client.query_type.name == "Query"
    assert client.mutation_type is not None and client.mutation_type.name == "Mutation"
    emit = served["Mutation"]["fields"]["emitEvent"]
    assert emit == ("EmitEventResult!", {"name": "EventName!", "urn": "Urn!", "data": "Json"})
    assert served["EmitEventResult"]["interfaces"] == ["MutationResult"]


def test_a_bearer_token_is_required(shared):
    query = {"query": "{ __typename }"}
    assert shared.post(query, token=None).status_code == 401
    for header in ("Bearer", "Basic abc", "abc"):
        bare = shared.http.post(shared.url, json=query, headers={"authorization": header})
        assert bare.status_code == 401, header
    refused = shared.post(query, token=None)
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for any_token in ("x", "another-one"):  # without --token, any non-empty one
        ok = shared.post(query, token=any_token)
        assert ok.status_code == 200 and ok.json() == {"data": {"__typename": "Query"}}


def test_with_a_token_set_only_that_token_is_accepted(atwh):
    with emulator(token="right") as emu:
        query = {"query": "{ __typename }"}
        assert emu.post(query, token="wrong").status_code == 401
        assert emu.post(query, token=None).status_code == 401
        assert emu.post(query, token="right").status_code == 200
        refused = atwh("deliveries", "x", "--api-url", emu.url, "--token", "wrong")
        assert refused.exit_code == 3, refused.stderr
        missing = atwh("deliveries", "nope", "--api-url", emu.url, "--token", "right")
        assert missing.exit_code == 4, missing.stderr


def test_registerable_events_and_webhook_queries(shared, endpoint):
    events = shared.data("{ registerableWebhookEvents { namespace eventName description } }")[
        "registerableWebhookEvents"
    ]
    names = {e["eventName"] for e in events}
    assert {"ticket.created", "ticket.updated", "community-article.published"} <= names
    assert all(e["namespace"] and e["description"] for e in events)
    assert shared.data('{ webhook(id: "no-such-id") { id } }') == {"webhook": None}

    hook = shared.register(endpoint.url, description="reg test", events=["ticket.created"])
    assert hook["secret"] and len(hook["secret"]) >= 32
    assert hook["url"] == endpoint.url and hook["enabled"] is True
    assert hook["events"] == ["ticket.created"] and hook["urns"] == APP_URNS
    assert abs(when(hook["createdDate"]) - datetime.now(UTC)) < timedelta(seconds=30)
    other = shared.register(endpoint.url)
    assert other["secret"] != hook["secret"] and other["id"] != hook["id"]
    got = shared.data(DELIVERIES, {"id": hook["id"]})["webhook"]
    assert got["secret"] == hook["secret"] and got["deliveries"]["totalCount"] == 0


def test_registering_checks_the_url_answers_200_to_an_unsigned_request(shared, tmp_path):
    with recorder() as rec:
        shared.register(rec.url)
        (check,) = rec.requests
        headers, body, code = check
        assert signature.SIGNATURE_HEADER not in headers
        assert signature.TIMESTAMP_HEADER not in headers
        assert code == 200
    with receiver(tmp_path) as rcv:  # atwh serve sees the check as a test event
        shared.register(rcv.url)
        assert [r["verdict"] for r in rcv.rows()] == ["test"]
        wrong_path = shared.data(REGISTER, {"w": {"url": rcv.srv.url("/elsewhere"), **_hook()}})
    result = wrong_path["registerWebhook"]
    assert result["success"] is False and result["webhook"] is None
    assert "404" in result["message"]
    dead = shared.data(REGISTER, {"w": {"url": f"http://127.0.0.1:{free_port()}/", **_hook()}})
    assert dead["registerWebhook"]["success"] is False
    assert dead["registerWebhook"]["webhook"] is None


def _hook(**extra: Any) -> dict[str, Any]:
    return {"events": ["ticket.created"], "urns": APP_URNS, **extra}


def _rejected(answer: dict[str, Any], field_name: str | None = None) -> str:
    """The reason given for bad input: a GraphQL error, or a result with success false."""
    if answer.get("errors"):
        return " ".join(e["message"] for e in answer["errors"])
    assert field_name is not None, answer
    result = answer["data"][field_name]
    assert result["success"] is False and result["webhook"] is None, result
    return str(result["message"])


@pytest.mark.parametrize(
    "webhook, says",
    [
        # http only for loopback hosts (TEST-NET and private addresses: nothing answers)
        (_hook(url="http://192.0.2.10/hook"), "https"),
        (_hook(url="http://10.1.2.3/hook"), "https"),
        (_hook(url="ftp://127.0.0.1/hook"), "url"),
        (_hook(url="not a url"), "url"),
        ({"events": ["ticket.exploded"], "urns": APP_URNS, "url": "ENDPOINT"}, "ticket.exploded"),
        ({"events": [], "urns": APP_URNS, "url": "ENDPOINT"}, "event"),
        ({"events": ["ticket.created"], "urns": [], "url": "ENDPOINT"}, "urn"),
        ({"events": ["ticket.created"], "url": "ENDPOINT"}, "urns"),
    ],
)
def test_bad_registrations_are_refused_not_500(shared, endpoint, webhook, says):
    webhook = {k: (endpoint.url if v == "ENDPOINT" else v) for k, v in webhook.items()}
    before = len(shared.app.state.webhooks)
    response = shared.post({"query": REGISTER, "variables": {"w": webhook}})
    assert response.status_code < 500
    reason = _rejected(response.json(), "registerWebhook")
    assert says.lower() in reason.lower()
    assert len(shared.app.state.webhooks) == before


@pytest.mark.parametrize(
    "webhook, scalar",
    [
        ({"events": ["Ticket Created!"]}, "EventName"),
        ({"events": ["ticket created"]}, "EventName"),
        ({"events": [42]}, "EventName"),
        ({"urns": ["not-a-urn"]}, "Urn"),
        ({"urns": ["urn:allthings:app:a1 tickets"]}, "Urn"),
        ({"url": "http://192.0.2.10/hook"}, "Url"),
    ],
)
def test_bad_scalars_are_graphql_errors(shared, endpoint, webhook, scalar):
    """The schema's scalars check their values, in variables and in literals."""
    full = {"events": ["ticket.created"], "urns": APP_URNS, "url": endpoint.url, **webhook}
    before = len(shared.app.state.webhooks)
    response = shared.post({"query": REGISTER, "variables": {"w": full}})
    assert response.status_code < 500
    answer = response.json()
    assert answer.get("errors") and answer.get("data") is None, answer
    assert scalar in " ".join(e["message"] for e in answer["errors"])
    events, urns, url = (json.dumps(full[k]) for k in ("events", "urns", "url"))
    literal = f"mutation {{ registerWebhook(webhook: {{events: {events}, urns: {urns}, url: {url}}}) {{ code }} }}"  # noqa: E501
    answer = shared.gql(literal)
    assert answer.get("errors") and answer.get("data") is None, answer
    assert len(shared.app.state.webhooks) == before


@pytest.mark.parametrize(
    "name, urn",
    [
        ("Ticket.Created", URN),
        ("ticket created", URN),
        (["ticket.created"], URN),
        ("ticket.created", "urn:nope"),
    ],
)
def test_emit_checks_its_scalars(shared, name, urn):
    before = len(shared.app.state.events)
    answer = shared.gql(EMIT, {"name": name, "urn": urn})
    assert answer.get("errors") and answer.get("data") is None, answer
    literal = (
        f"mutation {{ emitEvent(name: {json.dumps(name)}, urn: {json.dumps(urn)}) {{ code }} }}"
    )
    answer = shared.gql(literal)
    assert answer.get("errors") and answer.get("data") is None, answer
    assert len(shared.app.state.events) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "{ webhook(id: 1 { id } }"},  # syntax
        {"query": "{ nope }"},
        {"query": '{ webhook(id: "x") { deliveries(first: "ten") { totalCount } } }'},
        {"query": EMIT, "variables": {"name": "ticket.created", "urn": 42}},
        {"query": EMIT},
        {"query": "{ webhooks(filter: {}) { totalCount } }"},
        {"query": '{ webhooks(filter: {appId: "a1"}, after: "%%%") { totalCount } }'},
        {"query": "query A { __typename } query B { __typename }"},
        {"query": "{ __typename }", "variables": [1]},
        {"query": 7},
        [],
    ],
)
def test_bad_requests_never_get_a_500(shared, payload):
    response = shared.post(payload)
    assert response.status_code in (200, 400), response.text
    assert response.json()["errors"], response.text


@pytest.mark.parametrize("raw", [b"{not json", b"[" * 100_000 + b"]" * 100_000])
def test_a_body_that_is_not_json_is_400(shared, raw):
    response = shared.post(None, raw=raw)
    assert response.status_code == 400 and response.json()["errors"]


@pytest.mark.parametrize(
    "webhook", [{"urns": ["nope"]}, {"events": ["Not An Event"]}, {"url": "http://192.0.2.10/"}]
)
def test_update_checks_its_scalars(shared, endpoint, webhook):
    hook = shared.register(endpoint.url)
    answer = shared.gql(UPDATE, {"id": hook["id"], "w": webhook})
    assert answer.get("errors") and answer.get("data") is None, answer
    got = shared.data(DELIVERIES, {"id": hook["id"]})["webhook"]
    assert (got["urns"], got["events"], got["url"]) == (hook["urns"], hook["events"], hook["url"])


def test_update_and_remove(shared, endpoint):
    hook = shared.register(endpoint.url, description="before")
    answer = shared.data(
        UPDATE,
        {"id": hook["id"], "w": {"events": ["ticket.deleted"], "description": "after"}},
    )["updateWebhook"]
    assert answer["success"] is True
    got = answer["webhook"]
    assert got["events"] == ["ticket.deleted"] and got["description"] == "after"
    assert got["urns"] == APP_URNS and got["url"] == endpoint.url
    assert got["secret"] == hook["secret"]

    dead = f"http://127.0.0.1:{free_port()}/gone"
    moved = shared.data(UPDATE, {"id": hook["id"], "w": {"url": dead}})["updateWebhook"]
    assert moved["success"] is False  # the new URL is checked too
    assert shared.data(DELIVERIES, {"id": hook["id"]})["webhook"]["url"] == endpoint.url
    with recorder() as other:
        moved = shared.data(UPDATE, {"id": hook["id"], "w": {"url": other.url}})["updateWebhook"]
        assert moved["success"] is True and moved["webhook"]["url"] == other.url
        assert len(other.requests) == 1
    missing = shared.data(UPDATE, {"id": "no-such", "w": {"enabled": False}})["updateWebhook"]
    assert missing["success"] is False and missing["webhook"] is None

    removed = shared.data(REMOVE, {"id": hook["id"]})["removeWebhook"]
    assert removed["success"] is True and removed["webhook"]["id"] == hook["id"]
    assert shared.data("query($id: ID!) { webhook(id: $id) { id } }", {"id": hook["id"]}) == {
        "webhook": None
    }
    again = shared.data(REMOVE, {"id": hook["id"]})["removeWebhook"]
    assert again["success"] is False


# -- delivery ------------------------------------------------------------------------------


def test_a_delivery_is_signed_over_the_exact_body_and_recorded(emu):
    with recorder() as rec:
        hook = emu.register(rec.url)
        data = {"id": "T-1", "title": "Leaking tap", "nested": {"ü": [1, 2.5, None]}}
        emitted = emu.emit("ticket.created", URN, data)
        assert emitted["webhooks"] == 1 and emitted["code"]
        event = emitted["event"]
        assert event["name"] == "ticket.created" and event["urn"] == URN
        wait_for(lambda: rec.signed(), what="the signed delivery")
        (headers, body, code) = rec.signed()[0]

    assert code == 200
    assert headers[signature.SIGNATURE_HEADER] == hmac_hex(body, hook["secret"])
    assert signature.signature_matches(body, headers[signature.SIGNATURE_HEADER], hook["secret"])
    assert not signature.signature_matches(body, headers[signature.SIGNATURE_HEADER], "other")
    assert (
        signature.check(
            body,
            headers[signature.SIGNATURE_HEADER],
            headers[signature.TIMESTAMP_HEADER],
            hook["secret"],
        )
        is None
    )
    stamp = int(headers[signature.TIMESTAMP_HEADER])
    assert abs(stamp / 1000 - time.time()) < 30
    assert headers["content-type"].startswith("application/json")
    sent = json.loads(body)
    assert list(sent) == ["event"]
    assert set(sent["event"]) == {"id", "name", "urn", "createdDate", "data"}
    assert sent["event"]["id"] == event["id"]
    assert sent["event"]["name"] == "ticket.created" and sent["event"]["urn"] == URN
    assert sent["event"]["data"] == data
    assert when(sent["event"]["createdDate"]) == when(event["createdDate"])

    wait_for(lambda: emu.delivered(event["id"]), what="SUCCESS")
    (d,) = emu.deliveries(hook["id"])
    assert d["status"] == "SUCCESS" and d["retry"] is None
    assert d["webhook"]["id"] == hook["id"]
    assert d["result"]["statusCode"] == 200
    assert json.loads(d["result"]["body"]) == {"message": "ok"}
    assert {"name": "x-recorder", "value": "yes"} in d["result"]["headers"]
    assert when(d["deliveryDate"]) >= when(d["createdDate"])
    assert d["event"]["payload"] == body.decode()
    assert d["event"]["id"] == event["id"]


def test_500_then_200_is_a_chain_linked_by_retry(emu, atwh):
    with recorder([500, 503, 200]) as rec:
        hook = emu.register(rec.url)
        event = emu.emit("ticket.updated", URN, {"id": "T-2"})["event"]
        emu.wait_settled(event["id"])
        assert [code for _, _, code in rec.signed()] == [500, 503, 200]
        bodies = {b for _, b, _ in rec.signed()}
        assert len(bodies) == 1  # every attempt sends the same event, byte for byte
    chain = chain_of(emu.deliveries(hook["id"]), event["id"])
    assert [d["status"] for d in chain] == ["FAILED", "FAILED", "SUCCESS"]
    assert [d["result"]["statusCode"] for d in chain] == [500, 503, 200]
    assert json.loads(chain[0]["result"]["body"]) == {"message": "failed 500"}
    created = [when(d["createdDate"]) for d in chain]
    assert created == sorted(created)
    assert chain[-1]["retry"] is None
    lines = [line for line in emu.log if event["id"][:8] in line]
    assert len(lines) == 3
    assert all("ticket.updated" in line and rec.url in line for line in lines)
    assert "500" in lines[0] and "next retry" in lines[0]
    assert "200" in lines[2] and "next retry" not in lines[2]

    detail = atwh("deliveries", hook["id"], "--id", chain[0]["id"], "--api-url", emu.url)
    assert detail.exit_code == 0, detail.stderr
    assert "Attempts for this event (3)" in detail.stdout


def test_retries_stop_at_the_7_day_horizon(emu):
    with recorder([400] * 100) as rec:
        hook = emu.register(rec.url, events=["community-article.published"])
        event = emu.emit("community-article.published", URN, {"id": "A-1"})["event"]
        emu.wait_settled(event["id"])
        assert len(rec.signed()) == ATTEMPTS_IN_7_DAYS
    chain = chain_of(emu.deliveries(hook["id"]), event["id"])
    assert len(chain) == ATTEMPTS_IN_7_DAYS
    assert {d["status"] for d in chain} == {"FAILED"}
    assert {d["result"]["statusCode"] for d in chain} == {400}
    # the schedule, in emulated time: 1m, 3m, 9m, … 729m, then daily
    delays = [60.0 * 3**i for i in range(7)] + [DAY] * 6
    elapsed = [d.emulated_elapsed for d in emu.attempts(event["id"])]
    assert elapsed == [sum(delays[:i]) for i in range(ATTEMPTS_IN_7_DAYS)]
    assert elapsed[-1] == SCHEDULED_7_DAYS
    # and in real time, divided by the time scale (1e6): each retry waited at least its
    # delay (7 days take 0.58 s, a daily one 86 ms); the dates are to the millisecond. Only
    # lower bounds: on a loaded machine an attempt may take any time longer.
    created = [when(d["createdDate"]).timestamp() for d in chain]
    gaps = [b - a for a, b in zip(created, created[1:], strict=False)]
    assert all(g >= delay / 1e6 - 0.002 for g, delay in zip(gaps, delays, strict=True)), gaps
    assert created[-1] - created[0] >= SCHEDULED_7_DAYS / 1e6 - 0.002
    lines = [line for line in emu.log if event["id"][:8] in line]
    assert len(lines) == ATTEMPTS_IN_7_DAYS
    assert all("400" in line and rec.url in line for line in lines)
    assert all("next retry" in line for line in lines[:-1])
    assert "next retry" not in lines[-1]
    assert "1m" in lines[0]


def test_a_disabled_webhook_gets_nothing(emu):
    with recorder() as rec:
        hook = emu.register(rec.url, enabled=False, urns=["urn:allthings:app:dis:*"])
        assert hook["enabled"] is False
        urn = "urn:allthings:app:dis:tickets"
        assert emu.emit("ticket.created", urn)["webhooks"] == 0
        emu.data(UPDATE, {"id": hook["id"], "w": {"enabled": True}})
        on = emu.emit("ticket.created", urn)
        assert on["webhooks"] == 1
        wait_for(lambda: emu.delivered(on["event"]["id"]), what="the enabled delivery")
        emu.data(UPDATE, {"id": hook["id"], "w": {"enabled": False}})
        assert emu.emit("ticket.created", urn)["webhooks"] == 0
        time.sleep(0.2)
        assert len(rec.signed()) == 1
    assert len(emu.deliveries(hook["id"])) == 1


def test_an_event_goes_to_webhooks_whose_event_and_urn_match(emu):
    with recorder() as rec:
        wild = emu.register(rec.url, urns=["urn:allthings:app:w1:*"], events=["ticket.created"])
        exact = emu.register(
            rec.url,
            urns=["urn:allthings:project:p9:tickets", "urn:allthings:app:w1:*"],
            events=["ticket.created", "ticket.deleted"],
        )
        cases = [
            ("ticket.created", "urn:allthings:app:w1:tickets", {wild["id"], exact["id"]}),
            ("ticket.created", "urn:allthings:app:w1:a:b", {wild["id"], exact["id"]}),
            ("ticket.deleted", "urn:allthings:app:w1:tickets", {exact["id"]}),
            ("ticket.created", "urn:allthings:project:p9:tickets", {exact["id"]}),
            ("ticket.created", "urn:allthings:project:p9:other", set()),
            ("ticket.created", "urn:allthings:app:w2:tickets", set()),
            ("booking.created", "urn:allthings:app:w1:tickets", set()),
        ]
        for name, urn, expected in cases:
            emitted = emu.emit(name, urn)
            assert emitted["webhooks"] == len(expected), (name, urn)
            event_id = emitted["event"]["id"]
            if expected:
                n = len(expected)
                wait_for(
                    lambda e=event_id, n=n: (
                        len(emu.attempts(e)) == n
                        and all(d.status == "SUCCESS" for d in emu.attempts(e))
                    ),
                    what=f"{name} {urn}",
                )
            got = {d.webhook_id for d in emu.attempts(event_id)}
            assert got == expected, (name, urn)


# -- receivers that fail ------------------------------------------------------------------


def test_a_receiver_that_is_down_gets_null_results_then_recovers(tmp_path):
    with emulator(time_scale=1e5) as emu:
        with receiver(tmp_path) as first:
            port = first.port
            hook = emu.register(first.url)
        event = emu.emit("ticket.created", URN, {"id": "T-3"})["event"]
        wait_for(
            lambda: sum(d.status == "FAILED" for d in emu.attempts(event["id"])) >= 2,
            what="two refused attempts",
        )
        with receiver(tmp_path, port=port, secret=hook["secret"]) as second:
            wait_for(lambda: emu.delivered(event["id"]), what="the delivery after recovery")
            emu.wait_settled(event["id"])
            rows = second.rows()
        nodes = emu.deliveries(hook["id"])
    chain = chain_of(nodes, event["id"])
    assert len(chain) >= 3
    for d in chain[:-1]:
        assert d["status"] == "FAILED" and d["result"] is None and d["deliveryDate"] is None
    assert chain[-1]["status"] == "SUCCESS" and chain[-1]["result"]["statusCode"] == 200
    assert [r["verdict"] for r in rows if r["event_id"] == event["id"]] == ["verified"]
    lines = [line for line in emu.log if event["id"][:8] in line]
    assert "no answer" in lines[0] and "next retry" in lines[0]


def test_a_slow_receiver_times_out_with_a_null_result(tmp_path):
    with emulator(time_scale=1e5) as emu, receiver(tmp_path) as rcv:
        # registered with the generous timeout: the URL check is bounded by it too, and on a
        # loaded machine the receiver's answer to it may take longer than 0.3 s
        hook = emu.register(rcv.url)
        emu.app.s.attempt_timeout = 0.3
        rcv.settings.delay = 0.8
        event = emu.emit("ticket.updated", URN, {"id": "T-4"})["event"]
        (pending,) = emu.deliveries(hook["id"])  # the first attempt is waiting for its answer
        assert pending["status"] == "PENDING"
        assert pending["result"] is None and pending["deliveryDate"] is None
        wait_for(lambda: emu.attempts(event["id"])[0].status == "FAILED", what="the timeout")
        emu.app.s.attempt_timeout = 5.0  # the retries are not what this test is about
        rcv.settings.delay = 0.0
        wait_for(lambda: emu.delivered(event["id"]), what="the delivery once fast again")
        emu.wait_settled(event["id"])
        nodes = emu.deliveries(hook["id"])
    chain = chain_of(nodes, event["id"])
    assert chain[0]["status"] == "FAILED" and chain[0]["result"] is None
    assert chain[-1]["status"] == "SUCCESS" and chain[-1]["result"]["statusCode"] == 200
    first_line = next(line for line in emu.log if event["id"][:8] in line)
    assert "timeout" in first_line and "0.3" in first_line


def test_atwh_serve_answering_500_then_200(tmp_path):
    with emulator(time_scale=1e5) as emu, receiver(tmp_path) as rcv:
        hook = emu.register(rcv.url)
        rcv.settings.secret = hook["secret"]
        rcv.app.simulation.respond = 500
        event = emu.emit("ticket.created", URN, {"id": "T-5"})["event"]
        wait_for(
            lambda: sum(d.status == "FAILED" for d in emu.attempts(event["id"])) >= 2,
            what="two 500s",
        )
        rcv.app.simulation.respond = None
        wait_for(lambda: emu.delivered(event["id"]), what="the delivery after the 500s")
        emu.wait_settled(event["id"])
        nodes = emu.deliveries(hook["id"])
    chain = chain_of(nodes, event["id"])
    assert len(chain) >= 3
    assert {d["result"]["statusCode"] for d in chain[:-1]} == {500}
    assert {d["status"] for d in chain[:-1]} == {"FAILED"}
    assert chain[-1]["result"]["statusCode"] == 200 and chain[-1]["status"] == "SUCCESS"


# -- the whole loop through the CLI ---------------------------------------------------------


def test_register_emit_deliver_to_atwh_serve_then_the_cli_shows_it(tmp_path, atwh):
    with emulator() as emu:
        with receiver(tmp_path) as rcv:
            hook, ids, rows = _deliver_to_atwh_serve(emu, rcv, atwh)
        _the_cli_shows_it(emu.url, hook, ids, rows, tmp_path, atwh)


def _deliver_to_atwh_serve(emu: Emu, rcv: Rcv, atwh: Any) -> tuple[dict, dict, list]:
    hook = emu.register(
        rcv.url, events=["ticket.created", "ticket.updated", "community-article.published"]
    )
    rcv.settings.secret = hook["secret"]  # from now on the receiver verifies
    url = ["--api-url", emu.url]
    ids = {}
    for name, data in [
        ("ticket.created", '{"id": "T-1", "title": "Leaking tap"}'),
        ("ticket.updated", '{"id": "T-1", "delta": {"status": {"to": "closed"}}}'),
        ("community-article.published", '{"id": "A-1"}'),
    ]:
        result = atwh("emulator", "emit", name, "--urn", URN, "--data", data, *url)
        assert result.exit_code == 0, result.stderr
        assert "1 webhook" in result.stdout
        ids[name] = emitted_id(result.stdout, name)
    emu.wait_settled(*ids.values())
    rows = rcv.rows()
    return hook, ids, rows


def _the_cli_shows_it(api_url: str, hook: dict, ids: dict, rows: list, tmp_path, atwh) -> None:
    url = ["--api-url", api_url]
    stored = {r["event_id"]: r for r in rows if r["event_id"]}
    assert set(stored) == set(ids.values())  # the test request carries no event
    for name in ("ticket.created", "ticket.updated"):  # signed with the webhook's secret
        assert (stored[ids[name]]["verdict"], stored[ids[name]]["answer_code"]) == ("verified", 200)
    rejected = stored[ids["community-article.published"]]
    assert (rejected["answer_code"], rejected["reason"]) == (400, "unexpected_event")
    assert all(r["reason"] != "bad_signature" for r in rows)
    total = 2 + ATTEMPTS_IN_7_DAYS

    table = atwh("deliveries", hook["id"], "--format", "table", *url)
    assert table.exit_code == 0, table.stderr
    assert f"Webhook {hook['id']}" in table.stdout
    assert f"{total} deliveries ({total} shown)" in table.stdout
    for text in ("ticket.created", "ticket.updated", "community-article.published", "400"):
        assert text in table.stdout

    as_json = atwh("deliveries", hook["id"], "--json", *url)
    assert as_json.exit_code == 0, as_json.stderr
    nodes = json.loads(as_json.stdout)
    assert len(nodes) == total and len({n["id"] for n in nodes}) == total
    codes = {n["event"]["name"]: set() for n in nodes}
    for n in nodes:
        codes[n["event"]["name"]].add(n["result"]["statusCode"])
    assert codes == {
        "ticket.created": {200},
        "ticket.updated": {200},
        "community-article.published": {400},
    }
    chain = chain_of(nodes, ids["community-article.published"])
    assert len(chain) == ATTEMPTS_IN_7_DAYS

    failures = atwh("failures", hook["id"], "--since", "1h", "--format", "table", *url)
    assert failures.exit_code == 0, failures.stderr
    out = failures.stdout
    assert f"{ATTEMPTS_IN_7_DAYS} failed attempts in {total} deliveries" in out
    assert "1 event still failing" in out
    row = next(line for line in out.splitlines() if line.startswith("HTTP 400"))
    assert re.search(rf"community-article\.published\s+{ATTEMPTS_IN_7_DAYS}\s+1\s+0\s+1\s", row)
    assert "ticket.created" not in out

    later = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    none_since = atwh("failures", hook["id"], "--since", later, "--exit-code", *url)
    assert none_since.exit_code == 0, none_since.stderr
    assert none_since.stdout == "" and "is in the future" in none_since.stderr
    some = atwh("failures", hook["id"], "--since", "10m", "--exit-code", *url)
    assert some.exit_code == 1

    out_csv = tmp_path / "deliveries.csv"
    exported = atwh("deliveries", hook["id"], "-o", str(out_csv), *url)
    assert exported.exit_code == 0, exported.stderr
    records = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(records) == total
    assert {r["event_id"] for r in records} == set(ids.values())
    assert sum(r["failed"] == "true" for r in records) == ATTEMPTS_IN_7_DAYS

    out_nd = tmp_path / "failures.ndjson"
    exported = atwh("failures", hook["id"], "--since", "1h", "-o", str(out_nd), *url)
    assert exported.exit_code == 0, exported.stderr
    lines = [json.loads(line) for line in out_nd.read_text().splitlines()]
    assert len(lines) == ATTEMPTS_IN_7_DAYS
    assert {line["webhookId"] for line in lines} == {hook["id"]}
    assert {line["result"]["statusCode"] for line in lines} == {400}


def test_emit_prints_the_event(atwh):
    with emulator() as emu:
        url = ["--api-url", emu.url]
        plain = atwh(
            "emulator", "emit", "ticket.created", "--urn", URN, "--data", '{"id": 1}', *url
        )
        assert plain.exit_code == 0, plain.stderr
        event_id = emitted_id(plain.stdout, "ticket.created")
        assert event_id in emu.app.state.events
        assert json.loads(emu.app.state.events[event_id].payload)["event"]["data"] == {"id": 1}
        assert "0 webhooks" in plain.stdout

        as_json = atwh("emulator", "emit", "ticket.updated", "--urn", URN, "--json", *url)
        assert as_json.exit_code == 0, as_json.stderr
        answer = json.loads(as_json.stdout)
        assert answer["success"] is True and answer["webhooks"] == 0
        assert answer["event"]["name"] == "ticket.updated" and answer["event"]["urn"] == URN

        bad = atwh("emulator", "emit", "ticket.created", "--urn", URN, "--data", "{nope", *url)
        assert bad.exit_code == 2
        assert len(bad.stderr.strip().splitlines()) == 1 and "--data" in bad.stderr
        assert bad.stdout == ""
        assert len(emu.app.state.events) == 2


@pytest.mark.parametrize("name", ["Not An Event", "", "Ticket.Created"])
def test_emit_of_a_bad_event_name_is_a_usage_error(atwh, emu, name):
    """Said before anything is sent (exit 2, as `webhooks create --event` says it), not as
    the emulator's GraphQL coercion error (exit 5); the emulator's own check of the
    EventName scalar is tested with createWebhook."""
    bad_name = atwh("emulator", "emit", name, "--urn", URN, "--api-url", emu.url)
    assert bad_name.exit_code == 2, bad_name.stdout
    assert bad_name.stderr.startswith(f"Error: NAME {name!r} is not an event name")
    assert len(bad_name.stderr.strip().splitlines()) == 1 and "Variable" not in bad_name.stderr
    assert emu.app.state.events == {}


def test_emit_reads_the_emulator_url_and_token_from_the_environment(atwh, monkeypatch):
    with emulator(token="env-token") as emu:
        monkeypatch.setenv("ATWH_EMULATOR_URL", emu.url)  # ATWH_API_URL is the real API's
        refused = atwh("emulator", "emit", "ticket.created", "--urn", URN)
        assert refused.exit_code == 3  # the fixture's ATWH_TOKEN is not this one
        monkeypatch.setenv("ATWH_TOKEN", "env-token")
        ok = atwh("emulator", "emit", "ticket.created", "--urn", URN)
        assert ok.exit_code == 0, ok.stderr
        assert len(emu.app.state.events) == 1


def test_emit_without_credentials_uses_a_placeholder_token_the_emulator_takes(atwh, monkeypatch):
    """Without ATWH_TOKEN, emit ended in exit 3 and a three-line message about OAuth client
    credentials, though the local emulator takes any token: it is let in, and a command it
    suggests carries the same placeholder."""
    from atwh.cli.emulator import EMULATOR_TOKEN

    monkeypatch.delenv("ATWH_TOKEN")
    monkeypatch.setenv("ATWH_CONFIG", "/nonexistent/atwh.toml")
    for name in ("ALLTHINGS_OAUTH_CLIENT_ID", "ALLTHINGS_OAUTH_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with emulator() as emu:
        sent = atwh("emulator", "emit", "ticket.created", "--urn", URN, "--emulator-url", emu.url)
        assert sent.exit_code == 0, sent.stderr
        assert len(emu.app.state.events) == 1
        assert f"--token {EMULATOR_TOKEN}" in sent.stderr  # the suggested create command
    with emulator(token="only-this") as emu:  # started with --token: refused, as before
        refused = atwh(
            "emulator", "emit", "ticket.created", "--urn", URN, "--emulator-url", emu.url
        )
        assert refused.exit_code == 3


# -- paging ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> Iterator[Emu]:
    with emulator(history=250, seed=11) as emu:
        yield emu


def test_paging_default_cap_and_cursors(history):
    page = history.data(DELIVERIES, {"id": "wh-history"})["webhook"]["deliveries"]
    assert page["totalCount"] == 250
    assert len(page["nodes"]) == 20 and page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False

    capped = history.data(DELIVERIES, {"id": "wh-history", "first": 500})["webhook"]
    assert len(capped["deliveries"]["nodes"]) == 100

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = history.data(DELIVERIES, {"id": "wh-history", "first": 37, "after": after})
        connection = page["webhook"]["deliveries"]
        nodes, edges = connection["nodes"], connection["edges"]
        assert [e["node"]["id"] for e in edges] == [n["id"] for n in nodes]
        for e in edges:  # opaque: not the id, and the id is not readable in it
            assert e["cursor"] != e["node"]["id"] and e["node"]["id"] not in e["cursor"]
        if nodes:
            assert connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
            assert connection["pageInfo"]["startCursor"] == edges[0]["cursor"]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [n["id"] for n in nodes]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == 7
    assert len(seen) == 250 and len(set(seen)) == 250

    negative = history.gql(DELIVERIES, {"id": "wh-history", "first": -1})
    assert negative["errors"]
    bogus = history.gql(DELIVERIES, {"id": "wh-history", "after": "bm90LWEtY3Vyc29y"})
    assert bogus["errors"]


def test_deliveries_come_newest_first_across_pages(history):
    nodes = history.deliveries("wh-history", first=60)
    created = [when(n["createdDate"]) for n in nodes]
    assert created == sorted(created, reverse=True)


def test_the_cli_pages_through_every_delivery(history, atwh):
    result = atwh("deliveries", "wh-history", "--json", "--api-url", history.url)
    assert result.exit_code == 0, result.stderr
    nodes = json.loads(result.stdout)
    assert len(nodes) == 250 and len({n["id"] for n in nodes}) == 250
    failures = atwh(
        "failures", "wh-history", "--since", "30d", "--format", "table", "--api-url", history.url
    )
    assert failures.exit_code == 0, failures.stderr
    assert "failed attempts in 250 deliveries" in failures.stdout


def test_webhooks_page_by_app_or_project(shared, endpoint):
    app_id = f"pg{int(time.time() * 1000)}"
    urns = [f"urn:allthings:app:{app_id}:*"]
    made = [shared.register(endpoint.url, urns=urns)["id"] for _ in range(5)]
    shared.register(endpoint.url, urns=[f"urn:allthings:project:{app_id}:*"])
    query = """
    query($f: WebhooksFilter!, $first: Int, $after: ID) {
      webhooks(filter: $f, first: $first, after: $after) {
        totalCount nodes { id urns } edges { cursor node { id } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    seen: list[str] = []
    after = None
    while True:
        page = shared.data(query, {"f": {"appId": app_id}, "first": 2, "after": after})
        connection = page["webhooks"]
        assert connection["totalCount"] == 5 and len(connection["nodes"]) <= 2
        for e in connection["edges"]:
            assert e["node"]["id"] not in e["cursor"]
        seen += [n["id"] for n in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == made
    default = shared.data(query, {"f": {"appId": app_id}})["webhooks"]
    assert len(default["nodes"]) == 5
    by_project = shared.data(query, {"f": {"projectId": app_id}})["webhooks"]
    assert by_project["totalCount"] == 1


# -- history, persistence, pruning --------------------------------------------------------


def _story(app: Emulator) -> list[tuple[str, int | None, str, int]]:
    state = app.state
    records = sorted(state.deliveries.values(), key=lambda d: (d.created, d.attempt))
    return [
        (
            state.events[d.event_id].name,
            d.result["statusCode"] if d.result else None,
            d.status,
            d.attempt,
        )
        for d in records
    ]


def test_history_is_realistic_spread_over_30_days_and_repeatable_with_a_seed():
    a = Emulator(EmulatorSettings(history=300, seed=5, log=lambda line: None))
    b = Emulator(EmulatorSettings(history=300, seed=5, log=lambda line: None))
    c = Emulator(EmulatorSettings(history=300, seed=6, log=lambda line: None))
    assert _story(a) == _story(b)
    assert _story(a) != _story(c)

    now = time.time()
    records = list(a.state.deliveries.values())
    assert len(records) == 300
    created = [d.created for d in records]
    assert all(now - 30 * DAY <= t <= now for t in created)
    assert min(created) < now - 25 * DAY and max(created) > now - 3 * DAY
    assert len({int((now - t) // DAY) for t in created}) >= 25  # spread, not bunched

    story = _story(a)
    names = {name for name, *_ in story}
    codes = {code for _, code, *_ in story}
    assert len(names) >= 4
    assert 200 in codes and None in codes  # successes and timeouts
    assert any(c and c >= 500 for c in codes) and any(c and 400 <= c < 500 for c in codes)
    for d in records:
        assert d.status == (
            "SUCCESS" if d.result and 200 <= d.result["statusCode"] < 300 else "FAILED"
        )
        if d.result is None:
            assert d.delivered is None
    chained = [d for d in records if d.retry_id]
    assert len(chained) >= 10
    for d in chained:
        nxt = a.state.deliveries[d.retry_id]
        assert nxt.event_id == d.event_id and nxt.attempt == d.attempt + 1
        assert nxt.created > d.created
        assert d.status == "FAILED"
    still_failing = [d for d in records if d.status == "FAILED" and not d.retry_id]
    assert still_failing  # some chains end failed


def test_history_through_the_api_matches_the_records(history):
    nodes = history.deliveries("wh-history")
    timeouts = [n for n in nodes if n["result"] is None]
    assert timeouts and all(n["status"] == "FAILED" for n in timeouts)
    chains = [n for n in nodes if n["retry"]]
    assert chains
    for n in nodes:
        payload = json.loads(n["event"]["payload"])
        assert payload["event"]["id"] == n["event"]["id"]
        assert payload["event"]["name"] == n["event"]["name"]


def test_db_keeps_webhooks_and_deliveries_across_a_restart(tmp_path):
    db = tmp_path / "emulator.sqlite3"
    with recorder([500]) as rec:
        with emulator(db=db) as emu:
            hook = emu.register(rec.url, description="persisted")
            gone = emu.register(rec.url, urns=["urn:allthings:app:gone:*"])
            emu.data(REMOVE, {"id": gone["id"]})
            event = emu.emit("ticket.created", URN, {"id": "T-9"})["event"]
            emu.wait_settled(event["id"])
            before = emu.deliveries(hook["id"])
        assert len(before) == 2

        with emulator(db=db) as emu:
            after = emu.deliveries(hook["id"])
            got = emu.data(DELIVERIES, {"id": hook["id"]})["webhook"]
            assert emu.data(WEBHOOK, {"id": gone["id"]}) == {"webhook": None}
            more = emu.emit("ticket.created", URN)
            assert more["webhooks"] == 1
            wait_for(lambda: emu.delivered(more["event"]["id"]), what="a delivery after restart")
            assert len(emu.deliveries(hook["id"])) == 3

    assert after == before
    assert got["secret"] == hook["secret"] and got["url"] == rec.url
    assert got["events"] == hook["events"] and got["urns"] == hook["urns"]
    chain = chain_of(after, event["id"])
    assert [d["result"]["statusCode"] for d in chain] == [500, 200]

    with emulator() as fresh:  # without --db nothing is kept
        assert fresh.data(WEBHOOK, {"id": hook["id"]}) == {"webhook": None}


def test_prune_forgets_deliveries_older_than_30_days(tmp_path):
    now = time.time()
    db = tmp_path / "state.sqlite3"
    state = State(db)
    state.put(
        WebhookRec("w", now - 40 * DAY, ["ticket.created"], APP_URNS, "https://x/", True, "s")
    )
    state.put(EventRec("e", now - 40 * DAY, "ticket.created", URN, "{}"))
    for i, age in enumerate([31 * DAY, 30 * DAY + 5, 29 * DAY, 60]):
        rec = DeliveryRec(f"d{i}", now - age, "e", "w", status="FAILED")
        state.put(rec)
    assert state.prune(now - 30 * DAY) == 2
    assert sorted(state.deliveries) == ["d2", "d3"]
    assert state.by_webhook["w"] == ["d2", "d3"]
    state.conn.close()
    reopened = State(db)
    assert sorted(reopened.deliveries) == ["d2", "d3"]
    assert reopened.prune(now - 30 * DAY) == 0
    reopened.conn.close()


def test_the_running_emulator_prunes_old_history(tmp_path):
    app = Emulator(EmulatorSettings(prune_every=0.05, log=lambda line: None))
    now = time.time()
    app.state.put(
        WebhookRec("w", now - 40 * DAY, ["ticket.created"], APP_URNS, "https://x/", True, "s")
    )
    app.state.put(EventRec("e", now - 31 * DAY, "ticket.created", URN, "{}"))
    for i, age in enumerate([31 * DAY, 30 * DAY - 0.5, DAY]):
        app.state.put(DeliveryRec(f"d{i}", now - age, "e", "w", status="SUCCESS"))
    with emulator(app) as emu:
        count = lambda: emu.data('{ webhook(id: "w") { deliveries { totalCount } } }')[  # noqa: E731
            "webhook"
        ]["deliveries"]["totalCount"]
        wait_for(lambda: count() == 2, timeout=3, what="the 31-day-old delivery to go")
        wait_for(lambda: count() == 1, timeout=5, what="the one turning 30 days old to go")
        assert [n["id"] for n in emu.deliveries("w")] == ["d2"]


# -- the command ------------------------------------------------------------------------------


class _Calls(list):
    listened: list[tuple[str, int]]


def test_the_command_builds_settings_and_only_starts_the_server(atwh, tmp_path, monkeypatch):
    from atwh import server

    calls = _Calls()
    calls.listened = []
    real_listen = server.listen

    def listen(host: str, port: int) -> socket.socket:
        calls.listened.append((host, port))
        return real_listen("127.0.0.1", 0)

    monkeypatch.setattr(server, "listen", listen)

    def run(app: Any, sock: socket.socket, **kw: Any) -> None:
        calls.append((app.app if isinstance(app, server.Counted) else app, sock))

    monkeypatch.setattr(server, "run", run)
    try:
        default = atwh("emulator")
        assert default.exit_code == 0, default.stderr
        db = tmp_path / "emu" / "state.sqlite3"
        custom = atwh(
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "4123",
            "--token",
            "tok",
            "--time-scale",
            "1000",
            "--attempt-timeout",
            "2s",
            "--history",
            "25",
            "--seed",
            "3",
            "--db",
            str(db),
        )
        assert custom.exit_code == 0, custom.stderr
        ports = [sock.getsockname()[1] for _, sock in calls]
    finally:
        for app, sock in calls:
            sock.close()
            if app.state.conn is not None:
                app.state.conn.close()

    assert calls.listened == [("127.0.0.1", 4000), ("127.0.0.1", 4123)]
    (app0, _), (app1, _) = calls
    assert isinstance(app0, Emulator) and isinstance(app1, Emulator)
    s0, s1 = app0.s, app1.s
    assert (s0.token, s0.time_scale, s0.attempt_timeout, s0.db, s0.history) == (
        None,
        1.0,
        10.0,
        None,
        0,
    )
    assert app0.state.webhooks == {} and app0.state.deliveries == {}
    assert (s1.token, s1.time_scale, s1.attempt_timeout, s1.history, s1.seed) == (
        "tok",
        1000.0,
        2.0,
        25,
        3,
    )
    assert Path(s1.db) == db and db.exists()
    assert len(app1.state.deliveries) == 25 and "wh-history" in app1.state.webhooks
    assert app1._tasks == set()  # nothing delivered or scheduled before the server starts
    assert f"http://127.0.0.1:{ports[1]}/" in custom.stderr
    assert f"http://127.0.0.1:{ports[0]}/" in default.stderr
    assert custom.stdout == ""


def test_the_command_rejects_bad_options(atwh, monkeypatch):
    from atwh import server

    monkeypatch.setattr(server, "run", lambda *a, **kw: pytest.fail("started"))
    for args in (
        ["--time-scale", "0"],
        ["--attempt-timeout", "soon"],
        ["--history", "-1"],
        ["--port", "70000"],
    ):
        result = atwh("emulator", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
