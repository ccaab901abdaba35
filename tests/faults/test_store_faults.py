"""Issue 16, items 1-3: the audit store failing or stalling under a running server.

- A stalled write holds only the calls that wait for it: with the writer blocked (SQLite:
  the test holds the lock the writer takes around each group, exactly where a frozen disk
  would hold it; PostgreSQL: another session holds the evaluations table locked), health,
  ListScorecards and GetScorecard answer at once; health turns NOT_SERVING once the commit
  has been stuck for 2 s, and the held write completes when the lock goes. Calls that touch a
  subject (validate_only and reads too) answer only once their access record is committed
  (issue 9: every query on record before the reply leaves), so they wait with the writer: on
  their own deadline, never holding the others.
- The SQLite file removed, replaced or its folder removed: writes are UNAVAILABLE, never
  acknowledged into a file nobody will read; a stream answers each item with UNAVAILABLE.
- A stream client that never reads: the server stops reading its requests instead of
  buffering replies (the request generator stalls, the server's memory stays flat).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from faultkit import NOT_SERVING, SERVING, health, rss_bytes, wait_for_health
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, database, resident_id, running_server, taxi

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


def validate_only() -> pb.EvaluateRequest:
    request = taxi()
    request.validate_only = True
    return request


def answers_at_once(s: ServerProcess, stored_name: str) -> dict[str, str]:
    """The calls that need no commit, each with a 2 s deadline, then the ones that touch a
    subject (their access record needs one), with 1 s: what each answered."""
    calls: dict[str, Callable[[], object]] = {
        "health": lambda: health(s.address, timeout=2),
        "ListScorecards": lambda: len(
            s.stub.ListScorecards(pb.ListScorecardsRequest(), timeout=2).scorecards
        ),
        "GetScorecard": lambda: (
            s.stub.GetScorecard(
                pb.GetScorecardRequest(name="scorecards/transport.taxi_driver"), timeout=2
            ).scorecard.scorecard_id
        ),
        "validate_only": lambda: s.stub.Evaluate(validate_only(), timeout=1).evaluation.grade.code,
        "GetEvaluation": lambda: (
            s.stub.GetEvaluation(
                pb.GetEvaluationRequest(name=stored_name, purpose="supervision"), timeout=1
            ).evaluation.name
            == stored_name
        ),
        "ListEvaluations": lambda: len(
            s.stub.ListEvaluations(
                pb.ListEvaluationsRequest(page_size=1, purpose="supervision"), timeout=1
            ).evaluations
        ),
    }
    out = {}
    for name, call in calls.items():
        try:
            out[name] = str(call())
        except grpc.RpcError as exc:
            out[name] = exc.code().name  # type: ignore[attr-defined]
    return out


class HeldWriter:
    """Blocks the server's writer where it waits for its commit: SQLite, the lock file the
    writer takes around each group (as a frozen disk would block its write); PostgreSQL, a
    session holding the evaluations table in EXCLUSIVE mode (reads still pass)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fd = -1
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None

    def hold(self) -> None:
        parsed = sa.make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            self._fd = os.open(f"{parsed.database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        else:
            self._engine = sa.create_engine(self.url)
            self._conn = self._engine.connect()
            self._conn.exec_driver_sql("LOCK TABLE evaluations IN EXCLUSIVE MODE")

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            assert self._engine is not None
            self._engine.dispose()
            self._conn = None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_stalled_write_holds_only_the_calls_that_need_it(tmp_path: Path, kind: str) -> None:
    with (
        database(kind, tmp_path, "stall") as url,
        running_server(url, tmp_path / "server.log") as s,
    ):
        stored = s.stub.Evaluate(taxi(subject_id=resident_id(1601)), timeout=10).evaluation
        held = HeldWriter(url)
        held.hold()
        try:
            with ThreadPoolExecutor(1) as pool:
                write = pool.submit(s.stub.Evaluate, taxi(subject_id=resident_id(1602)), timeout=60)
                time.sleep(0.5)  # the write is with the writer, held
                assert not write.done()
                t0 = time.monotonic()
                assert answers_at_once(s, stored.name) == {
                    "health": str(SERVING),
                    "ListScorecards": "9",
                    "GetScorecard": "transport.taxi_driver",
                    "validate_only": "DEADLINE_EXCEEDED",
                    "GetEvaluation": "DEADLINE_EXCEEDED",
                    "ListEvaluations": "DEADLINE_EXCEEDED",
                }
                # the first three at once, the last three each at its own 1 s deadline
                assert time.monotonic() - t0 < 8
                wait_for_health(s.address, NOT_SERVING, timeout=10)  # the commit is stuck
                assert not write.done()
                held.release()
                assert write.result(timeout=30).evaluation.name.startswith("evaluations/")
            wait_for_health(s.address, SERVING, timeout=10)
        finally:
            held.release()


def engine_evaluations(s: ServerProcess) -> int:
    """How many evaluations the engine has scored, from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("credit_engine_evaluation_seconds_count{")
    )


def test_a_third_batch_waits_its_turn_before_it_is_scored(tmp_path: Path) -> None:
    """servicer.BATCHES_AT_ONCE: two batches are scored and wait for their commit; a third is
    not scored (it would only add its replies, rows and results to the memory held) until
    one of them is answered. Then all three are stored."""
    with (
        database("sqlite", tmp_path, "turns") as url,
        running_server(url, tmp_path / "server.log") as s,
    ):
        held = HeldWriter(url)
        held.hold()
        try:
            with ThreadPoolExecutor(3) as pool:
                batches = [
                    pool.submit(
                        s.stub.BatchEvaluate,
                        pb.BatchEvaluateRequest(
                            requests=[
                                taxi(subject_id=resident_id(1700 + 10 * b + i)) for i in range(5)
                            ]
                        ),
                        timeout=60,
                    )
                    for b in range(3)
                ]
                deadline = time.monotonic() + 20
                while engine_evaluations(s) < 10:  # two batches scored, held at the writer
                    assert time.monotonic() < deadline, engine_evaluations(s)
                    time.sleep(0.1)
                time.sleep(1.0)  # time enough for a third to be scored, were it let in
                assert engine_evaluations(s) == 10
                assert not any(b.done() for b in batches)
                held.release()
                names = [r.evaluation.name for b in batches for r in b.result(timeout=30).results]
            assert len(set(names)) == 15 and all(n.startswith("evaluations/") for n in names)
            assert engine_evaluations(s) == 15
        finally:
            held.release()


REMOVALS: dict[str, Callable[[Path], None]] = {
    "file removed": lambda db: (
        [p.unlink() for p in db.parent.glob(db.name + "*") if p.suffix != ".lock"] and None
    ),
    "file replaced": lambda db: (
        (shutil.copy(db, db.with_suffix(".copy")), os.replace(db.with_suffix(".copy"), db)) and None
    ),
    "folder removed": lambda db: shutil.rmtree(db.parent),
}


@pytest.mark.parametrize("how", list(REMOVALS))
def test_a_sqlite_file_gone_from_under_the_server_makes_writes_unavailable(
    tmp_path: Path, how: str
) -> None:
    db = tmp_path / "data" / "audit.db"
    db.parent.mkdir()
    with running_server(f"sqlite:///{db}", tmp_path / "server.log") as s:
        assert s.stub.Evaluate(taxi(subject_id=resident_id(1610)), timeout=10).evaluation.name
        REMOVALS[how](db)

        for _ in range(3):  # never acknowledged, however often asked
            with pytest.raises(grpc.RpcError) as info:
                s.stub.Evaluate(taxi(subject_id=resident_id(1611)), timeout=10)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as info:
            s.stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=[taxi()] * 3), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        items = [
            pb.StreamEvaluateRequest(
                correlation_id=str(i), request=taxi(subject_id=resident_id(1620 + i))
            )
            for i in range(5)
        ]
        answers = list(s.stub.StreamEvaluate(iter(items), timeout=30))
        assert sorted((a.correlation_id, a.error.code, a.error.reason) for a in answers) == [
            (str(i), UNAVAILABLE, "STORE_UNAVAILABLE") for i in range(5)
        ]

        wait_for_health(s.address, NOT_SERVING, timeout=10)
        assert len(s.stub.ListScorecards(pb.ListScorecardsRequest(), timeout=5).scorecards) == 9
        with pytest.raises(grpc.RpcError) as info:  # its access record cannot be kept either
            s.stub.Evaluate(validate_only(), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert s.terminate() == 0
    log = s.log_text()
    assert "Task exception was never retrieved" not in log
    assert "Traceback" not in log


@pytest.mark.slow_fault
def test_a_stream_client_that_never_reads_slows_the_stream_instead_of_growing_the_server(
    tmp_path: Path,
) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "server.log", metrics=False
    ) as s:
        warm = [
            pb.StreamEvaluateRequest(correlation_id=str(i), request=taxi()) for i in range(2000)
        ]
        assert len(list(s.stub.StreamEvaluate(iter(warm), timeout=60))) == 2000
        before = rss_bytes(s.pid)

        sent = 0
        stop = threading.Event()

        def items() -> Iterator[pb.StreamEvaluateRequest]:
            nonlocal sent
            request = taxi()
            while not stop.is_set():
                sent += 1
                yield pb.StreamEvaluateRequest(correlation_id=str(sent), request=request)

        call = s.stub.StreamEvaluate(items(), timeout=120)  # never read
        counts = []
        try:
            # the server reads while flow control lets it (its window of 512 replies, then the
            # transport's buffers), then not one item more: sent stops growing for 3 s
            deadline = time.monotonic() + 60
            while len(counts) < 4 or counts[-1] != counts[-4]:
                assert time.monotonic() < deadline, f"the stream never stalled: {counts[-8:]}"
                time.sleep(1)
                counts.append(sent)
            grown = rss_bytes(s.pid) - before
        finally:
            stop.set()
            call.cancel()
        assert counts[-1] < 100_000, counts  # about 32,000 on loopback: socket and HTTP/2 buffers
        assert grown < 40 * 1024 * 1024, grown  # about 8 MB; unbounded, 10 KB per item read
        # the stream's server side is done with, and the server serves on
        assert s.stub.Evaluate(taxi(), timeout=10).evaluation.name
