"""The service as a client meets it: a real server process on port 0, over SQLite and PostgreSQL.

Every RPC and every error the API promises (DESIGN.md "API"; the service comment in
credit_evaluation_service.proto), read through `grpc_status.rpc_status.from_call`; the
SCORECARDS.md §3 worked examples over the wire; health, reflection, the database going away,
graceful shutdown, `--help`, and the JSON log line of each RPC with personal data masked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import signal
import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2_grpc as pb_grpc,
)
from sector_credit.v1 import record_pb2, scorecard_pb2
from service_harness import (
    ORG_IDS,
    ORGANIZATION,
    PERSON_IDS,
    ServerProcess,
    database,
    drop_pg_database,
    evaluate_request,
    module_server_fixture,
    resident_id,
    running_server,
    scratch_pg_database,
    taxi,
    wait_until,
)

SERVICE = "sector_credit.v1.CreditEvaluationService"
ACCESS_LOG = "sector_credit.v1.AccessLogService"
KEYS = "sector_credit.v1.ApiKeyService"  # API keys, for an admin (docs/security.md)
RECORDS = "sector_credit.v1.RecordService"
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SCORECARD_IDS = [
    "civil_servant.recruitment",
    "construction.firm",
    "environment.enterprise",
    "procurement.supplier",
    "social_org.evaluation",
    "social_org.evaluation.anhui",
    "transport.driving_instructor",
    "transport.road_driver",
    "transport.taxi_driver",
]
DISPLAY_NAME = "张三"  # evaluate_request's subject name: personal data, never in a log

server = module_server_fixture()
_subjects = itertools.count(100)


def new_person() -> str:
    """A valid resident id no other test of this module uses (filters see only its rows)."""
    return resident_id(next(_subjects))


# --------------------------------------------------------------------------------------------
# Reading errors


class Failure:
    """A failed call as a client sees it: code, message, BadRequest and ErrorInfo."""

    def __init__(self, error: grpc.RpcError):
        self.code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        self.message: str = error.details() or ""  # type: ignore[attr-defined]
        self.trailers = error.trailing_metadata() or ()  # type: ignore[attr-defined]
        self.status = rpc_status.from_call(error)  # type: ignore[arg-type]
        self.violations: list[tuple[str, str]] = []
        self.reason = ""
        self.domain = ""
        self.metadata: dict[str, str] = {}
        for detail in self.status.details if self.status else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                self.violations += [(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                self.reason, self.domain, self.metadata = (
                    info.reason,
                    info.domain,
                    dict(info.metadata),
                )

    @property
    def fields(self) -> list[str]:
        return [f for f, _ in self.violations]

    def wire_text(self) -> str:
        """Everything the client received about the failure, as text."""
        return self.message + repr(self.trailers) + repr(self.status)


def fails(call: Any, request: Any, **kw: Any) -> Failure:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30, **kw)
    failure = Failure(info.value)
    assert "Traceback" not in failure.wire_text()
    if failure.status is not None:  # a status the service built: always with an ErrorInfo
        assert failure.domain == "sector-credit" and failure.reason
    return failure


# --------------------------------------------------------------------------------------------
# ListScorecards, GetScorecard


def test_list_scorecards_gives_the_nine_builtin_ids(server: ServerProcess) -> None:
    reply = server.stub.ListScorecards(pb.ListScorecardsRequest(), timeout=10)
    assert [c.scorecard_id for c in reply.scorecards] == SCORECARD_IDS
    assert [c.name for c in reply.scorecards] == [f"scorecards/{i}" for i in SCORECARD_IDS]
    assert reply.next_page_token == ""
    basic = reply.scorecards[0]
    assert basic.version and basic.digest and basic.title.zh and basic.versions
    assert not basic.indicators and not basic.rules  # BASIC is the List default (AIP-157)
    full = server.stub.ListScorecards(pb.ListScorecardsRequest(view=pb.SCORECARD_VIEW_FULL))
    assert all(c.grades for c in full.scorecards)


def test_list_scorecards_pages_through_all_ids_once(server: ServerProcess) -> None:
    seen: list[str] = []
    token, pages = "", 0
    while True:
        reply = server.stub.ListScorecards(pb.ListScorecardsRequest(page_size=4, page_token=token))
        assert len(reply.scorecards) <= 4
        seen += [c.scorecard_id for c in reply.scorecards]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == SCORECARD_IDS


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListScorecardsRequest(page_token="not-a-token"), "page_token"),
        (pb.ListScorecardsRequest(page_token="bzotNQ=="), "page_token"),  # "o:-5"
        (pb.ListScorecardsRequest(page_size=-1), "page_size"),
    ],
    ids=["garbage token", "negative offset token", "negative page size"],
)
def test_list_scorecards_bad_page_request_is_invalid_argument(
    server: ServerProcess, request_: pb.ListScorecardsRequest, field: str
) -> None:
    failure = fails(server.stub.ListScorecards, request_)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == [field]


def test_get_scorecard_gives_the_full_definition_with_provenance_and_digest(
    server: ServerProcess,
) -> None:
    card = server.stub.GetScorecard(
        pb.GetScorecardRequest(name="scorecards/transport.taxi_driver")
    ).scorecard
    assert card.name == "scorecards/transport.taxi_driver"
    assert card.scorecard_id == "transport.taxi_driver" and card.version
    assert card.digest.startswith("sha256:") and len(card.digest) == len("sha256:") + 64
    assert (card.base, card.score_min, card.score_max) == ("20", "0", "30")
    assert {i.name for i in card.indicators} == {
        "violations_1pt",
        "violations_3pt",
        "violations_5pt",
        "violations_10pt",
        "violations_20pt",
        "bonus_points",
    }
    assert {g.id: (g.floor, g.ceiling) for g in card.groups} == {
        "deductions": ("-20", ""),
        "bonus": ("", "10"),
    }
    assert [(g.code, g.min_score) for g in card.grades] == [
        ("AAA", "20"),
        ("AA", "11"),
        ("A", "1"),
        ("B", "0"),
    ]
    assert card.rules and card.overrides
    for rule in card.rules:  # every point traced to its source (SCORECARDS.md: provenance)
        assert rule.provenance.tag != 0 and rule.provenance.source, rule.id
        assert rule.title.zh and rule.title.en
    (override,) = card.overrides
    assert override.grade == "B" and override.condition and override.provenance.source

    # the digest an evaluation reports is the definition's, so it can be reproduced later
    evaluation = server.stub.Evaluate(taxi(subject_id=new_person())).evaluation
    assert evaluation.scorecard_digest == card.digest
    assert evaluation.scorecard_version == card.version

    # the bare id is accepted too; BASIC leaves the definition out
    basic = server.stub.GetScorecard(
        pb.GetScorecardRequest(name="transport.taxi_driver", view=pb.SCORECARD_VIEW_BASIC)
    ).scorecard
    assert basic.digest == card.digest and not basic.rules


@pytest.mark.parametrize(
    ("scorecard", "indicator", "kinds", "measure", "years", "severity", "text"),
    [
        ("civil_servant.recruitment", "on_joint_punishment_list", ["joint_punishment"],
         "ACTIVE", 0, "UNSPECIFIED", "active"),
        ("construction.firm", "bad_records_a", ["construction.bad_record"],
         "COUNT_WITHIN", 3, "SERIOUS", "count within 3 years, severity serious"),
        ("construction.firm", "bad_records_c", ["construction.bad_record"],
         "COUNT_WITHIN", 3, "MINOR", "count within 3 years, severity minor"),
        ("construction.firm", "tender_debarment_end", ["construction.tender_debarment"],
         "END_OF_RESTRICTION", 0, "UNSPECIFIED", "end of restriction"),
        ("procurement.supplier", "bribery_conviction_date", ["bribery_conviction"],
         "LATEST_DATE", 0, "UNSPECIFIED", "latest date"),
        ("procurement.supplier", "bad_conduct_records_3y",
         ["administrative_penalty", "administrative_penalty.safety"],
         "COUNT_WITHIN", 3, "UNSPECIFIED", "count within 3 years"),
    ],
)  # fmt: skip
def test_get_scorecard_says_which_indicators_come_from_records(
    server: ServerProcess,
    scorecard: str,
    indicator: str,
    kinds: list[str],
    measure: str,
    years: int,
    severity: str,
    text: str,
) -> None:
    """A derived indicator is never submitted: the scorecard says where its value comes
    from, so an evaluation's derived values can be checked by hand against the records it
    cites (docs/records.md, the table of the built-in cards)."""
    card = server.stub.GetScorecard(pb.GetScorecardRequest(name=scorecard)).scorecard
    found = {i.name: i for i in card.indicators}
    spec = found[indicator].from_records
    assert found[indicator].HasField("from_records")
    assert list(spec.kinds) == kinds
    assert scorecard_pb2.RecordMeasure.Name(spec.measure) == f"RECORD_MEASURE_{measure}"
    assert spec.years == years
    assert record_pb2.Severity.Name(spec.severity) == f"SEVERITY_{severity}"
    assert spec.text == text
    # a submitted indicator says nothing of records
    submitted = [i for i in card.indicators if not i.HasField("from_records")]
    assert submitted and all(not i.from_records.kinds for i in submitted)


def test_get_unknown_scorecard_is_not_found(server: ServerProcess) -> None:
    failure = fails(
        server.stub.GetScorecard, pb.GetScorecardRequest(name="scorecards/no.such_card")
    )
    assert failure.code is grpc.StatusCode.NOT_FOUND
    assert failure.reason == "SCORECARD_NOT_FOUND"
    assert failure.metadata == {"scorecard": "no.such_card"}

    failure = fails(
        server.stub.GetScorecard,
        pb.GetScorecardRequest(name="scorecards/transport.taxi_driver", version="1999.9"),
    )
    assert failure.code is grpc.StatusCode.NOT_FOUND and failure.reason == "SCORECARD_NOT_FOUND"


@pytest.mark.parametrize("name", ["", "scorecards/"])
def test_get_scorecard_without_a_name_is_invalid_argument(server: ServerProcess, name: str) -> None:
    failure = fails(server.stub.GetScorecard, pb.GetScorecardRequest(name=name))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == ["name"]


# --------------------------------------------------------------------------------------------
# Evaluate: SCORECARDS.md §3, the public golden cases, over the wire

ENVIRONMENT_5 = {
    "emission_compliance_min_pct": "85",
    "solid_waste_treated_pct": "97",
    "hazardous_waste_rating": "compliant",
    "noise_exceedance_db": "3",
    "siting_compliant": True,
    "administrative_penalties": 1,
    "risk_management_complete": True,
    "other_indicators_score": "90",
}
SOCIAL_ORG_6 = {
    "basic_conditions": "150",
    "internal_governance": "300",
    "work_performance": "290",
    "social_evaluation": "147",
}

# (example, scorecard, as_of, indicators) -> (score or None, grade, grades forced/capped by
# overrides that fired, until or None, points_to_next_grade or None)
WORKED_EXAMPLES = [
    (
        "1",
        "transport.taxi_driver",
        "2026-06-01",
        {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": "2"},
        "14",
        "AA",
        [],
        None,
        "6",
    ),
    (
        "2",
        "transport.taxi_driver",
        "2026-06-01",
        {"violations_20pt": 1, "bonus_points": "5"},
        "5",
        "B",
        ["B"],
        None,
        None,
    ),
    (
        "3",
        "transport.road_driver",
        "2026-06-01",
        {"category": "freight", "violations_3pt": 1, "violations_1pt": 1},
        "16",
        "AA",
        [],
        None,
        "4",
    ),
    # example 4 (construction.firm, its bad records read from credit records) is in
    # tests/test_records_cards.py, with the records it needs
    (
        "5",
        "environment.enterprise",
        "2026-06-01",
        ENVIRONMENT_5,
        "74.70",
        "YELLOW",
        [],
        None,
        "5.30",
    ),
    (
        "5 hidden discharge",
        "environment.enterprise",
        "2026-06-01",
        {**ENVIRONMENT_5, "hidden_discharge": True},
        "74.70",
        "RED",
        ["RED"],
        None,
        None,
    ),
    ("6", "social_org.evaluation", "2026-06-01", SOCIAL_ORG_6, "887", "4A", [], None, "13"),
    (
        "6 Anhui",
        "social_org.evaluation.anhui",
        "2026-06-01",
        SOCIAL_ORG_6,
        "887",
        "3A",
        [],
        None,
        "14",
    ),
    (
        "7",
        "civil_servant.recruitment",
        "2026-06-01",
        {"exam_misconduct": "forged_material", "exam_misconduct_date": (2024, 3, 10)},
        None,
        "BARRED",
        ["BARRED"],
        "2029-03-10",
        None,
    ),
    # example 8 (a ban that ran out) reads the ban from its record: tests/test_records_bans.py
]


def _date_text(d: Any) -> str | None:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else None


@pytest.mark.parametrize(
    ("example", "scorecard", "as_of", "indicators", "score", "grade", "forced", "until", "to_next"),
    WORKED_EXAMPLES,
    ids=[f"example {row[0]}" for row in WORKED_EXAMPLES],
)
def test_worked_example(
    server: ServerProcess,
    example: str,
    scorecard: str,
    as_of: str,
    indicators: dict[str, object],
    score: str | None,
    grade: str,
    forced: list[str],
    until: str | None,
    to_next: str | None,
) -> None:
    evaluation = server.stub.Evaluate(
        evaluate_request(scorecard, indicators, as_of=as_of)
    ).evaluation
    if score is None:
        assert evaluation.score == ""  # eligibility screening: no points, no score
    else:
        assert Decimal(evaluation.score) == Decimal(score)
        assert evaluation.score == f"{Decimal(score):.2f}"  # exact to 2 places, plain notation
    assert evaluation.grade.code == grade
    assert [o.grade for o in evaluation.overrides] == forced
    assert _date_text(evaluation.until) == until
    if to_next is None:
        assert not evaluation.HasField("points_to_next_grade")
    else:
        assert Decimal(evaluation.points_to_next_grade) == Decimal(to_next)
    assert evaluation.name.startswith("evaluations/") and evaluation.create_time.seconds > 0
    assert evaluation.scorecard_id == scorecard and _date_text(evaluation.as_of) == as_of
    assert evaluation.lines or score is None  # the explanation travels with the grade
    assert all(line.provenance.source for line in evaluation.lines)


def test_evaluate_without_as_of_speaks_for_today_in_the_server_time_zone(
    server: ServerProcess,
) -> None:
    tz = zoneinfo.ZoneInfo("Asia/Shanghai")
    before = dt.datetime.now(tz).date()
    evaluation = server.stub.Evaluate(
        evaluate_request("transport.taxi_driver", as_of=None)
    ).evaluation
    after = dt.datetime.now(tz).date()
    assert _date_text(evaluation.as_of) in {before.isoformat(), after.isoformat()}


def test_validate_only_returns_a_result_without_a_name_and_stores_nothing(
    server: ServerProcess,
) -> None:
    subject = new_person()
    request = taxi(subject_id=subject)
    request.validate_only = True
    evaluation = server.stub.Evaluate(request).evaluation
    assert evaluation.name == "" and not evaluation.HasField("create_time")
    assert evaluation.grade.code == "AA" and Decimal(evaluation.score) == 14
    listed = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", subject_id=subject)
    )
    assert list(listed.evaluations) == []

    # invalid input fails exactly as it would without validate_only
    bad = evaluate_request("transport.taxi_driver", {"violations_3pt": -1}, validate_only=True)
    failure = fails(server.stub.Evaluate, bad)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == ["indicators.violations_3pt"]


# (case, request) -> the fields of the violations, one per problem, in any order
BAD_INPUTS = [
    (
        "four problems at once",
        evaluate_request(
            "transport.taxi_driver",
            {"violations_3pt": -1, "bonus_points": "NaN", "no_such_indicator": 1},
            subject_id="123",
        ),
        {
            "subject.id",
            "indicators.violations_3pt",
            "indicators.bonus_points",
            "indicators.no_such_indicator",
        },
    ),
    (
        "out of range",
        evaluate_request("transport.taxi_driver", {"bonus_points": "10.01"}),
        {"indicators.bonus_points"},
    ),
    (
        "infinity",
        evaluate_request("transport.taxi_driver", {"bonus_points": "-Infinity"}),
        {"indicators.bonus_points"},
    ),
    (
        "not a number",
        evaluate_request("transport.taxi_driver", {"bonus_points": "2x"}),
        {"indicators.bonus_points"},
    ),
    (
        "exponent beyond any indicator",
        evaluate_request("transport.taxi_driver", {"bonus_points": "1e-999999999"}),
        {"indicators.bonus_points"},
    ),
    (
        "wrong type",
        evaluate_request("transport.taxi_driver", {"violations_3pt": True}),
        {"indicators.violations_3pt"},
    ),
    (
        "missing required",
        evaluate_request(
            "environment.enterprise",
            {
                k: v
                for k, v in ENVIRONMENT_5.items()
                if k not in ("other_indicators_score", "siting_compliant")
            },
        ),
        {"indicators.other_indicators_score", "indicators.siting_compliant"},
    ),
    (
        "choice outside its list",
        evaluate_request("transport.road_driver", {"category": "bus"}),
        {"indicators.category"},
    ),
    (
        "past date after as_of",
        evaluate_request("procurement.supplier", {"major_illegal_record_date": (2026, 7, 1)}),
        {"indicators.major_illegal_record_date"},
    ),
    (
        "required once a choice says so",
        evaluate_request("civil_servant.recruitment", {"exam_misconduct": "forged_material"}),
        {"indicators.exam_misconduct_date"},
    ),
    (
        "impossible date",
        evaluate_request("procurement.supplier", {"major_illegal_record_date": (2025, 2, 30)}),
        {"indicators.major_illegal_record_date"},
    ),
    ("impossible as_of", evaluate_request("transport.taxi_driver", as_of="2026-13-01"), {"as_of"}),
    (
        "wrong subject kind",
        evaluate_request("transport.taxi_driver", kind=ORGANIZATION, subject_id=ORG_IDS[0]),
        {"subject.kind"},
    ),
    (
        "bad check character",
        evaluate_request("construction.firm", subject_id="91350100M000100Y44"),
        {"subject.id"},
    ),
    ("no subject kind", pb.EvaluateRequest(scorecard="transport.taxi_driver"), {"subject.kind"}),
]


@pytest.mark.parametrize(("case", "request_", "fields"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_invalid_argument_with_one_violation_per_problem(
    server: ServerProcess, case: str, request_: pb.EvaluateRequest, fields: set[str]
) -> None:
    request_.subject.display_name = DISPLAY_NAME
    failure = fails(server.stub.Evaluate, request_)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(failure.fields) == sorted(fields)  # one violation per problem, each named
    assert all(description for _, description in failure.violations)
    assert failure.reason.startswith("INVALID_")


def test_evaluate_unknown_scorecard_is_not_found(server: ServerProcess) -> None:
    failure = fails(server.stub.Evaluate, evaluate_request("transport.bus_driver"))
    assert failure.code is grpc.StatusCode.NOT_FOUND
    assert (failure.reason, failure.metadata) == (
        "SCORECARD_NOT_FOUND",
        {"scorecard": "transport.bus_driver"},
    )


@pytest.mark.parametrize(
    ("scorecard", "version", "field", "description"),
    [
        (
            "transport.taxi_drver",
            "",
            "scorecard",
            "no scorecard 'transport.taxi_drver'; did you mean 'transport.taxi_driver' or"
            " 'transport.road_driver'?",
        ),
        (
            "construction.frim",
            "",
            "scorecard",
            "no scorecard 'construction.frim'; did you mean 'construction.firm'?",
        ),
        (
            "social_org.evaluaton",
            "",
            "scorecard",
            "no scorecard 'social_org.evaluaton'; did you mean "
            "'social_org.evaluation' or 'social_org.evaluation.anhui'?",
        ),
        ("no.such_card", "", "scorecard", "no scorecard 'no.such_card'"),  # nothing close
        (
            "transport.taxi_driver",
            "1999.9",
            "version",
            "no scorecard 'transport.taxi_driver' version '1999.9'; did you mean '2026.1'?",
        ),
    ],
)
def test_an_unknown_scorecard_names_the_field_and_the_closest_ids(
    server: ServerProcess, scorecard: str, version: str, field: str, description: str
) -> None:
    """SCORECARDS.md §1: NOT_FOUND (SCORECARD_NOT_FOUND) with a BadRequest naming the field, in
    every RPC that takes a scorecard, each naming the field as its request does."""
    request_ = evaluate_request(scorecard, subject_id=new_person())
    request_.version = version
    failure = fails(server.stub.Evaluate, request_)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "SCORECARD_NOT_FOUND")
    assert failure.violations == [(field, description)]
    assert failure.metadata == {"scorecard": scorecard}

    got = fails(
        server.stub.GetScorecard,
        pb.GetScorecardRequest(name="scorecards/" + scorecard, version=version),
    )
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "SCORECARD_NOT_FOUND")
    assert got.violations == [("name" if field == "scorecard" else field, description)]

    batch = server.stub.BatchEvaluate(
        pb.BatchEvaluateRequest(requests=[taxi(subject_id=new_person()), request_])
    )
    item = batch.results[1].error
    assert (item.code, item.reason) == (code_pb2.NOT_FOUND, "SCORECARD_NOT_FOUND")
    assert [(v.field, v.description) for v in item.field_violations] == [
        (f"requests[1].{field}", description)
    ]
    assert batch.results[0].evaluation.name  # the other item is stored

    (answer,) = server.stub.StreamEvaluate(
        iter([pb.StreamEvaluateRequest(correlation_id="x", request=request_)]), timeout=30
    )
    assert (answer.error.code, answer.error.reason) == (code_pb2.NOT_FOUND, "SCORECARD_NOT_FOUND")
    assert [(v.field, v.description) for v in answer.error.field_violations] == [
        (f"request.{field}", description)
    ]


def test_no_version_in_force_on_as_of_names_as_of(server: ServerProcess) -> None:
    request_ = evaluate_request(
        "transport.taxi_driver", as_of="2000-01-01", subject_id=new_person()
    )
    failure = fails(server.stub.Evaluate, request_)
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "SCORECARD_NOT_FOUND")
    assert failure.violations == [
        ("as_of", "no scorecard 'transport.taxi_driver' in force on 2000-01-01")
    ]


def test_a_retry_with_the_same_request_id_returns_the_stored_evaluation(
    server: ServerProcess,
) -> None:
    subject = new_person()
    first = server.stub.Evaluate(taxi("retry-1-" + subject, subject)).evaluation
    again = server.stub.Evaluate(taxi("retry-1-" + subject, subject)).evaluation
    assert again.name == first.name and again.create_time == first.create_time
    assert again.request_id == "retry-1-" + subject
    listed = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", subject_id=subject)
    )
    assert [e.name for e in listed.evaluations] == [first.name]  # stored once


def test_the_same_request_id_with_other_input_is_refused(server: ServerProcess) -> None:
    subject = new_person()
    first = server.stub.Evaluate(taxi("reuse-" + subject, subject)).evaluation
    other = taxi("reuse-" + subject, subject, violations_1pt=1)
    failure = fails(server.stub.Evaluate, other)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "REQUEST_ID_REUSED"
    assert failure.fields == ["request_id"]
    assert failure.metadata["evaluation"] == first.name


# --------------------------------------------------------------------------------------------
# BatchEvaluate, StreamEvaluate


def test_batch_answers_each_item_and_one_bad_item_fails_alone(server: ServerProcess) -> None:
    subject = new_person()
    stored_before = server.stub.Evaluate(taxi("batch-replay-" + subject, subject)).evaluation
    items = [
        taxi(subject_id=subject),
        evaluate_request("transport.taxi_driver", {"violations_3pt": -2}, subject_id=subject),
        evaluate_request("no.such_card", subject_id=subject),
        taxi("batch-replay-" + subject, subject),  # a retry: the stored evaluation comes back
        taxi("batch-replay-" + subject, subject, violations_1pt=3),  # reused for other input
        evaluate_request("transport.road_driver", {"category": "freight"}, subject_id=subject),
    ]
    results = server.stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=items), timeout=30).results
    assert [r.WhichOneof("result") for r in results] == [
        "evaluation",
        "error",
        "error",
        "evaluation",
        "error",
        "evaluation",
    ]
    assert results[0].evaluation.grade.code == "AA"
    assert results[5].evaluation.grade.code == "AAA"
    bad = results[1].error
    assert (bad.code, bad.reason) == (code_pb2.INVALID_ARGUMENT, "INVALID_INDICATORS")
    assert [v.field for v in bad.field_violations] == ["requests[1].indicators.violations_3pt"]
    assert (results[2].error.code, results[2].error.reason) == (
        code_pb2.NOT_FOUND,
        "SCORECARD_NOT_FOUND",
    )
    assert results[3].evaluation.name == stored_before.name
    assert (results[4].error.code, results[4].error.reason) == (
        code_pb2.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    assert [v.field for v in results[4].error.field_violations] == ["requests[4].request_id"]

    for r in (results[0], results[5]):  # stored: found by name
        got = server.stub.GetEvaluation(
            pb.GetEvaluationRequest(purpose="supervision", name=r.evaluation.name)
        ).evaluation
        assert got == r.evaluation
    listed = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", subject_id=subject)
    )
    assert len(listed.evaluations) == 3  # the retry's original, items 0 and 5


def test_stream_answers_every_correlation_id_once(server: ServerProcess) -> None:
    n, bad_at = 300, 57
    subject = new_person()

    def items() -> Iterator[pb.StreamEvaluateRequest]:
        for i in range(n):
            request = taxi(subject_id=subject, violations_1pt=i % 25)
            if i == bad_at:
                request.indicators["violations_1pt"].count_value = -1
            yield pb.StreamEvaluateRequest(correlation_id=f"item-{i}", request=request)

    answers = list(server.stub.StreamEvaluate(items(), timeout=60))
    by_id = {a.correlation_id: a for a in answers}
    assert len(answers) == n and set(by_id) == {f"item-{i}" for i in range(n)}
    error = by_id[f"item-{bad_at}"].error
    assert (error.code, error.reason) == (code_pb2.INVALID_ARGUMENT, "INVALID_INDICATORS")
    assert [v.field for v in error.field_violations] == ["request.indicators.violations_1pt"]
    good = [by_id[f"item-{i}"] for i in range(n) if i != bad_at]
    assert all(a.WhichOneof("result") == "evaluation" for a in good)
    assert len({a.evaluation.name for a in good}) == n - 1
    # each answer is the evaluation of the item it names: 20 - (i % 25), deductions floored at -20
    for i in range(n):
        if i != bad_at:
            assert Decimal(by_id[f"item-{i}"].evaluation.score) == 20 - min(20, i % 25), i
    listed = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", subject_id=subject, page_size=1000)
    )
    assert len(listed.evaluations) == n - 1


def test_an_item_with_a_nul_character_fails_alone(server: ServerProcess) -> None:
    """A NUL character (which PostgreSQL text cannot hold) is refused by validation on either
    database, naming the field; the other items are stored. (A row the database itself
    refuses fails alone too: tests/test_store.py.)"""
    subject = new_person()
    nul = taxi(subject_id=subject)
    nul.subject.display_name = "a\x00b"
    stream = [
        pb.StreamEvaluateRequest(
            correlation_id=str(i), request=nul if i == 1 else taxi(subject_id=subject)
        )
        for i in range(3)
    ]
    answers = {a.correlation_id: a for a in server.stub.StreamEvaluate(iter(stream), timeout=30)}
    batch = server.stub.BatchEvaluate(
        pb.BatchEvaluateRequest(requests=[r.request for r in stream])
    ).results
    for outcome, field in (
        (answers["1"], "request.subject.display_name"),
        (batch[1], "requests[1].subject.display_name"),
    ):
        assert outcome.error.code == code_pb2.INVALID_ARGUMENT
        assert [v.field for v in outcome.error.field_violations] == [field]
    assert (
        all(answers[c].evaluation.name for c in "02")
        and batch[0].evaluation.name
        and batch[2].evaluation.name
    )
    failure = fails(server.stub.Evaluate, nul)
    assert (failure.code, failure.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["subject.display_name"],
    )


# --------------------------------------------------------------------------------------------
# GetEvaluation, ListEvaluations


def test_get_evaluation_returns_what_evaluate_returned(server: ServerProcess) -> None:
    evaluation = server.stub.Evaluate(
        evaluate_request("environment.enterprise", ENVIRONMENT_5, request_id=new_person())
    ).evaluation
    got = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(purpose="supervision", name=evaluation.name)
    ).evaluation
    assert got == evaluation  # the whole explanation, as the audit store kept it


@pytest.mark.parametrize(
    ("name", "code"),
    [
        (
            "evaluations/01900000-0000-7000-8000-000000000000",
            grpc.StatusCode.NOT_FOUND,
        ),  # well formed
        ("evaluations/not-a-uuid", grpc.StatusCode.NOT_FOUND),  # an id this service never issued
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("evaluations/", grpc.StatusCode.INVALID_ARGUMENT),
        ("scorecards/transport.taxi_driver", grpc.StatusCode.INVALID_ARGUMENT),
        ("evaluations/a/b", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_get_evaluation_errors(server: ServerProcess, name: str, code: grpc.StatusCode) -> None:
    failure = fails(
        server.stub.GetEvaluation, pb.GetEvaluationRequest(purpose="supervision", name=name)
    )
    assert failure.code is code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert failure.fields == ["name"]
    else:
        assert failure.reason == "NOT_FOUND" and failure.metadata == {"name": name}


def test_list_evaluations_filters_and_pages_without_gaps_or_repeats(server: ServerProcess) -> None:
    alice, bob = new_person(), new_person()
    taxi_names = [
        server.stub.Evaluate(taxi(subject_id=alice, violations_1pt=i)).evaluation.name
        for i in range(7)
    ]
    road = [
        server.stub.Evaluate(
            evaluate_request("transport.road_driver", {"category": "freight"}, subject_id=alice)
        ).evaluation.name
        for _ in range(3)
    ]
    for _ in range(2):
        server.stub.Evaluate(taxi(subject_id=bob))

    def pages(**filters: Any) -> list[list[Any]]:
        out, token = [], ""
        while True:
            reply = server.stub.ListEvaluations(
                pb.ListEvaluationsRequest(
                    purpose="supervision", page_size=3, page_token=token, **filters
                )
            )
            out.append(list(reply.evaluations))
            token = reply.next_page_token
            if not token:
                return out

    # a lowercase check character and the resource name are accepted as filters
    alice_taxi = pages(subject_id=alice.lower(), scorecard="scorecards/transport.taxi_driver")
    assert [len(p) for p in alice_taxi] == [3, 3, 1]
    flat = [e for p in alice_taxi for e in p]
    assert [e.name for e in flat] == taxi_names[::-1]  # newest first, each once
    times = [(e.create_time.seconds, e.create_time.nanos) for e in flat]
    assert times == sorted(times, reverse=True)

    alice_all = [e.name for p in pages(subject_id=alice) for e in p]
    assert sorted(alice_all) == sorted(taxi_names + road) and len(set(alice_all)) == 10
    alice_road = [
        e.name for p in pages(subject_id=alice, scorecard="transport.road_driver") for e in p
    ]
    assert alice_road == road[::-1]
    assert {e.subject.id for p in pages(subject_id=bob) for e in p} == {bob}
    everything = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", page_size=1000)
    ).evaluations
    assert {e.subject.id for e in everything} >= {alice, bob}


def test_list_evaluations_bad_page_request_is_invalid_argument(server: ServerProcess) -> None:
    subject = new_person()
    for _ in range(2):
        server.stub.Evaluate(taxi(subject_id=subject))
    token = server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(purpose="supervision", subject_id=subject, page_size=1)
    ).next_page_token
    assert token

    for request in (
        pb.ListEvaluationsRequest(purpose="supervision", page_token="garbage!"),
        pb.ListEvaluationsRequest(
            purpose="supervision", page_token=token
        ),  # the token of another filter
        pb.ListEvaluationsRequest(
            purpose="supervision", subject_id=subject, page_token=token[:-4] + "AAAA"
        ),
    ):
        failure = fails(server.stub.ListEvaluations, request)
        assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
        assert failure.fields == ["page_token"]
    failure = fails(
        server.stub.ListEvaluations, pb.ListEvaluationsRequest(purpose="supervision", page_size=-5)
    )
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT and failure.fields == ["page_size"]


# --------------------------------------------------------------------------------------------
# Health, reflection


def test_health_is_serving_for_the_server_and_the_service(server: ServerProcess) -> None:
    assert server.health_status("") == SERVING
    assert server.health_status(SERVICE) == SERVING
    failure = fails(server.health.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert failure.code is grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services_and_describes_the_api(server: ServerProcess) -> None:
    from google.protobuf.descriptor_pool import DescriptorPool

    reflection_db = ProtoReflectionDescriptorDatabase(server.channel)
    assert set(reflection_db.get_services()) == {
        SERVICE,
        ACCESS_LOG,
        KEYS,
        RECORDS,
        HEALTH,
        REFLECTION,
    }
    service = DescriptorPool(reflection_db).FindServiceByName(SERVICE)
    assert sorted(m.name for m in service.methods) == [
        "BatchEvaluate",
        "Evaluate",
        "ExploreEvaluation",
        "GetEvaluation",
        "GetScorecard",
        "ListEvaluations",
        "ListScorecards",
        "StreamEvaluate",
    ]


def test_clients_that_hang_up_mid_stream_are_cancelled_calls_not_errors(
    server: ServerProcess,
) -> None:
    # A hang-up reaches a streaming handler in one of two ways, whichever gRPC sees first: its
    # task is cancelled (logged CANCELLED), or its request stream just ends, as on a half-close,
    # and it finishes (logged OK). gRPC does not tell the second from a real half-close, so
    # either code is right for any of these calls; an error is not.
    methods = ("ServerReflectionInfo", "StreamEvaluate")
    before = len([r for r in server.rpc_records() if r["method"] in methods])
    for _ in range(20):  # reflection clients keep their stream open until the channel closes
        with grpc.insecure_channel(server.address) as channel:
            ProtoReflectionDescriptorDatabase(channel).get_services()
    rid = f"hang-up-{next(_subjects)}"
    outbox: queue.Queue[pb.StreamEvaluateRequest | None] = queue.Queue()
    outbox.put(pb.StreamEvaluateRequest(correlation_id="1", request=taxi(subject_id=new_person())))
    answers = server.stub.StreamEvaluate(
        iter(outbox.get, None), timeout=30, metadata=[("x-request-id", rid)]
    )
    assert next(answers).correlation_id == "1"
    answers.cancel()  # type: ignore[attr-defined]

    def finished() -> list[dict[str, Any]]:
        """The lines of this test's calls, once all 21 are written (the log is append-only)."""
        ours = [r for r in server.rpc_records() if r["method"] in methods][before:]
        done = sum(r["method"] == "ServerReflectionInfo" for r in ours) >= 20 and any(
            r.get("call_id") == rid for r in ours
        )
        return ours if done else []

    records = wait_until(finished, timeout=30)  # generous: CI machines are shared and loaded
    assert {r["code"] for r in records} <= {"OK", "CANCELLED"}, records
    assert "unexpected error" not in server.log_text()


# --------------------------------------------------------------------------------------------
# The JSON log: one line per RPC, personal data masked (kept last: it reads the whole log)


def test_one_json_log_line_per_rpc(server: ServerProcess) -> None:
    rid_ok, rid_bad = f"log-ok-{next(_subjects)}", f"log-bad-{next(_subjects)}"
    server.stub.Evaluate(taxi(subject_id=new_person()), metadata=[("x-request-id", rid_ok)])
    fails(
        server.stub.Evaluate,
        evaluate_request("transport.taxi_driver", {"violations_1pt": -1}),
        metadata=[("x-request-id", rid_bad)],
    )

    def line(rid: str) -> dict[str, Any]:
        found = wait_until(lambda: [r for r in server.rpc_records() if r.get("call_id") == rid])
        assert len(found) == 1, found
        return found[0]

    ok = line(rid_ok)
    assert (ok["method"], ok["code"], ok["scorecard"], ok["grade"]) == (
        "Evaluate",
        "OK",
        "transport.taxi_driver",
        "AA",
    )
    assert isinstance(ok["duration_ms"], (int, float)) and ok["duration_ms"] >= 0
    assert ok["level"] == "info" and ok["timestamp"]
    bad = line(rid_bad)
    assert (bad["method"], bad["code"], bad["scorecard"]) == (
        "Evaluate",
        "INVALID_ARGUMENT",
        "transport.taxi_driver",
    )
    assert "grade" not in bad

    # every call of the module so far left exactly one line (a request id of its own)
    records = server.rpc_records()
    assert len({r["call_id"] for r in records}) == len(records)
    assert {r["method"] for r in records} >= {
        "ListScorecards",
        "GetScorecard",
        "Evaluate",
        "BatchEvaluate",
        "StreamEvaluate",
        "GetEvaluation",
        "ListEvaluations",
        "Check",
    }
    for r in records:
        assert {"call_id", "method", "code", "duration_ms"} <= set(r)


def test_no_subject_id_or_name_reaches_the_log_unmasked(server: ServerProcess) -> None:
    text = server.log_text()
    assert text
    used = [*PERSON_IDS, *ORG_IDS, *(resident_id(i) for i in range(100, next(_subjects)))]
    leaked = [s for s in used if s in text or s.lower() in text]
    assert leaked == []
    assert DISPLAY_NAME not in text
    assert "Traceback" not in text  # nothing in this module's calls was unexpected


# --------------------------------------------------------------------------------------------
# Limits and unexpected errors: a server with small limits and an injected engine fault

FAULT = "trigger-internal-error"
FAULTY_SERVER = f"""
import sys
from sector_credit.server.servicer import CreditEvaluationServicer

_evaluate = CreditEvaluationServicer._evaluate  # the servicer's one call into the engine

def evaluate(self, compiled, subject, indicators, as_of):
    if subject.display_name == {FAULT!r}:  # a bug the service did not expect
        raise RuntimeError("injected fault for subject " + subject.id)
    return _evaluate(self, compiled, subject, indicators, as_of)

CreditEvaluationServicer._evaluate = evaluate
from sector_credit.server.main import main
sys.exit(main())
"""


class _FaultyServer(ServerProcess):
    def command(self) -> list[str]:
        cmd = super().command()
        assert cmd[1:3] == ["-m", "sector_credit.server.main"]
        return [cmd[0], "-c", FAULTY_SERVER, *cmd[3:]]


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("limited")
    s = _FaultyServer(
        f"sqlite:///{tmp / 'audit.db'}",
        tmp / "server.log",
        "--batch-limit",
        "5",
        "--max-message-bytes",
        "65536",
    ).start()
    try:
        yield s
    finally:
        assert s.terminate() == 0


def test_a_batch_over_the_limit_is_resource_exhausted(limited_server: ServerProcess) -> None:
    five = pb.BatchEvaluateRequest(requests=[taxi() for _ in range(5)])
    assert len(limited_server.stub.BatchEvaluate(five).results) == 5
    six = pb.BatchEvaluateRequest(requests=[taxi() for _ in range(6)])
    failure = fails(limited_server.stub.BatchEvaluate, six)
    assert failure.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "BATCH_TOO_LARGE"
    assert failure.metadata == {"limit": "5", "items": "6"}
    assert failure.fields == ["requests"]


def test_an_oversize_message_is_resource_exhausted(limited_server: ServerProcess) -> None:
    request = taxi()
    request.subject.display_name = "x" * 70_000
    with pytest.raises(grpc.RpcError) as info:
        limited_server.stub.Evaluate(request, timeout=10)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    # the server is none the worse for it
    assert limited_server.stub.Evaluate(taxi(), timeout=10).evaluation.grade.code == "AA"


def test_an_unexpected_error_is_internal_with_a_reference_and_no_traceback(
    limited_server: ServerProcess,
) -> None:
    request = taxi(subject_id=PERSON_IDS[1])
    request.subject.display_name = FAULT
    failure = fails(limited_server.stub.Evaluate, request)
    assert failure.code is grpc.StatusCode.INTERNAL
    assert failure.reason == "INTERNAL"
    reference = failure.metadata["reference"]
    assert reference in failure.message
    assert "injected" not in failure.wire_text() and "RuntimeError" not in failure.wire_text()
    assert PERSON_IDS[1] not in failure.wire_text()

    # the operator finds the traceback under the reference, with the subject id masked
    (logged,) = wait_until(
        lambda: [
            r
            for r in limited_server.log_records()
            if r.get("event") == "unexpected error" and r.get("call_id") == reference
        ]
    )
    assert "RuntimeError: injected fault for subject 4405" in logged["exception"]
    assert PERSON_IDS[1] not in limited_server.log_text()

    batch = pb.BatchEvaluateRequest(requests=[taxi(), request])
    assert fails(limited_server.stub.BatchEvaluate, batch).code is grpc.StatusCode.INTERNAL
    stream = [pb.StreamEvaluateRequest(correlation_id="1", request=request)]
    with pytest.raises(grpc.RpcError) as info:
        list(limited_server.stub.StreamEvaluate(iter(stream), timeout=10))
    streamed = Failure(info.value)
    assert streamed.code is grpc.StatusCode.INTERNAL and "Traceback" not in streamed.wire_text()
    # and it still serves
    assert limited_server.stub.Evaluate(taxi(), timeout=10).evaluation.grade.code == "AA"


def test_a_date_near_the_end_of_the_calendar_is_not_an_internal_error(
    limited_server: ServerProcess,
) -> None:
    request = evaluate_request(
        "procurement.supplier", {"major_illegal_record_date": (9999, 12, 31)}, as_of="9999-12-31"
    )
    try:
        limited_server.stub.Evaluate(request, timeout=10)
    except grpc.RpcError as error:
        failure = Failure(error)
        assert "Traceback" not in failure.wire_text()
        assert failure.code is grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------------------------------------
# The database going away; start-up without one


def test_database_gone_is_unavailable_and_the_server_still_stops_cleanly(tmp_path: Path) -> None:
    with scratch_pg_database("gone") as url, running_server(url, tmp_path / "server.log") as s:
        stored = s.stub.Evaluate(taxi()).evaluation
        drop_pg_database(url)  # disconnects the server's connections, then the database is gone

        check = taxi()
        check.validate_only = True  # stores no evaluation, but its access record cannot be written
        for call, request in [
            (s.stub.Evaluate, taxi()),
            (s.stub.Evaluate, check),
            (
                s.stub.GetEvaluation,
                pb.GetEvaluationRequest(purpose="supervision", name=stored.name),
            ),
            (s.stub.ListEvaluations, pb.ListEvaluationsRequest(purpose="supervision")),
            (s.stub.BatchEvaluate, pb.BatchEvaluateRequest(requests=[taxi()])),
        ]:
            failure = fails(call, request)
            assert failure.code is grpc.StatusCode.UNAVAILABLE, failure.message
            assert failure.reason == "STORE_UNAVAILABLE"
        # a stream answers the item: its error is UNAVAILABLE, the stream itself ends OK
        (answer,) = s.stub.StreamEvaluate(
            iter([pb.StreamEvaluateRequest(correlation_id="1", request=taxi())]), timeout=30
        )
        assert (answer.correlation_id, answer.error.code, answer.error.reason) == (
            "1",
            grpc.StatusCode.UNAVAILABLE.value[0],
            "STORE_UNAVAILABLE",
        )

        # what needs no database and touches no subject still works
        assert len(s.stub.ListScorecards(pb.ListScorecardsRequest()).scorecards) == 9
        assert s.terminate() == 0
        assert "Traceback" not in s.log_text()


@pytest.mark.parametrize("flags", [(), ("--no-migrate",)], ids=["migrate", "no-migrate"])
def test_an_unreachable_database_at_start_up_exits_with_one_clear_line(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    url = "postgresql+psycopg://postgres:secret-password@127.0.0.1:1/nowhere"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            *flags,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 69  # EX_UNAVAILABLE
    assert "listening" not in done.stdout
    assert "Traceback" not in done.stderr
    assert "secret-password" not in done.stderr
    assert '"event": "the audit database is unavailable"' in done.stderr


# --------------------------------------------------------------------------------------------
# Graceful shutdown


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigterm_drains_an_in_flight_stream_and_exits_0(tmp_path: Path, kind: str) -> None:
    with database(kind, tmp_path, "drain") as url:
        s = ServerProcess(url, tmp_path / "server.log", "--grace-seconds", "20").start()
        try:
            watch = s.health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
            assert next(watch).status == SERVING

            outbox: queue.Queue[pb.StreamEvaluateRequest | None] = queue.Queue()
            answers = s.stub.StreamEvaluate(iter(outbox.get, None), timeout=60)

            def send(start: int, stop: int) -> None:
                for i in range(start, stop):
                    outbox.put(
                        pb.StreamEvaluateRequest(
                            correlation_id=str(i), request=taxi(subject_id=PERSON_IDS[2])
                        )
                    )

            send(0, 10)
            got = [next(answers) for _ in range(10)]

            s.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            assert next(watch).status == NOT_SERVING  # health says so while draining
            watch.cancel()

            # no new calls once draining (the in-flight stream goes on)
            def refused() -> bool:
                with grpc.insecure_channel(s.address) as channel:
                    try:
                        pb_grpc.CreditEvaluationServiceStub(channel).ListScorecards(
                            pb.ListScorecardsRequest(), timeout=5
                        )
                    except grpc.RpcError as error:
                        assert error.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
                        return True
                    return False

            wait_until(refused)

            send(10, 25)
            outbox.put(None)
            got += list(answers)  # the stream completes with OK
            assert sorted(int(a.correlation_id) for a in got) == list(range(25))
            assert all(a.WhichOneof("result") == "evaluation" for a in got)
            assert s.proc.wait(30) == 0  # type: ignore[union-attr]
        finally:
            s.kill()
        events = [r.get("event") for r in s.log_records()]
        assert "draining" in events and events[-1] == "stopped"

        # every answered evaluation was committed before its answer went out
        with running_server(url, tmp_path / "again.log") as again:
            for a in got:
                stored = again.stub.GetEvaluation(
                    pb.GetEvaluationRequest(purpose="supervision", name=a.evaluation.name)
                ).evaluation
                assert stored == a.evaluation


# --------------------------------------------------------------------------------------------
# The command line

FLAGS = [
    "--listen",
    "--database-url",
    "--metrics-port",
    "--metrics-host",
    "--batch-limit",
    "--timezone",
    "--block-plugin",
    "--scorecards",
    "--log-format",
    "--log-level",
    "--grace-seconds",
    "--max-message-bytes",
    "--max-concurrent-rpcs",
    "--no-migrate",
    "--workers",
    "--handshake-seconds",
    "--connection-idle-seconds",
    "--keepalive-seconds",
]


def test_help_lists_every_flag_with_its_environment_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sector_credit.server.main", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines
    for flag in FLAGS:
        assert flag in text
    for env in (
        "LISTEN",
        "DATABASE_URL",
        "METRICS_PORT",
        "BATCH_LIMIT",
        "GRACE_SECONDS",
        "MAX_MESSAGE_BYTES",
        "NO_MIGRATE",
    ):
        assert f"[SECTOR_CREDIT_{env}]" in text
    assert "serve" in text and "migrate" in text
