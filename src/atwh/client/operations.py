"""The GraphQL layer of the client: every operation goes through gql.

Each document in `queries/` is parsed once per process and validated against the bundled
schema as the vendor published it (`queries/webhooks-schema.graphql`; the emulator's own
operations, named `Emulator…`, against it plus `emulator-schema.graphql`), so a query the
API could not answer is caught before anything is sent. gql's client then runs it through
BoundedTransport: gql's httpx transport whose POST is held to a deadline and whose answer is
capped in size (`core.transport.post`), and whose answer to the paged query is decoded by
`client.wire` when it is in the usual shape. gql's exceptions come out of it; ApiClient
(client.api) retries and translates them into AtwhErrors.

This module imports gql: client.api imports it only when the first operation runs, so a
command that never talks to the API (`atwh --version`) never loads gql or graphql-core.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import httpx
import orjson
from gql import Client, GraphQLRequest
from gql.client import SyncClientSession
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXTransport
from graphql import DocumentNode, ExecutionResult, GraphQLSchema, Source, build_ast_schema
from graphql import parse as parse_graphql
from graphql import validate as validate_graphql

from atwh.client import queries
from atwh.core.transport import Deadline, post
from atwh.errors import AtwhError

__all__ = [
    "BoundedTransport",
    "Operation",
    "TransportConnectionFailed",
    "TransportProtocolError",
    "TransportQueryError",
    "TransportServerError",
    "connect",
    "operation",
]

# A faster reader of the usual answer to one operation: its `data`, or None to decline.
Reader = Callable[[bytes], dict[str, Any] | None]


class InvalidOperation(Exception):
    """A document in `queries/` that its schema does not validate: a bug in atwh, which
    tests/client/test_queries.py keeps out of a release."""


@cache
def schema(emulator: bool = False) -> GraphQLSchema:
    """The published schema; with `emulator`, plus what only the emulator adds."""
    sdl = queries.load(queries.SCHEMA_FILE)
    if emulator:
        sdl += "\n" + queries.load(queries.EMULATOR_SCHEMA_FILE)
    return build_ast_schema(parse_graphql(sdl))


@cache
def document(name: str) -> tuple[DocumentNode, str]:
    """One operation from `queries/`, parsed and validated once per process, and the text
    sent for it (the file as it is: gql would print the document back for every request)."""
    text = queries.load(name)
    parsed = parse_graphql(Source(text, f"{name}.graphql"))
    errors = validate_graphql(schema(name.startswith("Emulator")), parsed)
    if errors:
        raise InvalidOperation(f"{name}: {errors[0].message}")
    return parsed, text


class Operation(GraphQLRequest):
    """A GraphQLRequest for one operation from `queries/`, with its variables: its payload
    is the file's text (printed once, not per request) and the variables beside it, never
    pasted in; `read`, a faster reader of its usual answer."""

    def __init__(self, name: str, variables: dict[str, Any], read: Reader | None = None) -> None:
        parsed, self.text = document(name)
        super().__init__(parsed, variable_values=variables)
        self.name = name
        self.read = read

    @property
    def payload(self) -> dict[str, Any]:
        return {"query": self.text, "variables": self.variable_values or {}}


def operation(name: str, variables: dict[str, Any], read: Reader | None = None) -> Operation:
    return Operation(name, variables, read)


class BoundedTransport(HTTPXTransport):
    """gql's sync httpx transport, with each POST held to a deadline and its answer to a
    size (an answer over it is core.transport.TooLarge, an AtwhError, raised as it is).

    Its httpx.Client is made by gql's `connect()` from the keyword arguments (transport,
    auth, headers, event hooks), as HTTPXTransport's is."""

    def __init__(
        self, url: str, deadline: Deadline, seconds: float, max_bytes: int, **kwargs: Any
    ) -> None:
        super().__init__(url=url, **kwargs)
        self.deadline = deadline
        self.seconds = seconds
        self.max_bytes = max_bytes

    def execute(  # type: ignore[override]  # one Operation, no file uploads
        self, request: Operation, *args: Any, **kwargs: Any
    ) -> ExecutionResult:
        if self.client is None:
            raise TransportClosed("Transport is not connected")
        body = orjson.dumps(request.payload)
        self.deadline.start(self.seconds)
        try:
            response = post(self.client, str(self.url), self.deadline, self.max_bytes, content=body)
        except AtwhError:  # over the size cap, or the token endpoint's own error (auth)
            raise
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as e:
            raise TransportConnectionFailed(str(e)) from e
        finally:
            self.deadline.stop()
        return execution_result(response, request.read)


def execution_result(response: httpx.Response, read: Reader | None = None) -> ExecutionResult:
    """An answer as gql's ExecutionResult (`errors` a list, or None when there are none).

    Not a GraphQL answer: TransportServerError for an HTTP error status (with the code),
    else TransportProtocolError; an answer with neither data nor errors is not one either.
    `read` (client.wire.read_page for a page of deliveries) reads a successful answer in its
    usual shape faster, to the same `data`, or declines it with None."""
    from atwh.core import jsontext

    status = response.status_code
    if read is not None and 200 <= status <= 299:
        data = read(response.content)
        if data is not None:
            return ExecutionResult(data=data)
    try:
        answer = jsontext.decode(response.content)
    except ValueError:  # orjson's and json's errors, and bytes that are not UTF-8
        answer = None
    if not isinstance(answer, dict) or ("data" not in answer and "errors" not in answer):
        if not 200 <= status <= 299:
            raise TransportServerError(f"the API answered HTTP {status}", status)
        raise TransportProtocolError(
            "the API answered with something that is not a GraphQL response"
        )
    data, errors = answer.get("data"), answer.get("errors")
    if errors:
        return ExecutionResult(data=data, errors=errors if isinstance(errors, list) else [errors])
    if data is None:
        raise TransportProtocolError("the API answered without data")
    return ExecutionResult(data=data)


def connect(url: str, deadline: Deadline, seconds: float, max_bytes: int, **httpx_args: Any) -> Any:
    """A connected gql session over BoundedTransport (`session.execute(Operation)`).

    The client is given no schema: each document was validated once (document()), not
    again for every request as gql does when it holds one."""
    transport = BoundedTransport(url, deadline, seconds, max_bytes, **httpx_args)
    session = Client(transport=transport, fetch_schema_from_transport=False).connect_sync()
    assert isinstance(session, SyncClientSession)
    return session
