"""Requests -> domain: the engine's input for an EvaluateRequest, resource names, dates and
the checks on strings the engine never sees.

Input decoding (`evaluation_input_from_proto`) only turns wire values into Python values; the
engine validates them. What cannot be represented as a Python value at all (month 13, a
`decimal_value` that is not a number, an unknown subject kind) is reported here, as one
`InvalidInput` listing every such problem. NaN and infinities are representable (as
`Decimal("NaN")`, `Decimal("Infinity")`) and are passed through: the engine rejects them along
with every other problem in the input, so the caller sees the whole list at once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sector_credit.scorecards import limits
from sector_credit.scorecards.model import (
    EvaluationInput,
    FieldViolation,
    InvalidInput,
    Subject,
    SubjectKind,
)
from sector_credit.v1 import common_pb2, credit_evaluation_service_pb2

from .wire import (
    EVALUATION_COLLECTION,
    SCORECARD_COLLECTION,
    SUBJECT_KIND_FROM_PROTO,
    VIEW_PROBLEM,
    VIEWS,
)

# Decimals are echoed in plain notation (`decimal_text`), so an input's exponent bounds the
# size of the reply and of the stored row.
MAX_DECIMAL_EXPONENT = 64

# --------------------------------------------------------------------------------------------
# Dates


def date_from_proto(date: common_pb2.Date) -> dt.date | None:
    """The calendar date, or None for an all-zero Date; ValueError for an impossible one."""
    year, month, day = date.year, date.month, date.day
    if not (year or month or day):
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{year:04d}-{month:02d}-{day:02d} is not a valid calendar date") from None


def request_date(request: Any, field: str) -> dt.date | None:
    """The optional Date field `field` of a request; InvalidInput naming it when impossible."""
    if not request.HasField(field):
        return None
    try:
        return date_from_proto(getattr(request, field))
    except ValueError as exc:
        raise InvalidInput([FieldViolation(field, str(exc))]) from None


# --------------------------------------------------------------------------------------------
# Indicator values


def indicator_value_from_proto(value: common_pb2.IndicatorValue) -> object:
    """The Python value of one wire value: int, Decimal, bool, str, date or None (not set).

    ValueError when the wire value has no Python value (an impossible date, a decimal string
    that is not a number). NaN and infinities come through as Decimal for the engine to reject.
    """
    case = value.WhichOneof("value")
    if case == "count_value":
        return value.count_value
    if case == "decimal_value":
        text = value.decimal_value
        why = limits.decimal_text_problem(text)
        if why is not None:
            raise ValueError(why)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{limits.echo(text)} is not a decimal number") from None
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and abs(exponent) > MAX_DECIMAL_EXPONENT:
            # "1e-999999999" is a few bytes on the wire but a billion digits in plain notation
            raise ValueError(
                f"{text!r} is out of range: at most {MAX_DECIMAL_EXPONENT} digits either side of"
                f" the point"
            )
        return number
    if case == "number_value":
        return Decimal(repr(value.number_value))  # shortest repr: 0.1 is exactly 0.1
    if case == "flag_value":
        return value.flag_value
    if case == "choice_value":
        return value.choice_value
    if case == "date_value":
        return date_from_proto(value.date_value)
    return None


# --------------------------------------------------------------------------------------------
# Resource names and requests


def scorecard_id_from_name(name: str) -> str:
    """`scorecards/transport.taxi_driver` or the bare `transport.taxi_driver` -> the id."""
    return name.removeprefix(SCORECARD_COLLECTION)


def evaluation_name(evaluation_id: str) -> str:
    return EVALUATION_COLLECTION + evaluation_id


def evaluation_id_from_name(name: str, field: str = "name") -> str:
    """The id in `evaluations/{id}`; InvalidInput naming `field` when the name is malformed."""
    check_texts((field, name, limits.MAX_RESOURCE_NAME))
    evaluation_id = name[len(EVALUATION_COLLECTION) :]
    if not name.startswith(EVALUATION_COLLECTION) or not evaluation_id or "/" in evaluation_id:
        raise InvalidInput(
            [
                FieldViolation(
                    field, f"{limits.echo(name)} is not an evaluation name `evaluations/{{id}}`"
                )
            ]
        )
    return evaluation_id


def check_texts(*fields: tuple[str, str, int]) -> None:
    """Raise InvalidInput naming each (field, value, limit) whose value is too long or holds a
    NUL (scorecards/limits.py); the lengths of strings the engine never sees are checked here."""
    violations = [
        FieldViolation(field, why)
        for field, text, limit in fields
        if (why := limits.text_problem(text, limit)) is not None
    ]
    if violations:
        raise InvalidInput(violations)


def evaluation_input_from_proto(
    request: credit_evaluation_service_pb2.EvaluateRequest,
) -> EvaluationInput:
    """The engine's input for one EvaluateRequest (also a batch or stream item).

    Raises InvalidInput listing every field that has no domain value, and the strings the
    engine never sees (scorecard, version, request_id) when over their limits; everything
    else (unknown or missing indicators, ranges, places, NaN, subject ids and names) is for
    the engine to check, with the limits of scorecards/limits.py. `request_id` and
    `validate_only` and `view` are for the servicer and not part of the input (a `view` the
    enum does not define is refused here, with the rest).
    """
    violations: list[FieldViolation] = []
    if len(request.indicators) > limits.MAX_INDICATORS:
        # refused before a single name is read: the work stays bounded whatever was sent
        raise InvalidInput(
            [
                FieldViolation(
                    "indicators",
                    f"{len(request.indicators)} indicators; a request has at most"
                    f" {limits.MAX_INDICATORS}",
                )
            ]
        )
    for field, text, limit in (
        ("scorecard", request.scorecard, limits.MAX_SCORECARD_ID),
        ("version", request.version, limits.MAX_VERSION),
        ("request_id", request.request_id, limits.MAX_REQUEST_ID),
    ):
        why = limits.text_problem(text, limit)
        if why is not None:
            violations.append(FieldViolation(field, why))
    if request.view not in VIEWS:
        violations.append(FieldViolation("view", VIEW_PROBLEM))
    scorecard_id = scorecard_id_from_name(request.scorecard)
    if not scorecard_id:
        violations.append(FieldViolation("scorecard", "required: a scorecard id"))

    subject = request.subject
    kind = SUBJECT_KIND_FROM_PROTO.get(subject.kind)
    if kind is None:
        violations.append(
            FieldViolation(
                "subject.kind", "must be SUBJECT_KIND_PERSON or SUBJECT_KIND_ORGANIZATION"
            )
        )
        kind = SubjectKind.PERSON  # placeholder; the input is rejected below

    as_of: dt.date | None = None
    if request.HasField("as_of"):
        try:
            as_of = date_from_proto(request.as_of)
        except ValueError as exc:
            violations.append(FieldViolation("as_of", str(exc)))

    indicators: dict[str, object] = {}
    for name, wire in request.indicators.items():
        try:
            value = indicator_value_from_proto(wire)
        except ValueError as exc:
            violations.append(FieldViolation(f"indicators.{limits.field_key(name)}", str(exc)))
            continue
        if value is not None:
            indicators[name] = value

    if violations:
        raise InvalidInput(violations)
    return EvaluationInput(
        scorecard_id=scorecard_id,
        subject=Subject(kind=kind, id=subject.id, display_name=subject.display_name),
        indicators=indicators,
        as_of=as_of,
        version=request.version or None,
    )
