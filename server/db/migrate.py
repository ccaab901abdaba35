"""Schema migrations: Alembic, configured in code, run at start-up or from the command line.

    python -m sector_credit.server.db.migrate --url sqlite:///audit.db upgrade
    python -m sector_credit.server.db.migrate --url postgresql://postgres@127.0.0.1/x current

The scripts live in the package `sector_credit.server.migrations`, so an installed server
needs no alembic.ini. Many replicas may start at once: on PostgreSQL the migration runs
under a session advisory lock, on SQLite inside BEGIN IMMEDIATE; whoever comes second
waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sector_credit.server.migrations as _migrations
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from .engine import create_engine, database_url, is_postgresql
from .errors import StoreUnavailable

MIGRATIONS_DIR = Path(_migrations.__file__).parent

# Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`):
# two migrations in threads of one process would share them, so they take turns.
_in_process = threading.Lock()

# pg_advisory_lock takes a signed 64-bit key; derive a stable one from the name.
_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"sector_credit.server.migrations").digest()[:8], "big", signed=True
)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration for the packaged scripts (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        text = database_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return cfg


def head() -> str:
    """The newest revision the package ships."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


@contextmanager
def _locked(url: str | URL) -> Iterator[Connection]:
    """A connection holding the migration lock (PostgreSQL) or taking the write lock at
    BEGIN (SQLite). Raises StoreUnavailable when the database cannot be reached."""
    engine = create_engine(url, null_pool=True)
    try:
        with engine.connect() as conn:
            if is_postgresql(conn):
                conn.execute(sa.select(sa.func.pg_advisory_lock(_LOCK_KEY)))
                conn.commit()  # the session-level lock outlives the transaction
                try:
                    yield conn
                finally:
                    try:
                        conn.rollback()
                        conn.execute(sa.select(sa.func.pg_advisory_unlock(_LOCK_KEY)))
                        conn.commit()
                    except SQLAlchemyError:
                        pass  # a lost connection has released its lock already
            else:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                yield conn
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"cannot migrate the audit database: {exc.orig}") from exc
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database up to `revision` (default: the newest); a no-op when there."""
    with _in_process, _locked(url) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database down to `revision` ("base" drops everything)."""
    with _in_process, _locked(url) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(url: str | URL) -> str | None:
    """The revision the database is at; None for an empty database."""
    engine = create_engine(url, null_pool=True)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read the schema revision: {exc}") from exc
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sector_credit.server.db.migrate",
        description="Migrate the sector-credit audit database.",
    )
    parser.add_argument("--url", required=True, help="sqlite:///file.db or postgresql://...")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="migrate up (default: to the newest revision)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to a revision ('base': empty)")
    down.add_argument("revision")
    sub.add_parser("current", help="print the database's revision")
    sub.add_parser("heads", help="print the newest revision shipped")
    args = parser.parse_args(argv)
    try:
        if args.action == "upgrade":
            upgrade(args.url, args.revision)
        elif args.action == "downgrade":
            downgrade(args.url, args.revision)
        elif args.action == "current":
            print(current(args.url) or "(empty)")
        else:
            print(head())
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
