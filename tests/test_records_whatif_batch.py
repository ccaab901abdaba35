"""Record-derived indicators in what-if and in batches (issue 10): a real server process on
SQLite and on PostgreSQL with the test cards of tests/records_cards/.

- ExploreEvaluation on an input fills the derived indicators from the records as of the
  explored as_of, exactly as Evaluate does, cites the records it read (record_evidence),
  and refuses a submitted value for a derived indicator, naming it under `evaluation.`.
- BatchEvaluate reads the records of all its subjects before scoring (one query, not one
  per item): each item comes out as the same request alone through Evaluate, whether its
  records are its own, reach a person through a firm, or it has none, and items of cards
  without records beside them.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import record_pb2
from service_harness import (
    PERSON,
    ServerProcess,
    evaluate_request,
    module_server_fixture,
    resident_id,
    taxi,
)
from test_records_service import create, fresh_org, refusal

CARDS = str(Path(__file__).parent / "records_cards")
server = module_server_fixture("--scorecards", CARDS)
SUPPLIER = "test.records_supplier"


def explore(
    server: ServerProcess, subject: str, as_of: str, **indicators: object
) -> pb.ExploreEvaluationResponse:
    request = pb.ExploreEvaluationRequest(
        evaluation=evaluate_request(SUPPLIER, indicators, subject_id=subject, as_of=as_of)
    )
    return server.stub.ExploreEvaluation(request, timeout=30)


# as_of, the penalties counted then (by decision date), the score
EXPLORED = [
    ("2026-06-01", ["2025-01-10", "2023-07-01"], "-2.00"),
    ("2025-01-01", ["2023-07-01"], "-1.00"),  # the 2025 penalty did not exist yet
    ("2023-06-01", [], "0.00"),
]


@pytest.mark.parametrize(("as_of", "counted", "score"), EXPLORED)
def test_what_if_fills_derived_indicators_as_of_the_explored_date(
    server: ServerProcess, as_of: str, counted: list[str], score: str
) -> None:
    subject = fresh_org()
    made = {
        d: create(server, kind="administrative_penalty", decided=d, subject=subject).name
        for d in ("2025-01-10", "2023-07-01")
    }
    explored = explore(server, subject, as_of).evaluation
    alone = server.stub.Evaluate(
        evaluate_request(SUPPLIER, {}, subject_id=subject, as_of=as_of), timeout=30
    ).evaluation
    assert explored.score == alone.score == score
    assert explored.indicators["bad_records_3y"].count_value == len(counted)
    assert sorted(x.record for x in explored.record_evidence) == sorted(made[d] for d in counted)
    assert explored.name == ""  # nothing stored


def test_what_if_refuses_a_submitted_derived_value_naming_it(server: ServerProcess) -> None:
    request = pb.ExploreEvaluationRequest(
        evaluation=evaluate_request(SUPPLIER, {"bad_records_3y": 0}, subject_id=fresh_org())
    )
    assert refusal(server.stub.ExploreEvaluation, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["evaluation.indicators.bad_records_3y"],
    )


def test_a_batch_reads_each_subject_s_records_as_a_single_evaluate_does(
    server: ServerProcess,
) -> None:
    listed, penalised, clean = fresh_org(), fresh_org(), fresh_org()
    create(server, kind="dishonest_debtor", decided="2026-01-05", subject=listed)
    for d in ("2025-01-10", "2024-02-01"):
        create(server, kind="administrative_penalty", decided=d, subject=penalised)
    person = resident_id(921)
    create(
        server,
        kind="licence_revoked",
        decided="2025-03-01",
        subject=fresh_org(),
        linked=((person, record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE),),
    )
    items = [
        evaluate_request(SUPPLIER, {}, subject_id=s, as_of="2026-06-01")
        for s in (listed, penalised, clean, penalised)
    ]
    items.append(
        evaluate_request(
            "test.records_person", {}, subject_id=person, as_of="2026-06-01", kind=PERSON
        )
    )
    items.append(taxi(subject_id=resident_id(922)))
    batch = server.stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=items), timeout=60)
    got = [
        (r.evaluation.grade.code, r.evaluation.score, len(r.evaluation.record_evidence))
        for r in batch.results
    ]
    alone = []
    for item in items:
        e = server.stub.Evaluate(item, timeout=30).evaluation
        alone.append((e.grade.code, e.score, len(e.record_evidence)))
    assert got == alone
    assert [g for g, _, _ in got[:5]] == [
        "REFUSED",
        "QUALIFIED",
        "QUALIFIED",
        "QUALIFIED",
        "BARRED",
    ]
    assert [s for _, s, _ in got[:4]] == ["0.00", "-2.00", "0.00", "-2.00"]
