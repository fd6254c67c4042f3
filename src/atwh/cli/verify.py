"""`atwh verify [FILE|-]`: is this signature right, and if not, why not."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o
from atwh.cli import params


def verify(
    file: o.BodyFile = "-",
    secret: o.SigningSecret = None,
    sig: Annotated[
        str | None,
        typer.Option(
            "--signature",
            metavar="SIG",
            show_default=False,
            help="The x-allthings-signature header's value.",
        ),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            metavar="MS",
            show_default=False,
            help="The x-allthings-signature-timestamp header's value.",
        ),
    ] = None,
    now: Annotated[
        int | None,
        typer.Option(
            "--now",
            click_type=params.Number("MS", min=0),
            show_default=False,
            help="Check as if the time were MS (milliseconds since 1970) [default: now]",
        ),
    ] = None,
    tolerance: o.Tolerance = 120.0,
    as_json: o.JsonOnly = False,
) -> int:
    """Check a signature as 'atwh serve' does, and say why it fails.

    Valid when the signature is the hex HMAC-SHA256 of the exact bytes and the timestamp
    is within the tolerance: exit 0; else exit 1 with one cause (malformed-signature,
    prefix, base64, trailing-newline, re-serialised, secret-whitespace, wrong-secret,
    missing-timestamp, seconds, stale, future) and the fix. --json prints {"valid",
    "cause", "explanation"}.

    Examples:

      atwh verify body.json --secret s3cret --signature "$SIG" --timestamp 1767225595000

      atwh verify body.json --signature "$SIG" --timestamp "$TS" --json
    """
    import json

    from atwh import signature
    from atwh.endpoint.trigger import read_body
    from atwh.errors import ExitStatus, UsageError
    from atwh.output.endpoint import diagnosis_text

    if not secret:
        raise UsageError(o.NO_SECRET)
    if sig is None and timestamp is None:  # (one of them missing is what a request can be)
        raise UsageError(
            "nothing to verify: give --signature and --timestamp, the request's "
            f"{signature.SIGNATURE_HEADER} and {signature.TIMESTAMP_HEADER} headers",
            hint="--signature '' for a request that came without one",
        )
    body = read_body(file)
    clock = now / 1000 if now is not None else None
    diagnosis = signature.diagnose(body, sig, timestamp, secret, tolerance, now=clock)
    if as_json:
        typer.echo(json.dumps(diagnosis.as_json()))
    else:
        typer.echo(diagnosis_text(diagnosis))
    typer.echo(f"Note: {signature.UNSIGNED_TIMESTAMP}", err=True)
    return ExitStatus.OK if diagnosis.valid else ExitStatus.FAILED
