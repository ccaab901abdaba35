"""`credit scorecards list` and `credit scorecards show`: the scorecards table and one
scorecard's definition (indicators, groups, rules, grades, overrides, measures)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..resources import Measure, Rule, Scorecard
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
from .tables import Cell, CellLike, Column, Style, table, terminal_width, wrap


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
    derived = [i for i in card.indicators if i.derived_from]
    if derived:  # the service fills these from the subject's credit records as of as_of
        facts.append(
            (
                "From records",
                "; ".join(
                    f"{i.name} ({', '.join(i.derived_from)}: {i.derivation})" for i in derived
                ),
            )
        )
    if len(card.versions) > 1:
        facts.append(
            ("Versions", ", ".join(f"{v.version} from {v.effective_from}" for v in card.versions))
        )
    out += fact_lines(facts, style)
    if card.description:
        out += ["", *wrap(card.description.strip(), terminal_width())]

    out += ["", style("Indicators", "bold")]
    rows: list[list[CellLike]] = []
    for ind in card.indicators:
        if ind.derived_from:  # never submitted: the service derives it from records
            need = "from records"
        elif ind.required:
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
            follows.setdefault(m.id, (m, []))[1].append(follows_from("grade", g.code))
    for o in card.overrides:
        for m in o.measures:
            follows.setdefault(m.id, (m, []))[1].append(follows_from("override", o.id))
    if follows:
        out += ["", style("Measures (守信激励 / 失信惩戒)", "bold")]
        out += measures_table(
            [(m, "\n".join(whence)) for m, whence in follows.values()], sources, style, lang
        )
    return out + sources.lines(style)


def _grade_reach(card: Scorecard, code: str, min_score: Decimal | None, override_only: bool) -> str:
    if code == card.default_grade:
        return "default"
    return "override only" if override_only or min_score is None else dec(min_score)
