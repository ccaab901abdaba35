"""The gRPC edge as an operator reads it (issue 14 item 3), against a real server process: the
one log line of a call is joined to what the call did (the callers' `request_id`s, the names
of the evaluations, the call id its access records carry), a refused call logs no grade, and
stderr holds nothing but JSON lines, whatever a library, a warning or a stray exception
writes there. The item metrics are in test_metrics.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sector_credit.server.request_context import MAX_LISTED, RequestContext
from sector_credit.v1 import access_log_service_pb2 as apb
from sector_credit.v1 import access_log_service_pb2_grpc as apb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import (
    ServerProcess,
    evaluate_request,
    module_server_fixture,
    resident_id,
    taxi,
    wait_until,
)

server = module_server_fixture()
_n = itertools.count(7700)  # resident ids no other test module uses


def new_subject() -> str:
    return resident_id(next(_n))


def rpc_line(server: ServerProcess, call_id: str) -> dict[str, Any]:
    """The one log line of the call sent with `x-request-id: call_id`."""
    found = wait_until(lambda: [r for r in server.rpc_records() if r.get("call_id") == call_id])
    assert len(found) == 1, found
    return found[0]


def call_ids_of_access_records(server: ServerProcess) -> list[str]:
    stub = apb_grpc.AccessLogServiceStub(server.channel)
    reply = stub.ListAccessRecords(apb.ListAccessRecordsRequest(page_size=1000), timeout=30)
    return [r.request_id for r in reply.access_records]


def test_an_evaluate_line_names_the_callers_request_id_and_the_evaluation(
    server: ServerProcess,
) -> None:
    n = next(_n)
    call_id, rid = f"edge-call-{n}", f"edge-rid-{n}"
    reply = server.stub.Evaluate(
        taxi(request_id=rid, subject_id=new_subject()),
        timeout=30,
        metadata=[("x-request-id", call_id)],
    )
    line = rpc_line(server, call_id)
    assert {
        k: line.get(k)
        for k in (
            "method",
            "code",
            "caller",
            "proven_by",
            "request_id",
            "evaluation",
            "scorecard",
            "grade",
        )
    } == {
        "method": "Evaluate",
        "code": "OK",
        "caller": "local",
        "proven_by": "local",
        "request_id": rid,
        "evaluation": reply.evaluation.name,
        "scorecard": "transport.taxi_driver",
        "grade": reply.evaluation.grade.code,
    }
    # the access record of the same call carries the call id
    assert call_ids_of_access_records(server).count(call_id) == 1

    # a replay of the request id names the evaluation stored the first time
    replay_id = f"edge-replay-{n}"
    request = taxi(request_id=rid, subject_id=reply.evaluation.subject.id)
    server.stub.Evaluate(request, timeout=30, metadata=[("x-request-id", replay_id)])
    assert rpc_line(server, replay_id)["evaluation"] == reply.evaluation.name

    # a read names what it read, and why
    read_id = f"edge-read-{n}"
    server.stub.GetEvaluation(
        pb.GetEvaluationRequest(name=reply.evaluation.name, purpose="supervision"),
        timeout=30,
        metadata=[("x-request-id", read_id)],
    )
    read = rpc_line(server, read_id)
    assert (read["evaluation"], read["purpose"], read["code"]) == (
        reply.evaluation.name,
        "supervision",
        "OK",
    )


BAD = {"violations_1pt": -1}


@pytest.mark.parametrize("method", ["BatchEvaluate", "StreamEvaluate"])
def test_a_batch_or_stream_line_lists_every_request_id_and_evaluation(
    server: ServerProcess, method: str
) -> None:
    n = next(_n)
    call_id = f"edge-{method}-{n}"
    items = [taxi(request_id=f"edge-{method}-{n}-{i}", subject_id=new_subject()) for i in range(3)]
    items.append(
        evaluate_request(
            "transport.taxi_driver",
            BAD,
            request_id=f"edge-{method}-{n}-bad",
            subject_id=new_subject(),
        )
    )
    metadata = [("x-request-id", call_id)]
    if method == "BatchEvaluate":
        results = server.stub.BatchEvaluate(
            pb.BatchEvaluateRequest(requests=items), timeout=30, metadata=metadata
        ).results
        names = [r.evaluation.name for r in results if r.HasField("evaluation")]
    else:
        replies = server.stub.StreamEvaluate(
            iter(
                [
                    pb.StreamEvaluateRequest(correlation_id=str(i), request=r)
                    for i, r in enumerate(items)
                ]
            ),
            timeout=30,
            metadata=metadata,
        )
        names = [r.evaluation.name for r in replies if r.HasField("evaluation")]
    line = rpc_line(server, call_id)
    assert len(names) == 3
    assert sorted(line["evaluations"]) == sorted(names)
    assert sorted(line["request_ids"]) == sorted(i.request_id for i in items)
    assert (line["code"], line["items"], line["failed"]) == ("OK", 4, 1)
    assert "grade" not in line  # a grade is the one evaluation's, and there are several


def test_a_long_stream_lists_its_first_names_and_counts_the_rest() -> None:
    ctx = RequestContext("StreamEvaluate", "call")
    for i in range(MAX_LISTED + 5):
        ctx.requested(f"r{i}")
        ctx.touched(f"evaluations/{i}")
    assert (len(ctx.request_ids), len(ctx.evaluations), ctx.unlisted) == (
        MAX_LISTED,
        MAX_LISTED,
        10,
    )
    assert ctx.request_ids[-1] == f"r{MAX_LISTED - 1}"


# A refusal after the item was scored: the grade was known, and must not be logged
REFUSED = [
    ("the request id names another request", "INVALID_ARGUMENT"),
    ("a scorecard that does not exist", "NOT_FOUND"),
    ("an indicator out of range", "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("case", "code"), REFUSED)
def test_a_refused_call_logs_no_grade(server: ServerProcess, case: str, code: str) -> None:
    n = next(_n)
    call_id, rid = f"edge-refused-{n}", f"edge-refused-rid-{n}"
    if case == "the request id names another request":
        server.stub.Evaluate(taxi(request_id=rid, subject_id=new_subject()), timeout=30)
        request = taxi(request_id=rid, subject_id=new_subject())
    elif case == "a scorecard that does not exist":
        request = evaluate_request("no.such_card", {}, request_id=rid, subject_id=new_subject())
    else:
        request = evaluate_request(
            "transport.taxi_driver", BAD, request_id=rid, subject_id=new_subject()
        )
    with pytest.raises(grpc.RpcError) as info:
        server.stub.Evaluate(request, timeout=30, metadata=[("x-request-id", call_id)])
    assert info.value.code().name == code  # type: ignore[attr-defined]
    line = rpc_line(server, call_id)
    assert (line["code"], line["request_id"]) == (code, rid)
    assert "grade" not in line and "evaluation" not in line


# --------------------------------------------------------------------------------------------
# Nothing but JSON on stderr

NOISY = "make-noise"
NOISY_SERVER = f"""
import asyncio, logging, sys, threading, warnings
from sector_credit.server.servicer import CreditEvaluationServicer

_list = CreditEvaluationServicer.ListScorecards

async def noisy(self, request, context):
    if request.page_token == {NOISY!r}:
        warnings.warn("a library's warning", UserWarning)
        logging.getLogger("some.library").warning("a library's plain warning line")
        thread = threading.Thread(target=lambda: 1 / 0, name="stray")
        thread.start()
        thread.join()
        asyncio.get_running_loop().call_soon(lambda: 1 / 0)  # logged by asyncio
        await asyncio.sleep(0.01)
        request.page_token = ""
    return await _list(self, request, context)

CreditEvaluationServicer.ListScorecards = noisy
from sector_credit.server.main import main
sys.exit(main())
"""


class _NoisyServer(ServerProcess):
    def command(self) -> list[str]:
        cmd = super().command()
        assert cmd[1:3] == ["-m", "sector_credit.server.main"]
        return [cmd[0], "-W", "always", "-c", NOISY_SERVER, *cmd[3:]]


@pytest.fixture(scope="module")
def noisy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("noisy")
    s = _NoisyServer(f"sqlite:///{tmp / 'audit.db'}", tmp / "server.log").start()
    try:
        yield s
    finally:
        assert s.terminate() == 0


def test_stderr_holds_only_json_lines_whoever_writes(noisy_server: ServerProcess) -> None:
    noisy_server.stub.ListScorecards(
        pb.ListScorecardsRequest(page_token=NOISY),
        timeout=30,
        metadata=[("x-request-id", "edge-noisy")],
    )
    rpc_line(noisy_server, "edge-noisy")
    expected = {  # what each writer's line looks like, as JSON
        "a warning": lambda r: (
            r.get("logger") == "py.warnings" and "a library's warning" in r["event"]
        ),
        "a library's logging": lambda r: (
            (r.get("logger"), r["event"]) == ("some.library", "a library's plain warning line")
        ),
        "an exception in a thread": lambda r: (
            r["event"] == "uncaught exception in a thread" and "ZeroDivisionError" in r["exception"]
        ),
        "an exception in an event loop callback": lambda r: (
            r.get("logger") == "asyncio" and "ZeroDivisionError" in r.get("exception", "")
        ),
    }
    wait_until(
        lambda: all(
            any(match(r) for r in noisy_server.log_records()) for match in expected.values()
        )
    )
    noisy_server.terminate()  # the shutdown's lines too
    lines = [
        line
        for line in Path(noisy_server.log_path).read_text(encoding="utf-8").splitlines()
        if line
    ]
    not_json = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            not_json.append(line)
            continue
        if not isinstance(record, dict) or "event" not in record or "level" not in record:
            not_json.append(line)
    assert not_json == []
    records = [json.loads(line) for line in lines]
    for what, match in expected.items():
        assert any(match(r) for r in records), what
    # the lines written during the call name it
    assert all(
        r.get("call_id") == "edge-noisy"
        for r in records
        if r.get("logger") in ("py.warnings", "some.library")
    )
