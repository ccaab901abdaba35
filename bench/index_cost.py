"""What each index of `evaluations` costs an insert, on a small store and a 1M-row one (SQLite).

    .venv/bin/python bench/growth.py --databases sqlite --rounds 1 --keep --work /tmp/gw
    .venv/bin/python bench/index_cost.py /tmp/gw/growth-small.db /tmp/gw/growth-big.db

For each store, and for each secondary index dropped in turn (none first), it inserts 5,000
evaluations in one transaction and rolls it back, so the file is left as it was (the DROP
INDEX is rolled back with it). Each row is a copy of a random stored one (so its subject has
evaluations already, as most subjects of a big store do) with a new id, and a new request
id for a third of them, as growth.py fills. The connection is set as the service's writer's
(WAL, synchronous NORMAL, SQLite's default 2 MB page cache). Printed: µs per row, medians of
3 runs with different rows. The commit is left out: its cost does not depend on the size of
the store. The primary key and the unique request id stay: the service needs both.
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


def insert_cost(path: str, drop: str, seed: int, n: int = 5000) -> float:
    """µs per row of `n` inserts into `path`, with index `drop` dropped ("" none)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        last = db.execute("SELECT max(rowid) FROM evaluations").fetchone()[0]
        rng = random.Random(seed)
        rows = []
        while len(rows) < n:
            row = db.execute(
                "SELECT * FROM evaluations WHERE rowid = ?", (rng.randrange(1, last + 1),)
            ).fetchone()
            if row is None:
                continue
            copy = list(row)
            copy[0] = uuid.uuid4().hex  # id
            copy[1] = f"index-cost-{uuid.uuid4().hex}" if rng.random() < 1 / 3 else None
            rows.append(copy)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("small", help="the small store's SQLite file (growth.py --keep)")
    ap.add_argument("big", help="the big store's SQLite file")
    a = ap.parse_args(argv)
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
