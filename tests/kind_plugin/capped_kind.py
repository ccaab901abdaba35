"""A plugin that adds a rule kind, as docs/plugins.md shows it (tests/test_docs.py checks the
doc's copy is this code): `capped_per_unit`, points per unit that stop at a cap.

    kind = "capped_per_unit"
    points = -2     # per unit
    cap = -10       # the line goes no further than this, on the side of `points`
"""

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sector_credit.plugins import hookimpl
from sector_credit.scorecards.kinds import RuleKindSpec, param, signed
from sector_credit.scorecards.model import IndicatorType


def parse(c: Any, spec: dict[str, Any], path: str, ind: Any) -> tuple[dict[str, Any], set[str]]:
    points = c.number(spec.get("points"), f"{path}.points")
    cap = c.number(spec.get("cap"), f"{path}.cap")
    if points is not None and cap is not None and (points == 0 or cap * points <= 0):
        c.bad(f"{path}.cap", f"a cap is on the side of the points ({points}), not {cap}")
    return {"points": points, "params": (("cap", cap),)}, {"points", "cap"}


def points(rule: Any, ind: Any) -> Callable[[Any], Decimal]:
    per, cap = rule.points, param(rule, "cap")
    if per > 0:
        return lambda count: min(per * count, cap)
    return lambda count: max(per * count, cap)


def best(rule: Any, ind: Any) -> Decimal:
    return points(rule, ind)(0) if rule.points < 0 else param(rule, "cap")


CAPPED_PER_UNIT = RuleKindSpec(
    name="capped_per_unit",
    types=(IndicatorType.COUNT,),
    parse=parse,
    points=points,
    best=best,
    describe=lambda rule: f"{signed(rule.points)} per unit, up to {signed(param(rule, 'cap'))}",
    keys=frozenset({"points", "cap"}),
)


@hookimpl
def register_rule_kinds(register: Callable[[Any], None]) -> None:
    register(CAPPED_PER_UNIT)


@hookimpl
def register_scorecards(register: Callable[[Any], None]) -> None:
    register(Path(__file__).with_name("kinds.parking_fines.toml"))
