"""Definitions as readable text: conditions, `until` clauses, values and decimals.

One renderer for everything a person reads: GetScorecard, validation messages, the CLI.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from .model import AllOf, AnyOf, Compare, Condition, DateTest, Not, Until


def decimal_text(value: Decimal | None) -> str:
    """A decimal in plain notation (`"74.70"`, never `"7.47E+1"` or `"-0"`); None is `""`."""
    if value is None:
        return ""
    if not value and value.is_signed():  # -5 x 0 is Decimal("-0")
        value = value.copy_abs()
    text = str(value)
    return text if "E" not in text else f"{value:f}"


def same_decimal(a: Decimal | None, b: Decimal | None) -> bool:
    """Equal and written alike: Decimal("1") == Decimal("1.0"), but they print differently,
    and whatever shows or stores the text must not take one for the other."""
    return a is b or (a is not None and b is not None and a == b and str(a) == str(b))


def value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def _ref_text(ref: tuple[str, ...]) -> str:
    head, *rest = ref
    if head == "indicator":
        return rest[0]
    if head == "sum":
        return " + ".join(rest)
    if head == "group":
        return f"group.{rest[0]}"
    if head == "score":
        return "score"
    return ".".join(ref)


def _years(n: int) -> str:
    return f"{n} year" if n == 1 else f"{n} years"


def condition_text(condition: Condition) -> str:
    """A condition as readable text, e.g. `all(category = dangerous_goods, a + b >= 1)`."""
    if isinstance(condition, Compare):
        return f"{_ref_text(condition.ref)} {condition.op} {value_text(condition.value)}"
    if isinstance(condition, DateTest):
        if condition.test == "within_years":
            return f"{condition.indicator} within {_years(condition.years)}"
        if condition.test == "after_as_of":
            return f"{condition.indicator} after as_of"
        return f"{condition.indicator} on or before as_of"
    if isinstance(condition, AllOf):
        return "all(" + ", ".join(condition_text(c) for c in condition.items) + ")"
    if isinstance(condition, AnyOf):
        return "any(" + ", ".join(condition_text(c) for c in condition.items) + ")"
    if isinstance(condition, Not):
        return f"not({condition_text(condition.item)})"
    raise TypeError(f"not a condition: {condition!r}")


def until_text(until: Until | None) -> str:
    """`exam_misconduct_date + 5 years`, `tender_debarment_end`, or `""` for no end."""
    if until is None:
        return ""
    return f"{until.indicator} + {_years(until.years)}" if until.years else until.indicator
