"""Credit records (issue 10): what a list entry or a penalty is, its kinds, and its lifecycle.

Pure: no gRPC, no database. This module is the one import place (`from
sector_credit.scorecards.records import ...`, `records as rec`); the code is in four parts:

- `records_kinds`: `RecordKind`, `RecordKindRegistry`, the built-in `BUILTIN_KINDS` with their
  publicity periods and objection semantics, and the mainland working-day calendar;
- `records_lifecycle`: `Record`, `Event`, and `replay(record, kind, as_of)`, a record's `View`
  on a date (its state, the objection's deadlines, expiry at the end of the maximum period);
- `records_checks`: `check_new_record` and the `apply_*` functions, each raising
  `InvalidInput` (the field named) or `LifecycleRefused`, returning the event to append;
- `records_derive`: what evaluations read: `FromRecords` (an indicator's `from_records`),
  `derive`, `fill_from_records`, `submitted_derived`, and golden cases' records.
"""

from .records_checks import (
    MAX_ATTACHMENTS,
    MAX_LINKED,
    MAX_TEXT,
    InvalidRecordInput,
    LifecycleRefused,
    apply_decision,
    apply_forward,
    apply_objection,
    apply_repair,
    apply_revoke,
    check_new_record,
    check_text,
    restriction_problem,
)
from .records_derive import (
    Derived,
    FromRecords,
    Measure,
    derive,
    evidence_of,
    fill_from_records,
    record_from_case,
    submitted_derived,
)
from .records_kinds import (
    BUILTIN_KINDS,
    LinkRole,
    RecordKind,
    RecordKindRegistry,
    Severity,
    add_months,
    builtin_kinds,
    calendar_known,
    is_working_day,
    working_days_after,
)
from .records_lifecycle import (
    DECIDE_WORKING_DAYS,
    FORWARD_WORKING_DAYS,
    LEAVE_PUBLIC_WORKING_DAYS,
    Event,
    EventType,
    LinkedPerson,
    Objection,
    ObjectionStatus,
    Record,
    State,
    View,
    periods,
    replay,
)

__all__ = [
    "evidence_of",
    "is_working_day",
    "calendar_known",
    "working_days_after",
    "add_months",
    "Severity",
    "LinkRole",
    "RecordKind",
    "RecordKindRegistry",
    "BUILTIN_KINDS",
    "builtin_kinds",
    "FORWARD_WORKING_DAYS",
    "DECIDE_WORKING_DAYS",
    "LEAVE_PUBLIC_WORKING_DAYS",
    "State",
    "EventType",
    "ObjectionStatus",
    "LinkedPerson",
    "Event",
    "Record",
    "Objection",
    "View",
    "periods",
    "replay",
    "MAX_TEXT",
    "MAX_ATTACHMENTS",
    "MAX_LINKED",
    "LifecycleRefused",
    "InvalidRecordInput",
    "check_text",
    "check_new_record",
    "restriction_problem",
    "apply_objection",
    "apply_forward",
    "apply_decision",
    "apply_repair",
    "apply_revoke",
    "Measure",
    "FromRecords",
    "Derived",
    "derive",
    "record_from_case",
    "submitted_derived",
    "fill_from_records",
]
