"""The AccessLogService servicer: the query audit read back (for the auditor) and the
subject's right to know who looked. Filters are checked here, paging is the store's."""

from __future__ import annotations

import datetime as dt
import unicodedata
import zoneinfo
from typing import Any

from google.protobuf import timestamp_pb2
from sector_credit.scorecards.model import FieldViolation, InvalidInput
from sector_credit.v1 import access_log_service_pb2 as pb
from sector_credit.v1 import access_log_service_pb2_grpc as pb_grpc
from sector_credit.v1 import common_pb2

from .db import EvaluationStore, StoredAccess
from .grpc_types import Context

MAX_SUBJECT_ID = 64
MAX_CALLER = 256
_EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


class InvalidFilter(InvalidInput):
    """A filter of an access listing the service cannot use."""

    reason = "INVALID_FILTER"


class AccessLogServicer(pb_grpc.AccessLogServiceServicer):
    def __init__(self, store: EvaluationStore, tz: zoneinfo.ZoneInfo):
        self.store = store
        self.tz = tz

    async def ListAccessRecords(
        self, request: pb.ListAccessRecordsRequest, context: Context
    ) -> pb.ListAccessRecordsResponse:
        problems: list[FieldViolation] = []
        subject_id = _text(
            request.subject_id.strip().upper(), "subject_id", MAX_SUBJECT_ID, problems
        )
        caller = _text(request.caller.strip(), "caller", MAX_CALLER, problems)
        start = _time(request, "start_time", problems)
        end = _time(request, "end_time", problems)
        if start is not None and end is not None and end <= start:
            problems.append(FieldViolation("end_time", "must be after start_time"))
        if problems:
            raise InvalidFilter(problems)
        rows, token = await self.store.list_access(
            subject_id=subject_id,
            caller=caller,
            start_time=start,
            end_time=end,
            page_size=request.page_size,
            page_token=request.page_token or None,
        )
        return pb.ListAccessRecordsResponse(
            access_records=[_record_to_proto(r) for r in rows], next_page_token=token
        )

    async def ListSubjectAccesses(
        self, request: pb.ListSubjectAccessesRequest, context: Context
    ) -> pb.ListSubjectAccessesResponse:
        problems: list[FieldViolation] = []
        subject_id = _text(
            request.subject_id.strip().upper(), "subject_id", MAX_SUBJECT_ID, problems
        )
        if subject_id is None and not problems:
            problems.append(
                FieldViolation("subject_id", "required: the subject whose accesses to list")
            )
        if problems:
            raise InvalidFilter(problems)
        # the calls that were answered (an evaluation stored or checked, evaluations read);
        # a refused or failed call showed the caller nothing of the subject
        rows, token = await self.store.list_access(
            subject_id=subject_id,
            code="OK",
            page_size=request.page_size,
            page_token=request.page_token or None,
        )
        accesses = []
        for r in rows:
            day = r.created_at.astimezone(self.tz).date()
            accesses.append(
                pb.SubjectAccess(
                    caller=r.record.caller,
                    purpose=r.record.purpose or "",
                    date=common_pb2.Date(year=day.year, month=day.month, day=day.day),
                )
            )
        return pb.ListSubjectAccessesResponse(accesses=accesses, next_page_token=token)


def _text(value: str, field: str, limit: int, problems: list[FieldViolation]) -> str | None:
    if len(value) > limit:
        problems.append(FieldViolation(field, f"{len(value)} characters, more than {limit}"))
    elif any(unicodedata.category(c) == "Cc" for c in value):
        problems.append(FieldViolation(field, "must not hold control characters"))
    return value or None


def _time(request: Any, field: str, problems: list[FieldViolation]) -> dt.datetime | None:
    if not request.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(request, field)
    try:
        if not 0 <= ts.nanos <= 999_999_999:
            raise ValueError
        when = ts.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        problems.append(
            FieldViolation(
                field, "not a valid time (0001-01-01 to 9999-12-31, nanos 0 to 999999999)"
            )
        )
        return None
    if not _EARLIEST <= when <= _LATEST:
        problems.append(FieldViolation(field, "not a valid time (0001-01-01 to 9999-12-31)"))
        return None
    return when


def _record_to_proto(stored: StoredAccess) -> pb.AccessRecord:
    r = stored.record
    message = pb.AccessRecord(
        name=stored.name,
        caller=r.caller,
        proven_by=r.proven_by,
        key_id=r.key_id or "",
        method=r.method,
        subject_id=r.subject_id or "",
        scorecard=r.scorecard_id or "",
        purpose=r.purpose or "",
        purpose_note=r.purpose_note or "",
        evaluations_returned=r.evaluations_returned,
        request_id=r.request_id or "",
        code=r.code,
        reason=r.reason or "",
    )
    message.create_time.FromDatetime(stored.created_at)
    return message
