"""The ceiling servers: a bare grpc.aio server of the same proto, answering every call with a
prebuilt response: no validation, no scoring, no interceptor, no logging.

- bare (no `--database-url`): nothing is stored either; the limit of a service that stores
  nothing.
- durable (`--database-url URL`): per evaluation, one row (id, subject, scorecard,
  request_id unique, the request item's bytes) is committed into the table `ceiling_rows` of
  that database before the reply, through the real store's own engine settings and group
  commit (`EvaluationStore`'s turn hand-over and `_GroupWriter`: same connection pragmas,
  same writer thread, same flock between workers, same checkpointer), only with another
  table; the honest limit of a service that writes what it answers.

Either is served over plaintext, or with `--tls-cert/--tls-key` over TLS and with
`--tls-client-ca` over mutual TLS (a client certificate required), as the real server's
flags of the same names: the reference of the secured real server (issue 9).

What the real service reaches in the same run, with the same client and the same messages,
is divided by what these servers reach (bench/service_bench.py). Like the real server they
run on uvloop, take the same message-size options, and with `--workers N` run N processes
sharing the port with SO_REUSEPORT, started before any gRPC object exists in the parent.

    .venv/bin/python bench/ceiling_server.py --listen 127.0.0.1:0 [--workers 2]
        [--evaluation FILE]   # a serialized sector_credit.v1.Evaluation to answer with
        [--database-url URL]  # the durable ceiling (SQLite file or PostgreSQL)
        [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]  # TLS, mutual with a client CA

Without `--evaluation` the answer is a real taxi-driver evaluation built once at start-up
with the engine and `convert`. Prints `listening on port N` once every process serves;
SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # as the real server's default
TABLE = "ceiling_rows"


def rows_table() -> Any:
    """The durable ceiling's table: the row the issue asks for, and nothing the real store
    has beyond it (no JSON documents, two indexes: the primary key and request_id's)."""
    import sqlalchemy as sa

    return sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject_id", sa.String(), nullable=False),
        sa.Column("scorecard_id", sa.String(), nullable=False),
        sa.Column("request_id", sa.String(), unique=True),  # NULL when the client gave none
        sa.Column("request", sa.LargeBinary(), nullable=False),
    )


def create_table(url: str) -> None:
    """Create the table once, before the workers start (they would race on PostgreSQL)."""
    from sector_credit.server.db.engine import create_engine

    engine = create_engine(url, null_pool=True)
    try:
        rows_table().create(engine, checkfirst=True)
    finally:
        engine.dispose()


class DurableRows:
    """Rows committed before the reply, by the real store's group commit on another table.

    An `EvaluationStore` is made for the URL (the same engine, pragmas, pool and writer) and
    its database writer is pointed at `ceiling_rows` before its first group (`use_table`).
    The rows go through the store's own per-turn hand-over (`_submit`), so groups form exactly
    as for the real server.
    """

    def __init__(self, url: str) -> None:
        from sector_credit.server.db.groupcommit import Pending
        from sector_credit.server.db.ids import new_evaluation_id
        from sector_credit.server.db.store import EvaluationStore

        self._pending = Pending
        self.store = EvaluationStore(url)
        self.store._writer._database.use_table(rows_table())
        self._new_id = new_evaluation_id

    async def write(self, items: list[tuple[str, str, str, bytes]]) -> None:
        """Commit one row per (subject, scorecard, request_id, request bytes); returns once
        committed (raises StoreError as the real store does)."""
        new_id = self._new_id
        rows = [
            {
                "id": new_id()[0],
                "subject_id": subject,
                "scorecard_id": scorecard,
                "request_id": request_id or None,
                "request": data,
            }
            for subject, scorecard, request_id, data in items
        ]
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.store._submit(self._pending(rows, loop, future))
        outcomes = await future
        failed = next((o for o in outcomes if o is not None), None)
        if failed is not None:
            raise failed

    async def close(self) -> None:
        await self.store.close()


def default_evaluation() -> bytes:
    """A real Evaluation (taxi driver, as stored: name, create time, caller) as bytes."""
    import datetime as dt
    import uuid

    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.model import Subject, SubjectKind
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert

    compiled = build_registry(get_plugin_manager()).resolve("transport.taxi_driver")
    result = compiled.evaluate(
        Subject(SubjectKind.PERSON, "110105198001010016", "驾驶员0001"),
        {"violations_1pt": 2, "violations_3pt": 1},
        dt.date(2025, 6, 1),
    )
    message = convert.evaluation_to_proto(
        result,
        evaluation_id=str(uuid.uuid4()),
        create_time=dt.datetime.now(dt.UTC),
        caller="anonymous (ipv4:127.0.0.1:40000)",
    )
    return bytes(message.SerializeToString())


def build_servicer(evaluation_bytes: bytes, rows: DurableRows | None = None) -> Any:
    from sector_credit.v1 import (
        credit_evaluation_service_pb2 as pb,
    )
    from sector_credit.v1 import (
        credit_evaluation_service_pb2_grpc as pb_grpc,
    )
    from sector_credit.v1 import (
        evaluation_pb2,
    )

    # the answer in both views (AIP-157): BASIC is the FULL evaluation less its lines, as the
    # real server answers; a request is answered in the view it asks for (a batch: its own)
    full = evaluation_pb2.Evaluation.FromString(evaluation_bytes)
    basic = evaluation_pb2.Evaluation()
    basic.CopyFrom(full)
    basic.ClearField("lines")
    evaluations = {False: full, True: basic}
    unaries = {b: pb.EvaluateResponse(evaluation=e) for b, e in evaluations.items()}
    batches: dict[tuple[int, bool], Any] = {}
    BASIC = pb.EVALUATION_VIEW_BASIC

    def batch_of(n: int, is_basic: bool) -> Any:
        response = batches.get((n, is_basic))
        if response is None:
            response = pb.BatchEvaluateResponse()
            for _ in range(n):
                response.results.add().evaluation.CopyFrom(evaluations[is_basic])
            batches[n, is_basic] = response
        return response

    def row(item: Any) -> tuple[str, str, str, bytes]:
        return item.subject.id, item.scorecard, item.request_id, item.SerializeToString()

    class Ceiling(pb_grpc.CreditEvaluationServiceServicer):
        async def Evaluate(self, request: Any, context: Any) -> Any:
            return unaries[request.view == BASIC]

        async def BatchEvaluate(self, request: Any, context: Any) -> Any:
            return batch_of(len(request.requests), request.view == BASIC)

        async def StreamEvaluate(self, requests: Any, context: Any) -> Any:
            # One prebuilt message per view; only the correlation id changes. grpc.aio
            # serializes a yielded message before it resumes the generator, so reusing it is safe.
            replies = {b: pb.StreamEvaluateResponse(evaluation=e) for b, e in evaluations.items()}
            async for msg in requests:
                reply = replies[msg.request.view == BASIC]
                reply.correlation_id = msg.correlation_id
                yield reply

    class DurableCeiling(pb_grpc.CreditEvaluationServiceServicer):
        """The same replies, each after its row is committed."""

        async def Evaluate(self, request: Any, context: Any) -> Any:
            assert rows is not None
            await rows.write([row(request)])
            return unaries[request.view == BASIC]

        async def BatchEvaluate(self, request: Any, context: Any) -> Any:
            assert rows is not None
            await rows.write([row(item) for item in request.requests])
            return batch_of(len(request.requests), request.view == BASIC)

        async def StreamEvaluate(self, requests: Any, context: Any) -> Any:
            # Items stored as they arrive, replies sent as their commits land, as the real
            # server does (a reply per message, the correlation id set).
            assert rows is not None
            out: asyncio.Queue[Any] = asyncio.Queue()
            pending: set[asyncio.Task[None]] = set()

            async def store_one(msg: Any) -> None:
                await rows.write([row(msg.request)])
                out.put_nowait(
                    pb.StreamEvaluateResponse(
                        correlation_id=msg.correlation_id,
                        evaluation=evaluations[msg.request.view == BASIC],
                    )
                )

            async def read() -> None:
                async for msg in requests:
                    task = asyncio.ensure_future(store_one(msg))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if pending:
                    await asyncio.wait(set(pending))
                out.put_nowait(None)

            reader = asyncio.ensure_future(read())
            try:
                while (reply := await out.get()) is not None:
                    yield reply
            finally:
                reader.cancel()

    return (Ceiling() if rows is None else DurableCeiling()), pb_grpc


# key, certificate chain, client CA (mutual TLS when given); None: plaintext
Tls = tuple[bytes, bytes, bytes | None] | None


async def _serve(
    port: int, reuseport: bool, evaluation_bytes: bytes, url: str | None, tls: Tls, ready: Any
) -> None:
    import grpc

    rows = DurableRows(url) if url else None
    servicer, pb_grpc = build_servicer(evaluation_bytes, rows)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if reuseport else 0),
        ]
    )
    pb_grpc.add_CreditEvaluationServiceServicer_to_server(servicer, server)
    if tls is None:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    else:  # as the real server's --tls-*: a client certificate required when a CA is given
        key, chain, client_ca = tls
        credentials = grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )
        bound = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready(bound)
    await stop.wait()
    await server.stop(1.0)
    if rows is not None:
        await rows.close()
        stats = rows.store.stats
        print(
            f"durable ceiling: {stats.rows} rows, largest group {stats.largest_group}",
            file=sys.stderr,
            flush=True,
        )


def _run(
    port: int, reuseport: bool, evaluation_bytes: bytes, url: str | None, tls: Tls, ready: Any
) -> None:
    import uvloop

    uvloop.install()
    asyncio.run(_serve(port, reuseport, evaluation_bytes, url, tls, ready))


def _worker(port: int, evaluation_bytes: bytes, url: str | None, tls: Tls, queue: Any) -> None:
    _run(port, True, evaluation_bytes, url, tls, lambda bound: queue.put(bound))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="127.0.0.1:PORT (0: pick a free one)")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    ap.add_argument("--evaluation", help="file with a serialized sector_credit.v1.Evaluation")
    ap.add_argument("--database-url", help="the durable ceiling: commit a row per evaluation here")
    ap.add_argument("--tls-cert", help="serve TLS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    ap.add_argument("--tls-client-ca", help="require client certificates signed by this CA (PEM)")
    a = ap.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key) or (a.tls_client_ca and not a.tls_cert):
        ap.error("--tls-cert and --tls-key go together; --tls-client-ca needs both")
    tls: Tls = None
    if a.tls_cert:
        tls = (
            Path(a.tls_key).read_bytes(),
            Path(a.tls_cert).read_bytes(),
            Path(a.tls_client_ca).read_bytes() if a.tls_client_ca else None,
        )
    evaluation_bytes = Path(a.evaluation).read_bytes() if a.evaluation else default_evaluation()
    port = int(a.listen.rpartition(":")[2])
    if a.database_url:
        create_table(a.database_url)

    if a.workers <= 1:
        _run(
            port,
            False,
            evaluation_bytes,
            a.database_url,
            tls,
            lambda bound: print(f"listening on port {bound}", flush=True),
        )
        return 0

    holder = None
    if port == 0:  # one free port for all; held (SO_REUSEPORT) until the workers bound it
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker, args=(port, evaluation_bytes, a.database_url, tls, queue), daemon=True
        )
        for _ in range(a.workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        queue.get(timeout=60)
    if holder is not None:
        holder.close()
    print(f"listening on port {port}", flush=True)

    def forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
