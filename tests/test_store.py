"""The audit store: durable saves with group commit, idempotent request ids, keyset-paginated
listing, and clear failure when the database is away. Each test runs on SQLite and
PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from installed_plugins import BUILTIN_ONLY
from sector_credit.scorecards.model import (
    EvaluationInput,
    EvaluationResult,
    Grade,
    Line,
    Provenance,
    ProvenanceTag,
    Subject,
    SubjectKind,
    Title,
)
from sector_credit.server.db import (
    AccessRecord,
    EvaluationRecord,
    EvaluationStore,
    InvalidListRequest,
    InvalidRecord,
    RequestConflict,
    StoredEvaluation,
    StoreUnavailable,
    UnreadableEvaluation,
    migrate,
)
from sector_credit.server.db.engine import create_engine
from sector_credit.server.db.ids import id_time, new_evaluation_id

TAXI = "transport.taxi_driver"
SUPPLIER = "procurement.supplier"
LAW = Provenance(ProvenanceTag.VERIFIED, "交通运输部令2022年第29号", "第十二条")


def record(
    subject_id: str = "S-1",
    scorecard_id: str = TAXI,
    *,
    violations: int = 1,
    request_id: str | None = None,
    caller: str | None = "tester",
) -> EvaluationRecord:
    subject = Subject(SubjectKind.PERSON, subject_id, "张三")
    inp = EvaluationInput(
        scorecard_id, subject, {"violations": violations, "rate": Decimal("97.5")}
    )
    points = Decimal(-2 * violations)
    result = EvaluationResult(
        scorecard_id=scorecard_id,
        version="2024.1",
        digest="sha256:" + "ab" * 32,
        subject=subject,
        as_of=dt.date(2024, 2, 29),
        indicators={"violations": violations, "rate": Decimal("97.5")},
        score=Decimal("100.00") + points,
        score_grade="A",
        grade=Grade("A", Title("优秀", "Excellent"), LAW, Decimal(90)),
        lines=(
            Line(
                "violations",
                Title("违章", "Violations"),
                None,
                (("violations", violations),),
                points,
                LAW,
            ),
        ),
        groups=(),
        overrides=(),
        until=None,
        reasons=(),
        points_to_next_grade=None,
        next_grade=None,
    )
    return EvaluationRecord(input=inp, result=result, caller=caller, request_id=request_id)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EvaluationStore]:
    migrate.upgrade(database_url)
    async with EvaluationStore(database_url) as s:
        yield s


def count_rows(url: str) -> int:
    engine = create_engine(url, null_pool=True)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM evaluations")).scalar_one()
    engine.dispose()
    return int(n)


def run_sql(url: str | sa.URL, sql: str) -> None:
    engine = create_engine(url, null_pool=True)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


# --------------------------------------------------------------------------------------------
# Save and read back


async def test_save_then_get(store: EvaluationStore) -> None:
    rec = record()
    saved = await store.save(rec)
    assert saved.name == f"evaluations/{saved.id}"
    assert saved.replayed is False
    assert saved.created_at.tzinfo is not None and saved.created_at.utcoffset() == dt.timedelta(0)

    got = await store.get(saved.id)
    assert got == saved
    assert got.result == rec.result and got.input == rec.input
    assert repr(got.result.score) == "Decimal('98.00')"  # exact decimal text survives
    assert got.caller == "tester"
    assert await store.get(uuid.UUID(saved.id)) == saved
    assert await store.get(uuid.uuid4()) is None
    assert await store.get("not-an-id") is None
    assert store.health_problem() is None


async def test_concurrent_saves_share_commits(store: EvaluationStore, database_url: str) -> None:
    before = store.stats.commits
    saved = await asyncio.gather(*(store.save(record(f"S-{i}")) for i in range(200)))
    commits = store.stats.commits - before
    assert len({s.id for s in saved}) == 200
    assert count_rows(database_url) == 200
    assert commits <= 20, f"200 concurrent saves took {commits} commits"
    assert store.stats.largest_group > 1


async def test_save_many_is_one_commit(store: EvaluationStore) -> None:
    before = store.stats.commits
    outcomes = await store.save_many([record(f"S-{i}") for i in range(300)])
    assert store.stats.commits - before == 1
    assert all(isinstance(o, StoredEvaluation) for o in outcomes)
    assert await store.save_many([]) == []


# --------------------------------------------------------------------------------------------
# Idempotency


async def test_retry_with_the_same_request_returns_the_stored_evaluation(
    store: EvaluationStore, database_url: str
) -> None:
    first = await store.save(record(request_id="req-1"))
    again = await store.save(record(request_id="req-1"))
    assert again.replayed is True
    assert again.id == first.id and again.created_at == first.created_at
    assert count_rows(database_url) == 1
    assert await store.find_by_request_id("req-1") == first
    assert await store.find_by_request_id("req-unknown") is None


async def test_an_empty_request_id_is_no_request_id(
    store: EvaluationStore, database_url: str
) -> None:
    a, b = await store.save(record(request_id="")), await store.save(record(request_id=""))
    assert a.id != b.id and a.request_id is None and not b.replayed
    assert count_rows(database_url) == 2


async def test_same_request_id_for_another_request_is_a_conflict(store: EvaluationStore) -> None:
    first = await store.save(record(request_id="req-1"))
    with pytest.raises(RequestConflict) as caught:
        await store.save(record(request_id="req-1", violations=5))
    assert caught.value.evaluation_id == first.id
    assert "req-1" in str(caught.value)


async def test_concurrent_saves_of_one_request_id_leave_one_row(
    store: EvaluationStore, database_url: str
) -> None:
    saved = await asyncio.gather(*(store.save(record(request_id="same")) for _ in range(20)))
    assert len({s.id for s in saved}) == 1
    assert sum(not s.replayed for s in saved) == 1
    assert count_rows(database_url) == 1


async def test_replicas_racing_on_one_request_id_leave_one_row(
    store: EvaluationStore, database_url: str
) -> None:
    async with EvaluationStore(database_url) as other_replica:
        saves = [
            s.save(record(request_id=f"r-{i}")) for i in range(50) for s in (store, other_replica)
        ]
        saved = await asyncio.gather(*saves)
    by_request: dict[str | None, set[str]] = {}
    for s in saved:
        by_request.setdefault(s.request_id, set()).add(s.id)
    assert all(len(ids) == 1 for ids in by_request.values())
    assert count_rows(database_url) == 50


async def test_a_group_with_a_repeated_request_still_stores_the_rest(
    store: EvaluationStore,
) -> None:
    first = await store.save(record("S-0", request_id="known"))
    outcomes = await store.save_many(
        [
            record("S-1"),
            record("S-0", request_id="known"),
            record("S-2", request_id="fresh"),
            record("S-0", request_id="known", violations=9),
        ]
    )
    assert isinstance(outcomes[0], StoredEvaluation) and not outcomes[0].replayed
    assert isinstance(outcomes[1], StoredEvaluation) and outcomes[1].id == first.id
    assert outcomes[1].replayed
    assert isinstance(outcomes[2], StoredEvaluation) and not outcomes[2].replayed
    assert isinstance(outcomes[3], RequestConflict)
    assert store.stats.row_by_row >= 1
    for o in outcomes[:3]:
        assert isinstance(o, StoredEvaluation)
        assert await store.get(o.id) is not None


# --------------------------------------------------------------------------------------------
# Listing (AIP-158)


async def collect(
    store: EvaluationStore, page_size: int, **filters: str | None
) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        rows, token = await store.list(page_size=page_size, page_token=token, **filters)
        pages += 1
        assert len(rows) <= page_size
        ids.extend(r.id for r in rows)
        if not token:
            return ids, pages


async def test_list_pages_through_every_evaluation_once_newest_first(
    store: EvaluationStore,
) -> None:
    saved: list[StoredEvaluation] = []
    for batch in range(3):  # batches and single saves, several subjects and scorecards
        outcomes = await store.save_many(
            [record(f"S-{i % 3}", TAXI if i % 2 else SUPPLIER) for i in range(20)]
        )
        saved.extend(o for o in outcomes if isinstance(o, StoredEvaluation))
        saved.extend(await asyncio.gather(*(store.save(record("S-0", TAXI)) for _ in range(5))))
    assert len(saved) == 75

    cases: list[dict[str, str | None]] = [
        {},
        {"subject_id": "S-0"},
        {"scorecard_id": TAXI},
        {"subject_id": "S-1", "scorecard_id": SUPPLIER},
        {"subject_id": "nobody"},
    ]
    for filters in cases:
        expected = sorted(
            (
                s.id
                for s in saved
                if filters.get("subject_id") in (None, s.result.subject.id)
                and filters.get("scorecard_id") in (None, s.result.scorecard_id)
            ),
            key=uuid.UUID,
            reverse=True,
        )
        ids, pages = await collect(store, 7, **filters)
        assert ids == expected, filters
        assert pages == max(1, -(-len(expected) // 7)), filters

    rows, token = await store.list()
    assert len(rows) == 50 and token  # page_size 0/absent: the default, 50
    rows, token = await store.list(page_size=5000, subject_id="")  # coerced to 1000; "" = all
    assert len(rows) == 75 and token == ""
    assert rows[0].id == max((s.id for s in saved), key=uuid.UUID)


async def test_invalid_page_tokens_are_refused_naming_the_field(store: EvaluationStore) -> None:
    await store.save_many([record("S-1") for _ in range(3)])
    _, token = await store.list(page_size=1, subject_id="S-1")
    assert token
    for bad in ("garbage", "!!!", token[:-3], token + "xyz"):
        with pytest.raises(InvalidListRequest) as caught:
            await store.list(page_token=bad, subject_id="S-1")
        assert caught.value.field == "page_token" and "page_token" in str(caught.value)
    with pytest.raises(InvalidListRequest, match="page_token"):
        await store.list(page_token=token, subject_id="S-2")  # other filters
    with pytest.raises(InvalidListRequest, match="page_size"):
        await store.list(page_size=-1)


# --------------------------------------------------------------------------------------------
# Failure


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/x/audit.db"],
    ids=["postgresql_closed_port", "sqlite_missing_dir"],
)
async def test_database_away_raises_store_unavailable(url: str) -> None:
    async with EvaluationStore(url) as s:
        with pytest.raises(StoreUnavailable):
            await s.save(record())
        outcomes = await asyncio.gather(
            *(s.save(record()) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, StoreUnavailable) for o in outcomes)
        with pytest.raises(StoreUnavailable):
            await s.get(uuid.uuid4())
        with pytest.raises(StoreUnavailable):
            await s.list()
        assert s.health_problem() is not None
        assert s.stats.commits == 0


async def test_open_fails_fast_without_a_database_or_its_schema(database_url: str) -> None:
    with pytest.raises(StoreUnavailable):
        await EvaluationStore.open("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailable):
        await EvaluationStore.open(database_url)  # not migrated: no evaluations table
    migrate.upgrade(database_url)
    async with await EvaluationStore.open(database_url, max_group_rows=10) as s:
        assert s.health_problem() is None


async def test_a_failed_commit_fails_every_waiter_of_its_group(
    store: EvaluationStore, database_url: str
) -> None:
    await store.save(record())
    run_sql(database_url, "DROP TABLE evaluations")
    outcomes = await asyncio.gather(
        *(store.save(record()) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    assert store.stats.groups_failed >= 1
    run_sql(database_url, "DROP TABLE scorecard_parts")
    run_sql(database_url, "DROP TABLE access_records")
    run_sql(database_url, "DROP TABLE api_keys")
    for table in ("records", "record_events", "record_links"):  # credit records (0005)
        run_sql(database_url, f"DROP TABLE {table}")
    run_sql(database_url, "DROP TABLE alembic_version")
    migrate.upgrade(database_url)
    assert isinstance(await store.save(record()), StoredEvaluation)  # the writer lives on


async def test_an_evaluation_and_its_access_record_commit_together(
    store: EvaluationStore, database_url: str
) -> None:
    def access(subject_id: str) -> AccessRecord:
        return AccessRecord(
            caller="tester",
            proven_by="local",
            method="Evaluate",
            code="OK",
            subject_id=subject_id,
            scorecard_id=TAXI,
            evaluations_returned=1,
        )

    await store.save(dataclasses.replace(record("S-1"), access=access("S-1")))
    assert [r.record for r in (await store.list_access())[0]] == [access("S-1")]
    run_sql(database_url, "DROP TABLE access_records")  # the record cannot be written now
    with pytest.raises(StoreUnavailable):
        await store.save(dataclasses.replace(record("S-2"), access=access("S-2")))
    assert (await store.list(subject_id="S-2"))[0] == []  # nor was its evaluation


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_killed_connections_are_replaced(store: EvaluationStore, database_url: str) -> None:
    saved = await store.save(record())
    url = sa.make_url(database_url)
    run_sql(
        url.set(database="postgres"),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{url.database}' AND pid <> pg_backend_pid()",
    )
    assert isinstance(await store.save(record()), StoredEvaluation)
    assert await store.get(saved.id) == saved


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_row_the_database_refuses_does_not_sink_its_group(store: EvaluationStore) -> None:
    outcomes = await store.save_many([record("S-1"), record("S-\x00"), record("S-2")])
    assert isinstance(outcomes[0], StoredEvaluation)
    assert isinstance(outcomes[1], InvalidRecord)
    assert isinstance(outcomes[2], StoredEvaluation)
    assert await store.get(outcomes[2].id) is not None


def _with(
    rec: EvaluationRecord,
    *,
    subject_id: str | None = None,
    display_name: str | None = None,
    request_id: str | None = None,
) -> EvaluationRecord:
    """`rec` with its subject or request id replaced, past any validation (the store's own
    defence: what a future bug in validation would let through)."""
    import dataclasses

    subject = dataclasses.replace(
        rec.result.subject,
        **{k: v for k, v in (("id", subject_id), ("display_name", display_name)) if v is not None},
    )
    return dataclasses.replace(
        rec,
        input=dataclasses.replace(rec.input, subject=subject),
        result=dataclasses.replace(rec.result, subject=subject),
        request_id=request_id or rec.request_id,
    )


# what PostgreSQL refuses of one row's own data; SQLite stores each of them (and reads it back)
REFUSED_ROWS = [
    pytest.param({"subject_id": "S-\x00"}, id="nul_in_subject_id"),
    pytest.param({"display_name": "a\x00b"}, id="nul_in_display_name"),
    # over the 8 kB of a btree index entry: PostgreSQL's ProgramLimitExceeded (SQLSTATE 54000),
    # an OperationalError, no outage
    pytest.param(
        {"request_id": secrets.token_hex(6000)}, id="request_id_of_12000_chars"
    ),  # incompressible
]


@pytest.mark.parametrize("change", REFUSED_ROWS)
async def test_a_refused_row_is_its_own_invalid_record_and_every_other_row_of_its_group_commits(
    store: EvaluationStore, database_url: str, change: dict[str, str]
) -> None:
    postgresql = database_url.startswith("postgresql")
    bad = _with(record("S-9"), **change)
    batch = [record("S-1"), bad, record("S-2")]
    # other callers' saves in the same turn of the event loop: the same group commit
    outcomes, *others = await asyncio.gather(
        store.save_many(batch), *(store.save(record(f"O-{i}")) for i in range(20))
    )
    assert all(isinstance(o, StoredEvaluation) for o in others)
    assert isinstance(outcomes[0], StoredEvaluation) and isinstance(outcomes[2], StoredEvaluation)
    if postgresql:
        assert isinstance(outcomes[1], InvalidRecord)
        # what the caller reads says nothing of the driver, the host or the class
        assert "psycopg" not in str(outcomes[1]) and "127.0.0.1" not in str(outcomes[1])
        assert "Error" not in str(outcomes[1])
    else:
        assert isinstance(outcomes[1], StoredEvaluation)
        assert await store.get(outcomes[1].id) == outcomes[1]
    assert all([await store.get(o.id) for o in (outcomes[0], outcomes[2], *others)])


async def test_a_row_that_cannot_be_read_back_is_shown_from_its_columns_and_hides_nothing(
    store: EvaluationStore, database_url: str
) -> None:
    saved = [await store.save(record(f"U-{i}")) for i in range(3)]
    postgres = database_url.startswith("postgresql")
    stored_id = saved[1].id if postgres else uuid.UUID(saved[1].id).hex
    run_sql(
        database_url,
        f"UPDATE evaluations SET result = '{{\"format\": 99}}' WHERE id = '{stored_id}'",
    )
    page, _ = await store.list()
    by_id = {e.id: e for e in page}
    assert isinstance(by_id[saved[0].id], StoredEvaluation) and isinstance(
        by_id[saved[2].id], StoredEvaluation
    )
    broken = by_id[saved[1].id]
    assert isinstance(broken, UnreadableEvaluation)
    assert (broken.subject_id, broken.scorecard_id, broken.grade, broken.score) == (
        "U-1",
        TAXI,
        "A",
        "98.00",
    )
    assert "cannot be read" in broken.why
    assert await store.get(saved[1].id) == broken


async def test_close_writes_everything_pending(database_url: str) -> None:
    migrate.upgrade(database_url)
    s = EvaluationStore(database_url)
    tasks = [asyncio.create_task(s.save(record(f"S-{i}"))) for i in range(100)]
    await asyncio.sleep(0)  # every save is handed to the writer
    await s.close()
    assert all(isinstance(t.result(), StoredEvaluation) for t in tasks)
    assert count_rows(database_url) == 100
    with pytest.raises(StoreUnavailable):
        await s.save(record())
    assert s.health_problem() is not None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_connections_are_set_up_for_group_commit(database_url: str) -> None:
    engine = create_engine(database_url, null_pool=True)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }
    engine.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 10_000}


# --------------------------------------------------------------------------------------------
# Ids


def test_ids_are_uuid7_increasing_and_carry_their_time() -> None:
    ids = [new_evaluation_id() for _ in range(10_000)]
    assert all(a[0] < b[0] for a, b in itertools.pairwise(ids))
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i, _ in ids)
    first_id, first_time = ids[0]
    assert id_time(first_id) == first_time
    assert abs(first_time - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


# --------------------------------------------------------------------------------------------
# Format 2: results of a known scorecard are stored without its static text


async def test_results_of_known_scorecards_are_stored_compact_and_read_back_whole(
    database_url: str,
) -> None:
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry

    migrate.upgrade(database_url)
    taxi = build_registry(get_plugin_manager(only=BUILTIN_ONLY)).resolve(TAXI)
    subject = Subject(SubjectKind.PERSON, "110105198001010016", "张三")
    inp = EvaluationInput(
        TAXI, subject, {"violations_3pt": 2, "bonus_points": 1}, as_of=dt.date(2025, 6, 1)
    )
    result = taxi.evaluate(subject, inp.indicators, inp.as_of)
    async with await EvaluationStore.open(database_url, scorecards=[taxi.card]) as writer:
        saved = await writer.save(
            EvaluationRecord(inp, result, caller="tester", request_id="fmt2-1")
        )
        assert (await writer.get(saved.id)) == saved
    engine = create_engine(database_url, null_pool=True)
    with engine.connect() as conn:
        document = conn.execute(sa.text("SELECT result FROM evaluations")).scalar_one()
        parts = conn.execute(
            sa.text("SELECT digest, scorecard_id, version FROM scorecard_parts")
        ).all()
    engine.dispose()
    if isinstance(document, str):  # SQLite hands JSON back as text
        import json

        document = json.loads(document)
    assert document["format"] == 2 and document["grade"] == result.grade.code
    assert "title" not in str(document["lines"])  # the text is in scorecard_parts, once
    assert [tuple(p) for p in parts] == [(taxi.card.digest, TAXI, taxi.card.version)]
    # a replica that does not load this scorecard reads it with the stored parts; a retry of
    # the same request there gets the stored evaluation back
    async with await EvaluationStore.open(database_url) as reader:
        got = await reader.get(saved.id)
        assert got is not None and got.result == result and got == saved
        page, _ = await reader.list(subject_id=subject.id)
        assert [e.result for e in page] == [result]
        again = await reader.save(
            EvaluationRecord(inp, result, caller="tester", request_id="fmt2-1")
        )
        assert again.replayed and again.result == result
    # opening again with the same scorecard adds nothing
    async with await EvaluationStore.open(database_url, scorecards=[taxi.card]):
        pass
    engine = create_engine(database_url, null_pool=True)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scorecard_parts")).scalar_one() == 1
    engine.dispose()
    with pytest.raises(RuntimeError, match="scorecard_parts"):
        migrate.main(["--url", database_url, "downgrade", "base"])


async def test_stored_parts_are_the_authority_for_their_digest(database_url: str) -> None:
    # Parts stored by an earlier server that derived a card's static text differently: this
    # server must neither write format-2 rows those parts would misread, nor read with its own.
    import json

    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry

    migrate.upgrade(database_url)
    taxi = build_registry(get_plugin_manager(only=BUILTIN_ONLY)).resolve(TAXI)
    subject = Subject(SubjectKind.PERSON, "110105198001010016", "张三")
    inp = EvaluationInput(TAXI, subject, {"violations_1pt": 1}, as_of=dt.date(2025, 6, 1))
    result = taxi.evaluate(subject, inp.indicators, inp.as_of)
    async with await EvaluationStore.open(database_url, scorecards=[taxi.card]) as first:
        old = await first.save(EvaluationRecord(inp, result))
    engine = create_engine(database_url, null_pool=True)
    with engine.begin() as conn:
        parts = conn.execute(sa.text("SELECT parts FROM scorecard_parts")).scalar_one()
        parts = json.loads(parts) if isinstance(parts, str) else parts
        parts["lines"][0]["best_points"] = "1.00"  # as an older engine might have had it
        conn.execute(
            sa.update(sa.table("scorecard_parts", sa.column("parts", sa.JSON))).values(parts=parts)
        )
    engine.dispose()
    async with await EvaluationStore.open(database_url, scorecards=[taxi.card]) as second:
        new = await second.save(EvaluationRecord(inp, result))
        assert (await second.get(new.id)).result == result  # stored whole
        reread = await second.get(old.id)  # read with the stored parts, not this server's
        assert reread.result.lines[0].best_points == Decimal("1.00")
        assert reread.result.lines[1:] == result.lines[1:]
    engine = create_engine(database_url, null_pool=True)
    with engine.connect() as conn:
        formats = {
            str(r[0]): r[1] for r in conn.execute(sa.text("SELECT id, result FROM evaluations"))
        }
    engine.dispose()
    docs = {
        k.replace("-", ""): json.loads(v) if isinstance(v, str) else v for k, v in formats.items()
    }
    assert docs[new.id.replace("-", "")]["format"] == 1
    assert docs[old.id.replace("-", "")]["format"] == 2


async def test_rows_and_parts_stored_before_results_carried_their_base(database_url: str) -> None:
    # Issue 13: a row and its scorecard's parts written by an earlier server, without `base`
    # and `score_before_cut`, read back with both; the parts get their base (the digest fixes
    # it), so this server keeps storing format 2 and a replica without the card reads the base.
    import json

    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry

    migrate.upgrade(database_url)
    firm = build_registry(get_plugin_manager()).resolve("construction.firm")
    subject = Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43")
    inp = EvaluationInput(
        "construction.firm", subject, {"bad_records_a": 7}, as_of=dt.date(2025, 6, 1)
    )
    result = firm.evaluate(subject, inp.indicators, inp.as_of)
    assert (str(result.score), str(result.base), str(result.score_before_cut)) == (
        "0.00",
        "60.00",
        "-10.00",
    )
    async with await EvaluationStore.open(database_url, scorecards=[firm.card]) as first:
        old = await first.save(EvaluationRecord(inp, result))
    engine = create_engine(database_url, null_pool=True)
    evaluations = sa.table("evaluations", sa.column("result", sa.JSON))
    parts_table = sa.table("scorecard_parts", sa.column("parts", sa.JSON))

    def load(value: object) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    with engine.begin() as conn:  # as the earlier server wrote them
        document = load(conn.execute(sa.text("SELECT result FROM evaluations")).scalar_one())
        assert document["format"] == 2 and document["score_before_cut"] == "-10.00"
        del document["score_before_cut"]
        conn.execute(sa.update(evaluations).values(result=document))
        parts = load(conn.execute(sa.text("SELECT parts FROM scorecard_parts")).scalar_one())
        assert parts["base"] == "60.00"
        del parts["base"]
        conn.execute(sa.update(parts_table).values(parts=parts))
    async with await EvaluationStore.open(database_url) as replica:  # no card: the old parts only
        got = (await replica.get(old.id)).result
        assert (got.base, got.score_before_cut) == (None, None)
        assert (
            dataclasses.replace(got, base=result.base, score_before_cut=result.score_before_cut)
            == result
        )
    async with await EvaluationStore.open(database_url, scorecards=[firm.card]) as second:
        assert (await second.get(old.id)).result == result  # base 60.00, -10.00 before the cut
        new = await second.save(EvaluationRecord(inp, result))
    async with await EvaluationStore.open(database_url) as replica:  # the parts now have the base
        assert (await replica.get(old.id)).result == result
        assert (await replica.get(new.id)).result == result
    with engine.connect() as conn:
        docs = [load(r[0]) for r in conn.execute(sa.text("SELECT result FROM evaluations"))]
        stored_parts = load(conn.execute(sa.text("SELECT parts FROM scorecard_parts")).scalar_one())
    engine.dispose()
    assert [d["format"] for d in docs] == [2, 2]  # the upgraded parts agree: still format 2
    assert stored_parts["base"] == "60.00"
