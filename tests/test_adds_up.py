"""Every result adds up by hand (SCORECARDS.md §1 "Exact arithmetic", "Explanation"): a property
test over every built-in card, on random valid input, for the engine the service runs (the
generated code) and the reference evaluator.

- each line's points have 2 places; a group's total before its cut is the sum of its lines'
  points before the cut, its total that sum after its floor and ceiling, and the sum of the
  lines' shown points;
- base + group totals + ungrouped points is the score before the cut: the score when the
  scorecard's [min, max] did not cut it, else `score_before_cut`, and the score is that sum cut
  to the range;
- the score grade is the one read from the score, and so is the grade unless an override fired;
- `points_to_next_grade` reaches a grade minimum above the score, within the range: the
  nearest one when no override fired; never under a force; and the grade it gives is better.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sector_credit.scorecards.engine import compile_reference, compile_scorecard
from sector_credit.scorecards.loader import indicator_domain
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationResult,
    Indicator,
    IndicatorType,
    Scorecard,
    Subject,
    SubjectKind,
)
from test_codegen import BUILTIN_CARDS, counts, indicator_values, resident_id, uscc

HUNDREDTH = Decimal("0.01")
EVALUATORS = {
    cid: (compile_scorecard(card), compile_reference(card)) for cid, card in BUILTIN_CARDS.items()
}


def numbers(ind: Indicator) -> st.SearchStrategy[Any]:
    """Valid number and percent values: at most 2 places (SCORECARDS.md §1), of the types a
    caller sends."""
    dom = indicator_domain(ind)
    lo = dom.low if dom.low is not None else Decimal(-1000)
    hi = dom.high if dom.high is not None else Decimal(1000)
    hundredths = st.integers(int(lo * 100), int(hi * 100))
    return st.one_of(
        hundredths.map(lambda n: Decimal(n).scaleb(-2)),
        st.sampled_from([lo, hi]),
        st.integers(int(lo), int(hi)),
        hundredths.map(lambda n: str(Decimal(n).scaleb(-2))),
    )


@st.composite
def valid_input(draw: st.DrawFn, card: Scorecard) -> tuple[Subject, dict[str, Any], dt.date]:
    as_of = draw(st.dates(dt.date(2015, 1, 1), dt.date(2030, 12, 31)))
    indicators: dict[str, Any] = {}
    for ind in card.indicators:
        optional = not ind.required and ind.required_when is None
        if optional and draw(st.booleans()):
            continue
        if ind.type in (IndicatorType.NUMBER, IndicatorType.PERCENT):
            indicators[ind.name] = draw(numbers(ind))
        elif ind.type is IndicatorType.COUNT:
            indicators[ind.name] = draw(
                st.one_of(counts(ind)[0].filter(lambda x: type(x) is int), st.integers(0, 12))
            )
        else:
            indicators[ind.name] = draw(indicator_values(ind, as_of)[0])
    rng = random.Random(draw(st.integers(0, 2**32)))
    sid = resident_id(rng) if card.subject_kind is SubjectKind.PERSON else uscc(rng)
    return Subject(card.subject_kind, sid), indicators, as_of


def cut(x: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and x < low:
        x = low
    if high is not None and x > high:
        x = high
    return x


def check_adds_up(card: Scorecard, r: EvaluationResult) -> None:
    for line in r.lines:
        assert line.points.as_tuple().exponent == -2, line  # rounded to 2 places where computed
        assert line.points_before_cut is None or line.points_before_cut.as_tuple().exponent == -2
    for g in r.groups:
        members = [x for x in r.lines if x.group == g.id]
        assert g.total_before_cut == sum(
            (x.points if x.points_before_cut is None else x.points_before_cut for x in members),
            Decimal(0),
        )
        assert g.total == cut(g.total_before_cut, g.floor, g.ceiling)
        assert g.total == sum((x.points for x in members), Decimal(0))  # the shown lines add up

    scoring = [g for g in card.grades if g.min_score is not None]
    if (
        card.base is None
    ):  # eligibility screening: no score, the default grade unless an override decides
        assert (r.score, r.base, r.score_before_cut, r.points_to_next_grade) == (
            None,
            None,
            None,
            None,
        )
        assert r.overrides or r.grade.code == card.default_grade
        return
    assert r.base == card.base and r.score is not None
    uncut = (
        r.base + sum(g.total for g in r.groups) + sum(x.points for x in r.lines if x.group is None)
    )
    assert r.score == cut(uncut, card.score_min, card.score_max)
    if r.score_before_cut is None:
        assert r.score == uncut
    else:
        assert r.score_before_cut == uncut != r.score

    read = next((g for g in scoring if g.min_score <= r.score), scoring[-1])  # type: ignore[operator]
    assert r.score_grade == read.code
    if not r.overrides:
        assert r.grade.code == read.code

    rank = {g.code: i for i, g in enumerate(card.grades)}
    reachable = [
        g
        for g in scoring
        if g.min_score > r.score  # type: ignore[operator]
        and (card.score_max is None or g.min_score <= card.score_max)
    ]  # type: ignore[operator]
    if any(o.effect is EffectKind.FORCE for o in r.overrides):
        assert r.points_to_next_grade is None and r.next_grade is None
    elif not r.overrides:
        if reachable:  # the nearest grade above the score
            assert (r.points_to_next_grade, r.next_grade) == (
                reachable[-1].min_score - r.score,
                reachable[-1].code,
            )
        else:
            assert r.points_to_next_grade is None and r.next_grade is None
    if r.points_to_next_grade is not None:
        assert r.points_to_next_grade > 0
        assert r.score + r.points_to_next_grade in {g.min_score for g in reachable}
        assert r.next_grade is not None and rank[r.next_grade] < rank[r.grade.code]


@pytest.mark.parametrize("card_id", sorted(EVALUATORS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_result_adds_up_by_hand(card_id: str, data: st.DataObject) -> None:
    subject, indicators, as_of = data.draw(valid_input(BUILTIN_CARDS[card_id]))
    for evaluator in EVALUATORS[card_id]:
        r = evaluator.evaluate(subject, dict(indicators), as_of)
        check_adds_up(evaluator.card, r)


@pytest.mark.parametrize(
    ("card_id", "indicators", "score", "base", "score_before_cut"),
    [
        # the cases of issue 13, and the edges of the cut
        ("construction.firm", {"bad_records_a": 7}, "0.00", "60.00", "-10.00"),
        ("construction.firm", {"bad_records_a": 6}, "0.00", "60.00", None),
        ("transport.taxi_driver", {"violations_10pt": 2}, "0.00", "20.00", None),
        (
            "transport.driving_instructor",
            {
                "violations_10pt": 2,
                "continuing_education_done": True,
                "student_satisfaction_pct": 60,
                "exam_pass_rate_pct": 50,
            },
            "0.00",
            "20.00",
            "-4.00",
        ),
    ],
)
def test_the_check_itself_sees_the_cut(
    card_id: str, indicators: dict[str, Any], score: str, base: str, score_before_cut: str | None
) -> None:
    card = BUILTIN_CARDS[card_id]
    kind = card.subject_kind
    subject = Subject(
        kind,
        resident_id(random.Random(1)) if kind is SubjectKind.PERSON else uscc(random.Random(1)),
    )
    for evaluator in EVALUATORS[card_id]:
        r = evaluator.evaluate(subject, indicators, dt.date(2026, 1, 1))
        assert (
            str(r.score),
            str(r.base),
            None if r.score_before_cut is None else str(r.score_before_cut),
        ) == (score, base, score_before_cut)
        check_adds_up(card, r)
