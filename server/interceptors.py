"""What happens around every RPC, one interceptor per concern, each a `handlers.Layer`:

1. `RequestContextInterceptor` opens the call's `RequestContext` (request_context.py).
2. `LoggingInterceptor` writes the call's one log line from that context.
3. `MetricsInterceptor` counts the call, its messages and its items (metrics.py).
4. `ErrorInterceptor` turns what the handler raised into a rich status (built in
   `errors.py`), and request bytes that do not parse into INVALID_ARGUMENT.
5. (security/interceptor.py) authentication and the method's role.

`app.py` installs them in this order, the first outermost. The servicer raises domain or
service errors and never builds a status itself; it says what a call did on the context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc.aio import AbortError
from sector_credit.scorecards.model import FieldViolation, InvalidInput

from . import errors, request_context, wire_limits
from .grpc_types import Context, Handler
from .handlers import Deserializer, Layer, LayeredInterceptor, kind_of
from .logs import log
from .metrics import Metrics

REQUEST_ID_KEY = "x-request-id"


def _short(method: str) -> str:
    return method.rpartition("/")[2] or method


def outcome(
    ctx: request_context.RequestContext | None, exc: BaseException | None
) -> grpc.StatusCode:
    """The status a call ended with: the error interceptor's, else OK if it returned."""
    if ctx is not None and ctx.code is not None:
        return ctx.code
    if exc is None:
        return grpc.StatusCode.OK
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


# -- 1. the request context ----------------------------------------------------------------


class _ContextLayer(Layer):
    def __init__(self, method: str):
        self.method = method

    async def enter(self, context: Context) -> Any:
        call_id = ""
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                call_id = str(value)
        # each call runs in a task of its own: the context is never reset, only replaced
        request_context.open_call(self.method, call_id)


class RequestContextInterceptor(LayeredInterceptor):
    def layer_for(self, method: str, handler: Handler) -> Layer:
        return _ContextLayer(_short(method))


# -- 2. the log line ----------------------------------------------------------------------


def _names(key: str, values: list[str]) -> dict[str, Any]:
    """One value under `key`, several under `key`s."""
    if not values:
        return {}
    if len(values) == 1:
        return {key: values[0]}
    return {key + "s": values}


def log_fields(
    ctx: request_context.RequestContext, code: grpc.StatusCode, elapsed: float
) -> dict[str, Any]:
    """The call's one log line: what it did, joined to its evaluations by their names and
    the callers' request ids, and to its access records by `call_id`."""
    fields: dict[str, Any] = {
        "call_id": ctx.call_id,
        "method": ctx.method,
        "caller": ctx.caller,
        "code": code.name,
        "duration_ms": round(elapsed * 1000, 3),
    }
    if ctx.principal is not None:
        fields["proven_by"] = ctx.principal.proven_by
    if ctx.purpose:
        fields["purpose"] = ctx.purpose
    if ctx.scorecard:
        fields["scorecard"] = ctx.scorecard
    if ctx.grade and code is grpc.StatusCode.OK:  # a refused call logs no grade
        fields["grade"] = ctx.grade
    fields.update(_names("request_id", ctx.request_ids))
    fields.update(_names("evaluation", ctx.evaluations))
    if ctx.unlisted:  # past request_context.MAX_LISTED each
        fields["unlisted"] = ctx.unlisted
    if ctx.items:
        fields["items"] = sum(ctx.items.values())
        fields["failed"] = fields["items"] - ctx.items.get("OK", 0)
    if ctx.error:
        fields["error"] = ctx.error
    if ctx.detail:
        fields["detail"] = ctx.detail
    return fields


class _LoggingLayer(Layer):
    async def enter(self, context: Context) -> Any:
        # the context is taken now: a closed stream may be left from another task's context
        return request_context.current(), time.perf_counter()

    async def leave(self, state: Any, context: Context, exc: BaseException | None) -> None:
        ctx, start = state
        elapsed = time.perf_counter() - start
        if ctx is None:
            return
        code = outcome(ctx, exc)
        fields = log_fields(ctx, code, elapsed)
        if code is grpc.StatusCode.INTERNAL or code is grpc.StatusCode.UNKNOWN:
            log.error("rpc", **fields)
        else:
            log.info("rpc", **fields)


class LoggingInterceptor(LayeredInterceptor):
    _layer = _LoggingLayer()

    def layer_for(self, method: str, handler: Handler) -> Layer:
        return self._layer


# -- 3. metrics ---------------------------------------------------------------------------


class _MetricsLayer(Layer):
    """Labels of one method and its metric children, looked up once, not per call."""

    per_message = True

    def __init__(self, full: str, kind: str, metrics: Metrics):
        service, _, name = full.lstrip("/").rpartition("/")
        self.labels = (kind, service, name)
        self.name = name
        self.metrics = metrics
        self.started = metrics.started.labels(*self.labels)
        self.handling = metrics.handling.labels(*self.labels)
        self._received = metrics.msg_received.labels(*self.labels)
        self._sent = metrics.msg_sent.labels(*self.labels)
        self.handled: dict[grpc.StatusCode, Any] = {}

    def received(self, message: Any) -> None:
        self._received.inc()

    def sent(self, message: Any) -> None:
        self._sent.inc()

    async def enter(self, context: Context) -> Any:
        self.started.inc()
        return request_context.current(), time.perf_counter()

    async def leave(self, state: Any, context: Context, exc: BaseException | None) -> None:
        ctx, start = state
        self.handling.observe(time.perf_counter() - start)
        code = outcome(ctx, exc)
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = self.metrics.handled.labels(*self.labels, code.name)
        child.inc()
        if ctx is not None and ctx.items:
            for item_outcome, n in ctx.items.items():
                self.metrics.count_items(self.name, item_outcome, n)


class MetricsInterceptor(LayeredInterceptor):
    def __init__(self, metrics: Metrics):
        super().__init__()
        self.metrics = metrics

    def layer_for(self, method: str, handler: Handler) -> Layer:
        return _MetricsLayer(method, kind_of(handler), self.metrics)


# -- 4. errors ----------------------------------------------------------------------------


class _Refused:
    """What a request deserializer gives for bytes it does not turn into a message: bytes that
    are not a message of the method's type, or a request over a limit checked on the bytes
    (wire_limits.py). The error layer raises `error` (INVALID_ARGUMENT) instead of gRPC
    answering UNKNOWN, and nothing is logged as a traceback."""

    __slots__ = ("error",)

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(
    deserialize: Deserializer, check: Callable[[bytes], FieldViolation | None] | None
) -> Deserializer:
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
            return _Refused(
                errors.Unparsable(
                    "the request bytes are not a valid message of this method's request type"
                )
            )

    return read


class _ErrorLayer(Layer):
    per_message = True

    def __init__(self, method: str):
        self.method = method

    def deserializer(self, deserialize: Deserializer) -> Deserializer:
        return _tolerant(deserialize, wire_limits.precheck(self.method))

    def received(self, message: Any) -> None:
        if type(message) is _Refused:
            raise message.error

    async def enter(self, context: Context) -> Any:
        return request_context.current()

    async def leave(self, ctx: Any, context: Context, exc: BaseException | None) -> None:
        if exc is None:
            if ctx is not None:
                ctx.code = grpc.StatusCode.OK
            return
        if isinstance(exc, AbortError):  # the call was aborted already (e.g. by grpc itself)
            if ctx is not None:
                ctx.code = context.code() or grpc.StatusCode.UNKNOWN
            return
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            # the client went away or the deadline passed (GeneratorExit: while a streamed
            # response was being sent, gRPC closed the handler's generator)
            if ctx is not None:
                ctx.code = grpc.StatusCode.CANCELLED
            return
        reference = ""
        if not isinstance(exc, errors.EXPECTED):
            reference = ctx.call_id if ctx is not None else ""
            log.exception("unexpected error", exc_info=exc)
        st = errors.status_for(exc, reference)
        if ctx is not None:
            ctx.code, ctx.error = errors.grpc_code(st), st.message
            ctx.detail = getattr(exc, "detail", "") or ctx.detail
        s = errors.to_grpc_status(st)
        await context.abort(s.code, s.details, s.trailing_metadata)


class ErrorInterceptor(LayeredInterceptor):
    def layer_for(self, method: str, handler: Handler) -> Layer:
        return _ErrorLayer(method)


def edge_interceptors(
    metrics: Metrics, *inner: grpc.aio.ServerInterceptor
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of a server in their order (the first outermost), `inner` last."""
    return [
        RequestContextInterceptor(),
        LoggingInterceptor(),
        MetricsInterceptor(metrics),
        ErrorInterceptor(),
        *inner,
    ]
