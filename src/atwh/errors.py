"""The one family of errors atwh raises, and the exit code each one ends in."""

from __future__ import annotations

import re
from enum import IntEnum
from urllib.parse import quote, quote_plus


class ExitStatus(IntEnum):
    """Exit codes, stable and listed in README.md."""

    OK = 0
    # What was asked about failed: `failures --exit-code` found failures, a replay or
    # `webhooks ping` was not answered 2xx, `reconcile` found events lost, a `stats` bar
    # was missed, `tail --exit-on-failure` saw a failed attempt.
    FAILED = 1
    USAGE = 2  # bad option or argument, missing webhook id, bad config file
    AUTH = 3  # no credentials, or the API / token endpoint refused them (401, 403)
    NOT_FOUND = 4  # the webhook (or delivery) does not exist or is not visible
    API = 5  # the API answered with an error, or with something that is not GraphQL
    NETWORK = 6  # unreachable, timed out, connection dropped (after retries)
    OUTPUT = 7  # the output file could not be written
    BUG = 70  # an error atwh did not expect: a bug (sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C


class AtwhError(Exception):
    """Base of every error atwh reports to a user: one line, one exit code."""

    exit_status = ExitStatus.API

    def __init__(self, message: str, hint: str | None = None, api_code: str | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint is not None else None
        self.api_code = api_code  # the API's own code for a refusal (`URL_CHECK_FAILED`)


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
    are kept. The escapes are JSON's own, so JSON text stays valid JSON. Credentials are
    redacted (before the text is cut, so that no part of one is left). Cut to `limit`
    characters, ending in …, unless limit is None.
    """
    s = redact(str(text))
    if not lines and (limit is None or len(s) <= limit) and s.isprintable():
        if "  " not in s and s == s.strip():
            return s  # the common case, without a pass per character
    s = redact(_shown(s, lines))  # a credential with a tab or two spaces, shown differently
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


def visible(text: str) -> str:
    """`text` whole, with every control or invisible formatting character (ESC, C1, bidi
    overrides, line separators) escaped as JSON writes it, line breaks and tabs kept: for
    text atwh made (JSON it indented) that carries strings from the network."""
    return text if text.isprintable() else _shown(text, lines=True)


def _shown(s: str, lines: bool = False) -> str:
    """`s` with control characters escaped: on one line, or with its line breaks."""
    if not lines:
        s = " ".join(s.split())
    elif not s.isprintable():
        s = s.replace("\r\n", "\n")
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() or ch in _KEPT else _escape(ch) for ch in s)
    return s


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


# -- credentials never shown -------------------------------------------------------------

REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would blank out ordinary words; they guard nothing anyway
# A credential this long is redacted wherever it appears; a shorter one (a password, a dev
# token such as `sync`) only where a credential stands: after `Bearer`, `token`,
# `password`, `secret`, `authorization`, `api_key` and their separators, so that a word
# that happens to equal it (a webhook described `sync`) is shown
LONG_SECRET = 12
_CREDENTIAL_BEFORE = (
    r"(?i)((?:bearer|token|secret|password|passwd|authorization|api[_-]?key)"
    r"[\w-]{0,12}[\"']?(?:\s*[=:]\s*|\s+|%3D|=)[\"']?)"
)
_secrets: set[str] = set()
# a URL's userinfo: after the scheme, up to the last @ before the host ends
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")
_short: set[str] = set()
_short_pattern: re.Pattern[str] | None = None


def keep_secret(value: str | None) -> None:
    """Remember a credential (token, client secret, password, refresh token) so that no
    message shows it: every AtwhError and everything `printable` passes through `redact`.

    A server may echo it in any spelling it received: as is, form-encoded, JSON-escaped."""
    if not value or len(value) < MIN_SECRET:
        return
    import json  # here, not at start-up: every command imports this module

    forms = {value, json.dumps(value)[1:-1], _shown(value), _shown(value, lines=True)}
    try:  # an environment variable may hold undecodable bytes, kept as lone surrogates
        raw = value.encode("utf-8", "surrogateescape")
        forms.update((quote(raw, safe=""), quote_plus(raw)))
    except UnicodeEncodeError:
        pass
    global _short_pattern
    _secrets.update(f for f in forms if len(f) >= LONG_SECRET)
    short = {f for f in forms if MIN_SECRET <= len(f) < LONG_SECRET}
    if short - _short:
        _short.update(short)
        alternatives = "|".join(re.escape(f) for f in sorted(_short, key=len, reverse=True))
        _short_pattern = re.compile(f"{_CREDENTIAL_BEFORE}(?:{alternatives})")


def forget_secrets() -> None:
    global _short_pattern
    _secrets.clear()
    _short.clear()
    _short_pattern = None


def without_userinfo(url: str) -> str:
    """`url` (or any text holding URLs) with the user name and password of each URL
    (`https://user:pass@host/`) replaced by [redacted]: a URL is never shown with them."""
    if "@" not in url or "://" not in url:  # the common case, without a regex
        return url
    return _USERINFO.sub(rf"\1{REDACTED}@", url)


def redact(text: str) -> str:
    """`text` with every credential atwh was given or got replaced by [redacted]: a long
    one anywhere, a short one where a credential stands (`Bearer sync`, `password=…`); and
    the user name and password of every URL in it."""
    text = without_userinfo(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _short_pattern is not None:
        text = _short_pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
