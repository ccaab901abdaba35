"""The grpc.aio types that the stubs (types-grpcio) leave generic or describe for the sync API
only, named once for the servicers and the interceptors.

The stubs type a method handler's behaviours (`unary_unary`, `unary_stream`, ...) as the sync
API's functions: a `grpc.ServicerContext` in, a response or an `Iterator` out. Under grpc.aio
they are coroutine functions and async generator functions taking an aio context, so an
interceptor reads them through `unary` and `streaming`, which say so (at no cost: a cast).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

# strings: the classes are generic in the stubs only, not at run time
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
Unary: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
Streaming: TypeAlias = "Callable[[Any, Context], AsyncGenerator[Any, None]]"


def unary(behaviour: object) -> Unary:
    """A handler's behaviour that answers once (`unary_unary`, `stream_unary`, or a streaming
    one that writes with `await context.write`), as grpc.aio calls it."""
    return cast("Unary", behaviour)


def streaming(behaviour: object) -> Streaming:
    """A handler's behaviour that answers with an async generator (`unary_stream`,
    `stream_stream`), as grpc.aio calls it."""
    return cast("Streaming", behaviour)
