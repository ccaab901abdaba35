"""`credit whatif`: what would change the grade, and when the overrides end."""

from __future__ import annotations

from ..resources import Exploration
from .pieces import dec, fact_lines, title_inline, title_text, value_text
from .tables import CellLike, Column, Style, table


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
    out = [f"{style(ev.scorecard_id, 'bold')} {ev.scorecard_version}", *fact_lines(facts, style)]
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
