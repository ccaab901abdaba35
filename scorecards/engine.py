"""The engine: a scorecard is compiled once, then evaluated many times.

`compile_scorecard(card)` returns a `CompiledScorecard`; its `evaluate` validates the subject and
every indicator (collecting every problem into one `InvalidInput`), scores the rules, applies
group floors and ceilings, grades, applies overrides and explains the result. Semantics:
SCORECARDS.md §1.

Two evaluators give the same results:

- `ReferenceScorecard`: the definition turned into plain closures and generic loops, in
  Decimal arithmetic. It is the reference: short, and read directly against §1. It also
  provides `validate`, with every error message.
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

from . import codegen, limits
from .exact import add_years, q2, shown_decimal
from .loader import accepted_bounds, accepted_places, indicator_domain
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DateTest,
    EffectKind,
    EvaluationResult,
    FieldViolation,
    FiredOverride,
    Grade,
    GroupTotal,
    Indicator,
    IndicatorType,
    IndicatorValue,
    InvalidInput,
    Line,
    Not,
    Override,
    ReasonCode,
    Rule,
    RuleKind,
    Scorecard,
    Subject,
    SubjectKind,
)
from .subject_ids import normalize, resident_id_problem, uscc_problem
from .text import condition_text

ZERO = Decimal(0)
HUNDRED = Decimal(100)
MAX_REASON_RULES = 4

Values = dict[str, IndicatorValue]
# (value, None) when valid, (None, reason) when not
Validator = Callable[[object], tuple[Any, str | None]]
# the context an override condition sees: values, group totals before cut, score, as_of
Predicate = Callable[[Values, dict[str, Decimal], Decimal | None, dt.date], bool]

SubjectIdCheck = Callable[[str], str | None]
SUBJECT_ID_CHECKS: dict[SubjectKind, SubjectIdCheck] = {
    SubjectKind.PERSON: resident_id_problem,
    SubjectKind.ORGANIZATION: uscc_problem,
}


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
        ind.type.value, "a number")

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
            return None, f"expected a whole number ≥ 0 written with the digits 0-9, not {limits.echo(x)}"
        d = _to_decimal(x)
        if d is None:
            if isinstance(x, (float, Decimal)) or (isinstance(x, str) and x.lower().lstrip("+-") in ("nan", "inf", "infinity", "snan")):
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
            return None, (f"{limits.echo(x)} has {n} decimal places; this indicator takes at most "
                          f"{places} (it is never rounded)")
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
        if isinstance(target, Decimal) or (isinstance(target, tuple) and target and isinstance(target[0], Decimal)):
            return lambda v, g, s, a: (x := v.get(name)) is not None and op(_num(x), target)
        return lambda v, g, s, a: (x := v.get(name)) is not None and op(x, target)
    if kind == "sum":
        names = cond.ref[1:]
        # a value missing (invalid input, or an optional indicator not given) makes the test false
        return lambda v, g, s, a: all(n in v for n in names) and op(sum((_num(v[n]) for n in names), ZERO), target)
    if kind == "group":
        gid = cond.ref[1]
        return lambda v, g, s, a: op(g[gid], target)
    return lambda v, g, s, a: s is not None and op(s, target)


# --------------------------------------------------------------------------------------------
# Rules


RuleFn = Callable[[Values], Decimal]


def _band_points(rule: Rule, bands: tuple[Any, ...]) -> Callable[[Decimal], Decimal]:
    ranges = [(b.range, b.points) for b in bands]

    def points(x: Decimal) -> Decimal:
        for rng, pts in ranges:
            if rng.contains(x):
                return pts
        # the loader proved the bands cover the domain; reaching here is a bug
        raise AssertionError(f"rule {rule.id}: no band holds {x}")

    return points


def _rule_fn(rule: Rule, ind: Indicator) -> tuple[RuleFn, Decimal | None]:
    """The rule's scoring function and its best possible points (None: unbounded)."""
    name = rule.indicator
    dom = indicator_domain(ind) if ind.type in (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT) else None
    kind = rule.kind
    if kind is RuleKind.PER_UNIT:
        pts = rule.points
        assert pts is not None and dom is not None
        edge = dom.high if pts > 0 else dom.low
        best = None if edge is None else pts * edge
        return (lambda v: pts * v[name]), best  # type: ignore[operator]
    if kind is RuleKind.BANDS:
        bp = _band_points(rule, rule.bands)
        return (lambda v: bp(v[name])), max(b.points for b in rule.bands)  # type: ignore[arg-type]
    if kind is RuleKind.FLAG:
        pts, when = rule.points, rule.when
        assert pts is not None
        return (lambda v: pts if v[name] is when else ZERO), max(pts, ZERO)
    if kind is RuleKind.CHOICE:
        table = dict(rule.choice_points)
        best_c = max([*table.values(), *([ZERO] if len(table) < len(ind.choices) else [])])
        return (lambda v: table.get(v[name], ZERO)), best_c  # type: ignore[arg-type]
    if kind is RuleKind.DIRECT:
        assert dom is not None
        return (lambda v: _num(v[name])), dom.high
    # weighted: a 0-100 score times the weight in percent
    w = rule.weight
    assert w is not None
    factor = w / HUNDRED
    if ind.type is IndicatorType.CHOICE:
        table = dict(rule.choice_points)
        best_s = max([*table.values(), *([ZERO] if len(table) < len(ind.choices) else [])])
        return (lambda v: table.get(v[name], ZERO) * factor), best_s * factor  # type: ignore[arg-type]
    if ind.type is IndicatorType.FLAG:
        assert rule.flag_points is not None
        t, f = rule.flag_points
        return (lambda v: (t if v[name] is True else f) * factor), max(t, f) * factor
    if rule.bands:
        bp = _band_points(rule, rule.bands)
        return (lambda v: bp(v[name]) * factor), max(b.points for b in rule.bands) * factor  # type: ignore[arg-type]
    assert dom is not None and dom.high is not None
    return (lambda v: _num(v[name]) * factor), dom.high * factor


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
            for i in card.indicators if i.required_when is not None
        ]
        self._past = [i.name for i in card.indicators if i.past]
        inds = {i.name: i for i in card.indicators}
        self._rules: list[tuple[Rule, RuleFn, Decimal | None]] = []
        for r in card.rules:
            fn, best = _rule_fn(r, inds[r.indicator])
            self._rules.append((r, fn, None if best is None else q2(best)))
        self._groups = card.groups
        self._overrides = [(o, compile_condition(o.when)) for o in card.overrides]
        self._grade_rank = {g.code: i for i, g in enumerate(card.grades)}
        self._scoring_grades = [g for g in card.grades if g.min_score is not None]
        # a downgrade steps through the grades a score can reach (override-only ones are no step)
        scoring_ranks = [i for i, g in enumerate(card.grades) if g.min_score is not None]
        self._downgrade_ladder = scoring_ranks or list(range(len(card.grades)))
        self._default_grade = card.grade(card.default_grade) if card.default_grade else None
        # the base as the explanation shows it: 2 places when the card's base is exact to 2
        self._base = None if card.base is None else shown_decimal(card.base)
        self._id_check = SUBJECT_ID_CHECKS.get(card.subject_kind)

    # -- validation ---------------------------------------------------------------------

    def validate(self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        problems: list[FieldViolation] = []
        if len(indicators) > limits.MAX_INDICATORS:
            # refused before any name is looked at: the work stays bounded whatever was sent
            raise InvalidInput([FieldViolation(
                "indicators", f"{len(indicators)} indicators; a request has at most {limits.MAX_INDICATORS}")])
        subject = self._check_subject(subject, problems)
        why = limits.year_problem(as_of.year)
        if why is not None:
            problems.append(FieldViolation("as_of", why))
        values: Values = {}
        names = self._names
        unknown = [key for key in indicators if key not in names]
        for key in unknown[:limits.MAX_UNKNOWN_NAMED]:
            text = str(key)
            close = difflib.get_close_matches(text, names, n=1) if len(text) <= limits.MAX_NAME else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(FieldViolation(f"indicators.{limits.field_key(text)}", f"not an indicator of {self.id}{hint}"))
        if len(unknown) > limits.MAX_UNKNOWN_NAMED:
            problems.append(FieldViolation(
                "indicators", f"{len(unknown) - limits.MAX_UNKNOWN_NAMED} more names that are not indicators of {self.id}"))
        for name, validate, ind in self._inds:
            raw = indicators.get(name)
            if raw is None:
                if ind.default is not None:
                    values[name] = ind.default
                elif ind.required:
                    problems.append(FieldViolation(f"indicators.{name}", f"required {ind.type.value} indicator is missing"))
                continue
            value, why = validate(raw)
            if why is None:
                values[name] = value
            else:
                problems.append(FieldViolation(f"indicators.{name}", why))
        for name in self._past:
            d = values.get(name)
            if d is not None and d > as_of:  # type: ignore[operator]
                problems.append(FieldViolation(f"indicators.{name}", f"{d} is after as_of {as_of}: this date must be in the past"))
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
            problems.append(FieldViolation(
                "subject.kind", f"{self.id} evaluates a {self.card.subject_kind.value}, not a {subject.kind.value if isinstance(subject.kind, SubjectKind) else subject.kind}"))
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

    def evaluate(self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date) -> EvaluationResult:
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
            total = before
            if g.floor is not None and total < g.floor:
                total = g.floor
            if g.ceiling is not None and total > g.ceiling:
                total = g.ceiling
            if total != before:
                self._take_cut(g.id, total - before, final_points)
            group_totals.append(GroupTotal(g.id, g.title, before, total, g.floor, g.ceiling))
            group_sum += total
        lines = tuple(
            Line(rule.id, rule.title, rule.group, ((rule.indicator, values.get(rule.indicator)),),
                 final_points[i], rule.provenance,
                 raw_points[i] if final_points[i] != raw_points[i] else None, best)
            for i, (rule, _fn, best) in enumerate(self._rules)
        )
        # 3. score and the grade it gives
        score: Decimal | None = None
        score_before_cut: Decimal | None = None
        base = self._base
        if base is not None:
            uncut = base + group_sum + ungrouped
            score = uncut
            if card.score_min is not None and score < card.score_min:
                score = card.score_min
            if card.score_max is not None and score > card.score_max:
                score = card.score_max
            score = q2(score)
            if score != uncut:
                score_before_cut = q2(uncut)
            grade = self._grade_for(score)
        else:
            assert self._default_grade is not None
            grade = self._default_grade
        score_grade = grade
        # 4. overrides: downgrades, then caps, then forces
        fired: list[tuple[Override, dt.date | None]] = []
        for o, pred in self._overrides:
            if pred(values, group_raw, score, as_of):
                until_day = self._until(o, values)
                # `until` is the first day on which the override no longer applies
                if until_day is None or as_of < until_day:
                    fired.append((o, until_day))
        rank = self._grade_rank
        grades = card.grades
        steps = sum(o.steps for o, _ in fired if o.effect is EffectKind.DOWNGRADE)
        caps = [rank[o.grade] for o, _ in fired if o.effect is EffectKind.CAP]  # type: ignore[index]
        forces = [rank[o.grade] for o, _ in fired if o.effect is EffectKind.FORCE]  # type: ignore[index]
        ladder = self._downgrade_ladder

        def after_overrides(score_rank: int) -> int:
            """The grade (rank) a score grade gives under the downgrades and caps that fired."""
            r = score_rank
            if steps:
                r = ladder[min(ladder.index(r) + steps, len(ladder) - 1)]
            if caps:
                r = max(r, max(caps))
            return r

        final_rank = after_overrides(rank[grade.code])
        forced = bool(forces)
        if forced:
            final_rank = max(forces)
        grade = grades[final_rank]
        until = self._reported_until(fired, forced)
        # 5. how far to the next better grade that points alone would reach: the nearest score
        # grade above this score (within the score range) that, under the downgrades and caps in
        # effect, gives a better grade than this one; none when a force decided (SCORECARDS.md §1)
        ptn: Decimal | None = None
        next_grade: str | None = None
        if score is not None and not forced:
            for above in reversed(self._scoring_grades):
                m = above.min_score
                assert m is not None
                if m <= score or (card.score_max is not None and m > card.score_max):
                    continue
                reached = after_overrides(rank[above.code])
                if reached < final_rank:
                    next_grade = grades[reached].code
                    ptn = q2(m - score)
                    break
        # 6. reasons: the overrides first, then the rules that lost most against their best
        reasons = [ReasonCode(o.id, "override", o.title) for o, _ in fired]
        losses = []
        for i, (rule, _fn, best) in enumerate(self._rules):
            if best is not None:
                lost = best - final_points[i]
                if lost > 0:
                    losses.append((-lost, i, rule, lost))
        losses.sort(key=lambda t: (t[0], t[1]))
        reasons.extend(ReasonCode(r.id, "rule", r.title, lost) for _, _, r, lost in losses[:MAX_REASON_RULES])
        return EvaluationResult(
            scorecard_id=card.id, version=card.version, digest=card.digest, subject=subject,
            as_of=as_of, indicators=values, score=score,
            score_grade=score_grade.code if score is not None else None, grade=grade,
            lines=lines, groups=tuple(group_totals),
            overrides=tuple(FiredOverride(o.id, o.title, o.effect, o.grade, o.steps, u, o.provenance) for o, u in fired),
            until=until, reasons=tuple(reasons), points_to_next_grade=ptn, next_grade=next_grade,
            base=base, score_before_cut=score_before_cut,
        )

    def _take_cut(self, group_id: str, cut: Decimal, points: list[Decimal]) -> None:
        """Remove `cut` (negative: points above a ceiling; positive: below a floor) from the
        group's lines of the same sign as the excess, last line first."""
        remaining = cut
        for i in range(len(self._rules) - 1, -1, -1):
            if remaining == 0:
                break
            if self._rules[i][0].group != group_id:
                continue
            p = points[i]
            if remaining > 0 and p < 0:
                take = min(remaining, -p)
                points[i] = p + take
                remaining -= take
            elif remaining < 0 and p > 0:
                take = min(-remaining, p)
                points[i] = p - take
                remaining += take

    def _grade_for(self, score: Decimal) -> Grade:
        for g in self._scoring_grades:
            if g.min_score <= score:  # type: ignore[operator]
                return g
        return self._scoring_grades[-1]

    @staticmethod
    def _until(o: Override, values: Values) -> dt.date | None:
        if o.until is None:
            return None
        d = values.get(o.until.indicator)
        if d is None:
            return None
        return add_years(d, o.until.years)  # type: ignore[arg-type]

    @staticmethod
    def _reported_until(fired: list[tuple[Override, dt.date | None]], forced: bool) -> dt.date | None:
        """The latest `until` of the deciding overrides (the forces if any fired, else all);
        an override with no end beats any date."""
        if not fired:
            return None
        deciding = [u for o, u in fired if o.effect is EffectKind.FORCE] if forced else [u for _, u in fired]
        if any(u is None for u in deciding):
            return None
        return max(deciding)  # type: ignore[type-var]


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

    def evaluate(self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date) -> EvaluationResult:
        """Validate, score and explain; raises InvalidInput listing every problem.

        (Each instance binds `evaluate` to its generated function, which gives the same result
        faster; this method is what it does, the slow way.)"""
        subject, values = self.validate(subject, indicators, as_of)
        return self._score(subject, values, as_of)

    def validate(self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        return self.reference.validate(subject, indicators, as_of)

    def score(self, subject: Subject, values: Values, as_of: dt.date) -> EvaluationResult:
        """Score validated values (from `validate`)."""
        return self._score(subject, values, as_of)


def _describe_required_when(ind: Indicator) -> str:
    assert ind.required_when is not None
    return condition_text(ind.required_when)


def compile_scorecard(card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None) -> CompiledScorecard:
    """Compile once; `id_schemes` (prefix -> check) is read at evaluation time, so schemes
    registered later by plugins apply."""
    return CompiledScorecard(card, id_schemes)


def compile_reference(card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None) -> ReferenceScorecard:
    """The reference evaluator of `card` (tests compare the generated code with it)."""
    return ReferenceScorecard(card, id_schemes)


def reference_evaluate(card: Scorecard, subject: Subject, indicators: Mapping[str, object], as_of: dt.date) -> EvaluationResult:
    """One evaluation by the reference evaluator (compiles the card's closures each call)."""
    return ReferenceScorecard(card).evaluate(subject, indicators, as_of)


__all__ = ["CompiledScorecard", "ReferenceScorecard", "SubjectIdCheck", "add_years", "compile_reference",
           "compile_scorecard", "q2", "reference_evaluate"]
