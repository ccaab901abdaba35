"""The Alembic migrations: up from empty, down to base, concurrent start-up, and no drift
between the migrated schema and the ORM models. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from contextlib import redirect_stdout

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sector_credit.server.db import StoreUnavailable, migrate
from sector_credit.server.db.engine import create_engine
from sector_credit.server.db.models import Base


def tables(url: str) -> set[str]:
    engine = create_engine(url, null_pool=True)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_downgrade_to_base(database_url: str) -> None:
    assert migrate.current(database_url) is None
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == migrate.head()
    assert tables(database_url) == {
        "evaluations",
        "scorecard_parts",
        "api_keys",
        "access_records",
        "records",
        "record_events",
        "record_links",
    }

    engine = create_engine(database_url, null_pool=True)
    inspector = sa.inspect(engine)
    indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("evaluations")}
    access_indexes = {
        ix["name"]: ix["column_names"] for ix in inspector.get_indexes("access_records")
    }
    uniques = {
        uq["name"]: uq["column_names"] for uq in inspector.get_unique_constraints("evaluations")
    }
    engine.dispose()
    assert indexes["ix_evaluations_subject_id_id"] == ["subject_id", "id"]
    assert indexes["ix_evaluations_scorecard_id_id"] == ["scorecard_id", "id"]
    assert uniques["uq_evaluations_request_id"] == ["request_id"]
    assert access_indexes == {
        "ix_access_records_subject_id_id": ["subject_id", "id"],
        "ix_access_records_caller_id": ["caller", "id"],
    }

    migrate.upgrade(database_url)  # at head already: nothing to do
    migrate.downgrade(database_url, "base")
    assert migrate.current(database_url) is None
    assert tables(database_url) == set()
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == migrate.head()


def test_autogenerate_finds_no_difference_from_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = create_engine(database_url, null_pool=True)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_replicas_starting_at_once_migrate_once(database_url: str) -> None:
    # Separate processes, as replicas are: each runs the migration command at the same time.
    command_line = [sys.executable, "-m", "sector_credit.server.db.migrate", "--url", database_url]
    replicas = [
        subprocess.Popen([*command_line, "upgrade"], stderr=subprocess.PIPE) for _ in range(4)
    ]
    for replica in replicas:
        _, stderr = replica.communicate(timeout=120)
        assert replica.returncode == 0, stderr.decode()
    assert migrate.current(database_url) == migrate.head()
    assert tables(database_url) == {
        "evaluations",
        "scorecard_parts",
        "api_keys",
        "access_records",
        "records",
        "record_events",
        "record_links",
    }


def test_threads_of_one_process_take_turns(database_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def start_up() -> None:
        start.wait()
        try:
            migrate.upgrade(database_url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start_up) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrate.current(database_url) == migrate.head()


def test_command_line(database_url: str) -> None:
    assert migrate.main(["--url", database_url, "upgrade"]) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert migrate.main(["--url", database_url, "current"]) == 0
    assert out.getvalue().strip() == migrate.head()
    assert migrate.main(["--url", database_url, "downgrade", "base"]) == 0
    assert migrate.current(database_url) is None


def test_offline_mode_prints_the_sql_for_a_dba() -> None:
    cfg = migrate.alembic_config("postgresql://postgres@127.0.0.1:1/nowhere")
    out = io.StringIO()
    cfg.stdout = out
    with redirect_stdout(out):
        command.upgrade(cfg, "head", sql=True)
    assert "CREATE TABLE evaluations" in out.getvalue()
    assert "JSONB" in out.getvalue()


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/x/audit.db"],
    ids=["postgresql_closed_port", "sqlite_missing_dir"],
)
def test_unreachable_database_is_reported_as_unavailable(url: str) -> None:
    with pytest.raises(StoreUnavailable):
        migrate.upgrade(url)
