"""The one family of errors atwh raises, and the exit code each one ends in."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes, stable and listed in README.md."""

    OK = 0
    FAILURES_FOUND = 1  # only with `failures --exit-code`
    USAGE = 2  # bad option or argument, missing webhook id, bad config file
    AUTH = 3  # no credentials, or the API / token endpoint refused them (401, 403)
    NOT_FOUND = 4  # the webhook (or delivery) does not exist or is not visible
    API = 5  # the API answered with an error, or with something that is not GraphQL
    NETWORK = 6  # unreachable, timed out, connection dropped (after retries)
    OUTPUT = 7  # the output file could not be written
    INTERRUPTED = 130


class AtwhError(Exception):
    """Base of every error atwh reports to a user: one line, one exit code."""

    exit_status = ExitStatus.API

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AtwhError):
    exit_status = ExitStatus.USAGE


class AuthError(AtwhError):
    exit_status = ExitStatus.AUTH


class NotFoundError(AtwhError):
    exit_status = ExitStatus.NOT_FOUND


class ApiError(AtwhError):
    exit_status = ExitStatus.API


class NetworkError(AtwhError):
    exit_status = ExitStatus.NETWORK


class OutputError(AtwhError):
    exit_status = ExitStatus.OUTPUT


def printable(text: object, limit: int | None = 300, *, lines: bool = False) -> str:
    """Untrusted text (anything from the network) made safe for a terminal: the one
    function every view of it goes through.

    Every control or invisible formatting character (ESC, BEL, DEL, C1 controls such as
    U+009B CSI, bidi overrides, lone surrogates) is shown as its escape (ESC as \\u001b),
    never sent as it is: no title change, screen clear, hyperlink or reordered text. As
    one line, whitespace runs become one space; with lines=True, line breaks (and tabs)
    are kept. The escapes are JSON's own, so JSON text stays valid JSON. Cut to `limit`
    characters, ending in …, unless limit is None.
    """
    s = str(text)
    if not lines:
        if (limit is None or len(s) <= limit) and s.isprintable() and "  " not in s:
            if s == s.strip():
                return s  # the common case, without a pass per character
        s = " ".join(s.split())
    elif not s.isprintable():
        s = s.replace("\r\n", "\n")
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() or ch in _KEPT else _escape(ch) for ch in s)
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


_KEPT = frozenset("\n\t ")


def _escape(ch: str) -> str:
    import unicodedata

    if unicodedata.category(ch) == "Zs":  # a space of another width: harmless
        return ch
    code = ord(ch)
    if code > 0xFFFF:  # as JSON writes it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"
