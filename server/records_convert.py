"""Credit records on the wire (issue 10): the RecordService's messages to and from the
domain values of scorecards/records.py. No I/O: the servicer (records_servicer.py) calls
these around the records store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import timestamp_pb2
from sector_credit.scorecards import records as rec
from sector_credit.scorecards.model import FieldViolation, InvalidInput, SubjectKind
from sector_credit.scorecards.subject_ids import mask_id
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as pb

from . import convert

COLLECTION = "records/"
MAX_NAME = 64

STATE = {s: record_pb2.RecordState.Value(f"RECORD_STATE_{s.value}") for s in rec.State}
_EVENT = {
    t: record_pb2.RecordEventType.Value(f"RECORD_EVENT_TYPE_{t.value}") for t in rec.EventType
}
_OBJECTION = {
    s: record_pb2.ObjectionStatus.Value(f"OBJECTION_STATUS_{s.value}") for s in rec.ObjectionStatus
}
_SEVERITY = {s: record_pb2.Severity.Value(f"SEVERITY_{s.name}") for s in rec.Severity}
_SEVERITY_IN = {v: k for k, v in _SEVERITY.items()}
ROLE = {r: record_pb2.LinkRole.Value(f"LINK_ROLE_{r.name}") for r in rec.LinkRole}
ROLE_IN = {v: k for k, v in ROLE.items()}
_SUBJECT_KIND = {
    SubjectKind.PERSON: common_pb2.SUBJECT_KIND_PERSON,
    SubjectKind.ORGANIZATION: common_pb2.SUBJECT_KIND_ORGANIZATION,
}
_SUBJECT_KIND_IN = {v: k for k, v in _SUBJECT_KIND.items()}


def set_date(target: common_pb2.Date, value: dt.date | None) -> None:
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
        state=STATE[view.state],
        counts=view.counts,
        etag=str(r.version),
    )
    out.subject.kind = _SUBJECT_KIND[r.subject_kind]
    out.subject.id = r.subject_id
    out.basis.regulation = r.basis_regulation
    out.basis.document_number = r.basis_document
    set_date(out.decision_date, r.decision_date)
    set_date(out.restriction_end, r.restriction_end)
    set_date(out.view_date, view.as_of)
    set_date(out.minimum_period_end, view.min_end)
    if view.max_end is not None:
        set_date(out.maximum_period_end, view.max_end)
    if view.public_until is not None:
        set_date(out.public_until, view.public_until)
    for p in r.linked:
        out.linked_persons.add(id=p.id, role=ROLE[p.role], display_name=p.name)
    o = view.objection
    if o is not None:
        out.objection.status = _OBJECTION[o.status]
        out.objection.overdue = o.overdue(view.as_of)
        out.objection.filed_by, out.objection.forwarded_to = o.filed_by, o.forwarded_to
        out.objection.provisional = o.provisional
        set_date(out.objection.filed_date, o.filed_on)
        set_date(out.objection.forward_by, o.forward_by)
        set_date(out.objection.forwarded_date, o.forwarded_on)
        set_date(out.objection.decide_by, o.decide_by)
        set_date(out.objection.decided_date, o.decided_on)
    for e in view.events:
        ev = out.events.add(
            sequence=e.sequence,
            type=_EVENT[e.type],
            actor=e.actor,
            reason=e.reason,
            attachments=list(e.attachments),
            party=e.party,
        )
        set_date(ev.action_date, e.action_date)
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
        restricts_linked=[ROLE[r] for r in sorted(kind.restricts_linked, key=lambda r: r.value)],
        restriction_months=kind.restriction_months,
        ban_minimum_months=kind.ban_months[0] if kind.ban_months else 0,
        ban_maximum_months=kind.ban_months[1] if kind.ban_months else 0,
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
    decision = _date(message.decision_date, "record.decision_date", problems, required=True)
    ban_end = _date(message.restriction_end, "record.restriction_end", problems)
    linked = []
    for i, p in enumerate(message.linked_persons):
        role = ROLE_IN.get(p.role)
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
        restriction_end=ban_end,
    )


def _date(
    value: common_pb2.Date, field: str, problems: list[FieldViolation], required: bool = False
) -> dt.date | None:
    """A request's date, or None (unset, or not a date: a violation naming `field` is added)."""
    try:
        day = convert.date_from_proto(value)
    except ValueError as exc:
        problems.append(FieldViolation(field, str(exc)))
        return None
    if day is None and required:
        problems.append(FieldViolation(field, "required"))
    return day


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


def disclosure_to_proto(
    subject_id: str, person: bool, today: dt.date, shown: list[rec.View]
) -> Any:
    """The GetDisclosureResponse of one subject: the records that may be shown today, each
    disclosed until the end of its maximum period (a repaired one: until it leaves the public
    view), ids masked where they are a person's."""
    reply = pb.GetDisclosureResponse(subject_id=mask_id(subject_id) if person else subject_id)
    set_date(reply.view_date, today)
    for v in shown:
        r = v.record
        item = reply.records.add(
            name=r.name, kind=r.kind, authority=r.authority, state=STATE[v.state]
        )
        if v.kind is not None:
            item.kind_title.zh, item.kind_title.en = v.kind.title.zh, v.kind.title.en
        item.basis.regulation, item.basis.document_number = r.basis_regulation, r.basis_document
        set_date(item.decision_date, r.decision_date)
        until = (
            v.public_until
            if v.state is rec.State.REPAIRED
            else (v.max_end - dt.timedelta(days=1) if v.max_end is not None else None)
        )
        set_date(item.disclosed_until, until)
        for p in r.linked:
            item.linked_persons.add(id=mask_id(p.id), role=ROLE[p.role])
    return reply
