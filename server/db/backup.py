"""`sector-credit-server backup DEST`: a consistent copy of the audit database, taken while
servers write to it (docs/operations.md has the schedule and the retention commands).

SQLite: `VACUUM INTO`, a snapshot read in one transaction (WAL: writers go on meanwhile),
written compacted to a file beside DEST and renamed onto it when complete, so DEST is
either the whole copy or absent. PostgreSQL: `pg_dump --format=custom`, which also reads
one snapshot; restore with `pg_restore --clean --dbname URL DEST`. An existing DEST is never
overwritten: backups are kept by name (e.g. a date), and retention deletes old ones.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa

from .engine import database_url
from .errors import StoreUnavailable


class BackupFailed(Exception):
    """The backup could not be written (DEST exists, no pg_dump, pg_dump failed)."""


def backup(url: str, dest: str | os.PathLike[str]) -> Path:
    """Write a consistent copy of the database at `url` to `dest`; returns its path."""
    target = Path(dest).absolute()
    if target.exists():
        raise BackupFailed(f"{target} exists; a backup never overwrites one: choose a new name")
    if not target.parent.is_dir():
        raise BackupFailed(f"{target.parent} is not a folder")
    parsed = database_url(url)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if parsed.get_backend_name() == "sqlite":
            _sqlite(str(parsed.database), partial)
        else:
            _pg_dump(parsed, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _sqlite(database: str, partial: Path) -> None:
    if not Path(database).is_file():
        raise StoreUnavailable(f"the audit database is unavailable (no file {database})")
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            conn.execute("VACUUM INTO ?", (str(partial),))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreUnavailable(
            f"the audit database is unavailable ({type(exc).__name__}: {exc})"
        ) from exc


def _pg_dump(url: sa.URL, partial: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupFailed("pg_dump is not on PATH: install the PostgreSQL client tools")
    env = dict(os.environ)
    if url.password is not None:  # by the environment, not on a command line others can read
        env["PGPASSWORD"] = str(url.password)
    libpq = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={partial}", libpq],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise StoreUnavailable(f"the audit database is unavailable (pg_dump: {first})")
