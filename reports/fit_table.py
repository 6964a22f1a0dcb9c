"""A rich table that never cuts a cell: the layout every terminal screen uses.

A `FitTable` prints at its natural width if that fits the terminal, else with its free-text columns wrapped, else
(when even the ids and numbers alone do not fit) as a stacked list of "column value" pairs per row. So no number, id
or status is ever cut with "…", at any width down to a phone-sized terminal. Cells, headers and titles are `Text`,
never parsed as markup, so square brackets in ids and messages print as they are.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

DASH = "—"


@dataclass(frozen=True)
class Col:
    """A column: `wrap` columns hold free text (names, messages) that may wrap at spaces; the others hold ids and
    numbers, which are never wrapped or cut."""

    name: str
    right: bool = False
    wrap: bool = False


class FitTable:
    """A table that never cuts a cell: natural width, else wrapped free text, else a stacked list per row."""

    def __init__(
        self,
        title: str,
        cols: Sequence[Col],
        rows: Iterable[Sequence[str]],
        caption: str = "",
        heading_cols: int = 1,
        label_heading: bool = False,
    ) -> None:
        self.title = title
        self.heading_cols = heading_cols  # cells that head a row's block in the stacked layout
        self.label_heading = label_heading  # heading cells as `name value` (parameters) rather than bare (ids)
        self.cols = list(cols)
        self.rows = [list(r) for r in rows]
        self.caption = caption

    def _table(self, widths: list[int] | None) -> Table:
        table = Table(
            title=Text(self.title) if self.title else None,
            box=box.HEAVY_HEAD,
            pad_edge=False,
            show_edge=False,
        )
        for i, c in enumerate(self.cols):
            table.add_column(
                Text(c.name),
                justify="right" if c.right else "left",
                no_wrap=not c.wrap,
                overflow="fold" if c.wrap else "ellipsis",
                width=None if widths is None else widths[i],
            )
        for r in self.rows:
            table.add_row(*(Text(cell) for cell in r))
        return table

    def _natural(self) -> list[int]:
        return [max([cell_len(c.name), *(cell_len(r[i]) for r in self.rows)]) for i, c in enumerate(self.cols)]

    def _minimum(self) -> list[int]:
        """Narrowest width of each column that cuts nothing: ids, numbers and their headers whole; free text (and
        its header) at its longest word."""
        out = []
        for i, c in enumerate(self.cols):
            cells = [c.name, *(r[i] for r in self.rows)]
            if c.wrap:
                out.append(max(cell_len(w) for cell in cells for w in (cell.split() or [""])))
            else:
                out.append(max(cell_len(cell) for cell in cells))
        return out

    def _extra(self) -> int:
        """Width the table adds around its columns: a divider and a space of padding either side between neighbours
        (HEAVY_HEAD box without its outer edges and padding)."""
        return 3 * len(self.cols) - 3

    def widths_for(self, max_width: int) -> list[int] | None:
        """Column widths that fit `max_width` without cutting anything, or None when only the stacked layout does.
        Free-text columns share what is left over in proportion to their natural width."""
        natural, minimum = self._natural(), self._minimum()
        extra = self._extra()
        if sum(natural) + extra <= max_width:
            return natural
        if sum(minimum) + extra > max_width:
            return None
        widths = list(minimum)
        spare = max_width - extra - sum(minimum)
        want = {i: natural[i] - minimum[i] for i, c in enumerate(self.cols) if c.wrap and natural[i] > minimum[i]}
        total = sum(want.values())
        for i, w in want.items():
            widths[i] += min(w, spare * w // total) if total else 0
        return widths

    def stacked(self, max_width: int) -> Group:
        """One block per row: its heading cells, then every other column as `name value`, packed into lines of
        `max_width` and broken only between pairs (a pair wider than a line wraps at its spaces)."""
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="bold"))
        k = self.heading_cols
        for r in self.rows:
            heads = [
                f"{c.name} {cell}" if self.label_heading else cell
                for c, cell in zip(self.cols[:k], r[:k], strict=True)
                if cell
            ]
            parts.append(Text(" · ".join(heads), style="bold"))
            pairs = [f"{c.name} {cell}" for c, cell in zip(self.cols[k:], r[k:], strict=True) if cell]
            line = ""
            for pair in pairs:
                joined = f"{line} · {pair}" if line else f"  {pair}"
                if line and cell_len(joined) > max_width:
                    parts.append(Text(line))
                    joined = f"  {pair}"
                if cell_len(joined) > max_width:  # one pair wider than a line: wrap it at its spaces, indented
                    wrapped = textwrap.wrap(
                        joined.strip(),
                        max_width,
                        initial_indent="  ",
                        subsequent_indent="    ",
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                    parts += [Text(w) for w in wrapped[:-1]]
                    joined = wrapped[-1]
                line = joined
            if line:
                parts.append(Text(line))
        if self.caption:
            parts.append(Text(self.caption, style="dim"))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths_for(options.max_width)
        if widths is None:
            yield self.stacked(options.max_width)
            return
        yield self._table(widths)
        if self.caption:
            yield Text(self.caption, style="dim")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        natural = sum(self._natural()) + self._extra()
        return Measurement(min(natural, options.max_width), min(natural, options.max_width))


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return DASH if value is None else format(value, spec)


def pct(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:.1f}%"


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain and (text, style) parts; nothing in it is read as markup."""
    return Text.assemble(*parts)
