"""The engine: a scorecard is compiled once, then evaluated many times.

`compile_scorecard(card)` returns a `CompiledScorecard`; its `evaluate` validates the subject and
every indicator (collecting every problem into one `InvalidInput`), scores the rules, applies
group floors and ceilings, grades, applies overrides and explains the result. Semantics:
SCORECARDS.md §1.

Two evaluators give the same results:

- `ReferenceScorecard`: the definition turned into plain closures and generic loops, in
  Decimal arithmetic. It is the test oracle: short, and read directly against §1; the server
  scores with it only a card whose numbers are not exact to 2 places. It also provides
  `validate`, with every error message (the one validator of both).

Both take what a rule kind means from `kinds.py` and what the scoring rules mean (group cut,
overrides and `until`, grades, reasons, subject ids) from `semantics.py`: neither holds a copy.
- `CompiledScorecard`: what the service uses. It runs the Python source `codegen.py` writes for
  the card (one straight-line function, integer hundredths, validators specialised per
  indicator), kept in `CompiledScorecard.source`. Anything its fast path does not take (invalid
  input, unusual value types) goes through the reference validator; a card whose numbers are
  not exact to 2 places is evaluated by the reference altogether.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from . import codegen, kinds, limits
from .exact import add_years, q2, shown_decimal
from .loader import accepted_bounds, accepted_places
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DateTest,
    EvaluationResult,
    FieldViolation,
    GroupTotal,
    Indicator,
    IndicatorType,
    IndicatorValue,
    InvalidInput,
    Line,
    Not,
    Override,
    Rule,
    Scorecard,
    Subject,
    SubjectKind,
)
from .semantics import (
    SUBJECT_ID_CHECKS,
    Grading,
    SubjectIdCheck,
    clamp,
    fire,
    normalize,
    rule_reasons,
    take_cut,
)
from .text import condition_text

ZERO = Decimal(0)
HUNDRED = Decimal(100)

Values = dict[str, IndicatorValue]
# (value, None) when valid, (None, reason) when not
Validator = Callable[[object], tuple[Any, str | None]]
# the context an override condition sees: values, group totals before cut, score, as_of
Predicate = Callable[[Values, dict[str, Decimal], Decimal | None, dt.date], bool]


# --------------------------------------------------------------------------------------------
# Indicator validation


def _to_decimal(x: object) -> Decimal | None:
    if type(x) is Decimal:
        return x if x.is_finite() else None
    if type(x) is int:
        return Decimal(x)
    if type(x) is float:
        d = Decimal(repr(x))  # the shortest repr: 0.15 stays 0.15
        return d if d.is_finite() else None
    if type(x) is str and limits.decimal_text_problem(x) is None:
        d = Decimal(x)
        return d if d.is_finite() else None
    return None


def _numeric_validator(ind: Indicator) -> Validator:
    lo, hi = accepted_bounds(ind)
    is_count = ind.type is IndicatorType.COUNT
    places = accepted_places(ind)
    bounds = f"[{lo}, {hi}]"
    what = {"count": "a whole number ≥ 0", "percent": "a number within [0, 100]"}.get(
        ind.type.value, "a number"
    )

    def validate(x: object) -> tuple[Any, str | None]:
        if type(x) is int and is_count:
            if x < 0:
                return None, f"a count is a whole number ≥ 0, not {x}"
            if lo is not None and x < lo:
                return None, f"{x} is below the minimum {lo}"
            if hi is not None and x > hi:
                return None, f"{x} is above the maximum {hi}"
            return x, None
        if isinstance(x, bool):
            return None, f"expected {what}, not a flag"
        if is_count and type(x) is str and not limits.is_ascii_digits(x):
            return (
                None,
                f"expected a whole number ≥ 0 written with the digits 0-9, not {limits.echo(x)}",
            )
        d = _to_decimal(x)
        if d is None:
            if isinstance(x, (float, Decimal)) or (
                isinstance(x, str) and x.lower().lstrip("+-") in ("nan", "inf", "infinity", "snan")
            ):
                return None, f"expected {what}, not {x} (NaN and Infinity are not numbers here)"
            return None, f"expected {what}, not {limits.echo(x)}"
        if (lo is not None and d < lo) or (hi is not None and d > hi):
            return None, f"{limits.cut(str(x), limits.MAX_ECHO)} is outside {bounds}"
        if is_count:
            if d != d.to_integral_value():
                return None, f"a count is a whole number, not {limits.echo(x)}"
            return int(d), None
        n = limits.places_of(d)
        if n > places:
            return None, (
                f"{limits.echo(x)} has {n} decimal places; this indicator takes at most "
                f"{places} (it is never rounded)"
            )
        return d, None

    return validate


def _flag_validator(ind: Indicator) -> Validator:
    def validate(x: object) -> tuple[Any, str | None]:
        if x is True or x is False:
            return x, None
        return None, f"expected true or false, not {limits.echo(x)}"

    return validate


def _choice_validator(ind: Indicator) -> Validator:
    choices = frozenset(ind.choices)
    listed = ", ".join(ind.choices)

    def validate(x: object) -> tuple[Any, str | None]:
        if type(x) is str and x in choices:
            return x, None
        return None, f"{limits.echo(x)} is not one of: {listed}"

    return validate


def _date_validator(ind: Indicator) -> Validator:
    def validate(x: object) -> tuple[Any, str | None]:
        d = None
        if type(x) is dt.date:
            d = x
        elif type(x) is str and limits.is_date_text(x):
            try:
                d = dt.date.fromisoformat(x)
            except ValueError:
                pass
        if d is None:
            return None, f"expected a date (YYYY-MM-DD), not {limits.echo(x)}"
        why = limits.year_problem(d.year)
        return (d, None) if why is None else (None, why)

    return validate


_VALIDATORS: dict[IndicatorType, Callable[[Indicator], Validator]] = {
    IndicatorType.COUNT: _numeric_validator,
    IndicatorType.NUMBER: _numeric_validator,
    IndicatorType.PERCENT: _numeric_validator,
    IndicatorType.FLAG: _flag_validator,
    IndicatorType.CHOICE: _choice_validator,
    IndicatorType.DATE: _date_validator,
}


# --------------------------------------------------------------------------------------------
# Conditions


def _num(v: object) -> Decimal:
    return v if type(v) is Decimal else Decimal(v)  # type: ignore[arg-type]


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
}


def compile_condition(cond: Condition) -> Predicate:
    if isinstance(cond, AllOf):
        parts = [compile_condition(c) for c in cond.items]
        return lambda v, g, s, a: all(p(v, g, s, a) for p in parts)
    if isinstance(cond, AnyOf):
        parts = [compile_condition(c) for c in cond.items]
        return lambda v, g, s, a: any(p(v, g, s, a) for p in parts)
    if isinstance(cond, Not):
        inner = compile_condition(cond.item)
        return lambda v, g, s, a: not inner(v, g, s, a)
    if isinstance(cond, DateTest):
        name, years = cond.indicator, cond.years
        if cond.test == "within_years":

            def within(v: Values, g: dict[str, Decimal], s: Decimal | None, a: dt.date) -> bool:
                d = v.get(name)
                return d is not None and d <= a < add_years(d, years)  # type: ignore[operator, arg-type]

            return within
        if cond.test == "after_as_of":
            return lambda v, g, s, a: (d := v.get(name)) is not None and d > a  # type: ignore[operator]
        return lambda v, g, s, a: (d := v.get(name)) is not None and d <= a  # type: ignore[operator]
    assert isinstance(cond, Compare)
    op = _COMPARE[cond.op]
    target = cond.value
    kind = cond.ref[0]
    if kind == "indicator":
        name = cond.ref[1]
        if isinstance(target, Decimal) or (
            isinstance(target, tuple) and target and isinstance(target[0], Decimal)
        ):
            return lambda v, g, s, a: (x := v.get(name)) is not None and op(_num(x), target)
        return lambda v, g, s, a: (x := v.get(name)) is not None and op(x, target)
    if kind == "sum":
        names = cond.ref[1:]
        # a value missing (invalid input, or an optional indicator not given) makes the test false
        return lambda v, g, s, a: (
            all(n in v for n in names) and op(sum((_num(v[n]) for n in names), ZERO), target)
        )
    if kind == "group":
        gid = cond.ref[1]
        return lambda v, g, s, a: op(g[gid], target)
    return lambda v, g, s, a: s is not None and op(s, target)


# --------------------------------------------------------------------------------------------
# Rules


def _rule_fn(rule: Rule, ind: Indicator) -> Callable[[Values], Decimal]:
    """The rule's points from the validated values (its kind's `points`, kinds.py)."""
    name, points = rule.indicator, kinds.get(rule.kind).points(rule, ind)
    return lambda v: points(v[name])


# --------------------------------------------------------------------------------------------
# The reference evaluator


class ReferenceScorecard:
    """A scorecard turned into closures once: the reference evaluator (see the module doc)."""

    def __init__(self, card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None):
        self.card = card
        self._id_schemes = id_schemes if id_schemes is not None else {}
        self.id = card.id
        self.version = card.version
        self.digest = card.digest
        self._inds = [(i.name, _VALIDATORS[i.type](i), i) for i in card.indicators]
        self._names = frozenset(i.name for i in card.indicators)
        self._required_when = [
            (i.name, compile_condition(i.required_when), _describe_required_when(i))
            for i in card.indicators
            if i.required_when is not None
        ]
        self._past = [i.name for i in card.indicators if i.past]
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
        self._id_check = SUBJECT_ID_CHECKS.get(card.subject_kind)

    # -- validation ---------------------------------------------------------------------

    def validate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        problems: list[FieldViolation] = []
        if len(indicators) > limits.MAX_INDICATORS:
            # refused before any name is looked at: the work stays bounded whatever was sent
            raise InvalidInput(
                [
                    FieldViolation(
                        "indicators",
                        f"{len(indicators)} indicators; a request has at most"
                        f" {limits.MAX_INDICATORS}",
                    )
                ]
            )
        subject = self._check_subject(subject, problems)
        why = limits.year_problem(as_of.year)
        if why is not None:
            problems.append(FieldViolation("as_of", why))
        values: Values = {}
        names = self._names
        unknown = [key for key in indicators if key not in names]
        for key in unknown[: limits.MAX_UNKNOWN_NAMED]:
            text = str(key)
            close = (
                difflib.get_close_matches(text, names, n=1) if len(text) <= limits.MAX_NAME else []
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                FieldViolation(
                    f"indicators.{limits.field_key(text)}", f"not an indicator of {self.id}{hint}"
                )
            )
        if len(unknown) > limits.MAX_UNKNOWN_NAMED:
            problems.append(
                FieldViolation(
                    "indicators",
                    f"{len(unknown) - limits.MAX_UNKNOWN_NAMED} more names that are not indicators"
                    f" of {self.id}",
                )
            )
        for name, validate, ind in self._inds:
            raw = indicators.get(name)
            if raw is None:
                if ind.default is not None:
                    values[name] = ind.default
                elif ind.required:
                    problems.append(
                        FieldViolation(
                            f"indicators.{name}", f"required {ind.type.value} indicator is missing"
                        )
                    )
                continue
            value, why = validate(raw)
            if why is None:
                values[name] = value
            else:
                problems.append(FieldViolation(f"indicators.{name}", why))
        for name in self._past:
            d = values.get(name)
            if d is not None and d > as_of:  # type: ignore[operator]
                problems.append(
                    FieldViolation(
                        f"indicators.{name}",
                        f"{d} is after as_of {as_of}: this date must be in the past",
                    )
                )
        for name, pred, text in self._required_when:
            if name not in values and pred(values, {}, None, as_of):
                if not any(p.field == f"indicators.{name}" for p in problems):
                    problems.append(FieldViolation(f"indicators.{name}", f"required when {text}"))
        if problems:
            raise InvalidInput(problems)
        return subject, values

    def _check_subject(self, subject: Subject, problems: list[FieldViolation]) -> Subject:
        if subject.display_name:
            why = limits.text_problem(subject.display_name, limits.MAX_DISPLAY_NAME)
            if why is not None:
                problems.append(FieldViolation("subject.display_name", why))
        if subject.kind is not self.card.subject_kind:
            got = subject.kind.value if isinstance(subject.kind, SubjectKind) else subject.kind
            problems.append(
                FieldViolation(
                    "subject.kind",
                    f"{self.id} evaluates a {self.card.subject_kind.value}, not a {got}",
                )
            )
            return subject
        why = limits.text_problem(subject.id, limits.MAX_SUBJECT_ID)
        if why is not None:
            problems.append(FieldViolation("subject.id", why))
            return subject
        sid = normalize(subject.id)
        if not sid:
            problems.append(FieldViolation("subject.id", "required"))
            return subject
        check = self._id_check
        for prefix, scheme in self._id_schemes.items():
            if sid.startswith(prefix):
                check = scheme
                break
        if check is not None:
            why = check(sid)
            if why is not None:
                problems.append(FieldViolation("subject.id", why))
        if sid != subject.id:
            return Subject(subject.kind, sid, subject.display_name)
        return subject

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


# --------------------------------------------------------------------------------------------
# The compiled scorecard (generated code)


class CompiledScorecard:
    """A scorecard compiled to generated Python (codegen.py); `evaluate` is the hot path.

    `source` is the generated source (None when the card is evaluated by the reference, see
    `codegen.generate`); `reference` the `ReferenceScorecard` of the same card."""

    def __init__(self, card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None):
        self.card = card
        self.id = card.id
        self.version = card.version
        self.digest = card.digest
        schemes = id_schemes if id_schemes is not None else {}
        self.reference = ReferenceScorecard(card, schemes)
        generated = codegen.generate(card)
        self.source: str | None = None
        if generated is None:
            self._score = self.reference.score
            self.evaluate = self.reference.evaluate  # type: ignore[method-assign]
        else:
            self.source = generated.source
            evaluate, self._score = generated.build(self.reference.validate, schemes)
            # the generated function itself, not the method below calling it: one call less per
            # evaluation (a few percent of one)
            self.evaluate = evaluate  # type: ignore[method-assign]

    def evaluate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> EvaluationResult:
        """Validate, score and explain; raises InvalidInput listing every problem.

        (Each instance binds `evaluate` to its generated function, which gives the same result
        faster; this method is what it does, the slow way.)"""
        subject, values = self.validate(subject, indicators, as_of)
        return self._score(subject, values, as_of)

    def validate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        return self.reference.validate(subject, indicators, as_of)

    def score(self, subject: Subject, values: Values, as_of: dt.date) -> EvaluationResult:
        """Score validated values (from `validate`)."""
        return self._score(subject, values, as_of)


def _describe_required_when(ind: Indicator) -> str:
    assert ind.required_when is not None
    return condition_text(ind.required_when)


def compile_scorecard(
    card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None
) -> CompiledScorecard:
    """Compile once; `id_schemes` (prefix -> check) is read at evaluation time, so schemes
    registered later by plugins apply."""
    return CompiledScorecard(card, id_schemes)


def compile_reference(
    card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None
) -> ReferenceScorecard:
    """The reference evaluator of `card` (tests compare the generated code with it)."""
    return ReferenceScorecard(card, id_schemes)


def reference_evaluate(
    card: Scorecard, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
) -> EvaluationResult:
    """One evaluation by the reference evaluator (compiles the card's closures each call)."""
    return ReferenceScorecard(card).evaluate(subject, indicators, as_of)


__all__ = [
    "CompiledScorecard",
    "ReferenceScorecard",
    "SubjectIdCheck",
    "add_years",
    "compile_reference",
    "compile_scorecard",
    "q2",
    "reference_evaluate",
]
