"""The RecordService servicer (issue 10): proto in, the lifecycle of scorecards/records.py,
the records store, proto out. Every call that touches a subject leaves an access record
(access.py); reads need a purpose."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from sector_credit.scorecards import records as rec
from sector_credit.scorecards.model import FieldViolation, InvalidInput, SubjectKind
from sector_credit.scorecards.subject_ids import mask_id, normalize, resident_id_problem
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as pb
from sector_credit.v1 import records_service_pb2_grpc as pb_grpc

from . import convert, errors, security
from .access import QueryAudit
from .db.records import RecordStore
from .grpc_types import Context

COLLECTION = "records/"
MAX_NAME = 64

_STATE = {s: record_pb2.RecordState.Value(f"RECORD_STATE_{s.value}") for s in rec.State}
_EVENT = {
    t: record_pb2.RecordEventType.Value(f"RECORD_EVENT_TYPE_{t.value}") for t in rec.EventType
}
_OBJECTION = {
    s: record_pb2.ObjectionStatus.Value(f"OBJECTION_STATUS_{s.value}") for s in rec.ObjectionStatus
}
_SEVERITY = {s: record_pb2.Severity.Value(f"SEVERITY_{s.name}") for s in rec.Severity}
_SEVERITY_IN = {v: k for k, v in _SEVERITY.items()}
_ROLE = {r: record_pb2.LinkRole.Value(f"LINK_ROLE_{r.name}") for r in rec.LinkRole}
_ROLE_IN = {v: k for k, v in _ROLE.items()}
_SUBJECT_KIND = {
    SubjectKind.PERSON: common_pb2.SUBJECT_KIND_PERSON,
    SubjectKind.ORGANIZATION: common_pb2.SUBJECT_KIND_ORGANIZATION,
}
_SUBJECT_KIND_IN = {v: k for k, v in _SUBJECT_KIND.items()}


# -- conversion ------------------------------------------------------------------------------


def _date(target: common_pb2.Date, value: dt.date | None) -> None:
    if value is not None:
        target.CopyFrom(convert.date_to_proto(value))


def _time(target: timestamp_pb2.Timestamp, value: dt.datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value.astimezone(dt.UTC).replace(tzinfo=None))


def view_to_proto(view: rec.View) -> record_pb2.Record:
    r = view.record
    out = record_pb2.Record(
        name=r.name,
        kind=r.kind,
        authority=r.authority,
        severity=_SEVERITY[r.severity],
        state=_STATE[view.state],
        counts=view.counts,
        etag=str(r.version),
    )
    out.subject.kind = _SUBJECT_KIND[r.subject_kind]
    out.subject.id = r.subject_id
    out.basis.regulation = r.basis_regulation
    out.basis.document_number = r.basis_document
    _date(out.decision_date, r.decision_date)
    _date(out.view_date, view.as_of)
    _date(out.minimum_period_end, view.min_end)
    if view.max_end is not None:
        _date(out.maximum_period_end, view.max_end)
    if view.public_until is not None:
        _date(out.public_until, view.public_until)
    for p in r.linked:
        out.linked_persons.add(id=p.id, role=_ROLE[p.role], display_name=p.name)
    o = view.objection
    if o is not None:
        out.objection.status = _OBJECTION[o.status]
        out.objection.overdue = o.overdue(view.as_of)
        out.objection.filed_by, out.objection.forwarded_to = o.filed_by, o.forwarded_to
        out.objection.provisional = o.provisional
        _date(out.objection.filed_date, o.filed_on)
        _date(out.objection.forward_by, o.forward_by)
        _date(out.objection.forwarded_date, o.forwarded_on)
        _date(out.objection.decide_by, o.decide_by)
        _date(out.objection.decided_date, o.decided_on)
    for e in view.events:
        ev = out.events.add(
            sequence=e.sequence,
            type=_EVENT[e.type],
            actor=e.actor,
            reason=e.reason,
            attachments=list(e.attachments),
            party=e.party,
        )
        _date(ev.action_date, e.action_date)
        _time(ev.create_time, e.recorded_at)
    _time(out.create_time, r.created_at)
    return out


def kind_to_proto(kind: rec.RecordKind) -> record_pb2.RecordKind:
    out = record_pb2.RecordKind(
        name=kind.name,
        minimum_months=kind.min_months,
        maximum_months=kind.max_months,
        counts_under_objection=kind.counts_under_objection,
        subject_kinds=[_SUBJECT_KIND[k] for k in sorted(kind.subject_kinds, key=lambda k: k.value)],
        restricts_linked=[_ROLE[r] for r in sorted(kind.restricts_linked, key=lambda r: r.value)],
        restriction_months=kind.restriction_months,
    )
    out.title.zh, out.title.en = kind.title.zh, kind.title.en
    convert.fill_provenance(out.provenance, kind.provenance)
    return out


def record_from_proto(message: record_pb2.Record) -> rec.Record:
    """The record a CreateRecord asks for; InvalidInput for what has no domain value (the
    rest is checked by records.check_new_record)."""
    problems: list[FieldViolation] = []
    kind = _SUBJECT_KIND_IN.get(message.subject.kind)
    if kind is None:
        problems.append(FieldViolation("record.subject.kind", "required: PERSON or ORGANIZATION"))
    severity = _SEVERITY_IN.get(message.severity)
    if severity is None:
        problems.append(FieldViolation("record.severity", "required: MINOR, GENERAL or SERIOUS"))
    decision = None
    try:
        decision = convert.date_from_proto(message.decision_date)
    except ValueError as exc:
        problems.append(FieldViolation("record.decision_date", str(exc)))
    else:
        if decision is None:
            problems.append(FieldViolation("record.decision_date", "required"))
    linked = []
    for i, p in enumerate(message.linked_persons):
        role = _ROLE_IN.get(p.role)
        if role is None:
            problems.append(
                FieldViolation(
                    f"record.linked_persons[{i}].role",
                    "required: LEGAL_REPRESENTATIVE, PRINCIPAL or DIRECTLY_RESPONSIBLE",
                )
            )
            continue
        linked.append(rec.LinkedPerson(p.id, role, p.display_name))
    convert.check_texts(
        ("record.kind", message.kind, MAX_NAME), ("record.subject.id", message.subject.id, MAX_NAME)
    )
    if problems:
        raise rec.InvalidRecordInput(problems)
    assert kind is not None and severity is not None and decision is not None
    return rec.Record(
        id="",
        subject_kind=kind,
        subject_id=message.subject.id,
        kind=message.kind.strip(),
        authority=message.authority,
        basis_regulation=message.basis.regulation,
        basis_document=message.basis.document_number,
        decision_date=decision,
        severity=severity,
        linked=tuple(linked),
    )


def record_id_from_name(name: str, field: str = "name") -> str:
    rid = name[len(COLLECTION) :]
    if (
        not name.startswith(COLLECTION)
        or not rid
        or "/" in rid
        or len(name) > MAX_NAME + len(COLLECTION)
    ):
        raise InvalidInput(
            [FieldViolation(field, f"{name[:80]!r} is not a record name `records/{{id}}`")]
        )
    return rid


# -- the servicer ----------------------------------------------------------------------------


class RecordServicer(pb_grpc.RecordServiceServicer):
    def __init__(
        self,
        store: RecordStore,
        kinds: rec.RecordKindRegistry,
        audit: QueryAudit,
        today: Callable[[], dt.date],
        id_schemes: dict[str, Any] | None = None,
    ):
        self.store = store
        self.kinds = kinds
        self.audit = audit
        self.today = today
        self.id_schemes = id_schemes or {}

    def _view(self, record: rec.Record, as_of: dt.date | None = None) -> rec.View:
        return rec.replay(record, self.kinds.get(record.kind), as_of or self.today())

    async def CreateRecord(
        self, request: pb.CreateRecordRequest, context: Context
    ) -> pb.CreateRecordResponse:
        async with self.audit.call("CreateRecord", subject_id=request.record.subject.id) as call:
            today = self.today()
            record = rec.check_new_record(
                record_from_proto(request.record), self.kinds, today, self.id_schemes
            )
            call.subject_id = record.subject_id
            reason, refs = _texts(request.reason, request.attachments)
            event = rec.Event(
                1, rec.EventType.CREATED, record.decision_date, _actor(), reason, refs
            )
            stored = await self.store.create(record, event)
            self._touched(call, stored)
        return pb.CreateRecordResponse(record=view_to_proto(self._view(stored)))

    async def GetRecord(
        self, request: pb.GetRecordRequest, context: Context
    ) -> pb.GetRecordResponse:
        async with self.audit.call("GetRecord") as call:
            call.check_purpose(request)
            as_of = convert.request_date(request, "as_of")
            record = await self._get(request.name)
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
            rows, token = await self.store.list(
                subject_id=subject_id,
                kind=request.kind.strip() or None,
                under_objection=request.overdue_only,
                page_size=request.page_size,
                page_token=request.page_token or None,
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

    async def FileObjection(
        self, request: pb.FileObjectionRequest, context: Context
    ) -> pb.FileObjectionResponse:
        record = await self._change(
            "FileObjection",
            request,
            lambda view, day: rec.apply_objection(
                view,
                action_date=day,
                today=self.today(),
                actor=_actor(),
                reason=request.reason,
                filed_by=request.filed_by,
                attachments=request.attachments,
            ),
        )
        return pb.FileObjectionResponse(record=record)

    async def ForwardObjection(
        self, request: pb.ForwardObjectionRequest, context: Context
    ) -> pb.ForwardObjectionResponse:
        record = await self._change(
            "ForwardObjection",
            request,
            lambda view, day: rec.apply_forward(
                view,
                action_date=day,
                today=self.today(),
                actor=_actor(),
                forwarded_to=request.forwarded_to,
                reason=request.reason,
            ),
        )
        return pb.ForwardObjectionResponse(record=record)

    async def DecideObjection(
        self, request: pb.DecideObjectionRequest, context: Context
    ) -> pb.DecideObjectionResponse:
        upheld = {pb.OBJECTION_OUTCOME_UPHELD: True, pb.OBJECTION_OUTCOME_REJECTED: False}.get(
            request.outcome
        )
        record = await self._change(
            "DecideObjection",
            request,
            lambda view, day: rec.apply_decision(
                view,
                action_date=day,
                today=self.today(),
                actor=_actor(),
                upheld=upheld,
                reason=request.reason,
                attachments=request.attachments,
            ),
        )
        return pb.DecideObjectionResponse(record=record)

    async def RepairRecord(
        self, request: pb.RepairRecordRequest, context: Context
    ) -> pb.RepairRecordResponse:
        record = await self._change(
            "RepairRecord",
            request,
            lambda view, day: rec.apply_repair(
                view,
                action_date=day,
                today=self.today(),
                actor=_actor(),
                reason=request.reason,
                proof=request.proof,
            ),
        )
        return pb.RepairRecordResponse(record=record)

    async def RevokeRecord(
        self, request: pb.RevokeRecordRequest, context: Context
    ) -> pb.RevokeRecordResponse:
        record = await self._change(
            "RevokeRecord",
            request,
            lambda view, day: rec.apply_revoke(
                view,
                action_date=day,
                today=self.today(),
                actor=_actor(),
                reason=request.reason,
                attachments=request.attachments,
            ),
        )
        return pb.RevokeRecordResponse(record=record)

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
        reply = pb.GetDisclosureResponse(subject_id=mask_id(subject_id) if person else subject_id)
        _date(reply.view_date, today)
        for v in shown:
            r = v.record
            kind = v.kind
            item = reply.records.add(
                name=r.name, kind=r.kind, authority=r.authority, state=_STATE[v.state]
            )
            if kind is not None:
                item.kind_title.zh, item.kind_title.en = kind.title.zh, kind.title.en
            item.basis.regulation, item.basis.document_number = r.basis_regulation, r.basis_document
            _date(item.decision_date, r.decision_date)
            until = (
                v.public_until
                if v.state is rec.State.REPAIRED
                else (v.max_end - dt.timedelta(days=1) if v.max_end is not None else None)
            )
            _date(item.disclosed_until, until)
            for p in r.linked:
                item.linked_persons.add(id=mask_id(p.id), role=_ROLE[p.role])
        return reply

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

    async def _change(
        self, method: str, request: Any, make: Callable[[rec.View, dt.date], rec.Event]
    ) -> record_pb2.Record:
        """Read, check the change on the record as of its action date, append its event
        against the version read (RecordChanged: ABORTED when another change won)."""
        async with self.audit.call(method) as call:
            day = convert.request_date(request, "action_date") or self.today()
            record = await self._get(request.name)
            call.subject_id = record.subject_id
            if request.etag and request.etag != str(record.version):
                raise _aborted(record, request.etag)
            view = self._view(record, day)
            event = make(view, day)
            after = rec.replay(replace(record, events=(*record.events, event)), view.kind, day)
            stored = await self.store.append(record, event, after.state.value)
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

    async def fill(self, card: Any, inp: Any, as_of: dt.date) -> tuple[Any, tuple[Any, ...]]:
        derived = list(self.derived(card))
        if not derived:
            return inp, ()
        submitted = rec.submitted_derived(derived, inp.indicators)
        if submitted:
            raise InvalidInput(submitted)
        subject_id = normalize(inp.subject.id)
        records = await self.store.touching(subject_id)
        values, used = rec.fill_from_records(
            derived, dict(inp.indicators), subject_id, records, self.kinds, as_of
        )
        return replace(inp, indicators=values), rec.evidence_of(used)
