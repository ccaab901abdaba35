"""An acknowledged evaluation is never lost (DESIGN.md, the flow of one evaluation, step 4).

Clients send evaluations from several threads (Evaluate one by one, and BatchEvaluate) and
record every one the server acknowledged; the server is killed with SIGKILL in mid-run, no
drain, no goodbye; a new server on the same database must have every acknowledged evaluation,
with its grade and score. Calls that were in flight at the kill are retried with their
request_id: each gets exactly one evaluation, whether or not the first try had been committed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2_grpc as pb_grpc,
)
from service_harness import ServerProcess, database, resident_id, running_server, taxi, wait_until

WRITERS = 4
KILL_AFTER = 120  # acknowledged evaluations before the kill


@dataclass(frozen=True)
class Acknowledged:
    request_id: str
    name: str
    grade: str
    score: str


@dataclass
class Load:
    """Evaluations sent by the writer threads, acknowledged or not."""

    acknowledged: list[Acknowledged]
    unanswered: dict[str, pb.EvaluateRequest]  # request_id -> request, for calls that failed
    lock: threading.Lock
    stop: threading.Event
    killed: threading.Event
    failures: list[str]  # errors before the kill: the run is broken, not the crash

    def failed(self, error: grpc.RpcError, requests: list[pb.EvaluateRequest]) -> None:
        with self.lock:
            if not self.killed.is_set():
                self.failures.append(f"{error.code()}: {error.details()}")  # type: ignore[attr-defined]
            self.unanswered.update((r.request_id, r) for r in requests)

    def acknowledged_count(self) -> int:
        with self.lock:
            assert not self.failures, self.failures[:3]
            return len(self.acknowledged)


def request(writer: int, n: int) -> pb.EvaluateRequest:
    rid = f"crash-{writer}-{n}"
    return taxi(
        rid, resident_id(writer * 1000 + n % 1000), violations_1pt=n % 23, bonus_points=str(n % 11)
    )


def write_one_by_one(s: ServerProcess, writer: int, load: Load) -> None:
    channel = grpc.insecure_channel(s.address)
    stub = pb_grpc.CreditEvaluationServiceStub(channel)
    n = 0
    while not load.stop.is_set():
        req = request(writer, n)
        n += 1
        try:
            e = stub.Evaluate(req, timeout=10).evaluation
        except grpc.RpcError as error:
            load.failed(error, [req])
            if load.stop.wait(0.01):
                break
            continue
        with load.lock:
            load.acknowledged.append(Acknowledged(req.request_id, e.name, e.grade.code, e.score))
    channel.close()


def write_batches(s: ServerProcess, writer: int, load: Load) -> None:
    channel = grpc.insecure_channel(s.address)
    stub = pb_grpc.CreditEvaluationServiceStub(channel)
    n = 0
    while not load.stop.is_set():
        reqs = [request(writer, n + i) for i in range(10)]
        n += 10
        try:
            results = stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=reqs), timeout=10).results
        except grpc.RpcError as error:
            load.failed(error, reqs)
            if load.stop.wait(0.01):
                break
            continue
        with load.lock:
            for r, result in zip(reqs, results, strict=True):
                e = result.evaluation
                load.acknowledged.append(Acknowledged(r.request_id, e.name, e.grade.code, e.score))
    channel.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_every_acknowledged_evaluation_survives_sigkill(tmp_path: Path, kind: str) -> None:
    with database(kind, tmp_path, "crash") as url:
        first = ServerProcess(url, tmp_path / "first.log").start()
        load = Load([], {}, threading.Lock(), threading.Event(), threading.Event(), [])
        writers = [
            threading.Thread(target=write_one_by_one, args=(first, w, load)) for w in range(WRITERS)
        ]
        writers.append(threading.Thread(target=write_batches, args=(first, WRITERS, load)))
        try:
            for t in writers:
                t.start()
            wait_until(lambda: load.acknowledged_count() >= KILL_AFTER, timeout=60)
            load.killed.set()
            first.kill()  # SIGKILL while the writers are still sending
            killed_at = len(load.acknowledged)
        finally:
            load.stop.set()
            for t in writers:
                t.join(30)
            first.kill()
        assert first.proc is not None and first.proc.returncode == -9
        acknowledged = {a.request_id: a for a in load.acknowledged}
        assert len(acknowledged) == len(load.acknowledged) >= killed_at >= KILL_AFTER
        assert all(a.name.startswith("evaluations/") for a in acknowledged.values())

        with running_server(url, tmp_path / "second.log") as second:
            for a in acknowledged.values():
                got = second.stub.GetEvaluation(
                    pb.GetEvaluationRequest(purpose="supervision", name=a.name), timeout=10
                ).evaluation
                assert (got.request_id, got.grade.code, got.score) == (
                    a.request_id,
                    a.grade,
                    a.score,
                )

            # the calls in flight at the kill: a retry with the same request_id gives one evaluation
            retried = {}
            for rid, req in sorted(load.unanswered.items()):
                e = second.stub.Evaluate(req, timeout=10).evaluation
                again = second.stub.Evaluate(req, timeout=10).evaluation
                assert e.name == again.name
                retried[rid] = e.name
            assert set(retried).isdisjoint(acknowledged)

            # nothing stored twice: one evaluation per request id
            names: list[str] = []
            token = ""
            while True:
                page = second.stub.ListEvaluations(
                    pb.ListEvaluationsRequest(
                        purpose="supervision", page_size=1000, page_token=token
                    )
                )
                names += [e.request_id for e in page.evaluations]
                token = page.next_page_token
                if not token:
                    break
            assert len(names) == len(set(names))
            assert set(names) == set(acknowledged) | set(retried)
