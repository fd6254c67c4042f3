"""`atwh sign [FILE|-]`: the signature headers Allthings would send with these bytes."""

from __future__ import annotations

from typing import Annotated

import typer

from atwh.cli import options as o


def sign(
    file: o.BodyFile = "-",
    secret: o.SigningSecret = None,
    timestamp: o.Timestamp = None,
    as_: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--as",
            metavar="curl URL",
            show_default=False,
            help="Print a ready curl command that POSTs the body, signed, to URL.",
        ),
    ] = None,
    as_json: o.JsonOnly = False,
) -> None:
    """Print the two signature headers for the exact bytes of FILE (or stdin).

    x-allthings-signature is the hex HMAC-SHA256 of the bytes; the timestamp (now, unless
    --timestamp) is not signed. --json prints {"signature", "timestamp"}.

    Examples:

      atwh sign payload.json --secret s3cret

      printf '{"event":{}}' | atwh sign --secret s3cret --timestamp -10m

      atwh sign payload.json --secret s3cret --as curl http://localhost:3000/webhook
    """
    import json
    from pathlib import Path

    from atwh import signature
    from atwh.endpoint import trigger as t
    from atwh.errors import UsageError

    if not secret:
        raise UsageError(o.NO_SECRET)
    if as_ is not None and as_[0] != "curl":
        raise UsageError(f"--as {as_[0]!r}: the one form is 'curl URL'")
    body = t.read_body(file)
    stamp = t.timestamp_ms(timestamp or "now")
    assert stamp is not None
    mac = signature.sign(body, secret)
    if as_ is not None:
        from atwh.core.config import http_url
        from atwh.curl import curl_command

        headers = {
            "content-type": "application/json",
            signature.SIGNATURE_HEADER: mac,
            signature.TIMESTAMP_HEADER: stamp,
        }
        url = http_url("--as curl", as_[1])
        body_file = file if file != "-" else t.spill(body, Path.cwd() / "atwh-sign-body.json")
        typer.echo(curl_command(url, headers, body, body_file))
        if file == "-" and body_file is not None:
            typer.echo(
                f"Wrote the body into {body_file}: larger than 4 KiB, or not plain text.",
                err=True,
            )
    elif as_json:
        typer.echo(json.dumps({"signature": mac, "timestamp": stamp}))
    else:
        typer.echo(f"{signature.SIGNATURE_HEADER}: {mac}\n{signature.TIMESTAMP_HEADER}: {stamp}")
