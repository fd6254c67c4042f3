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


def printable(text: object, limit: int = 300) -> str:
    """Untrusted text (server messages) made safe for one terminal line."""
    s = str(text)
    if len(s) <= limit and s.isprintable() and "  " not in s and s == s.strip():
        return s  # the common case, without a pass per character
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
