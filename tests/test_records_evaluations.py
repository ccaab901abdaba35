"""Evaluations read the credit records (issue 10 item 3), on a real server process, SQLite
and PostgreSQL: indicators declared `from_records` are filled by the server as of as_of, a
submitted value for one is refused naming it, the 3-year legal-representative bar reaches a
person through a firm's record, and a repair changes the next grade while the evaluation
stored before it still shows the record as it was.

The cards are test cards (tests/records_cards/); the built-in cards' derived indicators are in
tests/test_records_cards.py."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import records_service_pb2 as rpb
from service_harness import PERSON, ServerProcess, date, evaluate_request, module_server_fixture
from test_records_service import create, fresh_org, refusal, stub

CARDS = str(Path(__file__).parent / "records_cards")
server = module_server_fixture("--scorecards", CARDS)


def evaluate(
    server: ServerProcess,
    card: str,
    subject: str,
    as_of: str,
    kind: int | None = None,
    **indicators: object,
) -> pb.EvaluateResponse:
    return server.stub.Evaluate(
        evaluate_request(card, indicators, subject_id=subject, as_of=as_of, kind=kind), timeout=30
    )


def evidence(e: object) -> list[tuple[str, str, str]]:
    evidence = e.record_evidence  # type: ignore[attr-defined]
    return [(x.indicator, x.record, x.state) for x in evidence]


# as_of, the records (kind, decision date), grade, score: counted by the server
SUPPLIER = [
    ("2026-06-01", [], "QUALIFIED", "0.00"),
    (
        "2026-06-01",
        [("administrative_penalty", "2025-01-10"), ("administrative_penalty", "2023-07-01")],
        "QUALIFIED",
        "-2.00",
    ),
    # a penalty more than 3 years before as_of is outside the window (and expired)
    ("2026-06-01", [("administrative_penalty", "2023-05-31")], "QUALIFIED", "0.00"),
    ("2026-06-01", [("dishonest_debtor", "2025-12-01")], "REFUSED", "0.00"),
    # a dishonest-debtor entry expires after 2 years: no longer refused
    ("2026-06-01", [("dishonest_debtor", "2024-05-01")], "QUALIFIED", "0.00"),
    # a record decided after as_of does not exist yet on as_of
    ("2025-06-01", [("dishonest_debtor", "2025-12-01")], "QUALIFIED", "0.00"),
]


@pytest.mark.parametrize(("as_of", "records", "grade", "score"), SUPPLIER)
def test_the_server_fills_indicators_from_records(
    server: ServerProcess, as_of: str, records: list[tuple[str, str]], grade: str, score: str
) -> None:
    subject = fresh_org()
    made = [create(server, kind=k, decided=d, subject=subject) for k, d in records]
    ev = evaluate(server, "test.records_supplier", subject, as_of).evaluation
    assert (ev.grade.code, ev.score) == (grade, score)
    cited = {x.record for x in ev.record_evidence}
    assert cited <= {r.name for r in made}


def test_a_submitted_value_for_a_derived_indicator_is_refused(server: ServerProcess) -> None:
    request = evaluate_request(
        "test.records_supplier",
        {"bad_records_3y": 0, "on_dishonest_debtor_list": False},
        subject_id=fresh_org(),
    )
    code, fields = refusal(server.stub.Evaluate, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == ["indicators.bad_records_3y", "indicators.on_dishonest_debtor_list"]


@pytest.mark.parametrize(
    ("indicators", "subject", "fields"),
    [
        # the derived value and a date after as_of on a submitted indicator (past = true)
        (
            {"on_dishonest_debtor_list": False, "major_illegal_record_date": (2030, 1, 1)},
            None,
            ["indicators.major_illegal_record_date", "indicators.on_dishonest_debtor_list"],
        ),
        # two derived values, an unknown indicator and a subject id that is not a USCC
        (
            {"bad_conduct_records_3y": 1, "debarment_end": (2020, 1, 1), "no_such": 1},
            "not-an-uscc",
            [
                "indicators.bad_conduct_records_3y",
                "indicators.debarment_end",
                "indicators.no_such",
                "subject.id",
            ],
        ),
        # nothing else wrong: the derived value alone
        ({"on_major_tax_violation_list": True}, None, ["indicators.on_major_tax_violation_list"]),
    ],
)
def test_a_submitted_derived_value_is_refused_with_every_other_problem(
    server: ServerProcess, indicators: dict[str, object], subject: str | None, fields: list[str]
) -> None:
    """Bad input names each offending field: a derived value sent by mistake does not hide
    the request's other problems (one refusal, not one per round trip)."""
    request = evaluate_request(
        "procurement.supplier", indicators, subject_id=subject or fresh_org(), as_of="2026-06-01"
    )
    code, found = refusal(server.stub.Evaluate, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(found) == fields


def test_the_legal_representative_bar_reaches_the_person_through_the_firm(
    server: ServerProcess,
) -> None:
    person = "11010119900307803X"
    firm = create(
        server,
        kind="licence_revoked",
        decided="2025-03-01",
        subject=fresh_org(),
        linked=((person, record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE),),
    )
    barred = evaluate(server, "test.records_person", person, "2026-06-01", kind=PERSON).evaluation
    assert barred.grade.code == "BARRED"
    assert (barred.until.year, barred.until.month, barred.until.day) == (2028, 3, 1)
    assert evidence(barred) == [("barred_until", firm.name, "ACTIVE")]
    free = evaluate(server, "test.records_person", person, "2028-03-01", kind=PERSON).evaluation
    assert free.grade.code == "ELIGIBLE" and evidence(free) == []
    # a principal of the same firm is not barred by the legal-representative rule
    other = "440524188001010014"
    create(
        server,
        kind="licence_revoked",
        decided="2025-03-01",
        subject=fresh_org(),
        linked=((other, record_pb2.LINK_ROLE_PRINCIPAL),),
    )
    assert (
        evaluate(
            server, "test.records_person", other, "2026-06-01", kind=PERSON
        ).evaluation.grade.code
        == "ELIGIBLE"
    )


def test_a_repair_changes_the_grade_and_the_earlier_evaluation_keeps_its_record(
    server: ServerProcess,
) -> None:
    subject = fresh_org()
    listed = create(server, kind="dishonest_debtor", decided="2026-01-05", subject=subject)
    before = evaluate(server, "test.records_supplier", subject, "2026-07-01").evaluation
    assert before.grade.code == "REFUSED"
    assert evidence(before) == [("on_dishonest_debtor_list", listed.name, "ACTIVE")]
    assert before.record_evidence[0].basis == "《行政处罚法》 第28条 沪市监罚〔2026〕1号"
    stub(server).RepairRecord(
        rpb.RepairRecordRequest(
            name=listed.name,
            action_date=date("2026-07-02"),
            proof=["court:performed-in-full"],
            reason="已履行",
        ),
        timeout=30,
    )
    after = evaluate(server, "test.records_supplier", subject, "2026-07-03").evaluation
    assert after.grade.code == "QUALIFIED" and evidence(after) == []
    # the evaluation stored before the repair still explains itself with the record as it was
    stored = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(name=before.name, purpose="supervision"), timeout=30
    ).evaluation
    assert stored.grade.code == "REFUSED"
    assert evidence(stored) == [("on_dishonest_debtor_list", listed.name, "ACTIVE")]
    # and an evaluation as of the earlier date still finds it (replayed to then)
    again = evaluate(server, "test.records_supplier", subject, "2026-07-01").evaluation
    assert again.grade.code == "REFUSED"


def test_validate_only_reads_the_records_too(server: ServerProcess) -> None:
    subject = fresh_org()
    create(server, kind="dishonest_debtor", decided="2026-01-05", subject=subject)
    request = evaluate_request(
        "test.records_supplier", subject_id=subject, as_of="2026-07-01", validate_only=True
    )
    reply = server.stub.Evaluate(request, timeout=30).evaluation
    assert reply.grade.code == "REFUSED" and len(reply.record_evidence) == 1
    assert reply.subject.kind == common_pb2.SUBJECT_KIND_ORGANIZATION


def test_golden_cases_carry_records_and_can_fail(tmp_path: Path) -> None:
    """The golden format: a case may give the records its subject has; the runner derives the
    indicators from them as the server does (scorecard-test)."""
    import subprocess
    import sys

    def golden(path: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sector_credit.scorecards.golden", path],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    passing = golden(CARDS)
    assert passing.returncode == 0 and "8 passed, 0 failed" in passing.stdout, passing.stdout
    card = (Path(CARDS) / "test.records_supplier.toml").read_text(encoding="utf-8")
    wrong = card.replace('score = "-2" }', 'score = "-3" }')
    assert wrong != card
    (tmp_path / "test.records_supplier.toml").write_text(wrong, encoding="utf-8")
    failing = golden(str(tmp_path))
    assert failing.returncode == 1 and "two penalties within 3 years" in failing.stdout


# record kind on the subject, grade and fired override of the built-in procurement.supplier card
PROCUREMENT = [
    (None, "QUALIFIED", []),
    ("dishonest_debtor", "REFUSED", ["on_dishonest_debtor_list"]),
    ("major_tax_violation", "REFUSED", ["on_major_tax_violation_list"]),
    ("procurement_dishonesty", "REFUSED", ["on_procurement_serious_dishonesty_list"]),
]


@pytest.mark.parametrize(("kind", "grade", "fired"), PROCUREMENT)
def test_the_procurement_card_reads_the_125_lists_from_records(
    server: ServerProcess, kind: str | None, grade: str, fired: list[str]
) -> None:
    subject = fresh_org()
    made = [create(server, kind=kind, decided="2026-01-05", subject=subject)] if kind else []
    ev = evaluate(server, "procurement.supplier", subject, "2026-07-01").evaluation
    assert (ev.grade.code, [o.override_id for o in ev.overrides]) == (grade, fired)
    assert [x.record for x in ev.record_evidence] == [r.name for r in made]
    code, fields = refusal(
        server.stub.Evaluate,
        evaluate_request(
            "procurement.supplier", {"on_dishonest_debtor_list": False}, subject_id=subject
        ),
    )
    assert (code, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["indicators.on_dishonest_debtor_list"],
    )
