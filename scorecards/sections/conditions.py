"""The conditions of overrides (`when`) and of indicators (`required_when`): all / any / not,
a date test against `as_of`, or a comparison of an indicator, a sum of indicators, a group's
total or the score (only overrides test group totals and the score).
"""

from __future__ import annotations

from decimal import Decimal

from ..model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DateTest,
    Indicator,
    IndicatorType,
    Not,
)
from .checker import NUMERIC_TYPES, Checker, is_number

OPS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "≠": "!=",
    "<": "<",
    "<=": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "≥": ">=",
    "in": "in",
}


def read_condition(
    c: Checker,
    raw: object,
    path: str,
    inds: dict[str, Indicator],
    group_ids: set[str],
    allow_group: bool = True,
) -> Condition:
    fallback = AllOf(())
    if not isinstance(raw, dict):
        c.bad(path, 'a condition is a table such as { indicator = "x", op = ">=", value = 1 }')
        return fallback
    if "all" in raw or "any" in raw:
        key = "all" if "all" in raw else "any"
        c.unknown_keys(raw, {key}, path)
        items = raw[key]
        if not isinstance(items, list) or not items:
            c.bad(f"{path}.{key}", "a non-empty list of conditions")
            return fallback
        subs = tuple(
            read_condition(c, x, f"{path}.{key}[{i}]", inds, group_ids, allow_group)
            for i, x in enumerate(items)
        )
        return AllOf(subs) if key == "all" else AnyOf(subs)
    if "not" in raw:
        c.unknown_keys(raw, {"not"}, path)
        return Not(read_condition(c, raw["not"], f"{path}.not", inds, group_ids, allow_group))
    date_tests = [k for k in ("within_years", "after_as_of", "on_or_before_as_of") if k in raw]
    if date_tests:
        c.unknown_keys(raw, {"indicator", *date_tests}, path)
        name = raw.get("indicator")
        ind = inds.get(name) if isinstance(name, str) else None
        if ind is None or ind.type is not IndicatorType.DATE:
            c.bad(f"{path}.indicator", f"a date test needs a date indicator, not {name!r}")
        if len(date_tests) > 1:
            c.bad(path, "one date test per condition")
        test = date_tests[0]
        years = 0
        if test == "within_years":
            years = raw["within_years"]
            if not isinstance(years, int) or isinstance(years, bool) or years < 1:
                c.bad(f"{path}.within_years", "a whole number of years ≥ 1")
                years = 1
        elif raw[test] is not True:
            c.bad(f"{path}.{test}", "write it as = true")
        return DateTest(str(name), test, years)  # type: ignore[arg-type]
    refs = [k for k in ("indicator", "sum", "group", "score") if k in raw]
    c.unknown_keys(raw, {"indicator", "sum", "group", "score", "op", "value"}, path)
    if len(refs) != 1:
        c.bad(
            path,
            "name exactly one of indicator, sum, group, score, or use all/any/not or a date test",
        )
        return fallback
    op = OPS.get(op_name) if isinstance(op_name := raw.get("op"), str) else None
    if op is None:
        c.bad(f"{path}.op", f"one of =, !=, <, <=, >, >=, in; not {raw.get('op')!r}")
        return fallback
    value = raw.get("value")
    ref_kind = refs[0]
    ref: tuple[str, ...]
    numeric = True
    if ref_kind == "indicator":
        ind = inds.get(raw["indicator"]) if isinstance(raw["indicator"], str) else None
        if ind is None:
            c.bad(f"{path}.indicator", f"unknown indicator {raw['indicator']!r}")
            return fallback
        ref = ("indicator", ind.name)
        numeric = ind.type in NUMERIC_TYPES
        if ind.type is IndicatorType.DATE:
            c.bad(path, "compare dates with within_years, after_as_of or on_or_before_as_of")
        elif op == "in":
            if not isinstance(value, list) or not value:
                c.bad(f"{path}.value", "`in` takes a non-empty list")
                return fallback
            for i, v in enumerate(value):
                _check_operand(c, ind, v, f"{path}.value[{i}]")
            value = tuple(Decimal(v) if is_number(v) else v for v in value)
        else:
            _check_operand(c, ind, value, f"{path}.value")
            if ind.type in (IndicatorType.FLAG, IndicatorType.CHOICE) and op not in ("=", "!="):
                c.bad(f"{path}.op", f"a {ind.type.value} is compared with = or != (or in)")
    elif ref_kind == "sum":
        names = raw["sum"]
        if not isinstance(names, list) or len(names) < 2:
            c.bad(f"{path}.sum", "a list of two or more numeric indicators")
            return fallback
        for i, n in enumerate(names):
            ind = inds.get(n) if isinstance(n, str) else None
            if ind is None or ind.type not in NUMERIC_TYPES:
                c.bad(f"{path}.sum[{i}]", f"not a numeric indicator: {n!r}")
        ref = ("sum", *[str(n) for n in names])
    elif ref_kind == "group":
        if not allow_group:
            c.bad(f"{path}.group", "only overrides test group totals")
        elif raw["group"] not in group_ids:
            c.bad(f"{path}.group", f"unknown group {raw['group']!r}")
        ref = ("group", str(raw["group"]))
    else:
        if not allow_group:
            c.bad(f"{path}.score", "only overrides test the score")
        if raw["score"] is not True:
            c.bad(f"{path}.score", "write it as score = true")
        ref = ("score",)
    if numeric and ref_kind != "indicator" or (ref_kind == "indicator" and numeric and op != "in"):
        if op == "in":
            c.bad(f"{path}.op", "`in` applies to an indicator")
        elif not is_number(value):
            c.bad(f"{path}.value", f"must be a number, not {value!r}")
        else:
            value = Decimal(value)
    return Compare(ref, op, value)  # type: ignore[arg-type]


def _check_operand(c: Checker, ind: Indicator, v: object, path: str) -> None:
    if ind.type is IndicatorType.FLAG and not isinstance(v, bool):
        c.bad(path, f"{ind.name} is a flag: compare with true or false")
    elif ind.type is IndicatorType.CHOICE and v not in ind.choices:
        c.bad(path, f"{v!r} is not a choice of {ind.name}: {list(ind.choices)}")
    elif ind.type in NUMERIC_TYPES and not is_number(v):
        c.bad(path, f"{ind.name} is numeric: compare with a number")
