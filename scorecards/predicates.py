"""The conditions of a scorecard as Python predicates, for the reference evaluator (override
`when`) and the validator (`required_when`): all / any / not, the date tests against `as_of`,
and comparisons of an indicator, a sum of indicators, a group's total before its cut or the
score (semantics: SCORECARDS.md §1; `model.Compare`, `model.DateTest`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .exact import add_years
from .model import AllOf, AnyOf, Compare, Condition, DateTest, IndicatorValue, Not

ZERO = Decimal(0)

Values = dict[str, IndicatorValue]
# the context an override condition sees: values, group totals before cut, score, as_of
Predicate = Callable[[Values, dict[str, Decimal], Decimal | None, dt.date], bool]


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
