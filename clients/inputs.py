"""Python values -> wire requests: the typed IndicatorValue each indicator takes.

The scorecard's own definition (GetScorecard, cached by the client) decides the wire type, so
text from a CSV cell or a `--set name=value` reaches the server as the type the indicator
has: `"3"` is a count for `violations_3pt` and a decimal for `bonus_points`. Without a
definition for a name (an unknown indicator), the Python type decides:

    bool -> flag_value          int -> count_value         Decimal -> decimal_value
    float -> decimal_value (via repr: 0.1 is exactly 0.1)   date -> date_value
    str -> choice_value         None or "" -> left out (the indicator's default applies)

Text that does not parse as its indicator's type is sent as it is, so the server rejects it
with every other problem of the request and says why, in one error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import grpc
from sector_credit.scorecards.text import decimal_text
from sector_credit.v1 import common_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb

from .errors import InvalidRequestError
from .resources import FieldViolation, Indicator, Scorecard

_SUBJECT_KINDS = {
    "person": common_pb2.SUBJECT_KIND_PERSON,
    "organization": common_pb2.SUBJECT_KIND_ORGANIZATION,
}
_TRUE = frozenset({"true", "t", "yes", "y", "1", "是"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "否"})
_INTEGER = re.compile(r"[+-]?\d+")
LOCAL_REASON = "INVALID_CLIENT_INPUT"  # problems found before anything was sent


@dataclasses.dataclass(frozen=True)
class EvaluationItem:
    """One subject to evaluate in a batch or stream (the scorecard is the call's)."""

    subject_id: str
    indicators: Mapping[str, object] = dataclasses.field(default_factory=dict)
    as_of: dt.date | str | None = None
    request_id: str | None = None  # None: a fresh id, so that a retried call cannot score twice
    display_name: str = ""


def new_request_id() -> str:
    return uuid.uuid4().hex


def date_value(value: dt.date | str) -> dt.date:
    """A date, or ISO text (`2026-06-01`) as a date; ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value.strip())


def _fill_date(target: common_pb2.Date, value: dt.date) -> None:
    target.year, target.month, target.day = value.year, value.month, value.day


def _fill_from_text(
    target: common_pb2.IndicatorValue, text: str, indicator: Indicator | None
) -> None:
    kind = indicator.type if indicator is not None else "choice"
    clean = text.strip()
    if kind == "count" and _INTEGER.fullmatch(clean):
        target.count_value = int(clean)
        return
    if kind in ("count", "number", "percent"):
        try:
            Decimal(clean)
        except InvalidOperation:
            pass
        else:
            target.decimal_value = clean
            return
    elif kind == "flag":
        word = clean.lower()
        if word in _TRUE or word in _FALSE:
            target.flag_value = word in _TRUE
            return
    elif kind == "date":
        try:
            _fill_date(target.date_value, dt.date.fromisoformat(clean))
        except ValueError:
            pass
        else:
            return
    elif kind == "choice":
        target.choice_value = clean
        return
    target.choice_value = text  # not of its type: the server says why, with the other problems


def fill_indicator_value(
    target: common_pb2.IndicatorValue, value: object, indicator: Indicator | None = None
) -> str | None:
    """Set the case of `target` that suits `value` (and the indicator's type, when known).
    Returns why the value cannot be sent at all, or None."""
    numeric = indicator is not None and indicator.numeric
    if isinstance(value, bool):  # before int: a bool is an int
        target.flag_value = value
    elif isinstance(value, int):
        if numeric and indicator is not None and indicator.type != "count":
            target.decimal_value = str(value)
        else:
            target.count_value = value
    elif isinstance(value, Decimal):
        target.decimal_value = decimal_text(value)
    elif isinstance(value, float):
        target.decimal_value = repr(value)
    elif isinstance(value, dt.date):
        _fill_date(target.date_value, value.date() if isinstance(value, dt.datetime) else value)
    elif isinstance(value, str):
        _fill_from_text(target, value, indicator)
    else:
        return f"cannot send a {type(value).__name__} as an indicator value"
    return None


def subject_kind_value(kind: str) -> common_pb2.SubjectKind.ValueType:
    try:
        return _SUBJECT_KINDS[kind]
    except KeyError:
        raise ValueError(f"subject kind {kind!r}: expected person or organization") from None


def evaluate_request(
    card: Scorecard | None,
    scorecard: str,
    item: EvaluationItem,
    *,
    kind: str | None = None,
    version: str = "",
    validate_only: bool = False,
) -> pb.EvaluateRequest:
    """The EvaluateRequest for one item. `card` (the scorecard's definition) gives the subject
    kind, unless `kind` is given, and the indicator types. Raises InvalidRequestError listing
    every value that cannot be put on the wire at all."""
    problems: list[FieldViolation] = []
    request = pb.EvaluateRequest(
        scorecard=scorecard,
        version=version,
        validate_only=validate_only,
        request_id=new_request_id() if item.request_id is None else item.request_id,
    )
    subject = request.subject
    subject.id = item.subject_id.strip()
    subject.display_name = item.display_name
    kind = kind or (card.subject_kind if card is not None else None)
    if kind is None:
        problems.append(FieldViolation("subject.kind", "required when the scorecard is not known"))
    else:
        try:
            subject.kind = subject_kind_value(kind)
        except ValueError as exc:
            problems.append(FieldViolation("subject.kind", str(exc)))
    if item.as_of is not None and item.as_of != "":
        try:
            _fill_date(request.as_of, date_value(item.as_of))
        except (ValueError, TypeError):
            problems.append(
                FieldViolation("as_of", f"expected a date (YYYY-MM-DD), not {item.as_of!r}")
            )
    wire = request.indicators
    for name, value in item.indicators.items():
        if value is None or value == "":
            continue
        why = fill_indicator_value(wire[name], value, card.indicator(name) if card else None)
        if why is not None:
            problems.append(FieldViolation(f"indicators.{name}", why))
    if problems:
        n = len(problems)
        raise InvalidRequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request has {n} problem{'s' if n != 1 else ''} found before sending it",
            LOCAL_REASON,
            problems,
        )
    return request
