"""The RecordService servicer (issue 10): proto in, the lifecycle of scorecards/records.py,
the records store, proto out (the wire side is records_convert.py). Every call that touches
a subject leaves an access record (access.py); reads need a purpose, and a reader grant
limited to some scorecards reads only the kinds of records those scorecards derive from.

Idempotency (AIP-155): CreateRecord and each state change take a `request_id`. A repeated
call with the same key and the same request returns what it did then and stores nothing
(no second record, no second event); the same key with another request is REQUEST_ID_REUSED
(INVALID_ARGUMENT), as Evaluate's. A create's key is unique per caller, a change's per
record (the caller is part of what the key is compared with)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc
from sector_credit.scorecards import limits
from sector_credit.scorecards import records as rec
from sector_credit.scorecards.model import FieldViolation, InvalidInput, SubjectKind
from sector_credit.scorecards.subject_ids import normalize, resident_id_problem
from sector_credit.v1 import record_pb2
from sector_credit.v1 import records_service_pb2 as pb
from sector_credit.v1 import records_service_pb2_grpc as pb_grpc

from . import convert, errors, request_context, security
from .access import QueryAudit
from .db.errors import RequestConflict
from .db.records import RecordStore, RequestKey
from .grpc_types import Context
from .records_convert import (
    MAX_NAME,
    disclosure_to_proto,
    kind_to_proto,
    record_from_proto,
    record_id_from_name,
    view_to_proto,
)

_UPHELD = {pb.OBJECTION_OUTCOME_UPHELD: True, pb.OBJECTION_OUTCOME_REJECTED: False}

# The event each state change makes: (request, the record as of the action date, the
# action's date, today and actor) -> Event; the rules are scorecards/records.py's.
_CHANGES: dict[str, Callable[[Any, rec.View, dict[str, Any]], rec.Event]] = {
    "FileObjection": lambda r, view, at: rec.apply_objection(
        view, **at, reason=r.reason, filed_by=r.filed_by, attachments=r.attachments
    ),
    "ForwardObjection": lambda r, view, at: rec.apply_forward(
        view, **at, forwarded_to=r.forwarded_to, reason=r.reason
    ),
    "DecideObjection": lambda r, view, at: rec.apply_decision(
        view, **at, upheld=_UPHELD.get(r.outcome), reason=r.reason, attachments=r.attachments
    ),
    "RepairRecord": lambda r, view, at: rec.apply_repair(
        view, **at, reason=r.reason, proof=r.proof
    ),
    "RevokeRecord": lambda r, view, at: rec.apply_revoke(
        view, **at, reason=r.reason, attachments=r.attachments
    ),
}


def kinds_read_by(scorecards: Any, ids: frozenset[str]) -> frozenset[str]:
    """The kinds of records the scorecards `ids` derive indicators from (`from_records`),
    over every loaded version of each: what a reader limited to them may read."""
    return frozenset(
        kind
        for sid in ids
        for compiled in scorecards.versions(sid)
        for indicator in compiled.card.indicators
        if indicator.from_records is not None
        for kind in indicator.from_records.kinds
    )


class RecordServicer(pb_grpc.RecordServiceServicer):
    def __init__(
        self,
        store: RecordStore,
        kinds: rec.RecordKindRegistry,
        audit: QueryAudit,
        today: Callable[[], dt.date],
        id_schemes: dict[str, Any] | None = None,
        scorecards: Any = None,
    ):
        self.store = store
        self.kinds = kinds
        self.audit = audit
        self.today = today
        self.id_schemes = id_schemes or {}
        self.scorecards = scorecards  # the ScorecardRegistry: the kinds a reader grant covers

    def _view(self, record: rec.Record, as_of: dt.date | None = None) -> rec.View:
        return rec.replay(record, self.kinds.get(record.kind), as_of or self.today())

    def _readable_kinds(self) -> frozenset[str] | None:
        """The kinds of records this caller may read (None: every kind): those the
        scorecards of its reader grant derive from, when the grant names scorecards."""
        limited = security.reader_scorecards()
        if limited is None:
            return None
        return kinds_read_by(self.scorecards, limited) if self.scorecards is not None else limited

    async def CreateRecord(
        self, request: pb.CreateRecordRequest, context: Context
    ) -> pb.CreateRecordResponse:
        async with self.audit.call("CreateRecord", subject_id=request.record.subject.id) as call:
            convert.check_texts(("request_id", request.request_id, limits.MAX_REQUEST_ID))
            today = self.today()
            record = rec.check_new_record(
                record_from_proto(request.record), self.kinds, today, self.id_schemes
            )
            call.subject_id = record.subject_id
            reason, refs = _texts(request.reason, request.attachments)
            event = rec.Event(
                1, rec.EventType.CREATED, record.decision_date, _actor(), reason, refs
            )
            key = _key(request.request_id, dataclasses.asdict(record), reason, refs)
            stored, _ = await self.store.create(record, event, key)
            self._touched(call, stored)
        return pb.CreateRecordResponse(record=view_to_proto(self._view(stored)))

    async def GetRecord(
        self, request: pb.GetRecordRequest, context: Context
    ) -> pb.GetRecordResponse:
        async with self.audit.call("GetRecord") as call:
            call.check_purpose(request)
            as_of = convert.request_date(request, "as_of")
            record = await self._get(request.name)
            call.subject_id = record.subject_id  # a refusal's record names it
            readable = self._readable_kinds()
            if readable is not None and record.kind not in readable:
                raise security.refuse_record_kind(record.kind, readable)
            self._touched(call, record)
        return pb.GetRecordResponse(record=view_to_proto(self._view(record, as_of)))

    async def ListRecords(
        self, request: pb.ListRecordsRequest, context: Context
    ) -> pb.ListRecordsResponse:
        convert.check_texts(
            ("subject_id", request.subject_id, MAX_NAME), ("kind", request.kind, MAX_NAME)
        )
        subject_id = normalize(request.subject_id) or None
        async with self.audit.call("ListRecords", subject_id=subject_id) as call:
            call.check_purpose(request)
            as_of = convert.request_date(request, "as_of") or self.today()
            kind = request.kind.strip() or None
            readable = self._readable_kinds()
            if readable is not None and kind is not None and kind not in readable:
                raise security.refuse_record_kind(kind, readable)
            rows, token = await self.store.list(
                subject_id=subject_id,
                kind=kind,
                under_objection=request.overdue_only,
                page_size=request.page_size,
                page_token=request.page_token or None,
                kinds=readable,
            )
            views = [self._view(r, as_of) for r in rows]
            if request.overdue_only:  # a page may then hold fewer than page_size
                views = [v for v in views if v.objection is not None and v.objection.overdue(as_of)]
            subjects: dict[str, int] = {}
            for v in views:
                subjects[v.record.subject_id] = subjects.get(v.record.subject_id, 0) + 1
            for subject, n in subjects.items():
                call.touched(subject, None, n)
        return pb.ListRecordsResponse(
            records=[view_to_proto(v) for v in views], next_page_token=token
        )

    async def ListRecordKinds(
        self, request: pb.ListRecordKindsRequest, context: Context
    ) -> pb.ListRecordKindsResponse:
        return pb.ListRecordKindsResponse(kinds=[kind_to_proto(k) for k in self.kinds.all()])

    # the state changes: each one event, made by _CHANGES[method], appended by _change

    async def FileObjection(
        self, request: pb.FileObjectionRequest, context: Context
    ) -> pb.FileObjectionResponse:
        return pb.FileObjectionResponse(record=await self._change("FileObjection", request))

    async def ForwardObjection(
        self, request: pb.ForwardObjectionRequest, context: Context
    ) -> pb.ForwardObjectionResponse:
        return pb.ForwardObjectionResponse(record=await self._change("ForwardObjection", request))

    async def DecideObjection(
        self, request: pb.DecideObjectionRequest, context: Context
    ) -> pb.DecideObjectionResponse:
        return pb.DecideObjectionResponse(record=await self._change("DecideObjection", request))

    async def RepairRecord(
        self, request: pb.RepairRecordRequest, context: Context
    ) -> pb.RepairRecordResponse:
        return pb.RepairRecordResponse(record=await self._change("RepairRecord", request))

    async def RevokeRecord(
        self, request: pb.RevokeRecordRequest, context: Context
    ) -> pb.RevokeRecordResponse:
        return pb.RevokeRecordResponse(record=await self._change("RevokeRecord", request))

    async def GetDisclosure(
        self, request: pb.GetDisclosureRequest, context: Context
    ) -> pb.GetDisclosureResponse:
        convert.check_texts(("subject_id", request.subject_id, MAX_NAME))
        subject_id = normalize(request.subject_id)
        if not subject_id:
            raise InvalidInput([FieldViolation("subject_id", "required: the subject to look up")])
        async with self.audit.call("GetDisclosure", subject_id=subject_id) as call:
            today = self.today()
            views = [
                self._view(r, today)
                for r in await self.store.touching(subject_id)
                if r.subject_id == subject_id
            ]
            shown = [v for v in views if v.public]
            call.touched(subject_id, None, len(shown))
        person = any(v.record.subject_kind is SubjectKind.PERSON for v in views) or _looks_personal(
            subject_id
        )
        return disclosure_to_proto(subject_id, person, today, shown)  # type: ignore[no-any-return]

    # -- the shared path -------------------------------------------------------------------

    async def _get(self, name: str) -> rec.Record:
        record = await self.store.get(record_id_from_name(name))
        if record is None:
            raise errors.NotFound(
                f"no record {name[:80]}",
                metadata={"name": name[:80]},
                violations=[FieldViolation("name", "no such record")],
            )
        return record

    async def _change(self, method: str, request: Any) -> record_pb2.Record:
        """Read, check the change on the record as of its action date, append its event
        against the version read (RecordChanged: ABORTED when another change won). A request
        id already on one of the record's events: that change again, nothing appended."""
        async with self.audit.call(method) as call:
            convert.check_texts(("request_id", request.request_id, limits.MAX_REQUEST_ID))
            day = convert.request_date(request, "action_date") or self.today()
            record = await self._get(request.name)
            call.subject_id = record.subject_id
            bare = type(request)()
            bare.CopyFrom(request)
            bare.etag = bare.request_id = ""  # a retry may carry the etag it read first
            key = _key(request.request_id, method, _actor(), bare.SerializeToString(True).hex())
            done = None if key is None else await self.store.prior_change(record.id, key.request_id)
            if key is not None and done is not None:
                if done != key.digest:
                    raise RequestConflict(key.request_id, record.id, "records")
                stored = record
            else:
                if request.etag and request.etag != str(record.version):
                    raise _aborted(record, request.etag)
                view = self._view(record, day)
                event = _CHANGES[method](
                    request, view, {"action_date": day, "today": self.today(), "actor": _actor()}
                )
                after = rec.replay(replace(record, events=(*record.events, event)), view.kind, day)
                stored = await self.store.append(record, event, after.state.value, key)
            self._touched(call, stored)
        return view_to_proto(self._view(stored, max(day, self.today())))

    @staticmethod
    def _touched(call: Any, record: rec.Record) -> None:
        """One access record per subject touched: the record's, and each linked person's."""
        call.touched(record.subject_id, None, 1)
        for pid in sorted({p.id for p in record.linked} - {record.subject_id}):
            call.touched(pid, None, 1)


class _Aborted(errors.ServiceError):
    code = grpc.StatusCode.ABORTED
    reason = "RECORD_CHANGED"


def _aborted(record: rec.Record, etag: str) -> _Aborted:
    return _Aborted(
        f"{record.name} is at etag {record.version}, not {etag[:20]}: it changed since it"
        " was read; read it again",
        violations=[FieldViolation("etag", "stale")],
    )


def _key(request_id: str, *asked: Any) -> RequestKey | None:
    """The call's request key: its id and the digest of what it asked (None: no id). The id
    joins the call's log line, as an evaluation's does."""
    if not request_id:
        return None
    ctx = request_context.current()
    if ctx is not None:
        ctx.requested(request_id)
    text = json.dumps(asked, ensure_ascii=False, sort_keys=True, default=str)
    return RequestKey(request_id, hashlib.sha256(text.encode()).hexdigest())


def _looks_personal(subject_id: str) -> bool:
    """A resident id (GB 11643) is masked even when no record says whose it is."""
    return resident_id_problem(subject_id) is None


def _actor() -> str:
    principal = security.current_principal()
    return principal.name if principal is not None else "anonymous"


def _texts(reason: str, attachments: Any) -> tuple[str, tuple[str, ...]]:
    problems: list[FieldViolation] = []
    text = rec.check_text(reason, "reason", problems, required=False)
    refs = tuple(
        rec.check_text(a, f"attachments[{i}]", problems) for i, a in enumerate(attachments)
    )
    if len(refs) > rec.MAX_ATTACHMENTS:
        problems.append(FieldViolation("attachments", f"at most {rec.MAX_ATTACHMENTS}"))
    if problems:
        raise rec.InvalidRecordInput(problems)
    return text, refs


# -- evaluations read the records --------------------------------------------------------------


class RecordFiller:
    """Fills a scorecard's indicators derived from records (`from_records`) from the records
    store as of the evaluation's as_of, and names the records each used (the evidence kept
    with the result). A value submitted for such an indicator is refused, naming it."""

    def __init__(self, store: RecordStore, kinds: rec.RecordKindRegistry):
        self.store = store
        self.kinds = kinds
        self._derived: dict[str, tuple[Any, ...]] = {}  # by scorecard digest

    def derived(self, card: Any) -> tuple[Any, ...]:
        """The card's indicators derived from records (none for most cards: the evaluation
        path asks this first, so a card without any pays a dict lookup, not a store call)."""
        found = self._derived.get(card.digest)
        if found is None:
            found = tuple(i for i in card.indicators if i.from_records is not None)
            self._derived[card.digest] = found
        return found

    def derive_any(self, cards: Any) -> bool:
        """Whether any of these compiled scorecards derives an indicator from records."""
        return any(self.derived(c.card) for c in cards)

    async def prefetch(self, subject_ids: Any) -> dict[str, list[rec.Record]]:
        """The records of many subjects at once (a batch's), for `fill(..., records=)`."""
        return await self.store.touching_many({normalize(s) for s in subject_ids})

    async def fill(
        self,
        compiled: Any,
        inp: Any,
        as_of: dt.date,
        records: dict[str, list[rec.Record]] | None = None,
    ) -> tuple[Any, tuple[Any, ...]]:
        """The input with the derived indicators of `compiled` (a CompiledScorecard) filled.
        `records`: the subjects' records read beforehand (prefetch); a subject not in it is
        read from the store. A submitted value for a derived indicator raises InvalidInput
        naming it, with every other problem of the request: those it has with the derived
        indicators left out and filled from the records, as if it had not sent them."""
        derived = list(self.derived(compiled.card))
        if not derived:
            return inp, ()
        submitted = rec.submitted_derived(derived, inp.indicators)
        given = inp.indicators
        if submitted:
            names = {i.name for i in derived}
            given = {k: v for k, v in given.items() if k not in names}
        subject_id = normalize(inp.subject.id)
        read = records.get(subject_id) if records is not None else None
        if read is None:
            read = await self.store.touching(subject_id)
        values, used = rec.fill_from_records(
            derived, dict(given), subject_id, read, self.kinds, as_of
        )
        if submitted:
            try:
                compiled.validate(inp.subject, values, as_of)
            except InvalidInput as exc:
                submitted += exc.violations
            raise InvalidInput(submitted)
        return replace(inp, indicators=values), rec.evidence_of(used)
