"""The vocabulary every part of the conversion shares: resource-name collections, the domain
enums' proto values, the EvaluationView values, and filling the small messages (dates,
timestamps, titles, provenances, indicator values, measures, grades) from domain values.

Wire conventions (see protos/sector_credit/v1/common.proto and the package docstring).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from google.protobuf import timestamp_pb2
from sector_credit.scorecards.model import (
    EffectKind,
    Grade,
    IndicatorType,
    Measure,
    Provenance,
    ProvenanceTag,
    RuleKind,
    SubjectKind,
    Title,
)
from sector_credit.scorecards.text import decimal_text
from sector_credit.v1 import (
    common_pb2,
    credit_evaluation_service_pb2,
    evaluation_pb2,
    scorecard_pb2,
)

SCORECARD_COLLECTION = "scorecards/"
EVALUATION_COLLECTION = "evaluations/"

# Domain enums <-> proto enums, by member name; a domain member with no proto value fails
# at import, not on the first request that meets it.
PROVENANCE_TAG = {
    t: common_pb2.ProvenanceTag.Value(f"PROVENANCE_TAG_{t.name}") for t in ProvenanceTag
}
SUBJECT_KIND = {k: common_pb2.SubjectKind.Value(f"SUBJECT_KIND_{k.name}") for k in SubjectKind}
SUBJECT_KIND_FROM_PROTO = {v: k for k, v in SUBJECT_KIND.items()}
INDICATOR_TYPE = {
    t: scorecard_pb2.IndicatorType.Value(f"INDICATOR_TYPE_{t.name}") for t in IndicatorType
}
# keyed by RuleKind | str: a rule of a plugin kind looks its kind (a str) up and finds nothing
RULE_KIND: dict[RuleKind | str, scorecard_pb2.RuleKind.ValueType] = {
    k: scorecard_pb2.RuleKind.Value(f"RULE_KIND_{k.name}") for k in RuleKind
}
EFFECT = {e: scorecard_pb2.OverrideEffect.Value(f"OVERRIDE_EFFECT_{e.name}") for e in EffectKind}
REASON_KIND = {
    "override": evaluation_pb2.REASON_KIND_OVERRIDE,
    "rule": evaluation_pb2.REASON_KIND_RULE,
}

# EvaluationView values a request may give (unspecified is FULL); only BASIC drops the lines
VIEWS = frozenset(credit_evaluation_service_pb2.EvaluationView.values())
_BASIC = credit_evaluation_service_pb2.EVALUATION_VIEW_BASIC
VIEW_PROBLEM = "must be EVALUATION_VIEW_BASIC, EVALUATION_VIEW_FULL or unspecified (FULL)"


def view_problem(view: int) -> str | None:
    """Why an EvaluationView value is refused (a number the enum does not define), or None."""
    return None if view in VIEWS else VIEW_PROBLEM


def full_view(view: int) -> bool:
    """Whether a reply in this EvaluationView carries the lines (all but BASIC do)."""
    return view != _BASIC


# --------------------------------------------------------------------------------------------
# Scalars

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def fill_date(target: common_pb2.Date, value: dt.date) -> None:
    target.year = value.year
    target.month = value.month
    target.day = value.day


def date_to_proto(value: dt.date) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


def fill_timestamp(target: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    """Timestamp.FromDatetime, without its struct_time round trip (4x faster)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - EPOCH
    target.seconds = since.days * 86400 + since.seconds
    target.nanos = since.microseconds * 1000


def fill_title(target: common_pb2.Title, title: Title) -> None:
    target.zh = title.zh
    target.en = title.en


def fill_provenance(target: common_pb2.Provenance, provenance: Provenance) -> None:
    target.tag = PROVENANCE_TAG[provenance.tag]
    target.source = provenance.source
    target.article = provenance.article


# --------------------------------------------------------------------------------------------
# Indicator values


def fill_value(target: common_pb2.IndicatorValue, value: object) -> None:
    """Set the IndicatorValue case that suits a validated domain value (None: leave unset)."""
    if isinstance(value, bool):  # before int: a bool is an int
        target.flag_value = value
    elif isinstance(value, Decimal):
        target.decimal_value = decimal_text(value)
    elif isinstance(value, int):
        target.count_value = value
    elif isinstance(value, str):
        target.choice_value = value
    elif isinstance(value, dt.date):
        fill_date(target.date_value, value)
    elif value is not None:
        raise TypeError(f"not an indicator value: {value!r}")


def indicator_value_to_proto(value: object) -> common_pb2.IndicatorValue:
    message = common_pb2.IndicatorValue()
    fill_value(message, value)
    return message


# --------------------------------------------------------------------------------------------
# Measures and grades (of a scorecard, and of the evaluations it grades)


def fill_measures(target: Any, measures: tuple[Measure, ...]) -> None:
    """A grade's or an override's measures into its repeated `measures` field."""
    for measure in measures:
        wire = target.add(id=measure.id)
        fill_title(wire.title, measure.title)
        fill_provenance(wire.provenance, measure.provenance)


def fill_grade(target: scorecard_pb2.Grade, grade: Grade) -> None:
    target.code = grade.code
    fill_title(target.title, grade.title)
    if grade.min_score is None:
        target.override_only = True
    else:
        target.min_score = decimal_text(grade.min_score)
    target.colour = grade.colour
    fill_provenance(target.provenance, grade.provenance)
    fill_measures(target.measures, grade.measures)
