"""One evaluation explained (lines, the score added up, overrides, measures, reasons) and the
history table of a subject's evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..resources import Evaluation, Scorecard
from .pieces import (
    Sources,
    dec,
    fact_lines,
    follows_from,
    measures_table,
    title_inline,
    title_text,
    value_text,
)
from .tables import Cell, CellLike, Column, Style, display_width, table, terminal_width


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
            *fact_lines(facts, style),
            "",
            "no lines, overrides or reasons: the stored evaluation cannot be shown in full",
        ]
    out += fact_lines(facts, style)

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
        out += measures_table(
            [(a.measure, follows_from(a.follows_from, a.source)) for a in ev.measures],
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
