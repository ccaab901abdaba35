"""What the views share: values, decimals and titles as text, provenance as numbered
footnotes, a block of facts, and the measures table (of a scorecard and of an evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sector_credit.scorecards.text import decimal_text

from ..resources import IndicatorPythonValue, Measure, Provenance, Title
from .tables import Cell, Column, Style, display_width, pad, table, terminal_width, wrap


def value_text(value: IndicatorPythonValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def dec(value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return ""
    text = decimal_text(value)
    return f"+{text}" if signed and value > 0 else text


def title_text(title: Title, lang: str) -> str:
    """The title in the language asked for: `zh`, `en`, or `both` (two lines)."""
    if lang == "zh":
        return title.zh or title.en
    if lang == "en":
        return title.en or title.zh
    return "\n".join(t for t in (title.zh, title.en) if t)


def title_inline(title: Title, lang: str) -> str:
    return title_text(title, lang).replace("\n", " / ")


_TAG_STYLES = {
    "verified": "green",
    "secondary": "cyan",
    "unverified": "yellow",
    "design": "magenta",
}


class Sources:
    """Provenance as numbered footnotes: a table cell shows `secondary [2]`, and the source
    title and article, long and often repeated, are printed once under the tables."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def cell(self, p: Provenance) -> Cell:
        where = " ".join(t for t in (p.source, p.article) if t)
        if not where:
            return Cell(p.tag, (_TAG_STYLES.get(p.tag, ""),))
        n = self._numbers.setdefault(where, len(self._numbers) + 1)
        return Cell(f"{p.tag} [{n}]", (_TAG_STYLES.get(p.tag, ""),))

    def lines(self, style: Style) -> list[str]:
        if not self._numbers:
            return []
        out = ["", style("Sources", "bold")]
        width = terminal_width()
        for where, n in self._numbers.items():
            label = f"[{n}] "
            wrapped = wrap(where, width - len(label))
            out.append(label + wrapped[0])
            out += [" " * len(label) + more for more in wrapped[1:]]
        return out


def follows_from(kind: str, source: str) -> str:
    """`grade 4A`; an override's id, often long, on a line of its own under `override`."""
    return f"grade {source}" if kind == "grade" else f"override\n{source}"


def measures_table(
    rows: Sequence[tuple[Measure, str]], sources: Sources, style: Style, lang: str
) -> list[str]:
    """Measures and what each follows from (a grade, an override)."""
    return table(
        [
            Column("MEASURE"),
            Column("FOLLOWS FROM"),
            Column("TITLE", wrap=True),
            Column("PROVENANCE"),
        ],
        [
            [m.id, whence, title_text(m.title, lang), sources.cell(m.provenance)]
            for m, whence in rows
        ],
        style,
    )


def fact_lines(pairs: Sequence[tuple[str, str]], style: Style) -> list[str]:
    width = max(display_width(k) for k, _ in pairs)
    return [f"{style(pad(k, width), 'dim')}  {v}" for k, v in pairs]
