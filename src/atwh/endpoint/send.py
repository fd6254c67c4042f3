"""One request to a user's endpoint, as Allthings sends it: POST, never a redirect followed,
the whole exchange bounded in time and the answer's body in size.

Everything that comes back is untrusted: the body is kept to MAX_ANSWER bytes, and shown
only through `errors.printable`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from atwh.core.transport import Deadline, http_transport
from atwh.errors import printable
from atwh.samples import USER_AGENT

MAX_ANSWER = 64 * 1024  # bytes of an answer's body kept
CANNOT_CONNECT = "cannot connect: "  # how the error of a connection that failed begins


@dataclass(slots=True)
class Answer:
    """What one request got: a code, or the reason there was none."""

    code: int | None
    seconds: float
    body: bytes = b""  # at most MAX_ANSWER bytes (the Sender's max_answer)
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None  # no HTTP answer: why (refused, timed out, ...)
    cut: bool = False  # the body was longer than that
    # no answer in time from an endpoint that took the connection: it is there, but slow
    late: bool = False

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code <= 299

    @property
    def redirect(self) -> bool:
        return self.code is not None and 300 <= self.code <= 399

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def text(self, limit: int | None = 200) -> str:
        """The body (or the error) as one line safe for a terminal."""
        if self.code is None:
            return printable(self.error or "no answer", limit)
        return answer_line(self.body, self.code, self.header("location"), limit=limit)


def answer_line(
    body: bytes, code: int, location: str | None, reason: str | None = None, limit: int | None = 200
) -> str:
    """One line of an answer, safe for a terminal: its body, where a 3xx redirects to,
    else its reason phrase (when given)."""
    text = body.decode("utf-8", errors="replace")
    line = printable(text, limit) if text.strip() else ""
    if 300 <= code <= 399 and location:
        line = f"redirect to {printable(location, 120)}" + (f": {line}" if line else "")
    return line or printable(reason or "", 80)


class Sender:
    """POSTs to endpoints; safe to share between threads (each has its own connection pool,
    whose sockets are held to that thread's deadline)."""

    def __init__(
        self, timeout: float, user_agent: str = USER_AGENT, max_answer: int = MAX_ANSWER
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.max_answer = max_answer  # bytes of each answer's body read, at most
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> tuple[httpx.Client, Deadline]:
        held = getattr(self._local, "held", None)
        if held is None:
            deadline = Deadline()
            client = httpx.Client(
                transport=http_transport(deadline),
                timeout=self.timeout,
                follow_redirects=False,
                headers={"accept-encoding": "identity"},
            )
            with self._lock:
                self._clients.append(client)
            held = self._local.held = (client, deadline)
        return held

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        client, deadline = self._client()
        sent = {"user-agent": self.user_agent, **headers}
        started = time.monotonic()
        late = False
        deadline.start(self.timeout)
        try:
            with client.stream("POST", url, content=body, headers=sent) as response:
                kept = bytearray()
                cut = False
                for chunk in response.iter_raw():
                    deadline.check()
                    kept += chunk
                    if len(kept) > self.max_answer:
                        del kept[self.max_answer :]
                        cut = True
                        break
                return Answer(
                    response.status_code,
                    time.monotonic() - started,
                    bytes(kept),
                    [(k, v) for k, v in response.headers.multi_items()],
                    cut=cut,
                )
        except httpx.TimeoutException as e:
            late = isinstance(e, httpx.ReadTimeout | httpx.WriteTimeout)
            error = f"no answer within {self.timeout:g}s"
        except httpx.ConnectError as e:
            error = f"{CANNOT_CONNECT}{printable(str(e), 160) or type(e).__name__}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {printable(str(e), 160)}"
        finally:
            deadline.stop()
        return Answer(None, time.monotonic() - started, error=error, late=late)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
