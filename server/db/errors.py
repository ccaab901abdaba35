"""What the audit store raises, for the servicer to map to status codes.

- `StoreUnavailable` -> UNAVAILABLE: the database cannot be reached or refused the work;
  nothing in the failed call was acknowledged, and a retry (with the same request id) is safe.
- `RequestConflict` -> a client error: the request id was used before for a different request.
- `InvalidListRequest` -> INVALID_ARGUMENT: it is an `InvalidInput`, with one field violation
  naming `page_token` or `page_size`.
- `InvalidRecord` -> INVALID_ARGUMENT: the database refused this one row's data (for example
  a NUL character, which PostgreSQL text cannot hold); the rest of its group was stored.
- `RecordChanged` -> ABORTED: a credit record changed since the version a change was made
  from (records.py); one of two concurrent changes wins, the other gets this.
"""

from __future__ import annotations

from sector_credit.scorecards.model import DomainError, FieldViolation, InvalidInput


class StoreError(Exception):
    """Base of the audit store's errors; `reason` is a stable code for ErrorInfo."""

    reason = "STORE_ERROR"


class StoreUnavailable(StoreError):
    """`str()` is what the caller is told; `detail` (the driver's words: host, port, class)
    is for the operator's log only, never for the wire."""

    reason = "STORE_UNAVAILABLE"

    def __init__(self, message: str, detail: str = ""):
        if detail:  # in args, so that a copy made from args keeps it
            super().__init__(message, detail)
        else:
            super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class InvalidRecord(StoreError):
    reason = "INVALID_RECORD"


class RequestConflict(StoreError, DomainError):
    """The request id is already stored for a request with a different digest; `name` is
    what it made then (`evaluations/{id}`, or `records/{id}` for a credit record's call)."""

    reason = "REQUEST_ID_REUSED"

    def __init__(self, request_id: str, evaluation_id: str, collection: str = "evaluations"):
        self.request_id = request_id
        self.evaluation_id = evaluation_id
        self.collection = collection
        self.name = f"{collection}/{evaluation_id}"
        super().__init__(
            f"request_id {request_id!r} was already used for a different request"
            f" ({self.name}); use a new request id for a new request"
        )


class InvalidListRequest(StoreError, InvalidInput):
    reason = "INVALID_LIST_REQUEST"

    def __init__(self, field: str, description: str):
        self.field = field
        InvalidInput.__init__(self, [FieldViolation(field=field, description=description)])


class RecordChanged(StoreError):
    """The record changed since the version the change was made from (ABORTED)."""

    reason = "RECORD_CHANGED"

    def __init__(self, record_id: str, version: int):
        super().__init__(
            f"records/{record_id} changed since version {version} was read;"
            " read it again and retry if the change still applies"
        )
        self.record_id = record_id
        self.version = version
