"""The floor for `atwh serve` in bench/serve_bench.py: an ASGI app that verifies the
signature and parses the body, and stores nothing, on the same server and settings as
`atwh serve` (atwh.server.run: uvicorn, httptools, uvloop).

Run by the benchmark as `python bench/floor_app.py PORT SECRET`."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from typing import Any

from atwh import server

OK = b'{"message":"success"}'
DENIED = b'{"message":"bad signature"}'


def make_app(secret: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        given = dict(scope["headers"]).get(b"x-allthings-signature", b"")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        ok = hmac.compare_digest(expected, given)
        json.loads(body)
        answer = OK if ok else DENIED
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(answer)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


if __name__ == "__main__":
    port, secret = int(sys.argv[1]), sys.argv[2].encode()
    server.run(make_app(secret), server.listen("127.0.0.1", port))
