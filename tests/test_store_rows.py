"""The writer's fast path stores a row exactly as SQLAlchemy's own INSERT would, on SQLite
and PostgreSQL: the same raw values in every column, for groups of every size. On
PostgreSQL a group is one round trip, and writing it again stores nothing twice."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sector_credit.server.db import (
    AccessRecord,
    EvaluationStore,
    StoredEvaluation,
    StoreError,
    migrate,
)
from sector_credit.server.db.dbwriter import RowInserter
from sector_credit.server.db.engine import create_engine
from sector_credit.server.db.groupcommit import database_writer
from sector_credit.server.db.rows import EVALUATIONS, access_row, evaluation_row
from sector_credit.server.db.sqlite_writer import WRITER_CACHE_KIB
from test_store import record

COLUMNS = [c.name for c in EVALUATIONS.columns]


def _raw(engine: sa.Engine, ids: list[uuid.UUID]) -> dict[str, tuple[object, ...]]:
    """Column values as the driver returns them, no SQLAlchemy types applied, by row id."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT {', '.join(COLUMNS)} FROM evaluations ORDER BY id"
        ).all()
    out = {}
    for row in rows:
        out[str(row[0])] = tuple(row[1:])
    return out


@pytest.mark.parametrize("n", [1, 3, 37, 300])
def test_fast_insert_stores_what_sqlalchemy_stores(database_url: str, n: int) -> None:
    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    rows = [
        evaluation_row(record(f"S-{i}", request_id=f"r-{i}" if i % 2 else None))[0]
        for i in range(n)
    ]
    twins = []
    for row in rows:
        twin = copy.copy(row)
        twin["id"] = uuid.uuid4()
        twin["request_id"] = None if row["request_id"] is None else row["request_id"] + "-twin"
        twins.append(twin)
    with engine.begin() as conn:
        RowInserter(conn.dialect, EVALUATIONS).insert(conn, rows)
        conn.execute(sa.insert(EVALUATIONS), twins)
    raw = _raw(engine, [r["id"] for r in rows + twins])
    engine.dispose()
    assert len(raw) == 2 * n
    for row, twin in zip(rows, twins):
        fast, reference = raw[_key(row["id"], raw)], raw[_key(twin["id"], raw)]
        assert fast[1:] == reference[1:]  # all but request_id (made distinct above)
        assert (fast[0] is None) == (reference[0] is None)


def _key(evaluation_id: uuid.UUID, raw: dict[str, object]) -> str:
    for key in (str(evaluation_id), evaluation_id.hex):  # PostgreSQL: uuid; SQLite: hex text
        if key in raw:
            return key
    raise KeyError(evaluation_id)


async def test_a_store_reads_back_what_the_fast_path_wrote(database_url: str) -> None:
    migrate.upgrade(database_url)
    async with await EvaluationStore.open(database_url) as store:
        saved = await asyncio.gather(*(store.save(record(f"S-{i}")) for i in range(70)))
        for s in saved:
            assert await store.get(s.id) == s


@pytest.mark.parametrize("n", [15, 99, 256, 300, 1000])
async def test_a_batch_of_any_size_reads_back_and_replays(database_url: str, n: int) -> None:
    migrate.upgrade(database_url)
    async with await EvaluationStore.open(database_url) as store:
        first = await store.save(record("S-0", request_id="again"))
        outcomes = await store.save_many(
            [record(f"S-{i}", request_id=f"b-{i}") for i in range(1, n)]
            + [record("S-0", request_id="again")]
        )
        assert outcomes[-1] == dataclasses.replace(first, replayed=True)
        for saved in outcomes[:-1]:
            assert isinstance(saved, StoredEvaluation)
            assert await store.get(saved.id) == saved


def _group(n: int, request_ids: bool = True) -> tuple[list[dict[str, object]], list[object]]:
    rows = [
        evaluation_row(record(f"S-{i}", request_id=f"g-{i}" if request_ids else None))[0]
        for i in range(n)
    ]
    access = [
        access_row(AccessRecord("tester", "local", "Evaluate", "OK", subject_id=f"S-{i}"))
        for i in range(n)
    ]
    return rows, access


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.exec_driver_sql("SELECT count(*) FROM evaluations").scalar_one(),
            conn.exec_driver_sql("SELECT count(*) FROM access_records").scalar_one(),
        )


# (rows in the group, round trips): BEGIN, every INSERT of both tables and COMMIT answer at
# one Sync, however many statements the group takes (1000 rows: 63, and the access records')
ROUND_TRIPS = [(1, 1), (37, 1), (1000, 1)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("n", "round_trips"), ROUND_TRIPS)
def test_a_postgresql_group_is_one_round_trip(
    database_url: str, tmp_path: Path, n: int, round_trips: int
) -> None:
    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    writer = database_writer(engine, lambda digest, conn: None)
    rows, access = _group(n)
    writer.write(rows[:1], lambda outcomes: [])  # opens the writer's connection
    driver = writer._connection().connection.driver_connection
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        driver.pgconn.trace(out.fileno())
        written = writer.write(rows[1:] + _group(1, request_ids=False)[0], lambda _: access)
        driver.pgconn.untrace()
    writer.close()
    # the server answers every wait for results with ReadyForQuery
    assert trace.read_text().count("ReadyForQuery") == round_trips
    assert written.outcomes == [None] * n and not written.row_by_row
    assert _counts(engine) == (n + 1, n)
    engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_group_written_again_is_stored_once(database_url: str) -> None:
    # what the writer does when the connection died after COMMIT was sent: the group goes
    # again on a fresh connection, and the rows the first attempt committed are found by id
    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    rows, access = _group(5)
    first = database_writer(engine, lambda digest, conn: None)
    assert first.write(rows, lambda _: access).outcomes == [None] * 5
    first.close()
    again = database_writer(engine, lambda digest, conn: None)
    written = again.write(rows, lambda _: access)
    assert written.outcomes == [None] * 5 and not written.row_by_row
    # a row whose request id another evaluation holds still goes the row-by-row way
    taken = dict(evaluation_row(record("S-9", request_id="g-0"))[0])
    written = again.write(rows + [taken], lambda _: access)
    assert written.row_by_row
    assert written.outcomes[:5] == [None] * 5
    assert isinstance(written.outcomes[5], StoreError)  # another request under "g-0"
    again.close()
    assert _counts(engine) == (5, 5)
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sqlite_writer_connection_has_its_own_page_cache(database_url: str) -> None:
    """The writer's connection holds WRITER_CACHE_KIB of pages (a big store's index pages;
    docs/benchmarks.md, "Growth: what the big store costs a commit"), never checkpoints on
    commit (the checkpointer does); other connections keep SQLite's default cache."""
    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    writer = database_writer(engine, lambda digest, conn: None)
    writer.write(_group(1)[0], lambda outcomes: [])  # opens the writer's connection
    driver = writer._connection().connection.driver_connection
    assert driver.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB
    assert driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    with engine.connect() as other:
        assert other.exec_driver_sql("PRAGMA cache_size").scalar_one() == -2000  # the default
    writer.close()
    engine.dispose()
