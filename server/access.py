"""The query audit and the purpose of a query (issue 9 items 4 and 5), in one place.

Every call that touches a subject leaves one access record per subject touched, committed
before the reply leaves: who (the authenticated principal and how it was proven), which
method, subject and scorecard, the purpose, how many stored evaluations the reply carried,
the request id and the outcome code. The servicer says what a call touched (`QueryAudit.call`
for unary calls, `record` / `failure` for the items of a batch or a stream); building the
records, checking purposes and committing are here. Records go through the store's group
writer: the record of an evaluation is committed in the evaluation's own transaction
(`EvaluationRecord.access`), the others by `EvaluationStore.record_access`. A call whose
record cannot be committed fails UNAVAILABLE: nothing about a subject leaves unrecorded.

Refused calls (UNAUTHENTICATED, PERMISSION_DENIED) are recorded through the security
module's `on_refusal` hook (`QueryAudit.register_refusals`).
"""

from __future__ import annotations

import asyncio
import contextvars
import unicodedata
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from sector_credit.scorecards.model import FieldViolation, InvalidInput

from . import errors, request_context
from .db import AccessRecord, EvaluationStore, StoreUnavailable
from .logs import log
from .security import Principal, current_principal
from .settings import DEFAULT_PURPOSES

# Set by the servicer in the handlers that keep their own access records: a refusal raised
# there (a scorecard outside the grant) is recorded by that call, with its subject, not again.
_in_handler: contextvars.ContextVar[bool] = contextvars.ContextVar("audited_handler", default=False)


MAX_PURPOSE_NOTE = 500  # characters
MAX_RECORDED_TEXT = 128  # a subject or scorecard id as received is cut to this in a record


def _clip(text: str | None) -> str | None:
    """A request's text as it goes into a record: bounded and storable whatever the request
    held (a NUL, which PostgreSQL refuses in text, would fail the whole group commit the
    record shares with other callers' rows: it is recorded as U+FFFD)."""
    return text[:MAX_RECORDED_TEXT].replace("\x00", "\ufffd") if text else None


def _method(name: str) -> str:
    """`/sector_credit.v1.CreditEvaluationService/Evaluate` -> `Evaluate`."""
    return name.rpartition("/")[2] or name


class InvalidPurpose(InvalidInput):
    """A read without a purpose, or with one the service does not know."""

    reason = "INVALID_PURPOSE"


class QueryAudit:
    """Builds and commits access records, and checks the purpose of reads."""

    def __init__(self, store: EvaluationStore, purposes: Sequence[str] = DEFAULT_PURPOSES):
        if not purposes:
            raise ValueError("at least one purpose code is needed")
        self.store = store
        self.purposes = tuple(purposes)
        self._refusals: set[asyncio.Task[None]] = set()

    # -- purpose ---------------------------------------------------------------------------

    def purpose_of(self, request: Any) -> tuple[str, str | None]:
        """The purpose code and note of a read; InvalidInput naming `purpose` (missing or not
        a configured code) and `purpose_note` (too long, control characters)."""
        purpose, note = request.purpose.strip(), request.purpose_note.strip()
        problems = []
        if not purpose:
            problems.append(
                FieldViolation(
                    "purpose",
                    f"required: why the evaluations are read, one of {', '.join(self.purposes)}",
                )
            )
        elif purpose not in self.purposes:
            problems.append(
                FieldViolation(
                    "purpose",
                    f"{purpose[:64]!r} is not a purpose code of this service; one of"
                    f" {', '.join(self.purposes)}",
                )
            )
        if len(note) > MAX_PURPOSE_NOTE:
            problems.append(
                FieldViolation(
                    "purpose_note", f"{len(note)} characters, more than {MAX_PURPOSE_NOTE}"
                )
            )
        elif any(unicodedata.category(c) == "Cc" for c in note):
            problems.append(FieldViolation("purpose_note", "must not hold control characters"))
        if problems:
            raise InvalidPurpose(problems)
        return purpose, note or None

    # -- records ---------------------------------------------------------------------------

    def record(
        self,
        method: str,
        *,
        code: str = "OK",
        subject_id: str | None = None,
        scorecard_id: str | None = None,
        purpose: str | None = None,
        purpose_note: str | None = None,
        returned: int = 0,
        reason: str | None = None,
        principal: Principal | None = None,
        who_known: bool = True,
    ) -> AccessRecord:
        """An access record of the call being handled: its principal and its call id, from
        the call's request context (the one the log line reads)."""
        if who_known and principal is None:
            principal = current_principal()
        ctx = request_context.current()
        return AccessRecord(
            caller=principal.name if principal else "",
            proven_by=principal.proven_by if principal else "",
            key_id=principal.key_id if principal else None,
            method=method,
            code=code,
            subject_id=_clip(subject_id),
            scorecard_id=_clip(scorecard_id),
            purpose=_clip(purpose),
            purpose_note=_clip(purpose_note),
            evaluations_returned=returned,
            request_id=_clip(ctx.call_id if ctx is not None else None),
            reason=reason,
        )

    def failure(self, method: str, exc: BaseException, **fields: Any) -> AccessRecord:
        """The record of a call (or item) that failed with `exc`: its status code and reason."""
        st = errors.status_for(exc)
        return self.record(
            method,
            code=errors.grpc_code(st).name,
            reason=str(getattr(exc, "reason", "INTERNAL")),
            **fields,
        )

    async def commit(self, *records: AccessRecord) -> None:
        """Commit records before the reply leaves; StoreUnavailable fails the call."""
        await self.store.record_access(*records)

    def call(
        self, method: str, *, subject_id: str | None = None, scorecard_id: str | None = None
    ) -> AuditedCall:
        """`async with audit.call("GetEvaluation") as call:` around a unary call: its records
        are committed when the block ends, a failure's record when it raises."""
        return AuditedCall(self, method, subject_id, scorecard_id)

    # -- refusals --------------------------------------------------------------------------

    @staticmethod
    def in_handler() -> None:
        """The handler now running records its own refusals (see `_in_handler`)."""
        _in_handler.set(True)

    def register_refusals(self, hooks: list[Any]) -> None:
        """Record every call the security module refuses (its `on_refusal` list)."""
        hooks.append(self.on_refusal)

    def on_refusal(
        self, method: str, principal: Principal | None, code: Any, reason: str
    ) -> asyncio.Task[None] | None:
        """The security module's hook: a refused call's record, committed in a task (the
        task is returned for a caller that can wait for it). A refusal inside a handler that
        keeps its own records (a scorecard outside the grant) is left to that handler."""
        if _in_handler.get():
            return None
        name = getattr(code, "name", None) or str(code)
        record = self.record(
            _method(method),
            code=name,
            reason=reason or None,
            principal=principal,
            who_known=principal is not None,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("refusal not recorded: no event loop", method=record.method, code=name)
            return None
        task = loop.create_task(self._commit_refusal(record))
        self._refusals.add(task)
        task.add_done_callback(self._refusals.discard)
        return task

    async def _commit_refusal(self, record: AccessRecord) -> None:
        try:
            await self.commit(record)
        except StoreUnavailable as exc:
            log.error(
                "refusal not recorded", method=record.method, code=record.code, error=str(exc)
            )


class AuditedCall:
    """The access records of one unary call (see `QueryAudit.call`)."""

    def __init__(
        self, audit: QueryAudit, method: str, subject_id: str | None, scorecard_id: str | None
    ):
        self.audit = audit
        self.method = method
        self.subject_id = subject_id
        self.scorecard_id = scorecard_id
        self.purpose: str | None = None
        self.purpose_note: str | None = None
        self._touched: list[AccessRecord] = []
        self._linked = False

    def check_purpose(self, request: Any) -> None:
        self.purpose, self.purpose_note = self.audit.purpose_of(request)
        ctx = request_context.current()
        if ctx is not None:
            ctx.purpose = self.purpose

    def touched(self, subject_id: str | None, scorecard_id: str | None, returned: int) -> None:
        """The call read `returned` evaluations of one subject (one record per subject)."""
        self._touched.append(
            self._record(subject_id=subject_id, scorecard_id=scorecard_id, returned=returned)
        )

    def add(self, record: AccessRecord) -> None:
        """A record built elsewhere (`QueryAudit.record`), committed when the block ends."""
        self._touched.append(record)

    def linked(self) -> None:
        """The call stores an evaluation that carries its access record
        (EvaluationRecord.access): nothing is committed again when the block ends."""
        self._linked = True

    def _record(self, **fields: Any) -> AccessRecord:
        return self.audit.record(
            self.method, purpose=self.purpose, purpose_note=self.purpose_note, **fields
        )

    async def __aenter__(self) -> AuditedCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            if self._touched:
                await self.audit.commit(*self._touched)
            elif not self._linked:  # touched nothing it could name: still on record
                await self.audit.commit(
                    self._record(subject_id=self.subject_id, scorecard_id=self.scorecard_id)
                )
            return
        if not isinstance(exc, Exception):  # cancelled: the client went away
            return
        if self._linked and not isinstance(exc, StoreUnavailable):
            return  # the store recorded the row's own refusal with the evaluation's record
        await self.audit.commit(
            self.audit.failure(
                self.method,
                exc,
                subject_id=self.subject_id,
                scorecard_id=self.scorecard_id,
                purpose=self.purpose,
                purpose_note=self.purpose_note,
            )
        )
