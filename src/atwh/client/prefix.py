"""Ids given by a unique prefix, as git takes commits: `atwh deliveries W --id 3f2a`."""

from __future__ import annotations

from collections.abc import Iterable

from atwh.errors import NotFoundError, UsageError, printable

SHOWN = 5  # candidates named in the error of an ambiguous prefix


def resolve_prefix(prefix: str, ids: Iterable[str], what: str, option: str) -> str:
    """The one id in `ids` that equals `prefix` or starts with it.

    `what` names the thing in errors ("delivery", "event"), `option` the input the prefix
    came from ("--id", "ID"). An exact match wins over longer ids that share the prefix.
    Raises UsageError when the prefix is empty or ambiguous (naming the candidates),
    NotFoundError when nothing matches.
    """
    shown = printable(prefix, 80)
    if not prefix.strip():
        raise UsageError(f"{option}: give an id or a unique prefix of one, not an empty string")
    matches: list[str] = []
    for candidate in ids:
        if candidate == prefix:
            return candidate
        if candidate.startswith(prefix) and candidate not in matches:
            matches.append(candidate)
    if not matches:
        raise NotFoundError(f"{option} '{shown}': no {what} id starts with it")
    if len(matches) > 1:
        named = ", ".join(printable(m, 80) for m in matches[:SHOWN])
        more = f" and {len(matches) - SHOWN} more" if len(matches) > SHOWN else ""
        raise UsageError(
            f"{option} '{shown}' is ambiguous: {len(matches)} {what} ids start with it "
            f"({named}{more})",
            hint="give more characters of the id",
        )
    return matches[0]
