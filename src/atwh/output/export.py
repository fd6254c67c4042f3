"""Deliveries for programs: JSON, NDJSON and CSV, written one delivery at a time."""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from atwh.client.model import Delivery, DeliveryRow
from atwh.core import jsontext
from atwh.core.dates import iso
from atwh.errors import OutputError, UsageError

FORMATS = ("table", "json", "ndjson", "csv")
EXTENSIONS = {
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
    ".txt": "table",
}
CSV_COLUMNS = (
    "id",
    "created_date",
    "delivery_date",
    "status",
    "status_code",
    "event_id",
    "event_name",
    "event_urn",
    "message",
    "response_body",
    "webhook_id",
    "failed",
    "lag_ms",
    "event_created_date",
    "retry_id",
)


def _to_json(record: Any) -> str:
    """One record as compact JSON text (orjson: several times faster than json.dumps on the
    export path, where encoding was most of the cost of an NDJSON row)."""
    return jsontext.dumps(record).decode()


def resolve_format(fmt: str | None, as_json: bool, output: str | None) -> str:
    """The output format: --json, else --format, else the --output extension, else table.
    An --output that is a directory is an OutputError here, before anything is fetched."""
    if output and output != "-" and Path(output).is_dir():
        raise OutputError(f"cannot write {output}: it is a directory")
    if as_json:
        if fmt not in (None, "json"):
            raise UsageError(f"--json and --format {fmt} disagree: give one of them")
        return "json"
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r} is not a format: use one of {', '.join(FORMATS)}")
        return fmt
    if output and output != "-":
        suffix = Path(output).suffix.lower()
        if suffix not in EXTENSIONS:
            raise UsageError(
                f"--output {output!r}: cannot tell the format from its extension: "
                f"use --format, or one of {', '.join(EXTENSIONS)}"
            )
        return EXTENSIONS[suffix]
    return "table"


@contextlib.contextmanager
def open_output(output: str | None) -> Iterator[IO[str]]:
    """stdout, or a file written under a temporary name and renamed into place on success,
    so an interrupted export never leaves half a file under the name asked for."""
    if output is None or output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        raise OutputError(f"cannot write {output}: it is a directory")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # a device (/dev/null), a FIFO or a link: renaming a file over it would replace it
        # (as root, /dev/null itself), so it is written in place, as the shell's > writes
        try:
            with open(target, "w", encoding="utf-8", newline="") as f:
                yield f
        except OSError as e:
            raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
        return
    try:
        fd, tmp = tempfile.mkstemp(
            dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}."
        )
    except OSError as e:
        raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as e:
        _unlink(tmp)
        raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# the message of a failed attempt without an answer or a reason: as the tables say it
NO_ANSWER = "no answer (the log records no reason: a timeout, a refused or a reset connection)"


def csv_row(d: Delivery) -> list[object]:
    return csv_row_of(d.row(), d.webhook_id, d.failed)


def csv_row_of(row: DeliveryRow, webhook_id: str | None, failed: bool) -> list[object]:
    """A delivery's CSV row (CSV_COLUMNS) from a DeliveryRow, and whether it failed. Dates
    as the API sent them (DeliveryRow.created_text, …), else iso() of the date."""
    created = row.created
    delivered = row.delivered
    created_text = row.created_text
    delivered_text = row.delivered_text
    event_created_text = row.event_created_text
    return [
        row.id,
        created_text if created_text is not None else iso(created),
        delivered_text if delivered_text is not None else iso(delivered),
        row.status,
        row.status_code,
        row.event_id,
        row.event_name,
        row.event_urn,
        row.message if row.message or row.status_code is not None or not failed else NO_ANSWER,
        row.body,
        webhook_id,
        "true" if failed else "false",
        round((delivered - created).total_seconds() * 1000)
        if created is not None and delivered is not None
        else None,
        event_created_text if event_created_text is not None else iso(row.event_created),
        row.retry_id,
    ]


class Exportable(Protocol):
    def to_api(self) -> dict[str, Any]: ...


class Exporter:
    """Writes records (deliveries, inbox records) in one format as they come;
    `close()` ends the document."""

    def __init__(
        self,
        fmt: str,
        stream: IO[str],
        columns: Sequence[str] = CSV_COLUMNS,
        row: Callable[[Any], list[object]] = csv_row,
    ) -> None:
        if fmt not in ("json", "ndjson", "csv"):
            raise ValueError(fmt)
        self.fmt = fmt
        self.stream = stream
        self.count = 0
        self.row = row
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(columns)
        elif fmt == "json":
            stream.write("[")

    def write(self, d: Exportable) -> None:
        if self._csv is not None:
            self._csv.writerow(self.row(d))
            self.count += 1
        else:
            self.write_records([d.to_api()])

    def write_rows(self, rows: Sequence[Sequence[object]]) -> None:
        """CSV rows already made (`row` of each record), all at once."""
        if self._csv is None:
            raise ValueError(self.fmt)
        self._csv.writerows(rows)
        self.count += len(rows)

    def write_records(self, records: Sequence[dict[str, Any]]) -> None:
        """JSON or NDJSON records already made (`to_api()` of each), all at once."""
        if self._csv is not None:
            raise ValueError(self.fmt)
        if not records:
            return
        if self.fmt == "ndjson":
            data = b"".join([jsontext.dumps(r) + b"\n" for r in records])
        else:
            lead = b"\n" if self.count == 0 else b",\n"
            data = lead + b",\n".join([jsontext.dumps(r) for r in records])
        binary = getattr(self.stream, "buffer", None)
        encoding = str(getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        if binary is not None and encoding == "utf8":
            # orjson's bytes as they are: decoding them and encoding them again cost an
            # export of 100 MB of NDJSON more than making them (bench/export_bench.py)
            self.stream.flush()  # what was written as text goes first
            binary.write(data)
        else:
            self.stream.write(data.decode())
        self.count += len(records)

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.count else "]\n")
        self.stream.flush()
