"""A reader grant limited to scorecards limits the credit records it reads (issue 10): such a
reader reads only records of the kinds its scorecards derive indicators from (the union of
their `from_records` kinds, over every loaded version). GetRecord of another kind, and
ListRecords naming another kind, are PERMISSION_DENIED (ErrorInfo reason
READER_PERMISSION_REQUIRED, as every reader refusal); ListRecords without a kind lists only
the readable kinds. A reader without scorecard limits reads every kind.

Three callers with API keys against a real server process over TLS, with the test cards of
tests/records_cards/: test.records_supplier reads dishonest_debtor and
administrative_penalty, test.records_person reads licence_revoked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as rpb
from sector_credit.v1 import records_service_pb2_grpc as rpb_grpc
from security_harness import Pki, bearer, error_info, server_keys, stub
from service_harness import ORG_IDS, ServerProcess, date, running_server

CARDS = str(Path(__file__).parent / "records_cards")
CONFIG = """
[callers.records-office]
registrar = {}
reader = {}

[callers.supplier-desk]
reader = { scorecards = ["test.records_supplier"] }

[callers.person-desk]
reader = { scorecards = ["test.records_person"] }
"""
FIRM = ORG_IDS[1]
PURPOSE = {"purpose": "supervision"}


@dataclass
class Setup:
    server: ServerProcess
    pki: Pki
    tokens: dict[str, str]
    names: dict[str, str]  # record kind -> the name of FIRM's record of that kind

    def call(self, who: str, method: str, request: Any) -> Any:
        channel, _ = stub(self.server.address, self.pki.credentials())
        try:
            return getattr(rpb_grpc.RecordServiceStub(channel), method)(
                request, metadata=bearer(self.tokens[who]), timeout=30
            )
        finally:
            channel.close()

    def refusal(self, who: str, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            self.call(who, method, request)
        found = error_info(info.value)
        return info.value.code(), found.reason if found else ""  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("record-grants")
    pki = Pki.make(tmp / "pki")
    config = tmp / "security.toml"
    config.write_text(CONFIG, encoding="utf-8")
    url = f"sqlite:///{tmp / 'grants.db'}"
    tokens = {
        caller: server_keys(url, "create", "--caller", caller)["token"]
        for caller in ("records-office", "supplier-desk", "person-desk")
    }
    args = (*pki.server_args(mutual=False), "--security-config", str(config))
    with running_server(url, tmp / "server.log", *args, "--scorecards", CARDS) as server:
        s = Setup(server, pki, tokens, {})
        for kind in ("administrative_penalty", "licence_revoked"):
            record = record_pb2.Record(
                kind=kind,
                authority="上海市市场监督管理局",
                decision_date=date("2026-06-01"),
                severity=record_pb2.SEVERITY_SERIOUS,
                basis=record_pb2.RecordBasis(regulation="某条例", document_number=f"{kind}-1"),
            )
            record.subject.kind = common_pb2.SUBJECT_KIND_ORGANIZATION
            record.subject.id = FIRM
            made = s.call("records-office", "CreateRecord", rpb.CreateRecordRequest(record=record))
            s.names[kind] = made.record.name
        yield s


# (caller, the kind of the record read, whether it may)
GETS = [
    ("records-office", "administrative_penalty", True),
    ("records-office", "licence_revoked", True),
    ("supplier-desk", "administrative_penalty", True),
    ("supplier-desk", "licence_revoked", False),
    ("person-desk", "licence_revoked", True),
    ("person-desk", "administrative_penalty", False),
]


@pytest.mark.parametrize(("who", "kind", "may"), GETS)
def test_get_record_reads_only_the_kinds_the_grant_s_scorecards_read(
    setup: Setup, who: str, kind: str, may: bool
) -> None:
    request = rpb.GetRecordRequest(name=setup.names[kind], **PURPOSE)
    if may:
        assert setup.call(who, "GetRecord", request).record.kind == kind
    else:
        assert setup.refusal(who, "GetRecord", request) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "READER_PERMISSION_REQUIRED",
        )


# (caller, the kind asked for ("" none), the kinds listed, or None: refused)
LISTS = [
    ("records-office", "", ["administrative_penalty", "licence_revoked"]),
    ("supplier-desk", "", ["administrative_penalty"]),
    ("person-desk", "", ["licence_revoked"]),
    ("supplier-desk", "administrative_penalty", ["administrative_penalty"]),
    ("supplier-desk", "dishonest_debtor", []),  # readable, none stored
    ("supplier-desk", "licence_revoked", None),
    ("person-desk", "administrative_penalty", None),
]


@pytest.mark.parametrize(("who", "kind", "listed"), LISTS)
def test_list_records_lists_only_the_readable_kinds(
    setup: Setup, who: str, kind: str, listed: list[str] | None
) -> None:
    request = rpb.ListRecordsRequest(subject_id=FIRM, kind=kind, **PURPOSE)
    if listed is None:
        assert setup.refusal(who, "ListRecords", request) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "READER_PERMISSION_REQUIRED",
        )
    else:
        reply = setup.call(who, "ListRecords", request)
        assert sorted(r.kind for r in reply.records) == listed
