"""What happens around every RPC, in one pass: the request context for logs, the metrics, the
one log line, and errors turned into rich statuses (built in `errors.py`).

The servicer adds `scorecard` and `grade` to the log line with `structlog.contextvars`; it
raises domain or service errors and never builds a status itself.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog
from grpc.aio import AbortError
from sector_credit.scorecards.model import FieldViolation, InvalidInput

from . import errors, wire_limits
from .grpc_types import Context, Continuation, Handler, streaming, unary
from .logs import log
from .metrics import Metrics

REQUEST_ID_KEY = "x-request-id"


class _Refused:
    """What a request deserializer gives for bytes it does not turn into a message: bytes that
    are not a message of the method's type, or a request over a limit checked on the bytes
    (wire_limits.py). The handler raises `error` (INVALID_ARGUMENT) instead of gRPC answering
    UNKNOWN, and nothing is logged as a traceback."""

    __slots__ = ("error",)

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserialize: Callable[[bytes], Any] | None,
              check: Callable[[bytes], FieldViolation | None] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def read(data: bytes) -> Any:
        try:
            if check is not None:
                violation = check(data)
                if violation is not None:
                    return _Refused(InvalidInput([violation]))
            return deserialize(data)
        except Exception:  # DecodeError, or anything a parser raises on bytes it cannot read
            return _Refused(errors.Unparsable(
                "the request bytes are not a valid message of this method's request type"))

    return read


def _check_parsed(request: Any) -> None:
    if type(request) is _Refused:
        raise request.error


# Request ids are for finding log lines, not secrets: a PRNG seeded from the OS (again in a
# forked child) instead of one urandom system call per RPC.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


class _Method:
    """Labels of one method and its metric children, looked up once, not per call."""

    __slots__ = ("_handled_metric", "full", "handled", "handling", "kind", "labels", "name",
                 "service", "started")

    def __init__(self, full: str, kind: str, metrics: Metrics):
        self.full = full
        service, _, name = full.lstrip("/").rpartition("/")
        self.service, self.name, self.kind = service, name, kind
        self.labels = (kind, service, name)
        self.started = metrics.started.labels(*self.labels)
        self.handling = metrics.handling.labels(*self.labels)
        self._handled_metric = metrics.handled
        self.handled: dict[grpc.StatusCode, Any] = {}

    def handled_with(self, code: grpc.StatusCode) -> Any:
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self._handled_metric.labels(*self.labels, code.name)
        return child


def _kind(h: Handler) -> str:
    if h.request_streaming and h.response_streaming:
        return "bidi_stream"
    if h.request_streaming:
        return "client_stream"
    if h.response_streaming:
        return "server_stream"
    return "unary"


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self._wrapped: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Continuation,
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return handler
        wrapped = self._wrap(handler, _Method(method, _kind(handler), self.metrics))
        self._wrapped[method] = wrapped
        return wrapped

    # -- per call -----------------------------------------------------------------------

    def _begin(self, m: _Method, context: Context) -> float:
        rid = ""
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                rid = str(value)
        structlog.contextvars.clear_contextvars()
        # the caller is who the credentials prove (the authentication interceptor binds it),
        # never a header the client writes itself
        structlog.contextvars.bind_contextvars(
            request_id=rid or f"{_ids.getrandbits(128):032x}", method=m.name, caller="anonymous")
        m.started.inc()
        return time.perf_counter()

    def _finish(self, m: _Method, start: float, code: grpc.StatusCode, error: str = "") -> None:
        elapsed = time.perf_counter() - start
        m.handled_with(code).inc()
        m.handling.observe(elapsed)
        fields: dict[str, Any] = {"code": code.name, "duration_ms": round(elapsed * 1000, 3)}
        if error:
            fields["error"] = error
        if code is grpc.StatusCode.INTERNAL or code is grpc.StatusCode.UNKNOWN:
            log.error("rpc", **fields)
        else:
            log.info("rpc", **fields)

    async def _fail(self, m: _Method, start: float, exc: BaseException, context: Context) -> None:
        """Record the failure and abort the call with the status `errors` builds for it."""
        if isinstance(exc, AbortError):  # the call was aborted already (e.g. by grpc itself)
            self._finish(m, start, context.code() or grpc.StatusCode.UNKNOWN)
            raise exc
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            # the client went away or the deadline passed (GeneratorExit: while a streamed
            # response was being sent, gRPC closed the handler's generator)
            self._finish(m, start, grpc.StatusCode.CANCELLED)
            raise exc
        reference = ""
        if not isinstance(exc, errors.EXPECTED):
            reference = structlog.contextvars.get_contextvars().get("request_id", "")
            log.exception("unexpected error", exc_info=exc)
        st = errors.status_for(exc, reference)
        code = errors.grpc_code(st)
        detail = getattr(exc, "detail", "")
        if detail:  # what the caller is not told (the store's driver message), for the operator
            structlog.contextvars.bind_contextvars(detail=detail)
        self._finish(m, start, code, st.message)
        s = errors.to_grpc_status(st)
        await context.abort(s.code, s.details, s.trailing_metadata)

    # -- wrapping the four handler shapes -------------------------------------------------

    def _wrap(self, h: Handler, m: _Method) -> Handler:
        metrics = self.metrics
        recv = metrics.msg_received.labels(*m.labels)
        sent = metrics.msg_sent.labels(*m.labels)

        async def count_in(it: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for msg in it:
                recv.inc()
                _check_parsed(msg)
                yield msg

        deserialize = _tolerant(h.request_deserializer, wire_limits.precheck(m.full))

        if not h.request_streaming and not h.response_streaming:
            inner_uu = unary(h.unary_unary)

            async def unary_unary(request: Any, context: Context) -> Any:
                start = self._begin(m, context)
                recv.inc()
                try:
                    _check_parsed(request)
                    response = await inner_uu(request, context)
                except BaseException as exc:
                    await self._fail(m, start, exc, context)
                    raise
                sent.inc()
                self._finish(m, start, grpc.StatusCode.OK)
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=deserialize, response_serializer=h.response_serializer)

        inner_w = unary(h.stream_stream if h.request_streaming else h.unary_stream)
        if h.response_streaming and not inspect.isasyncgenfunction(inner_w):
            # a handler that answers with `await context.write(...)` (e.g. health Watch)

            async def writer(request: Any, context: Context) -> None:
                start = self._begin(m, context)
                if h.request_streaming:
                    request = count_in(request)
                else:
                    recv.inc()
                try:
                    if not h.request_streaming:
                        _check_parsed(request)
                    await inner_w(request, context)
                except BaseException as exc:
                    await self._fail(m, start, exc, context)
                    raise
                self._finish(m, start, grpc.StatusCode.OK)

            make = grpc.stream_stream_rpc_method_handler if h.request_streaming else grpc.unary_stream_rpc_method_handler
            return make(writer, request_deserializer=deserialize, response_serializer=h.response_serializer)

        if h.request_streaming and h.response_streaming:
            inner_ss = streaming(h.stream_stream)

            async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
                start = self._begin(m, context)
                try:
                    async for response in inner_ss(count_in(requests), context):
                        sent.inc()
                        yield response
                except BaseException as exc:
                    await self._fail(m, start, exc, context)
                    raise
                self._finish(m, start, grpc.StatusCode.OK)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, request_deserializer=deserialize, response_serializer=h.response_serializer)

        if h.response_streaming:
            inner_us = streaming(h.unary_stream)

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                start = self._begin(m, context)
                recv.inc()
                try:
                    _check_parsed(request)
                    async for response in inner_us(request, context):
                        sent.inc()
                        yield response
                except BaseException as exc:
                    await self._fail(m, start, exc, context)
                    raise
                self._finish(m, start, grpc.StatusCode.OK)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, request_deserializer=deserialize, response_serializer=h.response_serializer)

        inner_su = unary(h.stream_unary)

        async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
            start = self._begin(m, context)
            try:
                response = await inner_su(count_in(requests), context)
            except BaseException as exc:
                await self._fail(m, start, exc, context)
                raise
            sent.inc()
            self._finish(m, start, grpc.StatusCode.OK)
            return response

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, request_deserializer=deserialize, response_serializer=h.response_serializer)
