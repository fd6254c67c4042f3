"""Allthings webhook signatures: hex HMAC-SHA256 of the raw body, and a ms timestamp.

The vendor's prose says the timestamp is signed too; its example code (every revision)
signs the body alone. Verification is body-only; `matching_schemes` can tell which
variant a real captured delivery uses, for debugging, but nothing switches silently.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SIGNATURE_HEADER = "x-allthings-signature"
TIMESTAMP_HEADER = "x-allthings-signature-timestamp"
DEFAULT_TOLERANCE = 120.0  # seconds: the vendor's current page (an earlier one said 5 minutes)
DEFAULT_FUTURE_SKEW = 30.0  # seconds a sender's clock may run ahead of ours

# The vendor's reference receiver answers a request without a signature as the registration's
# test request, with 200 and this message: such an answer acknowledges no event.
TEST_EVENT_ANSWER = "Received test event."

SCHEMES = ("body", "timestamp.body", "timestamp+body")


def sign(body: bytes, secret: str | bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, body, "sha256").hex()  # the one-call C path of hmac


def signed_message(scheme: str, body: bytes, timestamp: str) -> bytes:
    if scheme == "body":
        return body
    if scheme == "timestamp.body":
        return timestamp.encode() + b"." + body
    if scheme == "timestamp+body":
        return timestamp.encode() + body
    raise ValueError(scheme)


def signature_matches(body: bytes, signature: str, secret: str | bytes) -> bool:
    """Constant-time comparison of a hex signature with the body's HMAC (case-insensitive)."""
    return _hex_equal(sign(body, secret), signature)


def _hex_equal(expected: str, given: str) -> bool:
    """The expected hex digest against a received one, in constant time; the received one
    may carry surrounding blanks and upper case."""
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace"))


def matching_schemes(body: bytes, signature: str, timestamp: str, secret: str) -> list[str]:
    """Which of the plausible schemes a captured delivery's signature matches."""
    return [
        s
        for s in SCHEMES
        if signature_matches(signed_message(s, body, timestamp), signature, secret)
    ]


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # a stable code: no_timestamp, bad_timestamp, too_old, too_new, bad_signature
    message: str
    # for a timestamp refused: its cause id (CAUSES); `diagnose` finds the signature's
    cause: str = field(default="", compare=False)


def check(
    body: bytes,
    signature: str,
    timestamp: str | None,
    secret: str | bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    future_skew: float = DEFAULT_FUTURE_SKEW,
    now: float | None = None,
) -> Rejection | None:
    """None when the request is genuine and fresh; else why not."""
    return verifier(secret, tolerance, future_skew).check(body, signature, timestamp, now)


@lru_cache(maxsize=16)
def verifier(secret: str | bytes, tolerance: float, future_skew: float) -> Verifier:
    """The Verifier for these settings, made once (a receiver calls this per request)."""
    return Verifier(secret, tolerance, future_skew)


class Verifier:
    """Checks requests against one secret. The HMAC is keyed once and copied per request,
    which saves OpenSSL setting up the key and the digest every time. The copy is made
    from OpenSSL's own HMAC object where hmac.HMAC keeps one (`_hmac`): its copy, update
    and hexdigest are then C calls, without hmac.HMAC's Python methods around them."""

    __slots__ = ("_keyed", "tolerance", "future_skew")

    def __init__(self, secret: str | bytes, tolerance: float, future_skew: float) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._keyed = getattr(keyed, "_hmac", None) or keyed
        self.tolerance = tolerance
        self.future_skew = future_skew

    def check(
        self, body: bytes, signature: str, timestamp: str | None, now: float | None = None
    ) -> Rejection | None:
        text = timestamp.strip() if timestamp is not None else ""
        if not text:
            return Rejection(
                "no_timestamp", f"missing {TIMESTAMP_HEADER} header", MISSING_TIMESTAMP
            )
        now = time.time() if now is None else now
        if not text.isascii() or not text.isdigit() or len(text) > 16:
            return Rejection(
                "bad_timestamp",
                f"unreadable {TIMESTAMP_HEADER}: expected milliseconds",
                SECONDS if _in_seconds(text, now, self.tolerance) else MISSING_TIMESTAMP,
            )
        sent = int(text) / 1000
        if sent < now - self.tolerance:
            if _in_seconds(text, now, self.tolerance):
                return Rejection(
                    "too_old",
                    f"{TIMESTAMP_HEADER} {text} looks like seconds since 1970; "
                    "it must be milliseconds",
                    SECONDS,
                )
            return Rejection(
                "too_old",
                f"timestamp is {now - sent:.0f}s old (tolerance {self.tolerance:g}s)",
                STALE,
            )
        if sent > now + self.future_skew:
            return Rejection(
                "too_new",
                f"timestamp is {sent - now:.0f}s in the future (allowed {self.future_skew:g}s)",
                FUTURE,
            )
        mac = self._keyed.copy()
        mac.update(body)
        if not _hex_equal(mac.hexdigest(), signature):
            return Rejection("bad_signature", "signature does not match the body")
        return None


def _in_seconds(text: str, now: float, tolerance: float) -> bool:
    """Whether a timestamp reads as seconds since 1970, the usual mistake of a sender in
    Python or PHP: close to `now` as seconds (within a day, or the tolerance when larger),
    or ten digits (2001 to 2286 as seconds, 1970 as milliseconds: no sender's clock)."""
    try:
        value = float(text)
    except ValueError:
        return False
    return value == value and (abs(value - now) <= max(tolerance, 86400) or 1e9 <= value < 1e10)


def headers_for(body: bytes, secret: str | bytes, now_ms: int | None = None) -> dict[str, str]:
    """The headers Allthings sends with a signed delivery."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        TIMESTAMP_HEADER: str(ms),
    }


# -- why a signature check fails --------------------------------------------------------------

MALFORMED = "malformed-signature"
PREFIX = "prefix"
BASE64 = "base64"
TRAILING_NEWLINE = "trailing-newline"
RE_SERIALISED = "re-serialised"
SECRET_WHITESPACE = "secret-whitespace"
WRONG_SECRET = "wrong-secret"
MISSING_TIMESTAMP = "missing-timestamp"
SECONDS = "seconds"
STALE = "stale"
FUTURE = "future"
# Every cause `diagnose` gives, in the order it tries them: stable ids, published with the
# test vectors (vectors/signing.json); never renamed, never reused.
CAUSES = (
    MALFORMED,
    PREFIX,
    BASE64,
    TRAILING_NEWLINE,
    RE_SERIALISED,
    SECRET_WHITESPACE,
    WRONG_SECRET,
    MISSING_TIMESTAMP,
    SECONDS,
    STALE,
    FUTURE,
)


def vectors_file() -> Path:
    """The published test vectors (`vectors/signing.json`): inside the installed package, or
    the repository's in a source checkout."""
    from importlib import resources

    installed = resources.files("atwh") / "vectors" / "signing.json"
    if installed.is_file():
        return Path(str(installed))
    return Path(__file__).resolve().parents[2] / "vectors" / "signing.json"


UNSIGNED_TIMESTAMP = (
    f"The timestamp is not covered by the signature (Allthings' code signs the body only), so "
    f"a captured request can be sent again with a fresh {TIMESTAMP_HEADER}: deduplicating by "
    "event id, as 'atwh serve' does, is the real protection against replays."
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Whether a request passes the receiver's rule, and if not, the likeliest cause (one of
    CAUSES) and one sentence that says what to fix."""

    valid: bool
    cause: str | None
    explanation: str

    def as_json(self) -> dict[str, object]:
        return {"valid": self.valid, "cause": self.cause, "explanation": self.explanation}


def diagnose(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secret: str | bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    future_skew: float = DEFAULT_FUTURE_SKEW,
    now: float | None = None,
) -> Diagnosis:
    """`atwh verify`'s answer. Valid exactly when `atwh serve` accepts the request: the
    verdict is `Verifier.check`'s, the one rule of both. When it is not, the usual mistakes
    are tried in the order of CAUSES: the signature's first, then (the signature right) the
    timestamp's."""
    now = time.time() if now is None else now
    rejection = verifier(secret, tolerance, future_skew).check(
        body, signature or "", timestamp, now
    )
    key = secret.encode() if isinstance(secret, str) else secret
    if rejection is None:
        age = now - int((timestamp or "0").strip()) / 1000
        when = f"{age:.0f}s old" if age >= 0 else f"{-age:.0f}s ahead (skew allowed)"
        return Diagnosis(
            True,
            None,
            f"The signature is the HMAC-SHA256 of the {len(body):,} bytes and the timestamp is "
            f"{when}, within the tolerance of {tolerance:g}s.",
        )
    if signature is None or not signature.strip():
        return Diagnosis(
            False,
            MALFORMED,
            f"There is no {SIGNATURE_HEADER}: Allthings signs every event (only the "
            "registration's test request comes unsigned); send the hex HMAC-SHA256 of the body.",
        )
    if not signature_matches(body, signature, key):
        cause, explanation = _signature_cause(body, signature.strip(), key, timestamp)
        if rejection.cause:  # the timestamp is wrong too, and the receiver's rule says so
            problem = _timestamp_problem(rejection.cause, timestamp, now, tolerance, future_skew)
            explanation += (
                f" The timestamp is wrong too ({rejection.cause}; 'atwh serve' checks it "
                f"first, so its reason is {rejection.reason}): {problem}"
            )
        return Diagnosis(False, cause, explanation)
    why = _timestamp_explanation(rejection.cause, timestamp, now, tolerance, future_skew)
    return Diagnosis(False, rejection.cause, why)


_HEX64 = frozenset("0123456789abcdefABCDEF")


def _digest_of(text: str) -> bytes | None:
    if len(text) == 64 and set(text) <= _HEX64:
        return bytes.fromhex(text)
    return None


def _base64_digest(text: str) -> bytes | None:
    import base64
    import binascii

    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            continue
        if len(raw) == 32:
            return raw
    return None


def _signature_cause(body: bytes, given: str, key: bytes, timestamp: str | None) -> tuple[str, str]:
    right = hmac.digest(key, body, "sha256")
    digest = _digest_of(given)
    if digest is None:
        bare = given.split("=", 1)[1].strip() if "=" in given[:10] else None
        if bare is not None and hmac.compare_digest(
            _digest_of(bare) or _base64_digest(bare) or b"", right
        ):
            return PREFIX, (
                f"The signature carries a '{given.split('=', 1)[0]}=' prefix in front of the "
                "right HMAC: Allthings sends the bare hex digest, so compare without a prefix."
            )
        if hmac.compare_digest(_base64_digest(given) or b"", right):
            return BASE64, (
                "The signature is the base64 of the right HMAC: Allthings sends it as lowercase "
                "hex (hexdigest() in Python, digest('hex') in Node)."
            )
        return MALFORMED, (
            f"The signature is not 64 hex digits (it has {len(given):,} "
            f"character{'' if len(given) == 1 else 's'}) and not "
            "the HMAC in another form: send the hex HMAC-SHA256 of the raw body."
        )
    how = _matching(digest, ((key, changed, how) for changed, how in _newline_variants(body)))
    if how is not None:
        return TRAILING_NEWLINE, (
            f"The signature is the HMAC of the body with a final newline {how}: sign and "
            "verify the bytes exactly as they came (an editor, echo or a logger changes the end)."
        )
    how = _matching(digest, ((key, again, form) for again, form in _re_serialised(body)))
    if how is not None:
        return RE_SERIALISED, (
            f"The signature is the HMAC of the JSON written again ({how}), not of the bytes "
            "sent: verify the raw bytes, before any JSON parser touches them."
        )
    how = _matching(digest, ((other, body, how) for other, how in _secret_variants(key)))
    if how is not None:
        return SECRET_WHITESPACE, (
            f"The signature was made with the secret's surrounding whitespace {how}: "
            "strip the newline that reading the secret from a file or a variable leaves."
        )
    schemes = [
        s
        for s in SCHEMES[1:]
        if timestamp is not None
        and hmac.compare_digest(
            hmac.digest(key, signed_message(s, body, timestamp.strip()), "sha256"), digest
        )
    ]
    if schemes:
        return WRONG_SECRET, (
            f"The signature is the HMAC of the timestamp and the body ({schemes[0]}), as the "
            "vendor's prose says; Allthings' code signs the body alone: sign the body only."
        )
    return WRONG_SECRET, (
        "The signature matches none of the usual mistakes, so it was made with another secret "
        "(or over other bytes): check that the secret is this webhook's "
        "('atwh webhooks show ID --show-secret')."
    )


def _matching(digest: bytes, tries: Iterable[tuple[bytes, bytes, str]]) -> str | None:
    """The label of the first (key, message, label) whose HMAC is `digest`."""
    for key, message, label in tries:
        if hmac.compare_digest(hmac.digest(key, message, "sha256"), digest):
            return label
    return None


def _newline_variants(body: bytes) -> list[tuple[bytes, str]]:
    out = [(body + b"\n", "added"), (body + b"\r\n", "added (CRLF)")]
    if body.endswith(b"\r\n"):
        out.append((body[:-2], "removed (CRLF)"))
    if body.endswith(b"\n"):
        out.append((body[:-1], "removed"))
    return out


def _re_serialised(body: bytes) -> list[tuple[bytes, str]]:
    """The body as JSON libraries write it again: what a receiver signs when it verifies
    the parsed document instead of the raw bytes. JavaScript's forms are JSON.parse then
    JSON.stringify, numbers and key order included (`js_stringify`); Python's, json.dumps."""
    import json

    out: list[tuple[bytes, str]] = []
    forms: list[tuple[str, Any]] = []
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or too deeply nested): not re-serialised
        return out
    try:
        as_js = json.loads(body, parse_int=_js_int, parse_constant=_not_in_javascript)
    except (ValueError, RecursionError):  # NaN or Infinity: JSON.parse refuses them
        pass
    else:
        forms += [
            ("JSON.stringify's compact form", lambda: js_stringify(as_js)),
            ("JSON.stringify(body, null, 2)", lambda: js_stringify(as_js, "  ")),
            ("JSON.stringify(body, null, 4)", lambda: js_stringify(as_js, "    ")),
        ]
    for name, options in (
        ("pretty-printed, indent 2", {"indent": 2, "ensure_ascii": False}),
        ("pretty-printed, indent 4", {"indent": 4, "ensure_ascii": False}),
        ("Python's json.dumps, with spaces", {"ensure_ascii": False}),
        ("Python's json.dumps, compact", {"separators": (",", ":"), "ensure_ascii": False}),
        ("non-ASCII escaped as \\u", {"separators": (",", ":")}),
        ("Python's json.dumps, non-ASCII escaped", {}),
        ("keys sorted", {"separators": (",", ":"), "ensure_ascii": False, "sort_keys": True}),
        ("keys sorted, with spaces", {"ensure_ascii": False, "sort_keys": True}),
        ("keys sorted, non-ASCII escaped", {"separators": (",", ":"), "sort_keys": True}),
        ("pretty-printed, non-ASCII escaped", {"indent": 2}),
        ("pretty-printed, keys sorted", {"indent": 2, "ensure_ascii": False, "sort_keys": True}),
    ):
        forms.append((name, lambda o=options: json.dumps(value, **o)))
    seen = {body}
    for name, write in forms:
        try:
            again = write().encode()
        except (ValueError, RecursionError):  # a lone surrogate, nesting too deep
            continue
        if again not in seen:
            seen.add(again)
            out.append((again, name))
    return out


# -- JSON.stringify, as JavaScript writes it ----------------------------------------------------

_MAX_SAFE = 2**53


def _js_int(text: str) -> int | float:
    """An integer as JSON.parse reads it: a double, so past 2**53 it loses digits."""
    value = int(text)
    return value if -_MAX_SAFE <= value <= _MAX_SAFE else float(text)


def _not_in_javascript(text: str) -> None:
    raise ValueError(f"JSON.parse refuses {text}")


def js_number(value: float) -> str:
    """A number as JavaScript's Number#toString writes it (what JSON.stringify writes):
    `1` for 1.0, `1e-7`, `1e+21`, `100000000000000000000`; `null` for what is not finite."""
    if isinstance(value, int) and -_MAX_SAFE <= value <= _MAX_SAFE:
        return str(value)
    try:
        number = float(value)
    except OverflowError:
        return "null"
    if number != number or number in (float("inf"), float("-inf")):
        return "null"
    if number == 0:
        return "0"  # -0 too
    mantissa, _, exponent = repr(abs(number)).partition("e")  # the shortest round trip
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0) - (len(digits) - len(digits.lstrip("0")))
    digits = digits.strip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = (
            digits[0] + (f".{digits[1:]}" if k > 1 else "") + f"e{'+' if e >= 0 else '-'}{abs(e)}"
        )
    return ("-" if number < 0 else "") + text


def _js_string(text: str) -> str:
    import json
    import re

    written = json.dumps(text, ensure_ascii=False)  # the same escapes as JSON.stringify's
    return re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", written)


def _js_key_order(keys: Iterable[str]) -> list[str]:
    """The order JavaScript keeps an object's keys in: array indices ("0", "7") first, in
    numeric order, then the others as they came."""
    keys = list(keys)
    index = [k for k in keys if k.isascii() and k.isdigit() and (k == "0" or k[0] != "0")]
    index = [k for k in index if int(k) < 2**32 - 1]
    taken = set(index)
    return sorted(index, key=int) + [k for k in keys if k not in taken]


def js_stringify(value: Any, indent: str = "") -> str:
    """`JSON.stringify(value, null, indent)` of a value JSON.parse gave (parse integers with
    `_js_int`): JavaScript's numbers, key order, escapes and layout."""

    def write(v: Any, level: int) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, str):
            return _js_string(v)
        if isinstance(v, int | float):
            return js_number(v)
        if isinstance(v, dict):
            items = [f"{_js_string(k)}:{' ' if indent else ''}{write(v[k], level + 1)}"
                     for k in _js_key_order(v)]  # fmt: skip
            return _js_layout("{", items, "}", indent, level)
        items = [write(x, level + 1) for x in v]
        return _js_layout("[", items, "]", indent, level)

    return write(value, 0)


def _js_layout(start: str, items: list[str], end: str, indent: str, level: int) -> str:
    if not items:
        return start + end
    if not indent:
        return start + ",".join(items) + end
    inner = "\n" + indent * (level + 1)
    return start + inner + ("," + inner).join(items) + "\n" + indent * level + end


def _secret_variants(key: bytes) -> list[tuple[bytes, str]]:
    out = []
    if key.strip() != key:
        out.append((key.strip(), "removed"))
    out += [(key + b"\n", "added (a newline)"), (key + b"\r\n", "added (CRLF)")]
    out += [(key + b" ", "added (a space)"), (b" " + key, "added (a space)")]
    return out


def _timestamp_explanation(
    cause: str, timestamp: str | None, now: float, tolerance: float, future_skew: float
) -> str:
    problem = _timestamp_problem(cause, timestamp, now, tolerance, future_skew)
    return f"The signature is right, but {problem}"


def _timestamp_problem(
    cause: str, timestamp: str | None, now: float, tolerance: float, future_skew: float
) -> str:
    """What is wrong with the timestamp (cause: one of its CAUSES), in a clause."""
    shown = (timestamp or "").strip()[:40]
    if cause == MISSING_TIMESTAMP:
        if not shown:
            return (
                f"there is no {TIMESTAMP_HEADER}: Allthings sends the time in "
                "milliseconds (Date.now()), and a receiver rejects a request without it."
            )
        return (
            f"the timestamp {shown!r} is not milliseconds since 1970: send "
            f"Date.now(), such as {int(now * 1000)}."
        )
    if cause == SECONDS:
        return (
            f"the timestamp {shown} is in seconds: send milliseconds since 1970 "
            f"(Date.now(), such as {int(now * 1000)})."
        )
    if cause == FUTURE:
        ahead = int(shown) / 1000 - now
        return (
            f"the timestamp is {ahead:,.0f}s in the future, beyond the {future_skew:g}s "
            "of clock "
            "skew allowed: set the sender's clock right (NTP)."
        )
    age = now - int(shown) / 1000
    return (
        f"the timestamp is {age:,.0f}s old, beyond the tolerance of {tolerance:g}s: "
        "a receiver rejects it; send it with a fresh timestamp (the timestamp is not signed)."
    )
