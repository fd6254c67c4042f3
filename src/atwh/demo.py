"""`atwh demo`: the emulator and the receiver on this machine, a webhook between them, and a
realistic mix of events, some of which fail, then what `deliveries` and `failures` show."""

from __future__ import annotations

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

TOKEN = "demo"
APP_URN = "urn:allthings:app:demo-app:*"
EVENT_URN = "urn:allthings:app:demo-app:tickets"


@dataclass
class Demo:
    api_url: str
    webhook_id: str
    inbox: Path
    emulator: Emulator
    receiver: Receiver


class DemoRun:
    """Runs the scenario step by step; `say` narrates each step."""

    def __init__(
        self,
        say: Callable[[str], None],
        time_scale: float = 100_000,
        attempt_timeout: float = 0.5,
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
        self.receiver_settings = ReceiverSettings(db=self.workdir / "inbox.sqlite3")
        self.receiver = create_app(self.receiver_settings)

    def run(self, show: Callable[[Demo], None]) -> Demo:
        with BackgroundServer(self.emulator) as api, BackgroundServer(self.receiver) as rcv:
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
                    "events": ["ticket.created", "ticket.updated", "community-article.published"],
                    "url": url,
                    "urns": [APP_URN],
                }
            },
        )["registerWebhook"]
        if not answer.get("success"):
            raise RuntimeError(f"registering the demo webhook failed: {answer.get('message')}")
        hook = answer["webhook"]
        self.receiver_settings.secret = hook["secret"]  # now it verifies every delivery
        self.say(f"Registered webhook {hook['id']} → {url} (the emulator checked it answers 200)")
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

    def _failed_once(self, event_id: str) -> bool:
        return any(d.status == "FAILED" for d in self._attempts(event_id))

    def _settled(self, event_id: str) -> bool:
        attempts = self._attempts(event_id)
        last = attempts[-1] if attempts else None
        return last is not None and last.status != "PENDING" and last.next_retry_at is None

    def _scenario(self, client: ApiClient) -> None:
        normal = [
            self._emit(client, "ticket.created", {"id": f"T-{100 + i}", "title": title})
            for i, title in enumerate(["Leaking tap", "Heating off", "Broken window"])
        ]
        normal.append(
            self._emit(
                client, "ticket.updated", {"id": "T-100", "delta": {"status": {"to": "closed"}}}
            )
        )
        self._wait(lambda: all(self._delivered(e) for e in normal))
        self.say(f"Emitted {len(normal)} ticket events: delivered, verified and stored")

        self.receiver_settings.delay = self.attempt_timeout + 0.3
        slow = self._emit(client, "ticket.updated", {"id": "T-101", "delta": {"assignee": "ops"}})
        self._wait(lambda: self._failed_once(slow))
        self.receiver_settings.delay = 0.0
        self.say(
            f"One event answered too slowly: timed out after {self.attempt_timeout:g}s, retried"
        )

        self.receiver.simulation.respond = 500
        burst = [
            self._emit(client, "ticket.created", {"id": f"T-{200 + i}", "title": "Burst"})
            for i in range(4)
        ]
        self._wait(lambda: all(self._failed_once(e) for e in burst))
        self.receiver.simulation.respond = None
        self.say(f"A burst of {len(burst)} events hit a 500 from the receiver, then it recovered")

        rejected = [
            self._emit(
                client, "community-article.published", {"id": f"A-{i}", "title": "Summer party"}
            )
            for i in range(2)
        ]
        self.say(
            f"{len(rejected)} community-article.published events: the receiver answers "
            "400 Unexpected event type"
        )
        self.say("Waiting for the retries (7 days of back-off, time-scaled to seconds)…")
        everything = normal + [slow] + burst + rejected
        self._wait(lambda: all(self._settled(e) for e in everything), limit=15.0)
