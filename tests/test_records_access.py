"""Who may do what with credit records (issue 10), on a real server with a security
configuration and API keys: registering needs the registrar role, reading a record needs
reader and a purpose, and the disclosure view (GetDisclosure) shows only what may be
disclosed, personal ids masked, to callers without credentials when the server runs with
--public-disclosure; every call is in the access log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import pytest
from sector_credit.server import security
from sector_credit.v1 import access_log_service_pb2 as apb
from sector_credit.v1 import access_log_service_pb2_grpc as apb_grpc
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as rpb
from sector_credit.v1 import records_service_pb2_grpc as rpb_grpc
from security_harness import bearer, error_info, server_keys
from service_harness import ORG_IDS, PERSON_IDS, ServerProcess, date, running_server

CONFIG = """
[callers.records-office]
registrar = {}
reader = {}

[callers.reading-office]
reader = {}

[callers.audit-office]
auditor = {}
"""


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("records-access")
    url = f"sqlite:///{tmp / 'records.db'}"
    config = tmp / "security.toml"
    config.write_text(CONFIG, encoding="utf-8")
    tokens = {
        caller: server_keys(url, "create", "--caller", caller)["token"]
        for caller in ("records-office", "reading-office", "audit-office")
    }
    with running_server(
        url, tmp / "server.log", "--security-config", str(config), "--public-disclosure"
    ) as server:
        yield server, tokens


def records(server: ServerProcess) -> rpb_grpc.RecordServiceStub:
    return rpb_grpc.RecordServiceStub(server.channel)


def new_record(
    subject: str, kind: int, record_kind: str, decided: str, linked: tuple[str, ...] = ()
) -> rpb.CreateRecordRequest:
    r = record_pb2.Record(
        kind=record_kind,
        authority="某局",
        decision_date=date(decided),
        severity=record_pb2.SEVERITY_GENERAL,
        basis=record_pb2.RecordBasis(regulation="某条例", document_number="某〔2026〕1号"),
        linked_persons=[
            record_pb2.LinkedPerson(id=p, role=record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE)
            for p in linked
        ],
    )
    r.subject.kind, r.subject.id = kind, subject
    return rpb.CreateRecordRequest(record=r, reason="决定")


# caller, method, the permission refused (None: allowed)
ROLE_CASES = [
    ("reading-office", "CreateRecord", "REGISTRAR_PERMISSION_REQUIRED"),
    ("audit-office", "GetRecord", "READER_PERMISSION_REQUIRED"),
    ("records-office", "CreateRecord", None),
]


@pytest.mark.parametrize(("caller", "method", "refused"), ROLE_CASES)
def test_roles(
    setup: tuple[ServerProcess, dict[str, str]], caller: str, method: str, refused: str | None
) -> None:
    server, tokens = setup
    s = records(server)
    if method == "CreateRecord":
        call, request = (
            s.CreateRecord,
            new_record(
                ORG_IDS[3],
                common_pb2.SUBJECT_KIND_ORGANIZATION,
                "administrative_penalty",
                "2026-03-01",
            ),
        )
    else:
        call, request = s.GetRecord, rpb.GetRecordRequest(name="records/x", purpose="supervision")
    if refused is None:
        assert (
            call(request, timeout=30, metadata=bearer(tokens[caller])).record.events[0].actor
            == caller
        )
        return
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30, metadata=bearer(tokens[caller]))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(info.value).reason == refused


def test_the_disclosure_view_shows_only_what_may_be_disclosed(
    setup: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, tokens = setup
    s, registrar = records(server), bearer(tokens["records-office"])
    person = PERSON_IDS[0]
    firm = ORG_IDS[1]
    today = dt.date.today()
    shown = s.CreateRecord(
        new_record(
            person,
            common_pb2.SUBJECT_KIND_PERSON,
            "administrative_penalty",
            (today - dt.timedelta(days=30)).isoformat(),
        ),
        timeout=30,
        metadata=registrar,
    ).record
    # expired: decided more than 3 years ago
    s.CreateRecord(
        new_record(person, common_pb2.SUBJECT_KIND_PERSON, "administrative_penalty", "2020-01-01"),
        timeout=30,
        metadata=registrar,
    )
    # repaired long ago: out of the public view
    repaired = s.CreateRecord(
        new_record(person, common_pb2.SUBJECT_KIND_PERSON, "administrative_penalty", "2025-01-02"),
        timeout=30,
        metadata=registrar,
    ).record
    s.RepairRecord(
        rpb.RepairRecordRequest(
            name=repaired.name, action_date=date("2025-06-02"), proof=["doc:p"], reason="已整改"
        ),
        timeout=30,
        metadata=registrar,
    )
    s.CreateRecord(
        new_record(
            firm,
            common_pb2.SUBJECT_KIND_ORGANIZATION,
            "licence_revoked",
            "2025-03-01",
            linked=(person,),
        ),
        timeout=30,
        metadata=registrar,
    )
    # no credentials at all
    with grpc.insecure_channel(server.address) as channel:
        public = rpb_grpc.RecordServiceStub(channel)
        mine = public.GetDisclosure(rpb.GetDisclosureRequest(subject_id=person), timeout=30)
        theirs = public.GetDisclosure(rpb.GetDisclosureRequest(subject_id=firm), timeout=30)
        with pytest.raises(grpc.RpcError) as info:
            public.GetRecord(
                rpb.GetRecordRequest(name=shown.name, purpose="supervision"), timeout=30
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert mine.subject_id == person[:4] + "*" * 12 + person[-2:]
    assert [r.name for r in mine.records] == [shown.name]  # not the expired, not the repaired
    assert theirs.subject_id == firm
    assert [p.id for r in theirs.records for p in r.linked_persons] == [
        person[:4] + "*" * 12 + person[-2:]
    ]
    log = apb_grpc.AccessLogServiceStub(server.channel)
    accesses = log.ListAccessRecords(
        apb.ListAccessRecordsRequest(subject_id=person),
        timeout=30,
        metadata=bearer(tokens["audit-office"]),
    ).access_records
    public_reads = [a for a in accesses if a.method == "GetDisclosure"]
    assert [(a.caller, a.code, a.evaluations_returned) for a in public_reads] == [("", "OK", 1)]


def test_the_disclosure_view_needs_credentials_unless_configured() -> None:
    try:
        security.open_disclosure(False)
        assert (
            security.role_for("/sector_credit.v1.RecordService/GetDisclosure")
            == security.AUTHENTICATED
        )
        security.open_disclosure(True)
        assert security.role_for("/sector_credit.v1.RecordService/GetDisclosure") == security.OPEN
    finally:
        security.open_disclosure(False)
    assert security.role_for("/sector_credit.v1.RecordService/RepairRecord") == security.REGISTRAR
