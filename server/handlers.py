"""The one wrapper of gRPC's handler shapes, on which every interceptor of this server is built.

An interceptor says what it adds around a call as a `Layer`: `enter` before the handler,
`leave` once the handler has returned (`exc` None) or raised, optionally `received` and
`sent` for each message and a request deserializer of its own. `wrap` applies a layer to
whichever shape a method has: a unary or a streaming request, and a unary response, a
streamed one (an async generator) or a written one (`await context.write(...)`, as health
Watch does). `LayeredInterceptor` is the `grpc.aio.ServerInterceptor` that wraps each
method's handler once and keeps it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from .grpc_types import Context, Continuation, Handler, streaming, unary

Deserializer = Callable[[bytes], Any] | None


class Layer:
    """What an interceptor adds around each call of one method; every hook is optional.

    `leave` may raise in place of `exc` (the error layer aborts with a status there); when
    it returns, `exc` goes on. `received` and `sent` are called only when `per_message`.
    """

    per_message = False

    def deserializer(self, deserialize: Deserializer) -> Deserializer:
        return deserialize

    async def enter(self, context: Context) -> Any:
        """Before the handler; what it returns is given to `leave`."""
        return None

    async def leave(self, state: Any, context: Context, exc: BaseException | None) -> None:
        return None

    def received(self, message: Any) -> None:
        return None

    def sent(self, message: Any) -> None:
        return None


def kind_of(h: Handler) -> str:
    """The go-grpc-prometheus `grpc_type` of a handler."""
    if h.request_streaming and h.response_streaming:
        return "bidi_stream"
    if h.request_streaming:
        return "client_stream"
    if h.response_streaming:
        return "server_stream"
    return "unary"


def wrap(h: Handler, layer: Layer) -> Handler:
    """`h` with `layer` around every call."""
    enter, leave = layer.enter, layer.leave
    received = layer.received if layer.per_message else None
    sent = layer.sent if layer.per_message else None
    kw = {
        "request_deserializer": layer.deserializer(h.request_deserializer),
        "response_serializer": h.response_serializer,
    }

    def requests_of(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if received is None:
            return requests

        async def each(it: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for message in it:
                received(message)
                yield message

        return each(requests)

    if not h.request_streaming and not h.response_streaming:
        inner_uu = unary(h.unary_unary)

        async def unary_unary(request: Any, context: Context) -> Any:
            state = await enter(context)
            try:
                if received is not None:
                    received(request)
                response = await inner_uu(request, context)
                if sent is not None:
                    sent(response)
            except BaseException as exc:
                await leave(state, context, exc)
                raise
            await leave(state, context, None)
            return response

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)

    if not h.response_streaming:
        inner_su = unary(h.stream_unary)

        async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
            state = await enter(context)
            try:
                response = await inner_su(requests_of(requests), context)
                if sent is not None:
                    sent(response)
            except BaseException as exc:
                await leave(state, context, exc)
                raise
            await leave(state, context, None)
            return response

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)

    behaviour = h.stream_stream if h.request_streaming else h.unary_stream
    make = (
        grpc.stream_stream_rpc_method_handler
        if h.request_streaming
        else grpc.unary_stream_rpc_method_handler
    )
    request_streaming = h.request_streaming

    def request_in(request: Any) -> Any:
        if request_streaming:
            return requests_of(request)
        if received is not None:
            received(request)
        return request

    if not inspect.isasyncgenfunction(behaviour):  # answers with `await context.write(...)`
        inner_w = unary(behaviour)

        async def written(request: Any, context: Context) -> None:
            state = await enter(context)
            try:
                await inner_w(request_in(request), context)
            except BaseException as exc:
                await leave(state, context, exc)
                raise
            await leave(state, context, None)

        return make(written, **kw)

    inner_s = streaming(behaviour)

    async def streamed(request: Any, context: Context) -> AsyncIterator[Any]:
        state = await enter(context)
        responses = inner_s(request_in(request), context)
        try:
            async for response in responses:
                if sent is not None:
                    sent(response)
                yield response
        except BaseException as exc:
            if isinstance(exc, GeneratorExit):  # gRPC closed this stream: close the inner one
                with contextlib.suppress(Exception):  # so that its layers see it too, in order
                    await responses.aclose()
            await leave(state, context, exc)
            raise
        await leave(state, context, None)

    return make(streamed, **kw)


class LayeredInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that puts the `Layer` of `layer_for` around each method's handler,
    built on the method's first call and kept."""

    def __init__(self) -> None:
        self._wrapped: dict[str, Handler] = {}

    def layer_for(self, method: str, handler: Handler) -> Layer | None:
        """The layer of `method` (its full name), or None to leave its handler as it is."""
        raise NotImplementedError

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
        layer = self.layer_for(method, handler)
        wrapped = handler if layer is None else wrap(handler, layer)
        self._wrapped[method] = wrapped
        return wrapped
