"""The JSON documents of an evaluation row, built fast; the shapes are `codec`'s.

Two formats of the stored result, both read back to the same, equal result:
- Format 2 (what the service writes for its scorecards): what the evaluation decided (values,
  points, totals, the overrides that fired and until when, the reasons, the grade code),
  with rules, groups and overrides named by id. The static text every result of a scorecard
  version repeats (titles and provenance of every line, groups, overrides, grades) is
  `ResultParts`, stored once per scorecard digest in the table `scorecard_parts`: a taxi
  driver's row holds about 0.9 KB of result instead of 3.2 KB.
- Format 1 (`codec.result_to_dict`, whole): for a result its scorecard's parts do not
  describe exactly, and in rows written before format 2.

`result_json(result)` (format 1) is exactly `json.dumps(codec.result_to_dict(result),
ensure_ascii=False, separators=(",", ":"), allow_nan=False)` (tests/test_rowjson.py checks it
on every golden case); the static pieces are encoded once, remembered per object (the engine
hands out the card's own objects), and joined with the few values that change.
`input_json(input)` is the canonical JSON of `codec.input_to_dict(input)` (sorted keys): its
SHA-256 is `codec.request_digest`, so one encoding gives both the stored document and the
digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, cast

from sector_credit.scorecards import codec
from sector_credit.scorecards.exact import shown_decimal
from sector_credit.scorecards.kinds import best_points
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
    Scorecard,
    Subject,
    SubjectKind,
    Title,
)
from sector_credit.scorecards.text import same_decimal

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
        return _int(value)
    if cls is str:
        return _s(value)  # type: ignore[arg-type]
    if cls is Decimal:
        return '{"decimal":"' + str(value) + '"}'
    if cls is dt.date:
        return '{"date":"' + cast(dt.date, value).isoformat() + '"}'
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
        + _opt_str(r.next_grade) + ',"base":' + dec(r.base) + ',"score_before_cut":'
        + dec(r.score_before_cut) + "}")
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


def result_from_document(data: dict[str, Any],
                         parts_for: Callable[[str], ResultParts | None] | None = None) -> EvaluationResult:
    """The result a stored document holds. Format 1: `codec.result_from_dict(data)` (the same
    result, equal, and the same ValueError for a document that is not an encoded result).
    Format 2: with the parts `parts_for(digest)` gives; ValueError when they are unknown or
    do not match the document.

    A row written before results carried their base and score before the cut gets them from
    the parts of its digest, where known (`codec.with_base`)."""
    if isinstance(data, dict) and data.get("format") == 2:
        digest = data.get("digest")
        parts = parts_for(digest) if parts_for is not None and isinstance(digest, str) else None
        if parts is None:
            raise ValueError(f"a format-2 result needs the parts of scorecard {digest!r}; none are stored")
        try:
            return _result_v2(data, parts)
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise ValueError(f"not a format-2 result document: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != codec.FORMAT:
        return codec.result_from_dict(data)  # raises its own ValueError
    base = None
    if "base" not in data and parts_for is not None and isinstance(data.get("digest"), str):
        parts = parts_for(data["digest"])
        base = None if parts is None else parts.base
    try:
        s = data["subject"]
        dec, value, title_of, provenance_of = _decimal_of, _value_of, _title_of, _provenance_of
        result = EvaluationResult(
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
            base=dec(data.get("base")),
            score_before_cut=dec(data.get("score_before_cut")),
        )
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return codec.result_from_dict(data, base)  # the codec's own error (or its result)
    return result if "base" in data else codec.with_base(result, base)


def _reason_of(x: dict[str, Any]) -> ReasonCode:
    kind = x["kind"]
    if kind not in ("override", "rule"):
        raise ValueError(f"unknown reason kind {kind!r}")
    return ReasonCode(code=x["code"], kind=kind, title=_title_of(x["title"]),
                      points_lost=_decimal_of(x["points_lost"]))


# --------------------------------------------------------------------------------------------
# Format 2: the result without its scorecard's static text
#
# Most of a format-1 document (some 3 KB of 3.4) is text every result of the scorecard
# version repeats: the titles and provenance of every line, the grade, the groups. Format 2
# keeps only what the evaluation decided (values, points, totals, the overrides that fired and
# until when, the reasons, the grade code) and names the rules, groups and overrides by id; the
# static text is stored once per scorecard digest (`ResultParts`, table `scorecard_parts`).
# Read back with its parts, a format-2 document gives a result equal to the one written.
# A result that the parts do not describe exactly (not from this scorecard's engine) is
# written in format 1, whole.

RESULT_PARTS_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ResultParts:
    """What every result of one scorecard version shares: one line per rule, in order (with
    zero points and no value), the groups (zero totals), the overrides (no `until`), the
    grades by code, the base (None: no score, or parts stored before they recorded it); and,
    derived from them, the title of every reason by (code, kind)."""

    scorecard_id: str
    version: str
    digest: str
    lines: tuple[Line, ...]
    groups: tuple[GroupTotal, ...]
    overrides: dict[str, FiredOverride]
    grades: dict[str, Grade]
    base: Decimal | None = None
    reason_titles: dict[tuple[str, str], Title] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        titles = {(x.rule_id, "rule"): x.title for x in self.lines}
        titles.update({(o.id, "override"): o.title for o in self.overrides.values()})
        object.__setattr__(self, "reason_titles", titles)


def result_parts(card: Scorecard) -> ResultParts:
    """The parts of every result of `card`, from the card's own objects (so a result of its
    engine is recognised by identity)."""
    inds = {i.name: i for i in card.indicators}
    zero = Decimal(0)
    return ResultParts(
        scorecard_id=card.id, version=card.version, digest=card.digest,
        lines=tuple(Line(r.id, r.title, r.group, ((r.indicator, None),), zero, r.provenance, None,
                         best_points(r, inds[r.indicator])) for r in card.rules),
        groups=tuple(GroupTotal(g.id, g.title, zero, zero, g.floor, g.ceiling) for g in card.groups),
        overrides={o.id: FiredOverride(o.id, o.title, o.effect, o.grade, o.steps, None, o.provenance)
                   for o in card.overrides},
        grades={g.code: g for g in card.grades},
        base=None if card.base is None else shown_decimal(card.base),
    )


def result_parts_json(p: ResultParts) -> str:
    """The stored form of the parts (column `scorecard_parts.parts`)."""
    lines = ",".join(
        '{"rule_id":' + _s(x.rule_id) + ',"title":' + _title_text(x.title) + ',"group":'
        + _opt_str(x.group) + ',"indicator":' + _s(x.values[0][0]) + ',"provenance":'
        + _provenance_text(x.provenance) + ',"best_points":' + _dec(x.best_points) + "}"
        for x in p.lines)
    groups = ",".join(
        '{"id":' + _s(g.id) + ',"title":' + _title_text(g.title) + ',"floor":' + _dec(g.floor)
        + ',"ceiling":' + _dec(g.ceiling) + "}" for g in p.groups)
    overrides = ",".join(
        '{"id":' + _s(o.id) + ',"title":' + _title_text(o.title) + ',"effect":' + _s(o.effect.value)
        + ',"grade":' + _opt_str(o.grade) + ',"steps":' + _int(o.steps) + ',"provenance":'
        + _provenance_text(o.provenance) + "}" for o in p.overrides.values())
    grades = ",".join(_grade_text(g) for g in p.grades.values())
    return ('{"format":' + _int(RESULT_PARTS_FORMAT) + ',"scorecard_id":' + _s(p.scorecard_id)
            + ',"version":' + _s(p.version) + ',"digest":' + _s(p.digest) + ',"lines":[' + lines
            + '],"groups":[' + groups + '],"overrides":[' + overrides + '],"grades":[' + grades + ']'
            + ',"base":' + _dec(p.base) + "}")


def result_parts_from_document(data: dict[str, Any]) -> ResultParts:
    """The parts stored by `result_parts_json`; ValueError for anything else."""
    try:
        if data["format"] != RESULT_PARTS_FORMAT:
            raise ValueError(f"unknown result parts format {data['format']!r}")
        zero = Decimal(0)
        grades = [_grade_of(g) for g in data["grades"]]
        return ResultParts(
            scorecard_id=data["scorecard_id"], version=data["version"], digest=data["digest"],
            lines=tuple(Line(x["rule_id"], _title_of(x["title"]), x["group"], ((x["indicator"], None),),
                             zero, _provenance_of(x["provenance"]), None, _decimal_of(x["best_points"]))
                        for x in data["lines"]),
            groups=tuple(GroupTotal(g["id"], _title_of(g["title"]), zero, zero, _decimal_of(g["floor"]),
                                    _decimal_of(g["ceiling"])) for g in data["groups"]),
            overrides={o["id"]: FiredOverride(o["id"], _title_of(o["title"]), EffectKind(o["effect"]),
                                              o["grade"], o["steps"], None, _provenance_of(o["provenance"]))
                       for o in data["overrides"]},
            grades={g.code: g for g in grades},
            base=_decimal_of(data.get("base")),  # absent: parts stored before they recorded it
        )
    except (KeyError, TypeError, ArithmeticError, IndexError) as exc:
        raise ValueError(f"not a result parts document: {exc!r}") from None


def _same(a: object, b: object) -> bool:
    return a is b or a == b


def _fits(r: EvaluationResult, p: ResultParts) -> bool:
    """True when `p` and the decisions of `r` give back `r` exactly. (The comparisons are
    written out: a result of the card's engine passes on identity, for every row.)"""
    lines, part_lines = r.lines, p.lines
    if len(lines) != len(part_lines) or len(r.groups) != len(p.groups):
        return False
    grade, part_grade = r.grade, p.grades.get(r.grade.code)
    if grade is not part_grade and grade != part_grade:
        return False
    if r.base is not p.base and not same_decimal(r.base, p.base):
        return False
    indicators = r.indicators
    for line, part in zip(lines, part_lines):
        a, b = line.title, part.title
        c, d = line.provenance, part.provenance
        e, f = line.best_points, part.best_points
        if (line.rule_id != part.rule_id or line.group != part.group
                or (a is not b and a != b) or (c is not d and c != d)
                or (e is not f and not same_decimal(e, f))):
            return False
        values = line.values
        name = part.values[0][0]
        if len(values) != 1 or values[0][0] != name or values[0][1] is not indicators.get(name):
            return False
    for g, part_g in zip(r.groups, p.groups):
        if (g.id != part_g.id or not _same(g.title, part_g.title)
                or not same_decimal(g.floor, part_g.floor) or not same_decimal(g.ceiling, part_g.ceiling)):
            return False
    for o in r.overrides:
        part_o = p.overrides.get(o.id)
        if (part_o is None or not _same(o.title, part_o.title) or o.effect is not part_o.effect
                or o.grade != part_o.grade or o.steps != part_o.steps
                or not _same(o.provenance, part_o.provenance)):
            return False
    if r.reasons:
        titles = p.reason_titles
        for x in r.reasons:
            t = titles.get((x.code, x.kind))
            if x.title is not t and x.title != t:
                return False
    return True


_heads2: dict[str, str] = {}


def result_json_compact(r: EvaluationResult, parts: ResultParts | None) -> JsonText:
    """The format-2 document of `r` when `parts` (of its digest) describe it exactly, else the
    whole format-1 document (`result_json`)."""
    if parts is None or parts.digest != r.digest or not _fits(r, parts):
        return result_json(r)
    s = r.subject
    dec, s_ = _dec, _s
    head = _heads2.get(r.digest)
    if head is None:
        head = ('{"format":2,"scorecard_id":' + s_(r.scorecard_id) + ',"version":' + s_(r.version)
                + ',"digest":' + s_(r.digest) + ',"subject":{"kind":')
        if len(_heads2) >= _Memo.LIMIT:
            _heads2.clear()
        _heads2[r.digest] = head
    out = [
        head, s_(s.kind.value), ',"id":', s_(s.id), ',"display_name":', s_(s.display_name),
        '},"as_of":"', r.as_of.isoformat(), '","indicators":', _indicators(r.indicators),
        ',"score":', dec(r.score), ',"score_grade":', _opt_str(r.score_grade), ',"grade":',
        s_(r.grade.code), ',"lines":[',
        ",".join(["[" + s_(x.rule_id) + ',"' + str(x.points) + '",' + dec(x.points_before_cut) + "]"
                  for x in r.lines]),
        '],"groups":[',
        ",".join(["[" + s_(g.id) + ',"' + str(g.total_before_cut) + '","' + str(g.total) + '"]'
                  for g in r.groups]),
        '],"overrides":[',
        ",".join(["[" + s_(o.id) + "," + ("null" if o.until is None else '"' + o.until.isoformat() + '"') + "]"
                  for o in r.overrides]),
        '],"until":', "null" if r.until is None else '"' + r.until.isoformat() + '"',
        ',"reasons":[',
        ",".join([f"[{s_(x.code)},{s_(x.kind)},{dec(x.points_lost)}]" for x in r.reasons]),
        '],"points_to_next_grade":', dec(r.points_to_next_grade), ',"next_grade":',
        _opt_str(r.next_grade), ',"score_before_cut":', dec(r.score_before_cut), "}",
    ]
    return JsonText("".join(out))


def _result_v2(data: dict[str, Any], parts: ResultParts) -> EvaluationResult:
    if data["digest"] != parts.digest:
        raise ValueError("the result parts belong to another scorecard digest")
    dec, value = _decimal_of, _value_of
    s = data["subject"]
    indicators = {name: value(v) for name, v in data["indicators"].items()}
    lines = []
    for part, (rule_id, points, before) in zip(parts.lines, data["lines"], strict=True):
        if rule_id != part.rule_id:
            raise ValueError(f"line {rule_id!r} where the scorecard has rule {part.rule_id!r}")
        name = part.values[0][0]
        lines.append(Line(rule_id, part.title, part.group, ((name, indicators.get(name)),),
                          Decimal(points), part.provenance, dec(before), part.best_points))
    groups = []
    for part_g, (group_id, before, total) in zip(parts.groups, data["groups"], strict=True):
        if group_id != part_g.id:
            raise ValueError(f"group {group_id!r} where the scorecard has group {part_g.id!r}")
        groups.append(GroupTotal(group_id, part_g.title, Decimal(before), Decimal(total),
                                 part_g.floor, part_g.ceiling))
    overrides = []
    for override_id, until in data["overrides"]:
        o = parts.overrides[override_id]
        overrides.append(FiredOverride(o.id, o.title, o.effect, o.grade, o.steps, _date_of(until),
                                       o.provenance))
    titles = parts.reason_titles
    reasons = []
    for code, kind, lost in data["reasons"]:
        if kind not in ("override", "rule"):
            raise ValueError(f"unknown reason kind {kind!r}")
        reasons.append(ReasonCode(code, kind, titles[(code, kind)], dec(lost)))
    result = EvaluationResult(
        scorecard_id=data["scorecard_id"], version=data["version"], digest=data["digest"],
        subject=Subject(kind=SubjectKind(s["kind"]), id=s["id"], display_name=s["display_name"]),
        as_of=dt.date.fromisoformat(data["as_of"]), indicators=indicators,
        score=dec(data["score"]), score_grade=data["score_grade"],
        grade=parts.grades[data["grade"]], lines=tuple(lines), groups=tuple(groups),
        overrides=tuple(overrides), until=_date_of(data["until"]), reasons=tuple(reasons),
        points_to_next_grade=dec(data["points_to_next_grade"]), next_grade=data["next_grade"],
        base=parts.base, score_before_cut=dec(data.get("score_before_cut")),
    )
    # a row written before results carried the score before the cut: derived from the base
    return result if "score_before_cut" in data else codec.with_base(result, parts.base)
