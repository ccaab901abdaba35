"""Credit records (issue 10), part 2: a record, its append-only events and its state on any
date. Pure: no gRPC, no database.

The store keeps a record's fixed facts and its events; everything else (its state on a date,
the deadlines of an objection, when it leaves the public view, when it expires) is computed
here by `replay(record, kind, as_of)`, so a record is correct as of any date without a job
that rewrites it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import Enum

from .model import SubjectKind
from .records_kinds import (
    LinkRole,
    RecordKind,
    Severity,
    add_months,
    calendar_known,
    working_days_after,
)

FORWARD_WORKING_DAYS = 2  # 上海市社会信用条例 art 36: an objection is forwarded within 2 wd
DECIDE_WORKING_DAYS = 5  # ... and the provider decides within 5 wd of receipt
LEAVE_PUBLIC_WORKING_DAYS = 3  # art 38: a repaired item leaves the query interface within 3 wd

# -- records and events --------------------------------------------------------------------


class State(str, Enum):
    ACTIVE = "ACTIVE"
    UNDER_OBJECTION = "UNDER_OBJECTION"
    REPAIRED = "REPAIRED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class EventType(str, Enum):
    CREATED = "CREATED"
    OBJECTION_FILED = "OBJECTION_FILED"
    OBJECTION_FORWARDED = "OBJECTION_FORWARDED"
    OBJECTION_UPHELD = "OBJECTION_UPHELD"  # the objection is right: the record is corrected away
    OBJECTION_REJECTED = "OBJECTION_REJECTED"
    REPAIRED = "REPAIRED"
    REVOKED = "REVOKED"


class ObjectionStatus(str, Enum):
    FILED = "FILED"
    FORWARDED = "FORWARDED"
    UPHELD = "UPHELD"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class LinkedPerson:
    id: str
    role: LinkRole
    name: str = ""


@dataclass(frozen=True)
class Event:
    """One change of a record, appended, never rewritten. `action_date` is the day the act
    took effect (the officer's document), `recorded_at` when the service stored it."""

    sequence: int
    type: EventType
    action_date: dt.date
    actor: str
    reason: str = ""
    attachments: tuple[str, ...] = ()
    recorded_at: dt.datetime | None = None
    party: str = ""  # filed by (objection) / forwarded to (forward)


@dataclass(frozen=True)
class Record:
    """A record's fixed facts and its events (the first is CREATED)."""

    id: str
    subject_kind: SubjectKind
    subject_id: str
    kind: str
    authority: str
    basis_regulation: str
    basis_document: str
    decision_date: dt.date
    severity: Severity
    linked: tuple[LinkedPerson, ...] = ()
    events: tuple[Event, ...] = ()
    version: int = 1
    created_at: dt.datetime | None = None
    # The first day the ban its decision set on the subject no longer applies (a kind with
    # `ban_months`); None for the other kinds.
    restriction_end: dt.date | None = None

    @property
    def name(self) -> str:
        return f"records/{self.id}"

    @property
    def basis(self) -> str:
        return f"{self.basis_regulation} {self.basis_document}".strip()


@dataclass(frozen=True)
class Objection:
    status: ObjectionStatus
    filed_on: dt.date
    forward_by: dt.date
    forwarded_on: dt.date | None = None
    decide_by: dt.date | None = None
    decided_on: dt.date | None = None
    filed_by: str = ""
    forwarded_to: str = ""
    provisional: bool = False  # a deadline past the years the holiday calendar knows

    def overdue(self, as_of: dt.date) -> bool:
        """Not forwarded by its forwarding deadline, or not decided by its deciding one."""
        if self.status is ObjectionStatus.FILED:
            return as_of > self.forward_by
        if self.status is ObjectionStatus.FORWARDED:
            return self.decide_by is not None and as_of > self.decide_by
        return False


@dataclass(frozen=True)
class View:
    """A record as of one date: its state, the deadlines, whether it counts and is public."""

    record: Record
    kind: RecordKind | None
    as_of: dt.date
    state: State
    min_end: dt.date
    max_end: dt.date | None
    objection: Objection | None = None
    repaired_on: dt.date | None = None
    public_until: dt.date | None = None  # the last day a repaired record may still be shown
    events: tuple[Event, ...] = field(default_factory=tuple)  # those up to `as_of`

    @property
    def decided(self) -> bool:
        """Whether the record existed on `as_of` (its decision date is not later)."""
        return self.as_of >= self.record.decision_date

    @property
    def counts(self) -> bool:
        """Whether the record counts against its subject in an evaluation on `as_of`."""
        if not self.decided:
            return False
        if self.state is State.ACTIVE:
            return True
        return self.state is State.UNDER_OBJECTION and bool(
            self.kind and self.kind.counts_under_objection
        )

    @property
    def public(self) -> bool:
        """Whether the disclosure view may show it on `as_of`."""
        if not self.decided:
            return False
        if self.state in (State.ACTIVE, State.UNDER_OBJECTION):
            return True
        return (
            self.state is State.REPAIRED
            and self.public_until is not None
            and self.as_of <= self.public_until
        )

    def restriction_end(self, person_id: str) -> dt.date | None:
        """The day after the last day `person_id` is barred: the subject by the ban its
        record's decision set (`Record.restriction_end`), a person linked in a barred role by
        the kind's fixed bar; None when the record bars nobody by that id, or was revoked (an
        upheld objection included). Repair ends the publicity, not the ban."""
        kind = self.kind
        if kind is None or self.state is State.REVOKED or not self.decided:
            return None
        if self.record.restriction_end is not None and self.record.subject_id == person_id:
            return self.record.restriction_end
        if not kind.restricts_linked:
            return None
        if not any(
            p.id == person_id and p.role in kind.restricts_linked for p in self.record.linked
        ):
            return None
        return add_months(self.record.decision_date, kind.restriction_months)


def periods(record: Record, kind: RecordKind | None) -> tuple[dt.date, dt.date | None]:
    """The end of the minimum period (repair may be asked from then) and of the maximum one
    (the record expires on that day; None: no end by time)."""
    if kind is None:
        return record.decision_date, None
    end = add_months(record.decision_date, kind.max_months) if kind.max_months else None
    return add_months(record.decision_date, kind.min_months), end


def replay(record: Record, kind: RecordKind | None, as_of: dt.date) -> View:
    """The record as of `as_of`: its events with an action date up to then, in order, then
    expiry at the end of the maximum period (a state nobody wrote: it follows from the date)."""
    state = State.ACTIVE
    objection: Objection | None = None
    repaired_on = public_until = None
    seen = []
    for e in record.events:
        if e.action_date > as_of:
            break
        seen.append(e)
        if e.type is EventType.OBJECTION_FILED:
            state = State.UNDER_OBJECTION
            forward_by = working_days_after(e.action_date, FORWARD_WORKING_DAYS)
            objection = Objection(
                ObjectionStatus.FILED,
                e.action_date,
                forward_by,
                filed_by=e.party,
                provisional=not calendar_known(forward_by),
            )
        elif e.type is EventType.OBJECTION_FORWARDED and objection is not None:
            decide_by = working_days_after(e.action_date, DECIDE_WORKING_DAYS)
            objection = replace(
                objection,
                status=ObjectionStatus.FORWARDED,
                forwarded_on=e.action_date,
                decide_by=decide_by,
                forwarded_to=e.party,
                provisional=not calendar_known(decide_by),
            )
        elif (
            e.type in (EventType.OBJECTION_UPHELD, EventType.OBJECTION_REJECTED)
            and objection is not None
        ):
            upheld = e.type is EventType.OBJECTION_UPHELD
            objection = replace(
                objection,
                status=ObjectionStatus.UPHELD if upheld else ObjectionStatus.REJECTED,
                decided_on=e.action_date,
            )
            state = State.REVOKED if upheld else State.ACTIVE
        elif e.type is EventType.REPAIRED:
            state, repaired_on = State.REPAIRED, e.action_date
            public_until = working_days_after(e.action_date, LEAVE_PUBLIC_WORKING_DAYS)
        elif e.type is EventType.REVOKED:
            state = State.REVOKED
    min_end, max_end = periods(record, kind)
    if state in (State.ACTIVE, State.UNDER_OBJECTION) and max_end is not None and as_of >= max_end:
        state = State.EXPIRED
    return View(
        record,
        kind,
        as_of,
        state,
        min_end,
        max_end,
        objection,
        repaired_on,
        public_until,
        tuple(seen),
    )
