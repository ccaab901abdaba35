"""Measures (守信激励 / 失信惩戒): what follows from a grade and from each override that fired.

A scorecard lists each measure once, with the grades and overrides it follows from and its
provenance (docs/scorecard-format.md#measures). The loader refuses a bad list, naming each
problem as `file: path: reason`; every result carries the measures of its grade and of each
fired override, through the engine, the stored row (both formats), the wire, the Python client,
the CLI text and `--json`; `GetScorecard` shows them all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from installed_plugins import BUILTIN_ONLY
from sector_credit.clients.resources import Evaluation, Scorecard
from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards import codec, golden
from sector_credit.scorecards.engine import compile_scorecard
from sector_credit.scorecards.golden import SAMPLE_IDS
from sector_credit.scorecards.loader import load_text
from sector_credit.scorecards.model import (
    EvaluationResult,
    InvalidScorecard,
    ProvenanceTag,
    Subject,
    SubjectKind,
)
from sector_credit.scorecards.registry import build_registry
from sector_credit.server import convert
from sector_credit.server.db import rowjson
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, evaluate_request, module_server_fixture
from test_cli_e2e import COMMAND, cli_env, section
from test_loader import VALID
from test_records_service import create, fresh_org

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = build_registry(get_plugin_manager(only=BUILTIN_ONLY))

# --------------------------------------------------------------------------------------------
# The loader

CARD = VALID  # grades A, B, C, X (override-only); override always_late

PROV = 'provenance = { tag = "verified", source = "《条例》", article = "第二条" }'
TITLE = 'title = { zh = "限制", en = "Restricted" }'


def measure(*lines: str) -> str:
    return "\n[[measures]]\n" + "\n".join(lines) + "\n"


GOOD = measure(
    'id = "priority"', 'title = { zh = "优先", en = "Priority" }', 'grades = ["A"]', PROV
)
RESTRICT = measure(
    'id = "restricted"', TITLE, 'grades = ["B"]', 'overrides = ["always_late"]', PROV
)

# (what the card adds, every `path: reason` the loader must report, in order)
BAD_MEASURES = [
    (
        measure('id = "m"', TITLE, 'grades = ["Z"]', PROV),
        ["measures[0].grades[0]: unknown grade 'Z'; grades: ['A', 'B', 'C', 'X']"],
    ),
    (
        measure('id = "m"', TITLE, 'overrides = ["nope"]', PROV),
        ["measures[0].overrides[0]: unknown override 'nope'; overrides: ['always_late']"],
    ),
    (
        measure('id = "m"', TITLE, 'grades = ["B", "B"]', PROV),
        ["measures[0].grades[1]: grade 'B' is listed twice"],
    ),
    (
        measure('id = "m"', TITLE, 'grades = "B"', PROV),
        ['measures[0].grades: a list of ids: ["A", "B"]'],
    ),
    (
        measure('id = "m"', TITLE, 'grades = ["B"]'),
        [
            "measures[0].provenance: missing: every rule, grade, override and measure needs"
            " { tag, source, article }"
        ],
    ),
    (
        measure('id = "m"', TITLE, 'grades = ["B"]', 'provenance = { tag = "verified" }'),
        ["measures[0].provenance.source: must name the source"],
    ),
    (
        measure(
            'id = "m"',
            TITLE,
            'grades = ["B"]',
            'provenance = { tag = "design", source = "本项目设计" }',
        ),
        [
            "measures[0].provenance.tag: a measure follows from a published rule"
            " (上海市社会信用条例 art 32: unpublished measures may not be applied);"
            " 'design' is not a source"
        ],
    ),
    (
        measure('id = "m"', 'grades = ["B"]', PROV),
        ['measures[0].title: must be { zh = "…", en = "…" } with both texts non-empty'],
    ),
    (
        measure('id = "m"', TITLE, PROV),
        ["measures[0]: a measure follows from at least one grade or override"],
    ),
    (
        measure('id = "Bad-Id"', TITLE, 'grades = ["B"]', PROV),
        ["measures[0].id: a measure id is lowercase letters, digits and _"],
    ),
    (
        measure('id = "m"', TITLE, 'grades = ["B"]', PROV, "until = 2030-01-01"),
        ["measures[0].until: unknown key"],
    ),
    (RESTRICT + RESTRICT, ["measures[1].id: duplicate measure id 'restricted'"]),
    ('measures = "none"', ["measures: must be an array of tables ([[measures]])"]),
    # every problem of a list at once, nothing loaded
    (
        measure('id = "m"', TITLE, 'grades = ["Z"]', 'overrides = ["nope"]'),
        [
            "measures[0].provenance: missing",
            "measures[0].grades[0]: unknown grade 'Z'",
            "measures[0].overrides[0]: unknown override 'nope'",
        ],
    ),
]


@pytest.mark.parametrize(
    ("added", "problems"), BAD_MEASURES, ids=[p[0].split(":")[0] for _, p in BAD_MEASURES]
)
def test_the_loader_refuses_a_bad_measure_naming_file_path_and_reason(
    added: str, problems: list[str]
) -> None:
    text = added + CARD if added.startswith("measures =") else CARD + added
    with pytest.raises(InvalidScorecard) as info:
        load_text(text, "card.toml")
    found = [f"{p.path}: {p.reason}" for p in info.value.problems]
    assert len(found) == len(problems), found
    for got, want in zip(found, problems, strict=True):
        assert got.startswith(want), (got, want)
    assert str(info.value).startswith("card.toml: " + problems[0].split(":")[0])


def test_grades_and_overrides_get_their_measures_in_file_order() -> None:
    card = load_text(
        CARD
        + RESTRICT
        + GOOD
        + measure(
            'id = "also"', 'title = { zh = "另", en = "Also" }', 'overrides = ["always_late"]', PROV
        )
    )
    assert {g.code: [m.id for m in g.measures] for g in card.grades} == {
        "A": ["priority"],
        "B": ["restricted"],
        "C": [],
        "X": [],
    }
    assert [m.id for m in card.overrides[0].measures] == ["restricted", "also"]
    (priority,) = card.grade("A").measures  # type: ignore[union-attr]
    assert priority.title.en == "Priority" and priority.provenance.tag is ProvenanceTag.VERIFIED
    assert priority.provenance.article == "第二条"
    assert card.grade("B").measures[0] is card.overrides[0].measures[0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changed", "same_digest"),
    [
        ("", True),  # no measures: the digest as before
        (GOOD, False),  # adding one changes the definition
        (GOOD.replace("Priority", "Precedence"), False),  # so does changing its title
        (GOOD.replace("第二条", "第三条"), False),  # or its provenance
        (GOOD.replace('grades = ["A"]', 'grades = ["B"]'), False),  # or what it follows from
    ],
)
def test_measures_are_part_of_the_digest(changed: str, same_digest: bool) -> None:
    plain = load_text(CARD)
    assert (load_text(CARD + changed).digest == plain.digest) is same_digest
    if changed:  # two cards with different measures never share a digest
        assert (
            load_text(CARD + changed).digest
            != load_text(CARD + GOOD.replace("优先", "优待")).digest
        )


GOLDEN = """
[[cases]]
name = "14 is B: the grade's measure"
indicators = { late = 3, rating = 70 }
expect = { grade = "B", measures = ["restricted"] }

[[cases]]
name = "always late: forced X, the override's measure (X has none)"
indicators = { late = 10, rating = 95 }
expect = { grade = "X", measures = ["restricted"] }

[[cases]]
name = "a card's own case can be wrong about its measures"
indicators = { late = 0, rating = 95 }
expect = { grade = "A", measures = ["restricted"] }
"""


def test_golden_cases_can_expect_the_measures() -> None:
    compiled = compile_scorecard(load_text(CARD + RESTRICT + GOOD + GOLDEN))
    outcomes = [golden.run_case(compiled, case) for case in compiled.card.cases]
    assert [o.passed for o in outcomes] == [True, True, False]
    assert outcomes[2].mismatches == [("measures", "[restricted]", "[priority]")]


# --------------------------------------------------------------------------------------------
# Every built-in card: grade (and overrides) -> the measures that apply

D = dt.date
SOCIAL_887 = {
    "basic_conditions": 150,
    "internal_governance": 300,
    "work_performance": 290,
    "social_evaluation": 147,
}
SOCIAL_ABOVE_3A = [
    "priority_government_functions",
    "pre_tax_donation_deduction",
    "certificate_and_plaque",
]
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
ENV_PERFECT = {
    **ENV_EXAMPLE,
    "emission_compliance_min_pct": 100,
    "solid_waste_treated_pct": 100,
    "noise_exceedance_db": 0,
    "administrative_penalties": 0,
    "other_indicators_score": 100,
}
INSTRUCTOR = {
    "continuing_education_done": True,
    "student_satisfaction_pct": 96,
    "exam_pass_rate_pct": 95,
}

# (card, as_of, indicators, grade, [(follows from, grade code or override id, measure id)])
CASES: list[tuple[str, dt.date, dict[str, Any], str, list[tuple[str, str, str]]]] = [
    (
        "transport.taxi_driver",
        D(2026, 1, 1),
        {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2},
        "AA",
        [],
    ),
    ("transport.taxi_driver", D(2026, 1, 1), {}, "AAA", []),
    (
        "transport.taxi_driver",
        D(2026, 1, 1),
        {"violations_20pt": 1, "bonus_points": 5},
        "B",
        [("override", "whole_20_lost", "training_within_15_days")],
    ),
    (
        "transport.road_driver",
        D(2026, 1, 1),
        {"category": "freight", "violations_3pt": 1, "violations_1pt": 1},
        "AA",
        [],
    ),
    (
        "transport.road_driver",
        D(2026, 1, 1),
        {"category": "freight", "violations_10pt": 2},
        "B",
        [("grade", "B", "carrier_credit_file"), ("grade", "B", "no_major_or_high_risk_tasks")],
    ),
    (
        "transport.road_driver",
        D(2026, 1, 1),
        {"category": "dangerous_goods", "violations_10pt": 1},
        "A",
        [],
    ),  # a cap: none
    (
        "transport.driving_instructor",
        D(2026, 1, 1),
        INSTRUCTOR,
        "AAA",
        [("grade", "AAA", "priority_commendation_two_aaa_years")],
    ),
    (
        "transport.driving_instructor",
        D(2026, 1, 1),
        {**INSTRUCTOR, "violations_20pt": 1},
        "B",
        [
            ("grade", "B", "blacklist_teaching_suspended"),
            ("override", "blacklisted_20pt_deduction", "blacklist_teaching_suspended"),
        ],
    ),
    (
        "construction.firm",
        D(2026, 1, 1),
        {
            "qualification_staff_points": 5,
            "contract_performance_points": 8,
            "decoration_awards": 2,
            "bad_records_b": 1,
            "bad_records_c": 1,
        },
        "B",
        [],
    ),
    (
        "construction.firm",
        D(2026, 1, 1),
        {"bad_records_a": 1},
        "C",
        [("grade", "C", "fails_tender_credit_screening")],
    ),
    (
        "construction.firm",
        D(2026, 6, 1),
        {"tender_debarment_end": D(2027, 1, 1)},
        "EXCLUDED",
        [
            ("override", "tender_debarment", "no_bids_for_compulsory_tenders"),
            ("override", "tender_debarment", "repeat_within_3y_licence_revoked"),
        ],
    ),
    (
        "construction.firm",
        D(2026, 1, 1),
        {"qualification_fraud": True},
        "EXCLUDED",
        [("override", "qualification_fraud", "published_as_bad_information_3y")],
    ),
    ("environment.enterprise", D(2026, 1, 1), ENV_PERFECT, "GREEN", []),
    (
        "environment.enterprise",
        D(2026, 1, 1),
        ENV_EXAMPLE,
        "YELLOW",
        [
            ("grade", "YELLOW", "yellow_twice_not_green_for_2_years"),
            ("grade", "YELLOW", "credit_repair_after_rectification"),
        ],
    ),
    (
        "environment.enterprise",
        D(2026, 1, 1),
        {**ENV_EXAMPLE, "hidden_discharge": True},
        "RED",
        [
            ("grade", "RED", "not_green_for_2_years"),
            ("grade", "RED", "credit_repair_after_rectification"),
        ],
    ),
    (
        "social_org.evaluation",
        D(2026, 1, 1),
        SOCIAL_887,
        "4A",
        [("grade", "4A", m) for m in [*SOCIAL_ABOVE_3A, "simplified_annual_inspection"]],
    ),
    (
        "social_org.evaluation",
        D(2026, 1, 1),
        {**SOCIAL_887, "internal_governance": 250, "work_performance": 203},
        "3A",
        [("grade", "3A", m) for m in SOCIAL_ABOVE_3A],
    ),
    (
        "social_org.evaluation",
        D(2026, 1, 1),
        {**SOCIAL_887, "internal_governance": 200, "work_performance": 150},
        "2A",
        [],
    ),
    (
        "social_org.evaluation",
        D(2026, 1, 1),
        {**SOCIAL_887, "max_fine_cny": 60000},
        "NOT_EVALUATED",
        [("override", "large_fine", "serious_dishonesty_listing")],
    ),
    (
        "social_org.evaluation.anhui",
        D(2026, 1, 1),
        SOCIAL_887,
        "3A",
        [("grade", "3A", m) for m in SOCIAL_ABOVE_3A],
    ),
    ("civil_servant.recruitment", D(2026, 6, 1), {}, "ELIGIBLE", []),
    (
        "civil_servant.recruitment",
        D(2026, 6, 1),
        {"exam_misconduct": "forged_material", "exam_misconduct_date": D(2024, 3, 10)},
        "BARRED",
        [("override", "forged_material_5y", "application_void_5y_restriction")],
    ),
    (
        "civil_servant.recruitment",
        D(2026, 6, 1),
        {"criminal_record": True, "on_joint_punishment_list": True},
        "BARRED",
        [
            ("override", "criminal_record", "barred_from_transfer_in"),
            ("override", "on_joint_punishment_list", "barred_from_transfer_in"),
        ],
    ),
    (
        "procurement.supplier",
        D(2025, 6, 1),
        {"major_illegal_record_date": D(2023, 3, 1), "debarment_end": D(2024, 3, 1)},
        "QUALIFIED",
        [],
    ),
    (
        "procurement.supplier",
        D(2025, 6, 1),
        {"on_dishonest_debtor_list": True},
        "REFUSED",
        [
            ("override", "on_dishonest_debtor_list", "query_record_kept"),
            ("override", "on_dishonest_debtor_list", "dishonest_debtor_joint_restrictions"),
        ],
    ),
    (
        "procurement.supplier",
        D(2025, 6, 1),
        {"on_major_tax_violation_list": True},
        "REFUSED",
        [("override", "on_major_tax_violation_list", "query_record_kept")],
    ),
]
CASE_IDS = [f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)]


def evaluate(card_id: str, as_of: dt.date, indicators: dict[str, Any]) -> EvaluationResult:
    compiled = REGISTRY.resolve(card_id, None, as_of)
    kind = compiled.card.subject_kind
    return compiled.evaluate(Subject(kind, SAMPLE_IDS[kind]), indicators, as_of)


def applied(result: EvaluationResult) -> list[tuple[str, str, str]]:
    return [("grade", result.grade.code, m.id) for m in result.grade.measures] + [
        ("override", o.id, m.id) for o in result.overrides for m in o.measures
    ]


def test_every_built_in_card_has_measures_and_the_table_reaches_each_card() -> None:
    assert {c[0] for c in CASES} == {c.id for c in REGISTRY.all()}
    for compiled in REGISTRY.all():
        card = compiled.card
        listed = [m for g in card.grades for m in g.measures] + [
            m for o in card.overrides for m in o.measures
        ]
        assert listed, card.id
        for m in listed:  # each from a published rule, bilingual (the loader holds them to it)
            assert m.provenance.tag is not ProvenanceTag.DESIGN and m.provenance.source, m.id
            assert m.title.zh and m.title.en


@pytest.mark.parametrize(
    ("card_id", "as_of", "indicators", "grade", "measures"), CASES, ids=CASE_IDS
)
def test_the_result_carries_the_measures_of_its_grade_and_of_each_fired_override(
    card_id: str,
    as_of: dt.date,
    indicators: dict[str, Any],
    grade: str,
    measures: list[tuple[str, str, str]],
) -> None:
    result = evaluate(card_id, as_of, indicators)
    assert result.grade.code == grade
    assert applied(result) == measures
    # the measures that apply, each once
    assert [m.id for m in result.measures] == list(dict.fromkeys(m for _, _, m in measures))


# --------------------------------------------------------------------------------------------
# The stored row and the wire

RESULTS = [evaluate(c[0], c[1], c[2]) for c in CASES]


@pytest.mark.parametrize("result", RESULTS, ids=CASE_IDS)
def test_format_1_keeps_the_measures_and_writes_what_the_codec_writes(
    result: EvaluationResult,
) -> None:
    text = rowjson.result_json(result)
    assert text == json.dumps(
        codec.result_to_dict(result), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    back = rowjson.result_from_document(json.loads(text))
    assert back == result and applied(back) == applied(result)
    assert codec.result_from_dict(json.loads(text)) == result


@pytest.mark.parametrize("result", RESULTS, ids=CASE_IDS)
def test_format_2_stores_no_measure_and_rebuilds_them_from_the_parts(
    result: EvaluationResult,
) -> None:
    card = REGISTRY.resolve(result.scorecard_id, result.version).card
    parts = rowjson.result_parts_from_document(
        json.loads(rowjson.result_parts_json(rowjson.result_parts(card)))
    )
    text = rowjson.result_json_compact(result, parts)
    document = json.loads(text)
    assert document["format"] == 2 and '"measures"' not in text
    back = rowjson.result_from_document(document, {parts.digest: parts}.get)
    assert back == result and applied(back) == applied(result)


def test_a_row_written_before_measures_reads_as_before_with_none() -> None:
    result = RESULTS[[c[3] for c in CASES].index("EXCLUDED")]
    document = codec.result_to_dict(result)
    assert "measures" in document["overrides"][0]
    for o in document["overrides"]:
        o.pop("measures", None)
    document["grade"].pop("measures", None)
    old = rowjson.result_from_document(json.loads(json.dumps(document)))
    assert old.grade.code == result.grade.code and old.measures == ()
    assert old == dataclasses.replace(
        result,
        grade=dataclasses.replace(result.grade, measures=()),
        overrides=tuple(dataclasses.replace(o, measures=()) for o in result.overrides),
    )
    # and a format-1 result without measures is written byte for byte as before they existed
    assert '"measures"' not in rowjson.result_json(old)


@pytest.mark.parametrize(("result", "case"), list(zip(RESULTS, CASES, strict=True)), ids=CASE_IDS)
def test_the_wire_and_the_client_carry_the_measures(
    result: EvaluationResult, case: tuple[Any, ...]
) -> None:
    message = convert.evaluation_to_proto(result)
    again = type(message).FromString(message.SerializeToString())
    ev = Evaluation.from_proto(again)
    assert [(a.follows_from, a.source, a.measure.id) for a in ev.measures] == case[4]
    for a in ev.measures:
        assert a.measure.title.zh and a.measure.provenance.tag in (
            "verified",
            "secondary",
            "unverified",
        )
    shown = ev.to_dict()
    assert [m["id"] for m in shown["grade"]["measures"]] == [
        m for how, _, m in case[4] if how == "grade"
    ]
    assert [m["id"] for o in shown["overrides"] for m in o["measures"]] == [
        m for how, _, m in case[4] if how == "override"
    ]


def test_the_scorecard_message_shows_every_measure() -> None:
    for compiled in REGISTRY.all():
        card = Scorecard.from_proto(convert.scorecard_to_proto(compiled.card))
        want = {(g.code, tuple(m.id for m in g.measures)) for g in compiled.card.grades}
        assert {(g.code, tuple(m.id for m in g.measures)) for g in card.grades} == want
        want = {(o.id, tuple(m.id for m in o.measures)) for o in compiled.card.overrides}
        assert {(o.id, tuple(m.id for m in o.measures)) for o in card.overrides} == want


# --------------------------------------------------------------------------------------------
# A real server (SQLite and PostgreSQL): Evaluate, the stored row, GetScorecard, the CLI

server = module_server_fixture()
ORG = SAMPLE_IDS[SubjectKind.ORGANIZATION]


def test_get_scorecard_shows_each_grade_and_override_with_its_measures(
    server: ServerProcess,
) -> None:
    card = server.stub.GetScorecard(
        pb.GetScorecardRequest(name="scorecards/social_org.evaluation")
    ).scorecard
    assert {g.code: [m.id for m in g.measures] for g in card.grades} == {
        "5A": [*SOCIAL_ABOVE_3A, "simplified_annual_inspection"],
        "4A": [*SOCIAL_ABOVE_3A, "simplified_annual_inspection"],
        "3A": SOCIAL_ABOVE_3A,
        "2A": [],
        "1A": [],
        "NOT_EVALUATED": [],
    }
    assert {o.id: [m.id for m in o.measures] for o in card.overrides if o.measures} == {
        "large_fine": ["serious_dishonesty_listing"],
        "repeated_warnings_or_small_fines": ["serious_dishonesty_listing"],
    }
    first = card.grades[0].measures[0]
    assert first.title.zh.startswith("优先接受政府职能转移") and first.provenance.source
    basic = server.stub.GetScorecard(
        pb.GetScorecardRequest(
            name="scorecards/social_org.evaluation", view=pb.SCORECARD_VIEW_BASIC
        )
    ).scorecard
    assert not basic.grades


def debarred_firm(server: ServerProcess) -> str:
    """A firm debarred from tendering until 2027-01-01 (its construction.tender_debarment
    record: the server reads the end from it)."""
    firm = fresh_org()
    create(
        server,
        kind="construction.tender_debarment",
        decided="2025-06-01",
        subject=firm,
        restriction_end="2027-01-01",
    )
    return firm


def test_the_stored_evaluation_gives_back_the_measures_it_was_decided_with(
    server: ServerProcess,
) -> None:
    request = evaluate_request(
        "construction.firm", {}, subject_id=debarred_firm(server), as_of="2026-06-01"
    )
    made = server.stub.Evaluate(request).evaluation
    assert made.grade.code == "EXCLUDED" and not made.grade.measures
    assert [m.id for m in made.overrides[0].measures] == [
        "no_bids_for_compulsory_tenders",
        "repeat_within_3y_licence_revoked",
    ]
    stored = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(purpose="supervision", name=made.name)
    ).evaluation
    assert stored.overrides == made.overrides and stored.grade == made.grade


def cli(server: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [*COMMAND, "--server", server.address, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(COLUMNS="200"),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_prints_the_measures_in_text_and_json(server: ServerProcess) -> None:
    args = [
        "evaluate",
        "construction.firm",
        "--subject",
        debarred_firm(server),
        "--as-of",
        "2026-06-01",
    ]
    shown = section(cli(server, *args), "Measures")
    assert shown[0].split() == ["MEASURE", "FOLLOWS", "FROM", "TITLE", "PROVENANCE"]
    # the override's id under `override`, on the row's second line
    assert re.match(r"no_bids_for_compulsory_tenders\s+override\s+禁入期内", shown[1])
    assert re.match(r"\s+tender_debarment\s", shown[2])
    assert re.search(r"verified \[\d+\]$", shown[1])
    assert any(line.startswith("repeat_within_3y_licence_revoked") for line in shown)

    data = json.loads(cli(server, *args, "--json"))
    assert data["grade"]["measures"] == []
    (fired,) = data["overrides"]
    assert [m["id"] for m in fired["measures"]] == [
        "no_bids_for_compulsory_tenders",
        "repeat_within_3y_licence_revoked",
    ]
    assert fired["measures"][0]["provenance"] == {
        "tag": "verified",
        "source": "《中华人民共和国招标投标法实施条例》",
        "article": "第六十七条、第六十八条",
    }

    quiet = cli(server, "evaluate", "construction.firm", "--subject", ORG, "--as-of", "2026-06-01")
    assert "Measures" not in quiet.splitlines()  # a grade B firm: nothing follows


def test_the_cli_shows_what_each_measure_of_a_scorecard_follows_from(server: ServerProcess) -> None:
    out = cli(server, "scorecards", "show", "social_org.evaluation")
    rows = section(out, "Measures (守信激励 / 失信惩戒)")
    assert rows[0].split() == ["MEASURE", "FOLLOWS", "FROM", "TITLE", "PROVENANCE"]
    text = "\n".join(rows)
    assert re.search(r"^priority_government_functions\s+grade 5A\s", text, re.MULTILINE)
    assert re.search(r"^\s+grade 4A\s", text, re.MULTILINE) and re.search(
        r"^\s+grade 3A", text, re.MULTILINE
    )
    listing = rows.index(next(r for r in rows if r.startswith("serious_dishonesty_listing")))
    assert [r.split()[0] for r in rows[listing : listing + 4]] == [
        "serious_dishonesty_listing",
        "large_fine",
        "override",
        "repeated_warnings_or_small_fines",
    ]
    assert rows[listing].split()[1] == "override"
