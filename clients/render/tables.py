"""Widths in display cells, colour and tables, on rich: the tables, their widths (a CJK
character is two cells wide, so 合格 lines up under AA), the wrapping of long cells and the
colours are rich's (`rich.table`, `rich.cells`); the views say only what goes in them."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console, RenderableType
from rich.errors import StyleSyntaxError
from rich.style import Style as RichStyle
from rich.table import Table
from rich.text import Text

# -- widths and colour ---------------------------------------------------------------------


def display_width(text: str) -> int:
    """How many terminal cells `text` takes (rich's count)."""
    return cell_len(text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cell_len(text))


def terminal_width() -> int:
    return max(60, shutil.get_terminal_size((120, 24)).columns)


def colour_wanted(stream: TextIO) -> bool:
    """Whether rich would colour `stream`: a terminal (or FORCE_COLOR), and NO_COLOR unset."""
    console = Console(file=stream)
    return console.color_system is not None and not console.no_color


def rich_style(*names: str) -> RichStyle:
    """The rich style of `names` ("bold", "red", a grade's colour); a name rich does not know
    (a scorecard may give any colour) adds nothing."""
    style = RichStyle.null()
    for name in names:
        if name:
            try:
                style += RichStyle.parse(name)
            except StyleSyntaxError:
                pass
    return style


@dataclass(frozen=True)
class Style:
    """Text styled for one stream: with ANSI escapes when `enabled`, as it is otherwise."""

    enabled: bool

    def __call__(self, text: str, *styles: str) -> str:
        style = rich_style(*styles)
        if not self.enabled or not text or not style:
            return text
        return style.render(text, color_system=ColorSystem.STANDARD)

    def grade(self, code: str, colour: str = "") -> str:
        return self(code, "bold", colour)

    def lines(self, renderable: RenderableType, width: int) -> list[str]:
        """What rich prints for `renderable` in `width` cells, line by line, without the
        trailing blanks its padding leaves."""
        buffer = io.StringIO()
        console = Console(
            file=buffer,
            width=width,
            force_terminal=self.enabled,
            color_system="standard" if self.enabled else None,
            no_color=False,
            highlight=False,
            markup=False,
            emoji=False,
            legacy_windows=False,
        )
        console.print(renderable)
        return [line.rstrip() for line in buffer.getvalue().splitlines()]


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` cells (rich's wrapping: at spaces, inside a word or a run of
    CJK text when it must)."""
    return Style(False).lines(Text(text, overflow="fold"), width) or [""]


# -- tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A table cell: its text (may hold newlines) and the style of its first line."""

    text: str
    style: tuple[str, ...] = ()

    def rich(self) -> Text:
        text = Text(self.text)
        first = self.text.find("\n")
        text.stylize(rich_style(*self.style), 0, len(self.text) if first < 0 else first)
        return text


CellLike = str | Cell


@dataclass(frozen=True)
class Column:
    header: str
    align: str = "l"  # l or r
    wrap: bool = False  # may be narrowed to fit the terminal


def table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[CellLike]],
    style: Style,
    width: int | None = None,
) -> list[str]:
    """The lines of a table: a bold header, then the rows, two cells between columns; rich
    narrows the wrappable columns (wrapping their cells) until the table fits `width`, down
    to 16 cells each; the others keep their width, the table being wider if it must."""
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    grid = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", show_edge=False)
    least = 2 * (len(columns) - 1)
    for i, col in enumerate(columns):
        grid.add_column(
            col.header,
            justify="right" if col.align == "r" else "left",
            no_wrap=not col.wrap,
            overflow="fold",
        )
        widest = max(
            (cell_len(part) for row in cells for part in row[i].text.split("\n")), default=0
        )
        least += max(cell_len(col.header), min(widest, 16) if col.wrap else widest)
    for row in cells:
        grid.add_row(*(c.rich() for c in row))
    return style.lines(grid, max(least, width if width is not None else terminal_width()))
