"""The wire encoding of replies, from fragments: protobuf's encoding written by hand for the
fields of an Evaluation, and the cache (`PARTS`) that encodes each shared fragment once.

A protobuf message's bytes are the concatenation of its fields' encodings, in any order, and
a field that appears once parses as if set once. So an Evaluation is assembled as bytes from
fragments (`replies.evaluation_bytes`): the parts every evaluation of a scorecard shares (a
line's rule id, title, group, best points and provenance; whole lines for the (points, value)
pairs a rule takes again and again; a group's title and bounds; a reason's code and title; a
grade; the scorecard's id, version and digest) are encoded once and cached, and what an
evaluation decided is encoded around them; upb parses the result into a message in one C call.
tests/test_convert_parts.py holds this to the field-by-field builder on every golden case, in
both views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sector_credit.scorecards.model import (
    EvaluationResult,
    FiredOverride,
    Grade,
    GroupTotal,
    Line,
    Measure,
    Provenance,
    ReasonCode,
    RecordEvidence,
    Title,
)
from sector_credit.scorecards.text import decimal_text, same_decimal
from sector_credit.v1 import scorecard_pb2

from .wire import EFFECT, EPOCH, PROVENANCE_TAG, REASON_KIND, fill_grade, fill_measures

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


def len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, sub-message), present even when empty."""
    return _key(number, 2) + _varint(len(payload)) + payload


def text_field(number: int, text: str) -> bytes:
    """A proto3 string field: nothing for the empty string (its default)."""
    return len_field(number, text.encode()) if text else b""


def uint_field(number: int, value: int) -> bytes:
    """A proto3 varint field (int32, int64, enum, bool): nothing for 0 (its default)."""
    return _key(number, 0) + _varint(int(value)) if value else b""


def date_bytes(value: dt.date) -> bytes:
    return uint_field(1, value.year) + uint_field(2, value.month) + uint_field(3, value.day)


def title_bytes(title: Title) -> bytes:
    return text_field(1, title.zh) + text_field(2, title.en)


def provenance_bytes(provenance: Provenance) -> bytes:
    return (
        uint_field(1, PROVENANCE_TAG[provenance.tag])
        + text_field(2, provenance.source)
        + text_field(3, provenance.article)
    )


def _value_bytes(value: object) -> bytes:
    """An IndicatorValue with the case that suits a domain value (as `fill_value`)."""
    if isinstance(value, bool):  # before int: a bool is an int
        return _key(4, 0) + (b"\x01" if value else b"\x00")  # a oneof case is sent even if 0
    if isinstance(value, Decimal):
        return len_field(2, decimal_text(value).encode())
    if isinstance(value, int):
        return _key(1, 0) + _varint(value)
    if isinstance(value, str):
        return len_field(5, value.encode())
    if isinstance(value, dt.date):
        return len_field(6, date_bytes(value))
    if value is not None:
        raise TypeError(f"not an indicator value: {value!r}")
    return b""


def _value_key(value: object) -> tuple[type, object]:
    """A cache key telling apart values equal to Python but written differently (True and 1,
    Decimal 1 and 1.0)."""
    cls = type(value)
    return cls, str(value) if cls is Decimal else value


class Parts:
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
            text_field(1, line.rule_id)
            + len_field(2, title_bytes(line.title))
            + text_field(3, line.group or "")
            + text_field(7, decimal_text(line.best_points))
            + len_field(8, provenance_bytes(line.provenance))
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
            text_field(1, group.id)
            + len_field(2, title_bytes(group.title))
            + text_field(5, decimal_text(group.floor))
            + text_field(6, decimal_text(group.ceiling))
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
            text_field(1, reason.code)
            + uint_field(2, REASON_KIND[reason.kind])
            + len_field(3, title_bytes(reason.title))
        )
        self._keep(self.reasons, key, (reason.title, part))
        return part

    def grade(self, grade: Grade) -> bytes:
        """The whole `grade` field (10) of an Evaluation."""
        hit = self.grades.get(grade.code)
        if hit is not None and _same(hit[0], grade):
            return hit[1]
        message = scorecard_pb2.Grade()
        fill_grade(message, grade)  # not on the hot path: once per grade of a scorecard
        part = len_field(10, message.SerializeToString())
        self._keep(self.grades, grade.code, (grade, part))
        return part

    def override_measures(self, fired: FiredOverride) -> bytes:
        """A fired override's `measures` fields (50), encoded once per override."""
        hit = self.measures.get(fired.id)
        if hit is not None and _same(hit[0], fired.measures):
            return hit[1]
        carrier = scorecard_pb2.Override()
        fill_measures(carrier.measures, fired.measures)
        part = b"".join(len_field(50, m.SerializeToString()) for m in carrier.measures)
        self._keep(self.measures, fired.id, (fired.measures, part))
        return part

    def head(self, result: EvaluationResult) -> bytes:
        """Fields 2-4 of an Evaluation: scorecard id, version and digest."""
        key = (result.scorecard_id, result.version, result.digest)
        part = self.heads.get(key)
        if part is None:
            part = text_field(2, key[0]) + text_field(3, key[1]) + text_field(4, key[2])
            self._keep(self.heads, key, part)
        return part

    def indicator(self, name: str, value: object) -> bytes:
        """One entry of the `indicators` map (field 7)."""
        cls, written = _value_key(value)
        key = (name, cls, written)
        try:
            part = self.values.get(key)
        except TypeError:  # an unhashable value: encoded, not cached
            return len_field(7, text_field(1, name) + len_field(2, _value_bytes(value)))
        if part is None:
            part = len_field(7, text_field(1, name) + len_field(2, _value_bytes(value)))
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
            return len_field(11, self._line_bytes(static, line))
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
            return len_field(11, self._line_bytes(static, line))
        if hit is not None and hit[0] is static:
            return hit[1]
        part = len_field(11, self._line_bytes(static, line))
        self._keep(self.whole_lines, key, (static, part))
        return part

    @staticmethod
    def _line_bytes(static: bytes, line: Line) -> bytes:
        out = [static, text_field(5, decimal_text(line.points))]
        for name, used in line.values:  # a value of None leaves the entry's value unset
            value = b"" if used is None else len_field(2, _value_bytes(used))
            out.append(len_field(4, text_field(1, name) + value))
        if line.points_before_cut is not None:  # optional: present even when empty
            out.append(len_field(6, decimal_text(line.points_before_cut).encode()))
        return b"".join(out)

    def _keep(self, cache: dict[Any, Any], key: Any, entry: Any) -> None:
        if len(cache) >= self.LIMIT:
            cache.clear()
        cache[key] = entry


def _same(a: object, b: object) -> bool:
    return a is b or a == b


PARTS = Parts()


def timestamp_bytes(value: dt.datetime) -> bytes:
    """A Timestamp (as `fill_timestamp`)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - EPOCH
    return uint_field(1, since.days * 86400 + since.seconds) + uint_field(
        2, since.microseconds * 1000
    )


def cited_records(evidence: Iterable[RecordEvidence]) -> dict[str, list[str]]:
    """The records each derived indicator rests on, by indicator (from the stored evidence)."""
    out: dict[str, list[str]] = {}
    for e in evidence:
        out.setdefault(e.indicator, []).append(e.record)
    return out


def citations_bytes(names: Iterable[str], cited: dict[str, list[str]]) -> bytes:
    """The `records` fields (20) of a Line or FiredOverride: the records behind the indicators
    it read, each once, in the order read."""
    records = dict.fromkeys(r for n in names for r in cited.get(n, ()))
    return b"".join(text_field(20, r) for r in records)


def cited_line_bytes(line: Line, cited: dict[str, list[str]]) -> bytes:
    """One `lines` field (11), with the records the line cites (none: the cached bytes). A
    line citing records is not cached: the records are its subject's own."""
    cites = citations_bytes((name for name, _ in line.values), cited)
    if not cites:
        return PARTS.whole_line(line)
    return len_field(11, PARTS._line_bytes(PARTS.line(line), line) + cites)


def override_bytes(fired: Any, cited: dict[str, list[str]]) -> bytes:
    """One `overrides` field (13): a FiredOverride, with the records it cites."""
    until = b"" if fired.until is None else len_field(6, date_bytes(fired.until))
    return len_field(
        13,
        text_field(1, fired.id)
        + len_field(2, title_bytes(fired.title))
        + uint_field(3, EFFECT[fired.effect])
        + text_field(4, fired.grade or "")
        + uint_field(5, fired.steps)
        + until
        + len_field(7, provenance_bytes(fired.provenance))
        + (PARTS.override_measures(fired) if fired.measures else b"")
        + (citations_bytes(fired.reads, cited) if cited else b""),
    )
