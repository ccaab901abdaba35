"""The client's exceptions: the server's status, its ErrorInfo reason and every field violation.

The service follows AIP-193: each error status carries a `google.rpc.ErrorInfo` with a stable
`reason` (e.g. `INVALID_INDICATORS`, `SCORECARD_NOT_FOUND`) and, for bad input, a
`google.rpc.BadRequest` with one field violation per problem. `error_from_rpc` reads them
from a failed call (`grpc_status.rpc_status.from_call`); `error_from_item` from the per-item
error of a batch or stream. Both pick the subclass by status code, so callers can catch
`InvalidRequestError` or `UnavailableError` without looking at codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from sector_credit.v1 import common_pb2

from .resources import FieldViolation


class CreditError(Exception):
    """A call failed. `code` is the gRPC status, `reason` the server's stable ErrorInfo
    reason ("" when the status carried none, e.g. a connection failure), `violations` one
    entry per offending field, `metadata` the ErrorInfo metadata."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        violations: Iterable[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
        domain: str = "",
    ):
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = tuple(violations)
        self.metadata = dict(metadata or {})
        self.domain = domain
        super().__init__(message)

    def __str__(self) -> str:
        head = f"{self.code.name}: {self.message}" if self.message else self.code.name
        if self.reason:
            head += f" [{self.reason}]"
        return head

    @property
    def headline(self) -> str:
        """The error in one line; when there are field violations, their count instead of the
        message (which lists them again): print them below it, one a line."""
        if not self.violations:
            return str(self)
        n = len(self.violations)
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{self.code.name}{reason}: {n} problem{'s' if n != 1 else ''}"

    def describe(self) -> list[str]:
        """The headline, then one line per field violation (what the CLI prints)."""
        return [self.headline, *(f"  {v.field}: {v.description}" for v in self.violations)]


class InvalidRequestError(CreditError):
    """INVALID_ARGUMENT: the input was rejected; `violations` names every problem."""


class NotFoundError(CreditError):
    """NOT_FOUND: an unknown scorecard, version or evaluation."""


class ResourceExhaustedError(CreditError):
    """RESOURCE_EXHAUSTED: a batch or message over the server's limit, or too many calls."""


class UnavailableError(CreditError):
    """UNAVAILABLE (after the retries the channel's service config allows) or a deadline
    passed: the server could not be reached, is draining, or its database is down."""


class UnauthenticatedError(CreditError):
    """UNAUTHENTICATED: no credentials, or ones the server does not accept (a revoked or
    expired API key, a JWT of another issuer or audience, an unmapped certificate)."""


class PermissionDeniedError(CreditError):
    """PERMISSION_DENIED: the caller is known but its grant does not cover the call; `reason`
    names the missing permission (e.g. EVALUATOR_PERMISSION_REQUIRED)."""


_CLASSES: dict[grpc.StatusCode, type[CreditError]] = {
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}
_CODES = {c.value[0]: c for c in grpc.StatusCode}


def status_code(number: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Code number (UNKNOWN for an unknown one)."""
    return _CODES.get(number, grpc.StatusCode.UNKNOWN)


def _make(
    code: grpc.StatusCode,
    message: str,
    reason: str = "",
    violations: Iterable[FieldViolation] = (),
    metadata: Mapping[str, str] | None = None,
    domain: str = "",
) -> CreditError:
    return _CLASSES.get(code, CreditError)(code, message, reason, violations, metadata, domain)


def error_from_status(status: status_pb2.Status) -> CreditError:
    """The exception for a `google.rpc.Status` with its packed details."""
    reason, domain, metadata = "", "", {}
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return _make(status_code(status.code), status.message, reason, violations, metadata, domain)


def error_from_rpc(error: grpc.RpcError) -> CreditError:
    """The exception for a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`)."""
    call = cast(grpc.Call, error)  # every RpcError a channel raises is also a Call
    try:
        status = rpc_status.from_call(call)
    except (ValueError, AttributeError):  # inconsistent or unreadable details: fall back
        status = None
    if status is not None:
        return error_from_status(status)
    code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    details = call.details() if hasattr(call, "details") else str(error)
    return _make(code or grpc.StatusCode.UNKNOWN, details or "")


def error_from_item(item: common_pb2.ItemError, prefix: str = "") -> CreditError:
    """The exception for the error of one batch or stream item. `prefix` (`requests[3].`,
    `request.`) is taken off the field paths, so they name the item's own fields."""
    return _make(
        status_code(item.code),
        item.message,
        item.reason,
        [
            FieldViolation(v.field.removeprefix(prefix), v.description)
            for v in item.field_violations
        ],
    )


def as_evaluation_error(exc: CreditError) -> CreditError:
    """A GetScorecard failure as the evaluation that needed the definition meets it: an
    unknown scorecard is the `scorecard` field at fault (GetScorecard calls it `name`)."""
    if exc.reason != "SCORECARD_NOT_FOUND":
        return exc
    violations = [
        FieldViolation("scorecard", v.description) if v.field == "name" else v
        for v in exc.violations
    ]
    return type(exc)(exc.code, exc.message, exc.reason, violations, exc.metadata, exc.domain)
