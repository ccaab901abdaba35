"""The built-in scorecards read their list and record indicators from the credit records
(issue 10 item 3), on a real server process, SQLite and PostgreSQL: each line and override
that used a record cites it by name (`records/{id}`), with its basis in `record_evidence`,
for each kind of measure (active, count within N years, latest date, end of restriction);
the stored evaluation keeps the citations, and a later repair does not rewrite them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import records_service_pb2 as rpb
from service_harness import (
    ServerProcess,
    date,
    evaluate_request,
    module_server_fixture,
    resident_id,
)
from test_records_service import fresh_org, stub

CARDS = str(Path(__file__).parent / "records_cards")  # test.records_person: end of restriction
server = module_server_fixture("--scorecards", CARDS)
_people = itertools.count(7000)

SEVERITY = {
    "serious": record_pb2.SEVERITY_SERIOUS,
    "general": record_pb2.SEVERITY_GENERAL,
    "minor": record_pb2.SEVERITY_MINOR,
}
PERSON = common_pb2.SUBJECT_KIND_PERSON
ORG = common_pb2.SUBJECT_KIND_ORGANIZATION


def add(
    server: ServerProcess,
    kind: str,
    decided: str,
    subject: str,
    *,
    severity: str = "general",
    person: bool = False,
    linked: str = "",
    document: str = "沪罚〔2025〕1号",
) -> record_pb2.Record:
    """One record created through the RecordService: about `subject` (a person when
    `person`), linking `linked` as legal representative when given."""
    record = record_pb2.Record(
        kind=kind,
        authority="上海市信用主管部门",
        decision_date=date(decided),
        severity=SEVERITY[severity],
        basis=record_pb2.RecordBasis(regulation="《测试依据》", document_number=document),
        linked_persons=[
            record_pb2.LinkedPerson(id=linked, role=record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE)
        ]
        if linked
        else [],
    )
    record.subject.kind = PERSON if person else ORG
    record.subject.id = subject
    reply = stub(server).CreateRecord(rpb.CreateRecordRequest(record=record), timeout=30)
    return reply.record


def cites(evaluation: object, part: str) -> list[str]:
    """The records the line (rule id) or fired override (override id) `part` cites."""
    for line in evaluation.lines:  # type: ignore[attr-defined]
        if line.rule_id == part:
            return list(line.records)
    for o in evaluation.overrides:  # type: ignore[attr-defined]
        if o.override_id == part:
            return list(o.records)
    raise AssertionError(f"{part} is neither a line nor a fired override")


# card, a person?, the records (kind, severity, decided; "+" marks those `part` must cite),
# other indicators, as_of, the line or override, its points ("" for an override), the grade
CITED = [
    pytest.param(  # count within 3 years, one severity: the A line cites the two serious ones
        "construction.firm",
        False,
        [("+construction.bad_record", "serious", "2025-03-01"),
         ("+construction.bad_record", "serious", "2025-09-01"),
         ("construction.bad_record", "minor", "2025-10-01")],
        {},
        "2026-01-01",
        "bad_records_a",
        "-20.00",
        "C",
        id="count within, by severity",
    ),
    pytest.param(  # SCORECARDS.md §3 example 4: 60 + 14 − 6 = 68, B
        "construction.firm",
        False,
        [("construction.bad_record", "general", "2026-01-10"),
         ("+construction.bad_record", "minor", "2026-02-01")],
        {"qualification_staff_points": "5", "contract_performance_points": "8",
         "decoration_awards": 2},
        "2026-06-01",
        "bad_records_c",
        "-1.00",
        "B",
        id="worked example 4",
    ),
    pytest.param(  # count within 3 years over two kinds; one past its 3 years is not cited
        "procurement.supplier",
        False,
        [("+administrative_penalty", "general", "2025-01-10"),
         ("+administrative_penalty.safety", "general", "2025-11-01"),
         ("administrative_penalty", "general", "2023-05-31")],
        {},
        "2026-06-01",
        "bad_conduct_records",
        "-2.00",
        "QUALIFIED",
        id="count within, two kinds",
    ),
    pytest.param(  # latest date: the refusal runs from the later conviction, which is cited
        "procurement.supplier",
        False,
        [("bribery_conviction", "serious", "2024-01-15"),
         ("+bribery_conviction", "serious", "2025-02-20")],
        {},
        "2026-06-01",
        "bribery_conviction",
        "",
        "REFUSED",
        id="latest date",
    ),
    pytest.param(  # active, a person: the joint-punishment bar
        "civil_servant.recruitment",
        True,
        [("+joint_punishment", "serious", "2025-09-01")],
        {},
        "2026-06-01",
        "on_joint_punishment_list",
        "",
        "BARRED",
        id="active, a person",
    ),
    pytest.param(  # active, an organization
        "social_org.evaluation",
        False,
        [("+social_org.abnormal", "general", "2026-03-01")],
        {"basic_conditions": "150", "internal_governance": "350", "work_performance": "350",
         "social_evaluation": "150"},
        "2026-06-01",
        "on_abnormal_activity_list",
        "",
        "NOT_EVALUATED",
        id="active, an organization",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("card", "person", "records", "values", "as_of", "part", "points", "grade"), CITED
)
def test_a_line_or_override_cites_the_records_it_read(
    server: ServerProcess,
    card: str,
    person: bool,
    records: list[tuple[str, str, str]],
    values: dict[str, object],
    as_of: str,
    part: str,
    points: str,
    grade: str,
) -> None:
    subject = resident_id(next(_people)) if person else fresh_org()
    made = [
        (k.startswith("+"), add(server, k.lstrip("+"), d, subject, severity=s, person=person))
        for k, s, d in records
    ]
    wanted = sorted(r.name for cited, r in made if cited)
    kind = PERSON if person else None
    request = evaluate_request(card, values, subject_id=subject, as_of=as_of, kind=kind)
    ev = server.stub.Evaluate(request, timeout=30).evaluation
    assert ev.grade.code == grade
    assert sorted(cites(ev, part)) == wanted  # each once
    if points:
        assert next(x.points for x in ev.lines if x.rule_id == part) == points
    evidence = {e.record: e for e in ev.record_evidence}
    assert all(evidence[name].basis == "《测试依据》 沪罚〔2025〕1号" for name in wanted)
    # the stored evaluation gives the same citations back
    stored = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(name=ev.name, purpose="supervision"), timeout=30
    ).evaluation
    assert cites(stored, part) == cites(ev, part)
    assert list(stored.record_evidence) == list(ev.record_evidence)


def test_end_of_restriction_cites_the_firms_record_and_a_repair_rewrites_nothing(
    server: ServerProcess,
) -> None:
    person = resident_id(next(_people))
    firm = add(server, "licence_revoked", "2025-03-01", fresh_org(), linked=person)
    ev = server.stub.Evaluate(
        evaluate_request(
            "test.records_person", {}, subject_id=person, as_of="2026-06-01", kind=PERSON
        ),
        timeout=30,
    ).evaluation
    (fired,) = ev.overrides
    assert ev.grade.code == "BARRED" and list(fired.records) == [firm.name]

    subject = fresh_org()
    listed = add(server, "dishonest_debtor", "2026-01-05", subject)
    before = server.stub.Evaluate(
        evaluate_request("procurement.supplier", {}, subject_id=subject, as_of="2026-07-01"),
        timeout=30,
    ).evaluation
    assert cites(before, "on_dishonest_debtor_list") == [listed.name]
    stub(server).RepairRecord(
        rpb.RepairRecordRequest(
            name=listed.name, action_date=date("2026-07-02"), proof=["court:paid"], reason="已履行"
        ),
        timeout=30,
    )
    after = server.stub.Evaluate(
        evaluate_request("procurement.supplier", {}, subject_id=subject, as_of="2026-07-03"),
        timeout=30,
    ).evaluation
    assert after.grade.code == "QUALIFIED" and not after.overrides
    stored = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(name=before.name, purpose="supervision"), timeout=30
    ).evaluation
    assert cites(stored, "on_dishonest_debtor_list") == [listed.name]
    assert [e.state for e in stored.record_evidence] == ["ACTIVE"]  # as it was then


def test_a_line_without_records_cites_none(server: ServerProcess) -> None:
    ev = server.stub.Evaluate(
        evaluate_request(
            "construction.firm",
            {"qualification_staff_points": "5"},
            subject_id=fresh_org(),
            as_of="2026-06-01",
        ),
        timeout=30,
    ).evaluation
    assert (ev.score, ev.grade.code) == ("65.00", "B")
    assert all(not line.records for line in ev.lines) and not ev.record_evidence
