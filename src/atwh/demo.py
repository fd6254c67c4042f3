"""`atwh demo`: the emulator and the receiver on this machine, a webhook between them, and a
realistic mix of events, some of which fail, then what `deliveries` and `failures` show."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atwh.client import ApiClient, StaticToken
from atwh.emulator import Emulator, EmulatorSettings
from atwh.emulator.state import DeliveryRec
from atwh.receiver import Receiver, ReceiverSettings, create_app
from atwh.server import BackgroundServer

TOKEN = "atwh-demo-token"  # not a word: atwh redacts its tokens from all it prints
APP_URN = "urn:allthings:app:demo-app:*"
EVENT_URN = "urn:allthings:app:demo-app:tickets"


@dataclass
class Demo:
    api_url: str
    webhook_id: str
    inbox: Path
    emulator: Emulator
    receiver: Receiver


class Script:
    """In front of the receiver: the first attempt of chosen events fails as planned (an
    answer too slow to wait for, or a 500), every later attempt reaches `atwh serve`.

    Keyed by the event name and the id in the event's data, known before the event is emitted,
    so what fails does not depend on timing and the demo's totals are the same every run.
    """

    def __init__(self, app: Any, slow: float) -> None:
        self.app = app
        self.slow = slow
        # `event-name data-id` → "slow" or "500", for the first attempt of that event
        self.plan: dict[str, str] = {}
        self.attempts: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        key = _ticket_of(body)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        action = self.plan.get(key) if self.attempts[key] == 1 else None
        if action == "500":
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"message":"Server Error"}'})
            return
        if action == "slow":
            await asyncio.sleep(self.slow)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _ticket_of(body: bytes) -> str:
    """`ticket.updated T-100`: the event name and the id in its data."""
    try:
        event = json.loads(body)["event"]
        return f"{event['name']} {event['data']['id']}"
    except (ValueError, KeyError, TypeError):
        return ""


class DemoRun:
    """Runs the scenario step by step; `say` narrates each step."""

    def __init__(
        self,
        say: Callable[[str], None],
        time_scale: float = 100_000,
        # generous: on a loaded machine a store in the receiver can take over a second, and
        # any attempt but the scripted slow one that times out changes the story it tells
        attempt_timeout: float = 3.0,
        workdir: Path | None = None,
    ) -> None:
        self.say = say
        self.attempt_timeout = attempt_timeout
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="atwh-demo-"))
        self.emulator = Emulator(
            EmulatorSettings(
                token=TOKEN,
                time_scale=time_scale,
                attempt_timeout=attempt_timeout,
                log=lambda line: None,
            )
        )
        self.receiver_settings = ReceiverSettings(
            db=self.workdir / "inbox.sqlite3",
            events=frozenset({"ticket.created", "ticket.updated", "ticket-comment.created"}),
        )
        self.receiver = create_app(self.receiver_settings)
        self.script = Script(self.receiver, slow=attempt_timeout + 0.3)

    def run(self, show: Callable[[Demo], None]) -> Demo:
        with BackgroundServer(self.emulator) as api, BackgroundServer(self.script) as rcv:
            api_url = api.url("/")
            with ApiClient(StaticToken(TOKEN), url=api_url, timeout=10) as client:
                webhook_id = self._register(client, rcv.url("/webhook"))
                self._scenario(client)
            demo = Demo(
                api_url, webhook_id, self.receiver_settings.db, self.emulator, self.receiver
            )
            show(demo)
        return demo

    def _register(self, client: ApiClient, url: str) -> str:
        answer = client.execute(
            "RegisterWebhook",
            {
                "webhook": {
                    "description": "atwh demo: ticket sync",
                    "events": [
                        "ticket.created",
                        "ticket.updated",
                        "ticket-comment.created",
                        "community-article.published",
                    ],
                    "url": url,
                    "urns": [APP_URN],
                }
            },
        )["registerWebhook"]
        if not answer.get("success"):
            raise RuntimeError(f"registering the demo webhook failed: {answer.get('message')}")
        hook = answer["webhook"]
        self.receiver_settings.secret = hook["secret"]  # now it verifies every delivery
        self.say(f"Registered webhook {hook['id']} (its URL answered)")
        return str(hook["id"])

    def _emit(self, client: ApiClient, name: str, data: dict[str, Any]) -> str:
        answer = client.execute(
            "EmulatorEmitEvent", {"name": name, "urn": EVENT_URN, "data": data}
        )["emitEvent"]
        return str(answer["event"]["id"])

    def _attempts(self, event_id: str) -> list[DeliveryRec]:
        return sorted(
            (d for d in self.emulator.state.deliveries.values() if d.event_id == event_id),
            key=lambda d: d.attempt,
        )

    def _wait(self, done: Callable[[], bool], limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError("the demo's deliveries did not settle in time")
            time.sleep(0.01)

    def _delivered(self, event_id: str) -> bool:
        return any(d.status == "SUCCESS" for d in self._attempts(event_id))

    def _settled(self, event_id: str) -> bool:
        attempts = self._attempts(event_id)
        last = attempts[-1] if attempts else None
        return last is not None and last.status != "PENDING" and last.next_retry_at is None

    def _scenario(self, client: ApiClient) -> None:
        # One after the other, each settled before the next, so that the newest deliveries
        # tell the whole story: the rejected event type first (its week of retries is then
        # the oldest part of the listing), then a 200, a timeout and a 500 that recover.
        rejected = self._emit(
            client, "community-article.published", {"id": "A-1", "title": "Summer party"}
        )
        self.say("community-article.published: answered 400; 7 days of retries, in seconds…")
        self._wait(lambda: self._settled(rejected), limit=15.0)

        normal = []
        for i, title in enumerate(["Leaking tap", "Heating off"]):
            normal.append(
                self._emit(client, "ticket.created", {"id": f"T-{100 + i}", "title": title})
            )
            self._wait(lambda: all(self._delivered(e) for e in normal))
        self.say(f"{len(normal)} ticket.created: delivered, verified and stored")

        self.script.plan["ticket.updated T-100"] = "slow"
        slow = self._emit(client, "ticket.updated", {"id": "T-100", "delta": {"assignee": "ops"}})
        self._wait(lambda: self._delivered(slow))
        self.say(
            f"ticket.updated: timed out after {self.attempt_timeout:g}s, delivered on the retry"
        )

        self.script.plan["ticket-comment.created C-7"] = "500"
        comment = self._emit(client, "ticket-comment.created", {"id": "C-7", "ticket": "T-101"})
        self._wait(lambda: self._delivered(comment))
        self.say("ticket-comment.created: answered 500, then went through on the retry")
        everything = [rejected, *normal, slow, comment]
        self._wait(lambda: all(self._settled(e) for e in everything))
