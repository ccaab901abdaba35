"""Service benchmark: the real gRPC server against a ceiling server, same client, same messages.

    .venv/bin/python bench/service_bench.py            # 3 rounds, 2 s warm-up + 8 s window
    .venv/bin/python bench/service_bench.py --quick    # 1 round, 1 s + 3 s: about four minutes
    make bench / make bench-quick

Servers (configurations), each started fresh in every round, in an order rotated per round:
- ceiling: bench/ceiling_server.py, a bare grpc.aio server of the same proto answering every
  call with a prebuilt response (no validation, scoring, storage, interceptor or logging);
- durable-sqlite, durable-postgresql: the same server, committing one row per evaluation
  (id, subject, scorecard, request_id unique, the request bytes) through the real store's
  engine and group commit into the same database as the real server (the durable ceiling);
- sqlite: the real server (`python -m sector_credit.server.main`) on a fresh SQLite file;
- postgresql: the real server on a scratch PostgreSQL database (created for the run on
  127.0.0.1:5432, emptied for each server start, dropped at the end);
- ceiling-tls: the bare ceiling served over mutual TLS (a client certificate required);
- sqlite-mtls: the real server on SQLite, secured as in production (issue 9): mutual TLS,
  every call authenticated by an API key sent as a bearer token, checked against the
  caller's grant, and its access record committed with the evaluation. The clients send the
  same token's shape to ceiling-tls, so TLS and the header are in its reference too. The
  certificates (trustme) and the key (`sector-credit-server keys create`) are made at bench
  time (bench/secure.py). Its client certificates are checked by the service, behind the
  TLS front (server/tls_front.py, the default);
- sqlite-mtls-handshake: the same with `--client-cert-check handshake` (gRPC's TLS checks
  the certificate in the handshake, no front): the front's cost is the difference.
- the measured bound (issue 12; opt-in, not in the default set): the real server launched
  through bench/bound_server.py with parts switched off (`SECTOR_CREDIT_BENCH_OFF`):
  sqlite-nostore and postgresql-nostore (rows built, not written: each evaluation answered
  as stored), sqlite-norows (rows not built either), sqlite-nostore-nolog (and no per-RPC log
  line), sqlite-noscore and postgresql-noscore (no engine: one result per scorecard reused,
  the rest, durable write included, as in production). Each has the ratio columns of its
  database's real server, and the report's block "bound: what each part costs" sets its
  server CPU per evaluation against that server's.
Every configuration's ratios are to the references of the table CONFIGS: a real server's to
the bare ceiling over the same transport (ceiling, or ceiling-tls for sqlite-mtls) and to
the durable ceiling of its own database, side by side; the ceilings' to the bare ceiling.
Every real server, sqlite and postgresql too, keeps an access record of each call (the query
audit is not optional); the plaintext ones run in local mode (loopback, no credentials).
Real servers run as in production: interceptor, metrics, one JSON log line per RPC (to a
file), every evaluation committed to the audit store before its reply. Every server runs
`--workers` processes (default 2, one per core) sharing the port: the ceiling as many as
the service, so the ratio compares like with like.

Modes, one after another against the same server process:
- unary: Evaluate, closed loop, `--unary-inflight` calls in flight in total;
- unary@half: Evaluate, open loop at half the rate the same server (the ceilings too) just
  reached in `unary`; latency counts from the scheduled send time (no coordinated omission).
  Each server is offered half of its own rate, so no ratio is reported: a ceiling's p99 there
  is the bound of the service's (issue 12);
- batch100, batch1000: BatchEvaluate with 100 and 1,000 items, `--batch-inflight` calls in flight;
- stream: StreamEvaluate, `--streams` streams each with `--stream-window` messages in flight.

Load generators: `--clients` separate processes (grpc.aio on uvloop) started once, driven
over a pipe; each opens `--channels` channels (separate TCP connections: the kernel spreads
connections, not calls, over SO_REUSEPORT workers; successive calls go round the channels)
and sends pre-serialized requests from one pool of valid, varied taxi-driver requests (the
same bytes for every server) without parsing responses; the first response of every mode is
parsed and checked, and any failed call is reported. All processes share a start time:
warm-up, then a timed window; only calls completing inside the window count.

Measured per run: evaluations per second, p50/p99 latency (per call; per message for
streams), server CPU (utime+stime of the server's processes, from /proc) per evaluation,
server peak memory (the sum of VmHWM over the server's processes, read after each mode:
an upper bound, as shared pages count once per process), the clients' CPU, and the rest of
the machine's busy CPU (other tenants, steal; PostgreSQL's own processes count here too)
as a noise gauge, and how the server CPU split over the workers ("split"). Reported: medians
over the rounds and the ratio service / ceiling (of the medians; in brackets the median of
the same-round ratios), checked against the issue's targets, and what securing a unary
call costs (sqlite-mtls against sqlite, and the TLS share of it: ceiling-tls against ceiling).

Over 500 lines for a reason: it is one script run by path (`make bench`) whose parts (the
request pool, the load generators it re-launches as `--client`, the servers, the measurement
and the report) share one configuration table and one set of figures, and it is read top to
bottom as the method docs/benchmarks.md describes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import pickle
import platform
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secure import SecureFiles, issue_key

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVICE = "sector_credit.v1.CreditEvaluationService"
SCORECARD = "transport.taxi_driver"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BOUND_OFF = "SECTOR_CREDIT_BENCH_OFF"  # bench/bound_server.py's: the parts it switches off
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# A mode ending in /basic asks for the BASIC view (AIP-157: the evaluation less its lines),
# from the real server and the ceilings alike; the others for the FULL one (the default).
MODES = (
    "unary",
    "unary/basic",
    "unary@half",
    "batch100",
    "batch1000",
    "batch1000/basic",
    "stream",
    "stream/basic",
)
DEFAULT_MODES = ("unary", "unary@half", "batch100", "batch1000", "batch1000/basic", "stream")
BATCH_SIZES = {"batch100": 100, "batch1000": 1000}


@dataclass(frozen=True)
class Config:
    """A server configuration and the references its evaluations per second are divided by."""

    real: bool  # the real server; else a ceiling (bench/ceiling_server.py)
    database: str | None = None  # "sqlite" or "postgresql": where it stores; None: nothing
    secured: bool = False  # mutual TLS, every call with a bearer token (bench/secure.py)
    bare: str | None = None  # the bare ceiling over the same transport
    durable: str | None = None  # the durable ceiling of the same database
    cert_check: str = ""  # a real secured server's --client-cert-check ("": its default)
    # a real server's parts switched off (bench/bound_server.py, SECTOR_CREDIT_BENCH_OFF);
    # "": none, the server as in production. Not in the default set of configurations
    off: str = ""


CONFIGS = {
    "ceiling": Config(real=False),
    "durable-sqlite": Config(real=False, database="sqlite", bare="ceiling"),
    "sqlite": Config(real=True, database="sqlite", bare="ceiling", durable="durable-sqlite"),
    "durable-postgresql": Config(real=False, database="postgresql", bare="ceiling"),
    "postgresql": Config(
        real=True, database="postgresql", bare="ceiling", durable="durable-postgresql"
    ),
    "ceiling-tls": Config(real=False, secured=True, bare="ceiling"),
    "sqlite-mtls": Config(real=True, database="sqlite", secured=True, bare="ceiling-tls"),
    "sqlite-mtls-handshake": Config(
        real=True, database="sqlite", secured=True, bare="ceiling-tls", cert_check="handshake"
    ),
    # the measured bound (issue 12): the real server less the parts named in `off`
    **{
        f"{database}-{suffix}": Config(
            real=True, database=database, bare="ceiling", durable=f"durable-{database}", off=off
        )
        for database, suffix, off in (
            ("sqlite", "nostore", "store"),
            ("sqlite", "norows", "rows"),
            ("sqlite", "nostore-nolog", "store,log"),
            ("sqlite", "noscore", "score"),
            ("postgresql", "nostore", "store"),
            ("postgresql", "noscore", "score"),
        )
    },
}
# what `make bench` runs: every configuration but the bound's
DEFAULT_CONFIGS = tuple(c for c, spec in CONFIGS.items() if not spec.off)

# Issue 12's targets: (mode, configuration) -> least ratio service / durable ceiling of the
# same database, and service / bare ceiling.
DURABLE_TARGETS = {
    ("unary", "sqlite"): 0.7,
    ("batch1000", "sqlite"): 0.5,
    ("stream", "sqlite"): 0.6,
    ("unary", "postgresql"): 0.6,
    ("batch1000/basic", "sqlite"): 0.7,
    ("batch1000/basic", "postgresql"): 0.6,
}
# "at least 3x today's 0.07" (issue 12)
BARE_TARGETS = {("batch1000/basic", "sqlite"): 0.21}
HALF_LOAD_P99_MS = 20.0
PEAK_MB = 300.0


# ============================================================================================
# Messages: one pool of valid, varied requests, serialized once


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_REGIONS = ("110105", "310101", "310115", "440305", "440106", "350102", "330106", "510107")


def _resident_id(rng: random.Random) -> str:
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(40 * 365))
    body = f"{rng.choice(_REGIONS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11]


def build_pool(n: int, seed: int = 7) -> list[bytes]:
    """`n` serialized EvaluateRequests for the taxi card: varied counts, a bonus now and then,
    zero counts often left out, a fixed as_of; every one checked valid by the engine."""
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert
    from sector_credit.v1 import common_pb2
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    compiled = build_registry(get_plugin_manager()).resolve(SCORECARD)
    rng = random.Random(seed)
    pool = []
    for i in range(n):
        req = pb.EvaluateRequest(scorecard=f"scorecards/{SCORECARD}")
        req.subject.kind = common_pb2.SUBJECT_KIND_PERSON
        req.subject.id = _resident_id(rng)
        req.subject.display_name = f"驾驶员{i:05d}"
        req.as_of.year, req.as_of.month, req.as_of.day = 2025, 6, 1
        for name, weights in (
            ("violations_1pt", (55, 25, 10, 5, 3, 2)),
            ("violations_3pt", (65, 22, 8, 3, 2)),
            ("violations_5pt", (75, 18, 5, 2)),
            ("violations_10pt", (88, 10, 2)),
            ("violations_20pt", (95, 5)),
        ):
            count = rng.choices(range(len(weights)), weights)[0]
            if count or rng.random() < 0.5:
                req.indicators[name].count_value = count
        r = rng.random()
        if r > 0.85:
            req.indicators["bonus_points"].decimal_value = f"{rng.randrange(1, 100) / 10:.1f}"
        elif r > 0.55:
            req.indicators["bonus_points"].count_value = rng.randint(1, 10)
        inp = convert.evaluation_input_from_proto(req)
        compiled.evaluate(inp.subject, inp.indicators, inp.as_of)  # raises if not valid
        pool.append(req.SerializeToString())
    return pool


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# `view = EVALUATION_VIEW_BASIC` (field 60, a varint) of an EvaluateRequest or a
# BatchEvaluateRequest: appended to a serialized message, it sets the field
BASIC_VIEW = _varint(60 << 3) + _varint(1)


def batch_bytes(pool: list[bytes], size: int, start: int, basic: bool = False) -> bytes:
    """A BatchEvaluateRequest of `size` items from the pool (field 1, repeated), in the BASIC
    view (the batch's field) or not."""
    body = b"".join(_field(1, pool[(start + i) % len(pool)]) for i in range(size))
    return body + BASIC_VIEW if basic else body


def evaluation_for_ceiling(pool: list[bytes]) -> bytes:
    """The ceiling's prebuilt answer: a real Evaluation of the pool's first request, with a
    name, create time and caller as the real server fills them."""
    import uuid

    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    req = pb.EvaluateRequest.FromString(pool[0])
    inp = convert.evaluation_input_from_proto(req)
    result = (
        build_registry(get_plugin_manager())
        .resolve(SCORECARD)
        .evaluate(inp.subject, inp.indicators, inp.as_of)
    )
    message = convert.evaluation_to_proto(
        result,
        evaluation_id=str(uuid.uuid4()),
        create_time=dt.datetime.now(dt.UTC),
        caller="anonymous (ipv4:127.0.0.1:40000)",
    )
    return bytes(message.SerializeToString())


# ============================================================================================
# The load generator (a separate process; `--client POOL_FILE`)


def client_main(pool_file: str) -> int:
    import uvloop

    with open(pool_file, "rb") as f:
        pool = pickle.load(f)
    global RPC_FAILURES
    RPC_FAILURES = _rpc_failures()
    uvloop.install()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("op") == "quit":
            break
        try:
            result = loop.run_until_complete(_client_run(pool, cmd))
        except Exception as exc:  # noqa: BLE001  (report it and wait for the next command)
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


# What a call can fail with, from the server or the connection (grpc.aio raises AioRpcError,
# a deadline asyncio.TimeoutError, a closed channel UsageError or OSError).
RPC_FAILURES: tuple[type[BaseException], ...] = (Exception,)


def _rpc_failures() -> tuple[type[BaseException], ...]:
    import grpc

    return (grpc.RpcError, grpc.aio.UsageError, asyncio.TimeoutError, OSError)


class _Tally:
    def __init__(self, ws: float, we: float):
        self.ws, self.we = ws, we
        self.calls = self.items = self.errors = 0
        self.lat: list[float] = []
        self.error_sample = ""

    def done(self, sent: float, items: int) -> None:
        now = time.time()
        if self.ws <= now <= self.we:
            self.calls += 1
            self.items += items
            self.lat.append((now - sent) * 1000)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.error_sample:
            self.error_sample = f"{type(exc).__name__}: {str(exc)[:300]}"


def _check_response(mode: str, data: bytes, expect_name: bool, basic: bool = False) -> str:
    """'' when the first response of a mode is an evaluation (per item) in the view asked
    for, else why not."""
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    def bad(ev: Any) -> str:
        if not ev.grade.code or not ev.score:
            return "an evaluation without grade or score"
        if bool(ev.lines) == basic:
            return "lines in a BASIC evaluation" if basic else "a FULL evaluation without lines"
        if expect_name and not ev.name.startswith("evaluations/"):
            return "an evaluation without a stored name"
        return ""

    if mode.startswith("unary"):
        return bad(pb.EvaluateResponse.FromString(data).evaluation)
    if mode.startswith("batch"):
        for r in pb.BatchEvaluateResponse.FromString(data).results:
            if r.HasField("error"):
                return f"item error: {r.error.message}"
            if why := bad(r.evaluation):
                return why
        return ""
    r = pb.StreamEvaluateResponse.FromString(data)
    return f"item error: {r.error.message}" if r.HasField("error") else bad(r.evaluation)


async def _client_run(pool: list[bytes], cmd: dict[str, Any]) -> dict[str, Any]:
    import grpc

    mode: str = cmd["mode"]
    if cmd.get("basic") and not mode.startswith("batch"):
        pool = [body + BASIC_VIEW for body in pool]  # each item's own view (unary, stream)
    target = f"127.0.0.1:{cmd['port']}"
    opts = [
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    secure = cmd.get("secure")
    if secure:  # mutual TLS, and the bearer token on every call (bench/secure.py)
        from secure import channel_credentials

        credentials = channel_credentials(secure)
        opts.append(("grpc.ssl_target_name_override", secure["server_name"]))
        channels = [
            grpc.aio.secure_channel(target, credentials, options=[*opts, ("bench.channel", i)])
            for i in range(cmd["channels"])
        ]
        cmd["metadata"] = (("authorization", f"Bearer {secure['token']}"),)
    else:
        channels = [
            grpc.aio.insecure_channel(target, options=[*opts, ("bench.channel", i)])
            for i in range(cmd["channels"])
        ]
        cmd["metadata"] = None
    try:
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), 10)
        t0, ws, we = cmd["t0"], cmd["ws"], cmd["we"]
        tally = _Tally(ws, we)
        offset = cmd["index"] * 7919  # clients walk the pool from different places
        check = {"pending": True, "problem": ""}

        def first(data: bytes) -> None:
            if check["pending"]:
                check["pending"] = False
                check["problem"] = _check_response(
                    mode, data, cmd["expect_name"], cmd.get("basic", False)
                )

        await asyncio.sleep(max(0.0, t0 - time.time()))
        if mode == "unary":
            await _closed_loop(channels, pool, cmd, tally, first, offset)
        elif mode == "unary@half":
            await _open_loop(channels, pool, cmd, tally, first, offset)
        elif mode.startswith("batch"):
            await _batches(channels, pool, cmd, tally, first, offset)
        else:
            await _streams(channels, pool, cmd, tally, first, offset)
        return {
            "calls": tally.calls,
            "items": tally.items,
            "errors": tally.errors,
            "error_sample": tally.error_sample,
            "lat": tally.lat,
            "check": "no response" if check["pending"] else check["problem"],
        }
    finally:
        for ch in channels:
            await ch.close()


async def _closed_loop(
    channels: list[Any],
    pool: list[bytes],
    cmd: dict[str, Any],
    tally: _Tally,
    first: Any,
    offset: int,
) -> None:
    calls = [ch.unary_unary(f"/{SERVICE}/Evaluate") for ch in channels]
    n, we, md = cmd["inflight"], cmd["we"], cmd["metadata"]

    async def worker(k: int) -> None:
        i = offset + k * 131
        while time.time() < we:
            sent = time.time()
            try:
                data = await calls[i % len(calls)](pool[i % len(pool)], timeout=30, metadata=md)
            except RPC_FAILURES as exc:
                tally.error(exc)
                await asyncio.sleep(0.01)
                continue
            first(data)
            tally.done(sent, 1)
            i += 1

    await asyncio.gather(*(worker(k) for k in range(n)))


async def _open_loop(
    channels: list[Any],
    pool: list[bytes],
    cmd: dict[str, Any],
    tally: _Tally,
    first: Any,
    offset: int,
) -> None:
    """Sends at a fixed rate whatever the answers do; latency from the scheduled time."""
    calls = [ch.unary_unary(f"/{SERVICE}/Evaluate") for ch in channels]
    rate, we, md = cmd["rate"], cmd["we"], cmd["metadata"]
    pending: set[asyncio.Task[None]] = set()

    async def one(k: int, scheduled: float) -> None:
        try:
            data = await calls[k % len(calls)](
                pool[(offset + k) % len(pool)], timeout=30, metadata=md
            )
        except RPC_FAILURES as exc:
            tally.error(exc)
            return
        first(data)
        tally.done(scheduled, 1)

    start = time.time() + random.random() / rate  # clients out of phase
    k = 0
    while True:
        now = time.time()
        if now >= we:
            break
        while start + k / rate <= now and len(pending) < 4096:
            task = asyncio.ensure_future(one(k, start + k / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            k += 1
        await asyncio.sleep(max(0.0, start + k / rate - time.time()))
    if pending:
        await asyncio.wait(pending, timeout=30)


async def _batches(
    channels: list[Any],
    pool: list[bytes],
    cmd: dict[str, Any],
    tally: _Tally,
    first: Any,
    offset: int,
) -> None:
    size = cmd["batch_size"]
    bodies = [
        batch_bytes(pool, size, offset + j * size, cmd["basic"]) for j in range(4)
    ]  # the batch's view
    calls = [ch.unary_unary(f"/{SERVICE}/BatchEvaluate") for ch in channels]
    n, we, md = cmd["inflight"], cmd["we"], cmd["metadata"]

    async def worker(k: int) -> None:
        j = k
        while time.time() < we:
            sent = time.time()
            try:  # each call on the next channel: every connection (and worker) gets batches
                data = await calls[(offset + j) % len(calls)](
                    bodies[j % len(bodies)], timeout=60, metadata=md
                )
            except RPC_FAILURES as exc:
                tally.error(exc)
                await asyncio.sleep(0.05)
                continue
            first(data)
            tally.done(sent, size)
            j += n

    await asyncio.gather(*(worker(k) for k in range(n)))


def _correlation_id(data: bytes) -> bytes:
    """Field 1 of a StreamEvaluateResponse: serialized first (field order), so read it raw."""
    if data[:1] != b"\x0a":
        return b""
    n, shift, i = 0, 0, 1
    while True:
        b = data[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    return data[i : i + n]


async def _streams(
    channels: list[Any],
    pool: list[bytes],
    cmd: dict[str, Any],
    tally: _Tally,
    first: Any,
    offset: int,
) -> None:
    window, we = cmd["window"], cmd["we"]
    items = [_field(2, body) for body in pool]  # StreamEvaluateRequest.request

    async def one(s: int) -> None:
        call = channels[(offset + s) % len(channels)].stream_stream(f"/{SERVICE}/StreamEvaluate")(
            metadata=cmd["metadata"]
        )
        sent: dict[bytes, float] = {}
        room = asyncio.Semaphore(window)

        async def write() -> None:
            i = offset + s * 977
            while time.time() < we:
                await room.acquire()
                cid = b"%d" % i
                sent[cid] = time.time()
                await call.write(_field(1, cid) + items[i % len(items)])
                i += 1
            await call.done_writing()

        async def read() -> None:
            async for data in call:
                first(data)
                t = sent.pop(_correlation_id(data), None)
                room.release()
                if t is not None:
                    tally.done(t, 1)

        try:
            await asyncio.gather(write(), read())
        except RPC_FAILURES as exc:
            tally.error(exc)
            call.cancel()

    await asyncio.gather(*(one(s) for s in range(cmd["streams"])))


# ============================================================================================
# Processes, /proc


def _proc_tree(root: int) -> list[int]:
    """`root` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return out


def _cpu_seconds(pids: list[int]) -> float:
    return sum(_cpu_by_pid(pids).values())


def _peak_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine (all but idle and iowait), steal included."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _steal_seconds() -> float:
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / CLK_TCK


class Server:
    """A server process started for one configuration in one round."""

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        client: dict[str, str] | None = None,
    ):
        self.client = client  # a secured server: how the load generators call it (secure.py)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  (open as long as the server runs)
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        self.port = self._wait_port()
        self.pids = _proc_tree(self.proc.pid)

    def _wait_port(self) -> int:
        assert self.proc.stdout is not None
        deadline = time.time() + 90
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("listening on port "):
                threading.Thread(target=self._drain, daemon=True).start()
                return int(line.split()[-1])
        self.stop()
        raise RuntimeError(
            f"server did not start; see {self.log_path}:\n"
            + self.log_path.read_text(errors="replace")[-2000:]
        )

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def refresh(self) -> None:
        self.pids = _proc_tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class Clients:
    """The load generator processes, started once and driven over their stdin/stdout."""

    def __init__(self, n: int, pool_file: Path):
        self.procs = [
            subprocess.Popen(
                [PYTHON, __file__, "--client", str(pool_file)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self, cmds: list[dict[str, Any]]) -> None:
        for p, cmd in zip(self.procs, cmds):
            assert p.stdin is not None
            p.stdin.write(json.dumps(cmd) + "\n")
            p.stdin.flush()

    def results(self) -> list[dict[str, Any]]:
        out = []
        for p in self.procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("a load generator died")
            out.append(json.loads(line))
        return out

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                assert p.stdin is not None
                p.stdin.write(json.dumps({"op": "quit"}) + "\n")
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


# ============================================================================================
# One measured run


@dataclass
class Run:
    config: str
    mode: str
    round: int
    evals_per_s: float
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    srv_cores: float
    srv_us_per_eval: float
    client_cores: float
    other_cores: float
    steal_cores: float
    peak_mb: float
    errors: int
    rate: float = 0.0  # unary@half: the offered calls per second
    split: str = ""  # server CPU per busy process, % (see _split)
    notes: list[str] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(
    server: Server,
    clients: Clients,
    config: str,
    mode: str,
    rnd: int,
    a: argparse.Namespace,
    rate: float = 0.0,
) -> Run:
    n = len(clients.procs)
    t0 = time.time() + 1.0  # time for the clients to connect
    ws = t0 + a.warmup
    we = ws + a.window
    kind, _, view = mode.partition("/")
    base = {
        "op": "run",
        "mode": kind,
        "port": server.port,
        "t0": t0,
        "ws": ws,
        "we": we,
        "channels": a.channels,
        "expect_name": CONFIGS[config].real,
        "basic": view == "basic",
        "secure": server.client,
    }
    cmds = []
    for i in range(n):
        cmd = dict(base, index=i)
        if kind == "unary":
            cmd["inflight"] = _share(a.unary_inflight, n, i)
        elif kind == "unary@half":
            cmd["rate"] = rate / n
        elif kind in BATCH_SIZES:
            cmd["inflight"] = _share(a.batch_inflight, n, i)
            cmd["batch_size"] = BATCH_SIZES[kind]
        else:
            cmd["streams"] = _share(a.streams, n, i)
            cmd["window"] = a.stream_window
        cmds.append(cmd)
    server.refresh()
    clients.start(cmds)
    time.sleep(max(0.0, ws - time.time()))
    p0, c0, m0, st0, w0 = (
        _cpu_by_pid(server.pids),
        _cpu_seconds(clients.pids),
        _machine_busy_seconds(),
        _steal_seconds(),
        time.time(),
    )
    time.sleep(max(0.0, we - time.time()))
    p1, c1, m1, st1, w1 = (
        _cpu_by_pid(server.pids),
        _cpu_seconds(clients.pids),
        _machine_busy_seconds(),
        _steal_seconds(),
        time.time(),
    )
    by_pid = {pid: p1[pid] - p0.get(pid, 0.0) for pid in p1}
    s0, s1 = 0.0, sum(by_pid.values())
    results = clients.results()
    peak = _peak_mb(server.pids)
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise RuntimeError(f"{config} {mode}: load generator failed: {fatal[0]}")
    problems = [r["check"] for r in results if r["check"]]
    if problems:
        raise RuntimeError(f"{config} {mode}: wrong response: {problems[0]}")
    lat = [x for r in results for x in r["lat"]]
    calls = sum(r["calls"] for r in results)
    items = sum(r["items"] for r in results)
    errors = sum(r["errors"] for r in results)
    elapsed = w1 - w0
    srv, cli = s1 - s0, c1 - c0
    run = Run(
        config=config,
        mode=mode,
        round=rnd,
        evals_per_s=items / a.window,
        calls_per_s=calls / a.window,
        p50_ms=_pct(lat, 0.50),
        p99_ms=_pct(lat, 0.99),
        srv_cores=srv / elapsed,
        srv_us_per_eval=srv / items * 1e6 if items else float("nan"),
        client_cores=cli / elapsed,
        other_cores=max(0.0, (m1 - m0) - srv - cli) / elapsed,
        steal_cores=(st1 - st0) / elapsed,
        peak_mb=peak,
        errors=errors,
        rate=rate,
        split=_split(by_pid),
    )
    if errors:
        run.notes.append(
            f"{errors} failed calls, e.g. {next(r['error_sample'] for r in results if r['errors'])}"
        )
    return run


def _split(by_pid: dict[int, float]) -> str:
    """How the server CPU of the window was shared by its busy processes (the workers; the
    supervisor, and the ceiling's multiprocessing helper, stay idle), e.g. "54/46"."""
    total = sum(by_pid.values())
    busy = sorted((v for v in by_pid.values() if total and v / total > 0.02), reverse=True)
    return "/".join(f"{v / total * 100:.0f}" for v in busy) if len(busy) > 1 else "100"


def _share(total: int, n: int, i: int) -> int:
    return total // n + (1 if i < total % n else 0)


# ============================================================================================
# Configurations


class PgScratch:
    """A scratch database for the run; emptied for each server start, dropped at the end."""

    def __init__(self, admin_url: str):
        import sqlalchemy as sa

        self.sa = sa
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"sector_credit_bench_{secrets.token_hex(4)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        self.url = (
            sa.make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)
        )

    def empty(self) -> None:
        engine = self.sa.create_engine(self.url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


def start_server(
    config: str,
    rnd: int,
    a: argparse.Namespace,
    work: Path,
    pg: PgScratch | None,
    evaluation_file: Path,
    secure: SecureFiles | None,
) -> Server:
    """A fresh server of `config` (CONFIGS): its database emptied, a secured one given the
    certificates, and for the real server a new API key in its database."""
    spec = CONFIGS[config]
    log = work / f"{config}-r{rnd}.log"
    url = None
    if spec.database == "sqlite":
        db = work / f"{config}-r{rnd}.db"
        for suffix in ("", "-wal", "-shm", "-writer.lock"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{db}"
    elif spec.database == "postgresql":
        assert pg is not None
        pg.empty()
        url = pg.url
    client = None
    if not spec.real:
        argv = [
            PYTHON,
            str(ROOT / "bench" / "ceiling_server.py"),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            str(a.workers),
            "--evaluation",
            str(evaluation_file),
        ]
        if url:
            argv += ["--database-url", url]
        if spec.secured:
            assert secure is not None
            # a token of the real one's shape and length: the same bytes on the wire, unread
            argv += secure.ceiling_args()
            client = secure.client(f"sck_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}")
        return Server(argv, log, client=client)
    assert url is not None
    # a bound: the same server and argv, through the launcher that switches parts off
    launch = (
        [str(ROOT / "bench" / "bound_server.py")]
        if spec.off
        else ["-m", "sector_credit.server.main"]
    )
    argv = [
        PYTHON,
        *launch,
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--metrics-port",
        "0",
        "--log-format",
        "json",
        "--workers",
        str(a.workers),
    ]
    if spec.secured:
        assert secure is not None
        argv += secure.server_args()
        if spec.cert_check:
            argv += ["--client-cert-check", spec.cert_check]
        client = secure.client(issue_key(PYTHON, url))
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop(BOUND_OFF, None)
    if spec.off:
        env[BOUND_OFF] = spec.off
    return Server(argv, log, env, client=client)


# ============================================================================================
# Report


def _median(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def _median_of(runs: list[Run], config: str, mode: str, attr: str) -> float:
    """The median over the rounds of one Run field, for one configuration and mode."""
    return _median([getattr(r, attr) for r in runs if r.config == config and r.mode == mode])


def _ratio(rs: list[Run], refs: list[Run]) -> tuple[float, float]:
    """Service / reference of the medians, and the median of the same-round ratios."""
    by_round = {r.round: r for r in refs}
    med = _median([r.evals_per_s for r in rs]) / _median([r.evals_per_s for r in refs])
    same = _median(
        [r.evals_per_s / by_round[r.round].evals_per_s for r in rs if r.round in by_round]
    )
    return med, same


def report(runs: list[Run], a: argparse.Namespace) -> tuple[str, list[str]]:
    configs = [c for c in CONFIGS if any(r.config == c for r in runs)]
    lines = []
    failures: list[str] = []
    hdr = (
        "| mode | server | evals/s | ÷ bare ceiling | ÷ durable ceiling | p50 ms | p99 ms "
        "| srv µs/eval | srv cores | client cores | other cores | peak MB | rounds |"
    )
    lines += [hdr, "|" + "---|" * 13]
    for mode in MODES:
        for config in configs:
            rs = [r for r in runs if r.config == config and r.mode == mode]
            if not rs:
                continue
            med = _median([r.evals_per_s for r in rs])
            texts = []
            spec = CONFIGS[config]
            for kind, ref, targets in (
                ("bare", spec.bare, BARE_TARGETS),
                ("durable", spec.durable, DURABLE_TARGETS),
            ):
                refs = [r for r in runs if r.config == ref and r.mode == mode]
                if not refs or mode == "unary@half":  # each at half of its own rate
                    texts.append("")
                    continue
                ratio, same = _ratio(rs, refs)
                text = f"{ratio:.2f} ({same:.2f})"
                if kind == "bare" and ref != "ceiling":  # sqlite-mtls: to ceiling-tls
                    text += f" to {ref}"
                target = targets.get((mode, config))
                if target is not None:
                    ok = ratio >= target
                    text += f" {'≥' if ok else '<'} {target}"
                    if not ok:
                        failures.append(
                            f"{mode} on {config}: {ratio:.2f} of the {kind} ceiling < {target}"
                        )
                texts.append(text)
            label = (
                mode
                if mode != "unary@half"
                else f"unary@half ({_median([r.rate for r in rs]):.0f}/s offered)"
            )
            p99 = _median([r.p99_ms for r in rs])
            # a bound (parts switched off) is a measurement, not the service: no target
            if mode == "unary@half" and p99 > HALF_LOAD_P99_MS and spec.real and not spec.off:
                failures.append(
                    f"unary p99 at half load on {config}: {p99:.1f} ms > {HALF_LOAD_P99_MS} ms"
                )
            peak = max(r.peak_mb for r in rs)
            batch = mode.partition("/")[0] in BATCH_SIZES
            if batch and spec.real and not spec.off and peak > PEAK_MB:
                failures.append(f"{mode} on {config}: peak memory {peak:.0f} MB > {PEAK_MB:.0f} MB")
            lines.append(
                f"| {label} | {config} | {med:,.0f} | {texts[0]} | {texts[1]} "
                f"| {_median([r.p50_ms for r in rs]):.1f} "
                f"| {p99:.1f} | {_median([r.srv_us_per_eval for r in rs]):.0f} "
                f"| {_median([r.srv_cores for r in rs]):.2f} "
                f"| {_median([r.client_cores for r in rs]):.2f} "
                f"| {_median([r.other_cores for r in rs]):.2f} | {peak:.0f} | {len(rs)} |"
            )
    lines += security_cost(runs)
    lines += bound_cost(runs)
    return "\n".join(lines), failures


def security_cost(runs: list[Run]) -> list[str]:
    """What securing a unary call costs: server CPU per call and p50, sqlite-mtls against
    sqlite (the same server, the same access records, in local mode over plaintext), and the
    share of it that is TLS itself (ceiling-tls against ceiling)."""

    def med(config: str, attr: str) -> float:
        return _median_of(runs, config, "unary", attr)

    secured_us, plain_us = med("sqlite-mtls", "srv_us_per_eval"), med("sqlite", "srv_us_per_eval")
    if math.isnan(secured_us) or math.isnan(plain_us):
        return []
    cpu = secured_us - plain_us
    p50 = med("sqlite-mtls", "p50_ms") - med("sqlite", "p50_ms")
    throughput = med("sqlite-mtls", "evals_per_s") / med("sqlite", "evals_per_s")
    out = [
        "",
        f"security per unary call (sqlite-mtls − sqlite, medians): server CPU {cpu:+.0f} µs"
        f" ({secured_us / plain_us:.2f}×), p50 {p50 * 1000:+.0f} µs;"
        f" throughput {throughput:.2f}× sqlite's",
    ]
    tls = med("ceiling-tls", "srv_us_per_eval") - med("ceiling", "srv_us_per_eval")
    if not math.isnan(tls):
        out.append(
            f"of which TLS in the bare server (ceiling-tls − ceiling): {tls:+.0f} µs;"
            f" authentication and the grant check: {cpu - tls:+.0f} µs"
        )
    handshake_us = med("sqlite-mtls-handshake", "srv_us_per_eval")
    if not math.isnan(handshake_us):
        front_p50 = med("sqlite-mtls", "p50_ms") - med("sqlite-mtls-handshake", "p50_ms")
        front_rate = med("sqlite-mtls", "evals_per_s") / med("sqlite-mtls-handshake", "evals_per_s")
        out.append(
            f"of which the TLS front (sqlite-mtls − sqlite-mtls-handshake): server CPU"
            f" {secured_us - handshake_us:+.0f} µs, p50 {front_p50 * 1000:+.0f} µs;"
            f" throughput {front_rate:.2f}×"
        )
    return out


def bound_cost(runs: list[Run]) -> list[str]:
    """The measured bound: per mode, the server CPU per evaluation of each real server with
    parts switched off (a config with `off`) against the same server with none (sqlite,
    postgresql), and the difference, what the parts cost; and the variant's throughput over
    the real server's. Medians over the rounds."""

    def med(config: str, mode: str, attr: str) -> float:
        return _median_of(runs, config, mode, attr)

    rows = []
    for mode in MODES:
        for config, spec in CONFIGS.items():
            base = spec.database or ""
            if not spec.off or base not in CONFIGS:
                continue
            variant_us, base_us = (
                med(config, mode, "srv_us_per_eval"),
                med(base, mode, "srv_us_per_eval"),
            )
            if math.isnan(variant_us) or math.isnan(base_us):
                continue
            cost = base_us - variant_us
            rate = med(config, mode, "evals_per_s") / med(base, mode, "evals_per_s")
            rows.append(
                f"| {mode} | {config} | {spec.off} | {base_us:.0f} | {variant_us:.0f} "
                f"| {cost:+.0f} | {cost / base_us:.0%} | {rate:.2f} |"
            )
    if not rows:
        return []
    return [
        "",
        "bound: what each part costs (server CPU µs per evaluation, medians: the real server,"
        " the same with the parts off, the difference; evals/s of the variant ÷ the real one's)",
        "| mode | variant | off | real µs/eval | variant µs/eval | parts µs/eval | share "
        "| evals/s ÷ real |",
        "|" + "---|" * 8,
        *rows,
    ]


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem_gb = int(f.readline().split()[1]) / 1024 / 1024
    versions = {}
    for dist in ("grpcio", "protobuf", "uvloop", "sqlalchemy", "psycopg"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        **versions,
        "loadavg": os.getloadavg(),
    }


# ============================================================================================
# Main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Service vs ceiling benchmark (see the module docstring)."
    )
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument(
        "--quick", action="store_true", help="1 round, 1 s warm-up, 3 s window (about 4 minutes)"
    )
    ap.add_argument(
        "--rounds", type=int, help="repetitions of every configuration (default 3; quick 1)"
    )
    ap.add_argument("--warmup", type=float, help="seconds before the window (default 2; quick 1)")
    ap.add_argument("--window", type=float, help="seconds measured (default 8; quick 3)")
    ap.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"of {', '.join(CONFIGS)} (default: all but the bound's, *-no*)",
    )
    ap.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"of {', '.join(MODES)}")
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="server processes sharing the port, for the real and the ceiling server alike",
    )
    ap.add_argument("--clients", type=int, default=2, help="load generator processes")
    ap.add_argument(
        "--channels", type=int, default=16, help="channels (TCP connections) per load generator"
    )
    ap.add_argument(
        "--unary-inflight", type=int, default=64, help="unary calls in flight, in total"
    )
    ap.add_argument("--batch-inflight", type=int, default=4, help="batch calls in flight, in total")
    ap.add_argument("--streams", type=int, default=8, help="streams, in total")
    ap.add_argument("--stream-window", type=int, default=64, help="messages in flight per stream")
    ap.add_argument("--pool", type=int, default=4000, help="distinct requests")
    ap.add_argument(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL server (a scratch database is made there)",
    )
    ap.add_argument("--json-out", help="write every run as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (server logs)")
    a = ap.parse_args(argv)
    if a.client:
        return client_main(a.client)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.quick else 2.0)
    a.window = a.window if a.window is not None else (3.0 if a.quick else 8.0)
    configs = [c for c in a.configs.split(",") if c]
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}; modes: {', '.join(MODES)}")
    if "unary@half" in modes and "unary" not in modes:
        ap.error("unary@half needs unary (its rate is half of what unary reached)")

    started = time.time()
    info = machine()
    print(f"machine: {info}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="sector-credit-bench-"))
    pool = build_pool(a.pool)
    pool_file = work / "pool.pickle"
    pool_file.write_bytes(pickle.dumps(pool))
    evaluation_file = work / "evaluation.bin"
    evaluation_file.write_bytes(evaluation_for_ceiling(pool))
    print(
        f"{len(pool)} requests, {statistics.mean(map(len, pool)):.0f} bytes each on average; "
        f"the ceiling answers with an Evaluation of {evaluation_file.stat().st_size} bytes",
        flush=True,
    )
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown configuration {c!r}; configurations: {', '.join(CONFIGS)}")
    secure = SecureFiles.make(work / "pki") if any(CONFIGS[c].secured for c in configs) else None
    pg = PgScratch(a.pg_url) if any(CONFIGS[c].database == "postgresql" for c in configs) else None
    clients = Clients(a.clients, pool_file)
    runs: list[Run] = []
    try:
        for rnd in range(a.rounds):
            order = configs[rnd % len(configs) :] + configs[: rnd % len(configs)]
            for config in order:
                server = start_server(config, rnd, a, work, pg, evaluation_file, secure)
                try:
                    unary_rate = 0.0
                    for mode in modes:
                        run = measure(server, clients, config, mode, rnd, a, rate=unary_rate / 2)
                        if mode == "unary":
                            unary_rate = run.calls_per_s
                        runs.append(run)
                        print(
                            f"round {rnd + 1}/{a.rounds} {config:18s} {mode:15s} "
                            f"{run.evals_per_s:9,.0f} evals/s  p50 {run.p50_ms:7.1f} ms  "
                            f"p99 {run.p99_ms:7.1f} ms  "
                            f"srv {run.srv_us_per_eval:5.0f} µs/eval {run.srv_cores:.2f} cores  "
                            f"cli {run.client_cores:.2f}  other {run.other_cores:.2f} "
                            f"(steal {run.steal_cores:.2f})  "
                            f"split {run.split}  peak {run.peak_mb:.0f} MB"
                            + (f"  [{'; '.join(run.notes)}]" if run.notes else ""),
                            flush=True,
                        )
                finally:
                    server.stop()
    finally:
        clients.close()
        if pg is not None:
            pg.drop()
        if a.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    table, failures = report(runs, a)
    print()
    print(
        f"Service vs ceiling: medians of {a.rounds} round(s), {a.warmup:g} s warm-up "
        f"+ {a.window:g} s window, {a.workers} server process(es) per server, "
        f"{a.clients} load generators × {a.channels} channels; "
        f"unary {a.unary_inflight} in flight, batch {a.batch_inflight} in flight, "
        f"stream {a.streams} × {a.stream_window} messages in flight"
    )
    print(table)
    print(f"\ntotal time {time.time() - started:.0f} s; load average now {os.getloadavg()}")
    if failures:
        print("targets not met:\n- " + "\n- ".join(failures))
    else:
        print("all targets met")
    if a.json_out:
        Path(a.json_out).write_text(
            json.dumps(
                {
                    "machine": info,
                    "args": vars(a),
                    "runs": [r.__dict__ for r in runs],
                    "failures": failures,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
