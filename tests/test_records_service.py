"""Credit records end to end (issue 10 items 1 and 2): a real server process on SQLite and on
PostgreSQL, each lifecycle walked through RecordService, the working-day limits across the
2026 National Day and Spring Festival holidays and their adjusted working days, expiry as of
a later date, the bad input of the issue (each refused, the field named, nothing changed),
two concurrent decisions (one wins), and the access records every call leaves.

Action dates are given explicitly (the day of the officer's document), so a lifecycle of
2026 is walked today as it happened then.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sector_credit.scorecards.subject_ids import uscc_problem
from sector_credit.v1 import access_log_service_pb2 as apb
from sector_credit.v1 import access_log_service_pb2_grpc as apb_grpc
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as rpb
from sector_credit.v1 import records_service_pb2_grpc as rpb_grpc
from service_harness import ORG_IDS, PERSON_IDS, ServerProcess, date, module_server_fixture

server = module_server_fixture()

PURPOSE = {"purpose": "supervision"}
_subjects = itertools.count()


def stub(server: ServerProcess) -> rpb_grpc.RecordServiceStub:
    return rpb_grpc.RecordServiceStub(server.channel)


def fresh_org() -> str:
    """A valid unified social credit code no other test of the module uses."""
    body = f"9131000013{next(_subjects):06d}0"
    return next(
        body + c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if uscc_problem(body + c) is None
    )


def record_message(
    *,
    kind: str = "administrative_penalty",
    decided: str = "2026-09-01",
    subject: str | None = None,
    linked: tuple[tuple[str, int], ...] = (),
    restriction_end: str | None = None,
) -> record_pb2.Record:
    """A CreateRecord's record about an organization (a fresh one unless `subject`)."""
    record = record_pb2.Record(
        kind=kind,
        authority="上海市市场监督管理局",
        decision_date=date(decided),
        severity=record_pb2.SEVERITY_GENERAL,
        basis=record_pb2.RecordBasis(
            regulation="《行政处罚法》 第28条", document_number="沪市监罚〔2026〕1号"
        ),
        linked_persons=[record_pb2.LinkedPerson(id=pid, role=role) for pid, role in linked],
    )
    record.subject.kind = common_pb2.SUBJECT_KIND_ORGANIZATION
    record.subject.id = subject or fresh_org()
    if restriction_end:
        record.restriction_end.CopyFrom(date(restriction_end))
    return record


def create(server: ServerProcess, **fields: Any) -> record_pb2.Record:
    """The record `record_message(**fields)` makes, created."""
    record = record_message(**fields)
    return (
        stub(server)
        .CreateRecord(rpb.CreateRecordRequest(record=record, reason="决定书送达"), timeout=30)
        .record
    )


def get(server: ServerProcess, name: str, as_of: str | None = None) -> record_pb2.Record:
    request = rpb.GetRecordRequest(name=name, **PURPOSE)
    if as_of:
        request.as_of.CopyFrom(date(as_of))
    return stub(server).GetRecord(request, timeout=30).record


def iso(d: common_pb2.Date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else ""


def state(r: record_pb2.Record) -> str:
    return record_pb2.RecordState.Name(r.state).removeprefix("RECORD_STATE_")


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=30, **kwargs)
    st = rpc_status.from_call(info.value)
    fields = []
    for detail in st.details if st else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return info.value.code(), fields


def file_objection(server: ServerProcess, name: str, day: str, **extra: Any) -> record_pb2.Record:
    return (
        stub(server)
        .FileObjection(
            rpb.FileObjectionRequest(
                name=name,
                action_date=date(day),
                filed_by="the subject",
                reason="罚款金额有误",
                **extra,
            ),
            timeout=30,
        )
        .record
    )


def forward(server: ServerProcess, name: str, day: str) -> record_pb2.Record:
    return (
        stub(server)
        .ForwardObjection(
            rpb.ForwardObjectionRequest(
                name=name, action_date=date(day), forwarded_to="上海市市场监督管理局"
            ),
            timeout=30,
        )
        .record
    )


def decide(
    server: ServerProcess, name: str, day: str, outcome: int, **extra: Any
) -> record_pb2.Record:
    return (
        stub(server)
        .DecideObjection(
            rpb.DecideObjectionRequest(
                name=name, action_date=date(day), outcome=outcome, reason="复核", **extra
            ),
            timeout=30,
        )
        .record
    )


# -- objections across the holidays -----------------------------------------------------------

# filed on, forward by, forwarded on, decide by: 2 and 5 working days by the mainland calendar
OBJECTION_DEADLINES = [
    # National Day 2026: Oct 1-7 off; Sat Oct 10 is an adjusted working day (else Oct 16)
    ("2026-09-30", "2026-10-09", "2026-10-09", "2026-10-15"),
    # Spring Festival 2026: Sat Feb 14 worked, Feb 15-23 off, Sat Feb 28 worked (else Mar 3)
    ("2026-02-13", "2026-02-24", "2026-02-24", "2026-03-02"),
    # an ordinary week: Thu + 2 = Mon; Mon + 5 = Mon
    ("2026-06-04", "2026-06-08", "2026-06-08", "2026-06-15"),
]


@pytest.mark.parametrize(("filed", "forward_by", "forwarded", "decide_by"), OBJECTION_DEADLINES)
def test_objection_deadlines_count_mainland_working_days(
    server: ServerProcess, filed: str, forward_by: str, forwarded: str, decide_by: str
) -> None:
    r = create(server, decided="2026-01-05")
    r = file_objection(server, r.name, filed)
    assert state(r) == "UNDER_OBJECTION"
    assert iso(r.objection.forward_by) == forward_by
    r = forward(server, r.name, forwarded)
    assert iso(r.objection.decide_by) == decide_by
    assert record_pb2.ObjectionStatus.Name(r.objection.status) == "OBJECTION_STATUS_FORWARDED"


def test_overdue_objections_are_listed_the_day_after_the_deadline(server: ServerProcess) -> None:
    subject = fresh_org()
    late = create(server, decided="2026-09-01", subject=subject)
    file_objection(server, late.name, "2026-09-30")  # to be forwarded by 2026-10-09

    def overdue(as_of: str) -> list[str]:
        reply = stub(server).ListRecords(
            rpb.ListRecordsRequest(
                subject_id=subject, overdue_only=True, as_of=date(as_of), **PURPOSE
            ),
            timeout=30,
        )
        return [r.name for r in reply.records]

    assert overdue("2026-10-09") == []
    assert overdue("2026-10-10") == [late.name]
    forward(server, late.name, "2026-10-12")  # late, but forwarded: to decide by 2026-10-19
    assert overdue("2026-10-19") == []
    assert overdue("2026-10-20") == [late.name]
    assert get(server, late.name, "2026-10-20").objection.overdue


# -- the lifecycles, end to end ----------------------------------------------------------------

LIFECYCLES = [
    # (steps, the state after each step); a step is (rpc, action date, argument)
    (
        [
            ("object", "2026-09-30", None),
            ("forward", "2026-10-09", None),
            ("decide", "2026-10-14", rpb.OBJECTION_OUTCOME_REJECTED),
        ],
        ["UNDER_OBJECTION", "UNDER_OBJECTION", "ACTIVE"],
    ),
    (
        [
            ("object", "2026-02-13", None),
            ("forward", "2026-02-24", None),
            ("decide", "2026-02-27", rpb.OBJECTION_OUTCOME_UPHELD),
        ],
        ["UNDER_OBJECTION", "UNDER_OBJECTION", "REVOKED"],
    ),
    ([("repair", "2026-04-15", None)], ["REPAIRED"]),
    ([("revoke", "2026-03-01", None)], ["REVOKED"]),
]


@pytest.mark.parametrize(
    ("steps", "states"), LIFECYCLES, ids=["rejected", "upheld", "repaired", "revoked"]
)
def test_each_lifecycle_keeps_every_event(
    server: ServerProcess, steps: list[tuple[str, str, Any]], states: list[str]
) -> None:
    r = create(server, decided="2026-01-15")
    for (step, day, arg), expected in zip(steps, states, strict=True):
        if step == "object":
            r = file_objection(server, r.name, day)
        elif step == "forward":
            r = forward(server, r.name, day)
        elif step == "decide":
            r = decide(server, r.name, day, arg)
        elif step == "repair":
            r = (
                stub(server)
                .RepairRecord(
                    rpb.RepairRecordRequest(
                        name=r.name,
                        action_date=date(day),
                        proof=["doc:repair-2026-77"],
                        reason="罚款已缴清",
                    ),
                    timeout=30,
                )
                .record
            )
        else:
            r = (
                stub(server)
                .RevokeRecord(
                    rpb.RevokeRecordRequest(
                        name=r.name, action_date=date(day), reason="行政复议撤销原处罚决定"
                    ),
                    timeout=30,
                )
                .record
            )
        assert state(r) == expected
    again = get(server, r.name)
    assert [e.sequence for e in again.events] == list(range(1, len(steps) + 2))
    assert record_pb2.RecordEventType.Name(again.events[0].type) == "RECORD_EVENT_TYPE_CREATED"
    assert all(e.actor == "local" for e in again.events)
    # replayed as of the day before the last step: the state before it
    before = get(server, r.name, _day_before(steps[-1][1]))
    assert len(before.events) == len(steps)


def _day_before(text: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(text) - dt.timedelta(days=1)).isoformat()


def test_a_repaired_record_leaves_the_public_view_within_3_working_days(
    server: ServerProcess,
) -> None:
    r = create(server, decided="2026-01-15")
    r = (
        stub(server)
        .RepairRecord(
            rpb.RepairRecordRequest(
                name=r.name, action_date=date("2026-04-15"), proof=["doc:proof-1"], reason="已整改"
            ),
            timeout=30,
        )
        .record
    )
    assert iso(r.public_until) == "2026-04-20"  # Wed + 3 working days: Thu, Fri, Mon
    assert not get(server, r.name, "2026-04-20").counts


# kind, decision date, as of, state: expiry at the end of the maximum period, computed
EXPIRY = [
    ("dishonest_debtor", "2024-06-01", "2026-05-31", "ACTIVE"),
    ("dishonest_debtor", "2024-06-01", "2026-06-01", "EXPIRED"),
    ("administrative_penalty", "2024-01-31", "2027-01-30", "ACTIVE"),
    ("administrative_penalty", "2024-01-31", "2027-01-31", "EXPIRED"),
    ("social_org.abnormal", "2026-03-31", "2026-09-30", "EXPIRED"),
]


@pytest.mark.parametrize(("kind", "decided", "as_of", "expected"), EXPIRY)
def test_a_record_expires_at_the_end_of_its_maximum_period(
    server: ServerProcess, kind: str, decided: str, as_of: str, expected: str
) -> None:
    r = create(server, kind=kind, decided=decided)
    assert state(get(server, r.name, as_of)) == expected


# -- bad input: refused, the field named, nothing changed --------------------------------------


def _record(**fields: Any) -> record_pb2.Record:
    base = {
        "kind": "administrative_penalty",
        "authority": "某局",
        "decision_date": date("2026-03-01"),
        "severity": record_pb2.SEVERITY_GENERAL,
        "basis": record_pb2.RecordBasis(regulation="某条例", document_number="某〔2026〕1号"),
    }
    base.update(fields)
    r = record_pb2.Record(**base)
    r.subject.kind = common_pb2.SUBJECT_KIND_ORGANIZATION
    r.subject.id = BAD_INPUT_SUBJECT
    return r


BAD_INPUT_SUBJECT = ORG_IDS[0]
BAD_CREATES = [
    ({"kind": "parking_fine"}, "record.kind"),
    ({"decision_date": date("2099-01-01")}, "record.decision_date"),
    (
        {
            "linked_persons": [
                record_pb2.LinkedPerson(
                    id="110105194912310021", role=record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE
                )
            ]
        },
        "record.linked_persons[0].id",
    ),
    ({"authority": ""}, "record.authority"),
    ({"severity": record_pb2.SEVERITY_UNSPECIFIED}, "record.severity"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_CREATES)
def test_bad_records_are_refused_naming_the_field(
    server: ServerProcess, fields: dict[str, Any], field: str
) -> None:
    code, fields_named = refusal(
        stub(server).CreateRecord, rpb.CreateRecordRequest(record=_record(**fields))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in fields_named
    listed = stub(server).ListRecords(
        rpb.ListRecordsRequest(subject_id=BAD_INPUT_SUBJECT, **PURPOSE), timeout=30
    )
    assert list(listed.records) == []


def test_bad_state_changes_are_refused_and_change_nothing(server: ServerProcess) -> None:
    s = stub(server)
    early = create(server, decided="2026-01-15")
    # a repair before the minimum period (3 months: from 2026-04-15), and one without proof
    code, fields = refusal(
        s.RepairRecord,
        rpb.RepairRecordRequest(
            name=early.name, action_date=date("2026-04-14"), proof=["doc:p"], reason="已整改"
        ),
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["action_date"])
    code, fields = refusal(
        s.RepairRecord,
        rpb.RepairRecordRequest(name=early.name, action_date=date("2026-05-01"), reason="已整改"),
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["proof"])
    # a decision on an objection that was never forwarded
    file_objection(server, early.name, "2026-05-06")
    code, fields = refusal(
        s.DecideObjection,
        rpb.DecideObjectionRequest(
            name=early.name,
            action_date=date("2026-05-07"),
            outcome=rpb.OBJECTION_OUTCOME_REJECTED,
            reason="x",
        ),
    )
    assert (code, fields) == (grpc.StatusCode.FAILED_PRECONDITION, ["name"])
    assert len(get(server, early.name).events) == 2
    # an objection on a revoked record
    revoked = create(server, decided="2026-01-15")
    s.RevokeRecord(
        rpb.RevokeRecordRequest(name=revoked.name, action_date=date("2026-02-01"), reason="撤销"),
        timeout=30,
    )
    code, fields = refusal(
        s.FileObjection,
        rpb.FileObjectionRequest(name=revoked.name, action_date=date("2026-02-02"), reason="x"),
    )
    assert (code, fields) == (grpc.StatusCode.FAILED_PRECONDITION, ["name"])
    assert len(get(server, revoked.name).events) == 2
    # an action date in the future, or before the last event
    code, fields = refusal(
        s.RevokeRecord,
        rpb.RevokeRecordRequest(name=early.name, action_date=date("2099-01-01"), reason="x"),
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["action_date"])
    code, _ = refusal(s.GetRecord, rpb.GetRecordRequest(name="records/not-a-record", **PURPOSE))
    assert code == grpc.StatusCode.NOT_FOUND
    code, fields = refusal(s.GetRecord, rpb.GetRecordRequest(name=early.name))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["purpose"])


def test_a_stale_etag_is_aborted(server: ServerProcess) -> None:
    r = create(server, decided="2026-01-15")
    file_objection(server, r.name, "2026-03-02", etag=r.etag)
    code, fields = refusal(
        stub(server).ForwardObjection,
        rpb.ForwardObjectionRequest(
            name=r.name, action_date=date("2026-03-03"), forwarded_to="某局", etag=r.etag
        ),
    )
    assert (code, fields) == (grpc.StatusCode.ABORTED, ["etag"])


def test_two_officers_deciding_at_once_one_wins(server: ServerProcess) -> None:
    for _ in range(3):  # a race is a race: a few rounds
        r = create(server, decided="2026-01-15")
        file_objection(server, r.name, "2026-03-02")
        r = forward(server, r.name, "2026-03-03")
        outcomes = (rpb.OBJECTION_OUTCOME_UPHELD, rpb.OBJECTION_OUTCOME_REJECTED)
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(decide, server, r.name, "2026-03-04", o) for o in outcomes]
            results = []
            for c in calls:
                try:
                    results.append(state(c.result()))
                except grpc.RpcError as exc:
                    results.append(exc.code())
        won = [x for x in results if isinstance(x, str)]
        lost = [x for x in results if not isinstance(x, str)]
        assert len(won) == 1 and len(lost) == 1, results
        assert lost[0] in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        after = get(server, r.name)
        assert len(after.events) == 4 and state(after) == won[0]


# -- kinds and the access log ------------------------------------------------------------------


def test_the_kinds_carry_their_periods(server: ServerProcess) -> None:
    kinds = {
        k.name: k
        for k in stub(server).ListRecordKinds(rpb.ListRecordKindsRequest(), timeout=30).kinds
    }
    periods = {name: (k.minimum_months, k.maximum_months) for name, k in kinds.items()}
    assert periods["administrative_penalty"] == (3, 36)
    assert periods["administrative_penalty.safety"] == (12, 36)
    assert kinds["licence_revoked"].restriction_months == 36
    assert kinds["construction.bad_record"].counts_under_objection


def test_every_call_on_a_record_is_in_the_access_log(server: ServerProcess) -> None:
    person = PERSON_IDS[2]
    r = create(
        server,
        kind="licence_revoked",
        decided="2026-02-01",
        linked=((person, record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE),),
    )
    get(server, r.name)
    log = apb_grpc.AccessLogServiceStub(server.channel)
    subject = log.ListAccessRecords(
        apb.ListAccessRecordsRequest(subject_id=r.subject.id), timeout=30
    )
    methods = sorted((a.method, a.purpose) for a in subject.access_records)
    assert methods == [("CreateRecord", ""), ("GetRecord", "supervision")]
    linked = log.ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=person), timeout=30)
    assert {"CreateRecord", "GetRecord"} <= {a.method for a in linked.access_records}
