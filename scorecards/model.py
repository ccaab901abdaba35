"""The domain model: what a scorecard is, what goes into an evaluation and what comes out.

Plain dataclasses, no I/O. The loader (`loader.py`) builds the definition types (frozen) from
TOML; the engine (`engine.py`) consumes them and produces `EvaluationResult`. The wire (proto
messages) and the database (ORM rows) have types of their own and convert at their edges.

The result types (`Subject`, `Line`, `GroupTotal`, `FiredOverride`, `ReasonCode`,
`EvaluationResult`) are slotted but not frozen: about a dozen of them are built per evaluation,
the `__init__` of a frozen dataclass (one `object.__setattr__` per field) costs about three
times as much, and nothing mutates a result once built (docs/benchmarks.md). The generated
code (`codegen.py`) makes them without calling `__init__` at all (`codegen.construct`).

The errors (`InvalidInput`, `ScorecardNotFound`, `InvalidScorecard` and their parts) are in
`errors.py`, which needs none of these types; they are re-exported here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TypeAlias, Union

from .errors import DefinitionProblem as DefinitionProblem
from .errors import DomainError as DomainError
from .errors import FieldViolation as FieldViolation
from .errors import InvalidInput as InvalidInput
from .errors import InvalidScorecard as InvalidScorecard
from .errors import ScorecardNotFound as ScorecardNotFound

# --------------------------------------------------------------------------------------------
# Shared pieces


class ProvenanceTag(str, Enum):
    """How sure we are that a number comes from law (see research/domain.md)."""

    VERIFIED = "verified"
    SECONDARY = "secondary"
    UNVERIFIED = "unverified"
    DESIGN = "design"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a rule, grade or override comes from."""

    tag: ProvenanceTag
    source: str
    article: str = ""


@dataclass(frozen=True, slots=True)
class Title:
    """A bilingual title."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Measure:
    """A consequence that follows from a grade or an override: a linked reward or punishment
    (守信激励 / 失信惩戒) such as priority for purchased services or a ban from tendering.
    Static per scorecard version; the grades and overrides it follows from list it."""

    id: str
    title: Title
    provenance: Provenance


class SubjectKind(str, Enum):
    PERSON = "person"
    ORGANIZATION = "organization"


class IndicatorType(str, Enum):
    COUNT = "count"
    NUMBER = "number"
    PERCENT = "percent"
    FLAG = "flag"
    CHOICE = "choice"
    DATE = "date"


IndicatorValue: TypeAlias = Union[int, Decimal, bool, str, dt.date]
"""A validated indicator value: int (count), Decimal (number, percent), bool (flag),
str (choice code) or date. An absent date is simply missing from the mapping."""


# --------------------------------------------------------------------------------------------
# Conditions (overrides and `required_when`)

CompareOp = Literal["=", "!=", "<", "<=", ">", ">=", "in"]


@dataclass(frozen=True, slots=True)
class Compare:
    """`<ref> <op> <value>`. `ref` is one of:
    - ("indicator", name): an indicator's value;
    - ("sum", names...): the sum of numeric indicators;
    - ("group", group_id): a group's total *before* its floor/ceiling;
    - ("score",): the score after clamping to the scorecard range.
    """

    ref: tuple[str, ...]
    op: CompareOp
    value: IndicatorValue | tuple[IndicatorValue, ...]


@dataclass(frozen=True, slots=True)
class DateTest:
    """A test of a date indicator against `as_of`. An absent date makes it false.

    - `within_years`: date <= as_of < date + N years (29 Feb + N years = 28 Feb).
    - `after_as_of`: date > as_of.
    - `on_or_before_as_of`: date <= as_of.
    """

    indicator: str
    test: Literal["within_years", "after_as_of", "on_or_before_as_of"]
    years: int = 0


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition: TypeAlias = Union[Compare, DateTest, AllOf, AnyOf, Not]


# --------------------------------------------------------------------------------------------
# Scorecard definition


@dataclass(frozen=True, slots=True)
class Indicator:
    name: str
    type: IndicatorType
    title: Title
    required: bool
    default: IndicatorValue | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    choices: tuple[str, ...] = ()
    past: bool = False
    required_when: Condition | None = None
    description: str = ""
    places: int | None = (
        None  # decimal places a number/percent value may have (None: limits.DEFAULT_PLACES)
    )
    # the subject can change it (counts that age out, satisfaction, training): what-if varies
    # only these (scorecards/whatif.py); never an identity or history fact
    actionable: bool = False
    # derived from credit records by the server (records.FromRecords); never submitted
    from_records: Any = None


@dataclass(frozen=True, slots=True)
class Interval:
    """A numeric range; `None` bounds are unbounded. Half-open [lo, hi) unless stated."""

    low: Decimal | None
    high: Decimal | None
    low_inclusive: bool = True
    high_inclusive: bool = False

    def contains(self, x: Decimal) -> bool:
        if self.low is not None and (x < self.low or (x == self.low and not self.low_inclusive)):
            return False
        if self.high is not None and (
            x > self.high or (x == self.high and not self.high_inclusive)
        ):
            return False
        return True

    def __str__(self) -> str:
        lo = "-inf" if self.low is None else str(self.low)
        hi = "+inf" if self.high is None else str(self.high)
        return (
            f"{'[' if self.low_inclusive else '('}{lo}, {hi}{']' if self.high_inclusive else ')'}"
        )


@dataclass(frozen=True, slots=True)
class Band:
    range: Interval
    points: Decimal


class RuleKind(str, Enum):
    PER_UNIT = "per_unit"
    BANDS = "bands"
    FLAG = "flag"
    CHOICE = "choice"
    DIRECT = "direct"
    WEIGHTED = "weighted"


@dataclass(frozen=True, slots=True)
class Rule:
    """One scoring rule on one indicator.

    - per_unit: `points` x value.
    - bands: the band containing the value gives its points.
    - flag: `points` when the flag equals `when` (default true), else 0.
    - choice: `choice_points[code]` (codes not listed score 0).
    - direct: the value itself.
    - weighted: a 0-100 score from `bands`, `choice_points`, `flag_points` (true, false)
      or the value itself, times `weight` percent.

    `kind` names an entry of the rule-kind table (`kinds.py`): a `RuleKind` for the built-in
    kinds, a plugin kind's name otherwise; `params` holds the numbers a plugin's kind reads
    (name, value), in the order its file gives them.
    """

    id: str
    title: Title
    kind: RuleKind | str
    indicator: str
    provenance: Provenance
    group: str | None = None
    points: Decimal | None = None
    when: bool = True
    bands: tuple[Band, ...] = ()
    choice_points: tuple[tuple[str, Decimal], ...] = ()
    flag_points: tuple[Decimal, Decimal] | None = None
    weight: Decimal | None = None
    params: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: Title
    floor: Decimal | None = None
    ceiling: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Grade:
    """A grade band; `min_score` None means override-only (no score reaches it)."""

    code: str
    title: Title
    provenance: Provenance
    min_score: Decimal | None = None
    colour: str = ""
    measures: tuple[Measure, ...] = ()  # what follows from a result with this grade


class EffectKind(str, Enum):
    FORCE = "force"
    CAP = "cap"
    DOWNGRADE = "downgrade"


@dataclass(frozen=True, slots=True)
class Until:
    """The first day an override no longer applies: a date indicator plus N years."""

    indicator: str
    years: int = 0


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    title: Title
    when: Condition
    effect: EffectKind
    provenance: Provenance
    grade: str | None = None  # force / cap
    steps: int = 0  # downgrade
    until: Until | None = None
    measures: tuple[Measure, ...] = ()  # what follows when the override fires


@dataclass(frozen=True, slots=True)
class GoldenCase:
    """A case the scorecard carries with it; `expect` keys as in FORMAT.md."""

    name: str
    indicators: dict[str, object]
    expect: dict[str, object]
    as_of: dt.date | None = None
    subject: dict[str, str] | None = None
    records: tuple[Any, ...] = ()  # records.Record: the credit records the case's subject has


@dataclass(frozen=True, slots=True)
class Scorecard:
    id: str
    version: str
    effective_from: dt.date
    title: Title
    subject_kind: SubjectKind
    indicators: tuple[Indicator, ...]
    rules: tuple[Rule, ...]
    groups: tuple[Group, ...]
    grades: tuple[Grade, ...]  # best first
    overrides: tuple[Override, ...]
    base: Decimal | None = None  # None: eligibility card, no score
    score_min: Decimal | None = None
    score_max: Decimal | None = None
    default_grade: str | None = None
    description: str = ""
    digest: str = ""  # sha256 of the canonical definition, set by the loader
    source_path: str = ""
    cases: tuple[GoldenCase, ...] = field(default=(), compare=False)

    @property
    def has_score(self) -> bool:
        return self.base is not None

    def indicator(self, name: str) -> Indicator | None:
        for ind in self.indicators:
            if ind.name == name:
                return ind
        return None

    def grade(self, code: str) -> Grade | None:
        for g in self.grades:
            if g.code == code:
                return g
        return None


# --------------------------------------------------------------------------------------------
# Evaluation input and result


@dataclass(slots=True)
class Subject:
    kind: SubjectKind
    id: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """Raw input, as received: indicator values not yet validated (any Python value)."""

    scorecard_id: str
    subject: Subject
    indicators: dict[str, object]
    as_of: dt.date | None = None
    version: str | None = None


@dataclass(slots=True)
class Line:
    """One rule's contribution. `points_before_cut` is set only when a group cut it."""

    rule_id: str
    title: Title
    group: str | None
    values: tuple[tuple[str, IndicatorValue | None], ...]
    points: Decimal
    provenance: Provenance
    points_before_cut: Decimal | None = None
    best_points: Decimal | None = None  # best possible points of the rule (None: unbounded)


@dataclass(slots=True)
class GroupTotal:
    id: str
    title: Title
    total_before_cut: Decimal
    total: Decimal
    floor: Decimal | None
    ceiling: Decimal | None


@dataclass(slots=True)
class FiredOverride:
    id: str
    title: Title
    effect: EffectKind
    grade: str | None
    steps: int
    until: dt.date | None
    provenance: Provenance
    measures: tuple[Measure, ...] = ()  # the override's own measures
    # the indicators its condition and end date read (semantics.override_reads), static per
    # scorecard version: the reply cites the credit records behind those derived from records.
    # Not stored in the documents (the card's parts give it back) and not part of equality.
    reads: tuple[str, ...] = field(default=(), compare=False)


@dataclass(slots=True)
class ReasonCode:
    """Why the grade is not better: an override that fired, or a rule that lost points."""

    code: str  # the override or rule id
    kind: Literal["override", "rule"]
    title: Title
    points_lost: Decimal | None = None  # rules only


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """A credit record an indicator derived from records used, as it was on as_of."""

    indicator: str
    record: str  # records/{id}
    kind: str
    basis: str
    decision_date: dt.date
    state: str


@dataclass(slots=True)
class EvaluationResult:
    scorecard_id: str
    version: str
    digest: str
    subject: Subject
    as_of: dt.date
    indicators: dict[str, IndicatorValue]  # the validated values used (defaults filled)
    score: Decimal | None
    score_grade: str | None  # the grade the score alone gives
    grade: Grade
    lines: tuple[Line, ...]
    groups: tuple[GroupTotal, ...]
    overrides: tuple[FiredOverride, ...]
    until: dt.date | None  # when the deciding override ends (None: no end, or no override)
    reasons: tuple[ReasonCode, ...]
    points_to_next_grade: Decimal | None
    next_grade: str | None  # the grade the result would have with `points_to_next_grade` more
    # base + group totals + ungrouped points = score_before_cut (or score, when no cut): the
    # explanation adds up by hand (SCORECARDS.md §1). None on an eligibility card.
    base: Decimal | None = None
    # the score before the scorecard's [min, max] cut it; None when no cut changed it
    score_before_cut: Decimal | None = None
    # the credit records the indicators derived from records used (issue 10)
    evidence: tuple[RecordEvidence, ...] = ()

    @property
    def measures(self) -> tuple[Measure, ...]:
        """The measures that apply: the grade's, then each fired override's, in definition
        order, each once (a measure may follow from the grade and from an override)."""
        seen: dict[str, Measure] = {m.id: m for m in self.grade.measures}
        for o in self.overrides:
            for m in o.measures:
                seen.setdefault(m.id, m)
        return tuple(seen.values())
