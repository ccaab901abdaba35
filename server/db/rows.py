"""What goes into the audit store and what comes out, and their rows.

The records the servicer hands in (`EvaluationRecord`, `AccessRecord`), the evaluations and
access records it gets back (`StoredEvaluation`, `UnreadableEvaluation`, `StoredAccess`),
and the conversions between them and the rows of the tables `evaluations` and
`access_records` (the documents in those rows are rowjson.py's).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sector_credit.scorecards.codec import input_from_dict
from sector_credit.scorecards.model import EvaluationInput, EvaluationResult, Scorecard

from .errors import StoreError, StoreUnavailable
from .failures import describe
from .ids import new_evaluation_id
from .models import AccessRow, EvaluationRow, ScorecardPartsRow
from .rowjson import ResultParts, input_json, result_from_document, result_json_compact

log = logging.getLogger(__name__)

EVALUATIONS = cast(sa.Table, EvaluationRow.__table__)
ACCESS = cast(sa.Table, AccessRow.__table__)
PARTS = cast(sa.Table, ScorecardPartsRow.__table__)
_DIGEST = re.compile(r"[0-9a-f]{64}")

# --------------------------------------------------------------------------------------------
# What goes in and what comes out


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One call that touched a subject, or was refused, for the query audit."""

    caller: str  # the authenticated identity; "" when a refused call proved none
    proven_by: str  # mtls | api_key | jwt | local; "" when none was
    method: str  # the RPC's name, e.g. "GetEvaluation"
    code: str  # the outcome: the gRPC status code name
    subject_id: str | None = None
    scorecard_id: str | None = None
    purpose: str | None = None
    purpose_note: str | None = None
    evaluations_returned: int = 0
    request_id: str | None = None
    reason: str | None = None  # the ErrorInfo reason of a failure
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAccess:
    """An access record as stored: its id and time, and the record."""

    id: str
    created_at: dt.datetime  # aware, UTC
    record: AccessRecord

    @property
    def name(self) -> str:
        return f"accessRecords/{self.id}"


AccessPage = tuple[list[StoredAccess], str]
"""Access records newest first, and the next page token ("" on the last page)."""


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One evaluation for the store to keep, as the servicer hands it in."""

    input: EvaluationInput  # as received (raw indicator values)
    result: EvaluationResult
    caller: str | None = None  # who asked, as authenticated
    request_id: str | None = None  # the client's idempotency key; "" counts as none
    request_digest: str | None = None  # sha256 hex of the request; None: codec.request_digest
    # the call's access record, committed with the evaluation; when the row is refused
    # (RequestConflict, InvalidRecord) it is stored with that outcome and 0 returned
    access: AccessRecord | None = None
    # the card whose engine made `result` (the servicer's own evaluation): a result in format 2
    # is then not checked against the card's parts, which describe it by construction
    # (rowjson.result_json_compact); None (a result made otherwise): checked
    made_by: Scorecard | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """An evaluation as stored: its id and time, and what went in and came out."""

    id: str  # canonical UUID text, as in the resource name
    created_at: dt.datetime  # aware, UTC
    input: EvaluationInput
    result: EvaluationResult
    request_id: str | None
    request_digest: str
    caller: str | None
    replayed: bool = False  # True: stored earlier under the same request id, returned again

    @property
    def name(self) -> str:
        return f"evaluations/{self.id}"


@dataclass(frozen=True, slots=True)
class UnreadableEvaluation:
    """A stored row whose documents cannot be read back (written by another version of the
    service, or damaged): what its own columns say, and why the rest cannot be shown. Reads
    return it in place of the evaluation, so one such row never hides the rest of a page."""

    id: str
    created_at: dt.datetime
    scorecard_id: str
    scorecard_version: str
    scorecard_digest: str
    subject_kind: str
    subject_id: str
    as_of: dt.date | None
    grade: str
    score: str | None
    request_id: str | None
    caller: str | None
    why: str

    @property
    def name(self) -> str:
        return f"evaluations/{self.id}"


ReadEvaluation = StoredEvaluation | UnreadableEvaluation


SaveOutcome = StoredEvaluation | StoreError
"""Per record of `save_many`: the stored evaluation, or `RequestConflict` / `InvalidRecord`."""

Page = tuple[list[ReadEvaluation], str]
"""Evaluations newest first, and the next page token ("" on the last page)."""


RowOutcome = StoredEvaluation | StoreError | None
"""From the writer, per row: None = inserted; else an existing evaluation or an error."""

PartsFor = Callable[[str], ResultParts | None]
"""The result parts of a scorecard digest (None: not known), for reading format 2."""


def evaluation_row(
    record: EvaluationRecord,
    parts: dict[str, ResultParts] | None = None,
) -> tuple[dict[str, Any], StoredEvaluation]:
    """The row to insert and the evaluation as it will be once stored. With the parts of the
    result's scorecard the result document is in format 2, else in format 1 (rowjson.py)."""
    evaluation_id, created = new_evaluation_id()
    # Both documents are encoded here, once (rowjson.py): the canonical input text gives the
    # digest too.
    input_text, input_digest = input_json(record.input)
    digest = record.request_digest or input_digest
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"a request digest is 64 lower-case hex digits, not {digest!r}")
    result = record.result
    request_id = record.request_id or None
    row = {
        "id": evaluation_id,
        "request_id": request_id,
        "request_digest": digest,
        "scorecard_id": result.scorecard_id,
        "scorecard_version": result.version,
        "scorecard_digest": result.digest,
        "subject_kind": result.subject.kind.value,
        "subject_id": result.subject.id,
        "as_of": result.as_of,
        "grade": result.grade.code,
        "score": None if result.score is None else str(result.score),
        "input": input_text,
        "result": result_json_compact(
            result, None if parts is None else parts.get(result.digest), record.made_by
        ),
        "caller": record.caller,
        "created_at": created,
    }
    stored = StoredEvaluation(
        id=str(evaluation_id),
        created_at=created,
        input=record.input,
        result=result,
        request_id=request_id,
        request_digest=digest,
        caller=record.caller,
    )
    return row, stored


def access_row(record: AccessRecord) -> dict[str, Any]:
    """The row of an access record, with its id and time."""
    access_id, created = new_evaluation_id()
    return {
        "id": access_id,
        "created_at": created,
        "caller": record.caller,
        "proven_by": record.proven_by,
        "key_id": record.key_id,
        "method": record.method,
        "subject_id": record.subject_id or None,
        "scorecard_id": record.scorecard_id or None,
        "purpose": record.purpose or None,
        "purpose_note": record.purpose_note or None,
        "evaluations_returned": record.evaluations_returned,
        "request_id": record.request_id or None,
        "code": record.code,
        "reason": record.reason or None,
    }


def stored_access(row: sa.Row[Any]) -> StoredAccess:
    """An access record as read back."""
    return StoredAccess(
        id=str(row.id),
        created_at=row.created_at,
        record=AccessRecord(
            caller=row.caller,
            proven_by=row.proven_by,
            key_id=row.key_id,
            method=row.method,
            subject_id=row.subject_id,
            scorecard_id=row.scorecard_id,
            purpose=row.purpose,
            purpose_note=row.purpose_note,
            evaluations_returned=row.evaluations_returned,
            request_id=row.request_id,
            code=row.code,
            reason=row.reason,
        ),
    )


def default_access_code(error: StoreError) -> str:
    """The store's row-level refusals are the client's errors (see errors.py)."""
    return "UNAVAILABLE" if isinstance(error, StoreUnavailable) else "INVALID_ARGUMENT"


def stored(
    row: EvaluationRow | sa.Row[Any], *, replayed: bool = False, parts_for: PartsFor | None = None
) -> StoredEvaluation:
    """The evaluation of a row; raises when its documents cannot be read (see `read_row`)."""
    return StoredEvaluation(
        id=str(row.id),
        created_at=row.created_at,
        input=input_from_dict(row.input),
        result=result_from_document(row.result, parts_for),
        request_id=row.request_id,
        request_digest=row.request_digest,
        caller=row.caller,
        replayed=replayed,
    )


def read_row(row: sa.Row[Any], parts_for: PartsFor) -> ReadEvaluation:
    """The stored evaluation of a row, or what its columns say when its documents cannot be
    read (logged with the reason, for the operator; `check-store` lists them all)."""
    try:
        return stored(row, parts_for=parts_for)
    except Exception as exc:  # any failure to read one row's documents is that row's alone
        log.warning("evaluation %s cannot be read back: %s", row.id, describe(exc))
        return unreadable_row(
            row, "its stored documents cannot be read by this version of the service"
        )


def unreadable_row(row: sa.Row[Any], why: str) -> UnreadableEvaluation:
    """What a row's own columns say (they are plain values, always readable)."""
    return UnreadableEvaluation(
        id=str(row.id),
        created_at=row.created_at,
        scorecard_id=row.scorecard_id,
        scorecard_version=row.scorecard_version,
        scorecard_digest=row.scorecard_digest,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        as_of=row.as_of,
        grade=row.grade,
        score=row.score,
        request_id=row.request_id,
        caller=row.caller,
        why=why,
    )
