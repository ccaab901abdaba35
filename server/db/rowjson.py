"""The JSON documents of an evaluation row, built fast; the shapes are `codec`'s.

Every stored evaluation carries its full result (`codec.result_to_dict`): titles, provenance
and grades included, so a row can be read without the scorecard that made it. Most of that
text is the same for every evaluation of a scorecard, so building the dictionaries and
encoding them again for each row (about half of the CPU an evaluation cost) repeats work that
can be done once per scorecard. Here the static pieces (a title, a provenance, a grade, the
head of a line) are encoded once, remembered per object (the engine hands out the card's own
objects), and joined with the few values that change.

`result_json(result)` is exactly `json.dumps(codec.result_to_dict(result), ensure_ascii=False,
separators=(",", ":"), allow_nan=False)` (tests/test_rowjson.py checks it on every golden
case), so the rows are the same as before, byte for byte. `input_json(input)` is the canonical
JSON of `codec.input_to_dict(input)` (sorted keys): its SHA-256 is `codec.request_digest`, so
one encoding gives both the stored document and the digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from sector_credit.scorecards import codec
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationInput,
    EvaluationResult,
    FiredOverride,
    Grade,
    GroupTotal,
    Line,
    Provenance,
    ProvenanceTag,
    ReasonCode,
    Subject,
    SubjectKind,
    Title,
)

if codec.FORMAT != 1:  # pragma: no cover - a new codec format needs this module updated too
    raise ImportError(f"rowjson writes codec format 1, the codec is at format {codec.FORMAT}")


class JsonText(str):
    """A JSON document already encoded: the engine's JSON serializer stores it as it is."""

    __slots__ = ()


_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_s: Callable[[str], str] = encode_basestring  # a JSON string, non-ASCII kept as it is
_int = int.__repr__
_float = float.__repr__


def input_json(inp: EvaluationInput) -> tuple[JsonText, str]:
    """The stored `input` document (canonical JSON) and its SHA-256 hex, which is
    `codec.request_digest(inp)`."""
    text = _canonical(codec.input_to_dict(inp))
    return JsonText(text), hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Static pieces, encoded once per object


class _Memo:
    """Encoded text per object, keyed by identity (the object is kept, so its id is never
    reused while cached); bounded, for objects that are not a scorecard's own."""

    __slots__ = ("_cache", "_encode")
    LIMIT = 8192

    def __init__(self, encode: Callable[[Any], str]):
        self._encode = encode
        self._cache: dict[int, tuple[Any, str]] = {}

    def __call__(self, obj: Any) -> str:
        hit = self._cache.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        text = self._encode(obj)
        if len(self._cache) >= self.LIMIT:
            self._cache.clear()
        self._cache[id(obj)] = (obj, text)
        return text


def _opt_str(value: str | None) -> str:
    return "null" if value is None else _s(value)


def _dec(value: Decimal | None) -> str:
    # str(Decimal) is digits, sign, point, exponent or a special name: nothing to escape
    return "null" if value is None else '"' + str(value) + '"'


def _title_text(t: Title) -> str:
    return '{"zh":' + _s(t.zh) + ',"en":' + _s(t.en) + "}"


def _provenance_text(p: Provenance) -> str:
    return '{"tag":' + _s(p.tag.value) + ',"source":' + _s(p.source) + ',"article":' + _s(p.article) + "}"


_title = _Memo(_title_text)
_provenance = _Memo(_provenance_text)


def _grade_text(g: Grade) -> str:
    return ('{"code":' + _s(g.code) + ',"title":' + _title(g.title) + ',"provenance":'
            + _provenance(g.provenance) + ',"min_score":' + _dec(g.min_score)
            + ',"colour":' + _s(g.colour) + "}")


_grade = _Memo(_grade_text)

# Per rule: the text around a line's values and points, `(title, provenance, best_points,
# head, middle, tail)`; a line is head + values + ',"points":"' + points + middle +
# points_before_cut + tail.
_lines: dict[tuple[str, str | None], tuple[Title, Provenance, Decimal | None, str, str, str]] = {}


def _line_parts(rule_id: str, group: str | None, title: Title, provenance: Provenance,
                best: Decimal | None) -> tuple[str, str, str]:
    key = (rule_id, group)
    hit = _lines.get(key)
    if hit is not None and hit[0] is title and hit[1] is provenance and hit[2] == best:
        return hit[3], hit[4], hit[5]
    head = ('{"rule_id":' + _s(rule_id) + ',"title":' + _title(title) + ',"group":'
            + _opt_str(group) + ',"values":')
    middle = '","provenance":' + _provenance(provenance) + ',"points_before_cut":'
    tail = ',"best_points":' + _dec(best) + "}"
    if len(_lines) >= _Memo.LIMIT:
        _lines.clear()
    _lines[key] = (title, provenance, best, head, middle, tail)
    return head, middle, tail


# --------------------------------------------------------------------------------------------
# Values (codec.value_to_json, as JSON text)


def _value(value: object) -> str:
    if value is None:
        return "null"
    cls = type(value)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return _int(value)  # type: ignore[arg-type]
    if cls is str:
        return _s(value)  # type: ignore[arg-type]
    if cls is Decimal:
        return '{"decimal":"' + str(value) + '"}'
    if cls is dt.date:
        return '{"date":"' + value.isoformat() + '"}'  # type: ignore[attr-defined]
    return _value_slow(value)


def _value_slow(value: object) -> str:
    """Subclasses and floats, through the codec (its errors included)."""
    data = codec.value_to_json(value)
    if isinstance(data, float) and math.isfinite(data):
        return _float(data)
    return _canonical(data)


def _indicators(values: dict[str, Any]) -> str:
    if not values:
        return "{}"
    return "{" + ",".join(_s(name) + ":" + _value(v) for name, v in values.items()) + "}"


# --------------------------------------------------------------------------------------------
# The result document


_heads_by_card: dict[tuple[str, str, str], str] = {}


def result_json(r: EvaluationResult) -> JsonText:
    """`codec.result_to_dict(r)` as compact JSON, byte for byte what the json module writes."""
    key = (r.scorecard_id, r.version, r.digest)
    head = _heads_by_card.get(key)
    if head is None:
        head = ('{"format":1,"scorecard_id":' + _s(r.scorecard_id) + ',"version":' + _s(r.version)
                + ',"digest":' + _s(r.digest) + ',"subject":')
        if len(_heads_by_card) >= _Memo.LIMIT:
            _heads_by_card.clear()
        _heads_by_card[key] = head
    s = r.subject
    dec, value, title, s_ = _dec, _value, _title, _s
    parts = [
        head,
        '{"kind":', s_(s.kind.value), ',"id":', s_(s.id), ',"display_name":', s_(s.display_name),
        '},"as_of":"', r.as_of.isoformat(), '","indicators":', _indicators(r.indicators),
        ',"score":', dec(r.score), ',"score_grade":', _opt_str(r.score_grade),
        ',"grade":', _grade(r.grade), ',"lines":[',
    ]
    add = parts.append
    sep = ""
    for line in r.lines:
        line_head, middle, tail = _line_parts(
            line.rule_id, line.group, line.title, line.provenance, line.best_points)
        values = line.values
        if len(values) == 1:
            (name, v), = values
            values_text = "[[" + s_(name) + "," + value(v) + "]]"
        else:
            values_text = "[" + ",".join("[" + s_(n) + "," + value(v) + "]" for n, v in values) + "]"
        pbc = line.points_before_cut
        add(sep + line_head + values_text + ',"points":"' + str(line.points) + middle
            + ("null" if pbc is None else '"' + str(pbc) + '"') + tail)
        sep = ","
    add('],"groups":[')
    sep = ""
    for g in r.groups:
        add(sep + '{"id":' + s_(g.id) + ',"title":' + title(g.title) + ',"total_before_cut":"'
            + str(g.total_before_cut) + '","total":"' + str(g.total) + '","floor":' + dec(g.floor)
            + ',"ceiling":' + dec(g.ceiling) + "}")
        sep = ","
    add('],"overrides":[')
    sep = ""
    for o in r.overrides:
        add(sep + '{"id":' + s_(o.id) + ',"title":' + title(o.title) + ',"effect":' + s_(o.effect.value)
            + ',"grade":' + _opt_str(o.grade) + ',"steps":' + _int(o.steps) + ',"until":'
            + ("null" if o.until is None else '"' + o.until.isoformat() + '"')
            + ',"provenance":' + _provenance(o.provenance) + "}")
        sep = ","
    add('],"until":')
    add("null" if r.until is None else '"' + r.until.isoformat() + '"')
    add(',"reasons":[')
    sep = ""
    for x in r.reasons:
        add(sep + '{"code":' + s_(x.code) + ',"kind":' + s_(x.kind) + ',"title":' + title(x.title)
            + ',"points_lost":' + dec(x.points_lost) + "}")
        sep = ","
    add('],"points_to_next_grade":' + dec(r.points_to_next_grade) + ',"next_grade":'
        + _opt_str(r.next_grade) + "}")
    return JsonText("".join(parts))


# --------------------------------------------------------------------------------------------
# Reading back: the result document as domain objects (codec.result_from_dict), with the
# static pieces interned: every stored line of a rule shares one Title and one Provenance,
# like the results the engine makes, instead of new ones (and new enum lookups) per row.


_interned: dict[tuple[Any, ...], Any] = {}


def _intern(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    hit = _interned.get(key)
    if hit is None:
        if len(_interned) >= _Memo.LIMIT:
            _interned.clear()
        hit = _interned[key] = make()
    return hit


def _title_of(d: dict[str, Any]) -> Title:
    zh, en = d["zh"], d["en"]
    return _intern(("t", zh, en), lambda: Title(zh=zh, en=en))  # type: ignore[no-any-return]


def _provenance_of(d: dict[str, Any]) -> Provenance:
    tag, source, article = d["tag"], d["source"], d["article"]
    return _intern(("p", tag, source, article),  # type: ignore[no-any-return]
                   lambda: Provenance(tag=ProvenanceTag(tag), source=source, article=article))


def _grade_of(d: dict[str, Any]) -> Grade:
    title, provenance = _title_of(d["title"]), _provenance_of(d["provenance"])
    code, min_score, colour = d["code"], d["min_score"], d["colour"]
    return _intern(("g", code, title, provenance, min_score, colour),  # type: ignore[no-any-return]
                   lambda: Grade(code=code, title=title, provenance=provenance,
                                 min_score=None if min_score is None else Decimal(min_score),
                                 colour=colour))


def _decimal_of(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _date_of(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _value_of(data: Any) -> Any:
    cls = type(data)
    if cls is dict:
        return codec.value_from_json(data)
    if data is None or cls in (bool, int, str, float):
        return data
    return codec.value_from_json(data)  # its error for anything else


def result_from_document(data: dict[str, Any]) -> EvaluationResult:
    """`codec.result_from_dict(data)`: the same result (equal), and the same ValueError for a
    document that is not an encoded result."""
    if not isinstance(data, dict) or data.get("format") != codec.FORMAT:
        return codec.result_from_dict(data)  # raises its own ValueError
    try:
        s = data["subject"]
        dec, value, title_of, provenance_of = _decimal_of, _value_of, _title_of, _provenance_of
        return EvaluationResult(
            scorecard_id=data["scorecard_id"],
            version=data["version"],
            digest=data["digest"],
            subject=Subject(kind=SubjectKind(s["kind"]), id=s["id"], display_name=s["display_name"]),
            as_of=dt.date.fromisoformat(data["as_of"]),
            indicators={name: value(v) for name, v in data["indicators"].items()},
            score=dec(data["score"]),
            score_grade=data["score_grade"],
            grade=_grade_of(data["grade"]),
            lines=tuple(
                Line(rule_id=x["rule_id"], title=title_of(x["title"]), group=x["group"],
                     values=tuple((name, value(v)) for name, v in x["values"]),
                     points=Decimal(x["points"]), provenance=provenance_of(x["provenance"]),
                     points_before_cut=dec(x["points_before_cut"]), best_points=dec(x["best_points"]))
                for x in data["lines"]),
            groups=tuple(
                GroupTotal(id=x["id"], title=title_of(x["title"]),
                           total_before_cut=Decimal(x["total_before_cut"]), total=Decimal(x["total"]),
                           floor=dec(x["floor"]), ceiling=dec(x["ceiling"]))
                for x in data["groups"]),
            overrides=tuple(
                FiredOverride(id=x["id"], title=title_of(x["title"]), effect=EffectKind(x["effect"]),
                              grade=x["grade"], steps=x["steps"], until=_date_of(x["until"]),
                              provenance=provenance_of(x["provenance"]))
                for x in data["overrides"]),
            until=_date_of(data["until"]),
            reasons=tuple(_reason_of(x) for x in data["reasons"]),
            points_to_next_grade=dec(data["points_to_next_grade"]),
            next_grade=data["next_grade"],
        )
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return codec.result_from_dict(data)  # the codec's own error (or its result)


def _reason_of(x: dict[str, Any]) -> ReasonCode:
    kind = x["kind"]
    if kind not in ("override", "rule"):
        raise ValueError(f"unknown reason kind {kind!r}")
    return ReasonCode(code=x["code"], kind=kind, title=_title_of(x["title"]),
                      points_lost=_decimal_of(x["points_lost"]))
