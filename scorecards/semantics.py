"""The scoring semantics both evaluators share (SCORECARDS.md §1), written once.

The reference evaluator (`reference.ReferenceScorecard`) calls these in Decimal; the generated
one (`codegen.py`) calls the same functions in whole hundredths, or embeds constants they
produce (`Grading.next_better`). Nothing here knows which of the two calls it: numbers are
whatever the caller counts in, and `Grading` is told how to turn a Decimal into that unit and
back.

- the subject-id check of each subject kind (`SUBJECT_ID_CHECKS`, `normalize`);
- a bound on a total, the floor before the ceiling (`clamp`), and the cut a group's floor or
  ceiling takes from its later lines first (`take_cut`);
- when an override fired still applies (`until`, `fire`), and the `until` a result reports;
- the grade a score gives, the override decision (downgrades, then caps, then forces) and the
  points to the next better grade (`Grading`);
- the reasons: the overrides, then the rules that lost most against their best, at most
  `MAX_REASON_RULES` of them (`rule_reasons`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from .exact import add_years
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    EffectKind,
    FiredOverride,
    Grade,
    IndicatorValue,
    Not,
    Override,
    ReasonCode,
    Scorecard,
    SubjectKind,
    Title,
)
from .subject_ids import normalize, resident_id_problem, uscc_problem

MAX_REASON_RULES = 4

SubjectIdCheck = Callable[[str], str | None]
SUBJECT_ID_CHECKS: dict[SubjectKind, SubjectIdCheck] = {
    SubjectKind.PERSON: resident_id_problem,
    SubjectKind.ORGANIZATION: uscc_problem,
}

N = TypeVar("N", int, Decimal)
Fired = list[tuple[Override, "dt.date | None"]]


def clamp(x: N, low: N | None, high: N | None) -> N:
    """`x` within [low, high]: the floor first, then the ceiling (a missing bound: none)."""
    if low is not None and x < low:
        x = low
    if high is not None and x > high:
        x = high
    return x


def take_cut(cut: N, points: Sequence[N]) -> list[N]:
    """A group's lines after its floor (`cut` > 0) or ceiling (`cut` < 0) moved the total by
    `cut`: taken from the lines of the excess's sign, the last line first."""
    out = list(points)
    for i in range(len(out) - 1, -1, -1):
        if cut == 0:
            break
        p = out[i]
        if cut > 0 and p < 0:
            take = min(cut, -p)
            out[i] = p + take
            cut -= take
        elif cut < 0 and p > 0:
            take = min(-cut, p)
            out[i] = p - take
            cut += take
    return out


def fire(
    fired: Fired, override: Override, values: Mapping[str, IndicatorValue], as_of: dt.date
) -> None:
    """An override whose condition holds: it fires unless its `until` (the first day it no
    longer applies: a date indicator plus N years) is on or before `as_of`."""
    end: dt.date | None = None
    if override.until is not None:
        d = values.get(override.until.indicator)
        end = None if d is None else add_years(d, override.until.years)  # type: ignore[arg-type]
    if end is None or as_of < end:
        fired.append((override, end))


def reported_until(fired: Fired, forced: bool) -> dt.date | None:
    """The latest `until` of the deciding overrides (the forces if any fired, else all); an
    override with no end beats any date."""
    if not fired:
        return None
    deciding = (
        [u for o, u in fired if o.effect is EffectKind.FORCE] if forced else [u for _, u in fired]
    )
    if any(u is None for u in deciding):
        return None
    return max(deciding)  # type: ignore[type-var]


def rule_reasons(
    lost: list[tuple[Any, int]], rules: Sequence[tuple[str, Title]], back: Callable[[Any], Decimal]
) -> list[ReasonCode]:
    """The rules that lost points against their best: `lost` holds (points - best, index)
    pairs, negative, in the caller's unit (`back` makes a Decimal of one); the most lost first,
    then in rule order, at most MAX_REASON_RULES."""
    if len(lost) > 1:
        lost.sort()
    out = []
    for diff, i in lost[:MAX_REASON_RULES]:
        rule_id, title = rules[i]
        out.append(ReasonCode(rule_id, "rule", title, back(-diff)))
    return out


def condition_reads(cond: Condition) -> list[str]:
    """The indicators a condition reads, in the order it names them (a group total or the
    score reads none by name)."""
    if isinstance(cond, (AllOf, AnyOf)):
        return [n for c in cond.items for n in condition_reads(c)]
    if isinstance(cond, Not):
        return condition_reads(cond.item)
    if isinstance(cond, Compare):
        return list(cond.ref[1:]) if cond.ref[0] in ("indicator", "sum") else []
    return [cond.indicator]


def override_reads(o: Override) -> tuple[str, ...]:
    """The indicators an override's condition and end date read, each once."""
    names = condition_reads(o.when) + ([o.until.indicator] if o.until else [])
    return tuple(dict.fromkeys(names))


class Grading:
    """A card's grades, in a unit of the caller's (`unit(Decimal)`, `back(difference)`):
    the grade a score gives, the override decision and the points to the next better grade."""

    def __init__(
        self, card: Scorecard, unit: Callable[[Decimal], Any], back: Callable[[Any], Decimal]
    ):
        self.grades = card.grades
        self.reads = {o.id: override_reads(o) for o in card.overrides}
        self.back = back
        self.rank = {g.code: i for i, g in enumerate(card.grades)}
        # a downgrade steps through the grades a score can reach (override-only ones are no step)
        # the score grades' minimums in the caller's unit, by rank
        mins = {i: unit(m) for i, g in enumerate(card.grades) if (m := g.min_score) is not None}
        scoring = list(mins)
        self.ladder = scoring or list(range(len(card.grades)))
        # (min, grade), best first: the first whose min the score reaches is its grade
        self.scoring = [(mins[i], card.grades[i]) for i in scoring]
        # the score grades a score within the range can reach, worst first: (rank, min)
        top = None if card.score_max is None else unit(card.score_max)
        self.climb = [(i, mins[i]) for i in reversed(scoring) if top is None or mins[i] <= top]

    def score_grade(self, sc: Any) -> Grade:
        """The grade a score gives: the best whose minimum it reaches, else the lowest."""
        for low, grade in self.scoring:
            if low <= sc:
                return grade
        return self.scoring[-1][1]

    def _next(
        self, after: Callable[[int], int], final: int, sc: Any
    ) -> tuple[Decimal | None, str | None]:
        """The nearest score grade above `sc` (within the score range) that, under `after`,
        gives a better grade than `final`: (points to it, the grade it gives)."""
        for r, low in self.climb:
            if low > sc:
                reached = after(r)
                if reached < final:
                    return self.back(low - sc), self.grades[reached].code
        return None, None

    def next_better(self, grade: Grade) -> tuple[Any, str] | None:
        """With no override fired, the next better grade from a score of `grade`: (its min, its
        code), or None (the best, or none a score within the range reaches). The generated
        code embeds these per grade; `_next` gives the same from any score of the grade."""
        r = self.rank[grade.code]
        for rr, low in self.climb:
            if rr < r:
                return low, self.grades[rr].code
        return None

    def decide(
        self, fired: Fired, score_grade: Grade, sc: Any
    ) -> tuple[
        Grade,
        dt.date | None,
        tuple[FiredOverride, ...],
        list[ReasonCode],
        Decimal | None,
        str | None,
    ]:
        """The grade when overrides fired (or none did): grade from the score, then downgrades,
        then caps, then forces (the lowest forced grade wins); the reported `until`; the points
        to the next better grade that points alone would reach under the downgrades and caps
        in effect, none when a force decided. `sc` is None on an eligibility card."""
        rank = self.rank
        steps = sum(o.steps for o, _ in fired if o.effect is EffectKind.DOWNGRADE)
        caps = [rank[o.grade] for o, _ in fired if o.effect is EffectKind.CAP]  # type: ignore[index]
        cap = max(caps) if caps else 0
        ladder = self.ladder
        last = len(ladder) - 1

        def after(r: int) -> int:  # downgrades, then caps
            if steps:
                r = ladder[min(ladder.index(r) + steps, last)]
            return max(r, cap)

        final = after(rank[score_grade.code])
        forces = [rank[o.grade] for o, _ in fired if o.effect is EffectKind.FORCE]  # type: ignore[index]
        ptn = next_grade = None
        if forces:
            final = max(forces)
        elif sc is not None:
            ptn, next_grade = self._next(after, final, sc)
        overrides = tuple(
            FiredOverride(
                o.id,
                o.title,
                o.effect,
                o.grade,
                o.steps,
                u,
                o.provenance,
                o.measures,
                self.reads[o.id],
            )
            for o, u in fired
        )
        reasons = [ReasonCode(o.id, "override", o.title) for o, _ in fired]
        return (
            self.grades[final],
            reported_until(fired, bool(forces)),
            overrides,
            reasons,
            ptn,
            next_grade,
        )


__all__ = [
    "MAX_REASON_RULES",
    "SUBJECT_ID_CHECKS",
    "Grading",
    "SubjectIdCheck",
    "clamp",
    "fire",
    "normalize",
    "reported_until",
    "rule_reasons",
    "take_cut",
]
