"""scorecards/codec.py: evaluation inputs and results to JSON-safe dicts and back, exactly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest
from sector_credit.scorecards import codec
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationInput,
    EvaluationResult,
    FiredOverride,
    Grade,
    GroupTotal,
    Line,
    Provenance,
    ProvenanceTag,
    ReasonCode,
    Subject,
    SubjectKind,
    Title,
)

LAW = Provenance(ProvenanceTag.VERIFIED, "交通运输部令2022年第29号", "第十二条")
DESIGN = Provenance(ProvenanceTag.DESIGN, "project design")


def full_result() -> EvaluationResult:
    """A result using every field: trailing zeros, None, dates, every value type."""
    return EvaluationResult(
        scorecard_id="transport.taxi_driver",
        version="2024.1",
        digest="sha256:" + "ab" * 32,
        subject=Subject(SubjectKind.PERSON, "11010519491231002X", "张三"),
        as_of=dt.date(2024, 2, 29),
        indicators={
            "violations": 3,
            "on_time_rate": Decimal("97.50"),
            "licence_revoked": False,
            "service_level": "1.5",  # a choice code that looks like a number
            "last_accident": dt.date(2021, 2, 28),
            "big": Decimal("1E+3"),
            "negative_zero": Decimal("-0.00"),
        },
        score=Decimal("74.70"),
        score_grade="AA",
        grade=Grade("B", Title("合格", "Pass"), LAW, min_score=Decimal(60), colour="#ffcc00"),
        lines=(
            Line(
                rule_id="violations",
                title=Title("违章", "Violations"),
                group="safety",
                values=(("violations", 3), ("last_accident", None)),
                points=Decimal("-6.0"),
                provenance=LAW,
                points_before_cut=Decimal(-9),
                best_points=Decimal(0),
            ),
            Line(
                rule_id="punctuality",
                title=Title("准点", "Punctuality"),
                group=None,
                values=(("on_time_rate", Decimal("97.50")), ("licence_revoked", False)),
                points=Decimal("10.70"),
                provenance=DESIGN,
            ),
        ),
        groups=(
            GroupTotal(
                "safety",
                Title("安全", "Safety"),
                Decimal(-9),
                Decimal("-6.0"),
                Decimal("-6.0"),
                None,
            ),
        ),
        overrides=(
            FiredOverride(
                id="fatal_accident",
                title=Title("重大事故", "Fatal accident"),
                effect=EffectKind.CAP,
                grade="B",
                steps=0,
                until=dt.date(2026, 2, 28),
                provenance=LAW,
            ),
            FiredOverride(
                id="complaints",
                title=Title("投诉", "Complaints"),
                effect=EffectKind.DOWNGRADE,
                grade=None,
                steps=2,
                until=None,
                provenance=DESIGN,
            ),
        ),
        until=dt.date(2026, 2, 28),
        reasons=(
            ReasonCode("fatal_accident", "override", Title("重大事故", "Fatal accident")),
            ReasonCode("violations", "rule", Title("违章", "Violations"), Decimal("6.0")),
        ),
        points_to_next_grade=Decimal("5.30"),
        next_grade="A",
    )


def eligibility_result() -> EvaluationResult:
    """An eligibility card: no score, no lines, nothing optional set."""
    return EvaluationResult(
        scorecard_id="civil_service.candidate",
        version="1",
        digest="sha256:" + "00" * 32,
        subject=Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43"),
        as_of=dt.date(2025, 1, 1),
        indicators={},
        score=None,
        score_grade=None,
        grade=Grade("eligible", Title("合格", "Eligible"), DESIGN),
        lines=(),
        groups=(),
        overrides=(),
        until=None,
        reasons=(),
        points_to_next_grade=None,
        next_grade=None,
    )


def exact(obj: object) -> str:
    """A representation in which Decimal('1.50') and Decimal('1.5'), 1 and True, differ."""
    return repr(obj)


@pytest.mark.parametrize("result", [full_result(), eligibility_result()], ids=["full", "no_score"])
def test_result_round_trips_exactly_through_json_text(result: EvaluationResult) -> None:
    text = json.dumps(codec.result_to_dict(result), allow_nan=False)
    back = codec.result_from_dict(json.loads(text))
    assert back == result
    assert exact(back) == exact(result)


def test_result_dict_is_plain_json_with_readable_values() -> None:
    data = codec.result_to_dict(full_result())
    assert data["format"] == codec.FORMAT
    assert data["score"] == "74.70"
    assert data["as_of"] == "2024-02-29"
    assert data["subject"] == {"kind": "person", "id": "11010519491231002X", "display_name": "张三"}
    assert data["grade"]["provenance"]["tag"] == "verified"
    assert data["overrides"][0]["effect"] == "cap"
    assert data["lines"][0]["values"] == [["violations", 3], ["last_accident", None]]


def test_indicator_values_keep_their_types() -> None:
    encoded = codec.indicators_to_dict(full_result().indicators)
    assert encoded == {
        "violations": 3,
        "on_time_rate": {"decimal": "97.50"},
        "licence_revoked": False,
        "service_level": "1.5",
        "last_accident": {"date": "2021-02-28"},
        "big": {"decimal": "1E+3"},
        "negative_zero": {"decimal": "-0.00"},
    }
    back = codec.indicators_from_dict(json.loads(json.dumps(encoded)))
    assert {k: (type(v), str(v)) for k, v in back.items()} == {
        k: (type(v), str(v)) for k, v in full_result().indicators.items()
    }


def test_input_round_trips_with_raw_values() -> None:
    inp = EvaluationInput(
        scorecard_id="transport.taxi_driver",
        subject=Subject(SubjectKind.PERSON, "11010519491231002X"),
        indicators={
            "count": 2,
            "rate": Decimal("0.1"),
            "float": 0.25,
            "flag": True,
            "d": dt.date(2024, 1, 1),
        },
        as_of=None,
        version="2024.1",
    )
    back = codec.input_from_dict(json.loads(json.dumps(codec.input_to_dict(inp))))
    assert exact(back) == exact(inp)


def test_request_digest_is_canonical_and_sensitive() -> None:
    base = EvaluationInput("s", Subject(SubjectKind.PERSON, "x"), {"a": 1, "b": Decimal("2.0")})
    reordered = dataclasses.replace(base, indicators={"b": Decimal("2.0"), "a": 1})
    assert codec.request_digest(base) == codec.request_digest(reordered)
    assert codec.request_digest(base) == codec.request_digest(codec.input_to_dict(base))
    assert len(codec.request_digest(base)) == 64
    for changed in (
        dataclasses.replace(base, indicators={"a": 1, "b": Decimal("2.00")}),
        dataclasses.replace(base, indicators={"a": True, "b": Decimal("2.0")}),
        dataclasses.replace(base, as_of=dt.date(2024, 1, 1)),
        dataclasses.replace(base, subject=Subject(SubjectKind.PERSON, "y")),
    ):
        assert codec.request_digest(changed) != codec.request_digest(base)


@pytest.mark.parametrize(
    "value", [dt.datetime(2024, 1, 1, 12, 0), float("nan"), object(), [1, 2]], ids=repr
)
def test_values_without_an_exact_json_form_are_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        codec.value_to_json(value)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"format": 99},
        {**codec.result_to_dict(eligibility_result()), "score": "not a number"},
        {**codec.result_to_dict(eligibility_result()), "grade": None},
        {**codec.result_to_dict(full_result()), "indicators": {"x": {"weird": 1}}},
    ],
    ids=["empty", "future_format", "bad_decimal", "missing_grade", "unknown_value_tag"],
)
def test_decoding_something_else_raises_value_error(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        codec.result_from_dict(data)
