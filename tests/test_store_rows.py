"""The writer's fast path stores a row exactly as SQLAlchemy's own INSERT would, on SQLite
and PostgreSQL: the same raw values in every column, for groups of every size."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid

import pytest
import sqlalchemy as sa
from sector_credit.server.db import EvaluationStore, StoredEvaluation, migrate
from sector_credit.server.db.dbwriter import RowInserter
from sector_credit.server.db.engine import create_engine
from sector_credit.server.db.postgres_writer import EXECUTEMANY_FROM
from sector_credit.server.db.rows import EVALUATIONS, evaluation_row
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


@pytest.mark.parametrize("n", [EXECUTEMANY_FROM - 1, EXECUTEMANY_FROM, 3 * EXECUTEMANY_FROM])
async def test_a_batch_of_any_size_reads_back_and_replays(database_url: str, n: int) -> None:
    # on PostgreSQL a group of EXECUTEMANY_FROM rows or more goes as SQLAlchemy's executemany
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
