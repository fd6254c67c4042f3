"""What `replay`, `inbox replay` and `reconcile --replay` share once the events are chosen:
the ledger (skip what was already fixed), --save and --as curl (write the requests down
instead), --dry-run, asking before many events go to a remote host, and sending.

The command line gives `deliver` a `Ui`: how to speak to the person and ask them. Nothing
here prints or reads a terminal, so it is tested without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atwh.recover.replay import Outcome, Report
from atwh.recover.selection import Candidate


@dataclass(slots=True)
class Sending:
    """How to send: what `replay`, `inbox replay` and `reconcile --replay` were told."""

    target: str
    secret: str | None
    source: str  # the ledger's name for where the events come from
    concurrency: int = 1
    rate: float | None = None
    timeout: float = 30.0
    dry_run: bool = False
    yes: bool = False
    force: bool = False
    ledger: str | None = None
    save: str | None = None
    as_: str | None = None


@dataclass(slots=True)
class Ui:
    """How `deliver` speaks to the person: `say` a line on stderr, `out` a line of data on
    stdout, `warn`, `confirm(count, target)` before sending, and `on_outcome` as each event
    is answered (None: nothing shown while sending)."""

    say: Callable[[str], None]
    out: Callable[[str], None]
    warn: Callable[[str], None]
    confirm: Callable[[int, str], bool]
    on_outcome: Callable[[Outcome], None] | None = None


CURL_NOTE = (
    "Note: each command carries a timestamp from now; the receiver rejects it once "
    "older than its tolerance (2 minutes by default). A body over 64 KiB is written into "
    "the current directory (atwh-curl-*.body) and read from there."
)


def deliver(candidates: list[Candidate], how: Sending, nothing: str, ui: Ui) -> Report | None:
    """The ledger, dry run, fixtures, confirmation, sending: the report, or None when
    nothing was to be sent (or it was written down instead, with --save or --as curl)."""
    from atwh import __version__
    from atwh.recover import fixtures
    from atwh.recover.ledger import Ledger
    from atwh.recover.replay import ReplayOptions, needs_confirmation, skip_replayed
    from atwh.recover.replay import dry_run as plan
    from atwh.recover.replay import replay as run

    if not candidates:
        ui.say(f"Nothing to replay: {nothing}")
        return None
    with Ledger(Path(how.ledger) if how.ledger else None) as book:
        if not how.force:
            skip_replayed(candidates, book, how.source, how.target)
        if how.save is not None:
            written = fixtures.save(candidates, how.target, how.secret, Path(how.save))
            ui.say(f"Wrote {len(written) // 2:,} requests into {how.save} (nothing sent).")
            return None
        if how.as_ is not None:
            for command in fixtures.curl_commands(candidates, how.target, how.secret):
                ui.out(command)
            ui.say(CURL_NOTE)
            return None
        if how.dry_run:
            return plan(candidates, how.target)
        to_send = sum(c.skip is None for c in candidates)
        if to_send and needs_confirmation(how.target, to_send) and not how.yes:
            if not ui.confirm(to_send, how.target):
                ui.say("Nothing sent.")
                return None
        if to_send and not how.secret:
            ui.warn("no secret: the events go out unsigned")
        opts = ReplayOptions(
            target=how.target,
            secret=how.secret,
            concurrency=how.concurrency,
            rate=how.rate,
            timeout=how.timeout,
            user_agent=f"atwh/{__version__} (replay)",
            force=how.force,
        )
        return run(candidates, opts, book, how.source, ui.on_outcome)
