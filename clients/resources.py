"""What the client returns: small frozen dataclasses read from the wire messages.

Decimals travel as strings and come back as `Decimal` (never float); dates as `datetime.date`;
enums as their lower-case names (`"person"`, `"force"`, `"verified"`). Each resource keeps
the message it was read from in `raw`, for fields a caller needs that these types leave out.
`to_dict()` gives a JSON-ready dict (decimals and dates as strings), as `credit --json` prints.

Over 500 lines for a reason: one small type per message of the API, each beside its reader
from the wire; split by message they would only scatter what a client author reads as one list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from google.protobuf.message import Message
from sector_credit.scorecards.text import decimal_text
from sector_credit.v1 import (
    common_pb2,
    credit_evaluation_service_pb2,
    evaluation_pb2,
    scorecard_pb2,
    whatif_pb2,
)

IndicatorPythonValue = int | Decimal | bool | str | dt.date | None
"""An indicator value as Python sees it: count int, number Decimal, flag bool, choice str,
date, or None (not set / an absent date)."""


# --------------------------------------------------------------------------------------------
# Wire scalars


def decimal_or_none(text: str) -> Decimal | None:
    """A wire decimal string as Decimal; the empty string ("no value") is None."""
    return Decimal(text) if text else None


def date_or_none(date: common_pb2.Date) -> dt.date | None:
    """A wire Date; the all-zero Date ("no date") is None."""
    if not (date.year or date.month or date.day):
        return None
    return dt.date(date.year, date.month, date.day)


def value_from_proto(value: common_pb2.IndicatorValue) -> IndicatorPythonValue:
    """The Python value of one wire IndicatorValue."""
    case = value.WhichOneof("value")
    if case == "count_value":
        return value.count_value
    if case == "decimal_value":
        return Decimal(value.decimal_value)
    if case == "number_value":
        return Decimal(repr(value.number_value))
    if case == "flag_value":
        return value.flag_value
    if case == "choice_value":
        return value.choice_value
    if case == "date_value":
        return date_or_none(value.date_value)
    return None


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    """`SUBJECT_KIND_PERSON` -> `person`; an unknown number -> its digits."""
    try:
        return str(enum.Name(number)).removeprefix(prefix).lower()
    except ValueError:
        return str(number)


# --------------------------------------------------------------------------------------------
# Building blocks


@dataclasses.dataclass(frozen=True, slots=True)
class Title:
    zh: str
    en: str

    def __str__(self) -> str:
        return " / ".join(t for t in (self.zh, self.en) if t)

    @classmethod
    def from_proto(cls, m: common_pb2.Title) -> Title:
        key = (m.zh, m.en)
        title = _TITLES.get(key)
        if title is None:
            title = _TITLES.setdefault(key, cls(*key)) if len(_TITLES) < _INTERNED else cls(*key)
        return title


@dataclasses.dataclass(frozen=True, slots=True)
class Provenance:
    tag: str  # verified | secondary | unverified | design
    source: str
    article: str

    def __str__(self) -> str:
        where = " ".join(t for t in (self.source, self.article) if t)
        return f"{self.tag}: {where}" if where else self.tag

    @classmethod
    def from_proto(cls, m: common_pb2.Provenance) -> Provenance:
        key = (m.tag, m.source, m.article)
        found = _PROVENANCES.get(key)
        if found is None:
            found = cls(
                _enum_name(common_pb2.ProvenanceTag, m.tag, "PROVENANCE_TAG_"), m.source, m.article
            )
            if len(_PROVENANCES) < _INTERNED:
                _PROVENANCES[key] = found
        return found


# Titles and provenance repeat on every evaluation of a scorecard: one immutable object each,
# so reading a batch builds few objects. Bounded, in case a server sends endless variety.
_INTERNED = 4096
_TITLES: dict[tuple[str, str], Title] = {}
_PROVENANCES: dict[tuple[int, str, str], Provenance] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # person | organization
    id: str
    display_name: str = ""

    @classmethod
    def from_proto(cls, m: common_pb2.Subject) -> Subject:
        return cls(
            _enum_name(common_pb2.SubjectKind, m.kind, "SUBJECT_KIND_"), m.id, m.display_name
        )


@dataclasses.dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one field of a request, e.g. `indicators.bonus_points`."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


@dataclasses.dataclass(frozen=True, slots=True)
class Measure:
    """A consequence that follows from a grade or an override: a linked reward or punishment
    (守信激励 / 失信惩戒), with the published rule it comes from."""

    id: str
    title: Title
    provenance: Provenance

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Measure) -> Measure:
        return cls(m.id, Title.from_proto(m.title), Provenance.from_proto(m.provenance))


def _measures(repeated: Any) -> tuple[Measure, ...]:
    return tuple(Measure.from_proto(x) for x in repeated)


@dataclasses.dataclass(frozen=True, slots=True)
class AppliedMeasure:
    """A measure that applies to an evaluation, and what it follows from: `grade` (the
    final grade's code in `source`) or `override` (the fired override's id)."""

    measure: Measure
    follows_from: str  # grade | override
    source: str  # the grade code or the override id


@dataclasses.dataclass(frozen=True, slots=True)
class Grade:
    code: str
    title: Title
    min_score: Decimal | None  # None: override-only
    colour: str
    override_only: bool
    provenance: Provenance
    measures: tuple[Measure, ...] = ()  # what follows from a result with this grade

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Grade) -> Grade:
        return cls(
            m.code,
            Title.from_proto(m.title),
            decimal_or_none(m.min_score),
            m.colour,
            m.override_only,
            Provenance.from_proto(m.provenance),
            _measures(m.measures),
        )


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One rule's contribution to the score."""

    rule_id: str
    title: Title
    group: str
    values: Mapping[str, IndicatorPythonValue]  # the indicator values the rule used, in order
    points: Decimal
    points_before_cut: Decimal | None  # set only when a group floor or ceiling cut the line
    best_points: Decimal | None  # None: unbounded
    provenance: Provenance
    # the credit records (`records/{id}`) behind the indicators derived from records it read;
    # their basis is in Evaluation.record_evidence
    records: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, m: evaluation_pb2.Line) -> Line:
        return cls(
            m.rule_id,
            Title.from_proto(m.title),
            m.group,
            {e.name: value_from_proto(e.value) for e in m.values},
            Decimal(m.points or "0"),
            Decimal(m.points_before_cut) if m.HasField("points_before_cut") else None,
            decimal_or_none(m.best_points),
            Provenance.from_proto(m.provenance),
            tuple(m.records),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GroupTotal:
    group_id: str
    title: Title
    total_before_cut: Decimal
    total: Decimal
    floor: Decimal | None
    ceiling: Decimal | None

    @classmethod
    def from_proto(cls, m: evaluation_pb2.GroupTotal) -> GroupTotal:
        return cls(
            m.group_id,
            Title.from_proto(m.title),
            Decimal(m.total_before_cut or "0"),
            Decimal(m.total or "0"),
            decimal_or_none(m.floor),
            decimal_or_none(m.ceiling),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class RecordEvidence:
    """A credit record an indicator's value was derived from, as it was on as_of."""

    indicator: str
    record: str  # records/{id}
    kind: str
    basis: str
    decision_date: dt.date | None
    state: str

    @classmethod
    def from_proto(cls, m: evaluation_pb2.RecordEvidence) -> RecordEvidence:
        return cls(m.indicator, m.record, m.kind, m.basis, date_or_none(m.decision_date), m.state)


@dataclasses.dataclass(frozen=True, slots=True)
class FiredOverride:
    """An override (veto, 一票否决) that fired."""

    override_id: str
    title: Title
    effect: str  # force | cap | downgrade
    grade: str  # force and cap: the grade code
    steps: int  # downgrade: how many grades lower
    until: dt.date | None  # the first day it no longer applies; None: while the condition holds
    provenance: Provenance
    measures: tuple[Measure, ...] = ()  # what follows from this override
    records: tuple[str, ...] = ()  # the credit records behind the indicators it read

    @property
    def effect_text(self) -> str:
        """`force B`, `cap A`, `downgrade 1`."""
        return (
            f"{self.effect} {self.steps}"
            if self.effect == "downgrade"
            else f"{self.effect} {self.grade}"
        )

    @classmethod
    def from_proto(cls, m: evaluation_pb2.FiredOverride) -> FiredOverride:
        return cls(
            m.override_id,
            Title.from_proto(m.title),
            _enum_name(scorecard_pb2.OverrideEffect, m.effect, "OVERRIDE_EFFECT_"),
            m.grade,
            m.steps,
            date_or_none(m.until),
            Provenance.from_proto(m.provenance),
            _measures(m.measures),
            tuple(m.records),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Reason:
    """One reason why the grade is not better: an override, or a rule that lost points."""

    code: str
    kind: str  # override | rule
    title: Title
    points_lost: Decimal | None  # rules only

    @classmethod
    def from_proto(cls, m: evaluation_pb2.ReasonCode) -> Reason:
        return cls(
            m.code,
            _enum_name(evaluation_pb2.ReasonKind, m.kind, "REASON_KIND_"),
            Title.from_proto(m.title),
            decimal_or_none(m.points_lost),
        )


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One subject graded against one scorecard version, with the explanation of every point.

    The explanation (`indicators`, `lines`, `group_totals`, `overrides`, `reasons`) is read
    from the wire message the first time it is used: a bulk run that only needs grades does
    not pay for building thousands of lines.
    """

    name: str  # `evaluations/{id}`; empty for a validate_only check
    scorecard_id: str
    scorecard_version: str
    scorecard_digest: str
    subject: Subject
    as_of: dt.date | None
    score: Decimal | None  # None: an eligibility scorecard, which has no score
    # base + group totals + ungrouped points = score_before_cut, or the score when no cut
    base: Decimal | None
    score_before_cut: Decimal | None  # None: the score range did not cut the score
    score_grade: str  # the grade the score alone gives
    grade: Grade  # the final grade, after overrides
    until: dt.date | None  # the first day the deciding override no longer applies
    points_to_next_grade: Decimal | None
    next_grade: str
    create_time: dt.datetime | None  # aware, UTC
    request_id: str
    caller: str
    unreadable: str  # set when the stored row cannot be shown in full: why (no explanation then)
    # the server masked the subject's id and name: the caller's grant may not see them whole
    subject_masked: bool
    raw: evaluation_pb2.Evaluation = dataclasses.field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.name.removeprefix("evaluations/")

    @functools.cached_property
    def indicators(self) -> Mapping[str, IndicatorPythonValue]:
        """The validated indicator values used, defaults filled in, by name."""
        return {k: value_from_proto(v) for k, v in sorted(self.raw.indicators.items())}

    @functools.cached_property
    def lines(self) -> tuple[Line, ...]:
        """One line per rule, in the scorecard's rule order."""
        return tuple(Line.from_proto(x) for x in self.raw.lines)

    @functools.cached_property
    def group_totals(self) -> tuple[GroupTotal, ...]:
        return tuple(GroupTotal.from_proto(x) for x in self.raw.group_totals)

    @functools.cached_property
    def overrides(self) -> tuple[FiredOverride, ...]:
        """Every override that fired, in definition order."""
        return tuple(FiredOverride.from_proto(x) for x in self.raw.overrides)

    @functools.cached_property
    def record_evidence(self) -> tuple[RecordEvidence, ...]:
        """The credit records the indicators derived from records were read from, as they
        were on as_of (the lines and overrides cite them by name)."""
        return tuple(RecordEvidence.from_proto(x) for x in self.raw.record_evidence)

    def evidence_of(self, record: str) -> RecordEvidence | None:
        """The evidence of one cited record (`records/{id}`), None when not cited."""
        return next((e for e in self.record_evidence if e.record == record), None)

    @functools.cached_property
    def reasons(self) -> tuple[Reason, ...]:
        """Why the grade is not better: the overrides first, then up to 4 rules."""
        return tuple(Reason.from_proto(x) for x in self.raw.reasons)

    @functools.cached_property
    def measures(self) -> tuple[AppliedMeasure, ...]:
        """The measures that apply: the grade's, then each fired override's, in the
        scorecard's order (a measure that follows from both is listed for each)."""
        applied = [AppliedMeasure(m, "grade", self.grade.code) for m in self.grade.measures]
        applied += [
            AppliedMeasure(m, "override", o.override_id) for o in self.overrides for m in o.measures
        ]
        return tuple(applied)

    @classmethod
    def from_proto(cls, m: evaluation_pb2.Evaluation) -> Evaluation:
        return cls(
            name=m.name,
            scorecard_id=m.scorecard_id,
            scorecard_version=m.scorecard_version,
            scorecard_digest=m.scorecard_digest,
            subject=Subject.from_proto(m.subject),
            as_of=date_or_none(m.as_of),
            score=decimal_or_none(m.score),
            base=decimal_or_none(m.base),
            score_before_cut=(
                Decimal(m.score_before_cut) if m.HasField("score_before_cut") else None
            ),
            score_grade=m.score_grade,
            grade=Grade.from_proto(m.grade),
            until=date_or_none(m.until),
            points_to_next_grade=(
                Decimal(m.points_to_next_grade) if m.HasField("points_to_next_grade") else None
            ),
            next_grade=m.next_grade,
            create_time=(
                m.create_time.ToDatetime(tzinfo=dt.UTC) if m.HasField("create_time") else None
            ),
            request_id=m.request_id,
            caller=m.caller,
            unreadable=m.unreadable,
            subject_masked=m.subject_masked,
            raw=m,
        )

    def to_dict(self) -> dict[str, Any]:
        data = cast(dict[str, Any], to_jsonable(self))
        for name in ("indicators", "lines", "group_totals", "overrides", "reasons"):
            data[name] = to_jsonable(getattr(self, name))
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class EvaluationPage:
    """One page of ListEvaluations: newest first, and the token of the next page ("": last)."""

    evaluations: tuple[Evaluation, ...]
    next_page_token: str


# --------------------------------------------------------------------------------------------
# Scorecard


@dataclasses.dataclass(frozen=True, slots=True)
class ScorecardVersion:
    version: str
    effective_from: dt.date | None
    digest: str


@dataclasses.dataclass(frozen=True, slots=True)
class Indicator:
    name: str
    type: str  # count | number | percent | flag | choice | date
    title: Title
    description: str
    required: bool
    default: IndicatorPythonValue  # None: no default
    minimum: Decimal | None
    maximum: Decimal | None
    choices: tuple[str, ...]
    past: bool  # a date that must not be after as_of
    required_when: str  # the condition as text; "" when not conditional
    actionable: bool = False  # the subject can change it; what-if varies only these
    # derived by the service from these kinds of credit records, never submitted (none: a
    # submitted indicator), and how, as the scorecard writes it (`count within 3 years`)
    derived_from: tuple[str, ...] = ()
    derivation: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in ("count", "number", "percent")

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Indicator) -> Indicator:
        return cls(
            m.name,
            _enum_name(scorecard_pb2.IndicatorType, m.type, "INDICATOR_TYPE_"),
            Title.from_proto(m.title),
            m.description,
            m.required,
            value_from_proto(m.default_value) if m.HasField("default_value") else None,
            decimal_or_none(m.minimum),
            decimal_or_none(m.maximum),
            tuple(m.choices),
            m.past,
            m.required_when,
            m.actionable,
            tuple(m.from_records.kinds),
            m.from_records.text,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: Title
    floor: Decimal | None
    ceiling: Decimal | None


@dataclasses.dataclass(frozen=True, slots=True)
class Band:
    range: str  # interval notation, e.g. `[85, 95)`
    points: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: Title
    kind: str  # per_unit | bands | flag | choice | direct | weighted, or a plugin's kind
    indicator: str
    group: str
    provenance: Provenance
    points: Decimal | None  # per_unit and flag rules
    when: bool  # flag rules: the flag value that earns the points
    bands: tuple[Band, ...]
    choice_points: tuple[tuple[str, Decimal], ...]
    flag_true_points: Decimal | None
    flag_false_points: Decimal | None
    weight: Decimal | None  # weighted rules, in percent
    description: str  # how the rule computes its points, as its kind describes it (server side)

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Rule) -> Rule:
        return cls(
            m.id,
            Title.from_proto(m.title),
            m.kind_name or _enum_name(scorecard_pb2.RuleKind, m.kind, "RULE_KIND_"),
            m.indicator,
            m.group,
            Provenance.from_proto(m.provenance),
            decimal_or_none(m.points),
            m.when,
            tuple(Band(b.range, Decimal(b.points)) for b in m.bands),
            tuple((c.choice, Decimal(c.points)) for c in m.choice_points),
            decimal_or_none(m.flag_true_points),
            decimal_or_none(m.flag_false_points),
            decimal_or_none(m.weight),
            m.description,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Override:
    id: str
    title: Title
    condition: str  # readable text, e.g. `group.deductions <= -20`
    effect: str  # force | cap | downgrade
    grade: str
    steps: int
    until: str  # readable text, e.g. `exam_misconduct_date + 5 years`; "" when none
    provenance: Provenance
    measures: tuple[Measure, ...] = ()  # what follows when the override fires

    @property
    def effect_text(self) -> str:
        return (
            f"{self.effect} {self.steps}"
            if self.effect == "downgrade"
            else f"{self.effect} {self.grade}"
        )

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Override) -> Override:
        return cls(
            m.id,
            Title.from_proto(m.title),
            m.condition,
            _enum_name(scorecard_pb2.OverrideEffect, m.effect, "OVERRIDE_EFFECT_"),
            m.grade,
            m.steps,
            m.until,
            Provenance.from_proto(m.provenance),
            _measures(m.measures),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Scorecard:
    """One version of a scorecard. The BASIC view (ListScorecards) leaves the definition
    (base … overrides) empty; GetScorecard returns it whole."""

    name: str
    scorecard_id: str
    version: str
    effective_from: dt.date | None
    digest: str
    title: Title
    subject_kind: str  # person | organization
    description: str
    versions: tuple[ScorecardVersion, ...]
    base: Decimal | None
    score_min: Decimal | None
    score_max: Decimal | None
    default_grade: str
    indicators: tuple[Indicator, ...]
    groups: tuple[Group, ...]
    rules: tuple[Rule, ...]
    grades: tuple[Grade, ...]
    overrides: tuple[Override, ...]
    raw: scorecard_pb2.Scorecard = dataclasses.field(repr=False, compare=False)

    def indicator(self, name: str) -> Indicator | None:
        return next((i for i in self.indicators if i.name == name), None)

    @classmethod
    def from_proto(cls, m: scorecard_pb2.Scorecard) -> Scorecard:
        return cls(
            name=m.name,
            scorecard_id=m.scorecard_id,
            version=m.version,
            effective_from=date_or_none(m.effective_from),
            digest=m.digest,
            title=Title.from_proto(m.title),
            subject_kind=_enum_name(common_pb2.SubjectKind, m.subject_kind, "SUBJECT_KIND_"),
            description=m.description,
            versions=tuple(
                ScorecardVersion(v.version, date_or_none(v.effective_from), v.digest)
                for v in m.versions
            ),
            base=decimal_or_none(m.base),
            score_min=decimal_or_none(m.score_min),
            score_max=decimal_or_none(m.score_max),
            default_grade=m.default_grade,
            indicators=tuple(Indicator.from_proto(x) for x in m.indicators),
            groups=tuple(
                Group(
                    g.id,
                    Title.from_proto(g.title),
                    decimal_or_none(g.floor),
                    decimal_or_none(g.ceiling),
                )
                for g in m.groups
            ),
            rules=tuple(Rule.from_proto(x) for x in m.rules),
            grades=tuple(Grade.from_proto(x) for x in m.grades),
            overrides=tuple(Override.from_proto(x) for x in m.overrides),
            raw=m,
        )

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], to_jsonable(self))


# --------------------------------------------------------------------------------------------
# JSON


def to_jsonable(value: object) -> object:
    """Plain JSON data for a resource: decimals as exact strings, dates in ISO 8601, the
    wire message (`raw`) left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Message):
        raise TypeError("wire messages are not part of the JSON form")
    return value


# --------------------------------------------------------------------------------------------
# The query audit (AccessLogService)


@dataclasses.dataclass(frozen=True, slots=True)
class AccessRecord:
    """One call that touched a subject (or was refused), as the service recorded it."""

    name: str  # accessRecords/{id}
    create_time: dt.datetime  # aware, UTC
    caller: str
    proven_by: str  # mtls | api_key | jwt | local; "" when none was proven
    key_id: str
    method: str
    subject_id: str
    scorecard: str
    purpose: str
    purpose_note: str
    evaluations_returned: int
    request_id: str
    code: str  # the gRPC status code name
    reason: str

    @classmethod
    def from_proto(cls, m: Any) -> AccessRecord:
        return cls(
            name=m.name,
            create_time=m.create_time.ToDatetime(tzinfo=dt.UTC),
            caller=m.caller,
            proven_by=m.proven_by,
            key_id=m.key_id,
            method=m.method,
            subject_id=m.subject_id,
            scorecard=m.scorecard,
            purpose=m.purpose,
            purpose_note=m.purpose_note,
            evaluations_returned=m.evaluations_returned,
            request_id=m.request_id,
            code=m.code,
            reason=m.reason,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class AccessRecordPage:
    """One page of ListAccessRecords: newest first, and the next page's token ("": last)."""

    access_records: tuple[AccessRecord, ...]
    next_page_token: str


@dataclasses.dataclass(frozen=True, slots=True)
class SubjectAccess:
    """Who looked at a subject, why and on which day: all the subject may learn."""

    caller: str
    purpose: str
    date: dt.date

    @classmethod
    def from_proto(cls, m: Any) -> SubjectAccess:
        return cls(
            caller=m.caller, purpose=m.purpose, date=dt.date(m.date.year, m.date.month, m.date.day)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SubjectAccessPage:
    """One page of ListSubjectAccesses: newest first, and the next page's token."""

    accesses: tuple[SubjectAccess, ...]
    next_page_token: str


# What-if (ExploreEvaluation, docs/whatif.md)


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorChange:
    indicator: str
    before: IndicatorPythonValue
    after: IndicatorPythonValue
    distance: Decimal

    @classmethod
    def from_proto(cls, m: whatif_pb2.IndicatorChange) -> IndicatorChange:
        return cls(
            m.indicator, value_from_proto(m.before), value_from_proto(m.after), Decimal(m.distance)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeProposal:
    """Changes of actionable indicators and the grade (and score) the evaluation gives with them."""

    changes: tuple[IndicatorChange, ...]
    grade: str
    score: Decimal | None
    distance: Decimal

    @classmethod
    def from_proto(cls, m: whatif_pb2.ChangeProposal) -> ChangeProposal:
        return cls(
            tuple(IndicatorChange.from_proto(c) for c in m.changes),
            m.grade,
            decimal_or_none(m.score),
            Decimal(m.distance),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GradeTarget:
    """A better grade and its smallest proposals, best first (none: not reachable)."""

    grade: Grade
    proposals: tuple[ChangeProposal, ...]

    @classmethod
    def from_proto(cls, m: whatif_pb2.GradeTarget) -> GradeTarget:
        return cls(
            Grade.from_proto(m.grade), tuple(ChangeProposal.from_proto(p) for p in m.proposals)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class OverrideEnd:
    """A fired override's end and the grade the same indicators give on that day."""

    override_id: str
    title: Title
    until: dt.date | None
    grade: str
    score: Decimal | None

    @classmethod
    def from_proto(cls, m: whatif_pb2.OverrideEnd) -> OverrideEnd:
        return cls(
            m.override_id,
            Title.from_proto(m.title),
            date_or_none(m.until),
            m.grade,
            decimal_or_none(m.score),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Exploration:
    """What would change an evaluation's grade; never stored."""

    evaluation: Evaluation
    actionable: tuple[str, ...]
    targets: tuple[GradeTarget, ...]
    override_ends: tuple[OverrideEnd, ...]

    @classmethod
    def from_proto(cls, m: credit_evaluation_service_pb2.ExploreEvaluationResponse) -> Exploration:
        return cls(
            Evaluation.from_proto(m.evaluation),
            tuple(m.actionable_indicators),
            tuple(GradeTarget.from_proto(t) for t in m.targets),
            tuple(OverrideEnd.from_proto(e) for e in m.override_ends),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation.to_dict(),
            "actionable": list(self.actionable),
            "targets": to_jsonable(self.targets),
            "override_ends": to_jsonable(self.override_ends),
        }
