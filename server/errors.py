"""The one place that turns errors into `google.rpc.Status` (AIP-193).

Every status carries one `ErrorInfo` with a stable reason; input errors carry a `BadRequest`
with one field violation per problem. Unexpected exceptions become INTERNAL with a reference
the operator can find in the log, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from sector_credit.scorecards import limits
from sector_credit.scorecards.model import (
    DomainError,
    FieldViolation,
    InvalidInput,
    ScorecardNotFound,
)
from sector_credit.scorecards.records import LifecycleRefused

from .db.errors import InvalidRecord, RecordChanged, RequestConflict, StoreError, StoreUnavailable

ERROR_DOMAIN = "sector-credit"


class ServiceError(Exception):
    """An error the service raises on purpose, with its gRPC code and stable reason."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        metadata: Mapping[str, str] | None = None,
        violations: Iterable[FieldViolation] = (),
    ):
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)


class BadRequest(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"


class Unparsable(BadRequest):
    """Request bytes that do not parse as the method's request message: INVALID_ARGUMENT, the
    caller's fault, on every method (gRPC itself would say UNKNOWN or INTERNAL)."""

    reason = "UNPARSABLE_REQUEST"


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class FailedPrecondition(ServiceError):
    """The request is well formed but the server is not in the state it needs (e.g. a stored
    evaluation whose scorecard version is no longer loaded with the same definition)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class TooLarge(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "BATCH_TOO_LARGE"


EXPECTED: tuple[type[Exception], ...] = (ServiceError, DomainError, StoreError, LifecycleRefused)
"""Errors with a status of their own; anything else is a bug, logged with its traceback."""


def _pack(msg: object) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)  # type: ignore[arg-type]
    return a


MAX_FIELD = 100  # characters of a violation's field path
MAX_DESCRIPTION = 200  # characters of a violation's description


def status_of(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    violations: Iterable[FieldViolation] = (),
    metadata: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    """The status, bounded (scorecards/limits.py): the message cut to MAX_ERROR_MESSAGE
    characters, each violation's field and description cut, metadata values cut, and
    violations left out from the end (the last one saying how many) until the details fit in
    MAX_ERROR_DETAILS_BYTES, so that a default client reads the error rather than failing on
    the size of its trailers."""
    st = status_pb2.Status(
        code=code.value[0], message=limits.cut(message, limits.MAX_ERROR_MESSAGE)
    )
    info = _pack(
        error_details_pb2.ErrorInfo(
            reason=reason,
            domain=ERROR_DOMAIN,
            metadata={k: limits.cut(v, limits.MAX_ECHO) for k, v in (metadata or {}).items()},
        )
    )
    wire = [
        error_details_pb2.BadRequest.FieldViolation(
            field=limits.cut(v.field, MAX_FIELD),
            description=limits.cut(v.description, MAX_DESCRIPTION),
        )
        for v in violations
    ]
    if wire:
        room = limits.MAX_ERROR_DETAILS_BYTES - info.ByteSize() - 16  # the Any wrapping BadRequest
        bad = error_details_pb2.BadRequest(field_violations=wire)
        if bad.ByteSize() > room:
            kept, size = [], 0
            for v in wire:
                if size + v.ByteSize() + 3 > room - 80:  # 80: the closing "more" violation
                    break
                kept.append(v)
                size += v.ByteSize() + 3
            left = len(wire) - len(kept)
            kept.append(
                error_details_pb2.BadRequest.FieldViolation(
                    field="",
                    description=f"and {left} more problem{'s' if left != 1 else ''}, not listed",
                )
            )
            bad = error_details_pb2.BadRequest(field_violations=kept)
        st.details.append(_pack(bad))
    st.details.append(info)
    return st


def status_for(exc: BaseException, reference: str = "") -> status_pb2.Status:
    """The status a client sees for `exc`."""
    if isinstance(exc, InvalidInput):
        n = len(exc.violations)
        return status_of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request has {n} problem{'s' if n != 1 else ''}: {exc}",
            exc.reason,
            exc.violations,
        )
    if isinstance(exc, RequestConflict):
        return status_of(
            grpc.StatusCode.INVALID_ARGUMENT,
            str(exc),
            exc.reason,
            [
                FieldViolation(
                    "request_id", "already used for a different request; use a new request_id"
                )
            ],
            {exc.collection.removesuffix("s"): exc.name},
        )
    if isinstance(exc, StoreUnavailable):
        return status_of(grpc.StatusCode.UNAVAILABLE, str(exc), exc.reason)
    if isinstance(exc, LifecycleRefused):  # a credit record's state does not allow the change
        return status_of(
            grpc.StatusCode.FAILED_PRECONDITION, exc.message, exc.reason, exc.violations
        )
    if isinstance(exc, RecordChanged):  # lost a race with another change of the record
        return status_of(
            grpc.StatusCode.ABORTED,
            str(exc),
            exc.reason,
            [FieldViolation("etag", "the record changed meanwhile; read it again")],
        )
    if isinstance(exc, InvalidRecord):
        return status_of(grpc.StatusCode.INVALID_ARGUMENT, str(exc), exc.reason)
    if isinstance(
        exc, ScorecardNotFound
    ):  # the field at fault and the closest ids, as a BadRequest
        return status_of(
            grpc.StatusCode.NOT_FOUND,
            str(exc),
            exc.reason,
            [exc.violation],
            metadata={"scorecard": exc.scorecard_id},
        )
    if isinstance(exc, ServiceError):
        return status_of(exc.code, exc.message, exc.reason, exc.violations, exc.metadata)
    if isinstance(exc, DomainError):
        return status_of(grpc.StatusCode.INVALID_ARGUMENT, str(exc), exc.reason)
    return status_of(
        grpc.StatusCode.INTERNAL,
        f"internal error{f' (reference {reference})' if reference else ''}; it has been logged",
        "INTERNAL",
        metadata={"reference": reference} if reference else None,
    )


def violations_of(st: status_pb2.Status) -> list[FieldViolation]:
    """The field violations of a status's BadRequest (for the ItemError of a batch item)."""
    violations: list[FieldViolation] = []
    for detail in st.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return violations


def grpc_code(st: status_pb2.Status) -> grpc.StatusCode:
    return code_of(st.code)


def code_of(value: int) -> grpc.StatusCode:
    """The gRPC status code of a google.rpc.Code value (a status's, or an ItemError's)."""
    for c in grpc.StatusCode:
        if c.value[0] == value:
            return c
    return grpc.StatusCode.UNKNOWN


def to_grpc_status(st: status_pb2.Status) -> grpc.Status:
    return rpc_status.to_status(st)
