"""A request written down as a ready-to-run curl command, instead of sent: `replay --as curl`,
`trigger --as curl`, `sign --as curl`."""

from __future__ import annotations


def shows_as_is(body: bytes) -> bool:
    """Whether a body can go into a shell command as a quoted argument: UTF-8 text a
    terminal shows as it is (no control characters), and not curl's `@FILE`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.replace("\n", "").replace("\t", "").isprintable() and not text.startswith("@")


def curl_command(
    url: str, headers: dict[str, str], body: bytes, body_file: str | None = None
) -> str:
    """One request as a ready-to-run curl command, the body byte for byte: read from
    `body_file` when given, else a quoted argument when it `shows_as_is`, else through
    printf's octal escapes."""
    import shlex

    parts = ["curl", "-sS", "-X", "POST", shlex.quote(url)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body_file is not None:
        return " ".join([*parts, "--data-binary", shlex.quote(f"@{body_file}")])
    if shows_as_is(body):
        return " ".join([*parts, "--data-binary", shlex.quote(body.decode("utf-8"))])
    escaped = "".join(f"\\{b:03o}" for b in body)
    return f"printf '{escaped}' | " + " ".join([*parts, "--data-binary", "@-"])
