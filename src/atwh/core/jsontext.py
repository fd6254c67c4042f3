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
