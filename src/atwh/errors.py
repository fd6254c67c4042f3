"""The one family of errors atwh raises, and the exit code each one ends in."""

from __future__ import annotations

import json
from enum import IntEnum
from urllib.parse import quote, quote_plus


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
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint is not None else None


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
    """Untrusted text (server messages) made safe for one terminal line, credentials
    redacted (before it is cut, so that no part of one is left)."""
    s = redact(str(text))
    if len(s) <= limit and s.isprintable() and "  " not in s and s == s.strip():
        return s  # the common case, without a pass per character
    s = redact(_one_line(s))  # a credential with a tab or two spaces, now one line too
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _one_line(s: str) -> str:
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    return " ".join(s.split())


# -- credentials never shown -------------------------------------------------------------

REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would blank out ordinary words; they guard nothing anyway
_secrets: set[str] = set()


def keep_secret(value: str | None) -> None:
    """Remember a credential (token, client secret, password, refresh token) so that no
    message shows it: every AtwhError and everything `printable` passes through `redact`.

    A server may echo it in any spelling it received: as is, form-encoded, JSON-escaped."""
    if not value or len(value) < MIN_SECRET:
        return
    forms = {value, json.dumps(value)[1:-1], _one_line(value)}  # the last as `printable` shows it
    try:  # an environment variable may hold undecodable bytes, kept as lone surrogates
        raw = value.encode("utf-8", "surrogateescape")
        forms.update((quote(raw, safe=""), quote_plus(raw)))
    except UnicodeEncodeError:
        pass
    _secrets.update(f for f in forms if len(f) >= MIN_SECRET)


def forget_secrets() -> None:
    _secrets.clear()


def redact(text: str) -> str:
    """`text` with every credential atwh was given or got replaced by [redacted]."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
