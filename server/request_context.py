"""What the service knows about the call being handled, in one object the log line, the
access records and the metrics all read.

The context is opened by the first interceptor (`interceptors.RequestContextInterceptor`)
with the call's id (the `x-request-id` header, or one made here); the authentication
interceptor sets the principal; the error interceptor the outcome; the servicer what the call
did: the scorecard, the grade of the one evaluation, the callers' `request_id`s, the names of
the evaluations it stored or read, and the outcome of each item of a batch or a stream.
Tasks a handler starts see the same object (a task copies the context variable, not the
object it points to).
"""

from __future__ import annotations

import contextvars
import os
import random
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sector_credit.scorecards import limits

if TYPE_CHECKING:  # not imported at run time: the `--workers` supervisor logs without gRPC
    import grpc

    from .security import Principal

MAX_CALLER = 200  # characters of the caller recorded (the principal's name); longer is cut
MAX_CALL_ID = 128  # characters of an x-request-id kept
MAX_LISTED = 1000  # request ids, and evaluation names, listed per call (a stream is unbounded)


# Call ids are for finding log lines, not secrets: a PRNG seeded from the OS (again in a
# forked child) instead of one urandom system call per RPC.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def new_call_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


@dataclass(eq=False, slots=True)
class RequestContext:
    method: str  # the RPC's short name, e.g. "Evaluate"
    call_id: (
        str  # the x-request-id header, or one made for the call; the access records' request_id
    )
    principal: Principal | None = None  # who the credentials prove; None before (or without) them
    purpose: str | None = None  # the purpose code of a read, once checked
    scorecard: str | None = None
    grade: str | None = None  # the grade of the call's one evaluation, once answered
    request_ids: list[str] = field(default_factory=list)  # the request_id of each item, as sent
    evaluations: list[str] = field(default_factory=list)  # names stored (or replayed) or read
    unlisted: int = 0  # request ids and names past MAX_LISTED, counted only
    items: dict[str, int] = field(default_factory=dict)  # batch or stream items by outcome code
    code: grpc.StatusCode | None = None  # the call's status, once the error interceptor knows it
    error: str = ""  # the status message of a failed call
    detail: str = ""  # what the caller is not told (a driver's message), for the operator

    @property
    def caller(self) -> str:
        """The caller an evaluation records: the principal's name, never a header."""
        if self.principal is None:
            return "anonymous"
        return limits.cut(self.principal.name, MAX_CALLER)

    def requested(self, request_id: str) -> None:
        """An item came with the caller's own `request_id`."""
        self._list(self.request_ids, limits.cut(request_id, limits.MAX_REQUEST_ID))

    def touched(self, name: str) -> None:
        """The call stored (or replayed) or read the evaluation `name`."""
        self._list(self.evaluations, name)

    def _list(self, values: list[str], value: str) -> None:
        if len(values) < MAX_LISTED:
            values.append(value)
        else:
            self.unlisted += 1

    def item_done(self, outcome: grpc.StatusCode) -> None:
        """One item of a batch or a stream answered, OK or with an item error."""
        name = outcome.name
        self.items[name] = self.items.get(name, 0) + 1


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def current() -> RequestContext | None:
    """The context of the call being handled; None outside a call."""
    return _current.get()


def open_call(method: str, call_id: str = "") -> contextvars.Token[RequestContext | None]:
    """Make a new context the current one (the first interceptor, once per call)."""
    return _current.set(RequestContext(method, call_id[:MAX_CALL_ID] or new_call_id()))


def add_call_fields(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every line written during a call names the call."""
    ctx = _current.get()
    if ctx is not None:
        event.setdefault("call_id", ctx.call_id)
        event.setdefault("method", ctx.method)
    return event
