"""Any listing (deliveries, failures, inbox, webhooks, …) for people and for pipes.

A listing is a sequence of `Column`s and the rows they read. On a terminal it is a rich
table that fits the width there is: columns are dropped, least important first, and only
columns marked `shrink` are ever shortened (with an ellipsis), so an id is shown whole or
not at all. Piped, it is untruncated tab-separated lines under a header line (`write_tsv`).

    columns = [
        Column("Id", lambda d: d.id, keep=ALWAYS),
        Column("Response", lambda d: d.body, keep=1, shrink=10),
    ]
    console.print(table(columns, rows))        # a terminal
    write_tsv(columns, rows, sys.stdout)         # a pipe
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Generic, Literal, TypeVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from atwh.errors import printable

R = TypeVar("R")
ALWAYS = 1_000_000  # `keep` of a column never dropped: the ids, the status, the HTTP code
GAP = 2  # columns between two columns of a table
NARROWEST = 8  # a shortened column kept ALWAYS is cut to this much at the least


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column of a listing.

    `cell` renders a row for people (str or rich Text, one line); `tsv` gives the value for
    programs (default: the cell's plain text). `keep` is the importance: when the width runs
    out, the column with the lowest `keep` goes first (`ALWAYS`: never). `shrink` is the
    narrowest the column may be cut to with an ellipsis; None means shown whole or dropped.
    """

    header: str
    cell: Callable[[R], str | Text]
    keep: int = 0
    shrink: int | None = None
    tsv: Callable[[R], object] | None = None
    justify: Literal["left", "right"] = "left"
    style: str | None = None
    piped: bool = True  # False: only for people (an age beside a time), not in TSV
    greedy: bool = False  # a shortened column that takes the room it needs before less
    # important columns are added (the event name before the lag), not only what is left
    name: str | None = None  # in TSV headers and --columns, when not the header's
    # (`lag_ms`: piped, a lag is a number of milliseconds)
    shorten: Callable[[str, int], str] | None = None  # how to shorten a cell to a width
    # (`short_url` keeps a URL's host and port), instead of an ellipsis at its end
    below: bool = False  # when a cell would be cut, the column leaves the table and each
    # row's cell goes on lines of its own under the row (an endpoint's answer at 80 columns)


def column_name(column: Column[Any]) -> str:
    """A column's name in TSV headers and for --columns: `event_id` for `Event id`."""
    return column.name or column.header.lower().replace(" ", "_")


def choose(columns: Sequence[Column[R]], names: str | None) -> list[Column[R]]:
    """The columns `--columns` names (comma-separated, in that order), each then kept
    whatever the width (only a column that may be shortened is); all of them for None."""
    if not names:
        return list(columns)
    from dataclasses import replace

    from atwh.errors import UsageError

    by_name = {column_name(c): c for c in columns}
    chosen: list[Column[R]] = []
    for name in (n.strip().lower().replace(" ", "_") for n in names.split(",")):
        if not name:
            continue
        if name not in by_name:
            raise UsageError(
                f"--columns: no column {printable(name, 40)!r}; choose from {','.join(by_name)}"
            )
        chosen.append(replace(by_name[name], keep=ALWAYS, piped=True))
    if not chosen:
        raise UsageError(f"--columns: name at least one of {','.join(by_name)}")
    return list({c.header: c for c in chosen}.values())  # each once


def _text(value: str | Text) -> Text:
    return value if isinstance(value, Text) else Text(value)


def fit(naturals: Sequence[int], columns: Sequence[Column[Any]], width: int) -> list[int]:
    """The width of each column at this terminal width; 0 for a column dropped.

    Columns are taken by importance (`keep`, highest first, then the order given); one that
    does not fit (at its natural width, or its `shrink` width) is dropped and narrower,
    less important ones are still tried. What is left is given to shortened columns, those
    it makes whole first.
    """
    order = sorted(range(len(columns)), key=lambda i: -columns[i].keep)
    widths = [0] * len(columns)
    used = -GAP
    for i in order:
        c, natural = columns[i], naturals[i]
        need = natural if c.shrink is None else min(natural, c.shrink)
        if c.greedy and c.shrink is not None:
            need = max(need, min(natural, width - used - GAP))
        if c.keep >= ALWAYS or used + GAP + need <= width:
            widths[i] = need
            used += GAP + need
    for i in reversed(order):  # columns kept ALWAYS overflow: shorten them further
        if used > width and widths[i] and columns[i].shrink is not None:
            cut = min(used - width, widths[i] - min(NARROWEST, widths[i]))
            widths[i] -= cut
            used -= cut
    # the room left, to the shortened columns: first to those it makes whole, then to the
    # most important ones
    for whole_only in (True, False):
        for i in order:
            short = naturals[i] - widths[i]
            if not widths[i] or short <= 0 or (whole_only and short > width - used):
                continue
            extra = min(short, max(width - used, 0))
            widths[i] += extra
            used += extra
    return widths


class Listing(Generic[R]):
    """A rich renderable: the table is built when printed, at the console's width."""

    def __init__(self, columns: Sequence[Column[R]], rows: Sequence[R]) -> None:
        self.columns = list(columns)
        self.cells = [[_text(c.cell(r)) for c in self.columns] for r in rows]

    def naturals(self) -> list[int]:
        """The width each column needs to show every cell (and its header) whole."""
        return [
            max([Text(c.header).cell_len, *(row[i].cell_len for row in self.cells)])
            for i, c in enumerate(self.columns)
        ]

    def widths(self, width: int, without: int | None = None) -> list[int]:
        """`fit`'s widths, without the columns empty in every row: an empty column says
        nothing and takes room (no Code or Time where nothing was sent, no Forward column
        when nothing forwards); nor the column `without`."""
        shown = [
            i
            for i in range(len(self.columns))
            if i != without and (not self.cells or any(row[i].plain.strip() for row in self.cells))
        ]
        naturals = self.naturals()
        fitted = fit([naturals[i] for i in shown], [self.columns[i] for i in shown], width)
        widths = [0] * len(self.columns)
        for i, w in zip(shown, fitted, strict=True):
            widths[i] = w
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        below = self._below(widths)
        if below is None:
            yield self.render(widths)
            return
        # the other columns fitted without it; then each row (a table of one row, at the
        # same widths: the columns line up) followed by its cell, indented and folded
        widths = self.widths(options.max_width, without=below)
        yield self.render(widths, rows=[])
        for row in self.cells:
            yield self.render(widths, show_header=False, rows=[row])
            if row[below].plain.strip():
                yield _under(row[below], options.max_width)

    def _below(self, widths: Sequence[int]) -> int | None:
        """The column to show under each row at these widths: a `below` one that would be
        cut (or dropped) with a cell that is not empty; None when none would be."""
        for i, c in enumerate(self.columns):
            if c.below and any(
                row[i].plain.strip() and row[i].cell_len > widths[i] for row in self.cells
            ):
                return i
        return None

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        """As wide as its columns at this width: a panel around it fits it."""
        shown = [w for w in self.widths(options.max_width) if w]
        width = sum(shown) + GAP * max(len(shown) - 1, 0)
        return Measurement(width, width)

    def render(
        self, widths: Sequence[int], show_header: bool = True, rows: list[list[Text]] | None = None
    ) -> Table:
        """The table at these column widths (0: left out), as `fit` gives them, of these
        rows (default: all)."""
        table = Table(
            box=None, header_style="bold", pad_edge=False, expand=False, show_header=show_header
        )
        shown = [i for i, w in enumerate(widths) if w]
        for i in shown:
            c = self.columns[i]
            table.add_column(
                c.header,
                justify=c.justify,
                style=c.style,
                no_wrap=True,
                overflow="ellipsis",
                min_width=widths[i],
                max_width=widths[i],
            )
        for row in self.cells if rows is None else rows:
            table.add_row(*(self._shortened(i, row[i], widths[i]) for i in shown))
        return table

    def _shortened(self, i: int, cell: Text, width: int) -> Text:
        shorten = self.columns[i].shorten
        if shorten is None or cell.cell_len <= width:
            return cell
        return Text(shorten(cell.plain, width), style=cell.style)


BELOW_INDENT = 2
BELOW_LINES = 4


def _under(cell: Text, width: int) -> Text:
    """A cell on a line of its own under its row: indented, folded to `width`, and cut
    after BELOW_LINES lines."""
    room = max(width - BELOW_INDENT, 8)
    text = cell.copy()
    if text.cell_len > room * BELOW_LINES:
        text.truncate(room * BELOW_LINES - 1)
        text.append("…")
    lines = text.wrap(Console(width=room), room, overflow="fold")
    out = Text()
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        out.append(" " * BELOW_INDENT)
        out.append_text(line)
    return out


def short_url(url: str, width: int) -> str:
    """A URL in `width` characters, cut after its host and port, never before: the path is
    cut first (`http://127.0.0.1:8000/hoo…`), then the scheme goes (`127.0.0.1:8000/…`),
    then the start of the host (`…0.0.1:8000`)."""
    if len(url) <= width:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host_end = len(rest.split("/", 1)[0].split("?", 1)[0])
    start = len(scheme) + len(sep)
    if start + host_end + 1 <= width:
        return url[: width - 1] + "…"
    if len(rest) <= width:
        return rest
    if host_end + 1 <= width:
        return rest[: width - 1] + "…"
    return "…" + rest[:host_end][-(width - 1) :] if width > 1 else "…"


def table(columns: Sequence[Column[R]], rows: Sequence[R]) -> Listing[R]:
    """The rows as a rich table that fits the console it is printed on."""
    return Listing(columns, rows)


def tsv_field(value: object) -> str:
    """A value as one TSV field: None is empty, tabs and line breaks never pass through."""
    if value.__class__ is str and value.isprintable():  # type: ignore[attr-defined]
        return value  # type: ignore[return-value]  # most fields: the first test is the last
    if value is None:
        return ""
    if value.__class__ is int:  # a count or a code (never a bool: its class is bool)
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Text):
        value = value.plain
    s = str(value)
    if s.isprintable():
        return s
    return printable(s, None)  # escaped, so longer: never cut (piped output never is)


def write_tsv(
    columns: Sequence[Column[R]], rows: Iterable[R], stream: IO[str], header: bool = True
) -> None:
    """A header line (unless `header` is False: a stream's later rows), then one
    tab-separated line a row, every column, nothing cut."""
    writer = TsvWriter(columns, stream, header)
    for r in rows:
        writer.line(r)
    stream.flush()


class TsvWriter(Generic[R]):
    """TSV written a row at a time, as rows come: the header line when made (unless
    `header` is False), then `write(row)`, each line flushed at once (a pipe's reader, or
    `| head`, sees it while the command still runs)."""

    def __init__(self, columns: Sequence[Column[R]], stream: IO[str], header: bool = True) -> None:
        columns = [c for c in columns if c.piped]
        self.getters = [c.tsv or (lambda r, c=c: c.cell(r)) for c in columns]
        self.stream = stream
        if header:
            stream.write("\t".join(column_name(c) for c in columns) + "\n")

    def line(self, row: R) -> None:
        """The row's line, written (not flushed)."""
        self.stream.write("\t".join([tsv_field(get(row)) for get in self.getters]) + "\n")

    def write(self, row: R) -> None:
        """The row's line, written and flushed."""
        self.line(row)
        self.stream.flush()
