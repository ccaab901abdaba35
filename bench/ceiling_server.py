"""The ceiling server: a bare grpc.aio server of the same proto, answering every call with a
prebuilt response: no validation, no scoring, no storage, no interceptor, no logging.

What the real service reaches in the same run, with the same client and the same messages,
is divided by what this server reaches (bench/service_bench.py). Like the real server it
runs on uvloop, takes the same message-size options, and with `--workers N` runs N processes
sharing the port with SO_REUSEPORT, started before any gRPC object exists in the parent.

    .venv/bin/python bench/ceiling_server.py --listen 127.0.0.1:0 [--workers 2]
        [--evaluation FILE]   # a serialized sector_credit.v1.Evaluation to answer with
        [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]   # TLS, mutual with a client CA

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
        {"violations_1pt": 2, "violations_3pt": 1}, dt.date(2025, 6, 1))
    message = convert.evaluation_to_proto(
        result, evaluation_id=str(uuid.uuid4()), create_time=dt.datetime.now(dt.UTC),
        caller="anonymous (ipv4:127.0.0.1:40000)")
    return bytes(message.SerializeToString())


def build_servicer(evaluation_bytes: bytes) -> Any:
    from sector_credit.v1 import (
        credit_evaluation_service_pb2 as pb,
    )
    from sector_credit.v1 import (
        credit_evaluation_service_pb2_grpc as pb_grpc,
    )
    from sector_credit.v1 import (
        evaluation_pb2,
    )

    evaluation = evaluation_pb2.Evaluation.FromString(evaluation_bytes)
    unary = pb.EvaluateResponse(evaluation=evaluation)
    batches: dict[int, Any] = {}

    def batch_of(n: int) -> Any:
        response = batches.get(n)
        if response is None:
            response = pb.BatchEvaluateResponse()
            for _ in range(n):
                response.results.add().evaluation.CopyFrom(evaluation)
            batches[n] = response
        return response

    class Ceiling(pb_grpc.CreditEvaluationServiceServicer):
        async def Evaluate(self, request: Any, context: Any) -> Any:
            return unary

        async def BatchEvaluate(self, request: Any, context: Any) -> Any:
            return batch_of(len(request.requests))

        async def StreamEvaluate(self, requests: Any, context: Any) -> Any:
            # One prebuilt message; only the correlation id changes. grpc.aio serializes a
            # yielded message before it resumes the generator, so reusing it is safe.
            reply = pb.StreamEvaluateResponse(evaluation=evaluation)
            async for msg in requests:
                reply.correlation_id = msg.correlation_id
                yield reply

    return Ceiling(), pb_grpc


Tls = tuple[bytes, bytes, bytes | None] | None  # key, certificate chain, client CA (mutual TLS)


async def _serve(port: int, reuseport: bool, evaluation_bytes: bytes, ready: Any, tls: Tls) -> None:
    import grpc

    servicer, pb_grpc = build_servicer(evaluation_bytes)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 1 if reuseport else 0),
    ])
    pb_grpc.add_CreditEvaluationServiceServicer_to_server(servicer, server)
    if tls is None:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    else:  # as the real server's --tls-*: a client certificate required when a CA is given
        key, chain, client_ca = tls
        bound = server.add_secure_port(f"127.0.0.1:{port}", grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready(bound)
    await stop.wait()
    await server.stop(1.0)


def _run(port: int, reuseport: bool, evaluation_bytes: bytes, ready: Any, tls: Tls) -> None:
    import uvloop

    uvloop.install()
    asyncio.run(_serve(port, reuseport, evaluation_bytes, ready, tls))


def _worker(port: int, evaluation_bytes: bytes, queue: Any, tls: Tls) -> None:
    _run(port, True, evaluation_bytes, lambda bound: queue.put(bound), tls)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="127.0.0.1:PORT (0: pick a free one)")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    ap.add_argument("--evaluation", help="file with a serialized sector_credit.v1.Evaluation")
    ap.add_argument("--tls-cert", help="serve TLS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    ap.add_argument("--tls-client-ca", help="require client certificates signed by this CA (PEM)")
    a = ap.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key) or (a.tls_client_ca and not a.tls_cert):
        ap.error("--tls-cert and --tls-key go together; --tls-client-ca needs both")
    tls: Tls = None
    if a.tls_cert:
        tls = (Path(a.tls_key).read_bytes(), Path(a.tls_cert).read_bytes(),
               Path(a.tls_client_ca).read_bytes() if a.tls_client_ca else None)
    evaluation_bytes = Path(a.evaluation).read_bytes() if a.evaluation else default_evaluation()
    port = int(a.listen.rpartition(":")[2])

    if a.workers <= 1:
        _run(port, False, evaluation_bytes, lambda bound: print(f"listening on port {bound}", flush=True), tls)
        return 0

    holder = None
    if port == 0:  # one free port for all; held (SO_REUSEPORT) until the workers bound it
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(port, evaluation_bytes, queue, tls), daemon=True)
             for _ in range(a.workers)]
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
