"""The scoring semantics both evaluators share (scorecards/semantics.py), case by case, in both
units they are called in (Decimal in the reference, whole hundredths in the generated code)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from installed_plugins import BUILTIN_ONLY
from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards import semantics
from sector_credit.scorecards.exact import HUNDREDTHS, q2
from sector_credit.scorecards.model import (
    Compare,
    EffectKind,
    Override,
    Provenance,
    ProvenanceTag,
    Title,
    Until,
)
from sector_credit.scorecards.registry import build_registry

D = Decimal
T = Title("t", "t")
P = Provenance(ProvenanceTag.DESIGN, "test")


@pytest.mark.parametrize(
    ("x", "low", "high", "expected"),
    [
        (5, 0, 10, 5),
        (-3, 0, 10, 0),  # the floor
        (12, 0, 10, 10),  # the ceiling
        (-3, None, 10, -3),
        (12, 0, None, 12),
        (D("-20.5"), D(-20), None, D(-20)),
        (D("10.01"), None, D(10), D(10)),
    ],
)
def test_clamp(x: object, low: object, high: object, expected: object) -> None:
    assert semantics.clamp(x, low, high) == expected  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("cut", "points", "expected"),
    [
        (0, [-5, -3], [-5, -3]),
        (2, [-5, -3], [-5, -1]),  # a floor: taken from the last negative line first
        (4, [-5, -3], [-4, 0]),
        (3, [-5, 2, -1], [-3, 2, 0]),  # a positive line is not touched by a floor
        (-3, [2, 5], [2, 2]),  # a ceiling: from the last positive line first
        (-6, [2, -1, 5], [1, -1, 0]),
        (D("-0.50"), [D("1.00"), D("0.25")], [D("0.75"), D("0.00")]),
    ],
)
def test_take_cut(cut: object, points: list[object], expected: list[object]) -> None:
    assert semantics.take_cut(cut, points) == expected  # type: ignore[type-var, arg-type]


def override(oid: str, effect: EffectKind, until: Until | None = None) -> Override:
    return Override(oid, T, Compare(("score",), ">=", D(0)), effect, P, "B", 1, until)


AS_OF = dt.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("date", "years", "fires", "until"),
    [
        (None, 5, True, None),  # no date: no end
        (dt.date(2022, 1, 1), 5, True, dt.date(2027, 1, 1)),
        (dt.date(2021, 6, 1), 5, False, None),  # until is the first day it no longer applies
        (dt.date(2021, 6, 2), 5, True, dt.date(2026, 6, 2)),
        (dt.date(2024, 2, 29), 3, True, dt.date(2027, 2, 28)),  # 29 February + 3 years
    ],
)
def test_fire_and_until(
    date: dt.date | None, years: int, fires: bool, until: dt.date | None
) -> None:
    o = override("x", EffectKind.CAP, Until("d", years))
    fired: semantics.Fired = []
    semantics.fire(fired, o, {} if date is None else {"d": date}, AS_OF)
    assert fired == ([(o, until)] if fires else [])


@pytest.mark.parametrize(
    ("fired", "forced", "expected"),
    [
        ([], False, None),
        ([("cap", dt.date(2027, 1, 1)), ("down", dt.date(2028, 1, 1))], False, dt.date(2028, 1, 1)),
        ([("cap", dt.date(2027, 1, 1)), ("down", None)], False, None),  # no end beats any date
        (
            [("force", dt.date(2027, 1, 1)), ("down", None)],
            True,
            dt.date(2027, 1, 1),
        ),  # the forces decide
    ],
)
def test_reported_until(
    fired: list[tuple[str, dt.date | None]], forced: bool, expected: dt.date | None
) -> None:
    effects = {"cap": EffectKind.CAP, "down": EffectKind.DOWNGRADE, "force": EffectKind.FORCE}
    assert (
        semantics.reported_until([(override(n, effects[n]), u) for n, u in fired], forced)
        == expected
    )


def test_rule_reasons_rank_by_points_lost_then_order_and_keep_four() -> None:
    rules = [(f"r{i}", T) for i in range(6)]
    lost = [(-100, 0), (-300, 1), (-100, 2), (-50, 3), (-300, 4), (-200, 5)]
    reasons = semantics.rule_reasons(lost, rules, HUNDREDTHS.__getitem__)
    assert [(r.code, str(r.points_lost)) for r in reasons] == [
        ("r1", "3.00"),
        ("r4", "3.00"),
        ("r5", "2.00"),
        ("r0", "1.00"),
    ]
    assert semantics.MAX_REASON_RULES == 4


CARDS = list(build_registry(get_plugin_manager(only=BUILTIN_ONLY)).all())


@pytest.mark.parametrize("compiled", CARDS, ids=lambda c: f"{c.id}@{c.version}")
def test_the_next_better_grade_the_generated_code_embeds_is_the_one_decide_finds(
    compiled: object,
) -> None:
    card = compiled.card  # type: ignore[attr-defined]
    if card.base is None:
        pytest.skip("an eligibility card has no score")
    for unit, back in ((lambda x: x, q2), (lambda x: int(x * 100), HUNDREDTHS.__getitem__)):
        grading = semantics.Grading(card, unit, back)
        for low, grade in grading.scoring:
            # from the lowest score of the grade, with no override fired
            _g, _u, _o, _r, ptn, next_grade = grading.decide([], grade, low)
            embedded = grading.next_better(grade)
            assert (ptn, next_grade) == (
                (None, None) if embedded is None else (back(embedded[0] - low), embedded[1])
            )
