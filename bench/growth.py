"""Growth: does the service stay as fast with 1,000,000 stored evaluations as with a few?

    .venv/bin/python bench/growth.py                  # SQLite and PostgreSQL, 1,000,000 rows
    .venv/bin/python bench/growth.py --quick          # 100,000 rows, shorter windows
    .venv/bin/python bench/growth.py --databases sqlite --rows 1000000 --keep

For each database two audit stores are made, migrated by the real migrations:
- small: only the probe subjects' evaluations (about 1,000 rows);
- big: the same probe rows plus `--rows` more evaluations of 250,000 other subjects (about 4
  each), spread over a year, of every built-in scorecard.
The big store is filled directly, not through the API: rows in the store's own format (the
documents of `rowjson`, results in format 2, the values bound by the columns' SQLAlchemy
processors: exactly what the service writes), with multi-row INSERTs in large transactions
on SQLite (synchronous=OFF while filling) and COPY on PostgreSQL. Each row's documents are
its own (its subject, its digest); they are made from a pool of real engine results (the
golden cases of every card and varied taxi-driver inputs) with the subject swapped in.

Then, in rounds that alternate the two stores, the real server (one process, as
`service_bench`) is started on each and measured:
- GetEvaluation of random stored evaluations, one call at a time: p50 / p99;
- ListEvaluations, first page, for one subject: a typical subject (a few evaluations) and the
  heavy probe subject (120 evaluations, a full page of 50): p50 / p99;
- unary Evaluate throughput, closed loop, as in service_bench: big / small is the ratio.
Targets: p99 of GetEvaluation and of a first ListEvaluations page at most 10 ms; unary
throughput on the big store within 10 % of the small one.

Over 500 lines for a reason: one script run by path, whose filler, query timings and report
share one table of databases and one set of figures (as service_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_bench as sb

PG_ADMIN_URL = sb.PG_ADMIN_URL
HEAVY_EVALUATIONS = 120
TYPICAL_PROBES = 200
SUBJECTS = 250_000
GET_CALLS = 400
LIST_CALLS = 300
LATENCY_P99_MS = 10.0
THROUGHPUT_FLOOR = 0.9

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


PROBE_REGION = "650102"  # the probe subjects' ids come from a region the crowd never uses


def _person_id(rng: random.Random, region: str | None) -> str:
    if region is None:
        return sb._resident_id(rng)
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(40 * 365))
    body = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + sb._ID_CHECK[sum(int(d) * w for d, w in zip(body, sb._ID_WEIGHTS)) % 11]


def _uscc(rng: random.Random, region: str | None = None) -> str:
    body = (
        "91"
        + (region or rng.choice(sb._REGIONS))
        + "".join(rng.choice(_USCC_CHARS[:-5]) for _ in range(9))
    )
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


# ============================================================================================
# Rows in the store's format, made fast from templates


@dataclasses.dataclass
class Template:
    """One engine result and its input, encoded once with placeholder subject values."""

    kind: str  # "person" | "organization"
    scorecard_id: str
    version: str
    digest: str
    as_of: dt.date
    grade: str
    score: str | None
    input_text: str  # canonical input JSON, placeholders inside
    result_text: str


ID_MARK, NAME_MARK = "\x01ID\x01", "\x01NAME\x01"  # cannot occur in real documents


def build_templates(pool_size: int) -> list[Template]:
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.golden import DEFAULT_AS_OF, case_indicators, case_subject
    from sector_credit.scorecards.model import EvaluationInput, InvalidInput, Subject
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert
    from sector_credit.server.db.rowjson import input_json, result_json_compact, result_parts
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    registry = build_registry(get_plugin_manager())
    cases: list[tuple[Any, EvaluationInput]] = []
    for compiled in registry.all():  # every card: its golden cases
        for case in compiled.card.cases:
            subject = case_subject(compiled.card, case)
            try:  # the indicators read from records filled from the case's, as the server does
                values = case_indicators(compiled.card, case, subject)
            except InvalidInput:
                continue  # a case submitting a derived indicator: the server refuses it
            inp = EvaluationInput(compiled.id, subject, values, case.as_of or DEFAULT_AS_OF, None)
            cases.append((compiled, inp))
    taxi = registry.resolve(sb.SCORECARD)
    for body in sb.build_pool(pool_size):  # and the benchmark's varied taxi drivers
        cases.append(
            (taxi, convert.evaluation_input_from_proto(pb.EvaluateRequest.FromString(body)))
        )

    # the documents as the service writes them (format 2: the server adds the scorecards'
    # parts when it opens the store)
    parts = {c.card.digest: result_parts(c.card) for c in registry.all()}
    templates = []
    for compiled, inp in cases:
        try:
            result = compiled.evaluate(inp.subject, inp.indicators, inp.as_of)
        except InvalidInput:
            continue
        marked = dataclasses.replace(inp, subject=Subject(inp.subject.kind, ID_MARK, NAME_MARK))
        result.subject = marked.subject  # the only place the subject appears in a result
        text, _ = input_json(marked)
        templates.append(
            Template(
                kind=compiled.card.subject_kind.value,
                scorecard_id=result.scorecard_id,
                version=result.version,
                digest=result.digest,
                as_of=result.as_of,
                grade=result.grade.code,
                score=None if result.score is None else str(result.score),
                input_text=text,
                result_text=str(result_json_compact(result, parts[result.digest])),
            )
        )
    return templates


class RowMaker:
    """Rows as `rows.evaluation_row` makes them: ids (UUIDv7) in time order over a year."""

    def __init__(
        self, templates: list[Template], seed: int, start: dt.datetime, span_s: float, total: int
    ):
        self.rng = random.Random(seed)
        self.templates = templates
        self.by_kind = {
            k: [t for t in templates if t.kind == k] for k in ("person", "organization")
        }
        self.start_ms = int(start.timestamp() * 1000)
        self.step_ms = span_s * 1000 / max(1, total)
        self.n = 0
        self.sampled: list[str] = []  # every 400th id, for GetEvaluation

    def subject(self, kind: str, region: str | None = None) -> tuple[str, str]:
        rng = self.rng
        if kind == "person":
            return _person_id(rng, region), f"驾驶员{rng.randrange(100000):05d}"
        return _uscc(rng, region), f"企业{rng.randrange(100000):05d}"

    def row(
        self, subject_id: str, name: str, kind: str, request_id: str | None = None
    ) -> dict[str, Any]:
        from sector_credit.server.db.ids import _pack, id_time
        from sector_credit.server.db.rowjson import JsonText

        t = self.rng.choice(self.by_kind[kind])
        ms = self.start_ms + int(self.n * self.step_ms)
        self.n += 1
        evaluation_id = _pack(ms, self.rng.getrandbits(73))
        if self.n % 400 == 0:
            self.sampled.append(str(evaluation_id))
        name_json = name  # ASCII digits and CJK: nothing to escape in JSON
        input_text = t.input_text.replace(ID_MARK, subject_id).replace(NAME_MARK, name_json)
        return {
            "id": evaluation_id,
            "request_id": request_id,
            "request_digest": hashlib.sha256(input_text.encode()).hexdigest(),
            "scorecard_id": t.scorecard_id,
            "scorecard_version": t.version,
            "scorecard_digest": t.digest,
            "subject_kind": kind,
            "subject_id": subject_id,
            "as_of": t.as_of,
            "grade": t.grade,
            "score": t.score,
            "input": JsonText(input_text),
            "result": JsonText(
                t.result_text.replace(ID_MARK, subject_id).replace(NAME_MARK, name_json)
            ),
            "caller": "growth (ipv4:127.0.0.1:40000)",
            "created_at": id_time(evaluation_id),
        }


@dataclasses.dataclass
class Probes:
    heavy: str  # subject id with HEAVY_EVALUATIONS rows
    typical: list[str]  # subjects with a few rows each
    rows: list[dict[str, Any]]  # every probe row (the small store is these)


def probe_rows(maker: RowMaker) -> Probes:
    heavy, name = maker.subject("person", PROBE_REGION)
    rows = [maker.row(heavy, name, "person") for _ in range(HEAVY_EVALUATIONS)]
    typical: list[str] = []
    while len(typical) < TYPICAL_PROBES:
        kind = "person" if maker.rng.random() < 0.7 else "organization"
        sid, sname = maker.subject(kind, PROBE_REGION)
        if sid == heavy or sid in typical:
            continue
        typical.append(sid)
        rows += [maker.row(sid, sname, kind) for _ in range(maker.rng.randint(2, 6))]
    return Probes(heavy, typical, rows)


# ============================================================================================
# Filling


class Writer:
    """Bulk writes into one migrated audit database."""

    def __init__(self, url: str):
        from sector_credit.server.db.engine import create_engine

        self.url = url
        self.engine = create_engine(url, null_pool=True)
        self.dialect = self.engine.dialect.name

    def write(self, rows_iter: Any, total: int, label: str) -> float:
        """Write every row of `rows_iter`; returns rows per second."""
        started = time.perf_counter()
        done = 0
        last = started
        from sector_credit.server.db.rows import EVALUATIONS

        if self.dialect == "sqlite":
            from sector_credit.server.db.dbwriter import RowInserter

            with self.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                raw.execute("PRAGMA synchronous = OFF")  # a bulk fill, not the service
                inserter = RowInserter(conn.dialect, EVALUATIONS)
                batch: list[dict[str, Any]] = []
                for row in rows_iter:
                    batch.append(row)
                    if len(batch) == 20_000:
                        with conn.begin():
                            inserter.insert(conn, batch)
                        done += len(batch)
                        batch = []
                        last = _progress(label, done, total, started, last)
                if batch:
                    with conn.begin():
                        inserter.insert(conn, batch)
                    done += len(batch)
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            columns = [c.name for c in EVALUATIONS.columns]
            raw = self.engine.raw_connection()
            try:
                dbapi = raw.driver_connection
                copy_sql = f"COPY evaluations ({', '.join(columns)}) FROM STDIN"
                with dbapi.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in rows_iter:
                        copy.write_row(
                            [str(v) if isinstance(v, str) else v for v in (row[c] for c in columns)]
                        )
                        done += 1
                        if done % 20_000 == 0:
                            last = _progress(label, done, total, started, last)
                dbapi.commit()
                with dbapi.cursor() as cur:
                    dbapi.autocommit = True
                    cur.execute("VACUUM ANALYZE evaluations")
            finally:
                raw.close()
        elapsed = time.perf_counter() - started
        print(
            f"  {label}: {done:,} rows in {elapsed:.0f} s ({done / elapsed:,.0f} rows/s)",
            flush=True,
        )
        return done / elapsed

    def size_mb(self) -> float:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                path = self.engine.url.database
                assert path is not None
                return (
                    sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
                    / 2**20
                )
            return (
                float(
                    conn.exec_driver_sql(
                        "SELECT pg_total_relation_size('evaluations')"
                    ).scalar_one()
                )
                / 2**20
            )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM evaluations").scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def _progress(label: str, done: int, total: int, started: float, last: float) -> float:
    now = time.perf_counter()
    if now - last >= 10:
        print(
            f"  {label}: {done:,} / {total:,} rows ({done / (now - started):,.0f} rows/s)",
            flush=True,
        )
        return now
    return last


def fill_rows(maker: RowMaker, total: int) -> Any:
    """`total` rows of SUBJECTS subjects (about total / SUBJECTS each), in time order."""
    subjects: list[tuple[str, str, str]] = []
    for _ in range(min(SUBJECTS, max(1, total // 4))):
        kind = "person" if maker.rng.random() < 0.7 else "organization"
        sid, name = maker.subject(kind)
        subjects.append((sid, name, kind))
    for i in range(total):
        sid, name, kind = subjects[maker.rng.randrange(len(subjects))]
        yield maker.row(sid, name, kind, request_id=f"growth-{i}" if i % 3 == 0 else None)


# ============================================================================================
# Measuring


async def read_latencies(
    port: int, probes: Probes, ids: list[str], rng: random.Random
) -> dict[str, list[float]]:
    import grpc
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb
    from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc

    out: dict[str, list[float]] = {"get": [], "list_typical": [], "list_heavy": []}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.CreditEvaluationServiceStub(channel)
        for _ in range(20):  # warm-up
            await stub.GetEvaluation(
                pb.GetEvaluationRequest(
                    purpose="supervision", name=f"evaluations/{rng.choice(ids)}"
                )
            )
            await stub.ListEvaluations(
                pb.ListEvaluationsRequest(
                    purpose="supervision", subject_id=rng.choice(probes.typical)
                )
            )
        for i in range(max(GET_CALLS, LIST_CALLS)):
            if i < GET_CALLS:
                t0 = time.perf_counter()
                r = await stub.GetEvaluation(
                    pb.GetEvaluationRequest(
                        purpose="supervision", name=f"evaluations/{rng.choice(ids)}"
                    )
                )
                out["get"].append((time.perf_counter() - t0) * 1000)
                assert r.evaluation.lines or r.evaluation.grade.code
            if i < LIST_CALLS:
                t0 = time.perf_counter()
                r = await stub.ListEvaluations(
                    pb.ListEvaluationsRequest(
                        purpose="supervision", subject_id=rng.choice(probes.typical)
                    )
                )
                out["list_typical"].append((time.perf_counter() - t0) * 1000)
                assert 2 <= len(r.evaluations) <= 6
                t0 = time.perf_counter()
                r = await stub.ListEvaluations(
                    pb.ListEvaluationsRequest(purpose="supervision", subject_id=probes.heavy)
                )
                out["list_heavy"].append((time.perf_counter() - t0) * 1000)
                assert len(r.evaluations) == 50 and r.next_page_token
    return out


@dataclasses.dataclass
class StoreResult:
    database: str
    store: str
    round: int
    rows: int
    size_mb: float
    lat: dict[str, list[float]]
    unary: float
    unary_p99: float
    srv_us: float
    other_cores: float


def start_server(url: str, log: Path) -> sb.Server:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return sb.Server(
        [
            sb.PYTHON,
            "-m",
            "sector_credit.server.main",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--metrics-port",
            "0",
            "--log-format",
            "json",
        ],
        log,
        env,
    )


def measure_store(
    database: str,
    store: str,
    rnd: int,
    url: str,
    writer: Writer,
    probes: Probes,
    ids: list[str],
    clients: sb.Clients,
    a: argparse.Namespace,
    work: Path,
) -> StoreResult:
    rows, size = writer.count(), writer.size_mb()
    server = start_server(url, work / f"{database}-{store}-r{rnd}.log")
    try:
        lat = asyncio.run(read_latencies(server.port, probes, ids, random.Random(rnd)))
        run = sb.measure(server, clients, database, "unary", rnd, a)
    finally:
        server.stop()
    if run.errors:
        raise RuntimeError(f"{database} {store}: {run.notes}")
    return StoreResult(
        database,
        store,
        rnd,
        rows,
        size,
        lat,
        run.evals_per_s,
        run.p99_ms,
        run.srv_us_per_eval,
        run.other_cores,
    )


def _p(xs: list[float], q: float) -> float:
    return sb._pct(xs, q)


# ============================================================================================
# Main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Growth benchmark (see the module docstring).")
    ap.add_argument("--quick", action="store_true", help="100,000 rows, 2 rounds, short windows")
    ap.add_argument(
        "--rows", type=int, help="evaluations in the big store (default 1,000,000; quick 100,000)"
    )
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument(
        "--rounds", type=int, help="rounds alternating the two stores (default 3; quick 2)"
    )
    ap.add_argument("--warmup", type=float, help="unary warm-up seconds (default 2; quick 1)")
    ap.add_argument("--window", type=float, help="unary window seconds (default 8; quick 3)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--unary-inflight", type=int, default=64)
    ap.add_argument("--pg-url", default=PG_ADMIN_URL)
    ap.add_argument(
        "--work", help="folder for the SQLite files and logs (default: a temporary one)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the databases and logs")
    a = ap.parse_args(argv)
    a.rows = a.rows if a.rows is not None else (100_000 if a.quick else 1_000_000)
    a.rounds = a.rounds or (2 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.quick else 2.0)
    a.window = a.window if a.window is not None else (3.0 if a.quick else 8.0)
    databases = [d for d in a.databases.split(",") if d]

    started = time.time()
    print(f"machine: {sb.machine()}", flush=True)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="sector-credit-growth-"))
    work.mkdir(parents=True, exist_ok=True)
    templates = build_templates(2000)
    print(
        f"{len(templates)} result templates (golden cases of every card, varied taxi drivers)",
        flush=True,
    )
    pool_file = work / "pool.pickle"
    pool_file.write_bytes(sb.pickle.dumps(sb.build_pool(4000)))
    clients = sb.Clients(a.clients, pool_file)
    results: list[StoreResult] = []
    fills: dict[str, float] = {}
    pg_dbs: list[str] = []
    admin = None
    try:
        for database in databases:
            now = dt.datetime.now(dt.UTC)
            maker = RowMaker(
                templates,
                seed=11,
                start=now - dt.timedelta(days=365),
                span_s=365 * 86400,
                total=a.rows + 2000,
            )
            probes = probe_rows(maker)
            urls = {}
            for store in ("small", "big"):
                if database == "sqlite":
                    path = work / f"growth-{store}.db"
                    for suffix in ("", "-wal", "-shm", "-writer.lock"):
                        Path(str(path) + suffix).unlink(missing_ok=True)
                    urls[store] = f"sqlite:///{path}"
                else:
                    import sqlalchemy as sa

                    admin = admin or sa.create_engine(a.pg_url, isolation_level="AUTOCOMMIT")
                    name = f"sector_credit_growth_{store}_{secrets.token_hex(3)}"
                    with admin.connect() as conn:
                        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                    pg_dbs.append(name)
                    urls[store] = (
                        sa.make_url(a.pg_url)
                        .set(database=name)
                        .render_as_string(hide_password=False)
                    )
            from sector_credit.server.db.migrate import upgrade

            writers = {}
            for store, url in urls.items():
                upgrade(url)
                writers[store] = Writer(url)
            print(f"{database}: filling", flush=True)
            writers["small"].write(iter(probes.rows), len(probes.rows), f"{database} small")
            # the big store: the probe rows first (older), then the crowd
            fills[database] = writers["big"].write(
                _chain(probes.rows, fill_rows(maker, a.rows)),
                a.rows + len(probes.rows),
                f"{database} big",
            )
            ids = {"small": [str(r["id"]) for r in probes.rows], "big": maker.sampled}
            for rnd in range(a.rounds):
                for store in ("small", "big") if rnd % 2 == 0 else ("big", "small"):
                    r = measure_store(
                        database,
                        store,
                        rnd,
                        urls[store],
                        writers[store],
                        probes,
                        ids[store],
                        clients,
                        a,
                        work,
                    )
                    results.append(r)
                    print(
                        f"  round {rnd + 1}/{a.rounds} {database} {store:5s} {r.rows:>9,} rows "
                        f"{r.size_mb:7.0f} MB  get p99 {_p(r.lat['get'], 0.99):5.1f} ms  "
                        f"list typical p99 {_p(r.lat['list_typical'], 0.99):5.1f} ms  "
                        f"list heavy p99 {_p(r.lat['list_heavy'], 0.99):5.1f} ms  "
                        f"unary {r.unary:6,.0f}/s (srv {r.srv_us:.0f} µs, other"
                        f" {r.other_cores:.2f})",
                        flush=True,
                    )
            for w in writers.values():
                w.dispose()
    finally:
        clients.close()
        if admin is not None:
            for name in pg_dbs if not a.keep else []:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
        if a.keep:
            print(
                f"kept: {work}"
                + (f" and PostgreSQL databases {', '.join(pg_dbs)}" if pg_dbs else "")
            )
        elif not a.work:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(report(results, fills, a))
    print(f"\ntotal time {time.time() - started:.0f} s")
    return 0


def _chain(*iterables: Any) -> Any:
    for it in iterables:
        yield from it


def report(results: list[StoreResult], fills: dict[str, float], a: argparse.Namespace) -> str:
    lines = [
        (
            f"Growth: medians of {a.rounds} rounds; latencies one call at a time ({GET_CALLS} Get, "
            f"{LIST_CALLS} List per round and subject kind); unary as service_bench "
            f"({a.unary_inflight} in flight, {a.warmup:g} s + {a.window:g} s)"
        ),
        "",
        (
            "| database | store | rows | size MB | fill rows/s | GetEvaluation p50 / p99 ms "
            "| List, typical subject p50 / p99 ms | List, 120-evaluation subject (page of 50) p50"
            " / p99 ms "
            "| unary evals/s | big / small |"
        ),
        "|" + "---|" * 10,
    ]
    failures = []
    for database in dict.fromkeys(r.database for r in results):
        small_unary = statistics.median(
            r.unary for r in results if r.database == database and r.store == "small"
        )
        for store in ("small", "big"):
            rs = [r for r in results if r.database == database and r.store == store]
            med = {
                k: (
                    statistics.median(_p(r.lat[k], 0.5) for r in rs),
                    statistics.median(_p(r.lat[k], 0.99) for r in rs),
                )
                for k in ("get", "list_typical", "list_heavy")
            }
            unary = statistics.median(r.unary for r in rs)
            ratio = unary / small_unary
            same = statistics.median(
                r.unary
                / next(
                    s.unary
                    for s in results
                    if s.database == database and s.store == "small" and s.round == r.round
                )
                for r in rs
            )
            fill = f"{fills[database]:,.0f}" if store == "big" and database in fills else ""
            lines.append(
                f"| {database} | {store} | {max(r.rows for r in rs):,} |"
                f" {max(r.size_mb for r in rs):,.0f} "
                f"| {fill} | {med['get'][0]:.1f} / {med['get'][1]:.1f} "
                f"| {med['list_typical'][0]:.1f} / {med['list_typical'][1]:.1f} "
                f"| {med['list_heavy'][0]:.1f} / {med['list_heavy'][1]:.1f} "
                f"| {unary:,.0f} | {ratio:.2f} ({same:.2f}) |"
            )
            if store == "big":
                for k, what in (
                    ("get", "GetEvaluation"),
                    ("list_typical", "ListEvaluations (typical subject)"),
                    ("list_heavy", "ListEvaluations (page of 50)"),
                ):
                    if med[k][1] > LATENCY_P99_MS:
                        failures.append(
                            f"{database}: {what} p99 {med[k][1]:.1f} ms > {LATENCY_P99_MS:g} ms"
                        )
                if ratio < THROUGHPUT_FLOOR:
                    failures.append(
                        f"{database}: unary on the big store is {ratio:.2f} of the small one"
                    )
    lines.append("")
    lines.append("targets not met:\n- " + "\n- ".join(failures) if failures else "all targets met")
    return "\n".join(lines)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
