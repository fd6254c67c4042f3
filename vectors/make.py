"""Writes vectors/signing.json, the published signing test vectors: `python vectors/make.py`.

Only the standard library computes them (hmac, hashlib, json), never atwh's own signature
module, so that atwh's tests, which run the module over the file, check one against the other.

The file is the contract, not this script: a vector, once published, is never changed in
place (its id is never reused); a new case is a new vector with a new id, added at the end of
its list. `python vectors/make.py --check` fails when the file and this script disagree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

FILE = Path(__file__).with_name("signing.json")

# A published secret: derived from a documented string, so anyone can re-derive it. Never use
# it, or anything derived from a fixed string, for a real webhook.
SECRET_SOURCE = "atwh-signing-test-vectors-v1-DO-NOT-USE-IN-PRODUCTION"
SECRET = hashlib.sha256(SECRET_SOURCE.encode()).hexdigest()
OTHER_SECRET = hashlib.sha256(b"another webhook's secret").hexdigest()
NOW = 1767225600000  # 2026-01-01T00:00:00Z, in milliseconds: every vector's clock
FRESH = NOW - 5000  # a timestamp 5 s old
TOLERANCE_MS = 120_000  # how old a timestamp may be (the vendor's current page: 2 minutes)
FUTURE_SKEW_MS = 30_000  # how far ahead of the verifier's clock a sender's may run


def js(value: object) -> bytes:
    """JSON.stringify(value) as UTF-8: compact, non-ASCII as is (what Allthings sends)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def hexmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def ticket(name: str, data: dict[str, object], event_id: str) -> dict[str, object]:
    return {
        "event": {
            "id": event_id,
            "name": name,
            "urn": "urn:allthings:app:5d8a3c2e1f0b4a6c9e7d2b1a:tickets",
            "createdDate": "2025-12-31T23:59:54.812Z",
            "data": data,
        }
    }


CREATED = ticket(
    "ticket.created",
    {"id": "5f2a9c1e07b3", "title": "Leaking tap in kitchen", "status": "open"},
    "0b6f3c5e-8d1a-4e2b-9f7c-3a1d5e6b7c80",
)
UPDATED = ticket(
    "ticket.updated",
    {
        "id": "5f2a9c1e07b3",
        "title": "Leaking tap in kitchen",
        "status": "closed",
        "delta": {"status": {"from": "open", "to": "closed"}},
    },
    "1c7e4d6f-9e2b-4f3c-8a8d-4b2e6f7c8d91",
)
ACCENTS = ticket(
    "ticket.created",
    {"id": "7a1b2c3d4e5f", "title": "Heizung defekt – Café Münchën, 日本語", "status": "open"},
    "2d8f5e7a-af3c-4a4d-9b9e-5c3f7a8d9ea2",
)
COMPACT = js(CREATED)
PRETTY = json.dumps(CREATED, indent=2, ensure_ascii=False).encode()
NON_ASCII = js(ACCENTS)
ESCAPED = json.dumps(ACCENTS, separators=(",", ":")).encode()  # \u00e9 and the like
LARGE = js(
    ticket(
        "ticket.created",
        {"id": "9c3d4e5f6a7b", "title": "Large", "notes": ["Ablesung Wasserzähler " * 40] * 80},
        "3e9a6f8b-b04d-4b5e-8cae-6d4a8b9eafb3",
    )
)


# A body as Python's json.dumps or PHP's json_encode may write it (1.0, and PHP's "\\/"), and
# what JavaScript's JSON.stringify(JSON.parse(body)) writes of it: what a Node receiver that
# verifies the parsed body signs.
FLOATS = (
    b'{"event":{"id":"3e9a6f8b-b04d-4b5e-8caf-6d4a8b9e0fb3","name":"ticket.updated",'
    b'"urn":"urn:allthings:app:5d8a3c2e1f0b4a6c9e7d2b1a:tickets",'
    b'"createdDate":"2025-12-31T23:59:54.812Z","data":{"id":"5f2a9c1e07b3","rating":1.0,'
    b'"link":"https:\\/\\/example.com\\/tickets\\/5f2a9c1e07b3"}}}'
)
FLOATS_AS_JS = FLOATS.replace(b"1.0", b"1").replace(b"\\/", b"/")


def vector(
    id: str,
    description: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None = str(FRESH),
    cause: str | None = None,
    secret: str = SECRET,
) -> dict[str, object]:
    return {
        "id": id,
        "description": description,
        "secret": secret,
        "body_base64": base64.b64encode(body).decode(),
        "timestamp": timestamp,
        "signature": signature,
        "now": NOW,
        "valid": cause is None,
        "cause": cause,
    }


def vectors() -> list[dict[str, object]]:
    digest = bytes.fromhex(hexmac(COMPACT))
    return [
        # -- valid: the signature is the HMAC of the bytes, the timestamp within the window
        vector("valid-compact", "An event as Allthings sends it: JSON.stringify's compact "
               "form.", COMPACT, hexmac(COMPACT)),
        vector("valid-ticket-updated", "ticket.updated, its changes in event.data.delta.",
               js(UPDATED), hexmac(js(UPDATED))),
        vector("valid-pretty", "A pretty-printed body: the bytes are signed, whatever their "
               "layout.", PRETTY, hexmac(PRETTY)),
        vector("valid-non-ascii-raw", "Non-ASCII characters written as UTF-8 bytes.",
               NON_ASCII, hexmac(NON_ASCII)),
        vector("valid-non-ascii-escaped", "The same characters written as \\u escapes: other "
               "bytes, another signature.", ESCAPED, hexmac(ESCAPED)),
        vector("valid-empty-body", "An empty body.", b"", hexmac(b"")),
        vector("valid-trailing-newline", "A body that ends with a newline, signed with it.",
               COMPACT + b"\n", hexmac(COMPACT + b"\n")),
        vector("valid-large-body", f"A large body ({len(LARGE):,} bytes).", LARGE,
               hexmac(LARGE)),
        vector("valid-uppercase-hex", "The signature in upper-case hex: hex digits compare "
               "case-insensitively.", COMPACT, hexmac(COMPACT).upper()),
        vector("valid-at-tolerance", "A timestamp exactly as old as the tolerance (120 s).",
               COMPACT, hexmac(COMPACT), str(NOW - TOLERANCE_MS)),
        vector("valid-future-within-skew", "A timestamp 30 s ahead of the verifier's clock: "
               "the skew allowed.", COMPACT, hexmac(COMPACT), str(NOW + FUTURE_SKEW_MS)),
        # -- invalid: the signature's causes first, in the order a verifier tries them
        vector("malformed-truncated", "The signature cut short.", COMPACT,
               hexmac(COMPACT)[:-2], cause="malformed-signature"),
        vector("malformed-empty", "An empty signature header.", COMPACT, "",
               cause="malformed-signature"),
        vector("malformed-null", "No signature header (the registration's test request "
               "has none, and verifies nothing).", COMPACT, None, cause="malformed-signature"),
        vector("malformed-not-hex", "64 characters that are not hex digits.", COMPACT,
               "z" * 64, cause="malformed-signature"),
        vector("prefix-sha256", "A 'sha256=' prefix in front of the right HMAC.", COMPACT,
               "sha256=" + hexmac(COMPACT), cause="prefix"),
        vector("base64-digest", "The right HMAC in base64 instead of hex.", COMPACT,
               base64.b64encode(digest).decode(), cause="base64"),
        vector("trailing-newline-added", "Signed with a final newline the body does not "
               "have.", COMPACT, hexmac(COMPACT + b"\n"), cause="trailing-newline"),
        vector("trailing-newline-removed", "Signed without the final newline the body has.",
               COMPACT + b"\n", hexmac(COMPACT), cause="trailing-newline"),
        vector("re-serialised-python-spaces", "Signed over the JSON written again by "
               "Python's json.dumps (', ' and ': ').", COMPACT,
               hexmac(json.dumps(CREATED, ensure_ascii=False).encode()), cause="re-serialised"),
        vector("re-serialised-compact", "A pretty body, signed over JSON.stringify's compact "
               "form of it.", PRETTY, hexmac(COMPACT), cause="re-serialised"),
        vector("re-serialised-ascii-escaped", "Non-ASCII sent as UTF-8, signed with \\u "
               "escapes.", NON_ASCII, hexmac(ESCAPED), cause="re-serialised"),
        vector("re-serialised-sorted-keys", "Signed over the JSON with its keys sorted.",
               COMPACT, hexmac(json.dumps(CREATED, separators=(",", ":"), sort_keys=True,
                                          ensure_ascii=False).encode()), cause="re-serialised"),
        vector("secret-trailing-newline", "Signed with the secret plus the newline a file "
               "left after it.", COMPACT, hexmac(COMPACT, SECRET + "\n"),
               cause="secret-whitespace"),
        vector("wrong-secret", "Signed with another webhook's secret.", COMPACT,
               hexmac(COMPACT, OTHER_SECRET), cause="wrong-secret"),
        vector("wrong-secret-tampered-body", "The body changed after it was signed.",
               COMPACT.replace(b"open", b"shut"), hexmac(COMPACT), cause="wrong-secret"),
        vector("wrong-secret-timestamp-signed", "Signed over 'timestamp.body', as the vendor's "
               "prose says; its code signs the body alone.", COMPACT,
               hexmac(str(FRESH).encode() + b"." + COMPACT), cause="wrong-secret"),
        vector("wrong-secret-before-stale", "A wrong signature and a stale timestamp: the "
               "signature's cause comes first.", COMPACT, hexmac(COMPACT, OTHER_SECRET),
               str(NOW - 600_000), cause="wrong-secret"),
        # -- invalid: the signature right, the timestamp not
        vector("missing-timestamp-null", "No timestamp header.", COMPACT, hexmac(COMPACT),
               None, cause="missing-timestamp"),
        vector("missing-timestamp-empty", "An empty timestamp header.", COMPACT,
               hexmac(COMPACT), "", cause="missing-timestamp"),
        vector("missing-timestamp-not-a-number", "A timestamp that is not milliseconds: an "
               "ISO date.", COMPACT, hexmac(COMPACT), "2025-12-31T23:59:55Z",
               cause="missing-timestamp"),
        vector("seconds-timestamp", "The timestamp in seconds, not milliseconds.", COMPACT,
               hexmac(COMPACT), str(FRESH // 1000), cause="seconds"),
        vector("stale-just-past-tolerance", "A timestamp 1 ms older than the tolerance.",
               COMPACT, hexmac(COMPACT), str(NOW - TOLERANCE_MS - 1), cause="stale"),
        vector("stale-five-minutes", "A timestamp 5 minutes old (the vendor's earlier "
               "tolerance, no longer its current one).", COMPACT, hexmac(COMPACT),
               str(NOW - 300_000), cause="stale"),
        vector("future-past-skew", "A timestamp 1 ms further ahead than the skew allowed.",
               COMPACT, hexmac(COMPACT), str(NOW + FUTURE_SKEW_MS + 1), cause="future"),
        # -- added after the first publication (new ids at the end; none changed in place)
        vector("seconds-timestamp-long-ago", "A timestamp in seconds from long before the "
               "clock (2023): seconds still, not merely stale.", COMPACT, hexmac(COMPACT),
               "1700000000", cause="seconds"),
        vector("re-serialised-pretty-ascii-escaped", "Non-ASCII sent as UTF-8, signed over "
               "Python's json.dumps(indent=2): pretty and \\u-escaped.", NON_ASCII,
               hexmac(json.dumps(ACCENTS, indent=2).encode()), cause="re-serialised"),
        vector("secret-whitespace-stripped", "The secret as read from a file, its newline "
               "kept; the sender signed with the secret alone.", COMPACT, hexmac(COMPACT),
               secret=SECRET + "\n", cause="secret-whitespace"),
        vector("re-serialised-javascript-numbers", "Written with 1.0 and \\/ (as Python "
               "and PHP write), signed over JSON.stringify(JSON.parse(body)): 1 and /.",
               FLOATS, hexmac(FLOATS_AS_JS), cause="re-serialised"),
    ]  # fmt: skip


def document() -> dict[str, object]:
    return {
        "version": 1,
        "algorithm": "HMAC-SHA256",
        "description": (
            "Test vectors for verifying Allthings webhook signatures, from atwh. "
            "x-allthings-signature is the lowercase hex HMAC-SHA256 of the raw body bytes "
            "(body_base64, decoded), keyed with the secret's UTF-8 bytes; "
            "x-allthings-signature-timestamp is milliseconds since 1970 and is NOT signed. "
            "A request is valid when the signature equals the HMAC (hex compared "
            "case-insensitively, in constant time) and the timestamp is a whole number of "
            "milliseconds no older than tolerance_ms and no further ahead than "
            "future_skew_ms, measured from `now`. `cause` names the likeliest mistake "
            "behind an invalid vector (the ids of 'atwh verify'); the signature's causes are "
            "tried before the timestamp's. Look vectors up by `id`: ids are stable and never "
            "reused, a vector is never changed in place, new cases get new ids."
        ),
        "signature_header": "x-allthings-signature",
        "timestamp_header": "x-allthings-signature-timestamp",
        "tolerance_ms": TOLERANCE_MS,
        "future_skew_ms": FUTURE_SKEW_MS,
        "secret_provenance": f"SHA-256, in hex, of the ASCII string {SECRET_SOURCE!r}.",
        "WARNING": "This secret is public: never use it, or any value derived from a fixed "
        "string, for a real webhook.",
        "causes": [
            "malformed-signature",
            "prefix",
            "base64",
            "trailing-newline",
            "re-serialised",
            "secret-whitespace",
            "wrong-secret",
            "missing-timestamp",
            "seconds",
            "stale",
            "future",
        ],
        "vectors": vectors(),
    }


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if FILE.read_text(encoding="utf-8") != text():
            print(f"{FILE} differs from what {Path(__file__).name} writes", file=sys.stderr)
            return 1
        return 0
    FILE.write_text(text(), encoding="utf-8")
    print(f"wrote {FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
