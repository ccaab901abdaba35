"""The reference evaluator: a scorecard's definition turned into plain closures and generic
loops, in Decimal arithmetic, read directly against SCORECARDS.md §1.

It is the test oracle of the generated evaluator (`codegen.py`, tests/test_codegen.py), and
what the server scores with only for a card whose numbers are not exact to 2 places. It
validates through `validation.InputValidator` (the one validator of both), takes what a rule
kind means from `kinds.py` and what the scoring rules mean (group cut, overrides and `until`,
grades, reasons) from `semantics.py`: it holds no copy of either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal

from . import kinds
from .exact import q2, shown_decimal
from .model import (
    EvaluationResult,
    GroupTotal,
    Indicator,
    Line,
    Override,
    Rule,
    Scorecard,
    Subject,
)
from .predicates import Values, compile_condition
from .semantics import Grading, SubjectIdCheck, clamp, fire, rule_reasons, take_cut
from .validation import InputValidator

ZERO = Decimal(0)


def _rule_fn(rule: Rule, ind: Indicator) -> Callable[[Values], Decimal]:
    """The rule's points from the validated values (its kind's `points`, kinds.py)."""
    name, points = rule.indicator, kinds.get(rule.kind).points(rule, ind)
    return lambda v: points(v[name])


class ReferenceScorecard(InputValidator):
    """A scorecard turned into closures once: the reference evaluator (see the module doc).
    `validate` is `InputValidator`'s; `score` scores validated values."""

    def __init__(self, card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None):
        super().__init__(card, id_schemes)
        self.version = card.version
        self.digest = card.digest
        inds = {i.name: i for i in card.indicators}
        self._rules = [
            (r, _rule_fn(r, inds[r.indicator]), kinds.best_points(r, inds[r.indicator]))
            for r in card.rules
        ]
        self._rule_reasons = [(r.id, r.title) for r in card.rules]
        self._groups = card.groups
        self._overrides = [(o, compile_condition(o.when)) for o in card.overrides]
        self._grading = Grading(card, lambda x: x, q2)
        self._default_grade = card.grade(card.default_grade) if card.default_grade else None
        # the base as the explanation shows it: 2 places when the card's base is exact to 2
        self._base = None if card.base is None else shown_decimal(card.base)

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> EvaluationResult:
        subject, values = self.validate(subject, indicators, as_of)
        return self.score(subject, values, as_of)

    def score(self, subject: Subject, values: Values, as_of: dt.date) -> EvaluationResult:
        """Score validated values (from `validate`)."""
        card = self.card
        # 1. rule points, grouped
        raw_points: list[Decimal] = []
        group_raw: dict[str, Decimal] = {g.id: ZERO for g in self._groups}
        ungrouped = ZERO
        for rule, fn, _best in self._rules:
            p = q2(fn(values))
            raw_points.append(p)
            if rule.group is None:
                ungrouped += p
            else:
                group_raw[rule.group] += p
        # 2. group floors and ceilings; the cut is taken from the later lines
        final_points = list(raw_points)
        group_totals: list[GroupTotal] = []
        group_sum = ZERO
        for g in self._groups:
            before = group_raw[g.id]
            total = clamp(before, g.floor, g.ceiling)
            if total != before:
                members = [i for i, (r, _fn, _b) in enumerate(self._rules) if r.group == g.id]
                for i, p in zip(
                    members, take_cut(total - before, [final_points[i] for i in members])
                ):
                    final_points[i] = p
            group_totals.append(GroupTotal(g.id, g.title, before, total, g.floor, g.ceiling))
            group_sum += total
        lines = tuple(
            Line(
                rule.id,
                rule.title,
                rule.group,
                ((rule.indicator, values.get(rule.indicator)),),
                final_points[i],
                rule.provenance,
                raw_points[i] if final_points[i] != raw_points[i] else None,
                best,
            )
            for i, (rule, _fn, best) in enumerate(self._rules)
        )
        # 3. score and the grade it gives
        score: Decimal | None = None
        score_before_cut: Decimal | None = None
        base = self._base
        if base is not None:
            uncut = base + group_sum + ungrouped
            score = q2(clamp(uncut, card.score_min, card.score_max))
            if score != uncut:
                score_before_cut = q2(uncut)
            grade = self._grading.score_grade(score)
        else:
            assert self._default_grade is not None
            grade = self._default_grade
        score_grade = grade
        # 4. overrides: downgrades, then caps, then forces; 5. the points to the next better
        # grade that points alone would reach (semantics.Grading)
        fired: list[tuple[Override, dt.date | None]] = []
        for o, pred in self._overrides:
            if pred(values, group_raw, score, as_of):
                fire(fired, o, values, as_of)
        grade, until, overrides, reasons, ptn, next_grade = self._grading.decide(
            fired, score_grade, score
        )
        # 6. reasons: the overrides first, then the rules that lost most against their best
        lost = [
            (final_points[i] - best, i)
            for i, (_r, _fn, best) in enumerate(self._rules)
            if best is not None and final_points[i] < best
        ]
        reasons.extend(rule_reasons(lost, self._rule_reasons, lambda x: x))
        return EvaluationResult(
            scorecard_id=card.id,
            version=card.version,
            digest=card.digest,
            subject=subject,
            as_of=as_of,
            indicators=values,
            score=score,
            score_grade=score_grade.code if score is not None else None,
            grade=grade,
            lines=lines,
            groups=tuple(group_totals),
            overrides=overrides,
            until=until,
            reasons=tuple(reasons),
            points_to_next_grade=ptn,
            next_grade=next_grade,
            base=base,
            score_before_cut=score_before_cut,
        )
