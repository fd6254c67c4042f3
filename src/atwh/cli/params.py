"""The values options take, as click ParamTypes: a number within bounds, a duration, a size,
a rate. Each kind is read the same way by every option that takes it (`--interval 1s`,
`--delay 12s`, `--timeout 30s`, `--tolerance 2m` and `--since 7d` all read `1s`, `12s`, `2m`,
`7d` alike, core.durations), and shown in help by its placeholder (`SECONDS`, `DURATION`),
not as click's `<float range>` and `[x>=0.01]`.

A duration that is not one is one usage line naming the option (`--delay 'soon': give a
duration such as 90s, 2m or 1h`), as atwh's other usage errors read.
"""

from __future__ import annotations

import re
from typing import Any

from atwh.core.compat import click_types
from atwh.errors import UsageError

_ParamType: Any = click_types().ParamType


def _flag(param: Any) -> str:
    """The option as a person types it: `--delay`."""
    opts = getattr(param, "opts", None) or []
    long = [o for o in opts if o.startswith("--")]
    return (long or opts or [getattr(param, "name", "value")])[0]


class Number(_ParamType):  # type: ignore[misc]
    """A whole number or a number within bounds, shown in help by its placeholder (`N`,
    `CODE`), not as click's `<int range>` and `[x>=1]`; its errors name the bounds."""

    name = "number"

    def __init__(
        self,
        metavar: str = "N",
        whole: bool = True,
        min: float | None = None,
        max: float | None = None,
    ) -> None:
        self.metavar = metavar
        self.whole = whole
        self.min = min
        self.max = max

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return self.metavar

    def convert(self, value: object, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number: float = value
        else:
            try:
                number = int(str(value)) if self.whole else float(str(value))
            except ValueError:
                kind = "a whole number" if self.whole else "a number"
                self.fail(f"{value!r} is not {kind}", param, ctx)
        if number != number or (self.min is not None and number < self.min):
            self.fail(f"{value} is below {self.min:g}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"{value} is above {self.max:g}", param, ctx)
        return number


class WebhookId(_ParamType):  # type: ignore[misc]
    """A webhook's id as given: an empty one (`atwh deliveries ""`, `--webhook "$UNSET"`) is
    a usage error that says so, not a lookup that ends in "webhook  not found" (exit 4)."""

    name = "webhook id"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "WEBHOOK_ID"

    def convert(self, value: object, param: Any, ctx: Any) -> str:
        text = str(value)
        if not text.strip():
            opts = getattr(param, "opts", None) or []
            given = _flag(param) if any(o.startswith("-") for o in opts) else "WEBHOOK_ID"
            raise UsageError(
                f"{given} is empty: give a webhook's id",
                hint="'atwh webhooks list --app APP_ID' lists them",
            )
        return text


def seconds_of(text: str) -> float:
    """A duration in seconds: `90s`, `15m`, `2h`, `7d`, `1w`, sums (`1h30m`), or a plain
    number of seconds (`5`, `0.5`). ValueError when it is none of these."""
    from atwh.core.durations import parse_duration

    try:
        value = float(text)
    except ValueError:
        return parse_duration(text).total_seconds()
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a duration: {text!r}")
    return value


class Duration(_ParamType):  # type: ignore[misc]
    """A duration option, in seconds (float): every form `seconds_of` reads. `min`: the
    least accepted (`above`: strictly more than it)."""

    name = "duration"

    def __init__(
        self, metavar: str = "DURATION", min: float | None = None, above: float | None = None
    ) -> None:
        self.metavar = metavar
        self.min = min
        self.above = above

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return self.metavar

    def convert(self, value: object, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            text = f"{value:g}"
        else:
            text = str(value)
            try:
                number = seconds_of(text)
            except ValueError:
                raise UsageError(
                    f"{_flag(param)} {text!r}: give a duration such as 90s, 2m or 1h"
                ) from None
        if self.above is not None and number <= self.above:
            raise UsageError(f"{_flag(param)} {text!r}: give a duration above {self.above:g}")
        if self.min is not None and number < self.min:
            raise UsageError(f"{_flag(param)} {text!r} is below {self.min:g}s")
        return number


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
}


def parse_size(text: str, flag: str = "--max-body") -> int:
    """Bytes: `2000`, `1.5k`, `10 kb`, `512KiB`, `1MiB`; at least 1. UsageError naming `flag`
    otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise UsageError(f"{flag} {text!r}: give bytes, or a size such as 512KiB or 1MiB")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if size < 1:
        raise UsageError(f"{flag} must be at least 1 byte")
    return size


class Size(_ParamType):  # type: ignore[misc]
    """A size option, in bytes (int): every form `parse_size` reads."""

    name = "size"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "SIZE"

    def convert(self, value: object, param: Any, ctx: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return parse_size(str(value), _flag(param))


def parse_rate(text: str, flag: str = "--rate") -> float:
    """Requests a second: `10/s`, `10` (a second) or `600/m`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([sm]))?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{flag} {text!r}: give requests a second (10/s) or a minute (600/m)")
    per = 60.0 if match.group(2) == "m" else 1.0
    return float(match.group(1)) / per


class Rate(_ParamType):  # type: ignore[misc]
    """A rate option, in requests a second (float): every form `parse_rate` reads."""

    name = "rate"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "N/s"

    def convert(self, value: object, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            return value
        return parse_rate(str(value), _flag(param))
