"""Text for people: aligned tables (Chinese labels included), colours, and the CLI's views of
scorecards and evaluations.

The tables, their widths in display cells (a CJK character is two cells wide, so 合格 lines
up under AA), the wrapping of long cells and the colours are rich's (`rich.table`,
`rich.cells`); this module says only what goes in them. A view is a list of lines, the
same on a terminal and in a pipe apart from the colours: rich's console decides whether the
stream gets them (a terminal, NO_COLOR unset, or FORCE_COLOR), and without them a line holds
no escape at all.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console, RenderableType
from rich.errors import StyleSyntaxError
from rich.style import Style as RichStyle
from rich.table import Table
from rich.text import Text
from sector_credit.scorecards.text import decimal_text

from .resources import (
    AccessRecord,
    Evaluation,
    Exploration,
    IndicatorPythonValue,
    Measure,
    Provenance,
    Rule,
    Scorecard,
    SubjectAccess,
    Title,
)

# -- widths and colour ---------------------------------------------------------------------


def display_width(text: str) -> int:
    """How many terminal cells `text` takes (rich's count)."""
    return cell_len(text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cell_len(text))


def terminal_width() -> int:
    return max(60, shutil.get_terminal_size((120, 24)).columns)


_TAG_STYLES = {
    "verified": "green",
    "secondary": "cyan",
    "unverified": "yellow",
    "design": "magenta",
}


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


# -- values --------------------------------------------------------------------------------


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


# -- views ---------------------------------------------------------------------------------


def scorecards_table(cards: Sequence[Scorecard], style: Style, lang: str) -> list[str]:
    columns = [
        Column("ID"),
        Column("VERSION"),
        Column("IN FORCE FROM"),
        Column("SUBJECT"),
        Column("TITLE", wrap=True),
    ]
    rows: list[list[CellLike]] = [
        [
            Cell(c.scorecard_id, ("bold",)),
            c.version,
            c.effective_from.isoformat() if c.effective_from else "",
            c.subject_kind,
            title_inline(c.title, lang),
        ]
        for c in cards
    ]
    return table(columns, rows, style)


def _rule_points(rule: Rule) -> str:
    """How the rule computes its points: its kind's own text (scorecards/kinds.py), as the
    server sends it."""
    return rule.description


def scorecard_view(card: Scorecard, style: Style, lang: str) -> list[str]:
    sources = Sources()
    out = [f"{style(card.scorecard_id, 'bold')} {card.version}  {title_inline(card.title, 'both')}"]
    facts = [
        ("Subject", card.subject_kind),
        ("In force from", card.effective_from.isoformat() if card.effective_from else ""),
    ]
    if card.base is not None:
        facts.append(("Base", dec(card.base)))
        facts.append(("Score range", f"[{dec(card.score_min)}, {dec(card.score_max)}]"))
    if card.default_grade:
        facts.append(("Default grade", card.default_grade))
    facts.append(("Digest", card.digest))
    facts.append(
        (
            "Actionable",
            ", ".join(i.name for i in card.indicators if i.actionable)
            or "none: nothing the subject can change (credit whatif varies only these)",
        )
    )
    if len(card.versions) > 1:
        facts.append(
            ("Versions", ", ".join(f"{v.version} from {v.effective_from}" for v in card.versions))
        )
    out += _facts(facts, style)
    if card.description:
        out += ["", *wrap(card.description.strip(), terminal_width())]

    out += ["", style("Indicators", "bold")]
    rows: list[list[CellLike]] = []
    for ind in card.indicators:
        if ind.required:
            need = "required"
        elif ind.required_when:
            need = f"required when\n{ind.required_when}"
        else:
            need = f"default {value_text(ind.default)}" if ind.default is not None else "optional"
        if ind.choices:
            domain = " | ".join(ind.choices)
        elif ind.minimum is not None or ind.maximum is not None:
            lo = dec(ind.minimum) if ind.minimum is not None else "-inf"
            hi = dec(ind.maximum) if ind.maximum is not None else "+inf"
            domain = f"[{lo}, {hi}]"
        else:
            domain = "not after as_of" if ind.past else ""
        rows.append([ind.name, ind.type, need, domain, title_text(ind.title, lang)])
    out += table(
        [
            Column("NAME"),
            Column("TYPE"),
            Column("NEED"),
            Column("VALUES", wrap=True),
            Column("TITLE", wrap=True),
        ],
        rows,
        style,
    )

    if card.groups:
        out += ["", style("Groups", "bold")]
        out += table(
            [
                Column("GROUP"),
                Column("FLOOR", "r"),
                Column("CEILING", "r"),
                Column("TITLE", wrap=True),
            ],
            [[g.id, dec(g.floor), dec(g.ceiling), title_text(g.title, lang)] for g in card.groups],
            style,
        )

    if card.rules:
        out += ["", style("Rules", "bold")]
        out += table(
            [
                Column("RULE"),
                Column("INDICATOR"),
                Column("KIND"),
                Column("POINTS", wrap=True),
                Column("GROUP"),
                Column("TITLE", wrap=True),
                Column("PROVENANCE"),
            ],
            [
                [
                    r.id,
                    r.indicator,
                    r.kind,
                    _rule_points(r),
                    r.group,
                    title_text(r.title, lang),
                    sources.cell(r.provenance),
                ]
                for r in card.rules
            ],
            style,
        )

    out += ["", style("Grades", "bold")]
    out += table(
        [
            Column("GRADE"),
            Column("TITLE", wrap=True),
            Column("MIN SCORE", "r"),
            Column("COLOUR"),
            Column("PROVENANCE"),
        ],
        [
            [
                Cell(g.code, ("bold", g.colour)),
                title_text(g.title, lang),
                _grade_reach(card, g.code, g.min_score, g.override_only),
                g.colour,
                sources.cell(g.provenance),
            ]
            for g in card.grades
        ],
        style,
    )

    if card.overrides:
        out += ["", style("Overrides (一票否决)", "bold")]
        out += table(
            [
                Column("OVERRIDE"),
                Column("WHEN", wrap=True),
                Column("EFFECT"),
                Column("UNTIL", wrap=True),
                Column("TITLE", wrap=True),
                Column("PROVENANCE"),
            ],
            [
                [
                    o.id,
                    o.condition,
                    o.effect_text,
                    o.until or "while it holds",
                    title_text(o.title, lang),
                    sources.cell(o.provenance),
                ]
                for o in card.overrides
            ],
            style,
        )

    follows: dict[str, tuple[Measure, list[str]]] = {}
    for g in card.grades:
        for m in g.measures:
            follows.setdefault(m.id, (m, []))[1].append(_follows_from("grade", g.code))
    for o in card.overrides:
        for m in o.measures:
            follows.setdefault(m.id, (m, []))[1].append(_follows_from("override", o.id))
    if follows:
        out += ["", style("Measures (守信激励 / 失信惩戒)", "bold")]
        out += _measures_table(
            [(m, "\n".join(whence)) for m, whence in follows.values()], sources, style, lang
        )
    return out + sources.lines(style)


def _follows_from(kind: str, source: str) -> str:
    """`grade 4A`; an override's id, often long, on a line of its own under `override`."""
    return f"grade {source}" if kind == "grade" else f"override\n{source}"


def _measures_table(
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


def _grade_reach(card: Scorecard, code: str, min_score: Decimal | None, override_only: bool) -> str:
    if code == card.default_grade:
        return "default"
    return "override only" if override_only or min_score is None else dec(min_score)


def _facts(pairs: Sequence[tuple[str, str]], style: Style) -> list[str]:
    width = max(display_width(k) for k, _ in pairs)
    return [f"{style(pad(k, width), 'dim')}  {v}" for k, v in pairs]


def evaluation_view(
    ev: Evaluation, style: Style, lang: str, card: Scorecard | None = None
) -> list[str]:
    sources = Sources()
    cited = Citations(ev)
    grade = ev.grade
    changed = bool(ev.overrides) and ev.score_grade not in ("", grade.code)
    head = f"{style(ev.scorecard_id, 'bold')} {ev.scorecard_version}"
    if card is not None:
        head += f"  {title_inline(card.title, 'both')}"
    out = [head]
    subject = f"{ev.subject.kind} {ev.subject.id}"
    if ev.subject.display_name:
        subject += f" ({ev.subject.display_name})"
    shown = style.grade(grade.code, grade.colour or ("red" if changed else ""))
    grade_text = f"{shown}  {title_inline(grade.title, 'both')}"
    if changed:
        grade_text += f"  (the score alone gives {ev.score_grade})"
    facts = [
        ("Subject", subject),
        ("As of", ev.as_of.isoformat() if ev.as_of else ""),
        ("Grade", grade_text),
    ]
    if ev.until is not None:
        facts.append(
            ("Until", f"{ev.until.isoformat()} (the first day the override no longer applies)")
        )
    if ev.base is not None:
        facts.append(("Base", dec(ev.base)))
    if ev.score is not None:
        score_text = style(dec(ev.score), "bold")
        if ev.score_before_cut is not None:
            score_range = (
                f"the score range [{dec(card.score_min)}, {dec(card.score_max)}]"
                if card is not None and card.version == ev.scorecard_version
                else "the score range"
            )
            score_text += f"  ({dec(ev.score_before_cut)} before {score_range} cut it)"
        facts.append(("Score", score_text))
    if ev.points_to_next_grade is not None:
        facts.append(("Next grade", f"{dec(ev.points_to_next_grade)} points to {ev.next_grade}"))
    elif ev.score is not None and not ev.unreadable:
        facts.append(("Next grade", _no_next_grade(ev)))
    if ev.name:
        facts.append(("Evaluation", ev.name))
    else:
        facts.append(("Evaluation", "not stored (validate only)"))
    if ev.create_time is not None:
        facts.append(
            ("Made", f"{ev.create_time.astimezone().isoformat(timespec='seconds')} by {ev.caller}")
        )
    if ev.unreadable:  # what the row's columns say, and no explanation (evaluation.proto)
        facts.append(("Unreadable", style(ev.unreadable, "red")))
        return [
            *out,
            *_facts(facts, style),
            "",
            "no lines, overrides or reasons: the stored evaluation cannot be shown in full",
        ]
    out += _facts(facts, style)

    if ev.lines:
        out += ["", style("Lines", "bold")]
        rows: list[list[CellLike]] = []
        for line in ev.lines:
            values = ", ".join(f"{k} = {value_text(v)}" for k, v in line.values.items())
            values += cited.cell(line.records)
            points = dec(line.points, True)
            if line.points_before_cut is not None:
                points += f"\n(cut from {dec(line.points_before_cut, True)})"
            rows.append(
                [
                    line.rule_id,
                    title_text(line.title, lang),
                    values,
                    Cell(points, (_points_style(line.points),)),
                    line.group,
                    sources.cell(line.provenance),
                ]
            )
        out += table(
            [
                Column("RULE"),
                Column("TITLE", wrap=True),
                Column("VALUES", wrap=True),
                Column("POINTS", "r"),
                Column("GROUP"),
                Column("PROVENANCE"),
            ],
            rows,
            style,
        )
        cut = [g for g in ev.group_totals if g.total != g.total_before_cut]
        for g in cut:
            out.append(
                style(f"group {g.group_id}: {dec(g.total_before_cut)} cut to {dec(g.total)}", "dim")
            )
        if ev.base is not None and ev.score is not None:
            out += _sum_lines(ev, terminal_width())

    out += ["", style("Overrides", "bold")]
    if ev.overrides:
        out += table(
            [
                Column("OVERRIDE"),
                Column("EFFECT"),
                Column("UNTIL"),
                Column("TITLE", wrap=True),
                Column("PROVENANCE"),
            ],
            [
                [
                    o.override_id,
                    Cell(o.effect_text, ("bold",)),
                    o.until.isoformat() if o.until else "while it holds",
                    title_text(o.title, lang) + cited.cell(o.records),
                    sources.cell(o.provenance),
                ]
                for o in ev.overrides
            ],
            style,
        )
    else:
        out.append("none fired")

    if ev.measures:  # a result that no measure follows from shows no section
        out += ["", style("Measures", "bold")]
        out += _measures_table(
            [(a.measure, _follows_from(a.follows_from, a.source)) for a in ev.measures],
            sources,
            style,
            lang,
        )

    out += ["", style("Reasons", "bold")]
    if ev.reasons:
        out += table(
            [
                Column("#", "r"),
                Column("CODE"),
                Column("KIND"),
                Column("POINTS LOST", "r"),
                Column("TITLE", wrap=True),
            ],
            [
                [str(i), r.code, r.kind, dec(r.points_lost), title_text(r.title, lang)]
                for i, r in enumerate(ev.reasons, 1)
            ],
            style,
        )
    else:
        out.append("none: nothing held the grade back")
    return out + cited.lines(style) + sources.lines(style)


class Citations:
    """The credit records the lines and overrides cite, numbered as cited: a cell gets
    `records [R1] [R2]`, the section after the reasons lists each once,
    `[R1] records/{id} (basis …)` with its kind, decision date and state on as_of."""

    def __init__(self, ev: Evaluation):
        self.ev = ev
        self.numbers: dict[str, int] = {}

    def cell(self, records: Sequence[str]) -> str:
        if not records:
            return ""
        marks = [f"[R{self.numbers.setdefault(r, len(self.numbers) + 1)}]" for r in records]
        return "\nrecords " + " ".join(marks)

    def lines(self, style: Style) -> list[str]:
        if not self.numbers:
            return []
        out = ["", style("Records cited", "bold")]
        for name, n in self.numbers.items():
            e = self.ev.evidence_of(name)
            if e is None:
                out.append(f"[R{n}] {name}")
                continue
            decided = e.decision_date.isoformat() if e.decision_date else "?"
            out.append(f"[R{n}] {name} (basis {e.basis or 'not given'})")
            out.append(f"     {e.kind}, decided {decided}, {e.state} on the evaluation's date")
        return out


def _sum_lines(ev: Evaluation, width: int) -> list[str]:
    """The score added up by hand: base + group totals + ungrouped points (SCORECARDS.md §1),
    wrapped between its terms."""
    assert ev.base is not None and ev.score is not None
    terms = (
        [(ev.base, "base")]
        + [(g.total, g.group_id) for g in ev.group_totals]
        + [(x.points, x.rule_id) for x in ev.lines if not x.group]
    )
    parts = [f"Sum: {dec(terms[0][0])} ({terms[0][1]})"]
    parts += [
        f"{'-' if value < 0 else '+'} {dec(abs(value))} ({label})" for value, label in terms[1:]
    ]
    total = ev.score if ev.score_before_cut is None else ev.score_before_cut
    parts.append(
        f"= {dec(total)}"
        + ("" if ev.score_before_cut is None else f", cut to the score {dec(ev.score)}")
    )
    lines = [parts[0]]
    for part in parts[1:]:
        if display_width(lines[-1]) + 1 + display_width(part) <= width:
            lines[-1] += " " + part
        else:
            lines.append("     " + part)
    return lines


def _no_next_grade(ev: Evaluation) -> str:
    """Why an evaluation with a score shows no points to a next grade (SCORECARDS.md §1)."""
    effects = {o.effect for o in ev.overrides}
    if "force" in effects:
        return "none: an override forces the grade"
    if effects:
        return "none: more points would not change the grade (an override holds it)"
    return "none: this is the best grade"


def _points_style(value: Decimal) -> str:
    if not value:
        return "dim"
    return "green" if value > 0 else "red"


def history_table(evaluations: Sequence[Evaluation], style: Style) -> list[str]:
    columns = [
        Column("MADE"),
        Column("SCORECARD"),
        Column("AS OF"),
        Column("GRADE"),
        Column("SCORE", "r"),
        Column("UNTIL"),
        Column("EVALUATION"),
        Column("CALLER"),
    ]
    rows: list[list[CellLike]] = [
        [
            ev.create_time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if ev.create_time else "",
            f"{ev.scorecard_id} {ev.scorecard_version}",
            ev.as_of.isoformat() if ev.as_of else "",
            Cell(f"{ev.grade.code} (unreadable)", ("red",))
            if ev.unreadable
            else Cell(ev.grade.code, ("bold", ev.grade.colour)),
            dec(ev.score),
            ev.until.isoformat() if ev.until else "",
            ev.name,
            ev.caller,
        ]
        for ev in evaluations
    ]
    return table(columns, rows, style)


def access_table(records: Sequence[AccessRecord], style: Style) -> list[str]:
    """The query audit: one row per call that touched a subject (or was refused)."""
    columns = [
        Column("WHEN"),
        Column("CALLER"),
        Column("PROVEN"),
        Column("METHOD"),
        Column("SUBJECT"),
        Column("SCORECARD"),
        Column("PURPOSE"),
        Column("RETURNED", "r"),
        Column("CODE"),
        Column("REQUEST"),
    ]
    rows: list[list[CellLike]] = [
        [
            r.create_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            r.caller,
            r.proven_by,
            r.method,
            r.subject_id,
            r.scorecard,
            r.purpose + (f" ({r.purpose_note})" if r.purpose_note else ""),
            str(r.evaluations_returned),
            Cell(r.code, () if r.code == "OK" else ("red",))
            if not r.reason
            else Cell(f"{r.code} {r.reason}", ("red",)),
            r.request_id,
        ]
        for r in records
    ]
    return table(columns, rows, style)


def subject_access_table(accesses: Sequence[SubjectAccess], style: Style) -> list[str]:
    """Who looked at a subject: what the subject may learn, nothing else."""
    columns = [Column("DATE"), Column("CALLER"), Column("PURPOSE")]
    rows: list[list[CellLike]] = [
        [a.date.isoformat(), a.caller, a.purpose or "evaluation"] for a in accesses
    ]
    return table(columns, rows, style)


def whatif_view(ex: Exploration, style: Style, lang: str) -> list[str]:
    """`credit whatif`: the grade now, then per better grade its smallest changes, then the
    override end dates (docs/whatif.md)."""
    ev = ex.evaluation
    grade = ev.grade
    facts = [
        ("Subject", f"{ev.subject.kind} {ev.subject.id}"),
        ("As of", ev.as_of.isoformat() if ev.as_of else ""),
        ("Grade", f"{style.grade(grade.code, grade.colour)}  {title_inline(grade.title, 'both')}"),
    ]
    if ev.score is not None:
        facts.append(("Score", dec(ev.score)))
    facts.append(("Evaluation", ev.name or "not stored (a what-if)"))
    facts.append(("Actionable", ", ".join(ex.actionable) or "none: nothing the subject can change"))
    out = [f"{style(ev.scorecard_id, 'bold')} {ev.scorecard_version}", *_facts(facts, style)]
    out += ["", style("What would change the grade", "bold")]
    if not ex.targets:
        out.append("none: the grade is the best there is")
    rows: list[list[CellLike]] = []
    for t in ex.targets:
        label = f"{t.grade.code}  {title_text(t.grade.title, lang)}"
        if not t.proposals:
            rows.append(
                [label, "", "no change of at most 3 actionable indicators reaches it", "", ""]
            )
            continue
        for i, p in enumerate(t.proposals):
            changes = "\n".join(
                f"{c.indicator} {value_text(c.before)} → {value_text(c.after)}" for c in p.changes
            )
            rows.append(
                [
                    label if i == 0 else "",
                    str(i + 1),
                    changes,
                    p.grade,
                    dec(p.score) if p.score is not None else "",
                ]
            )
    if rows:
        out += table(
            [
                Column("TARGET", wrap=True),
                Column("#", "r"),
                Column("CHANGES", wrap=True),
                Column("GIVES"),
                Column("SCORE", "r"),
            ],
            rows,
            style,
        )
    out += ["", style("Override end dates", "bold")]
    if not ex.override_ends:
        out.append("none: no override with an end fired")
    else:
        out += table(
            [
                Column("OVERRIDE"),
                Column("ENDS ON"),
                Column("THEN"),
                Column("SCORE", "r"),
                Column("TITLE", wrap=True),
            ],
            [
                [
                    e.override_id,
                    e.until.isoformat() if e.until else "",
                    e.grade,
                    dec(e.score) if e.score is not None else "",
                    title_text(e.title, lang),
                ]
                for e in ex.override_ends
            ],
            style,
        )
    return out
