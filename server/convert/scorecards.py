"""Scorecards -> wire: the Scorecard resource of GetScorecard and ListScorecards (not on the
hot path), with the implied defaults and bounds of SCORECARDS.md §1 shown."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sector_credit.scorecards import kinds, limits
from sector_credit.scorecards.loader import accepted_bounds
from sector_credit.scorecards.model import Indicator, IndicatorType, Scorecard
from sector_credit.scorecards.records import FromRecords, Measure
from sector_credit.scorecards.text import condition_text, decimal_text, until_text
from sector_credit.v1 import record_pb2, scorecard_pb2

from .wire import (
    EFFECT,
    INDICATOR_TYPE,
    RULE_KIND,
    SCORECARD_COLLECTION,
    SUBJECT_KIND,
    fill_date,
    fill_grade,
    fill_measures,
    fill_provenance,
    fill_title,
    fill_value,
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def _indicator_to_proto(target: scorecard_pb2.Indicator, indicator: Indicator) -> None:
    kind = indicator.type
    target.name = indicator.name
    target.type = INDICATOR_TYPE[kind]
    fill_title(target.title, indicator.title)
    target.description = indicator.description
    target.required = indicator.required
    # The implied defaults and bounds of SCORECARDS.md §1 are shown, not left to be known.
    default: object = indicator.default
    if default is None and not indicator.required and indicator.required_when is None:
        default = {IndicatorType.COUNT: 0, IndicatorType.FLAG: False}.get(kind)
    elif type(default) is int and kind in (IndicatorType.NUMBER, IndicatorType.PERCENT):
        default = Decimal(default)  # a TOML `default = 0` on a number is still a decimal
    if default is not None:
        fill_value(target.default_value, default)
    minimum, maximum = indicator.minimum, indicator.maximum
    if kind is IndicatorType.PERCENT:
        minimum = _ZERO if minimum is None else minimum
        maximum = _HUNDRED if maximum is None else maximum
    elif kind is IndicatorType.COUNT:
        # the bounds a count is held to: at most limits.MAX_COUNT whatever the card declares
        minimum, maximum = accepted_bounds(indicator)
    target.minimum = decimal_text(minimum)
    target.maximum = decimal_text(maximum)
    target.choices.extend(indicator.choices)
    target.past = indicator.past
    if kind in (IndicatorType.NUMBER, IndicatorType.PERCENT):
        target.places = limits.DEFAULT_PLACES if indicator.places is None else indicator.places
    if indicator.required_when is not None:
        target.required_when = condition_text(indicator.required_when)
    target.actionable = indicator.actionable
    if indicator.from_records is not None:
        _from_records_to_proto(target.from_records, indicator.from_records)


_MEASURE = {m: scorecard_pb2.RecordMeasure.Value(f"RECORD_MEASURE_{m.name}") for m in Measure}


def _from_records_to_proto(target: scorecard_pb2.IndicatorFromRecords, spec: FromRecords) -> None:
    """How the service derives the indicator from credit records: what a caller needs to
    check an evaluation's derived values by hand against the records it cites."""
    target.kinds.extend(spec.kinds)
    target.measure = _MEASURE[spec.measure]
    target.years = spec.years
    if spec.severity is not None:
        target.severity = record_pb2.Severity.Value(f"SEVERITY_{spec.severity.name}")
    target.text = spec.text


def scorecard_to_proto(
    card: Scorecard, versions: Iterable[Scorecard] = (), *, full: bool = True
) -> scorecard_pb2.Scorecard:
    """The Scorecard resource for one version; `versions` are all its versions (any order).

    `full=False` is the BASIC view: identity, title and versions, without the definition.
    """
    message = scorecard_pb2.Scorecard(
        name=SCORECARD_COLLECTION + card.id,
        scorecard_id=card.id,
        version=card.version,
        digest=card.digest,
        subject_kind=SUBJECT_KIND[card.subject_kind],
        description=card.description,
    )
    fill_date(message.effective_from, card.effective_from)
    fill_title(message.title, card.title)
    for version in sorted(versions or (card,), key=lambda v: (v.effective_from, v.version)):
        wire_version = message.versions.add(version=version.version, digest=version.digest)
        fill_date(wire_version.effective_from, version.effective_from)
    if not full:
        return message

    message.base = decimal_text(card.base)
    message.score_min = decimal_text(card.score_min)
    message.score_max = decimal_text(card.score_max)
    message.default_grade = card.default_grade or ""
    for indicator in card.indicators:
        _indicator_to_proto(message.indicators.add(), indicator)
    for group in card.groups:
        wire_group = message.groups.add(
            id=group.id, floor=decimal_text(group.floor), ceiling=decimal_text(group.ceiling)
        )
        fill_title(wire_group.title, group.title)
    for rule in card.rules:
        wire_rule = message.rules.add(
            id=rule.id,
            # a kind a plugin adds has no enum value: UNSPECIFIED, named by kind_name
            kind=RULE_KIND.get(rule.kind, scorecard_pb2.RULE_KIND_UNSPECIFIED),
            kind_name=str(getattr(rule.kind, "value", rule.kind)),
            description=kinds.get(rule.kind).describe(rule),
            indicator=rule.indicator,
            group=rule.group or "",
            points=decimal_text(rule.points),
            when=rule.when and "when" in kinds.get(rule.kind).keys,
            weight=decimal_text(rule.weight),
        )
        fill_title(wire_rule.title, rule.title)
        fill_provenance(wire_rule.provenance, rule.provenance)
        for band in rule.bands:
            wire_rule.bands.add(range=str(band.range), points=decimal_text(band.points))
        for choice, points in rule.choice_points:
            wire_rule.choice_points.add(choice=choice, points=decimal_text(points))
        if rule.flag_points is not None:
            wire_rule.flag_true_points = decimal_text(rule.flag_points[0])
            wire_rule.flag_false_points = decimal_text(rule.flag_points[1])
    for grade in card.grades:
        fill_grade(message.grades.add(), grade)
    for override in card.overrides:
        wire_override = message.overrides.add(
            id=override.id,
            condition=condition_text(override.when),
            effect=EFFECT[override.effect],
            grade=override.grade or "",
            steps=override.steps,
            until=until_text(override.until),
        )
        fill_title(wire_override.title, override.title)
        fill_provenance(wire_override.provenance, override.provenance)
        fill_measures(wire_override.measures, override.measures)
    return message
