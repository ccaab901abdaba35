"""Issue 16, item 7: the disk stays bounded, and backups are taken while serving.

- The SQLite write-ahead log stays under its limit while thousands of rows are written
  without a pause (concurrent reads too), and is emptied once writes stop.
- `sector-credit-server backup DEST` under load gives a consistent copy holding every
  evaluation acknowledged before it started (SQLite: VACUUM INTO; PostgreSQL: pg_dump,
  restored with pg_restore); an existing DEST is never overwritten.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sector_credit.server.db import EvaluationStore, migrate
from service_harness import database, resident_id, running_server, scratch_pg_database, taxi
from test_store import record

MiB = 1024 * 1024


def wal_bytes(db: Path) -> int:
    try:
        return os.stat(f"{db}-wal").st_size
    except FileNotFoundError:
        return 0


@pytest.mark.slow_fault
async def test_the_wal_stays_bounded_under_steady_writes_and_is_emptied_when_they_stop(
    tmp_path: Path,
) -> None:
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    migrate.upgrade(url)
    sizes = []
    async with await EvaluationStore.open(url, wal_limit_bytes=1 * MiB) as store:

        async def writer(k: int) -> None:
            for i in range(40):
                await store.save_many([record(f"S-{k}-{i}-{j}") for j in range(100)])
                sizes.append(wal_bytes(db))

        async def reader() -> None:
            for _ in range(200):
                await store.list(page_size=20)
                await asyncio.sleep(0)

        await asyncio.gather(*(writer(k) for k in range(6)), reader())  # 24,000 rows
        assert store.stats.rows == 24_000
        peak = max(sizes)
        deadline = time.monotonic() + 10
        while wal_bytes(db) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        idle = wal_bytes(db)
    assert peak < 6 * MiB, f"the log reached {peak / MiB:.1f} MiB (limit 1 MiB)"
    assert idle == 0, f"{idle} bytes of log left after 10 idle seconds"


def run_backup(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "backup",
            str(dest),
            "--database-url",
            url,
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def names_in(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            # SQLite keeps the id as 32 hex digits, PostgreSQL as a uuid
            return {
                f"evaluations/{uuid.UUID(str(row[0]))}"
                for row in conn.exec_driver_sql("SELECT id FROM evaluations")
            }
    finally:
        engine.dispose()


@pytest.mark.slow_fault
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_backup_taken_under_load_holds_every_evaluation_acknowledged_before_it(
    tmp_path: Path, kind: str
) -> None:
    if kind == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("no pg_dump")
    with (
        database(kind, tmp_path, "backup") as url,
        running_server(url, tmp_path / "server.log") as s,
    ):
        acknowledged: list[str] = []
        stop = threading.Event()

        def load() -> None:
            stub = s.stub
            i = 0
            while not stop.is_set():
                acknowledged.append(
                    stub.Evaluate(
                        taxi(subject_id=resident_id(1800 + i % 100)), timeout=30
                    ).evaluation.name
                )
                i += 1

        thread = threading.Thread(target=load)
        thread.start()
        try:
            while len(acknowledged) < 50:
                time.sleep(0.05)
            before = set(acknowledged)
            dest = tmp_path / "backup-1.db"
            done = run_backup(url, dest)
            assert done.returncode == 0, done.stderr
            assert '"event": "backup written"' in done.stderr
            again = run_backup(url, dest)  # never overwritten
            assert again.returncode == 1 and "exists" in again.stderr
        finally:
            stop.set()
            thread.join()
        assert len(acknowledged) > len(before)  # the server wrote on while the copy was made

        if kind == "sqlite":
            with sqlite3.connect(dest) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            copied = names_in(f"sqlite:///{dest}")
        else:
            with scratch_pg_database("restore") as restored:
                libpq = (
                    sa.make_url(restored)
                    .set(drivername="postgresql")
                    .render_as_string(hide_password=False)
                )
                subprocess.run(
                    ["pg_restore", "--no-owner", f"--dbname={libpq}", str(dest)],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                copied = names_in(restored)
        assert before <= copied
        assert copied <= set(acknowledged)  # and nothing that was not acknowledged
