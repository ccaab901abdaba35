"""Retries of credit-record calls never act twice (issue 10, AIP-155): a real server process
on SQLite and on PostgreSQL.

- CreateRecord with a `request_id`: the same id and the same record give back the record
  created then (one record stored); the same id with anything else is INVALID_ARGUMENT,
  reason REQUEST_ID_REUSED, naming `request_id` and the record; without an id each call
  creates one. A key is the caller's: another caller may use the same text.
- A state change with a `request_id`: repeated (even with the etag read before it), it
  appends no second event and answers with the record as it is; the same id with other
  fields, or for another change, is REQUEST_ID_REUSED.
- `credit records import` killed mid-run, and its results file cut back to lose the last
  rows it had created (the crash window between a commit and its line), then `--resume`d:
  every CSV row is one record on the server, none twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as rpb
from service_harness import ServerProcess, date, module_server_fixture, wait_until
from test_cli_e2e import COMMAND, ROOT, cli_env, credit
from test_records_service import PURPOSE, create, fresh_org, stub

server = module_server_fixture()


def reused(call: Any, request: Any, metadata: Any = ()) -> tuple[str, list[str], dict[str, str]]:
    """The refusal of a reused request id: its reason, fields and metadata."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30, metadata=metadata)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    st = rpc_status.from_call(info.value)
    assert st is not None
    reason, fields, meta = "", [], {}
    for detail in st.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            ei = error_details_pb2.ErrorInfo()
            detail.Unpack(ei)
            reason, meta = ei.reason, dict(ei.metadata)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return reason, fields, meta


def records_of(server: ServerProcess, subject: str) -> list[Any]:
    reply = stub(server).ListRecords(
        rpb.ListRecordsRequest(subject_id=subject, page_size=1000, **PURPOSE), timeout=30
    )
    assert not reply.next_page_token
    return list(reply.records)


def create_request(subject: str, request_id: str, **changes: str) -> rpb.CreateRecordRequest:
    request = rpb.CreateRecordRequest(reason="决定书送达", request_id=request_id)
    request.record.kind = "administrative_penalty"
    request.record.authority = changes.get("authority", "上海市市场监督管理局")
    request.record.decision_date.CopyFrom(date("2026-09-01"))
    request.record.severity = record_pb2.SEVERITY_GENERAL
    request.record.basis.regulation = "《行政处罚法》 第28条"
    request.record.basis.document_number = changes.get("document", "沪市监罚〔2026〕7号")
    request.record.subject.kind = common_pb2.SUBJECT_KIND_ORGANIZATION
    request.record.subject.id = subject
    return request


# (what the second call changes, whether it is a retry)
SECOND_CREATES = [
    ({}, True),
    ({"authority": "浦东新区市场监督管理局"}, False),
    ({"document": "沪市监罚〔2026〕8号"}, False),
]


@pytest.mark.parametrize(("changes", "retry"), SECOND_CREATES)
def test_create_record_with_a_request_id_creates_once(
    server: ServerProcess, changes: dict[str, str], retry: bool
) -> None:
    subject = fresh_org()
    first = stub(server).CreateRecord(create_request(subject, f"create-{subject}"), timeout=30)
    second_request = create_request(subject, f"create-{subject}", **changes)
    if retry:
        again = stub(server).CreateRecord(second_request, timeout=30)
        assert again.record.name == first.record.name
        assert again.record.create_time == first.record.create_time
    else:
        reason, fields, meta = reused(stub(server).CreateRecord, second_request)
        assert (reason, fields) == ("REQUEST_ID_REUSED", ["request_id"])
        assert meta == {"record": first.record.name}
    assert [r.name for r in records_of(server, subject)] == [first.record.name]


def test_without_a_request_id_each_create_is_a_record(server: ServerProcess) -> None:
    subject = fresh_org()
    for _ in range(2):
        stub(server).CreateRecord(create_request(subject, ""), timeout=30)
    assert len(records_of(server, subject)) == 2


def objection(name: str, request_id: str, etag: str = "", reason: str = "罚款金额有误") -> Any:
    return rpb.FileObjectionRequest(
        name=name,
        action_date=date("2026-09-30"),
        filed_by="the subject",
        reason=reason,
        etag=etag,
        request_id=request_id,
    )


def test_a_retried_state_change_appends_no_second_event(server: ServerProcess) -> None:
    record = create(server)
    first = stub(server).FileObjection(objection(record.name, "obj-1", record.etag), timeout=30)
    assert len(first.record.events) == 2
    # the retry carries the etag it read before the first attempt: a replay, not ABORTED
    again = stub(server).FileObjection(objection(record.name, "obj-1", record.etag), timeout=30)
    assert again.record.etag == first.record.etag
    assert [e.sequence for e in again.record.events] == [1, 2]


# the same request id on the same record, for something else
REUSES = [
    ("FileObjection", objection("", "obj-2", reason="另一理由")),
    (
        "ForwardObjection",
        rpb.ForwardObjectionRequest(
            action_date=date("2026-10-09"), forwarded_to="上海市市场监督管理局", request_id="obj-2"
        ),
    ),
]


@pytest.mark.parametrize(("method", "request_"), REUSES, ids=[m for m, _ in REUSES])
def test_a_reused_state_change_id_is_refused_and_changes_nothing(
    server: ServerProcess, method: str, request_: Any
) -> None:
    record = create(server)
    done = stub(server).FileObjection(objection(record.name, "obj-2"), timeout=30).record
    request_.name = record.name
    reason, fields, meta = reused(getattr(stub(server), method), request_)
    assert (reason, fields, meta) == ("REQUEST_ID_REUSED", ["request_id"], {"record": record.name})
    after = stub(server).GetRecord(rpb.GetRecordRequest(name=record.name, **PURPOSE), timeout=30)
    assert after.record.etag == done.etag and len(after.record.events) == 2


# -- the CSV import, killed -------------------------------------------------------------------

ROWS = 150
HEADER = "kind,subject_kind,subject_id,authority,regulation,document_number,decision_date,severity"


def test_an_import_killed_mid_run_and_resumed_creates_each_row_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    subject = fresh_org()
    source = tmp_path / "records.csv"
    source.write_text(
        "\n".join(
            [HEADER]
            + [
                f"administrative_penalty,organization,{subject},某局,某条例,某〔2026〕{n}号,"
                "2026-05-12,general"
                for n in range(ROWS)
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "results.jsonl"
    proc = subprocess.Popen(
        [*COMMAND, "--server", server.address, "--caller", "e2e"]
        + ["records", "import", str(source), "--out", str(out)],
        env=cli_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) >= 20, 120)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    lines = out.read_bytes().splitlines(keepends=True)
    assert 20 <= len(lines) < ROWS
    # the crash window: the last rows were created on the server, their lines never written
    out.write_bytes(b"".join(lines[:-5]))

    resumed = credit(
        server.address, "records", "import", str(source), "--out", str(out), "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr
    documents = sorted(r.basis.document_number for r in records_of(server, subject))
    assert documents == sorted(f"某〔2026〕{n}号" for n in range(ROWS))
    results = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["row"] for r in results) == list(range(2, ROWS + 2))
