"""Allthings webhook signatures: hex HMAC-SHA256 of the raw body, and a ms timestamp.

The vendor's prose says the timestamp is signed too; its example code (every revision)
signs the body alone. Verification is body-only; `matching_schemes` can tell which
variant a real captured delivery uses, for debugging, but nothing switches silently.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import lru_cache

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
            return Rejection("no_timestamp", f"missing {TIMESTAMP_HEADER} header")
        if not text.isascii() or not text.isdigit() or len(text) > 16:
            return Rejection(
                "bad_timestamp", f"unreadable {TIMESTAMP_HEADER}: expected milliseconds"
            )
        sent = int(text) / 1000
        now = time.time() if now is None else now
        if sent < now - self.tolerance:
            if abs(int(text) - now) <= max(self.tolerance, 86400):  # seconds, not milliseconds
                return Rejection(
                    "too_old",
                    f"{TIMESTAMP_HEADER} {text} looks like seconds since 1970; "
                    "it must be milliseconds",
                )
            return Rejection(
                "too_old", f"timestamp is {now - sent:.0f}s old (tolerance {self.tolerance:g}s)"
            )
        if sent > now + self.future_skew:
            return Rejection(
                "too_new",
                f"timestamp is {sent - now:.0f}s in the future (allowed {self.future_skew:g}s)",
            )
        mac = self._keyed.copy()
        mac.update(body)
        if not _hex_equal(mac.hexdigest(), signature):
            return Rejection("bad_signature", "signature does not match the body")
        return None


def headers_for(body: bytes, secret: str | bytes, now_ms: int | None = None) -> dict[str, str]:
    """The headers Allthings sends with a signed delivery."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        TIMESTAMP_HEADER: str(ms),
    }
