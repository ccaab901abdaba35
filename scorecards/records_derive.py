"""Credit records (issue 10), part 4: what evaluations read of them. Pure: no gRPC, no
database.

A scorecard indicator may be derived from records (`from_records = { kinds, measure,
severity }`, `FromRecords`); `derive` measures the subject's records as of a date ("active",
"count within N years", "latest date", "end of restriction"), `fill_from_records` fills a
card's derived indicators and names the records each used (the evidence cited in the
explanation), `submitted_derived` refuses a value submitted for one, and `record_from_case`
reads a golden case's records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .model import FieldViolation, RecordEvidence, SubjectKind
from .records_kinds import LinkRole, RecordKindRegistry, Severity, add_months
from .records_lifecycle import Event, EventType, LinkedPerson, Record, View, replay

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
        # A linked person's bar counts while it runs; a ban a decision set on the subject is
        # reported after it ended too, since that it ended matters (实施条例 art 19: a
        # supplier whose ban has run out may take part again).
        ends = [(v.restriction_end(subject_id), v) for v in views if spec.takes(v.record)]
        live = [
            (end, v)
            for end, v in ends
            if end is not None
            and (end > v.as_of or (v.record.subject_id == subject_id and v.record.restriction_end))
        ]
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

_CASE_RECORD_KEYS = {
    "kind",
    "decided",
    "subject",
    "severity",
    "linked",
    "events",
    "restriction_end",
}


def record_from_case(spec: Any, index: int, subject_kind: SubjectKind, subject_id: str) -> Record:
    """A record of a golden case: ``{ kind, decided, subject (default: the case's subject),
    severity (default general), linked = [{ id, role }], events = [{ type, on }],
    restriction_end (the end of the ban its decision set) }``; ValueError naming the key at
    fault (the bounds of the kind are checked with the case's kinds, `restriction_problem`)."""
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
    ban_end = spec.get("restriction_end")
    if ban_end is not None and (
        not isinstance(ban_end, dt.date) or isinstance(ban_end, dt.datetime)
    ):
        raise ValueError("restriction_end: a date")
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
        restriction_end=ban_end,
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


def evidence_of(used: Iterable[tuple[str, View]]) -> tuple[RecordEvidence, ...]:
    """The evidence kept with a result for the (indicator, record view) pairs
    `fill_from_records` used: each record as it was on the evaluation's as_of."""
    return tuple(
        RecordEvidence(
            name,
            v.record.name,
            v.record.kind,
            v.record.basis,
            v.record.decision_date,
            v.state.value,
        )
        for name, v in used
    )
