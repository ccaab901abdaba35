"""What the gRPC edge costs per call: the server's interceptors (request context, the log line,
metrics, errors, authentication in local mode) around a handler that does nothing, against
the same handler bare, in one process and one run (no network, no protobuf).

    .venv/bin/python bench/edge_bench.py [--calls 20000] [--items 1000] [--rounds 5]

Prints µs per unary call and per stream item, bare and through the edge, the difference
(what the edge adds) and the ratio; medians over the rounds. The log line is rendered as in
production, to /dev/null. Compare the difference with the server CPU per evaluation that
`make bench-quick` prints (about 1,000-2,000 µs on 2 shared cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import types
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog
from sector_credit.server.interceptors import edge_interceptors
from sector_credit.server.logs import configure
from sector_credit.server.metrics import Metrics
from sector_credit.server.security.interceptor import Authenticator, AuthInterceptor

UNARY = "/sector_credit.v1.CreditEvaluationService/Evaluate"
STREAM = "/sector_credit.v1.CreditEvaluationService/StreamEvaluate"


class _Context:
    """The parts of grpc.aio.ServicerContext the interceptors use."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", "bench"),)

    def code(self) -> grpc.StatusCode | None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}


async def _unary(request: Any, context: Any) -> Any:
    return request


async def _stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
    async for r in requests:
        yield r


def _handlers() -> dict[str, grpc.RpcMethodHandler]:
    return {
        UNARY: grpc.unary_unary_rpc_method_handler(_unary, request_deserializer=bytes),
        STREAM: grpc.stream_stream_rpc_method_handler(_stream, request_deserializer=bytes),
    }


async def _through(interceptors: list[Any], method: str) -> grpc.RpcMethodHandler:
    """The handler gRPC would call: the interceptors applied in order, the first outermost."""
    bare = _handlers()[method]

    async def call(i: int, details: Any) -> grpc.RpcMethodHandler:
        if i == len(interceptors):
            return bare
        return await interceptors[i].intercept_service(lambda d: call(i + 1, d), details)

    return await call(0, types.SimpleNamespace(method=method, invocation_metadata=()))


async def _items(n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x"


async def _time_unary(handler: grpc.RpcMethodHandler, calls: int) -> float:
    context, fn = _Context(), handler.unary_unary
    t0 = time.perf_counter()
    for _ in range(calls):
        await fn(b"x", context)
    return (time.perf_counter() - t0) / calls * 1e6


async def _time_stream(handler: grpc.RpcMethodHandler, items: int) -> float:
    context, fn = _Context(), handler.stream_stream
    t0 = time.perf_counter()
    async for _ in fn(_items(items), context):
        pass
    return (time.perf_counter() - t0) / items * 1e6


async def _run(args: argparse.Namespace) -> None:
    edge = edge_interceptors(Metrics(), AuthInterceptor(Authenticator(None, None)))
    bare_u, edge_u = _handlers()[UNARY], await _through(edge, UNARY)
    bare_s, edge_s = _handlers()[STREAM], await _through(edge, STREAM)
    rows: dict[str, list[float]] = {
        k: [] for k in ("unary bare", "unary edge", "item bare", "item edge")
    }
    for _ in range(args.rounds):  # interleaved, so that a noisy moment hits both
        rows["unary bare"].append(await _time_unary(bare_u, args.calls))
        rows["unary edge"].append(await _time_unary(edge_u, args.calls))
        rows["item bare"].append(await _time_stream(bare_s, args.items))
        rows["item edge"].append(await _time_stream(edge_s, args.items))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        f"python {sys.version.split()[0]}, grpcio {grpc.__version__}, loadavg"
        f" {os.getloadavg()[0]:.1f},"
        f" medians of {args.rounds} rounds"
    )
    print("| what | bare µs | through the edge µs | the edge adds µs | ratio |")
    print("|---|---|---|---|---|")
    for what in ("unary", "item"):
        bare, through = med[f"{what} bare"], med[f"{what} edge"]
        label = "unary call" if what == "unary" else "stream item"
        print(
            f"| {label} | {bare:.2f} | {through:.2f} | {through - bare:.2f} | {through / bare:.1f}"
            f" |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  # the log lines, rendered as in production
    configure("json", "info")
    structlog.get_logger("sector_credit")  # the configured logger, as the server has it
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
