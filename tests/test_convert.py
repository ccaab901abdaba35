"""proto <-> domain conversion (server/convert.py), on domain objects built by hand."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from sector_credit.scorecards.model import (
    AllOf,
    AnyOf,
    Band,
    Compare,
    DateTest,
    EffectKind,
    EvaluationResult,
    FieldViolation,
    FiredOverride,
    Grade,
    Group,
    GroupTotal,
    Indicator,
    IndicatorType,
    Interval,
    InvalidInput,
    Line,
    Not,
    Override,
    Provenance,
    ProvenanceTag,
    ReasonCode,
    Rule,
    RuleKind,
    Scorecard,
    Subject,
    SubjectKind,
    Title,
    Until,
)
from sector_credit.scorecards.text import condition_text, decimal_text
from sector_credit.server import convert
from sector_credit.server.convert import wire as convert_wire
from sector_credit.v1 import (
    common_pb2,
    credit_evaluation_service_pb2,
    evaluation_pb2,
    scorecard_pb2,
)

SECONDARY = Provenance(ProvenanceTag.SECONDARY, "《出租汽车服务质量信誉考核办法》", "附件")
VERIFIED = Provenance(ProvenanceTag.VERIFIED, "《公务员法》", "art 26")
DESIGN = Provenance(ProvenanceTag.DESIGN, "design")
D = Decimal


def request(**fields: object) -> credit_evaluation_service_pb2.EvaluateRequest:
    base: dict[str, object] = {
        "scorecard": "transport.taxi_driver",
        "subject": common_pb2.Subject(
            kind=common_pb2.SUBJECT_KIND_PERSON, id="11010519491231002X", display_name="Li"
        ),
    }
    base.update(fields)
    return credit_evaluation_service_pb2.EvaluateRequest(**base)  # type: ignore[arg-type]


def violations_of(req: credit_evaluation_service_pb2.EvaluateRequest) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        convert.evaluation_input_from_proto(req)
    return {v.field: v.description for v in caught.value.violations}


# --------------------------------------------------------------------------------------------
# Requests -> domain


def test_every_value_case_becomes_its_python_type() -> None:
    req = request(
        scorecard="scorecards/transport.taxi_driver",
        version="2025.1",
        as_of=common_pb2.Date(year=2026, month=6, day=1),
        indicators={
            "violations_3pt": common_pb2.IndicatorValue(count_value=1),
            "emission": common_pb2.IndicatorValue(decimal_value="85.50"),
            "bonus_points": common_pb2.IndicatorValue(number_value=0.1),
            "siting_compliant": common_pb2.IndicatorValue(flag_value=True),
            "category": common_pb2.IndicatorValue(choice_value="freight"),
            "exam_misconduct_date": common_pb2.IndicatorValue(
                date_value=common_pb2.Date(year=2024, month=2, day=29)
            ),
            "left_empty": common_pb2.IndicatorValue(),
        },
        request_id="r-1",
        validate_only=True,
    )
    got = convert.evaluation_input_from_proto(req)

    assert got.scorecard_id == "transport.taxi_driver"
    assert got.version == "2025.1"
    assert got.as_of == dt.date(2026, 6, 1)
    assert got.subject == Subject(SubjectKind.PERSON, "11010519491231002X", "Li")
    assert got.indicators == {
        "violations_3pt": 1,
        "emission": D("85.50"),
        "bonus_points": D("0.1"),  # the shortest repr, not 0.1000000000000000055511...
        "siting_compliant": True,
        "category": "freight",
        "exam_misconduct_date": dt.date(2024, 2, 29),
    }
    assert type(got.indicators["violations_3pt"]) is int
    assert type(got.indicators["siting_compliant"]) is bool
    assert str(got.indicators["emission"]) == "85.50"  # exact, trailing zero kept


def test_defaults_on_the_wire_mean_absent() -> None:
    got = convert.evaluation_input_from_proto(
        request(
            subject=common_pb2.Subject(kind=common_pb2.SUBJECT_KIND_ORGANIZATION, id="x"),
            indicators={"debarment_end": common_pb2.IndicatorValue(date_value=common_pb2.Date())},
        )
    )
    assert got.version is None
    assert got.as_of is None
    assert got.indicators == {}  # an all-zero Date is no date
    assert got.subject == Subject(SubjectKind.ORGANIZATION, "x", "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (common_pb2.IndicatorValue(number_value=float("nan")), "NaN"),
        (common_pb2.IndicatorValue(number_value=float("inf")), "Infinity"),
        (common_pb2.IndicatorValue(number_value=float("-inf")), "-Infinity"),
        (common_pb2.IndicatorValue(decimal_value="NaN"), "NaN"),
        (common_pb2.IndicatorValue(count_value=-1), "-1"),
    ],
)
def test_values_the_engine_must_reject_are_passed_through(
    value: common_pb2.IndicatorValue, expected: str
) -> None:
    # So the engine reports them together with every other problem of the input.
    got = convert.evaluation_input_from_proto(request(indicators={"bonus_points": value}))
    assert str(got.indicators["bonus_points"]) == expected


def test_what_has_no_python_value_is_rejected_with_every_field_named() -> None:
    found = violations_of(
        request(
            scorecard="",
            subject=common_pb2.Subject(id="x"),
            as_of=common_pb2.Date(year=2026, month=2, day=30),
            indicators={
                "exam_misconduct_date": common_pb2.IndicatorValue(
                    date_value=common_pb2.Date(year=2024, month=13, day=1)
                ),
                "emission": common_pb2.IndicatorValue(decimal_value="eighty"),
                "bonus_points": common_pb2.IndicatorValue(count_value=2),
            },
        )
    )
    assert sorted(found) == [
        "as_of",
        "indicators.emission",
        "indicators.exam_misconduct_date",
        "scorecard",
        "subject.kind",
    ]
    assert "2024-13-01" in found["indicators.exam_misconduct_date"]
    assert "2026-02-30" in found["as_of"]
    assert "'eighty'" in found["indicators.emission"]


def test_an_unknown_subject_kind_number_is_rejected() -> None:
    req = request()
    req.subject.kind = 7  # type: ignore[assignment]  # a newer client's value
    assert list(violations_of(req)) == ["subject.kind"]


def test_evaluation_names() -> None:
    assert convert.evaluation_name("01J") == "evaluations/01J"
    assert convert.evaluation_id_from_name("evaluations/01J") == "01J"
    for bad in ["", "evaluations/", "01J", "scorecards/01J", "evaluations/a/b"]:
        with pytest.raises(InvalidInput) as caught:
            convert.evaluation_id_from_name(bad)
        assert [v.field for v in caught.value.violations] == ["name"]
    assert convert.scorecard_id_from_name("scorecards/a.b") == "a.b"
    assert convert.scorecard_id_from_name("a.b") == "a.b"


# --------------------------------------------------------------------------------------------
# Results -> wire

DEDUCTIONS = Title("扣分", "Deductions")
BONUS = Title("加分", "Bonus")
GRADE_B = Grade("B", Title("不合格", "Unqualified"), SECONDARY, D(0))


def taxi_example_2() -> EvaluationResult:
    """SCORECARDS.md §3 example 2: violations_20pt 1, bonus_points 5 -> 5, forced to B."""
    return EvaluationResult(
        scorecard_id="transport.taxi_driver",
        version="2025.1",
        digest="ab" * 32,
        subject=Subject(SubjectKind.PERSON, "11010519491231002X", "Li"),
        as_of=dt.date(2026, 1, 1),
        indicators={"violations_20pt": 1, "violations_5pt": 0, "bonus_points": D("5")},
        score=D("5"),
        score_grade="A",
        grade=GRADE_B,
        lines=(
            Line(
                "violations_5pt",
                Title("5分违法行为", "5-point violations"),
                "deductions",
                (("violations_5pt", 0),),
                D("-5") * 0,  # Decimal("-0"): must read "0" on the wire
                SECONDARY,
                best_points=D(0),
            ),
            Line(
                "violations_20pt",
                Title("20分违法行为", "20-point violations"),
                "deductions",
                (("violations_20pt", 1),),
                D("-20"),
                SECONDARY,
                best_points=D(0),
            ),
            Line(
                "bonus_points",
                Title("加分", "Bonus points"),
                "bonus",
                (("bonus_points", D("5")),),
                D("5"),
                SECONDARY,
                points_before_cut=None,
                best_points=D("10"),
            ),
        ),
        groups=(
            GroupTotal("deductions", DEDUCTIONS, D("-20"), D("-20"), D("-20"), None),
            GroupTotal("bonus", BONUS, D("5"), D("5"), None, D("10")),
        ),
        overrides=(
            FiredOverride(
                "whole_20_lost",
                Title("扣满20分", "Lost the whole 20 points"),
                EffectKind.FORCE,
                "B",
                0,
                None,
                SECONDARY,
            ),
        ),
        until=None,
        reasons=(
            ReasonCode("whole_20_lost", "override", Title("扣满20分", "Lost the whole 20 points")),
            ReasonCode(
                "violations_20pt", "rule", Title("20分违法行为", "20-point violations"), D("20")
            ),
            ReasonCode("bonus_points", "rule", Title("加分", "Bonus points"), D("5")),
        ),
        points_to_next_grade=None,
        next_grade=None,
        base=D("20"),
    )


def test_an_evaluation_carries_its_whole_explanation() -> None:
    created = dt.datetime(2026, 1, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    got = convert.evaluation_to_proto(
        taxi_example_2(),
        evaluation_id="01JABC",
        create_time=created,
        request_id="req-7",
        caller="authority-42",
    )

    assert got.name == "evaluations/01JABC"
    assert (got.scorecard_id, got.scorecard_version, got.scorecard_digest) == (
        "transport.taxi_driver",
        "2025.1",
        "ab" * 32,
    )
    assert got.subject == common_pb2.Subject(
        kind=common_pb2.SUBJECT_KIND_PERSON, id="11010519491231002X", display_name="Li"
    )
    assert got.as_of == common_pb2.Date(year=2026, month=1, day=1)
    assert dict(got.indicators) == {
        "violations_20pt": common_pb2.IndicatorValue(count_value=1),
        "violations_5pt": common_pb2.IndicatorValue(count_value=0),
        "bonus_points": common_pb2.IndicatorValue(decimal_value="5"),
    }
    assert (got.score, got.score_grade) == ("5", "A")
    assert got.grade == scorecard_pb2.Grade(
        code="B",
        title=common_pb2.Title(zh="不合格", en="Unqualified"),
        min_score="0",
        provenance=common_pb2.Provenance(
            tag=common_pb2.PROVENANCE_TAG_SECONDARY,
            source="《出租汽车服务质量信誉考核办法》",
            article="附件",
        ),
    )

    lines = {line.rule_id: line for line in got.lines}
    assert [line.rule_id for line in got.lines] == [
        "violations_5pt",
        "violations_20pt",
        "bonus_points",
    ]
    assert lines["violations_5pt"].points == "0"
    assert lines["violations_20pt"].points == "-20"
    assert lines["violations_20pt"].group == "deductions"
    assert lines["violations_20pt"].title.en == "20-point violations"
    assert lines["violations_20pt"].provenance.tag == common_pb2.PROVENANCE_TAG_SECONDARY
    assert [(v.name, v.value.count_value) for v in lines["violations_20pt"].values] == [
        ("violations_20pt", 1)
    ]
    assert lines["bonus_points"].best_points == "10"
    assert not lines["bonus_points"].HasField("points_before_cut")

    assert [(g.group_id, g.total, g.floor, g.ceiling) for g in got.group_totals] == [
        ("deductions", "-20", "-20", ""),
        ("bonus", "5", "", "10"),
    ]
    [fired] = got.overrides
    assert (fired.override_id, fired.effect, fired.grade, fired.steps) == (
        "whole_20_lost",
        scorecard_pb2.OVERRIDE_EFFECT_FORCE,
        "B",
        0,
    )
    assert not fired.HasField("until")
    assert not got.HasField("until")
    assert [(r.code, r.kind, r.points_lost) for r in got.reasons] == [
        ("whole_20_lost", evaluation_pb2.REASON_KIND_OVERRIDE, ""),
        ("violations_20pt", evaluation_pb2.REASON_KIND_RULE, "20"),
        ("bonus_points", evaluation_pb2.REASON_KIND_RULE, "5"),
    ]
    assert not got.HasField("points_to_next_grade")
    assert got.next_grade == ""
    assert got.base == "20"  # 20 - 20 + 5 = 5: the score, nothing cut
    assert not got.HasField("score_before_cut")
    assert got.create_time == timestamp_pb2.Timestamp(seconds=1767227400)  # 00:30 UTC
    assert (got.request_id, got.caller) == ("req-7", "authority-42")


def test_cut_lines_next_grade_and_until_are_set_when_present() -> None:
    result = taxi_example_2()
    cut = Line(
        "bonus_points",
        Title("加分", "Bonus points"),
        "bonus",
        (("bonus_points", D("12.5")),),
        D("10"),
        SECONDARY,
        points_before_cut=D("12.50"),
    )
    barred_until = dt.date(2029, 3, 10)
    fired = FiredOverride(
        "forged_material", Title("伪造材料", "Forged material"), EffectKind.CAP, "A", 0,
        barred_until, VERIFIED,
    )  # fmt: skip
    result = EvaluationResult(
        **{
            **{name: getattr(result, name) for name in EvaluationResult.__dataclass_fields__},
            "score": D("74.70"),
            "lines": (cut,),
            "overrides": (fired,),
            "until": barred_until,
            "points_to_next_grade": D("5.30"),
            "next_grade": "BLUE",
            "score_before_cut": D("-10.00"),
            "indicators": {"exam_misconduct_date": dt.date(2024, 3, 10), "ok": False},
        }
    )
    got = convert.evaluation_to_proto(result)

    assert got.name == ""  # not stored (validate_only)
    assert not got.HasField("create_time")
    assert got.score == "74.70"
    assert got.lines[0].points_before_cut == "12.50"
    assert got.lines[0].best_points == ""  # unbounded
    assert got.overrides[0].until == common_pb2.Date(year=2029, month=3, day=10)
    assert got.until == common_pb2.Date(year=2029, month=3, day=10)
    assert got.points_to_next_grade == "5.30"
    assert got.next_grade == "BLUE"
    assert got.score_before_cut == "-10.00"
    assert got.indicators["exam_misconduct_date"].date_value.year == 2024
    assert got.indicators["ok"].WhichOneof("value") == "flag_value"  # a bool is not a count


def test_an_eligibility_result_has_no_score() -> None:
    result = taxi_example_2()
    fields = {name: getattr(result, name) for name in EvaluationResult.__dataclass_fields__}
    fields.update(score=None, score_grade=None, lines=(), groups=(), reasons=(), base=None)
    fields.update(grade=Grade("BARRED", Title("不得录用", "Barred"), VERIFIED))
    got = convert.evaluation_to_proto(EvaluationResult(**fields))
    assert (got.score, got.score_grade, got.base) == ("", "", "")
    assert not got.HasField("score_before_cut")
    assert got.grade.override_only and got.grade.min_score == ""


@pytest.mark.parametrize(
    "value",
    [3, 0, D("97.5"), D("-0.50"), True, False, "compliant", dt.date(2024, 2, 29)],
)
def test_values_survive_the_round_trip(value: object) -> None:
    wire = convert.indicator_value_to_proto(value)
    back = convert.indicator_value_from_proto(
        common_pb2.IndicatorValue.FromString(wire.SerializeToString())
    )
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("74.70"), "74.70"),
        (D("-0"), "0"),
        (D("-0.00"), "0.00"),
        (D("1E+2"), "100"),
        (D("1E-7"), "0.0000001"),
        (D("-20"), "-20"),
        (None, ""),
    ],
)
def test_decimals_are_written_in_plain_notation(value: Decimal | None, text: str) -> None:
    assert decimal_text(value) == text


# --------------------------------------------------------------------------------------------
# Scorecards -> wire


def road_driver_card(
    version: str = "2025.1", effective: dt.date = dt.date(2022, 1, 1)
) -> Scorecard:
    category = Indicator(
        "category",
        IndicatorType.CHOICE,
        Title("类别", "Category"),
        required=True,
        choices=("passenger", "dangerous_goods", "freight"),
    )
    return Scorecard(
        id="transport.road_driver",
        version=version,
        effective_from=effective,
        title=Title("道路运输驾驶员诚信考核", "Road transport driver integrity"),
        subject_kind=SubjectKind.PERSON,
        indicators=(
            category,
            Indicator("violations_10pt", IndicatorType.COUNT, Title("10分", "10pt"), False),
            Indicator("violations_20pt", IndicatorType.COUNT, Title("20分", "20pt"), False),
            Indicator("satisfaction", IndicatorType.PERCENT, Title("满意度", "Satisfaction"), True),
            Indicator(
                "bonus_points",
                IndicatorType.NUMBER,
                Title("加分", "Bonus"),
                False,
                default=D(0),
                minimum=D(0),
                maximum=D(10),
            ),
            Indicator(
                "other_award_points",
                IndicatorType.NUMBER,
                Title("其他奖项", "Other awards"),
                False,
                default=0,  # as TOML reads `default = 0`
            ),
            Indicator(
                "continuing_education_done", IndicatorType.FLAG, Title("继续教育", "CE"), False
            ),
            Indicator(
                "exam_misconduct_date",
                IndicatorType.DATE,
                Title("违纪日期", "Misconduct date"),
                required=False,
                past=True,
                required_when=Compare(("indicator", "category"), "!=", "freight"),
            ),
        ),
        rules=(
            Rule(
                "violations_20pt",
                Title("20分违法行为", "20-point violations"),
                RuleKind.PER_UNIT,
                "violations_20pt",
                SECONDARY,
                group="deductions",
                points=D(-20),
            ),
            Rule(
                "satisfaction",
                Title("满意度", "Satisfaction"),
                RuleKind.BANDS,
                "satisfaction",
                DESIGN,
                bands=(
                    Band(Interval(D(95), D(100), high_inclusive=True), D(2)),
                    Band(Interval(D(0), D(95)), D(-2)),
                ),
            ),
            Rule(
                "hazardous",
                Title("危废", "Hazardous waste"),
                RuleKind.WEIGHTED,
                "category",
                DESIGN,
                choice_points=(("passenger", D(100)), ("freight", D(30))),
                weight=D(5),
            ),
            Rule(
                "siting",
                Title("选址", "Siting"),
                RuleKind.WEIGHTED,
                "continuing_education_done",
                DESIGN,
                flag_points=(D(100), D(0)),
                weight=D(2),
            ),
            Rule(
                "ce",
                Title("继续教育", "CE"),
                RuleKind.FLAG,
                "continuing_education_done",
                DESIGN,
                points=D(-5),
                when=False,
            ),
        ),
        groups=(Group("deductions", DEDUCTIONS, floor=D(-20)),),
        grades=(
            Grade("AAA", Title("优良", "Excellent"), SECONDARY, D(20), "green"),
            GRADE_B,
            Grade("EXCLUDED", Title("已列入黑名单", "Blacklisted"), DESIGN),
        ),
        overrides=(
            Override(
                "whole_20_lost",
                Title("扣满20分", "Lost the whole 20 points"),
                Compare(("group", "deductions"), "<=", D(-20)),
                EffectKind.FORCE,
                SECONDARY,
                grade="B",
            ),
            Override(
                "dangerous_serious",
                Title("危险品严重违法", "Serious dangerous-goods violation"),
                AllOf(
                    (
                        Compare(("indicator", "category"), "=", "dangerous_goods"),
                        Compare(("sum", "violations_10pt", "violations_20pt"), ">=", 1),
                    )
                ),
                EffectKind.CAP,
                DESIGN,
                grade="A",
            ),
            Override(
                "misconduct",
                Title("考试违纪", "Exam misconduct"),
                AnyOf(
                    (
                        DateTest("exam_misconduct_date", "within_years", 5),
                        Not(DateTest("exam_misconduct_date", "on_or_before_as_of")),
                        Compare(("indicator", "category"), "in", ("passenger", "freight")),
                        Compare(("score",), "<", D("60.5")),
                    )
                ),
                EffectKind.DOWNGRADE,
                VERIFIED,
                steps=1,
                until=Until("exam_misconduct_date", 5),
            ),
            Override(
                "debarred",
                Title("禁止投标", "Debarred"),
                DateTest("exam_misconduct_date", "after_as_of"),
                EffectKind.FORCE,
                VERIFIED,
                grade="EXCLUDED",
                until=Until("exam_misconduct_date"),
            ),
        ),
        base=D(20),
        score_min=D(0),
        score_max=D(20),
        digest="cd" * 32,
    )


def test_conditions_read_as_text() -> None:
    overrides = {o.id: o for o in convert.scorecard_to_proto(road_driver_card()).overrides}
    assert overrides["whole_20_lost"].condition == "group.deductions <= -20"
    assert overrides["dangerous_serious"].condition == (
        "all(category = dangerous_goods, violations_10pt + violations_20pt >= 1)"
    )
    assert overrides["misconduct"].condition == (
        "any(exam_misconduct_date within 5 years, not(exam_misconduct_date on or before as_of),"
        " category in [passenger, freight], score < 60.5)"
    )
    assert overrides["debarred"].condition == "exam_misconduct_date after as_of"
    assert overrides["misconduct"].until == "exam_misconduct_date + 5 years"
    assert overrides["debarred"].until == "exam_misconduct_date"
    assert overrides["whole_20_lost"].until == ""
    assert condition_text(DateTest("d", "within_years", 1)) == "d within 1 year"
    assert condition_text(Compare(("indicator", "f"), "=", True)) == "f = true"


def test_a_scorecard_shows_its_whole_definition() -> None:
    older = road_driver_card("2020.1", dt.date(2020, 1, 1))
    card = road_driver_card()
    got = convert.scorecard_to_proto(card, [card, older])

    assert (got.name, got.scorecard_id, got.version) == (
        "scorecards/transport.road_driver",
        "transport.road_driver",
        "2025.1",
    )
    assert got.effective_from == common_pb2.Date(year=2022, month=1, day=1)
    assert got.digest == "cd" * 32
    assert got.subject_kind == common_pb2.SUBJECT_KIND_PERSON
    assert [(v.version, v.effective_from.year) for v in got.versions] == [
        ("2020.1", 2020),
        ("2025.1", 2022),
    ]
    assert (got.base, got.score_min, got.score_max, got.default_grade) == ("20", "0", "20", "")

    ind = {i.name: i for i in got.indicators}
    assert ind["category"].type == scorecard_pb2.INDICATOR_TYPE_CHOICE
    assert ind["category"].required and not ind["category"].HasField("default_value")
    assert list(ind["category"].choices) == ["passenger", "dangerous_goods", "freight"]
    # the implied defaults and bounds of the types are shown
    assert ind["violations_10pt"].default_value.count_value == 0
    assert ind["violations_10pt"].default_value.WhichOneof("value") == "count_value"
    # a count's maximum is the service's limit (scorecards/limits.py) when the card states none
    assert (ind["violations_10pt"].minimum, ind["violations_10pt"].maximum) == ("0", "1000000")
    assert ind["continuing_education_done"].default_value.WhichOneof("value") == "flag_value"
    assert (ind["satisfaction"].minimum, ind["satisfaction"].maximum) == ("0", "100")
    assert ind["bonus_points"].default_value.decimal_value == "0"
    assert (ind["bonus_points"].minimum, ind["bonus_points"].maximum) == ("0", "10")
    assert (ind["bonus_points"].places, ind["satisfaction"].places) == (2, 2)
    assert ind["other_award_points"].default_value.WhichOneof("value") == "decimal_value"
    assert ind["other_award_points"].default_value.decimal_value == "0"
    misconduct = ind["exam_misconduct_date"]
    assert misconduct.past and not misconduct.HasField("default_value")
    assert misconduct.required_when == "category != freight"

    assert [(g.id, g.floor, g.ceiling) for g in got.groups] == [("deductions", "-20", "")]

    rules = {r.id: r for r in got.rules}
    per_unit = rules["violations_20pt"]
    assert (per_unit.kind, per_unit.points, per_unit.group) == (
        scorecard_pb2.RULE_KIND_PER_UNIT,
        "-20",
        "deductions",
    )
    assert per_unit.provenance.source == "《出租汽车服务质量信誉考核办法》"
    assert [(b.range, b.points) for b in rules["satisfaction"].bands] == [
        ("[95, 100]", "2"),
        ("[0, 95)", "-2"),
    ]
    assert rules["satisfaction"].group == ""
    assert [(c.choice, c.points) for c in rules["hazardous"].choice_points] == [
        ("passenger", "100"),
        ("freight", "30"),
    ]
    assert rules["hazardous"].weight == "5"
    assert (rules["siting"].flag_true_points, rules["siting"].flag_false_points) == ("100", "0")
    assert rules["ce"].kind == scorecard_pb2.RULE_KIND_FLAG and rules["ce"].when is False
    assert rules["ce"].points == "-5"

    grades = {g.code: g for g in got.grades}
    assert [g.code for g in got.grades] == ["AAA", "B", "EXCLUDED"]
    assert (grades["AAA"].min_score, grades["AAA"].colour, grades["AAA"].override_only) == (
        "20",
        "green",
        False,
    )
    assert grades["EXCLUDED"].override_only and grades["EXCLUDED"].min_score == ""
    assert grades["AAA"].title == common_pb2.Title(zh="优良", en="Excellent")

    overrides = {o.id: o for o in got.overrides}
    assert overrides["misconduct"].effect == scorecard_pb2.OVERRIDE_EFFECT_DOWNGRADE
    assert overrides["misconduct"].steps == 1
    assert overrides["misconduct"].provenance.tag == common_pb2.PROVENANCE_TAG_VERIFIED
    assert overrides["dangerous_serious"].grade == "A"


def test_the_basic_view_leaves_the_definition_out() -> None:
    got = convert.scorecard_to_proto(road_driver_card(), full=False)
    assert got.name == "scorecards/transport.road_driver"
    assert got.title.en == "Road transport driver integrity"
    assert [v.version for v in got.versions] == ["2025.1"]
    assert not (got.indicators or got.rules or got.grades or got.overrides or got.base)


# --------------------------------------------------------------------------------------------
# Errors and enums


def test_field_violations_become_item_errors_and_bad_requests() -> None:
    violations = [
        FieldViolation("indicators.bonus_points", "must be at most 10"),
        FieldViolation("subject.id", "bad check digit"),
    ]
    item = convert.item_error_to_proto(3, "invalid input", "INVALID_INDICATORS", violations)
    assert (item.code, item.message, item.reason) == (3, "invalid input", "INVALID_INDICATORS")
    assert [(v.field, v.description) for v in item.field_violations] == [
        ("indicators.bonus_points", "must be at most 10"),
        ("subject.id", "bad check digit"),
    ]


@pytest.mark.parametrize(
    ("domain", "wire", "mapping"),
    [
        (ProvenanceTag, common_pb2.ProvenanceTag, convert_wire.PROVENANCE_TAG),
        (SubjectKind, common_pb2.SubjectKind, convert_wire.SUBJECT_KIND),
        (IndicatorType, scorecard_pb2.IndicatorType, convert_wire.INDICATOR_TYPE),
        (RuleKind, scorecard_pb2.RuleKind, convert_wire.RULE_KIND),
        (EffectKind, scorecard_pb2.OverrideEffect, convert_wire.EFFECT),
    ],
)
def test_domain_and_wire_enums_match_one_to_one(
    domain: type[enum.Enum], wire: EnumTypeWrapper, mapping: Mapping[enum.Enum, int]
) -> None:
    assert set(mapping) == set(domain)
    assert set(mapping.values()) == {v for v in wire.values() if v != 0}  # 0: *_UNSPECIFIED
