"""Issue 16, items 1 and 4: health tells the truth, and streams answer every item, while the
audit store cannot commit.

- PostgreSQL down (a private instance of our own, stopped and started): health turns
  NOT_SERVING, writes are UNAVAILABLE, every item of every stream is answered with
  UNAVAILABLE (none silently dropped, no stream OK over unanswered items), and once the
  database is back health is SERVING and writes succeed, without a restart.
- A full disk (a small tmpfs, filled to the last block): NOT_SERVING while it is full,
  SERVING once space is freed; no write is acknowledged that cannot be read back.
- The records store unusable (issue 10: its table renamed away on SQLite, locked on
  PostgreSQL) while the evaluations' is fine: the RecordService and the server overall
  NOT_SERVING, the CreditEvaluationService SERVING, and all SERVING again
  once the table is back.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from faultkit import (
    NOT_SERVING,
    SERVING,
    fill,
    health,
    private_postgres,
    small_filesystem,
    wait_for_health,
)
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, database, resident_id, running_server, taxi

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


def stream_of_five(s: ServerProcess, n: int) -> list[tuple[str, int]]:
    items = [
        pb.StreamEvaluateRequest(
            correlation_id=f"{n}-{i}", request=taxi(subject_id=resident_id(1700 + i))
        )
        for i in range(5)
    ]
    return sorted(
        (a.correlation_id, a.error.code) for a in s.stub.StreamEvaluate(iter(items), timeout=60)
    )


def test_postgresql_down_is_not_serving_and_back_is_serving_without_a_restart(
    tmp_path: Path,
) -> None:
    with (
        private_postgres(tmp_path / "pg") as pg,
        running_server(pg.url, tmp_path / "server.log") as s,
    ):
        assert s.stub.Evaluate(taxi(), timeout=10).evaluation.name
        assert wait_for_health(s.address, SERVING) < 1

        pg.stop()
        try:
            wait_for_health(s.address, NOT_SERVING, timeout=15)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the server's log ends:\n{s.log_text()[-3000:]}") from None
        with pytest.raises(grpc.RpcError) as info:
            s.stub.Evaluate(taxi(), timeout=20)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with ThreadPoolExecutor(8) as pool:
            streams = list(pool.map(lambda n: stream_of_five(s, n), range(40)))
        for n, answers in enumerate(streams):  # every item answered, each UNAVAILABLE
            assert answers == [(f"{n}-{i}", UNAVAILABLE) for i in range(5)]

        pg.start()
        wait_for_health(s.address, SERVING, timeout=20)
        stored = s.stub.Evaluate(taxi(), timeout=20).evaluation
        assert (
            s.stub.GetEvaluation(
                pb.GetEvaluationRequest(name=stored.name, purpose="supervision"), timeout=10
            ).evaluation.name
            == stored.name
        )
        assert all(code == 0 for _, code in stream_of_five(s, 99))
    assert "Task exception was never retrieved" not in s.log_text()


def test_a_full_disk_is_not_serving_until_space_is_freed(tmp_path: Path) -> None:
    with (
        small_filesystem(tmp_path / "disk", size_mb=48) as disk,
        running_server(f"sqlite:///{disk / 'audit.db'}", tmp_path / "server.log") as s,
    ):
        assert s.stub.Evaluate(taxi(), timeout=10).evaluation.name
        filler = fill(disk)
        wait_for_health(s.address, NOT_SERVING, timeout=10)
        acknowledged = []
        for i in range(20):  # a commit may still fit in log space already there; none is lost
            try:
                acknowledged.append(
                    s.stub.Evaluate(
                        taxi(subject_id=resident_id(1750 + i)), timeout=20
                    ).evaluation.name
                )
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        filler.unlink()
        wait_for_health(s.address, SERVING, timeout=10)
        assert s.stub.Evaluate(taxi(), timeout=10).evaluation.name
        for name in acknowledged:
            assert (
                s.stub.GetEvaluation(
                    pb.GetEvaluationRequest(name=name, purpose="supervision"), timeout=10
                ).evaluation.name
                == name
            )


# -- the records store (issue 10) ---------------------------------------------------------------

EVALUATIONS = "sector_credit.v1.CreditEvaluationService"
RECORDS = "sector_credit.v1.RecordService"


@contextlib.contextmanager
def records_unusable(kind: str, url: str) -> Iterator[None]:
    """The records tables unusable while the evaluations' are fine: on SQLite the records
    table renamed away (a broken schema), on PostgreSQL held under an ACCESS EXCLUSIVE lock
    (a stuck migration or maintenance); put back afterwards."""
    if kind == "sqlite":
        db = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
        try:
            db.execute("ALTER TABLE records RENAME TO records_away")
            yield
            db.execute("ALTER TABLE records_away RENAME TO records")
        finally:
            db.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("LOCK TABLE records IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_unusable_records_store_is_not_serving_for_records_and_overall(
    tmp_path: Path, kind: str
) -> None:
    with (
        database(kind, tmp_path) as url,
        running_server(url, tmp_path / "server.log") as s,
    ):
        for service in ("", EVALUATIONS, RECORDS):
            wait_for_health(s.address, SERVING, service=service)
        with records_unusable(kind, url):
            wait_for_health(s.address, NOT_SERVING, service=RECORDS)
            assert health(s.address) == NOT_SERVING
            assert health(s.address, service=EVALUATIONS) == SERVING  # it needs no records
        for service in ("", RECORDS):
            wait_for_health(s.address, SERVING, service=service)
    assert "the records store cannot be used; health NOT_SERVING" in s.log_text()
