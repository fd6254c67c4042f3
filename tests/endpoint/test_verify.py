"""`atwh verify`, `atwh sign`, `atwh inbox verify`: each cause id, the rule `serve` uses, and
the signing headers."""

from __future__ import annotations

import base64
import json
import shlex
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atwh import signature
from atwh.receiver import ReceiverSettings, create_app
from atwh.receiver.app import decide
from atwh.server import BackgroundServer
from tests.conftest import hmac_hex

SECRET = "verify-secret"
NOW_MS = 1767225600000
FRESH = str(NOW_MS - 5000)
BODY = '{"event":{"id":"e-1","name":"ticket.created","data":{"title":"Café"}}}'.encode()
GOOD = hmac_hex(BODY, SECRET)


def _b64() -> str:
    return base64.b64encode(bytes.fromhex(GOOD)).decode()


# (body, signature, timestamp, secret) -> the cause `verify` gives; one case (at least) per id
CAUSES: dict[str, tuple[bytes, str | None, str | None, str]] = {
    "malformed-signature": (BODY, GOOD[:40], FRESH, SECRET),
    "prefix": (BODY, "sha256=" + GOOD, FRESH, SECRET),
    "base64": (BODY, _b64(), FRESH, SECRET),
    "trailing-newline": (BODY + b"\n", GOOD, FRESH, SECRET),
    "re-serialised": (BODY, hmac_hex(json.dumps(json.loads(BODY)).encode(), SECRET), FRESH, SECRET),
    "secret-whitespace": (BODY, hmac_hex(BODY, SECRET), FRESH, SECRET + "\n"),
    "wrong-secret": (BODY, hmac_hex(BODY, "another"), FRESH, SECRET),
    "missing-timestamp": (BODY, GOOD, None, SECRET),
    "seconds": (BODY, GOOD, str(NOW_MS // 1000), SECRET),
    "stale": (BODY, GOOD, str(NOW_MS - 121_000), SECRET),
    "future": (BODY, GOOD, str(NOW_MS + 31_000), SECRET),
}


def test_every_cause_has_a_case():
    assert tuple(CAUSES) == signature.CAUSES


@pytest.mark.parametrize("cause", list(CAUSES))
def test_each_cause(cause, atwh, tmp_path):
    body, sig, ts, secret = CAUSES[cause]
    d = signature.diagnose(body, sig, ts, secret, now=NOW_MS / 1000)
    assert (d.valid, d.cause) == (False, cause)
    assert d.explanation.endswith(".") and "\n" not in d.explanation
    # the command says the same, and exits 1
    path = tmp_path / "body"
    path.write_bytes(body)
    args = ["verify", str(path), "--secret", secret, "--now", str(NOW_MS)]
    args += ["--signature", sig] if sig is not None else []
    args += ["--timestamp", ts] if ts is not None else []
    result = atwh(*args, "--json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout) == d.as_json()
    text = atwh(*args)
    assert text.exit_code == 1 and text.stdout.startswith(f"invalid ({cause}): ")


def test_variants_of_each_signature_cause():
    now = NOW_MS / 1000
    pretty = json.dumps(json.loads(BODY), indent=2, ensure_ascii=False).encode()
    cases = {
        # a prefix in front of the base64 form, upper-case prefix
        "prefix": ["sha256=" + _b64(), "SHA256=" + GOOD],
        "base64": [_b64().rstrip("="), base64.urlsafe_b64encode(bytes.fromhex(GOOD)).decode()],
        "malformed-signature": ["", "   ", "sha256=" + "0" * 64, "z" * 64, "sha512=abc"],
    }
    for cause, sigs in cases.items():
        for sig in sigs:
            assert signature.diagnose(BODY, sig, FRESH, SECRET, now=now).cause == cause, sig
    assert signature.diagnose(BODY, None, FRESH, SECRET, now=now).cause == "malformed-signature"
    # a final newline removed, and added as CRLF
    crlf = hmac_hex(BODY + b"\r\n", SECRET)
    assert signature.diagnose(BODY, crlf, FRESH, SECRET, now=now).cause == "trailing-newline"
    nl = BODY + b"\n"
    assert signature.diagnose(nl, GOOD, FRESH, SECRET, now=now).cause == "trailing-newline"
    # a pretty body signed compact; keys sorted; non-ASCII escaped
    assert signature.diagnose(pretty, GOOD, FRESH, SECRET, now=now).cause == "re-serialised"
    for options in ({"sort_keys": True, "separators": (",", ":")}, {"separators": (",", ":")}):
        again = json.dumps(json.loads(BODY), **options).encode()  # type: ignore[arg-type]
        sig = hmac_hex(again, SECRET)
        assert signature.diagnose(BODY, sig, FRESH, SECRET, now=now).cause == "re-serialised"
    # the secret with whitespace the signer kept
    sig = hmac_hex(BODY, SECRET + "\n")
    assert signature.diagnose(BODY, sig, FRESH, SECRET, now=now).cause == "secret-whitespace"
    # the vendor's prose (timestamp.body) is none of the mistakes, but the sentence says so
    sig = hmac_hex(FRESH.encode() + b"." + BODY, SECRET)
    d = signature.diagnose(BODY, sig, FRESH, SECRET, now=now)
    assert d.cause == "wrong-secret" and "timestamp.body" in d.explanation
    # a wrong signature comes before a stale timestamp
    sig = hmac_hex(BODY, "x")
    assert signature.diagnose(BODY, sig, "1", SECRET, now=now).cause == "wrong-secret"


# What node prints for JSON.stringify(JSON.parse(TEXT)) and JSON.stringify(.., null, 2): the
# numbers as JavaScript writes them (1.0 is 1, exponents without padding, integers past 2**53
# rounded), array-index keys first, "\\/" unescaped. Written down from node 20.
JS_TEXT = (
    '{"event":{"id":"e-2","name":"ticket.updated","data":{"rating":1.0,"ratio":1e-07,'
    '"big":12345678901234567890,"tiny":0.000001,"huge":1E21,"b":1,"2":"two",'
    '"link":"https:\\/\\/example.com\\/t","title":"Caf\\u00e9","e":[],"o":{}}}}'
)
JS_COMPACT = (
    '{"event":{"id":"e-2","name":"ticket.updated","data":{"2":"two","rating":1,"ratio":1e-7,'
    '"big":12345678901234567000,"tiny":0.000001,"huge":1e+21,"b":1,'
    '"link":"https://example.com/t","title":"Café","e":[],"o":{}}}}'
)


def test_re_serialised_by_javascript_with_its_own_numbers_and_key_order():
    """A Node receiver that verifies JSON.stringify(req.body) writes 1.0 as 1, reorders
    index keys and drops the \\/ escapes: its HMAC is still found to be re-serialised."""
    now = NOW_MS / 1000
    value = json.loads(JS_TEXT, parse_int=signature._js_int)
    assert signature.js_stringify(value) == JS_COMPACT
    pretty = signature.js_stringify(value, "  ")
    assert pretty.startswith('{\n  "event": {\n    "id": "e-2",') and '"e": [],' in pretty
    assert json.loads(pretty) == json.loads(JS_COMPACT)
    for again in (JS_COMPACT, pretty):
        sig = hmac_hex(again.encode(), SECRET)
        d = signature.diagnose(JS_TEXT.encode(), sig, FRESH, SECRET, now=now)
        assert d.cause == "re-serialised" and "JSON.stringify" in d.explanation, again


@pytest.mark.parametrize(
    ("number", "written"),
    [(1.0, "1"), (-0.0, "0"), (0.1, "0.1"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"),
     (0.000001, "0.000001"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
     (1e16, "10000000000000000"), (5e-324, "5e-324"), (-2.5e-10, "-2.5e-10"),
     (1.7976931348623157e308, "1.7976931348623157e+308"), (2**53 + 1, "9007199254740992"),
     (float("nan"), "null"), (10**400, "null")],
)  # fmt: skip
def test_numbers_as_javascript_writes_them(number, written):
    assert signature.js_number(number) == written


def test_variants_of_each_timestamp_cause():
    now = NOW_MS / 1000
    for ts, cause in [
        ("", "missing-timestamp"),
        ("  ", "missing-timestamp"),
        ("2026-01-01T00:00:00Z", "missing-timestamp"),
        (str(NOW_MS / 1000), "seconds"),  # seconds with a fraction
        ("1", "stale"),
        (str(NOW_MS - 300_000), "stale"),
        (str(NOW_MS + 3_600_000), "future"),
    ]:
        assert signature.diagnose(BODY, GOOD, ts, SECRET, now=now).cause == cause, ts
    # --tolerance widens the window, as serve's does
    old = str(NOW_MS - 300_000)
    assert signature.diagnose(BODY, GOOD, old, SECRET, tolerance=600, now=now).valid


def test_valid_requests(atwh, tmp_path):
    now = NOW_MS / 1000
    for sig, ts in [
        (GOOD, FRESH),
        (GOOD.upper(), FRESH),  # upper-case hex, as serve accepts it
        (f" {GOOD} ", FRESH),
        (GOOD, str(NOW_MS + 30_000)),  # within the future skew
        (GOOD, str(NOW_MS - 120_000)),  # exactly the tolerance
    ]:
        d = signature.diagnose(BODY, sig, ts, SECRET, now=now)
        assert d.valid and d.cause is None, (sig, ts)
    path = tmp_path / "body"
    path.write_bytes(BODY)
    result = atwh(
        "verify", str(path), "--secret", SECRET, "--signature", GOOD,
        "--timestamp", FRESH, "--now", str(NOW_MS),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid: ")
    # it says plainly that the timestamp is not signed
    assert "not covered by the signature" in result.stderr and "event id" in result.stderr
    # stdin, and the clock of now when --now is left out
    ts = str(int(time.time() * 1000))
    piped = atwh("verify", "-", "--secret", SECRET, "--signature", GOOD, "--timestamp", ts,
                 input=BODY.decode())  # fmt: skip
    assert piped.exit_code == 0, piped.output


def test_verify_usage_errors(atwh, tmp_path):
    missing = atwh("verify", str(tmp_path / "nope"), "--secret", "s", "--signature", GOOD)
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: FILE ")
    nosecret = atwh("verify", str(tmp_path / "nope"), "--signature", GOOD)
    assert nosecret.exit_code == 2 and "--secret" in nosecret.stderr
    path = tmp_path / "body"
    path.write_bytes(BODY)
    bad = atwh("verify", str(path), "--secret", "s", "--tolerance", "soon")
    assert bad.exit_code == 2 and "--tolerance" in bad.stderr
    bad_now = atwh("verify", str(path), "--secret", "s", "--now", "yesterday")
    assert bad_now.exit_code == 2


@pytest.mark.parametrize("command", [["sign"], ["verify", "--signature", GOOD]])
def test_an_empty_file_name_says_so(atwh, command):
    """`atwh sign "$FILE"` with FILE unset: not "FILE : No such file or directory"."""
    result = atwh(*command[:1], "", *command[1:], "--secret", "s")
    assert result.exit_code == 2
    assert result.stderr == "Error: FILE is empty: give a file's path, or '-' for stdin\n"


# -- one rule with serve -------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=200),
    secret=st.text(min_size=1, max_size=20),
    offset=st.integers(min_value=-400_000, max_value=400_000),
    mutate=st.sampled_from(["none", "upper", "flip", "prefix", "seconds", "drop-ts"]),
)
def test_verify_is_valid_exactly_when_serve_verifies(body, secret, offset, mutate):
    """The verdict of `diagnose` and of the receiver's `decide` for the same request."""
    now = NOW_MS / 1000
    sig = hmac_hex(body, secret)
    ts: str | None = str(NOW_MS + offset)
    if mutate == "upper":
        sig = sig.upper()
    elif mutate == "flip":
        sig = ("1" if sig[0] == "0" else "0") + sig[1:]
    elif mutate == "prefix":
        sig = "sha256=" + sig
    elif mutate == "seconds":
        ts = str((NOW_MS + offset) // 1000)
    elif mutate == "drop-ts":
        ts = None
    d = signature.diagnose(body, sig, ts, secret, now=now)
    s = ReceiverSettings(db=Path("unused"), secret=secret, accept_any_event=True)
    decision = decide(body, sig, ts, s, now=now)
    assert d.valid == (decision.code != 401)
    assert (d.cause is None) == d.valid
    assert d.cause is None or d.cause in signature.CAUSES


# -- sign ----------------------------------------------------------------------------------


def test_sign_prints_the_headers_for_the_exact_bytes(atwh, tmp_path):
    path = tmp_path / "payload.json"
    path.write_bytes(BODY + b"\n")  # the newline is part of what is signed
    result = atwh("sign", str(path), "--secret", SECRET, "--timestamp", "1767225595000")
    assert result.exit_code == 0, result.output
    signed = hmac_hex(BODY + b"\n", SECRET)
    assert result.stdout == (
        f"x-allthings-signature: {signed}\nx-allthings-signature-timestamp: 1767225595000\n"
    )
    as_json = atwh("sign", "-", "--secret", SECRET, "--json", input=BODY.decode())
    got = json.loads(as_json.stdout)
    assert got["signature"] == GOOD
    assert abs(int(got["timestamp"]) - time.time() * 1000) < 60_000
    relative = atwh("sign", str(path), "--secret", SECRET, "--timestamp", "-10m", "--json")
    ts = int(json.loads(relative.stdout)["timestamp"])
    assert abs(ts - (time.time() - 600) * 1000) < 60_000
    # what sign prints, verify accepts
    v = atwh(
        "verify", "-", "--secret", SECRET, "--signature", got["signature"],
        "--timestamp", got["timestamp"], input=BODY.decode(),
    )  # fmt: skip
    assert v.exit_code == 0, v.output


def test_sign_as_curl_is_accepted_by_serve(atwh, tmp_path):
    path = tmp_path / "payload.json"
    path.write_bytes(BODY)
    result = atwh("sign", str(path), "--secret", SECRET, "--as", "curl", "http://h:1/webhook")
    assert result.exit_code == 0, result.output
    words = shlex.split(result.stdout)
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://h:1/webhook"]
    assert f"x-allthings-signature: {GOOD}" in words and words[-1] == f"@{path}"
    inline = atwh("sign", "-", "--secret", SECRET, "--as", "curl", "http://h:1/w", input="{}")
    assert shlex.split(inline.stdout)[-1] == "{}"
    bad = atwh("sign", str(path), "--secret", SECRET, "--as", "wget", "http://h:1/")
    assert bad.exit_code == 2
    not_url = atwh("sign", str(path), "--secret", SECRET, "--as", "curl", "h:1")
    assert not_url.exit_code == 2
    nosecret = atwh("sign", str(path))
    assert nosecret.exit_code == 2 and "--secret" in nosecret.stderr


def test_sign_as_curl_puts_a_large_stdin_body_in_a_file(atwh, tmp_path, monkeypatch):
    """A command line holds 128 KiB at most: a large (or binary) body from stdin goes into a
    file in the current directory, byte for byte, which the command reads."""
    monkeypatch.chdir(tmp_path)
    body = b'{"event":{"data":{"x":"' + b"x" * 200_000 + b'"}}}'
    large = atwh("sign", "-", "--secret", SECRET, "--as", "curl", "http://h:1/w", input=body)
    assert large.exit_code == 0, large.output
    written = tmp_path / "atwh-sign-body.json"
    assert shlex.split(large.stdout)[-1] == f"@{written}" and written.read_bytes() == body
    assert f"x-allthings-signature: {hmac_hex(body, SECRET)}" in shlex.split(large.stdout)
    assert "Wrote the body into" in large.stderr and len(large.stdout) < 1000


# -- inbox verify --------------------------------------------------------------------------


def test_inbox_verify_diagnoses_a_stored_request(atwh, tmp_path):
    import httpx

    db = tmp_path / "inbox.sqlite3"
    settings_ = ReceiverSettings(db=db, secret=SECRET)
    stamp = str(int(time.time() * 1000))
    with BackgroundServer(create_app(settings_)) as srv, httpx.Client() as client:
        url = srv.url("/webhook")
        good = client.post(
            url,
            content=BODY,
            headers={"x-allthings-signature": GOOD, "x-allthings-signature-timestamp": stamp},
        )
        other = BODY.replace(b"e-1", b"e-2")
        pre = client.post(url, content=other, headers={
            "x-allthings-signature": "sha256=" + hmac_hex(other, SECRET),
            "x-allthings-signature-timestamp": stamp,
        })  # fmt: skip
    assert (good.status_code, pre.status_code) == (200, 401)
    ok = atwh("inbox", "verify", "1", "--secret", SECRET, "--db", str(db))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("#1: valid: ")
    bad = atwh("inbox", "verify", "e-2", "--secret", SECRET, "--db", str(db), "--json")
    assert bad.exit_code == 1, bad.output
    assert json.loads(bad.stdout)["cause"] == "prefix"
    wrong = atwh("inbox", "--db", str(db), "verify", "1", "--secret", "nope")
    assert wrong.exit_code == 1 and "(wrong-secret)" in wrong.stdout
    shown = atwh("inbox", "show", "2", "--secret", SECRET, "--db", str(db))
    assert "invalid (prefix)" in shown.stdout
    as_json = atwh("inbox", "show", "2", "--secret", SECRET, "--db", str(db), "--json")
    assert json.loads(as_json.stdout)["verify"]["cause"] == "prefix"
    gone = atwh("inbox", "verify", "99", "--secret", SECRET, "--db", str(db))
    assert gone.exit_code == 4
    nosecret = atwh("inbox", "verify", "1", "--db", str(db))
    assert nosecret.exit_code == 2


@pytest.mark.parametrize(
    ("timestamp", "cause", "reason"),
    [(NOW_MS - 600_000, "stale", "too_old"), (NOW_MS + 600_000, "future", "too_new")],
)
def test_a_request_wrong_in_both_names_the_signature_and_the_timestamp_serve_named(
    timestamp, cause, reason
):
    """'atwh serve' checks the timestamp first, so for a request with the wrong secret and an
    old timestamp its reason was too_old while verify said wrong-secret, side by side in
    'inbox show', with no word of the other problem. The diagnosis names the signature's
    cause and says the timestamp is wrong too, in serve's words."""
    wrong = hmac_hex(BODY, "another-secret")
    d = signature.diagnose(BODY, wrong, str(timestamp), SECRET, now=NOW_MS / 1000)
    assert (d.valid, d.cause) == (False, "wrong-secret")
    assert f"The timestamp is wrong too ({cause};" in d.explanation
    assert f"its reason is {reason}" in d.explanation
    assert signature.check(BODY, wrong, str(timestamp), SECRET, now=NOW_MS / 1000).reason == reason


def test_verify_without_a_signature_or_a_timestamp_is_a_usage_error(atwh, tmp_path):
    """A new user who forgot both options read 'invalid (malformed-signature)', exit 1, as
    if their request were wrong; nothing was given to verify: exit 2. An empty value still
    stands for a request that came without the header."""
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    none = atwh("verify", str(body), "--secret", SECRET)
    assert none.exit_code == 2, none.output
    (line,) = none.stderr.strip().splitlines()
    assert line.startswith("Error: nothing to verify: give --signature and --timestamp")
    empty = atwh("verify", str(body), "--secret", SECRET, "--signature", "")
    assert empty.exit_code == 1 and empty.stdout.startswith("invalid (malformed-signature)")


def test_inbox_verify_says_the_registration_test_request_is_one(atwh, tmp_path):
    """The unsigned test request Allthings sends at registration read 'invalid
    (malformed-signature)', exit 1, as if it were a broken request."""
    import httpx

    from atwh import samples

    db = tmp_path / "inbox.sqlite3"
    with BackgroundServer(create_app(ReceiverSettings(db=db, secret=SECRET))) as srv:
        answer = httpx.post(srv.url("/webhook"), content=samples.TEST_EVENT_BODY)
    assert answer.status_code == 200
    text = atwh("inbox", "verify", "1", "--secret", SECRET, "--db", str(db))
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("#1: the registration's test request (unsigned, no event)")
    as_json = json.loads(atwh("inbox", "verify", "1", "--secret", SECRET, "--db", str(db),
                              "--json").stdout)  # fmt: skip
    assert as_json["test"] is True and as_json["valid"] is None
