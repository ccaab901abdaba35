"""Text for people: aligned tables (Chinese labels included), colours, and the CLI's views of
scorecards and evaluations.

The tables, their widths in display cells (a CJK character is two cells wide, so 合格 lines
up under AA), the wrapping of long cells and the colours are rich's (`rich.table`,
`rich.cells`); this package says only what goes in them. A view is a list of lines, the
same on a terminal and in a pipe apart from the colours: rich's console decides whether the
stream gets them (a terminal, NO_COLOR unset, or FORCE_COLOR), and without them a line holds
no escape at all.

Callers import the names below from `sector_credit.clients.render`; the modules: `tables`
(widths, colour, `Style`, `table`), `pieces` (values, titles, footnoted sources, facts,
the measures table), and one per view family: `scorecards`, `evaluations`, `whatif`, `audit`.
"""

from .audit import access_table, subject_access_table
from .evaluations import evaluation_view, history_table
from .pieces import Sources, dec, title_inline, title_text, value_text
from .scorecards import scorecard_view, scorecards_table
from .tables import (
    Cell,
    CellLike,
    Column,
    Style,
    colour_wanted,
    display_width,
    pad,
    rich_style,
    table,
    terminal_width,
    wrap,
)
from .whatif import whatif_view

__all__ = [
    "Cell",
    "CellLike",
    "Column",
    "Sources",
    "Style",
    "access_table",
    "colour_wanted",
    "dec",
    "display_width",
    "evaluation_view",
    "history_table",
    "pad",
    "rich_style",
    "scorecard_view",
    "scorecards_table",
    "subject_access_table",
    "table",
    "terminal_width",
    "title_inline",
    "title_text",
    "value_text",
    "whatif_view",
    "wrap",
]
