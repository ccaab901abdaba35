"""Credit records (issue 10), part 3: the lifecycle's checks. Pure: no gRPC, no database.

`check_new_record` and the `apply_*` functions each raise `InvalidInput` (the field named)
or `LifecycleRefused` (the record's state does not allow the change), and return the event to
append: an objection, its forwarding and decision, a repair after the minimum period with
proof, a revocation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace

from .model import FieldViolation, InvalidInput, SubjectKind
from .records_kinds import LinkRole, RecordKind, RecordKindRegistry, add_months
from .records_lifecycle import Event, EventType, LinkedPerson, ObjectionStatus, Record, State, View
from .semantics import SUBJECT_ID_CHECKS
from .subject_ids import normalize

MAX_TEXT = 500  # characters of a reason, an authority, a basis
MAX_ATTACHMENTS = 20
MAX_LINKED = 20

# -- the lifecycle's checks ----------------------------------------------------------------


class LifecycleRefused(Exception):
    """A well-formed change the record's state does not allow (FAILED_PRECONDITION), with
    the request field it concerns."""

    reason = "RECORD_STATE"

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message

    @property
    def violations(self) -> tuple[FieldViolation, ...]:
        return (FieldViolation(self.field, self.message),)


class InvalidRecordInput(InvalidInput):
    reason = "INVALID_RECORD"


def check_text(
    value: str, name: str, problems: list[FieldViolation], *, required: bool = True
) -> str:
    text = value.strip()
    if required and not text:
        problems.append(FieldViolation(name, "required"))
    elif len(text) > MAX_TEXT:
        problems.append(FieldViolation(name, f"{len(text)} characters, more than {MAX_TEXT}"))
    elif any(ord(c) < 32 for c in text):
        problems.append(FieldViolation(name, "must not hold control characters"))
    return text


def _id_problem(
    kind: SubjectKind, value: str, id_schemes: dict[str, Callable[[str], str | None]]
) -> str | None:
    for prefix, check in id_schemes.items():
        if value.startswith(prefix):
            return check(value)
    return SUBJECT_ID_CHECKS[kind](value)


def restriction_problem(
    kind: RecordKind | None, decision_date: dt.date, end: dt.date | None
) -> str | None:
    """Why a record's `restriction_end` does not fit its kind, or None: a kind whose decisions
    set a ban (`ban_months`) needs one between its least and most months from the decision
    date; any other kind takes none."""
    if kind is None:
        return None  # the kind itself is refused
    if kind.ban_months is None:
        if end is None:
            return None
        return f"a {kind.name} decision sets no ban: leave restriction_end out"
    least, most = kind.ban_months
    first, last = add_months(decision_date, least), add_months(decision_date, most)
    if end is None:
        return (
            f"required: a {kind.name} decision sets a ban of {least} to {most} months;"
            f" the day it ends, from {first} to {last}"
        )
    if not first <= end <= last:
        return (
            f"{end} is outside the {least} to {most} months a {kind.name} ban lasts from the"
            f" decision date {decision_date}: from {first} to {last}"
        )
    return None


def check_new_record(
    record: Record,
    kinds: RecordKindRegistry,
    today: dt.date,
    id_schemes: dict[str, Callable[[str], str | None]] | None = None,
    prefix: str = "record.",
) -> Record:
    """The record to store, normalized; InvalidInput naming every bad field: an unknown kind,
    a subject of a kind the record kind does not cover, an invalid subject or linked id, a
    decision date in the future, a missing authority or basis, a ban end its kind does not
    take or outside its kind's bounds (`restriction_problem`)."""
    schemes = id_schemes or {}
    problems: list[FieldViolation] = []
    kind = kinds.get(record.kind)
    if not record.kind:
        problems.append(
            FieldViolation(prefix + "kind", f"required: one of {', '.join(kinds.names())}")
        )
    elif kind is None:
        problems.append(
            FieldViolation(
                prefix + "kind",
                f"{record.kind[:64]!r} is not a record kind of this"
                f" service; one of {', '.join(kinds.names())}",
            )
        )
    elif record.subject_kind not in kind.subject_kinds:
        problems.append(
            FieldViolation(
                prefix + "subject.kind",
                f"a {record.kind} record is about an organization, not a person",
            )
        )
    subject_id = normalize(record.subject_id)
    if not subject_id:
        problems.append(FieldViolation(prefix + "subject.id", "required"))
    else:
        why = _id_problem(record.subject_kind, subject_id, schemes)
        if why:
            problems.append(FieldViolation(prefix + "subject.id", why))
    authority = check_text(record.authority, prefix + "authority", problems)
    regulation = check_text(record.basis_regulation, prefix + "basis.regulation", problems)
    document = check_text(record.basis_document, prefix + "basis.document_number", problems)
    if record.decision_date > today:
        problems.append(
            FieldViolation(
                prefix + "decision_date",
                f"{record.decision_date} is in the future (today is {today})",
            )
        )
    ban = restriction_problem(kind, record.decision_date, record.restriction_end)
    if ban:
        problems.append(FieldViolation(prefix + "restriction_end", ban))
    if len(record.linked) > MAX_LINKED:
        problems.append(FieldViolation(prefix + "linked_persons", f"at most {MAX_LINKED}"))
    linked = []
    for i, p in enumerate(record.linked):
        pid = normalize(p.id)
        why = "required" if not pid else _id_problem(SubjectKind.PERSON, pid, schemes)
        if why:
            problems.append(FieldViolation(f"{prefix}linked_persons[{i}].id", why))
        if not isinstance(p.role, LinkRole):
            problems.append(
                FieldViolation(
                    f"{prefix}linked_persons[{i}].role",
                    f"one of {', '.join(r.value for r in LinkRole)}",
                )
            )
        name = check_text(p.name, f"{prefix}linked_persons[{i}].name", problems, required=False)
        linked.append(LinkedPerson(pid, p.role, name))
    if problems:
        raise InvalidRecordInput(problems)
    return replace(
        record,
        subject_id=subject_id,
        authority=authority,
        basis_regulation=regulation,
        basis_document=document,
        linked=tuple(linked),
    )


def _check_action(
    view: View,
    action_date: dt.date,
    today: dt.date,
    reason: str,
    attachments: Sequence[str],
    *,
    reason_required: bool = True,
) -> tuple[str, tuple[str, ...]]:
    problems: list[FieldViolation] = []
    if action_date > today:
        problems.append(
            FieldViolation("action_date", f"{action_date} is in the future (today is {today})")
        )
    last = view.record.events[-1].action_date if view.record.events else view.record.decision_date
    if action_date < last:
        problems.append(
            FieldViolation(
                "action_date", f"{action_date} is before the record's last event ({last})"
            )
        )
    text = check_text(reason, "reason", problems, required=reason_required)
    if len(attachments) > MAX_ATTACHMENTS:
        problems.append(FieldViolation("attachments", f"at most {MAX_ATTACHMENTS}"))
    refs = []
    for i, a in enumerate(attachments):
        refs.append(check_text(a, f"attachments[{i}]", problems))
    if problems:
        raise InvalidRecordInput(problems)
    return text, tuple(refs)


def _event(
    view: View,
    type_: EventType,
    action_date: dt.date,
    actor: str,
    reason: str,
    attachments: tuple[str, ...],
    party: str = "",
) -> Event:
    return Event(
        len(view.record.events) + 1, type_, action_date, actor, reason, attachments, party=party
    )


def apply_objection(
    view: View,
    *,
    action_date: dt.date,
    today: dt.date,
    actor: str,
    reason: str,
    filed_by: str,
    attachments: Sequence[str] = (),
) -> Event:
    """An objection filed by or for the subject; refused on a record that is not ACTIVE."""
    text, refs = _check_action(view, action_date, today, reason, attachments)
    party = check_text(filed_by, "filed_by", [], required=False)
    if view.state is not State.ACTIVE:
        raise LifecycleRefused(
            "name",
            f"{view.record.name} is {view.state.value} on {view.as_of}:"
            " an objection is filed against an ACTIVE record only",
        )
    return _event(view, EventType.OBJECTION_FILED, action_date, actor, text, refs, party)


def apply_forward(
    view: View,
    *,
    action_date: dt.date,
    today: dt.date,
    actor: str,
    forwarded_to: str,
    reason: str = "",
) -> Event:
    problems: list[FieldViolation] = []
    party = check_text(forwarded_to, "forwarded_to", problems)
    if problems:
        raise InvalidRecordInput(problems)
    text, refs = _check_action(view, action_date, today, reason, (), reason_required=False)
    if (
        view.objection is None
        or view.objection.status is not ObjectionStatus.FILED
        or view.state is not State.UNDER_OBJECTION
    ):
        raise LifecycleRefused(
            "name", f"{view.record.name} has no objection waiting to be forwarded"
        )
    return _event(view, EventType.OBJECTION_FORWARDED, action_date, actor, text, refs, party)


def apply_decision(
    view: View,
    *,
    action_date: dt.date,
    today: dt.date,
    actor: str,
    upheld: bool | None,
    reason: str,
    attachments: Sequence[str] = (),
) -> Event:
    if upheld is None:
        raise InvalidRecordInput([FieldViolation("outcome", "required: UPHELD or REJECTED")])
    text, refs = _check_action(view, action_date, today, reason, attachments)
    if view.objection is None or view.state is not State.UNDER_OBJECTION:
        raise LifecycleRefused("name", f"{view.record.name} has no objection to decide")
    if view.objection.status is ObjectionStatus.FILED:
        raise LifecycleRefused(
            "name",
            f"the objection on {view.record.name} was never forwarded to the"
            " provider: forward it first (ForwardObjection)",
        )
    return _event(
        view,
        EventType.OBJECTION_UPHELD if upheld else EventType.OBJECTION_REJECTED,
        action_date,
        actor,
        text,
        refs,
    )


def apply_repair(
    view: View,
    *,
    action_date: dt.date,
    today: dt.date,
    actor: str,
    reason: str,
    proof: Sequence[str],
) -> Event:
    """Repair once the minimum period has passed, with proof (the written proof of repair)."""
    if not proof:
        raise InvalidRecordInput(
            [FieldViolation("proof", "required: at least one reference to the proof of repair")]
        )
    text, refs = _check_action(view, action_date, today, reason, proof)
    months = view.kind.min_months if view.kind else 0
    if action_date < view.min_end:
        raise InvalidRecordInput(
            [
                FieldViolation(
                    "action_date",
                    f"repair may be asked from {view.min_end} (the {months}-month minimum"
                    f" period from {view.record.decision_date}), not on {action_date}",
                )
            ]
        )
    if view.state is not State.ACTIVE:
        raise LifecycleRefused(
            "name",
            f"{view.record.name} is {view.state.value} on {view.as_of}:"
            " only an ACTIVE record is repaired",
        )
    return _event(view, EventType.REPAIRED, action_date, actor, text, refs)


def apply_revoke(
    view: View,
    *,
    action_date: dt.date,
    today: dt.date,
    actor: str,
    reason: str,
    attachments: Sequence[str] = (),
) -> Event:
    """The underlying act was revoked (administration, reconsideration, court)."""
    text, refs = _check_action(view, action_date, today, reason, attachments)
    if view.state is State.REVOKED:
        raise LifecycleRefused("name", f"{view.record.name} is revoked already")
    return _event(view, EventType.REVOKED, action_date, actor, text, refs)
