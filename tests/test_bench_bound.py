"""bench/bound_server.py: the real server with parts switched off (issue 12's measured bound).

Each case starts it as a real process with `--workers 2` on a SQLite file, sends Evaluate
calls each over its own connection (the kernel spreads connections over the workers) and
one BatchEvaluate, and checks the replies are full, named evaluations, what the database
holds afterwards, and the log lines. Every worker must say it switched the parts off: the
workers are fresh interpreters, and only a module-level patch reaches them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from service_harness import ServerProcess, resident_id, taxi

BOUND_SERVER = Path(__file__).resolve().parent.parent / "bench" / "bound_server.py"
UNARY = 6  # Evaluate calls, each over its own connection
BATCH = 3  # items of the one BatchEvaluate
CALLS = UNARY + BATCH

WORKERS = 2
# SECTOR_CREDIT_BENCH_OFF -> evaluation rows, access-record rows, per-RPC log lines, and
# whether each reply is scored (the requests all score differently) or the first result of
# its worker answers it (score off: at most one score per worker among the replies)
CASES = [
    ("", CALLS, CALLS, UNARY + 1, True),  # unset: the real server
    ("store", 0, 0, UNARY + 1, True),
    ("rows,log", 0, 0, 0, True),
    ("score", CALLS, CALLS, UNARY + 1, False),
]


class BoundServer(ServerProcess):
    """ServerProcess's server, launched through bench/bound_server.py (same argv)."""

    def command(self) -> list[str]:
        cmd = super().command()
        assert cmd[1:3] == ["-m", "sector_credit.server.main"]
        return [cmd[0], str(BOUND_SERVER), *cmd[3:]]


def _request(i: int) -> pb.EvaluateRequest:
    # i 1-point violations: a score of its own per request
    return taxi(subject_id=resident_id(9100 + i), violations_1pt=i, bonus_points="1")


def _check(evaluation: pb.Evaluation) -> str:
    assert evaluation.name.startswith("evaluations/"), evaluation
    assert evaluation.HasField("create_time") and evaluation.create_time.seconds > 0
    assert evaluation.grade.code and evaluation.score and evaluation.lines, evaluation
    return evaluation.score


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("off, evaluations, access, rpc_lines, scored", CASES)
def test_bound_server_switches_off_what_it_is_told_in_every_worker(
    tmp_path: Path, off: str, evaluations: int, access: int, rpc_lines: int, scored: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    server = BoundServer(
        url,
        tmp_path / "server.log",
        "--workers",
        str(WORKERS),
        metrics=False,
        env={"SECTOR_CREDIT_BENCH_OFF": off},
    ).start()
    try:
        names, got = [], []
        for i in range(UNARY):
            channel = grpc.insecure_channel(  # its own connection: either worker may take it
                server.address,
                options=[("grpc.use_local_subchannel_pool", 1), ("test.channel", i)],
            )
            with channel:
                reply = pb_grpc.CreditEvaluationServiceStub(channel).Evaluate(
                    _request(i), timeout=30
                )
            got.append(_check(reply.evaluation))
            names.append(reply.evaluation.name)
        batch = server.stub.BatchEvaluate(
            pb.BatchEvaluateRequest(requests=[_request(UNARY + k) for k in range(BATCH)]),
            timeout=30,
        )
        assert len(batch.results) == BATCH
        for result in batch.results:
            assert result.HasField("evaluation"), result
            got.append(_check(result.evaluation))
            names.append(result.evaluation.name)
        assert len(set(names)) == CALLS  # a fresh id for each, stored or not
        assert len(set(got)) == CALLS if scored else len(set(got)) <= WORKERS, got
    finally:
        code = server.terminate()
    log = server.log_text()
    assert code == 0, log[-3000:]

    workers = {
        int(p) for p in re.findall(r'"pid": (\d+), "port": \d+, "event": "worker serving"', log)
    }
    announced = {int(p) for p in re.findall(rf"bound_server: pid (\d+): off {off}\n", log)}
    assert len(workers) == WORKERS, log[-3000:]
    assert workers <= announced if off else not announced, (workers, announced)
    assert _count(url, "evaluations") == evaluations
    assert _count(url, "access_records") == access
    assert len(server.rpc_records()) == rpc_lines


# a part the launcher does not know stops it before anything starts (a misspelt bound
# configuration would otherwise measure the whole server under another name)
REFUSED = [("stroe", "stroe"), ("store,logs", "logs"), ("store, nope ,log", "nope")]


@pytest.mark.parametrize("off, named", REFUSED)
def test_bound_server_refuses_a_part_it_does_not_know(off: str, named: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BOUND_SERVER), "--help"],
        env={**os.environ, "SECTOR_CREDIT_BENCH_OFF": off},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"unknown part(s) {named}" in done.stderr, done.stderr
    assert "usage" not in done.stdout  # the server's own --help never ran
