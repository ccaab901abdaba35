"""Credit records (issue 10): what a list entry or a penalty is, its kinds, and its lifecycle.

Pure: no gRPC, no database. The store keeps a record's fixed facts and its append-only
events; everything else (its state on any date, the deadlines of an objection, when it
leaves the public view, when it expires) is computed here from those two, so a record is
correct as of any date without a job that rewrites it.

- `RecordKind` / `RecordKindRegistry`: the kinds a record may have, with their minimum and
  maximum publicity periods and whether an objection suspends counting; plugins add kinds
  through the `register_record_kinds` hook, the built-in ones are `BUILTIN_KINDS`.
- `Record`, `Event`: a record as stored; `replay(record, as_of)` is its `View` on a date.
- `check_new_record` and the `apply_*` functions: the lifecycle's checks, each raising
  `InvalidInput` (the field named) or `LifecycleRefused` (the state does not allow it), and
  returning the event to append.
- `working_days_after`: deadlines in mainland working days, adjusted working days included
  (the `chinese-calendar` package's data).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import chinese_calendar

from .model import FieldViolation, InvalidInput, Provenance, ProvenanceTag, SubjectKind, Title
from .semantics import SUBJECT_ID_CHECKS
from .subject_ids import normalize

FORWARD_WORKING_DAYS = 2  # 上海市社会信用条例 art 36: an objection is forwarded within 2 wd
DECIDE_WORKING_DAYS = 5  # ... and the provider decides within 5 wd of receipt
LEAVE_PUBLIC_WORKING_DAYS = 3  # art 38: a repaired item leaves the query interface within 3 wd
MAX_TEXT = 500  # characters of a reason, an authority, a basis
MAX_ATTACHMENTS = 20
MAX_LINKED = 20

# -- the calendar --------------------------------------------------------------------------


def is_working_day(day: dt.date) -> bool:
    """A mainland working day: Monday to Friday unless a public holiday, and the weekend days
    the State Council's yearly notice makes working days (调休). Beyond the years the
    calendar package knows, Monday to Friday (`calendar_known` tells which)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def calendar_known(day: dt.date) -> bool:
    """Whether the holiday calendar covers `day`'s year (else deadlines are provisional)."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def working_days_after(start: dt.date, n: int) -> dt.date:
    """The `n`-th working day after `start` (the day the time limit ends)."""
    day, left = start, n
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus whole months; the 31st of a shorter month is its last day."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# -- kinds ---------------------------------------------------------------------------------


class Severity(str, Enum):
    MINOR = "minor"  # 轻微
    GENERAL = "general"  # 一般
    SERIOUS = "serious"  # 严重


class LinkRole(str, Enum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人
    PRINCIPAL = "principal"  # 主要负责人
    DIRECTLY_RESPONSIBLE = "directly_responsible"  # 直接责任人


@dataclass(frozen=True)
class RecordKind:
    """A kind of record: a list or a class of penalty, with its publicity periods in months.

    `min_months`: repair may be asked once this has passed since the decision date;
    `max_months`: the record expires at its end (0: the kind has no end by time). A kind
    whose `restricts_linked` is set bars the linked persons of the given roles for
    `restriction_months` from the decision date (the 3-year legal-representative bar)."""

    name: str
    title: Title
    subject_kinds: frozenset[SubjectKind]
    min_months: int
    max_months: int
    counts_under_objection: bool
    provenance: Provenance
    restricts_linked: frozenset[LinkRole] = frozenset()
    restriction_months: int = 0

    def __post_init__(self) -> None:
        if (
            not self.name
            or not all(c.isalnum() or c in "._-" for c in self.name)
            or self.name != self.name.lower()
        ):
            raise ValueError(
                f"a record kind name is lower-case letters, digits, '.', '_', '-': {self.name!r}"
            )
        if (
            self.min_months < 0
            or self.max_months < 0
            or (self.max_months and self.min_months > self.max_months)
        ):
            raise ValueError(f"record kind {self.name}: 0 <= min_months <= max_months (or max 0)")
        if self.restricts_linked and self.restriction_months <= 0:
            raise ValueError(f"record kind {self.name}: restriction_months must be positive")


class RecordKindRegistry:
    """The kinds known to this server: the built-in ones and the plugins' (through the
    `register_record_kinds(register)` hook; a name taken by another kind is refused)."""

    def __init__(self, kinds: Iterable[RecordKind] = ()) -> None:
        self._kinds: dict[str, RecordKind] = {}
        for k in kinds:
            self.register(k)

    def register(self, kind: RecordKind) -> None:
        if not isinstance(kind, RecordKind):
            raise TypeError(f"register() takes a RecordKind, not {type(kind).__name__}")
        known = self._kinds.get(kind.name)
        if known is not None and known != kind:
            raise ValueError(f"record kind {kind.name!r} is already registered with other periods")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> RecordKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def all(self) -> list[RecordKind]:
        return [self._kinds[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds


def _p(tag: ProvenanceTag, source: str, article: str = "") -> Provenance:
    return Provenance(tag, source, article)


_ORG = frozenset({SubjectKind.ORGANIZATION})
_BOTH = frozenset({SubjectKind.ORGANIZATION, SubjectKind.PERSON})
_NDRC58 = "《失信行为纠正后的信用信息修复管理办法（试行）》(国家发展改革委令第58号)"
_NDRC_2026 = "《信用修复管理办法》(国家发展改革委, 2026-04-01 施行)"

BUILTIN_KINDS: tuple[RecordKind, ...] = (
    RecordKind(
        "administrative_penalty",
        Title("行政处罚", "Administrative penalty"),
        _BOTH,
        3,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, _NDRC58, "公示期最短3个月、最长3年"),
    ),
    RecordKind(
        "administrative_penalty.safety",
        Title(
            "行政处罚（安全生产、特种设备、消防安全）",
            "Administrative penalty (work safety, special equipment, fire safety)",
        ),
        _BOTH,
        12,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, _NDRC58, "最短公示期1年"),
    ),
    RecordKind(
        "serious_dishonesty",
        Title("严重失信主体名单", "Serious dishonesty list"),
        _BOTH,
        12,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, _NDRC_2026, "严重失信: 公示1至3年"),
    ),
    RecordKind(
        "joint_punishment",
        Title("联合惩戒对象名单（黑名单）", "Joint punishment list (blacklist)"),
        _BOTH,
        12,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, _NDRC_2026, "严重失信: 公示1至3年"),
    ),
    RecordKind(
        "dishonest_debtor",
        Title("失信被执行人名单", "Court dishonest-debtor list"),
        _BOTH,
        0,
        24,
        True,
        _p(
            ProvenanceTag.UNVERIFIED,
            "《最高人民法院关于公布失信被执行人名单信息的若干规定》(2017修正)",
            "第6条: 纳入期限2年; 履行后删除",
        ),
    ),
    RecordKind(
        "major_tax_violation",
        Title("重大税收违法失信主体", "Major tax-violation list"),
        _BOTH,
        0,
        36,
        True,
        _p(
            ProvenanceTag.DESIGN,
            "财库〔2016〕125号 names the list; the period is this project's default",
        ),
    ),
    RecordKind(
        "procurement_dishonesty",
        Title("政府采购严重违法失信行为记录名单", "Procurement serious-violation list"),
        _ORG,
        12,
        36,
        True,
        _p(ProvenanceTag.VERIFIED, "《政府采购法》(2014)", "第77条: 1至3年内禁止参加政府采购活动"),
    ),
    RecordKind(
        "abnormal_operations",
        Title("经营异常名录", "Abnormal-operations list"),
        _ORG,
        0,
        36,
        False,
        _p(ProvenanceTag.VERIFIED, "《企业信息公示暂行条例》(2014)", "第17条"),
    ),
    RecordKind(
        "serious_violation_enterprise",
        Title("严重违法企业名单", "Serious-violation enterprise list"),
        _ORG,
        60,
        60,
        False,
        _p(ProvenanceTag.VERIFIED, "《企业信息公示暂行条例》(2014)", "第17条: 5年"),
        frozenset({LinkRole.LEGAL_REPRESENTATIVE, LinkRole.PRINCIPAL}),
        36,
    ),
    RecordKind(
        "licence_revoked",
        Title("吊销营业执照", "Business licence revoked"),
        _ORG,
        36,
        36,
        False,
        _p(ProvenanceTag.VERIFIED, "《公司法》(2023)", "第178条: 吊销之日起未逾3年"),
        frozenset({LinkRole.LEGAL_REPRESENTATIVE}),
        36,
    ),
    RecordKind(
        "construction.bad_record",
        Title("建筑市场不良信用信息", "Construction bad record"),
        _BOTH,
        6,
        36,
        True,
        _p(
            ProvenanceTag.SECONDARY,
            "《建筑市场信用管理暂行办法》",
            "不良信息公布期6个月至3年; 异议期间不停止公布",
        ),
    ),
    RecordKind(
        "social_org.abnormal",
        Title("社会组织活动异常名录", "Social organization abnormal-activity list"),
        _ORG,
        0,
        6,
        False,
        _p(ProvenanceTag.SECONDARY, "《社会组织信用信息管理办法》", "6个月自动移出"),
    ),
    RecordKind(
        "social_org.serious",
        Title("社会组织严重违法失信名单", "Social organization serious list"),
        _ORG,
        24,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, "《社会组织信用信息管理办法》", "满2年可移出"),
    ),
    RecordKind(
        "bribery_conviction",
        Title("行贿犯罪记录", "Bribery conviction"),
        _BOTH,
        36,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, "财库〔2016〕125号 and local practice", "近3年内行贿犯罪记录"),
    ),
)


def builtin_kinds() -> RecordKindRegistry:
    return RecordKindRegistry(BUILTIN_KINDS)


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
        """The day after the last day `person_id` (linked to the record in a barred role) is
        barred, or None when the record bars nobody by that id."""
        kind = self.kind
        if (
            kind is None
            or not kind.restricts_linked
            or self.state is State.REVOKED
            or not self.decided
        ):
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


def check_new_record(
    record: Record,
    kinds: RecordKindRegistry,
    today: dt.date,
    id_schemes: dict[str, Callable[[str], str | None]] | None = None,
    prefix: str = "record.",
) -> Record:
    """The record to store, normalized; InvalidInput naming every bad field: an unknown kind,
    a subject of a kind the record kind does not cover, an invalid subject or linked id, a
    decision date in the future, a missing authority or basis."""
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


# -- what evaluations read ---------------------------------------------------------------


class Measure(str, Enum):
    ACTIVE = "active"
    COUNT_WITHIN = "count within"
    LATEST_DATE = "latest date"
    END_OF_RESTRICTION = "end of restriction"


@dataclass(frozen=True)
class FromRecords:
    """An indicator's `from_records`: which kinds, and what is measured of them; `severity`,
    when given, keeps only the records of that severity (the construction A/B/C classes are
    the records' serious/general/minor)."""

    kinds: tuple[str, ...]
    measure: Measure
    years: int = 0  # COUNT_WITHIN
    severity: Severity | None = None

    @classmethod
    def parse(cls, data: Any) -> FromRecords:
        """From the scorecard TOML table; ValueError naming the key at fault."""
        if not isinstance(data, dict) or set(data) - {"kinds", "measure", "severity"}:
            raise ValueError("from_records is a table of kinds, measure and (optional) severity")
        kinds = data.get("kinds")
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and k for k in kinds)
        ):
            raise ValueError("from_records.kinds: a non-empty list of record kind names")
        severity = None
        if "severity" in data:
            try:
                severity = Severity(data["severity"])
            except (TypeError, ValueError):
                raise ValueError(
                    "from_records.severity: one of " + ", ".join(s.value for s in Severity)
                ) from None
        text = data.get("measure")
        if not isinstance(text, str):
            raise ValueError("from_records.measure: a string")
        words = text.split()
        if text in ("active", "latest date", "end of restriction"):
            return cls(tuple(kinds), Measure(text), severity=severity)
        if (
            len(words) == 4
            and words[:2] == ["count", "within"]
            and words[3] in ("year", "years")
            and words[2].isdigit()
            and int(words[2]) > 0
        ):
            return cls(tuple(kinds), Measure.COUNT_WITHIN, int(words[2]), severity)
        raise ValueError(
            'from_records.measure: "active", "count within N years", "latest date" or'
            f' "end of restriction", not {text!r}'
        )

    @property
    def text(self) -> str:
        words = (
            f"count within {self.years} years"
            if self.measure is Measure.COUNT_WITHIN
            else str(self.measure.value)
        )
        return f"{words}, severity {self.severity.value}" if self.severity else words

    def takes(self, record: Record) -> bool:
        """Whether `record` is of one of the kinds (and of the severity, when given)."""
        return record.kind in self.kinds and (
            self.severity is None or record.severity is self.severity
        )


@dataclass(frozen=True)
class Derived:
    """A value derived from records and the records it used (cited in the explanation)."""

    value: bool | int | dt.date | None
    used: tuple[View, ...]


def derive(spec: FromRecords, subject_id: str, views: Sequence[View]) -> Derived:
    """The value of an indicator `spec` over the subject's records as of one date (`views`:
    those of the subject and those that link it, each replayed to the evaluation's as_of)."""
    own = [v for v in views if spec.takes(v.record) and v.record.subject_id == subject_id]
    if spec.measure is Measure.END_OF_RESTRICTION:
        ends = [(v.restriction_end(subject_id), v) for v in views if spec.takes(v.record)]
        live = [(end, v) for end, v in ends if end is not None and end > v.as_of]
        if not live:
            return Derived(None, ())
        last = max(end for end, _ in live)
        return Derived(last, tuple(v for end, v in live if end == last))
    counting = [v for v in own if v.counts]
    if spec.measure is Measure.ACTIVE:
        return Derived(bool(counting), tuple(counting))
    if spec.measure is Measure.COUNT_WITHIN:
        start = (
            add_months(views[0].as_of if views else dt.date.min, -12 * spec.years)
            if views
            else None
        )
        inside = [v for v in counting if start is not None and v.record.decision_date > start]
        return Derived(len(inside), tuple(inside))
    if not counting:
        return Derived(None, ())
    latest = max(v.record.decision_date for v in counting)
    return Derived(latest, tuple(v for v in counting if v.record.decision_date == latest))


# -- golden cases with records -------------------------------------------------------------

_CASE_RECORD_KEYS = {"kind", "decided", "subject", "severity", "linked", "events"}


def record_from_case(spec: Any, index: int, subject_kind: SubjectKind, subject_id: str) -> Record:
    """A record of a golden case: ``{ kind, decided, subject (default: the case's subject),
    severity (default general), linked = [{ id, role }], events = [{ type, on }] }``;
    ValueError naming the key at fault."""
    if not isinstance(spec, dict) or set(spec) - _CASE_RECORD_KEYS:
        raise ValueError(f"a table of {', '.join(sorted(_CASE_RECORD_KEYS))}")
    kind, decided = spec.get("kind"), spec.get("decided")
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind: a record kind name")
    if not isinstance(decided, dt.date) or isinstance(decided, dt.datetime):
        raise ValueError("decided: a date")
    subject = spec.get("subject", subject_id)
    if not isinstance(subject, str):
        raise ValueError("subject: an id")
    try:
        severity = Severity(spec.get("severity", Severity.GENERAL.value))
    except (TypeError, ValueError):
        raise ValueError("severity: one of " + ", ".join(s.value for s in Severity)) from None
    linked = []
    for p in spec.get("linked", ()):
        try:
            linked.append(LinkedPerson(str(p["id"]), LinkRole(p["role"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                "linked: [{ id, role }], role one of " + ", ".join(r.value for r in LinkRole)
            ) from None
    events = [Event(1, EventType.CREATED, decided, "golden")]
    for e in spec.get("events", ()):
        try:
            on = e["on"]
            events.append(Event(len(events) + 1, EventType(e["type"]), on, "golden"))
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                "events: [{ type, on }], type one of "
                + ", ".join(t.value for t in EventType if t is not EventType.CREATED)
            ) from None
        if not isinstance(on, dt.date):
            raise ValueError("events: on must be a date")
    kind_of_subject = subject_kind if subject == subject_id else SubjectKind.ORGANIZATION
    return Record(
        f"case-{index + 1}",
        kind_of_subject,
        subject,
        kind,
        "golden case",
        "",
        "",
        decided,
        severity,
        tuple(linked),
        tuple(events),
    )


def submitted_derived(indicators: Iterable[Any], values: dict[str, object]) -> list[FieldViolation]:
    """A violation for each indicator derived from records that `values` gives: the server
    fills those, a caller (or a golden case) never submits them."""
    return [
        FieldViolation(
            f"indicators.{i.name}",
            "derived from credit records by the server"
            f" ({i.from_records.text} of {', '.join(i.from_records.kinds)}); leave it out",
        )
        for i in indicators
        if i.from_records is not None and i.name in values
    ]


def fill_from_records(
    indicators: Iterable[Any],
    values: dict[str, object],
    subject_id: str,
    records: Sequence[Record],
    kinds: RecordKindRegistry,
    as_of: dt.date,
) -> tuple[dict[str, object], list[tuple[str, View]]]:
    """`values` with each indicator derived from records filled from `records` as of `as_of`,
    and the (indicator, record view) pairs each used: what the server does with the stored
    records, and the golden cases' runner with a case's."""
    views = [replay(r, kinds.get(r.kind), as_of) for r in records]
    out = dict(values)
    used: list[tuple[str, View]] = []
    for ind in indicators:
        if ind.from_records is None:
            continue
        got = derive(ind.from_records, subject_id, views)
        if got.value is not None:
            out[ind.name] = got.value
        used += [(ind.name, v) for v in got.used]
    return out, used
