"""Shared fixtures: the databases the persistence tests run against.

`database_url` gives each test an empty database, once as a SQLite file and once on
PostgreSQL. PostgreSQL is the server on 127.0.0.1:5432 (user postgres, trust auth; override
with SECTOR_CREDIT_TEST_PG_URL): one scratch database with a random name is created per
test session, emptied before each test and dropped at the end. When PostgreSQL cannot be
reached its tests FAIL, unless SECTOR_CREDIT_SKIP_PG=1 says to skip them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_SERVER_URL = os.environ.get(
    "SECTOR_CREDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_scratch_url() -> Iterator[str]:
    """The URL of a scratch PostgreSQL database for this test session."""
    if os.environ.get("SECTOR_CREDIT_SKIP_PG") == "1":
        pytest.skip("SECTOR_CREDIT_SKIP_PG=1")
    server = sa.create_engine(
        PG_SERVER_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"sector_credit_test_{secrets.token_hex(6)}"
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {PG_SERVER_URL} is unreachable ({exc.orig}); start it, or set"
            " SECTOR_CREDIT_SKIP_PG=1 to skip the PostgreSQL tests",
            pytrace=False,
        )
    try:
        yield sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a fresh SQLite file, or the PostgreSQL scratch database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("pg_scratch_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url
