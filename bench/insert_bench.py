"""Inserts: the writer's multi-row INSERT against SQLAlchemy's public ways to insert a group.

    .venv/bin/python bench/insert_bench.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/insert_bench.py --databases sqlite --repeat 31

The group-commit writer (dbwriter.py) inserts a group of evaluation rows with a few hand-built
multi-row INSERTs (`RowInserter`: `VALUES (…), (…), …`, each value bound by its column
type's public bind processor, executed with `exec_driver_sql`; on SQLite straight on the
driver's connection). This measures it against what SQLAlchemy offers publicly, in the same
run, on the same rows (real taxi-driver results of the built-in card, documents in format 2,
as the service writes them), one transaction and COMMIT per group:

- `multirow`: the writer's way (on SQLite as the writer does it: BEGIN IMMEDIATE, the
  statements and COMMIT on the driver connection);
- `executemany`: `conn.execute(insert(table), rows)`; on PostgreSQL SQLAlchemy turns this into
  batched multi-row INSERTs itself ("insertmanyvalues"), on SQLite it is the driver's
  executemany;
- `values`: `conn.execute(insert(table).values(rows))`, one multi-row INSERT compiled per
  group (the compiled form is not cached: it differs with the row count);
- `writer`: the store's own writer (`groupcommit.database_writer(...).write`), as a group
  commit calls it: on PostgreSQL BEGIN, the multi-row INSERTs (`ON CONFLICT (id) DO
  NOTHING`) and COMMIT in psycopg's pipeline mode, one round trip (postgres_writer.py),
  where `multirow` waits for each statement in turn.

Printed per database and group size: µs per row (median of `--repeat` groups) and the ratio
of each to `multirow`. Group sizes: 1 and 4 (unary calls at low and medium load), 100 and
1000 (a batch).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_bench as sb

SIZES = (1, 4, 100, 1000)


def _records(n: int) -> list[Any]:
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert
    from sector_credit.server.db.rows import EvaluationRecord
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    taxi = build_registry(get_plugin_manager()).resolve(sb.SCORECARD)
    records = []
    for body in sb.build_pool(n):
        inp = convert.evaluation_input_from_proto(pb.EvaluateRequest.FromString(body))
        records.append(
            EvaluationRecord(
                inp, taxi.evaluate(inp.subject, inp.indicators, inp.as_of), caller="bench"
            )
        )
    return records, taxi.card


def _methods(engine: Any) -> dict[str, Callable[[Any, list[dict[str, Any]]], None]]:
    import sqlalchemy as sa
    from sector_credit.server.db.dbwriter import RowInserter
    from sector_credit.server.db.groupcommit import database_writer
    from sector_credit.server.db.rows import EVALUATIONS

    inserter = RowInserter(engine.dialect, EVALUATIONS)
    database = database_writer(engine, lambda digest, conn: None)
    sqlite = engine.dialect.name == "sqlite"

    def multirow(conn: Any, rows: list[dict[str, Any]]) -> None:
        if sqlite:
            dbapi = conn.connection.dbapi_connection
            dbapi.execute("BEGIN IMMEDIATE")
            for sql, params in inserter.statements(rows):
                dbapi.execute(sql, params)
            dbapi.execute("COMMIT")
        else:
            with conn.begin():
                inserter.insert(conn, rows)

    def executemany(conn: Any, rows: list[dict[str, Any]]) -> None:
        with conn.begin():
            conn.execute(sa.insert(EVALUATIONS), rows)

    def values(conn: Any, rows: list[dict[str, Any]]) -> None:
        with conn.begin():
            conn.execute(sa.insert(EVALUATIONS).values(rows))

    def writer(conn: Any, rows: list[dict[str, Any]]) -> None:
        database.write(rows, lambda outcomes: [])

    return {"multirow": multirow, "executemany": executemany, "values": values, "writer": writer}


def run(url: str, label: str, records: list[Any], card: Any, repeat: int) -> list[str]:
    from sector_credit.server.db import migrate
    from sector_credit.server.db.engine import create_engine
    from sector_credit.server.db.rowjson import result_parts
    from sector_credit.server.db.rows import evaluation_row

    migrate.upgrade(url)
    engine = create_engine(url)
    parts = {card.digest: result_parts(card)}
    methods = _methods(engine)
    out = []
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        for size in SIZES:
            per_row: dict[str, list[float]] = {name: [] for name in methods}
            for i in range(repeat):
                # the methods take turns, so a noisy moment costs each of them alike
                for name, method in methods.items():
                    rows = [
                        evaluation_row(records[(i * size + k) % len(records)], parts)[0]
                        for k in range(size)
                    ]
                    for row in rows:
                        row["request_id"] = None
                    started = time.perf_counter()
                    method(conn, rows)
                    per_row[name].append((time.perf_counter() - started) / size * 1e6)
            medians = {name: statistics.median(xs) for name, xs in per_row.items()}
            ref = medians["multirow"]
            cells = "  ".join(
                f"{name} {m:8.1f} µs/row ({m / ref:4.2f})" for name, m in medians.items()
            )
            out.append(f"{label:10} group {size:5}  {cells}")
            print(out[-1], flush=True)
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=21, help="groups per size and method")
    parser.add_argument("--pg-admin-url", default=sb.PG_ADMIN_URL)
    a = parser.parse_args(argv)
    records, card = _records(500)
    for database in a.databases.split(","):
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                run(f"sqlite:///{folder}/insert-bench.db", "sqlite", records, card, a.repeat)
        else:
            pg = sb.PgScratch(a.pg_admin_url)
            try:
                run(pg.url, "postgresql", records, card, a.repeat)
            finally:
                pg.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
