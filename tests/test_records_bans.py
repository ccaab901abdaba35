"""Bans a decision sets (issue 10): a record of a kind with ban bounds carries its
`restriction_end`, and the built-in cards read their ban end dates from such records
(procurement.supplier's `debarment_end`, construction.firm's `tender_debarment_end`), on a
real server process, SQLite and PostgreSQL. A supplier is refused until the day its ban ends,
the override citing the record; a revoked decision bars no more; a ban end out of its kind's
bounds, missing where the kind sets a ban, or given on a kind that sets none is
INVALID_ARGUMENT naming `record.restriction_end`, and nothing is stored."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sector_credit.v1 import records_service_pb2 as rpb
from service_harness import ServerProcess, date, evaluate_request, module_server_fixture
from test_records_service import PURPOSE, create, fresh_org, iso, record_message, refusal, stub

server = module_server_fixture()


def evaluate(server: ServerProcess, card: str, subject: str, as_of: str) -> Any:
    request = evaluate_request(card, {}, subject_id=subject, as_of=as_of)
    return server.stub.Evaluate(request, timeout=30).evaluation


# card, kind, decided, the ban's end, as_of, grade, fired overrides, until
BANS = [
    ("procurement.supplier", "procurement_debarment", "2025-03-01", "2027-03-01", "2026-06-01",
     "REFUSED", ["debarred"], "2027-03-01"),
    # the day before the end still refuses; on the day it ends, the supplier qualifies
    ("procurement.supplier", "procurement_debarment", "2025-03-01", "2027-03-01", "2027-02-28",
     "REFUSED", ["debarred"], "2027-03-01"),
    ("procurement.supplier", "procurement_debarment", "2025-03-01", "2027-03-01", "2027-03-01",
     "QUALIFIED", [], ""),
    # a ban of exactly the least (1 year) and the most (3 years) of its kind
    ("procurement.supplier", "procurement_debarment", "2025-03-01", "2026-03-01", "2025-09-01",
     "REFUSED", ["debarred"], "2026-03-01"),
    ("procurement.supplier", "procurement_debarment", "2025-03-01", "2028-03-01", "2027-09-01",
     "REFUSED", ["debarred"], "2028-03-01"),
    ("construction.firm", "construction.tender_debarment", "2025-06-30", "2026-06-30",
     "2026-01-01", "EXCLUDED", ["tender_debarment"], "2026-06-30"),
    ("construction.firm", "construction.tender_debarment", "2025-06-30", "2026-06-30",
     "2026-06-30", "B", [], ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("card", "kind", "decided", "end", "as_of", "grade", "fired", "until"), BANS
)
def test_a_ban_refuses_until_the_day_its_record_says_and_the_override_cites_it(
    server: ServerProcess,
    card: str,
    kind: str,
    decided: str,
    end: str,
    as_of: str,
    grade: str,
    fired: list[str],
    until: str,
) -> None:
    subject = fresh_org()
    made = create(server, kind=kind, decided=decided, subject=subject, restriction_end=end)
    assert iso(made.restriction_end) == end
    ev = evaluate(server, card, subject, as_of)
    assert (ev.grade.code, [o.override_id for o in ev.overrides], iso(ev.until)) == (
        grade,
        fired,
        until,
    )
    assert [list(o.records) for o in ev.overrides] == [[made.name] for _ in fired]


def test_scorecards_example_8_a_ban_that_ran_out_no_longer_bars_its_record(
    server: ServerProcess,
) -> None:
    subject = fresh_org()
    create(
        server,
        kind="procurement_debarment",
        decided="2023-03-01",
        subject=subject,
        restriction_end="2024-03-01",
    )
    request = evaluate_request(
        "procurement.supplier",
        {"major_illegal_record_date": (2023, 3, 1)},
        subject_id=subject,
        as_of="2025-06-01",
    )
    ev = server.stub.Evaluate(request, timeout=30).evaluation
    assert (ev.score, ev.grade.code, list(ev.overrides)) == ("0.00", "QUALIFIED", [])
    # without the ban's record the same major record refuses until its 3rd anniversary
    request.subject.id = fresh_org()
    other = server.stub.Evaluate(request, timeout=30).evaluation
    assert (other.grade.code, iso(other.until)) == ("REFUSED", "2026-03-01")


def test_a_revoked_ban_no_longer_refuses(server: ServerProcess) -> None:
    subject = fresh_org()
    made = create(
        server,
        kind="procurement_debarment",
        decided="2025-03-01",
        subject=subject,
        restriction_end="2027-03-01",
    )
    stub(server).RevokeRecord(
        rpb.RevokeRecordRequest(
            name=made.name, action_date=date("2025-09-01"), reason="行政复议决定撤销"
        ),
        timeout=30,
    )
    assert evaluate(server, "procurement.supplier", subject, "2025-08-31").grade.code == "REFUSED"
    after = evaluate(server, "procurement.supplier", subject, "2026-06-01")
    assert (after.grade.code, list(after.overrides)) == ("QUALIFIED", [])


def test_the_kinds_that_set_a_ban_say_its_bounds(server: ServerProcess) -> None:
    kinds = {
        k.name: (k.ban_minimum_months, k.ban_maximum_months)
        for k in stub(server).ListRecordKinds(rpb.ListRecordKindsRequest(), timeout=30).kinds
    }
    assert kinds["procurement_debarment"] == (12, 36)
    assert kinds["construction.tender_debarment"] == (12, 36)
    assert kinds["administrative_penalty"] == (0, 0)


# kind, decided, the ban's end ("" for none): each refused naming record.restriction_end
BAD_BANS = [
    ("procurement_debarment", "2025-03-01", "2026-02-28"),  # a day short of the least year
    ("procurement_debarment", "2025-03-01", "2028-03-02"),  # a day past the most 3 years
    ("procurement_debarment", "2025-03-01", "2025-01-01"),  # before the decision
    ("procurement_debarment", "2025-03-01", ""),  # a ban decision without its end
    ("construction.tender_debarment", "2025-03-01", "2029-01-01"),
    ("administrative_penalty", "2025-03-01", "2026-03-01"),  # a kind that sets no ban
    ("licence_revoked", "2025-03-01", "2028-03-01"),  # its bar is fixed by law, not given
]


@pytest.mark.parametrize(("kind", "decided", "end"), BAD_BANS)
def test_a_bad_ban_end_is_refused_naming_the_field_and_nothing_is_stored(
    server: ServerProcess, kind: str, decided: str, end: str
) -> None:
    subject = fresh_org()
    record = record_message(kind=kind, decided=decided, subject=subject, restriction_end=end)
    code, fields = refusal(stub(server).CreateRecord, rpb.CreateRecordRequest(record=record))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["record.restriction_end"])
    listed = stub(server).ListRecords(
        rpb.ListRecordsRequest(subject_id=subject, **PURPOSE), timeout=30
    )
    assert list(listed.records) == []
