"""Code generation: one straight-line Python function per scorecard, built when it loads.

`generate(card)` writes the source of a small module for one scorecard; `CompiledScorecard`
(engine.py) compiles it once and calls its functions on every evaluation. The source is kept
(`CompiledScorecard.source`), and printed by

    python -m sector_credit.scorecards.codegen transport.taxi_driver   # a built-in id, or a .toml

The generated module has three functions:

- `evaluate(subject, indicators, as_of)`: the hot path. It is written for the common case,
  valid input of the usual Python types, and nothing else:
  1. the subject: kind, id normalized and checked (GB 11643 / GB 32100, or a plugin's scheme);
  2. each indicator, with a check written for its type and bounds (an `int` count within its
     maximum, an `int`, finite `float` or finite `Decimal` number within its bounds, `True` or
     `False`, a listed choice code, a `date` or an ISO date string), defaults filled in, `past`
     dates and `required_when` conditions tested, unknown names noticed;
  3. the scoring block (below).
  Whenever step 1 or 2 meets anything else (a problem, or a value of another type such as a
  number in a string) it hands the whole call to `general`; the fast path never reports a
  problem itself, so every error message is the reference validator's.
- `general(subject, indicators, as_of)`: the reference validator (`ReferenceScorecard.validate`,
  which raises `InvalidInput` naming every problem), then `score`.
- `score(subject, values, as_of)`: reads validated values, then the scoring block.

The scoring block, the same text in `evaluate` and `score`:
  1. each rule's points as an integer number of hundredths (`p_<rule>`), in the code its kind
     emits (`kinds.py`), rounded half up as the reference rounds them: a count times points
     exact to 2 places is an integer product; band, choice, flag and weighted-score tables
     were rounded when the source was written (the same Decimal operations the reference does
     per call); anything else (a number times points, a value itself) is computed in Decimal
     and rounded (`to_hundredths`);
  2. group totals before the cut (`g_<group>`), floors and ceilings (`t_<group>`, by
     `semantics.clamp`), and the cut taken from the later lines first (`semantics.take_cut`,
     only when a bound cuts; `b_<rule>` keeps a cut line's points before the cut);
  3. score = base + group totals + ungrouped points, clamped (the score before a cut kept);
     the grade from a chain of comparisons with the minimums of `semantics.Grading`, each
     branch with the next better grade `Grading.next_better` gives;
  4. each override's condition as one expression; the rare case that one fires goes to
     `semantics.fire` (its `until`) and `Grading.decide` (downgrades, then caps, then forces;
     the reported `until`; the points to the next better grade under the caps and downgrades
     in effect, none under a force);
  5. reasons: the overrides, then the rules that lost points against their best, (points −
     best, rule index) pairs for the few rules that lost any, ranked by
     `semantics.rule_reasons`;
  6. the result: hundredths become Decimals (`HUNDREDTHS`, a table of made Decimals), group
     totals cut by a bound are the bound as written, as the reference gives them; the result
     objects are made by `object.__new__` and a store per field (`construct`).

Arithmetic on whole hundredths has no precision limit, where the reference's Decimal context
has 28 digits: a count of 10^30 events is scored exactly here, where the reference raises
`decimal.InvalidOperation` rounding its points. That is the one difference.

Integer hundredths are exact only when the card's own numbers are: base, score range, group
floors and ceilings, grade minimums must be exact to 2 places (all built-in cards are). For a
card where one is not, `generate` returns None and the engine evaluates that card with the
reference evaluator. The reference stays the definition: tests/test_codegen.py checks that the
generated code of every built-in card gives results equal to it (Decimal exponents included)
on random inputs.

Over 500 lines for a reason: it is one writer of one generated module, whose parts (the scoring
block, `evaluate`, `score`, `validate`) share its name table and constants; each rule kind's own
code is already elsewhere (`kinds.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import linecache
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import kinds, limits
from .exact import HUNDREDTHS, add_years, q2, to_hundredths
from .kinds import best_points, exact_in_hundredths, int_test
from .limits import accepted_bounds, accepted_places
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DateTest,
    EvaluationResult,
    Grade,
    GroupTotal,
    Indicator,
    IndicatorType,
    Interval,
    Line,
    Not,
    ReasonCode,
    Rule,
    Scorecard,
    Subject,
)
from .semantics import SUBJECT_ID_CHECKS, Grading, clamp, fire, normalize, rule_reasons, take_cut
from .text import condition_text, decimal_text

ZERO = Decimal(0)
NUMERIC = (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT)


# --------------------------------------------------------------------------------------------
# The generated module


@dataclass(frozen=True)
class Generated:
    """The source written for one card and the constants it names."""

    source: str
    constants: dict[str, object]
    filename: str

    def build(
        self, validate: Callable[..., Any], id_schemes: Mapping[str, Callable[[str], str | None]]
    ) -> tuple[Callable[..., EvaluationResult], Callable[..., EvaluationResult]]:
        """Compile the source once; returns (evaluate, score). `validate` is the reference
        validator (`general` path), `id_schemes` the registry's prefix -> check mapping, read at
        evaluation time so schemes registered later apply."""
        ns: dict[str, object] = {**self.constants, "VALIDATE": validate, "ID_SCHEMES": id_schemes}
        code = compile(self.source, self.filename, "exec")
        # so that tracebacks and `inspect` show the generated lines
        linecache.cache[self.filename] = (
            len(self.source),
            None,
            self.source.splitlines(True),
            self.filename,
        )
        exec(code, ns)  # noqa: S102 - our own source, written from a loaded definition
        return ns["evaluate"], ns["score"]  # type: ignore[return-value]


def hundredths_of(x: Decimal) -> int:
    """An exact-to-2-places Decimal as whole hundredths."""
    assert exact_in_hundredths(x), x
    return int(x * 100)


def not_exact(card: Scorecard) -> list[str]:
    """The card's numbers that are not exact to 2 places (the generated code needs them to be)."""
    out = []
    for what, x in (
        ("base", card.base),
        ("score.min", card.score_min),
        ("score.max", card.score_max),
    ):
        if not exact_in_hundredths(x):
            out.append(f"{what} {x}")
    for g in card.groups:
        for what, x in (("floor", g.floor), ("ceiling", g.ceiling)):
            if not exact_in_hundredths(x):
                out.append(f"group {g.id} {what} {x}")
    for gr in card.grades:
        if not exact_in_hundredths(gr.min_score):
            out.append(f"grade {gr.code} min {gr.min_score}")
    return out


def generate(card: Scorecard) -> Generated | None:
    """The generated module for `card`, or None when its numbers are not exact to 2 places."""
    if not_exact(card):
        return None
    return _Writer(card).write()


class _Writer:
    """Writes the module for one card. Locals in the generated code: `v_<indicator>` values,
    `p_<rule>` a line's points (after its group's cut, if any), `b_<rule>` its points before a
    cut (a Decimal, or None), `g_<group>` / `t_<group>` group totals before / after the floor
    or ceiling, `T_<group>` the latter as a Decimal, `sc` the score (all integers in hundredths
    except the values and the Decimals)."""

    def __init__(self, card: Scorecard):
        self.card = card
        self.inds = {i.name: i for i in card.indicators}
        self.grading = Grading(card, hundredths_of, HUNDREDTHS.__getitem__)
        self.consts: dict[str, object] = {
            "Decimal": Decimal,
            "date": dt.date,
            "date_fromisoformat": dt.date.fromisoformat,
            "Subject": Subject,
            "Line": Line,
            "GroupTotal": GroupTotal,
            "ReasonCode": ReasonCode,
            "EvaluationResult": EvaluationResult,
            "HUNDREDTHS": HUNDREDTHS,
            "ZERO": ZERO,
            "new": object.__new__,
            "to_hundredths": to_hundredths,
            "add_years": add_years,
            "take_cut": take_cut,
            "clamp": clamp,
            "fire": fire,
            "rule_reasons": rule_reasons,
            "NORMALIZE": normalize,
            "decide": self.grading.decide,
            "HUNDREDTHS_OF": HUNDREDTHS.__getitem__,
            "SUBJECT_KIND": card.subject_kind,
            "ID_CHECK": SUBJECT_ID_CHECKS.get(card.subject_kind),
            "IS_DATE_TEXT": limits.is_date_text,
            "MIN_YEAR": limits.MIN_YEAR,
            "MAX_YEAR": limits.MAX_YEAR,
            "MAX_INDICATORS": limits.MAX_INDICATORS,
            "MAX_SUBJECT_ID": limits.MAX_SUBJECT_ID,
            "MAX_DISPLAY_NAME": limits.MAX_DISPLAY_NAME,
        }
        self._n = 0
        # rules whose lines a floor or ceiling may cut (they have a `b_<rule>`)
        bounded = {g.id for g in card.groups if g.floor is not None or g.ceiling is not None}
        self.cut_rules = {r.id for r in card.rules if r.group in bounded}
        # number and percent indicators a `direct` rule scores: their value in hundredths is
        # `c_<indicator>`, known without Decimal arithmetic when the value came as an int
        self.direct_numbers = {
            r.indicator
            for r in card.rules
            if kinds.get(r.kind).reads_hundredths
            and self.inds[r.indicator].type in (IndicatorType.NUMBER, IndicatorType.PERCENT)
        }

    # -- constants ---------------------------------------------------------------------

    def const(self, value: object, hint: str) -> str:
        """A name for `value` in the module's namespace (one name per distinct object)."""
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        for name, v in self.consts.items():
            if v is value:
                return name
        self._n += 1
        name = f"{hint}_{self._n}"
        self.consts[name] = value
        return name

    def named(self, name: str, value: object) -> str:
        assert name not in self.consts or self.consts[name] is value, name
        self.consts[name] = value
        return name

    # -- conditions ----------------------------------------------------------------------

    def condition(self, c: Condition) -> str:
        """An override or required_when condition as one Python expression (absent values:
        false)."""
        if isinstance(c, AllOf):
            return (
                "(" + " and ".join(self.condition(x) for x in c.items) + ")" if c.items else "True"
            )
        if isinstance(c, AnyOf):
            return (
                "(" + " or ".join(self.condition(x) for x in c.items) + ")" if c.items else "False"
            )
        if isinstance(c, Not):
            return f"(not {self.condition(c.item)})"
        if isinstance(c, DateTest):
            v = f"v_{c.indicator}"
            if c.test == "within_years":
                return f"({v} is not None and {v} <= as_of < add_years({v}, {c.years}))"
            if c.test == "after_as_of":
                return f"({v} is not None and {v} > as_of)"
            return f"({v} is not None and {v} <= as_of)"
        assert isinstance(c, Compare)
        kind, target = c.ref[0], c.value
        if kind == "group":
            assert isinstance(target, Decimal)
            return f"({int_test('g_' + c.ref[1], c.op, target * 100)})"
        if kind == "score":
            assert isinstance(target, Decimal)
            return (
                f"({int_test('sc', c.op, target * 100)})" if self.card.base is not None else "False"
            )
        if kind == "sum":
            names = c.ref[1:]
            guards = [f"v_{n} is not None" for n in names if self.may_be_absent(n)]
            total = "(" + " + ".join(f"v_{n}" for n in names) + ")"
            assert isinstance(target, Decimal)
            if all(self.inds[n].type is IndicatorType.COUNT for n in names):
                test = int_test(total, c.op, target)
            else:  # Decimal arithmetic, as the reference sums
                test = f"ZERO + {total[1:-1]} {_PY_OP[c.op]} {self.const(target, 'VALUE')}"
            return "(" + " and ".join([*guards, test]) + ")"
        name = c.ref[1]
        ind, v = self.inds[name], f"v_{name}"
        guard = f"{v} is not None and " if self.may_be_absent(name) else ""
        if ind.type is IndicatorType.COUNT:
            if c.op == "in":
                assert isinstance(target, tuple)
                members = frozenset(
                    int(t) for t in target if isinstance(t, Decimal) and t == t.to_integral_value()
                )
                return f"({guard}{v} in {self.const(members, 'MEMBERS')})"
            assert isinstance(target, Decimal)
            return f"({guard}{int_test(v, c.op, target)})"
        if c.op == "in":
            assert isinstance(target, tuple)
            members_t: object = target if ind.type in NUMERIC else frozenset(target)
            return f"({guard}{v} in {self.const(members_t, 'MEMBERS')})"
        if ind.type is IndicatorType.FLAG and c.op in ("=", "!="):
            return f"({guard}{v} {'is' if c.op == '=' else 'is not'} {target!r})"
        return f"({guard}{v} {_PY_OP[c.op]} {self.const(target, 'VALUE')})"

    def may_be_absent(self, name: str) -> bool:
        ind = self.inds[name]
        return not ind.required and ind.default is None

    # -- validation (the fast path of `evaluate`) ----------------------------------------

    def validation(self) -> list[str]:
        card = self.card
        out = [
            "# -- the limits (scorecards/limits.py) -----------------------------------------",
            "if (len(indicators) > MAX_INDICATORS or not MIN_YEAR <= as_of.year <= MAX_YEAR"
            " or len(subject.id) > MAX_SUBJECT_ID or '\\x00' in subject.id"
            " or subject.display_name and (len(subject.display_name) > MAX_DISPLAY_NAME or '\\x00'"
            " in subject.display_name)):",
            "    return general(subject, indicators, as_of)",
            "# -- the subject ---------------------------------------------------------------",
            "if subject.kind is not SUBJECT_KIND:",
            "    return general(subject, indicators, as_of)",
            "sid = NORMALIZE(subject.id)",
            "check = ID_CHECK",
            "if ID_SCHEMES:",
            "    for prefix, scheme in ID_SCHEMES.items():",
            "        if sid.startswith(prefix):",
            "            check = scheme",
            "            break",
            "if not sid or check is not None and check(sid) is not None:",
            "    return general(subject, indicators, as_of)",
            "subj = subject if sid == subject.id else Subject(subject.kind, sid,"
            " subject.display_name)",
            "# -- the indicators: valid values of the usual types; anything else goes to general",
        ]
        for ind in card.indicators:
            out += self.validate_indicator(ind)
        out += [
            "if not NAMES.issuperset(indicators):  # an unknown name",
            "    return general(subject, indicators, as_of)",
        ]
        self.named("NAMES", frozenset(self.inds))
        for ind in card.indicators:
            if ind.required_when is not None:
                test = f"v_{ind.name} is None and {self.condition(ind.required_when)}"
                out += [
                    f"if {test}:  # required when {condition_text(ind.required_when)}",
                    "    return general(subject, indicators, as_of)",
                ]
        out.append(
            "values = {" + ", ".join(f"{i.name!r}: v_{i.name}" for i in card.indicators) + "}"
        )
        for ind in card.indicators:
            if self.may_be_absent(ind.name):
                out += [f"if v_{ind.name} is None:", f"    del values[{ind.name!r}]"]
        return out

    def validate_indicator(self, ind: Indicator) -> list[str]:
        v = f"v_{ind.name}"
        general = "    return general(subject, indicators, as_of)"
        if ind.default is not None:
            missing = [f"    {v} = {self.const(ind.default, 'DEFAULT')}"]
            if ind.name in self.direct_numbers:
                missing.append(f"    c_{ind.name} = {hundredths_of(q2(ind.default))}")  # type: ignore[arg-type]
        elif ind.required:
            missing = [general]
        else:
            missing = [f"    {v} = None"]
        what = f"{ind.type.value}" + (
            f", default {ind.default}"
            if ind.default is not None
            else ", required"
            if ind.required
            else ", may be absent"
        )
        out = [
            f"# {ind.name}: {what}",
            f"x = indicators.get({ind.name!r})",
            "if x is None:",
            *missing,
        ]
        accepted: list[tuple[str, list[str]]] = []  # (test, body)
        t = ind.type
        if t is IndicatorType.COUNT:
            low, high = accepted_bounds(ind)
            # as the reference: an int count is refused below its minimum (0 unless stated) or
            # above its maximum (at most limits.MAX_COUNT)
            tests = ["type(x) is int", int_test("x", ">=", low) if low is not None else "x >= 0"]
            if high is not None:
                tests.append(int_test("x", "<=", high))
            accepted.append((" and ".join(tests), [f"{v} = x"]))
        elif t in (IndicatorType.NUMBER, IndicatorType.PERCENT):
            low, high = accepted_bounds(ind)  # bounds inclusive, within the service's limits
            dom = Interval(low, high, True, True)
            # a value written with more places than the indicator takes goes to general, which
            # tells it apart from one with trailing zeros (1.500) and refuses it
            places = f"x.as_tuple().exponent >= {-accepted_places(ind)}"
            int_tests = ["type(x) is int"] + [
                int_test("x", op, b)
                for op, b in ((">=", dom.low), ("<=", dom.high))
                if b is not None
            ]
            c = f"c_{ind.name}"
            direct = ind.name in self.direct_numbers
            accepted.append(
                (
                    " and ".join(int_tests),
                    [f"{v} = Decimal(x)"] + ([f"{c} = 100 * x"] if direct else []),
                )
            )
            # a float is read by its shortest repr (0.15 stays 0.15);
            # inf - inf and nan - nan are nan
            accepted.append(
                (
                    "type(x) is float and x - x == 0.0 and "
                    + self.within("(d := Decimal(repr(x)))", dom)
                    + f" and d.as_tuple().exponent >= {-accepted_places(ind)}",
                    [f"{v} = d"] + ([f"{c} = to_hundredths(d)"] if direct else []),
                )
            )
            accepted.append(
                (
                    "type(x) is Decimal and x.is_finite() and "
                    + self.within("x", dom)
                    + f" and {places}",
                    [f"{v} = x"] + ([f"{c} = to_hundredths(x)"] if direct else []),
                )
            )
        elif t is IndicatorType.FLAG:
            accepted.append(("x is True or x is False", [f"{v} = x"]))
        elif t is IndicatorType.CHOICE:
            accepted.append(
                (
                    f"type(x) is str and x in {self.const(frozenset(ind.choices), 'CHOICES')}",
                    [f"{v} = x"],
                )
            )
        else:
            accepted.append(("type(x) is date and MIN_YEAR <= x.year <= MAX_YEAR", [f"{v} = x"]))
            accepted.append(
                (
                    "type(x) is str and IS_DATE_TEXT(x)",
                    [
                        "try:",
                        f"    {v} = date_fromisoformat(x)",
                        "except ValueError:",
                        "    return general(subject, indicators, as_of)",
                        f"if not MIN_YEAR <= {v}.year <= MAX_YEAR:",
                        "    return general(subject, indicators, as_of)",
                    ],
                )
            )
        for test, body in accepted:
            out.append(f"elif {test}:")
            out += ["    " + ln for ln in body]
        out += ["else:", general]
        if ind.past:
            out += [
                f"if {v} is not None and {v} > as_of:  # a past date after as_of",
                "    return general(subject, indicators, as_of)",
            ]
        return out

    def within(self, expr: str, dom: Interval) -> str:
        """`lo <= expr <= hi` for a Decimal `expr` (an unbounded side is left out)."""
        lo = f"{self.const(dom.low, 'LOW')} <= " if dom.low is not None else ""
        hi = f" <= {self.const(dom.high, 'HIGH')}" if dom.high is not None else ""
        return f"{lo}{expr}{hi}" if lo or hi else f"{expr} is not None"

    # -- scoring -----------------------------------------------------------------------

    def rule_points(self, rule: Rule) -> list[str]:
        """The lines setting `p_<rule>`: its kind's code (kinds.py)."""
        kind = kinds.get(rule.kind)
        return [f"# {rule.id}: {kind.name}", *kind.code(rule, self.inds[rule.indicator], self)]

    def scoring(self) -> list[str]:
        card = self.card
        out = ["# -- rule points, in hundredths -------------------------------------------------"]
        for rule in card.rules:
            out += self.rule_points(rule)
        out.append(
            "# -- groups: floors and ceilings (clamp); a cut comes off the later lines first"
            " (take_cut)"
        )
        before_dec: dict[str, str] = {}
        for g in card.groups:
            members = [r for r in card.rules if r.group == g.id]
            gv, tv, tot = f"g_{g.id}", f"t_{g.id}", f"T_{g.id}"
            out.append(f"{gv} = " + (" + ".join(f"p_{r.id}" for r in members) or "0"))
            before = before_dec[g.id] = f"HUNDREDTHS[{gv}]" if members else "ZERO"
            if g.floor is None and g.ceiling is None:
                out += [f"{tv} = {gv}", f"{tot} = {before}"]
                continue
            low = None if g.floor is None else hundredths_of(g.floor)
            high = None if g.ceiling is None else hundredths_of(g.ceiling)
            floor = None if g.floor is None else self.named("FLOOR_" + g.id, g.floor)
            ceiling = None if g.ceiling is None else self.named("CEILING_" + g.id, g.ceiling)
            # cut: the bound as written (the floor when the total was below it), the lines'
            # points before the cut (b_), then their points (p_)
            bound = (
                f"{floor} if {gv} < {low} else {ceiling}" if floor and ceiling else floor or ceiling
            )
            ps = (
                "("
                + ", ".join(f"p_{r.id}" for r in members)
                + ("," if len(members) == 1 else "")
                + ")"
            )
            cut = (
                [f"cut = take_cut({tv} - {gv}, {ps})"]
                + [
                    f"b_{r.id} = None if cut[{i}] == p_{r.id} else HUNDREDTHS[p_{r.id}]"
                    for i, r in enumerate(members)
                ]
                + [f"{ps[1:-1]} = cut"]
                if members
                else []
            )
            out += [
                f"{tv} = clamp({gv}, {low}, {high})  # floor {decimal_text(g.floor)}, ceiling"
                f" {decimal_text(g.ceiling)}",
                f"if {tv} == {gv}:",
                f"    {tot} = {before}",
                *(
                    ["    " + " = ".join(f"b_{r.id}" for r in members) + " = None"]
                    if members
                    else []
                ),
                "else:",
                f"    {tot} = {bound}",
                *["    " + ln for ln in cut],
            ]
        ungrouped = [f"p_{r.id}" for r in card.rules if r.group is None]
        if card.base is not None:
            out.append(
                "# -- score and the grade it gives ------------------------------------------------"
            )
            terms = [str(hundredths_of(card.base))] + [f"t_{g.id}" for g in card.groups] + ungrouped
            out.append("sc = " + " + ".join(terms))
            if card.score_min is not None or card.score_max is not None:
                # the score range: the score before a cut is kept for the explanation
                low = None if card.score_min is None else hundredths_of(card.score_min)
                high = None if card.score_max is None else hundredths_of(card.score_max)
                out += [
                    "uncut = sc",
                    f"sc = clamp(uncut, {low}, {high})",
                    "score_before_cut = None if sc == uncut else HUNDREDTHS[uncut]",
                ]
            else:
                out.append("score_before_cut = None")
            out.append("score = HUNDREDTHS[sc]")
            # the chain of Grading.score_grade: the best grade whose minimum the score reaches
            scoring = self.grading.scoring
            last = scoring[-1][1]
            # with score.min at or above the lowest grade's min, the last test always holds
            floor_reached = (
                card.score_min is not None and hundredths_of(card.score_min) >= scoring[-1][0]
            )
            for i, (gc, grade) in enumerate(scoring):
                if i == len(scoring) - 1 and floor_reached and i:
                    out.append(f"else:  # sc >= {gc}")
                else:
                    out.append(f"{'if' if i == 0 else 'elif'} sc >= {gc}:")
                out += self.grade_branch(grade)
            if not floor_reached:  # a score below every minimum: the lowest grade
                out.append("else:")
                out += self.grade_branch(last)
        else:
            grade_name = "GRADE_" + str(card.default_grade)
            out += [
                "# -- an eligibility card: no score; the default grade unless an override decides",
                "score = score_before_cut = sc = None",
                f"score_grade = {self.named(grade_name, card.grade(card.default_grade))}",  # type: ignore[arg-type]
                "ptn = next_grade = None",
            ]
        out += self.overrides()
        out += self.lines_and_reasons(before_dec)
        return out

    def grade_branch(self, g: Grade) -> list[str]:
        """The score grade, and the next better one with no override (Grading.next_better)."""
        out = [f"    score_grade = {self.named('GRADE_' + g.code, g)}"]
        nxt = self.grading.next_better(g)
        if nxt is None:  # the best, or none a score within the range reaches
            return [*out, "    ptn = next_grade = None"]
        return [*out, f"    ptn = HUNDREDTHS[{nxt[0]} - sc]", f"    next_grade = {nxt[1]!r}"]

    def overrides(self) -> list[str]:
        card = self.card
        if not card.overrides:
            return ["grade = score_grade", "until = None", "overrides = ()", "reasons = []"]
        out = [
            "# -- overrides ---------------------------------------------------------------------",
            "fired = []",
        ]
        for o in card.overrides:
            name = self.named(f"OVERRIDE_{o.id}", o)
            effect = f"{o.effect.value} {o.grade}" if o.grade else f"{o.effect.value} {o.steps}"
            out += [
                f"# {o.id}: {condition_text(o.when)} -> {effect}",
                f"if {self.condition(o.when)}:",
            ]
            # fire: unless its `until` is on or before as_of
            out.append(
                f"    fired.append(({name}, None))"
                if o.until is None
                else f"    fire(fired, {name}, values, as_of)"
            )
        out += [
            "if fired:",
            "    grade, until, overrides, reasons, ptn, next_grade = decide(fired, score_grade,"
            " sc)",
            "else:",
            "    grade = score_grade",
            "    until = None",
            "    overrides = ()",
            "    reasons = []",
        ]
        return out

    def lines_and_reasons(self, before_dec: dict[str, str]) -> list[str]:
        card = self.card
        out = [
            "# -- reasons: the rules that lost points against their best, most first, then in order"
        ]
        ranked = []
        for i, rule in enumerate(card.rules):
            best = best_points(rule, self.inds[rule.indicator])
            self.named(f"BEST_{rule.id}", best)
            if best is None:
                continue
            f = f"p_{rule.id}"
            bc = hundredths_of(best)
            key = f"{f} - {bc}" if bc else f  # points - best: negative, the most lost first
            ranked.append(f"if {f} < {bc}:\n    lost.append(({key}, {i}))")
        if ranked:
            self.named("RULE_REASONS", tuple((r.id, r.title) for r in card.rules))
            out.append("lost = []")
            for r in ranked:
                out += r.split("\n")
            out += [
                "if lost:",
                "    reasons.extend(rule_reasons(lost, RULE_REASONS, HUNDREDTHS_OF))",
            ]
        out.append(
            "# -- the result --------------------------------------------------------------------"
        )
        for rule in card.rules:
            self.named(f"TITLE_{rule.id}", rule.title)
            self.named(f"PROVENANCE_{rule.id}", rule.provenance)
            out += construct(
                f"line_{rule.id}",
                Line,
                rule_id=repr(rule.id),
                title=f"TITLE_{rule.id}",
                group=repr(rule.group),
                values=f"(({rule.indicator!r}, v_{rule.indicator}),)",
                points=f"HUNDREDTHS[p_{rule.id}]",
                provenance=f"PROVENANCE_{rule.id}",
                points_before_cut=f"b_{rule.id}" if rule.id in self.cut_rules else "None",
                best_points=f"BEST_{rule.id}",
            )
        for g in card.groups:
            self.named(f"GROUP_TITLE_{g.id}", g.title)
            out += construct(
                f"group_{g.id}",
                GroupTotal,
                id=repr(g.id),
                title=f"GROUP_TITLE_{g.id}",
                total_before_cut=before_dec[g.id],
                total=f"T_{g.id}",
                floor=self.named("FLOOR_" + g.id, g.floor) if g.floor is not None else "None",
                ceiling=self.named("CEILING_" + g.id, g.ceiling)
                if g.ceiling is not None
                else "None",
            )
        self.named("CARD_ID", card.id)
        self.named("VERSION", card.version)
        self.named("DIGEST", card.digest)
        out += construct(
            "result",
            EvaluationResult,
            scorecard_id="CARD_ID",
            version="VERSION",
            digest="DIGEST",
            subject="subj",
            as_of="as_of",
            indicators="values",
            score="score",
            score_grade="score_grade.code" if card.base is not None else "None",
            grade="grade",
            lines=_tuple(f"line_{r.id}" for r in card.rules),
            groups=_tuple(f"group_{g.id}" for g in card.groups),
            overrides="overrides",
            until="until",
            reasons="tuple(reasons)",
            points_to_next_grade="ptn",
            next_grade="next_grade",
            base=self.named("BASE", None if card.base is None else q2(card.base)),
            score_before_cut="score_before_cut",
            evidence="()",
        )
        out.append("return result")
        return out

    # -- the module ----------------------------------------------------------------------

    def write(self) -> Generated:
        card = self.card
        scoring = self.scoring()
        validation = self.validation()
        reads = [
            f"v_{i.name} = values[{i.name!r}]"
            if any(r.indicator == i.name for r in card.rules)
            else f"v_{i.name} = values.get({i.name!r})"
            for i in card.indicators
        ]
        reads += [f"c_{name} = to_hundredths(v_{name})" for name in sorted(self.direct_numbers)]
        indent = "    "
        src = [
            f"# {card.id} {card.version} ({card.digest}): generated by"
            f" sector_credit.scorecards.codegen",
            "# Points are whole hundredths (ints) until the result is built.",
            "",
            "",
            "def evaluate(subject, indicators, as_of):",
            *[indent + ln for ln in validation],
            *[indent + ln for ln in scoring],
            "",
            "",
            "def general(subject, indicators, as_of):",
            f"{indent}# anything the fast path does not take: the reference validator (raises"
            f" InvalidInput)",
            f"{indent}subject, values = VALIDATE(subject, indicators, as_of)",
            f"{indent}return score(subject, values, as_of)",
            "",
            "",
            "def score(subject, values, as_of):",
            f"{indent}subj = subject",
            *[indent + ln for ln in reads],
            *[indent + ln for ln in scoring],
            "",
        ]
        return Generated("\n".join(src), dict(self.consts), f"<scorecard {card.id} {card.version}>")


def construct(var: str, cls: type, **fields: str) -> list[str]:
    """Statements making `var = cls(**fields)` of a result dataclass: `object.__new__` and one
    store per field, which is all its generated `__init__` does (the result types have no
    `__post_init__`), without the call: about 8% of an evaluation. Every field must be
    given, in order, so a field added to the model is an error here, not a missing attribute."""
    names = [f.name for f in dataclasses.fields(cls)]
    if list(fields) != names:
        raise TypeError(f"{cls.__name__}: fields {names}, given {list(fields)}")
    return [
        f"{var} = new({cls.__name__})",
        *(f"{var}.{name} = {expr}" for name, expr in fields.items()),
    ]


def _tuple(items: Any) -> str:
    items = list(items)
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


_PY_OP = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def main(argv: list[str] | None = None) -> int:
    """Print the generated source of a built-in scorecard (by id) or of a scorecard file."""
    import argparse
    from pathlib import Path

    from .loader import load_file

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument(
        "scorecard", help="a built-in scorecard id (e.g. transport.taxi_driver) or a .toml file"
    )
    args = ap.parse_args(argv)
    if Path(args.scorecard).is_file():
        card = load_file(args.scorecard)
    else:
        builtin = Path(__file__).parent / "builtin" / f"{args.scorecard}.toml"
        if not builtin.is_file():
            ap.error(f"no file {args.scorecard} and no built-in scorecard {args.scorecard!r}")
        card = load_file(builtin)
    gen = generate(card)
    if gen is None:
        print(
            f"# {card.id} {card.version}: not generated, evaluated by the reference evaluator: "
            f"numbers not exact to 2 places: {', '.join(not_exact(card))}"
        )
        return 0
    print(gen.source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
