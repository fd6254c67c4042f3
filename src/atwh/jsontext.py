"""JSON text from outside atwh (an API answer, a webhook's body, a file, an option) read by
the json module, where too deep a nesting is a ValueError like any other text that is not
JSON: json.loads raises RecursionError for `[[[…]]]` a few thousand deep, which fits in
any size cap."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes | bytearray) -> Any:
    """json.loads(text); ValueError (json.JSONDecodeError, UnicodeDecodeError or too deep a
    nesting) when it is not JSON atwh can read."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode(content: bytes | str) -> Any:
    """An API answer's JSON: orjson (about 3x faster than the json module), else loads()
    for what orjson refuses (a number beyond a double's range), so both read the same
    answers; ValueError when it is not JSON."""
    import orjson

    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return loads(content)
