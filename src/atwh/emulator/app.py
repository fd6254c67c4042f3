"""An emulator of the Allthings Webhooks API that really delivers.

It serves the published schema (queries/webhooks-schema.graphql) with graphql-core, plus
one emulator-only mutation, `emitEvent`. Events go to every enabled webhook subscribed
to them, signed as Allthings signs them; failed attempts are retried with exponential
back-off for up to seven days (each delay divided by `time_scale`), each attempt a
WebhookDelivery linked to the next by `retry`. State lives in memory, or in SQLite.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from atwh.core import jsontext
from atwh.emulator import limits
from atwh.emulator.engine import EmulatorSettings, Engine
from atwh.emulator.schema import Root, build_schema
from atwh.emulator.state import DeliveryRec, EventRec, State, WebhookRec

log = logging.getLogger("atwh.emulator.app")

__all__ = [
    "DeliveryRec",
    "Emulator",
    "EmulatorSettings",
    "EventRec",
    "State",
    "WebhookRec",
    "create_app",
]


class Emulator(Engine):
    """The ASGI app of `atwh emulator`: GraphQL over HTTP, the delivery engine on its loop."""

    def __init__(self, settings: EmulatorSettings) -> None:
        super().__init__(settings)
        self.schema = build_schema()
        self.root = Root(self)

    # -- HTTP ---------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("bearer "):
            return False
        token = header[7:].strip()
        if not token:
            return False
        return self.s.token is None or secrets.compare_digest(token, self.s.token)

    async def execute(self, payload: Any) -> tuple[int, dict[str, Any]]:
        import graphql

        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return 400, {"errors": [{"message": "POST a JSON object with a 'query' string."}]}
        variables = payload.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return 400, {"errors": [{"message": "'variables' must be an object."}]}
        operation = payload.get("operationName")
        try:
            document = graphql.parse(payload["query"], max_tokens=limits.MAX_TOKENS)
        except graphql.GraphQLError as e:
            return 200, {"errors": [e.formatted]}
        rules = [*graphql.specified_rules, limits.limits_rule(variables)]
        errors = graphql.validate(self.schema, document, rules)
        if errors:
            return 200, {"errors": [e.formatted for e in errors]}
        result = graphql.execute(
            self.schema,
            document,
            root_value=self.root,
            variable_values=variables,
            operation_name=operation if isinstance(operation, str) else None,
        )
        if graphql.pyutils.is_awaitable(result):
            result = await result
        assert isinstance(result, graphql.ExecutionResult)
        return 200, dict(result.formatted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await _send_json(
                send, 200, {"status": "ok", "webhooks": len(self.state.webhooks)}
            )
        if scope["method"] != "POST":
            return await _send_json(
                send, 405, {"errors": [{"message": "POST GraphQL requests to /"}]}
            )
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 1024 * 1024:
                return await _send_json(send, 413, {"errors": [{"message": "Request too large"}]})
            if not message.get("more_body"):
                break
        if not self.authorized(auth):
            return await _send_json(
                send,
                401,
                {
                    "errors": [
                        {
                            "message": "Unauthorized: send Authorization: Bearer <token>",
                            "extensions": {"code": "UNAUTHENTICATED"},
                        }
                    ]
                },
            )
        try:
            payload = jsontext.loads(body)
        except ValueError:
            return await _send_json(send, 400, {"errors": [{"message": "Body is not JSON"}]})
        try:
            code, result = await self.execute(payload)
        except Exception as e:  # never a 500 for what a client sent
            log.exception("GraphQL execution failed")
            code, result = 200, {"errors": [{"message": f"Internal error: {type(e).__name__}"}]}
        await _send_json(send, code, result)


async def _send_json(send: Any, code: int, data: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    if limits.larger_than(data, limits.MAX_ANSWER_BYTES):
        message = (
            f"The answer would be larger than {limits.MAX_ANSWER_BYTES >> 20} MiB; "
            "ask for smaller pages (first) or fewer fields."
        )
        data = {"errors": [{"message": message}]}
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


def create_app(settings: EmulatorSettings) -> Emulator:
    return Emulator(settings)
