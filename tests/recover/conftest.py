"""A webhook between the emulated API and `atwh serve`, both on loopback, for replays."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from atwh.client import ApiClient, StaticToken
from atwh.emulator import Emulator, EmulatorSettings
from atwh.receiver import Receiver, ReceiverSettings, create_app
from atwh.receiver.inbox import Inbox, InboxRecord
from atwh.server import BackgroundServer
from tests.conftest import wait_for

TOKEN = "recover-token"
URN = "urn:allthings:app:a1:tickets"


@dataclass
class Loop:
    """The emulator delivering one webhook's events to a receiver that can be made to fail."""

    emulator: Emulator
    receiver: Receiver
    settings: ReceiverSettings
    api_url: str
    receiver_url: str
    webhook_id: str
    secret: str
    client: ApiClient

    def emit(self, name: str = "ticket.created", **data: object) -> str:
        answer = self.client.execute("EmulatorEmitEvent", {"name": name, "urn": URN, "data": data})[
            "emitEvent"
        ]
        time.sleep(0.003)  # distinct millisecond timestamps: the order is the emit order
        return str(answer["event"]["id"])

    def attempts(self, event_id: str) -> list:
        return sorted(
            (d for d in self.emulator.state.deliveries.values() if d.event_id == event_id),
            key=lambda d: d.attempt,
        )

    def settled(self, *event_ids: str) -> None:
        """Wait until every event's last attempt is answered and no retry is scheduled."""

        def done() -> bool:
            for e in event_ids:
                attempts = self.attempts(e)
                last = attempts[-1] if attempts else None
                if last is None or last.status == "PENDING" or last.next_retry_at is not None:
                    return False
            return True

        wait_for(done, timeout=30, what="the emulator's retries to settle")

    def inbox(self) -> list[InboxRecord]:
        with Inbox(self.settings.db, create=False) as box:
            return list(box.records())

    def replays(self) -> list[InboxRecord]:
        """What the receiver got from `atwh replay`, in the order it got it."""
        return [
            r for r in self.inbox() if any(n.lower() == "x-atwh-replay-of" for n, _ in r.headers)
        ]

    def args(self, *more: str) -> list[str]:
        return [self.webhook_id, "--api-url", self.api_url, "--token", TOKEN, *more]


@pytest.fixture
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    """Retries time-scaled so that all seven days pass in about a second. A test can ask for
    another scale: `@pytest.mark.parametrize("loop", [{"time_scale": 1}], indirect=True)`."""
    settings_of_emulator = {"time_scale": 1e6, **getattr(request, "param", {})}
    emulator = Emulator(
        EmulatorSettings(
            token=TOKEN,
            attempt_timeout=2,
            log=lambda line: None,
            **settings_of_emulator,
        )
    )
    settings = ReceiverSettings(db=tmp_path / "inbox.sqlite3")
    receiver = create_app(settings)
    with BackgroundServer(emulator) as api, BackgroundServer(receiver) as rcv:
        with ApiClient(StaticToken(TOKEN), url=api.url("/"), timeout=10) as client:
            hook = client.execute(
                "RegisterWebhook",
                {
                    "webhook": {
                        "description": "replay tests",
                        "events": ["ticket.created", "ticket.updated"],
                        "url": rcv.url("/webhook"),
                        "urns": ["urn:allthings:app:a1:*"],
                    }
                },
            )["registerWebhook"]["webhook"]
            settings.secret = hook["secret"]  # the receiver verifies what it gets
            yield Loop(
                emulator,
                receiver,
                settings,
                api.url("/"),
                rcv.url("/webhook"),
                str(hook["id"]),
                hook["secret"],
                client,
            )
