"""The test session's PostgreSQL (tests/pg_server.py): the configured server when it answers,
otherwise a throwaway one that is really PostgreSQL, listens on 127.0.0.1 only, runs as an
unprivileged user when the tests run as root, and is gone after `stop()`."""

from __future__ import annotations

import os
import pwd
import socket

import pg_server
import sqlalchemy as sa
from service_harness import free_port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def test_a_configured_server_that_answers_is_used_as_it_is() -> None:
    url = pg_server.server_url()  # the session's: configured or throwaway, it answers
    found = pg_server.SessionPostgres(url)
    assert found.server_url() == url
    assert found.embedded is None and found.description == (
        f"the configured server at 127.0.0.1:{sa.make_url(url).port}"
    )
    found.stop()  # nothing of its own to stop: the server still answers
    assert answers(sa.make_url(url).port or 5432)


def test_when_nothing_answers_a_throwaway_server_is_started_and_removed() -> None:
    unused = free_port()
    session = pg_server.SessionPostgres(f"postgresql+psycopg://postgres@127.0.0.1:{unused}/x")
    try:
        url = session.server_url()
        assert session.embedded is not None
        port = session.embedded.port
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres" and port != unused
        assert session.description == (
            f"a throwaway embedded server on 127.0.0.1:{port}"
            f" (nothing answered at 127.0.0.1:{unused})"
        )
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
            listens = conn.exec_driver_sql("SHOW listen_addresses").scalar_one()
            data = conn.exec_driver_sql("SHOW data_directory").scalar_one()
        engine.dispose()
        assert int(str(version).split(".")[0]) >= 18 and listens == "127.0.0.1"
        # PostgreSQL refuses to run as root: as root, the data and the server are nobody's
        user = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
        pid = int((session.embedded.data / "postmaster.pid").read_text().split()[0])
        assert os.stat(data).st_uid == user and os.stat(f"/proc/{pid}").st_uid == user
        folder = session.embedded.folder
    finally:
        session.stop()
    assert not folder.exists() and not answers(port)
    assert session.embedded is None
