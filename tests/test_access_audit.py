"""The purpose of a query and the query audit (issue 9 items 4 and 5), against a real server
process on SQLite and PostgreSQL: each call that touches a subject leaves exactly one access
record per subject touched, with who, what, why, how many and the outcome; reads without a
purpose are refused naming `purpose`; AccessLogService lists by subject, caller and time,
paginated, and refuses bad filters naming the field; records survive a restart.

The servers run in local mode: every caller is the local principal (`local`, proven by
`local`), whatever its `x-caller` header says: a header is never an identity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from sector_credit.v1 import access_log_service_pb2 as apb
from sector_credit.v1 import access_log_service_pb2_grpc as apb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import (
    ORG_IDS,
    ServerProcess,
    database,
    evaluate_request,
    module_server_fixture,
    resident_id,
    running_server,
    taxi,
)

server = module_server_fixture()
CALLER = "local"  # the local principal
_subjects = itertools.count(7100)  # resident ids no other test module uses


def new_subject() -> str:
    return resident_id(next(_subjects))


def call(server: ServerProcess, method: str, request: Any) -> tuple[str, Any]:
    """Call `method` with a fresh request id and a forged `x-caller` (never recorded as the
    caller); (request id, reply or the RpcError)."""
    rid = secrets.token_hex(8)
    metadata = (("x-request-id", rid), ("x-caller", "forged-name"))
    stub_call = getattr(server.stub, method)
    try:
        if method == "StreamEvaluate":
            return rid, list(stub_call(iter(request), timeout=30, metadata=metadata))
        return rid, stub_call(request, timeout=30, metadata=metadata)
    except grpc.RpcError as exc:
        return rid, exc


def access(server: ServerProcess) -> apb_grpc.AccessLogServiceStub:
    return apb_grpc.AccessLogServiceStub(server.channel)


def records_of(server: ServerProcess, request_id: str, **filters: Any) -> list[apb.AccessRecord]:
    """The access records of one call (found by its request id), oldest first."""
    reply = access(server).ListAccessRecords(
        apb.ListAccessRecordsRequest(page_size=1000, **filters), timeout=30
    )
    return [r for r in reversed(reply.access_records) if r.request_id == request_id]


def fields(record: apb.AccessRecord) -> dict[str, Any]:
    return {
        "caller": record.caller,
        "proven_by": record.proven_by,
        "method": record.method,
        "subject_id": record.subject_id,
        "scorecard": record.scorecard,
        "purpose": record.purpose,
        "purpose_note": record.purpose_note,
        "returned": record.evaluations_returned,
        "code": record.code,
        "reason": record.reason,
    }


def expected(
    method: str,
    subject: str,
    scorecard: str = "transport.taxi_driver",
    returned: int = 1,
    code: str = "OK",
    reason: str = "",
    purpose: str = "",
    note: str = "",
) -> dict[str, Any]:
    return {
        "caller": CALLER,
        "proven_by": "local",
        "method": method,
        "subject_id": subject,
        "scorecard": scorecard,
        "purpose": purpose,
        "purpose_note": note,
        "returned": returned,
        "code": code,
        "reason": reason,
    }


def violations(exc: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def stored(server: ServerProcess, subject: str) -> str:
    """A stored taxi evaluation of `subject`; its name."""
    _, reply = call(server, "Evaluate", taxi(subject_id=subject))
    assert not isinstance(reply, grpc.RpcError), reply
    return str(reply.evaluation.name)


# --------------------------------------------------------------------------------------------
# Evaluations: one record per subject, with the outcome of that subject's item


def test_evaluate_cases_leave_one_record_each(server: ServerProcess) -> None:
    s_ok, s_check, s_bad, s_unknown, s_reused = (new_subject() for _ in range(5))
    reused_id = secrets.token_hex(8)
    call(server, "Evaluate", taxi(request_id=reused_id, subject_id=s_reused))
    cases = [
        # request, what its one record says
        (taxi(subject_id=s_ok), expected("Evaluate", s_ok)),
        (
            evaluate_request(
                "transport.taxi_driver",
                {"violations_3pt": 1},
                subject_id=s_check,
                validate_only=True,
            ),
            expected("Evaluate", s_check, returned=0),
        ),
        (
            taxi(subject_id=s_bad, violations_3pt=-1),
            expected(
                "Evaluate", s_bad, returned=0, code="INVALID_ARGUMENT", reason="INVALID_INDICATORS"
            ),
        ),
        (
            evaluate_request("transport.taxi_drivr", {}, subject_id=s_unknown),
            expected(
                "Evaluate",
                s_unknown,
                scorecard="transport.taxi_drivr",
                returned=0,
                code="NOT_FOUND",
                reason="SCORECARD_NOT_FOUND",
            ),
        ),
        # the same request id for another request: the store refuses the row, and the record
        # committed with it says so
        (
            taxi(request_id=reused_id, subject_id=s_reused, violations_1pt=3),
            expected(
                "Evaluate",
                s_reused,
                returned=0,
                code="INVALID_ARGUMENT",
                reason="REQUEST_ID_REUSED",
            ),
        ),
        # a retry of a stored request: the stored evaluation comes back
        (taxi(request_id=reused_id, subject_id=s_reused), expected("Evaluate", s_reused)),
    ]
    for request, want in cases:
        rid, _ = call(server, "Evaluate", request)
        assert [fields(r) for r in records_of(server, rid)] == [want], want


def test_a_refused_item_with_a_nul_is_recorded_and_fails_nobody_else(server: ServerProcess) -> None:
    """A NUL in a refused request's subject id goes into its access record as U+FFFD: on
    PostgreSQL the raw NUL would fail the whole group commit the record shares with other
    callers' rows (found by `make fuzz`)."""
    subjects = [new_subject() for _ in range(8)]
    bad = "1101\x0005194912"
    items = [taxi(subject_id=bad)] + [taxi(subject_id=s) for s in subjects]
    rid, reply = call(server, "BatchEvaluate", pb.BatchEvaluateRequest(requests=items))
    assert not isinstance(reply, grpc.RpcError), reply
    codes = [r.error.reason if r.HasField("error") else "OK" for r in reply.results]
    assert codes[1:] == ["OK"] * 8, codes
    assert reply.results[0].HasField("error")
    recorded = sorted(r.subject_id for r in records_of(server, rid))
    assert recorded == sorted(["1101\ufffd05194912", *subjects])


def test_batch_and_stream_leave_one_record_per_item(server: ServerProcess) -> None:
    a, b, bad = new_subject(), new_subject(), new_subject()
    items = [
        taxi(subject_id=a),
        taxi(subject_id=bad, bonus_points="12"),
        taxi(subject_id=b),
        evaluate_request("transport.taxi_driver", {}, subject_id=a, validate_only=True),
    ]
    want = {(a, 1, "OK"), (bad, 0, "INVALID_ARGUMENT"), (b, 1, "OK"), (a, 0, "OK")}
    for method, request in (
        ("BatchEvaluate", pb.BatchEvaluateRequest(requests=items)),
        (
            "StreamEvaluate",
            [
                pb.StreamEvaluateRequest(correlation_id=str(i), request=r)
                for i, r in enumerate(items)
            ],
        ),
    ):
        rid, reply = call(server, method, request)
        assert not isinstance(reply, grpc.RpcError), reply
        found = records_of(server, rid)
        assert len(found) == len(items)
        assert {(r.subject_id, r.evaluations_returned, r.code) for r in found} == want
        assert {r.method for r in found} == {method}
        assert all(r.caller == CALLER and r.scorecard == "transport.taxi_driver" for r in found)


# --------------------------------------------------------------------------------------------
# Reads: a purpose, and one record per subject shown


def test_get_evaluation_records_its_purpose_or_refuses_without_one(server: ServerProcess) -> None:
    subject = new_subject()
    name = stored(server, subject)
    cases = [
        # request, the fields named in the refusal ([] = answered), what its record says
        (
            pb.GetEvaluationRequest(
                name=name, purpose="recruitment_review", purpose_note="exam 2026-17"
            ),
            [],
            expected("GetEvaluation", subject, purpose="recruitment_review", note="exam 2026-17"),
        ),
        (
            pb.GetEvaluationRequest(name=name),
            ["purpose"],
            expected(
                "GetEvaluation",
                "",
                scorecard="",
                returned=0,
                code="INVALID_ARGUMENT",
                reason="INVALID_PURPOSE",
            ),
        ),
        (
            pb.GetEvaluationRequest(name=name, purpose="curiosity"),
            ["purpose"],
            expected(
                "GetEvaluation",
                "",
                scorecard="",
                returned=0,
                code="INVALID_ARGUMENT",
                reason="INVALID_PURPOSE",
            ),
        ),
        (
            pb.GetEvaluationRequest(name=name, purpose="bid_review", purpose_note="x" * 501),
            ["purpose_note"],
            expected(
                "GetEvaluation",
                "",
                scorecard="",
                returned=0,
                code="INVALID_ARGUMENT",
                reason="INVALID_PURPOSE",
            ),
        ),
        (
            pb.GetEvaluationRequest(name=name, purpose="bid_review", purpose_note="a\x07b"),
            ["purpose_note"],
            expected(
                "GetEvaluation",
                "",
                scorecard="",
                returned=0,
                code="INVALID_ARGUMENT",
                reason="INVALID_PURPOSE",
            ),
        ),
        (
            pb.GetEvaluationRequest(
                name="evaluations/01a21faa-0000-7000-8000-000000000000", purpose="supervision"
            ),
            [],
            expected(
                "GetEvaluation",
                "",
                scorecard="",
                returned=0,
                code="NOT_FOUND",
                reason="NOT_FOUND",
                purpose="supervision",
            ),
        ),
    ]
    for request, refused, want in cases:
        rid, reply = call(server, "GetEvaluation", request)
        if refused:
            assert (
                isinstance(reply, grpc.RpcError)
                and reply.code() == grpc.StatusCode.INVALID_ARGUMENT
            )
            assert violations(reply) == refused
        found = records_of(server, rid, caller=CALLER)
        assert [fields(r) for r in found] == [want], want


def test_list_evaluations_records_each_subject_with_its_count(server: ServerProcess) -> None:
    one, two = ORG_IDS[2], ORG_IDS[3]  # construction.firm is evaluated by this test only
    firm = {"qualification_staff_points": "5"}
    for subject in (one, one, two):
        _, reply = call(
            server, "Evaluate", evaluate_request("construction.firm", firm, subject_id=subject)
        )
        assert not isinstance(reply, grpc.RpcError), reply
    rid, reply = call(
        server,
        "ListEvaluations",
        pb.ListEvaluationsRequest(scorecard="construction.firm", purpose="bid_review"),
    )
    assert len(reply.evaluations) == 3
    found = records_of(server, rid)
    assert sorted(
        (r.subject_id, r.evaluations_returned, r.scorecard, r.purpose) for r in found
    ) == sorted(
        [(one, 2, "construction.firm", "bid_review"), (two, 1, "construction.firm", "bid_review")]
    )
    nobody = new_subject()
    rid, reply = call(
        server,
        "ListEvaluations",
        pb.ListEvaluationsRequest(subject_id=nobody, purpose="supervision"),
    )
    assert not reply.evaluations
    assert [fields(r) for r in records_of(server, rid)] == [
        expected("ListEvaluations", nobody, scorecard="", returned=0, purpose="supervision")
    ]
    rid, reply = call(server, "ListEvaluations", pb.ListEvaluationsRequest(subject_id=nobody))
    assert isinstance(reply, grpc.RpcError) and violations(reply) == ["purpose"]
    assert [(r.subject_id, r.code, r.reason) for r in records_of(server, rid)] == [
        (nobody, "INVALID_ARGUMENT", "INVALID_PURPOSE")
    ]


# --------------------------------------------------------------------------------------------
# AccessLogService


def test_listing_by_caller_and_subject_pages_without_gaps_or_repeats(server: ServerProcess) -> None:
    subject = new_subject()
    for _ in range(7):
        call(server, "Evaluate", taxi(subject_id=subject))
    mine = {"caller": CALLER, "subject_id": subject}
    everything = access(server).ListAccessRecords(
        apb.ListAccessRecordsRequest(page_size=100, **mine)
    )
    assert len(everything.access_records) == 7 and not everything.next_page_token
    names = [r.name for r in everything.access_records]
    assert names == sorted(names, reverse=True)  # newest first (ids are time-ordered)
    paged, token, pages = [], "", 0
    while True:
        reply = access(server).ListAccessRecords(
            apb.ListAccessRecordsRequest(page_size=3, page_token=token, **mine)
        )
        paged += [r.name for r in reply.access_records]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert (paged, pages) == (names, 3)
    by_subject = access(server).ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=subject))
    assert [r.name for r in by_subject.access_records] == names
    by_caller = access(server).ListAccessRecords(
        apb.ListAccessRecordsRequest(caller=CALLER, page_size=1000)
    )
    assert set(names) <= {r.name for r in by_caller.access_records}
    nobody = access(server).ListAccessRecords(apb.ListAccessRecordsRequest(caller="forged-name"))
    assert not nobody.access_records  # the header named no one


def test_listing_by_time_range(server: ServerProcess) -> None:
    subject = new_subject()
    call(server, "Evaluate", taxi(subject_id=subject))
    first = (
        access(server)
        .ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=subject))
        .access_records[0]
    )
    call(server, "Evaluate", taxi(subject_id=subject))
    at = first.create_time.ToDatetime(tzinfo=dt.UTC)
    later = at + dt.timedelta(microseconds=1)
    cases = [  # start, end, how many of the subject's two records
        (None, None, 2),
        (at, None, 2),
        (later, None, 1),
        (None, later, 1),
        (None, at, 0),
        (at, later, 1),
        (at - dt.timedelta(days=1), at + dt.timedelta(days=1), 2),
    ]
    for start, end, n in cases:
        request = apb.ListAccessRecordsRequest(subject_id=subject)
        if start is not None:
            request.start_time.FromDatetime(start)
        if end is not None:
            request.end_time.FromDatetime(end)
        assert len(access(server).ListAccessRecords(request).access_records) == n, (start, end)


def _time(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (apb.ListAccessRecordsRequest(start_time=_time(2000), end_time=_time(1000)), "end_time"),
        (apb.ListAccessRecordsRequest(start_time=_time(1000), end_time=_time(1000)), "end_time"),
        (apb.ListAccessRecordsRequest(start_time=_time(0, nanos=-1)), "start_time"),
        (apb.ListAccessRecordsRequest(end_time=_time(300_000_000_000)), "end_time"),
        (apb.ListAccessRecordsRequest(subject_id="1" * 65), "subject_id"),
        (apb.ListAccessRecordsRequest(caller="a\x00b"), "caller"),
        (apb.ListAccessRecordsRequest(caller="x" * 257), "caller"),
        (apb.ListAccessRecordsRequest(page_size=-1), "page_size"),
        (apb.ListAccessRecordsRequest(page_token="garbage!"), "page_token"),
        (apb.ListSubjectAccessesRequest(), "subject_id"),
        (apb.ListSubjectAccessesRequest(subject_id="1" * 65), "subject_id"),
        (
            apb.ListSubjectAccessesRequest(subject_id="11010519491231002X", page_size=-3),
            "page_size",
        ),
    ],
)
def test_bad_filters_are_invalid_argument_naming_the_field(
    server: ServerProcess, request_: Any, field: str
) -> None:
    method = type(request_).__name__.removesuffix("Request")
    with pytest.raises(grpc.RpcError) as info:
        getattr(access(server), method)(request_, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(info.value) == [field]


def test_a_page_token_is_only_good_with_its_filters(server: ServerProcess) -> None:
    subject = new_subject()
    for _ in range(2):
        call(server, "Evaluate", taxi(subject_id=subject))
    token = (
        access(server)
        .ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=subject, page_size=1))
        .next_page_token
    )
    assert token
    with pytest.raises(grpc.RpcError) as info:
        access(server).ListAccessRecords(
            apb.ListAccessRecordsRequest(subject_id=new_subject(), page_token=token)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(info.value) == [
        "page_token"
    ]


def test_the_subject_learns_who_looked_why_and_when_and_nothing_else(server: ServerProcess) -> None:
    subject = new_subject()
    name = stored(server, subject)
    call(
        server,
        "GetEvaluation",
        pb.GetEvaluationRequest(name=name, purpose="bid_review", purpose_note="tender 9"),
    )
    call(server, "GetEvaluation", pb.GetEvaluationRequest(name=name))  # refused: showed nothing
    reply = access(server).ListSubjectAccesses(
        apb.ListSubjectAccessesRequest(subject_id=subject.lower())
    )
    today = dt.datetime.now(
        dt.timezone(dt.timedelta(hours=8))
    ).date()  # Asia/Shanghai, the default zone
    assert [
        (a.caller, a.purpose, (a.date.year, a.date.month, a.date.day)) for a in reply.accesses
    ] == [
        (CALLER, "bid_review", (today.year, today.month, today.day)),
        (CALLER, "", (today.year, today.month, today.day)),
    ]
    assert [f.name for f in apb.SubjectAccess.DESCRIPTOR.fields] == ["caller", "purpose", "date"]


def test_the_access_log_service_is_in_health_and_reflection(server: ServerProcess) -> None:
    name = apb.DESCRIPTOR.services_by_name["AccessLogService"].full_name
    assert server.health_status(name) == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    assert name in ProtoReflectionDescriptorDatabase(server.channel).get_services()


# --------------------------------------------------------------------------------------------
# Durable: the records are there after a restart


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path, "access") as url:
        yield url


def test_records_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    subject = new_subject()
    with running_server(database_url, tmp_path / "first.log", metrics=False) as first:
        name = stored(first, subject)
        call(first, "GetEvaluation", pb.GetEvaluationRequest(name=name, purpose="credit_repair"))
        before = list(
            access(first)
            .ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=subject))
            .access_records
        )
    assert [(r.method, r.code) for r in before] == [("GetEvaluation", "OK"), ("Evaluate", "OK")]
    with running_server(database_url, tmp_path / "second.log", metrics=False) as second:
        after = list(
            access(second)
            .ListAccessRecords(apb.ListAccessRecordsRequest(subject_id=subject))
            .access_records
        )
    assert after == before


# --------------------------------------------------------------------------------------------
# Refusals: the security module's on_refusal hook leaves a record


def test_a_refusal_reported_by_the_security_hook_is_recorded(tmp_path: Path) -> None:
    from sector_credit.server.access import QueryAudit
    from sector_credit.server.db import EvaluationStore
    from sector_credit.server.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'refusals.db'}"
    upgrade(url)

    async def scenario() -> list[Any]:
        async with await EvaluationStore.open(url) as store:
            audit = QueryAudit(store)
            hooks: list[Any] = []
            audit.register_refusals(hooks)
            for hook, principal, code in (
                (hooks[0], None, grpc.StatusCode.UNAUTHENTICATED),
                (hooks[0], _principal("transport-bureau"), grpc.StatusCode.PERMISSION_DENIED),
            ):
                task = hook(
                    "/sector_credit.v1.CreditEvaluationService/ListEvaluations",
                    principal,
                    code,
                    "MISSING_PERMISSION_READER" if principal else "NO_CREDENTIALS",
                )
                await task
            records, _ = await store.list_access()
            return [
                (
                    r.record.method,
                    r.record.caller,
                    r.record.proven_by,
                    r.record.code,
                    r.record.reason,
                )
                for r in records
            ]

    assert asyncio.run(scenario()) == [
        (
            "ListEvaluations",
            "transport-bureau",
            "api_key",
            "PERMISSION_DENIED",
            "MISSING_PERMISSION_READER",
        ),
        ("ListEvaluations", "", "", "UNAUTHENTICATED", "NO_CREDENTIALS"),
    ]


def _principal(name: str) -> Any:
    from sector_credit.server.access import Principal

    return Principal(name=name, proven_by="api_key", roles=frozenset({"evaluator"}), key_id="k1")


# --------------------------------------------------------------------------------------------
# The Python clients


def test_the_clients_read_with_a_purpose_and_list_the_audit(server: ServerProcess) -> None:
    from sector_credit.clients import AsyncCreditClient, CreditClient, InvalidRequestError

    subject = new_subject()
    name = stored(server, subject)
    with CreditClient(server.address) as plain, pytest.raises(InvalidRequestError) as refused:
        plain.get_evaluation(name)
    assert [v.field for v in refused.value.violations] == ["purpose"]
    with CreditClient(server.address, purpose="annual_assessment") as client:
        assert client.get_evaluation(name).name == name
        assert (
            client.get_evaluation(name, purpose="credit_repair", purpose_note="appeal 3").name
            == name
        )
        records = list(client.iter_access_records(subject_id=subject, page_size=1))
        subject_view = client.list_subject_accesses(subject).accesses

    async def async_side() -> tuple[list[Any], Any]:
        async with AsyncCreditClient(server.address, purpose="supervision") as client:
            page = await client.list_evaluations(subject_id=subject)
            assert len(page.evaluations) == 1
            found = [r async for r in client.iter_access_records(subject_id=subject, page_size=2)]
            return found, (await client.list_subject_accesses(subject)).accesses

    assert [(r.method, r.purpose, r.purpose_note, r.code) for r in records] == [
        ("GetEvaluation", "credit_repair", "appeal 3", "OK"),
        ("GetEvaluation", "annual_assessment", "", "OK"),
        ("Evaluate", "", "", "OK"),
    ]  # the refused read names no subject: it read none
    assert [(a.caller, a.purpose) for a in subject_view] == [
        (CALLER, "credit_repair"),
        (CALLER, "annual_assessment"),
        (CALLER, ""),
    ]
    found, accesses = asyncio.run(async_side())
    assert [(r.method, r.purpose) for r in found[:1]] == [("ListEvaluations", "supervision")]
    assert len(found) == 4 and [a.purpose for a in accesses][:1] == ["supervision"]
