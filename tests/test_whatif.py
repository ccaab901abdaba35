"""What-if (scorecards/whatif.py, docs/whatif.md) on the built-in cards.

The table's answers were worked out by hand from SCORECARDS.md §2 (the working is in each
case's comment); the property test checks every proposal by applying it, and that brute force
over a grid of values finds no smaller change for any grade.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sector_credit.scorecards.engine import compile_scorecard
from sector_credit.scorecards.loader import accepted_bounds
from sector_credit.scorecards.model import (
    IndicatorType,
    InvalidInput,
    Scorecard,
    Subject,
    SubjectKind,
)
from sector_credit.scorecards.whatif import WhatIf, explore
from test_codegen import BUILTIN_CARDS, indicator_values

PERSON = Subject(SubjectKind.PERSON, "11010519491231002X")
ORG = Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43")
AS_OF = dt.date(2026, 6, 1)
COMPILED = {cid: compile_scorecard(card) for cid, card in BUILTIN_CARDS.items()}

ENV_EXAMPLE = {
    "emission_compliance_min_pct": 85,
    "solid_waste_treated_pct": 97,
    "hazardous_waste_rating": "compliant",
    "noise_exceedance_db": 3,
    "siting_compliant": True,
    "administrative_penalties": 1,
    "risk_management_complete": True,
    "other_indicators_score": 90,
}
SOCIAL_EXAMPLE = {
    "basic_conditions": 150,
    "internal_governance": 300,
    "work_performance": 290,
    "social_evaluation": 147,
}


def run(cid: str, indicators: dict[str, Any]) -> WhatIf:
    subject = PERSON if BUILTIN_CARDS[cid].subject_kind is SubjectKind.PERSON else ORG
    return explore(COMPILED[cid], subject, indicators, AS_OF)


def shown(w: WhatIf) -> dict[str, list[tuple[str, str, dict[str, str]]]]:
    """{target grade: [(grade reached, score, {indicator: new value})]}, as compact text."""
    return {
        t.grade.code: [
            (p.grade, str(p.score), {c.indicator: str(c.after) for c in p.changes})
            for p in t.proposals
        ]
        for t in w.targets
    }


# (scorecard, indicators) -> (grade now, {better grade: its best proposals, in order}, override
# ends); a case may work out only some of the better grades, and [] means no proposal at all
CASES = [
    # Worked example 1: 20 - 3 - 5 + 2 = 14, AA. AAA needs 20, +6. Alone: bonus 2 -> 8 (+6; the
    # 5-point event gone gives 19, the 3-point one 17). Pairs changing less than bonus's 6:
    # both events gone, +8 = 22 (distance 2); the 5-point one gone and bonus +1, 20 (distance
    # 2, a lower score so second); the 3-point one gone and bonus +3, 20 (distance 4).
    pytest.param(
        "transport.taxi_driver",
        {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2},
        "AA",
        {
            "AAA": [
                ("AAA", "20.00", {"bonus_points": "8.00"}),
                ("AAA", "22.00", {"violations_3pt": "0", "violations_5pt": "0"}),
                ("AAA", "20.00", {"violations_5pt": "0", "bonus_points": "3.00"}),
                ("AAA", "20.00", {"violations_3pt": "0", "bonus_points": "5.00"}),
            ]
        },
        [],
        id="taxi: worked example 1",
    ),
    # Worked example 2: deductions -20 force B whatever the bonus. Only the 20-point event ageing
    # out lifts it: 20 - 0 + 5 = 25, AAA, for every better grade; no bonus change helps.
    pytest.param(
        "transport.taxi_driver",
        {"violations_20pt": 1, "bonus_points": 5},
        "B",
        {g: [("AAA", "25.00", {"violations_20pt": "0"})] for g in ("AAA", "AA", "A")},
        [],
        id="taxi: the force B lifts only when the 20 points age out",
    ),
    # Worked example 3: 20 - 3 - 1 = 16, AA; AAA is 20, no point accumulated: both events must go.
    pytest.param(
        "transport.road_driver",
        {"category": "freight", "violations_3pt": 1, "violations_1pt": 1},
        "AA",
        {"AAA": [("AAA", "20.00", {"violations_1pt": "0", "violations_3pt": "0"})]},
        [],
        id="road driver: worked example 3",
    ),
    # 20 - 6 (two 3-point events) - 5 (no continuing education) + 0 (satisfaction 80) - 2 (pass
    # rate 50) = 7, A. AA (11, +4): education done +5 -> 12; both events gone +6 -> 13; pass rate
    # 90 (-2 -> +2, +4) -> 11 at distance 40; as a pair satisfaction 95 (+2) and pass rate 60
    # (+2), distance 15 + 10 = 25 < 40. AAA (20, +13) takes three: events gone, education, pass
    # rate 60: +6 +5 +2 (distance 2 + 1 + 10); or satisfaction 95 instead of the pass rate (18).
    pytest.param(
        "transport.driving_instructor",
        {
            "violations_3pt": 2,
            "continuing_education_done": False,
            "student_satisfaction_pct": 80,
            "exam_pass_rate_pct": 50,
        },
        "A",
        {
            "AAA": [
                (
                    "AAA",
                    "20.00",
                    {
                        "violations_3pt": "0",
                        "continuing_education_done": "True",
                        "exam_pass_rate_pct": "60.00",
                    },
                ),
                (
                    "AAA",
                    "20.00",
                    {
                        "violations_3pt": "0",
                        "continuing_education_done": "True",
                        "student_satisfaction_pct": "95.00",
                    },
                ),
            ],
            "AA": [
                ("AA", "12.00", {"continuing_education_done": "True"}),
                ("AA", "13.00", {"violations_3pt": "0"}),
                ("AA", "11.00", {"exam_pass_rate_pct": "90.00"}),
                (
                    "AA",
                    "11.00",
                    {"student_satisfaction_pct": "95.00", "exam_pass_rate_pct": "60.00"},
                ),
            ],
        },
        [],
        id="driving instructor: education, events, pass rate",
    ),
    # Worked example 4: 60 + 14 - 6 = 68, B. A (70, +2): the B record gone +5 -> 73 (distance 1);
    # +2 points on any points indicator (distance 2, names in order); 4 more decoration awards
    # (+0.5 each). The C record gone gives only 69.
    pytest.param(
        "construction.firm",
        {
            "qualification_staff_points": 5,
            "contract_performance_points": 8,
            "decoration_awards": 2,
            "bad_records_b": 1,
            "bad_records_c": 1,
        },
        "B",
        {
            "A": [
                ("A", "73.00", {"bad_records_b": "0"}),
                ("A", "70.00", {"contract_performance_points": "10.00"}),
                ("A", "70.00", {"other_award_points": "2.00"}),
                ("A", "70.00", {"qualification_staff_points": "7.00"}),
                ("A", "70.00", {"decoration_awards": "6"}),
            ]
        },
        [],
        id="construction: worked example 4, grade A",
    ),
    # Worked example 5: 74.70, YELLOW. BLUE (80): no penalty, 0 -> 100 x 15% = +15 -> 89.70; no
    # other single change reaches 80 (emission 90: +4.50 -> 79.20; other 100: +4.40 -> 79.10).
    # Pairs: emission 90 (10.50 -> 15) and other 91.81 (44% x 91.81 = 40.3964 -> 40.40, +0.80):
    # 80.00 at distance 5 + 1.81. GREEN (95, +20.30): penalty gone +15, emission 90 +4.50,
    # other 91.81 +0.80: 95.00 at distance 1 + 5 + 1.81; no pair reaches 95.
    pytest.param(
        "environment.enterprise",
        ENV_EXAMPLE,
        "YELLOW",
        {
            "GREEN": [
                (
                    "GREEN",
                    "95.00",
                    {
                        "emission_compliance_min_pct": "90.00",
                        "administrative_penalties": "0",
                        "other_indicators_score": "91.81",
                    },
                )
            ],
            "BLUE": [
                ("BLUE", "89.70", {"administrative_penalties": "0"}),
                (
                    "BLUE",
                    "80.00",
                    {"emission_compliance_min_pct": "90.00", "other_indicators_score": "91.81"},
                ),
            ],
        },
        [],
        id="environment: worked example 5",
    ),
    # The same with hidden discharge: RED by a veto on a fact that is not actionable, so nothing
    # is proposed for any better grade.
    pytest.param(
        "environment.enterprise",
        {**ENV_EXAMPLE, "hidden_discharge": True},
        "RED",
        {"GREEN": [], "BLUE": [], "YELLOW": []},
        [],
        id="environment: a veto on a fact",
    ),
    # Worked example 6: 887, 4A; 5A needs 13 more: governance 313 or performance 303 (basic is
    # at its 150, social 147 -> 150 gives only 3; a pair is never less than 13 in all).
    pytest.param(
        "social_org.evaluation",
        SOCIAL_EXAMPLE,
        "4A",
        {
            "5A": [
                ("5A", "900.00", {"internal_governance": "313.00"}),
                ("5A", "900.00", {"work_performance": "303.00"}),
            ]
        },
        [],
        id="social organization: worked example 6",
    ),
    # The Anhui bands: 887 is 3A; 4A (901) needs 14; 5A (951) needs 64, more than one section
    # can give (governance +50, performance +60): the two together, 64 in all (governance +4
    # and performance to its 350 is as far as governance to its 350 and performance +14; the
    # search keeps the first it meets of equally far changes of the same indicators).
    pytest.param(
        "social_org.evaluation.anhui",
        SOCIAL_EXAMPLE,
        "3A",
        {
            "5A": [("5A", "951.00", {"internal_governance": "304.00", "work_performance": "350"})],
            "4A": [
                ("4A", "901.00", {"internal_governance": "314.00"}),
                ("4A", "901.00", {"work_performance": "304.00"}),
            ],
        },
        [],
        id="social organization, Anhui bands",
    ),
    # Worked example 7: nothing of a candidate is actionable; the bar ends 2024-03-10 + 5 years.
    pytest.param(
        "civil_servant.recruitment",
        {"exam_misconduct": "forged_material", "exam_misconduct_date": "2024-03-10"},
        "BARRED",
        {"ELIGIBLE": []},
        [("forged_material_5y", "2029-03-10", "ELIGIBLE")],
        id="civil servant: the bar ends on 2029-03-10",
    ),
    # A major illegal record on 2025-01-01 refuses until 2028-01-01; fewer bad-conduct records
    # (the only actionable indicator) do not lift it; on that day the supplier is QUALIFIED
    # with its -2.
    pytest.param(
        "procurement.supplier",
        {"bad_conduct_records_3y": 2, "major_illegal_record_date": "2025-01-01"},
        "REFUSED",
        {"QUALIFIED": []},
        [("major_illegal_record", "2028-01-01", "QUALIFIED")],
        id="procurement: the refusal ends on 2028-01-01",
    ),
]


@pytest.mark.parametrize(("cid", "indicators", "grade", "targets", "ends"), CASES)
def test_whatif_by_hand(
    cid: str,
    indicators: dict[str, Any],
    grade: str,
    targets: dict[str, list[tuple[str, str, dict[str, str]]]],
    ends: list[tuple[str, str, str]],
) -> None:
    w = run(cid, indicators)
    assert w.result.grade.code == grade
    grades = [g.code for g in BUILTIN_CARDS[cid].grades]
    assert [t.grade.code for t in w.targets] == grades[: grades.index(grade)]  # every better grade
    got = shown(w)
    # the grades the case worked out, their best proposals (none: none at all)
    assert {g: got[g][: len(want)] if want else got[g] for g, want in targets.items()} == targets
    assert [(e.override_id, e.until.isoformat(), e.grade) for e in w.override_ends] == ends


def test_only_actionable_indicators_are_varied() -> None:
    w = run("construction.firm", {"qualification_fraud": True, "bad_records_a": 1})
    assert w.result.grade.code == "EXCLUDED"
    assert "qualification_fraud" not in w.actionable
    assert all(t.proposals == () for t in w.targets)


def test_bad_input_is_refused_as_evaluation_refuses_it() -> None:
    with pytest.raises(InvalidInput) as err:
        run("transport.taxi_driver", {"bonus_points": 12})
    assert [v.field for v in err.value.violations] == ["indicators.bonus_points"]


# --------------------------------------------------------------------------------------------
# Random inputs against brute force


ORACLE_CARDS = sorted(
    cid for cid, card in BUILTIN_CARDS.items() if any(i.actionable for i in card.indicators)
)


def _grid(card: Scorecard, name: str, draw: st.DrawFn) -> list[Any]:
    """A few values of an actionable indicator for the brute force to try."""
    ind = card.indicator(name)
    assert ind is not None
    if ind.type is IndicatorType.FLAG:
        return [True, False]
    if ind.type is IndicatorType.CHOICE:
        return list(ind.choices)
    lo, hi = accepted_bounds(ind)
    assert lo is not None and hi is not None
    if ind.type is IndicatorType.COUNT:
        return [0, 1, 2]
    top = min(hi, lo + 1000)
    inside = st.decimals(
        min_value=lo, max_value=top, places=2, allow_nan=False, allow_infinity=False
    )
    return sorted({lo, top, draw(inside)})


@st.composite
def explorations(draw: st.DrawFn, cid: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    card = BUILTIN_CARDS[cid]
    grids = {i.name: _grid(card, i.name, draw) for i in card.indicators if i.actionable}
    indicators: dict[str, Any] = {}
    for ind in card.indicators:
        if ind.name in grids:
            indicators[ind.name] = draw(st.sampled_from(grids[ind.name]))
        elif ind.required or draw(st.integers(0, 3)) == 0:
            indicators[ind.name] = draw(indicator_values(ind, AS_OF)[0])
    return indicators, grids


@pytest.mark.parametrize("cid", ORACLE_CARDS)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_proposals_hold_and_nothing_smaller_exists(cid: str, data: st.DataObject) -> None:
    indicators, grids = data.draw(explorations(cid))
    compiled = COMPILED[cid]
    subject = PERSON if BUILTIN_CARDS[cid].subject_kind is SubjectKind.PERSON else ORG
    try:
        w = explore(compiled, subject, indicators, AS_OF)
    except InvalidInput:
        assume(False)
        raise
    rank = {g.code: i for i, g in enumerate(BUILTIN_CARDS[cid].grades)}
    values = w.result.indicators
    # every proposal, applied to the input as sent, gives the grade and score it promises
    for t in w.targets:
        for p in t.proposals:
            changed = {**indicators, **{c.indicator: c.after for c in p.changes}}
            r = compiled.evaluate(subject, changed, AS_OF)
            assert (r.grade.code, r.score) == (p.grade, p.score)
            assert rank[p.grade] <= rank[t.grade.code]
    # brute force: every combination of up to 3 actionable indicators over the grid
    best: dict[str, tuple[int, Decimal]] = {}
    names = [n for n in grids if n in values]
    for k in (1, 2, 3):
        for combo in itertools.combinations(names, k):
            options = [[v for v in grids[n] if v != values[n]] for n in combo]
            for assign in itertools.product(*options):
                changed = {**indicators, **dict(zip(combo, assign, strict=True))}
                r = compiled.evaluate(subject, changed, AS_OF)
                dist = sum(
                    (
                        abs(Decimal(a) - Decimal(values[n]))  # type: ignore[arg-type]
                        if not isinstance(a, (bool, str))
                        else Decimal(1)
                        for n, a in zip(combo, assign, strict=True)
                    ),
                    Decimal(0),
                )
                for t in w.targets:
                    if rank[r.grade.code] <= rank[t.grade.code]:
                        key = (k, dist)
                        if t.grade.code not in best or key < best[t.grade.code]:
                            best[t.grade.code] = key
    for t in w.targets:
        if t.grade.code in best:
            assert t.proposals, f"{t.grade.code}: brute force reaches it with {best[t.grade.code]}"
            top = t.proposals[0]
            assert (len(top.changes), top.distance) <= best[t.grade.code]
