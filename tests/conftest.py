"""Shared fixtures: the databases the persistence tests run against.

`database_url` gives each test an empty database, once as a SQLite file and once on
PostgreSQL. PostgreSQL is the session's server from pg_server.py: the configured one
(SECTOR_CREDIT_TEST_PG_URL, default 127.0.0.1:5432) when it answers, else a throwaway one
started for the session. One scratch database with a random name is created per test
session, emptied before each test and dropped at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pg_server
import pytest
import sqlalchemy as sa


def pytest_sessionfinish(session: pytest.Session) -> None:
    pg_server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    used = pg_server.describe()
    if used is not None:
        terminalreporter.write_line(f"PostgreSQL: {used}")


@pytest.fixture(scope="session")
def pg_scratch_url() -> Iterator[str]:
    """The URL of a scratch PostgreSQL database for this test session."""
    try:
        server_url = pg_server.server_url()
    except pg_server.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    server = sa.create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"sector_credit_test_{secrets.token_hex(6)}"
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {server_url} refused a scratch database ({exc.orig})", pytrace=False
        )
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
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
