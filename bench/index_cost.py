"""What each index of `evaluations` costs an insert, on a small store and a 1M-row one (SQLite).

    .venv/bin/python bench/growth.py --databases sqlite --rounds 1 --keep --work /tmp/gw
    .venv/bin/python bench/index_cost.py /tmp/gw/growth-small.db /tmp/gw/growth-big.db
    .venv/bin/python bench/index_cost.py --commits /tmp/gw/growth-small.db /tmp/gw/growth-big.db

For each store, and for each secondary index dropped in turn (none first), it inserts 5,000
evaluations in one transaction and rolls it back, so the file is left as it was (the DROP
INDEX is rolled back with it). Each row is a copy of a random stored one (so its subject has
evaluations already, as most subjects of a big store do) with a new id, and a new request
id for a third of them, as growth.py fills. The connection is set as the service's writer's
(WAL, synchronous NORMAL, SQLite's default 2 MB page cache). Printed: µs per row, medians of
3 runs with different rows. The commit is left out: its cost does not depend on the size of
the store. The primary key and the unique request id stay: the service needs both.

`--commits` measures instead what a unary call's group costs the writer: 2,000 one-row
transactions, each committed (WAL, synchronous NORMAL, no automatic checkpoint; a TRUNCATE
checkpoint after each run), with SQLite's page cache at its default 2 MB and at 4, 8 and
16 MB; CPU and wall µs per commit, medians of 3 rounds that alternate the stores. These
rows stay in the stores: run it on growth.py's scratch stores only.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import time
import uuid

INDEXES = ("", "ix_evaluations_scorecard_id_id", "ix_evaluations_subject_id_id")


def _stored_rows(db: sqlite3.Connection, rng: random.Random, n: int) -> list[list[object]]:
    """`n` random stored evaluations, as lists of their columns."""
    last = db.execute("SELECT max(rowid) FROM evaluations").fetchone()[0]
    rows: list[list[object]] = []
    while len(rows) < n:
        row = db.execute(
            "SELECT * FROM evaluations WHERE rowid = ?", (rng.randrange(1, last + 1),)
        ).fetchone()
        if row is not None:
            rows.append(list(row))
    return rows


def insert_cost(path: str, drop: str, seed: int, n: int = 5000) -> float:
    """µs per row of `n` inserts into `path`, with index `drop` dropped ("" none)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        rng = random.Random(seed)
        rows = [
            [uuid.uuid4().hex, f"index-cost-{uuid.uuid4().hex}" if rng.random() < 1 / 3 else None]
            + row[2:]
            for row in _stored_rows(db, rng, n)
        ]
        sql = f"INSERT INTO evaluations VALUES ({', '.join('?' * len(rows[0]))})"
        db.execute("BEGIN IMMEDIATE")
        try:
            if drop:
                db.execute(f"DROP INDEX {drop}")
            started = time.perf_counter()
            for copy in rows:
                db.execute(sql, copy)
            return (time.perf_counter() - started) / n * 1e6
        finally:
            db.execute("ROLLBACK")
    finally:
        db.close()


CACHES_KB = (2048, 4096, 8192, 16384)  # 2048: SQLite's default (cache_size = -2000 is 2 MB)


def commit_cost(path: str, cache_kb: int, seed: int, n: int = 2000) -> tuple[float, float]:
    """CPU and wall µs per one-row commit into `path` with a page cache of `cache_kb`."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA wal_autocheckpoint = 0")  # the service's checkpointer's job
        if cache_kb != CACHES_KB[0]:
            db.execute(f"PRAGMA cache_size = -{cache_kb}")
        rng = random.Random(seed)  # a new id, no request id
        rows = [[uuid.uuid4().hex, None, *row[2:]] for row in _stored_rows(db, rng, n)]
        sql = f"INSERT INTO evaluations VALUES ({', '.join('?' * len(rows[0]))})"
        cpu, wall = time.process_time(), time.perf_counter()
        for copy in rows:
            db.execute("BEGIN IMMEDIATE")
            db.execute(sql, copy)
            db.execute("COMMIT")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return cpu / n * 1e6, wall / n * 1e6
    finally:
        db.close()


def commits(small: str, big: str) -> None:
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for seed in (1, 2, 3):
        for path in (small, big) if seed % 2 else (big, small):
            for cache in CACHES_KB:
                runs.setdefault((path, cache), []).append(commit_cost(path, cache, seed))
    print("| page cache | small CPU / wall µs per commit | big CPU / wall µs per commit |")
    print("|---|---:|---:|")
    for cache in CACHES_KB:
        cells = [
            " / ".join(f"{statistics.median(r[i] for r in runs[path, cache]):.0f}" for i in (0, 1))
            for path in (small, big)
        ]
        print(f"| {cache // 1024} MB | {cells[0]} | {cells[1]} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("small", help="the small store's SQLite file (growth.py --keep)")
    ap.add_argument("big", help="the big store's SQLite file")
    ap.add_argument("--commits", action="store_true", help="one-row commits by page cache size")
    a = ap.parse_args(argv)
    if a.commits:
        commits(a.small, a.big)
        return 0
    print("| index dropped | small µs/row | big µs/row | big − small |")
    print("|---|---:|---:|---:|")
    for drop in INDEXES:
        small, big = (
            statistics.median(insert_cost(path, drop, seed) for seed in (1, 2, 3))
            for path in (a.small, a.big)
        )
        print(f"| {drop or 'none'} | {small:.1f} | {big:.1f} | {big - small:+.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
