"""JSON text from outside atwh (an API answer, a webhook's body, a file, an option): the one
reader of it, so every part reads the same text the same way.

- Bytes are UTF-8, as RFC 8259 asks of JSON between systems; other bytes are not JSON.
- What is read is what the json module reads: orjson first where speed matters (decode),
  the json module for what orjson refuses (NaN, lone surrogates, a number beyond a double's
  range) or reads otherwise (an integer beyond 64 bits becomes a float in orjson).
- Too deep a nesting is a ValueError like any other text that is not JSON: json.loads raises
  RecursionError for `[[[…]]]` a few thousand deep, which fits in any size cap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def loads(text: str | bytes | bytearray) -> Any:
    """json.loads(text), bytes read as UTF-8; ValueError (json.JSONDecodeError,
    UnicodeDecodeError or too deep a nesting) when it is not JSON atwh can read."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode(content: bytes | str, exact: Callable[[Any], bool] | None = None) -> Any:
    """loads(content), through orjson (about 3x faster than the json module) where orjson
    reads the same: what orjson refuses, or what `exact(value)` says orjson may have read
    otherwise (a float where the text had a huge integer), is read again by loads().
    ValueError when it is not JSON."""
    import orjson

    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return loads(content)
    if exact is not None and not exact(value):
        return loads(content)
    return value


class RawJson:
    """JSON text to be written as it is, inside a record that is encoded (`dumps`): text
    already known to be exactly what encoding its value would give, so encoding it again
    is saved."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def _as_fragment(value: Any) -> Any:
    import orjson

    if value.__class__ is RawJson:
        return orjson.Fragment(value.text)
    raise TypeError(type(value).__name__)


def _as_value(value: Any) -> Any:
    if value.__class__ is RawJson:
        return json.loads(value.text)
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8 bytes, RawJson inside it written as it is: by orjson,
    else by the json module (what orjson refuses: an integer beyond 64 bits, a lone
    surrogate, which is then written as the escape it came as)."""
    import orjson

    try:
        return orjson.dumps(value, default=_as_fragment)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_as_value)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (from a JSON escape): escaped again
        return json.dumps(value, separators=(",", ":"), default=_as_value).encode()
