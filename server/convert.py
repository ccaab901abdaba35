"""The one place that converts between proto messages (the wire) and domain types (the engine).

Wire conventions (see protos/sector_credit/v1/common.proto):
- Decimals travel as strings in plain notation (`"74.70"`, `"-20"`); an empty string is "none".
- A `Date` whose fields are all zero is "no date"; an `IndicatorValue` with no case set is the
  same as leaving the indicator out.

Input decoding (`evaluation_input_from_proto`) only turns wire values into Python values; the
engine validates them. What cannot be represented as a Python value at all (month 13, a
`decimal_value` that is not a number, an unknown subject kind) is reported here, as one
`InvalidInput` listing every such problem. NaN and infinities are representable (as
`Decimal("NaN")`, `Decimal("Infinity")`) and are passed through: the engine rejects them along
with every other problem in the input, so the caller sees the whole list at once.

`evaluation_bytes` is on the hot path of every evaluation: the reply is assembled as bytes
from fragments encoded once per scorecard (see "The wire encoding of replies"), and
`evaluation_to_proto` parses those bytes where a message is needed (reads, the what-if).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf import timestamp_pb2
from sector_credit.scorecards import kinds, limits
from sector_credit.scorecards.loader import accepted_bounds
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationInput,
    EvaluationResult,
    FieldViolation,
    FiredOverride,
    Grade,
    GroupTotal,
    Indicator,
    IndicatorType,
    InvalidInput,
    Line,
    Measure,
    Provenance,
    ProvenanceTag,
    ReasonCode,
    RecordEvidence,
    RuleKind,
    Scorecard,
    Subject,
    SubjectKind,
    Title,
)
from sector_credit.scorecards.subject_ids import mask_id, mask_name
from sector_credit.scorecards.text import condition_text, decimal_text, same_decimal, until_text
from sector_credit.scorecards.whatif import WhatIf
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
_PROVENANCE_TAG = {
    t: common_pb2.ProvenanceTag.Value(f"PROVENANCE_TAG_{t.name}") for t in ProvenanceTag
}
_SUBJECT_KIND = {k: common_pb2.SubjectKind.Value(f"SUBJECT_KIND_{k.name}") for k in SubjectKind}
_SUBJECT_KIND_FROM_PROTO = {v: k for k, v in _SUBJECT_KIND.items()}
_INDICATOR_TYPE = {
    t: scorecard_pb2.IndicatorType.Value(f"INDICATOR_TYPE_{t.name}") for t in IndicatorType
}
# keyed by RuleKind | str: a rule of a plugin kind looks its kind (a str) up and finds nothing
_RULE_KIND: dict[RuleKind | str, scorecard_pb2.RuleKind.ValueType] = {
    k: scorecard_pb2.RuleKind.Value(f"RULE_KIND_{k.name}") for k in RuleKind
}
_EFFECT = {e: scorecard_pb2.OverrideEffect.Value(f"OVERRIDE_EFFECT_{e.name}") for e in EffectKind}
_REASON_KIND = {
    "override": evaluation_pb2.REASON_KIND_OVERRIDE,
    "rule": evaluation_pb2.REASON_KIND_RULE,
}

# EvaluationView values a request may give (unspecified is FULL); only BASIC drops the lines
_VIEWS = frozenset(credit_evaluation_service_pb2.EvaluationView.values())
_BASIC = credit_evaluation_service_pb2.EVALUATION_VIEW_BASIC
VIEW_PROBLEM = "must be EVALUATION_VIEW_BASIC, EVALUATION_VIEW_FULL or unspecified (FULL)"


def view_problem(view: int) -> str | None:
    """Why an EvaluationView value is refused (a number the enum does not define), or None."""
    return None if view in _VIEWS else VIEW_PROBLEM


def full_view(view: int) -> bool:
    """Whether a reply in this EvaluationView carries the lines (all but BASIC do)."""
    return view != _BASIC


# Decimals are echoed in plain notation (`decimal_text`), so an input's exponent bounds the
# size of the reply and of the stored row.
MAX_DECIMAL_EXPONENT = 64

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Scalars


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


def _fill_date(target: common_pb2.Date, value: dt.date) -> None:
    target.year = value.year
    target.month = value.month
    target.day = value.day


def date_to_proto(value: dt.date) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


def _fill_timestamp(target: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    """Timestamp.FromDatetime, without its struct_time round trip (4x faster)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - _EPOCH
    target.seconds = since.days * 86400 + since.seconds
    target.nanos = since.microseconds * 1000


def _fill_title(target: common_pb2.Title, title: Title) -> None:
    target.zh = title.zh
    target.en = title.en


def _fill_provenance(target: common_pb2.Provenance, provenance: Provenance) -> None:
    target.tag = _PROVENANCE_TAG[provenance.tag]
    target.source = provenance.source
    target.article = provenance.article


fill_provenance = _fill_provenance  # for the other messages that carry a provenance (records)


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


def _fill_value(target: common_pb2.IndicatorValue, value: object) -> None:
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
        _fill_date(target.date_value, value)
    elif value is not None:
        raise TypeError(f"not an indicator value: {value!r}")


def indicator_value_to_proto(value: object) -> common_pb2.IndicatorValue:
    message = common_pb2.IndicatorValue()
    _fill_value(message, value)
    return message


# --------------------------------------------------------------------------------------------
# Requests -> domain


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
    if request.view not in _VIEWS:
        violations.append(FieldViolation("view", VIEW_PROBLEM))
    scorecard_id = scorecard_id_from_name(request.scorecard)
    if not scorecard_id:
        violations.append(FieldViolation("scorecard", "required: a scorecard id"))

    subject = request.subject
    kind = _SUBJECT_KIND_FROM_PROTO.get(subject.kind)
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


# --------------------------------------------------------------------------------------------
# Results -> wire


def _fill_measures(target: Any, measures: tuple[Measure, ...]) -> None:
    """A grade's or an override's measures into its repeated `measures` field."""
    for measure in measures:
        wire = target.add(id=measure.id)
        _fill_title(wire.title, measure.title)
        _fill_provenance(wire.provenance, measure.provenance)


def _fill_grade(target: scorecard_pb2.Grade, grade: Grade) -> None:
    target.code = grade.code
    _fill_title(target.title, grade.title)
    if grade.min_score is None:
        target.override_only = True
    else:
        target.min_score = decimal_text(grade.min_score)
    target.colour = grade.colour
    _fill_provenance(target.provenance, grade.provenance)
    _fill_measures(target.measures, grade.measures)


# --------------------------------------------------------------------------------------------
# The wire encoding of replies, from fragments
#
# A protobuf message's bytes are the concatenation of its fields' encodings, in any order, and
# a field that appears once parses as if set once. So an Evaluation is assembled as bytes from
# fragments: the parts every evaluation of a scorecard shares (a line's rule id, title, group,
# best points and provenance; whole lines for the (points, value) pairs a rule takes again and
# again; a group's title and bounds; a reason's code and title; a grade; the scorecard's id,
# version and digest) are encoded once and cached, and what an evaluation decided is encoded
# around them; upb parses the result into a message in one C call. tests/test_convert_parts.py
# holds this to the field-by-field builder on every golden case, in both views.

_KEYS: dict[tuple[int, int], bytes] = {}


def _varint(n: int) -> bytes:
    if n < 0:  # int32/int64 negatives: ten bytes of two's complement
        n += 1 << 64
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def _key(number: int, wire_type: int) -> bytes:
    key = _KEYS.get((number, wire_type))
    if key is None:
        key = _KEYS[number, wire_type] = _varint(number << 3 | wire_type)
    return key


def _len(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, sub-message), present even when empty."""
    return _key(number, 2) + _varint(len(payload)) + payload


def _text(number: int, text: str) -> bytes:
    """A proto3 string field: nothing for the empty string (its default)."""
    return _len(number, text.encode()) if text else b""


def _uint(number: int, value: int) -> bytes:
    """A proto3 varint field (int32, int64, enum, bool): nothing for 0 (its default)."""
    return _key(number, 0) + _varint(int(value)) if value else b""


def _date_bytes(value: dt.date) -> bytes:
    return _uint(1, value.year) + _uint(2, value.month) + _uint(3, value.day)


def _title_bytes(title: Title) -> bytes:
    return _text(1, title.zh) + _text(2, title.en)


def _provenance_bytes(provenance: Provenance) -> bytes:
    return (
        _uint(1, _PROVENANCE_TAG[provenance.tag])
        + _text(2, provenance.source)
        + _text(3, provenance.article)
    )


def _value_bytes(value: object) -> bytes:
    """An IndicatorValue with the case that suits a domain value (as `_fill_value`)."""
    if isinstance(value, bool):  # before int: a bool is an int
        return _key(4, 0) + (b"\x01" if value else b"\x00")  # a oneof case is sent even if 0
    if isinstance(value, Decimal):
        return _len(2, decimal_text(value).encode())
    if isinstance(value, int):
        return _key(1, 0) + _varint(value)
    if isinstance(value, str):
        return _len(5, value.encode())
    if isinstance(value, dt.date):
        return _len(6, _date_bytes(value))
    if value is not None:
        raise TypeError(f"not an indicator value: {value!r}")
    return b""


def _value_key(value: object) -> tuple[type, object]:
    """A cache key telling apart values equal to Python but written differently (True and 1,
    Decimal 1 and 1.0)."""
    cls = type(value)
    return cls, str(value) if cls is Decimal else value


class _Parts:
    """Encoded fragments that are the same in every evaluation of a scorecard, each encoded
    once. Keyed by the ids and checked against the objects they were built from (by identity,
    else by value), so a changed scorecard gets new fragments; bounded, for results that do
    not come from a loaded scorecard."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.lines: dict[
            tuple[str, str | None], tuple[Title, Provenance, Decimal | None, bytes]
        ] = {}
        self.groups: dict[str, tuple[Title, Decimal | None, Decimal | None, bytes]] = {}
        self.reasons: dict[tuple[str, str], tuple[Title, bytes]] = {}
        self.grades: dict[str, tuple[Grade, bytes]] = {}
        self.whole_lines: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        self.heads: dict[tuple[str, str, str], bytes] = {}
        self.values: dict[tuple[str, type, object], bytes] = {}
        self.measures: dict[str, tuple[tuple[Measure, ...], bytes]] = {}

    def line(self, line: Line) -> bytes:
        """The static fields of a Line: rule id, title, group, best points, provenance."""
        key = (line.rule_id, line.group)
        hit = self.lines.get(key)
        if (
            hit is not None
            and _same(hit[0], line.title)
            and _same(hit[1], line.provenance)
            and same_decimal(hit[2], line.best_points)
        ):
            return hit[3]
        part = (
            _text(1, line.rule_id)
            + _len(2, _title_bytes(line.title))
            + _text(3, line.group or "")
            + _text(7, decimal_text(line.best_points))
            + _len(8, _provenance_bytes(line.provenance))
        )
        self._keep(self.lines, key, (line.title, line.provenance, line.best_points, part))
        return part

    def group(self, group: GroupTotal) -> bytes:
        """The static fields of a GroupTotal: id, title, floor, ceiling."""
        hit = self.groups.get(group.id)
        if (
            hit is not None
            and _same(hit[0], group.title)
            and same_decimal(hit[1], group.floor)
            and same_decimal(hit[2], group.ceiling)
        ):
            return hit[3]
        part = (
            _text(1, group.id)
            + _len(2, _title_bytes(group.title))
            + _text(5, decimal_text(group.floor))
            + _text(6, decimal_text(group.ceiling))
        )
        self._keep(self.groups, group.id, (group.title, group.floor, group.ceiling, part))
        return part

    def reason(self, reason: ReasonCode) -> bytes:
        """The static fields of a ReasonCode: code, kind, title."""
        key = (reason.code, reason.kind)
        hit = self.reasons.get(key)
        if hit is not None and _same(hit[0], reason.title):
            return hit[1]
        part = (
            _text(1, reason.code)
            + _uint(2, _REASON_KIND[reason.kind])
            + _len(3, _title_bytes(reason.title))
        )
        self._keep(self.reasons, key, (reason.title, part))
        return part

    def grade(self, grade: Grade) -> bytes:
        """The whole `grade` field (10) of an Evaluation."""
        hit = self.grades.get(grade.code)
        if hit is not None and _same(hit[0], grade):
            return hit[1]
        message = scorecard_pb2.Grade()
        _fill_grade(message, grade)  # not on the hot path: once per grade of a scorecard
        part = _len(10, message.SerializeToString())
        self._keep(self.grades, grade.code, (grade, part))
        return part

    def override_measures(self, fired: FiredOverride) -> bytes:
        """A fired override's `measures` fields (50), encoded once per override."""
        hit = self.measures.get(fired.id)
        if hit is not None and _same(hit[0], fired.measures):
            return hit[1]
        carrier = scorecard_pb2.Override()
        _fill_measures(carrier.measures, fired.measures)
        part = b"".join(_len(50, m.SerializeToString()) for m in carrier.measures)
        self._keep(self.measures, fired.id, (fired.measures, part))
        return part

    def head(self, result: EvaluationResult) -> bytes:
        """Fields 2-4 of an Evaluation: scorecard id, version and digest."""
        key = (result.scorecard_id, result.version, result.digest)
        part = self.heads.get(key)
        if part is None:
            part = _text(2, key[0]) + _text(3, key[1]) + _text(4, key[2])
            self._keep(self.heads, key, part)
        return part

    def indicator(self, name: str, value: object) -> bytes:
        """One entry of the `indicators` map (field 7)."""
        cls, written = _value_key(value)
        key = (name, cls, written)
        try:
            part = self.values.get(key)
        except TypeError:  # an unhashable value: encoded, not cached
            return _len(7, _text(1, name) + _len(2, _value_bytes(value)))
        if part is None:
            part = _len(7, _text(1, name) + _len(2, _value_bytes(value)))
            self._keep(self.values, key, part)
        return part

    def whole_line(self, line: Line) -> bytes:
        """The whole `lines` field (11) of one line, static part and decisions: most lines of
        a scorecard take a few (points, value) pairs again and again. Keyed by the decisions
        as they are written (a Decimal by its text: 1.0 and 1 are written differently) and the
        value's type (True is 1 to a dict); checked against the static part it was built on."""
        static = self.line(line)
        values = line.values
        if len(values) != 1:
            return _len(11, self._line_bytes(static, line))
        value = values[0][1]
        pbc = line.points_before_cut
        key = (
            line.rule_id,
            line.group,
            str(line.points),
            None if pbc is None else str(pbc),
            *_value_key(value),
        )
        try:
            hit = self.whole_lines.get(key)
        except TypeError:  # an unhashable value
            return _len(11, self._line_bytes(static, line))
        if hit is not None and hit[0] is static:
            return hit[1]
        part = _len(11, self._line_bytes(static, line))
        self._keep(self.whole_lines, key, (static, part))
        return part

    @staticmethod
    def _line_bytes(static: bytes, line: Line) -> bytes:
        out = [static, _text(5, decimal_text(line.points))]
        for name, used in line.values:  # a value of None leaves the entry's value unset
            value = b"" if used is None else _len(2, _value_bytes(used))
            out.append(_len(4, _text(1, name) + value))
        if line.points_before_cut is not None:  # optional: present even when empty
            out.append(_len(6, decimal_text(line.points_before_cut).encode()))
        return b"".join(out)

    def _keep(self, cache: dict[Any, Any], key: Any, entry: Any) -> None:
        if len(cache) >= self.LIMIT:
            cache.clear()
        cache[key] = entry


def _same(a: object, b: object) -> bool:
    return a is b or a == b


_parts = _Parts()


def _timestamp_bytes(value: dt.datetime) -> bytes:
    """A Timestamp (as `_fill_timestamp`)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - _EPOCH
    return _uint(1, since.days * 86400 + since.seconds) + _uint(2, since.microseconds * 1000)


def _cited(evidence: Iterable[RecordEvidence]) -> dict[str, list[str]]:
    """The records each derived indicator rests on, by indicator (from the stored evidence)."""
    out: dict[str, list[str]] = {}
    for e in evidence:
        out.setdefault(e.indicator, []).append(e.record)
    return out


def _cites(names: Iterable[str], cited: dict[str, list[str]]) -> bytes:
    """The `records` fields (20) of a Line or FiredOverride: the records behind the indicators
    it read, each once, in the order read."""
    records = dict.fromkeys(r for n in names for r in cited.get(n, ()))
    return b"".join(_text(20, r) for r in records)


def _override_bytes(fired: Any, cited: dict[str, list[str]]) -> bytes:
    """One `overrides` field (13): a FiredOverride."""
    until = b"" if fired.until is None else _len(6, _date_bytes(fired.until))
    return _len(
        13,
        _text(1, fired.id)
        + _len(2, _title_bytes(fired.title))
        + _uint(3, _EFFECT[fired.effect])
        + _text(4, fired.grade or "")
        + _uint(5, fired.steps)
        + until
        + _len(7, _provenance_bytes(fired.provenance))
        + (_parts.override_measures(fired) if fired.measures else b"")
        + (_cites(fired.reads, cited) if cited else b""),
    )


def mask_subject(message: evaluation_pb2.Evaluation) -> evaluation_pb2.Evaluation:
    """The evaluation as a caller without `see_ids` reads it (docs/security.md): a person's id
    and name masked, `subject_masked` set. An organization's credit code is public: unchanged."""
    if message.subject.kind != common_pb2.SUBJECT_KIND_ORGANIZATION:
        message.subject.id = mask_id(message.subject.id)
        message.subject.display_name = mask_name(message.subject.display_name)
        message.subject_masked = True
    return message


def unreadable_evaluation_to_proto(
    *,
    evaluation_id: str,
    create_time: dt.datetime,
    scorecard_id: str,
    version: str,
    digest: str,
    subject_kind: str,
    subject_id: str,
    as_of: dt.date | None,
    grade: str,
    score: str | None,
    request_id: str | None,
    caller: str | None,
    why: str,
) -> evaluation_pb2.Evaluation:
    """A stored evaluation that cannot be shown in full: what its row's columns say, and
    `unreadable` saying why (evaluation.proto)."""
    message = evaluation_pb2.Evaluation(
        name=EVALUATION_COLLECTION + evaluation_id,
        scorecard_id=scorecard_id,
        scorecard_version=version,
        scorecard_digest=digest,
        score=score or "",
        request_id=request_id or "",
        caller=caller or "",
        unreadable=why,
    )
    kind = next((k for k in SubjectKind if k.value == subject_kind), None)
    if kind is not None:
        message.subject.kind = _SUBJECT_KIND[kind]
    message.subject.id = subject_id
    if as_of is not None:
        _fill_date(message.as_of, as_of)
    message.grade.code = grade
    _fill_timestamp(message.create_time, create_time)
    return message


def evaluation_bytes(
    result: EvaluationResult,
    *,
    evaluation_id: str = "",
    create_time: dt.datetime | None = None,
    request_id: str = "",
    caller: str = "",
    lines: bool = True,
) -> bytes:
    """The serialized Evaluation resource for an engine result and its stored metadata,
    assembled from cached fragments (see above); `evaluation_to_proto` parses it."""
    dec = decimal_text
    parts = _parts
    subject = result.subject
    out = [
        _text(1, EVALUATION_COLLECTION + evaluation_id if evaluation_id else ""),
        parts.head(result),
        _len(
            5,
            _uint(1, _SUBJECT_KIND[subject.kind])
            + _text(2, subject.id)
            + _text(3, subject.display_name),
        ),
        _len(6, _date_bytes(result.as_of)),
        _text(8, dec(result.score)),
        _text(9, result.score_grade or ""),
        parts.grade(result.grade),
    ]
    indicator = parts.indicator
    out += [indicator(name, value) for name, value in result.indicators.items()]
    cited = _cited(result.evidence) if result.evidence else {}
    if lines:
        whole_line = parts.whole_line
        for line in result.lines:
            cites = _cites((name for name, _ in line.values), cited) if cited else b""
            if cites:  # a line citing records: not cached (the records are the subject's own)
                out.append(_len(11, parts._line_bytes(parts.line(line), line) + cites))
            else:
                out.append(whole_line(line))
    group_part = parts.group
    out += [
        _len(12, group_part(g) + _text(3, dec(g.total_before_cut)) + _text(4, dec(g.total)))
        for g in result.groups
    ]
    if result.overrides:
        out += [_override_bytes(fired, cited) for fired in result.overrides]
    if result.until is not None:
        out.append(_len(14, _date_bytes(result.until)))
    reason_part = parts.reason
    out += [
        _len(
            15,
            reason_part(r)
            if r.points_lost is None
            else reason_part(r) + _text(4, dec(r.points_lost)),
        )
        for r in result.reasons
    ]
    if result.points_to_next_grade is not None:  # optional: present even when empty
        out.append(_len(16, dec(result.points_to_next_grade).encode()))
    out.append(_text(17, result.next_grade or ""))
    if create_time is not None:
        out.append(_len(18, _timestamp_bytes(create_time)))
    out += [_text(19, request_id), _text(20, caller), _text(21, dec(result.base))]
    if result.score_before_cut is not None:
        out.append(_len(22, dec(result.score_before_cut).encode()))
    for e in result.evidence:  # the credit records derived indicators rest on (issue 10)
        wire = evaluation_pb2.RecordEvidence(
            indicator=e.indicator, record=e.record, kind=e.kind, basis=e.basis, state=e.state
        )
        _fill_date(wire.decision_date, e.decision_date)
        out.append(_len(30, wire.SerializeToString()))
    return b"".join(out)


_parse_evaluation = evaluation_pb2.Evaluation.FromString


def acknowledgement_bytes(evaluation_id: str, create_time: dt.datetime) -> bytes:
    """The name and create_time of a stored evaluation, to append to the bytes of a reply
    built before its row was committed (which has neither): `acknowledge` as bytes."""
    return _len(1, (EVALUATION_COLLECTION + evaluation_id).encode()) + _len(
        18, _timestamp_bytes(create_time)
    )


def evaluate_response_bytes(evaluation: bytes) -> bytes:
    """An EvaluateResponse around a serialized Evaluation."""
    return _len(1, evaluation)


def batch_result_bytes(
    evaluation: bytes | None = None, error: common_pb2.ItemError | None = None
) -> bytes:
    """One `results` field of a BatchEvaluateResponse: a BatchEvaluateResult holding either
    a serialized Evaluation or an ItemError."""
    if evaluation is not None:
        return _len(1, _len(1, evaluation))
    assert error is not None
    return _len(1, _len(2, error.SerializeToString()))


def stream_response_bytes(correlation_id: str, evaluation: bytes) -> bytes:
    """A StreamEvaluateResponse with a serialized Evaluation."""
    return _text(1, correlation_id) + _len(2, evaluation)


def evaluation_to_proto(
    result: EvaluationResult,
    *,
    evaluation_id: str = "",
    create_time: dt.datetime | None = None,
    request_id: str = "",
    caller: str = "",
    lines: bool = True,
) -> evaluation_pb2.Evaluation:
    """The Evaluation resource for an engine result and its stored metadata.

    `create_time` naive means UTC. Without an `evaluation_id` (validate_only, or before the
    store assigned one) the name stays empty. `lines=False` is the BASIC view: the same
    message without its lines. Parsed from `evaluation_bytes` (one C call).
    """
    return _parse_evaluation(
        evaluation_bytes(
            result,
            evaluation_id=evaluation_id,
            create_time=create_time,
            request_id=request_id,
            caller=caller,
            lines=lines,
        )
    )


# --------------------------------------------------------------------------------------------
# Scorecards -> wire (GetScorecard, ListScorecards; not on the hot path)


def _indicator_to_proto(target: scorecard_pb2.Indicator, indicator: Indicator) -> None:
    kind = indicator.type
    target.name = indicator.name
    target.type = _INDICATOR_TYPE[kind]
    _fill_title(target.title, indicator.title)
    target.description = indicator.description
    target.required = indicator.required
    # The implied defaults and bounds of SCORECARDS.md §1 are shown, not left to be known.
    default: object = indicator.default
    if default is None and not indicator.required and indicator.required_when is None:
        default = {IndicatorType.COUNT: 0, IndicatorType.FLAG: False}.get(kind)
    elif type(default) is int and kind in (IndicatorType.NUMBER, IndicatorType.PERCENT):
        default = Decimal(default)  # a TOML `default = 0` on a number is still a decimal
    if default is not None:
        _fill_value(target.default_value, default)
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
        subject_kind=_SUBJECT_KIND[card.subject_kind],
        description=card.description,
    )
    _fill_date(message.effective_from, card.effective_from)
    _fill_title(message.title, card.title)
    for version in sorted(versions or (card,), key=lambda v: (v.effective_from, v.version)):
        wire_version = message.versions.add(version=version.version, digest=version.digest)
        _fill_date(wire_version.effective_from, version.effective_from)
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
        _fill_title(wire_group.title, group.title)
    for rule in card.rules:
        wire_rule = message.rules.add(
            id=rule.id,
            # a kind a plugin adds has no enum value: UNSPECIFIED, named by kind_name
            kind=_RULE_KIND.get(rule.kind, scorecard_pb2.RULE_KIND_UNSPECIFIED),
            kind_name=str(getattr(rule.kind, "value", rule.kind)),
            description=kinds.get(rule.kind).describe(rule),
            indicator=rule.indicator,
            group=rule.group or "",
            points=decimal_text(rule.points),
            when=rule.when and "when" in kinds.get(rule.kind).keys,
            weight=decimal_text(rule.weight),
        )
        _fill_title(wire_rule.title, rule.title)
        _fill_provenance(wire_rule.provenance, rule.provenance)
        for band in rule.bands:
            wire_rule.bands.add(range=str(band.range), points=decimal_text(band.points))
        for choice, points in rule.choice_points:
            wire_rule.choice_points.add(choice=choice, points=decimal_text(points))
        if rule.flag_points is not None:
            wire_rule.flag_true_points = decimal_text(rule.flag_points[0])
            wire_rule.flag_false_points = decimal_text(rule.flag_points[1])
    for grade in card.grades:
        _fill_grade(message.grades.add(), grade)
    for override in card.overrides:
        wire_override = message.overrides.add(
            id=override.id,
            condition=condition_text(override.when),
            effect=_EFFECT[override.effect],
            grade=override.grade or "",
            steps=override.steps,
            until=until_text(override.until),
        )
        _fill_title(wire_override.title, override.title)
        _fill_provenance(wire_override.provenance, override.provenance)
        _fill_measures(wire_override.measures, override.measures)
    return message


# --------------------------------------------------------------------------------------------
# Errors -> wire (the codes are chosen by the caller: this module only shapes the messages)


def field_violations_to_proto(
    violations: Iterable[FieldViolation],
) -> list[common_pb2.FieldViolation]:
    return [common_pb2.FieldViolation(field=v.field, description=v.description) for v in violations]


def item_error_to_proto(
    code: int, message: str, reason: str = "", violations: Sequence[FieldViolation] = ()
) -> common_pb2.ItemError:
    """The error of one batch or stream item; `code` is a google.rpc.Code value."""
    return common_pb2.ItemError(
        code=code,
        message=message,
        reason=reason,
        field_violations=field_violations_to_proto(violations),
    )


# --------------------------------------------------------------------------------------------
# What-if -> proto


def whatif_to_proto(
    explored: WhatIf, evaluation: evaluation_pb2.Evaluation
) -> credit_evaluation_service_pb2.ExploreEvaluationResponse:
    """An ExploreEvaluationResponse: `evaluation` (the result explored, already converted) and
    the what-if's targets and override ends."""
    titles = {o.id: o.title for o in explored.result.overrides}
    reply = credit_evaluation_service_pb2.ExploreEvaluationResponse(
        evaluation=evaluation, actionable_indicators=list(explored.actionable)
    )
    for t in explored.targets:
        target = reply.targets.add()
        _fill_grade(target.grade, t.grade)
        for p in t.proposals:
            proposal = target.proposals.add(
                grade=p.grade, score=decimal_text(p.score), distance=decimal_text(p.distance)
            )
            for c in p.changes:
                change = proposal.changes.add(
                    indicator=c.indicator, distance=decimal_text(c.distance)
                )
                _fill_value(change.before, c.before)
                _fill_value(change.after, c.after)
    for e in explored.override_ends:
        end = reply.override_ends.add(
            override_id=e.override_id, grade=e.grade, score=decimal_text(e.score)
        )
        _fill_title(end.title, titles[e.override_id])
        _fill_date(end.until, e.until)
    return reply
