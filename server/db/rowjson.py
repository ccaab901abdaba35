"""The JSON documents of an evaluation row, encoded with orjson; the shapes are `codec`'s.

Two formats of the stored result, both read back to the same, equal result:
- Format 2 (what the service writes for its scorecards): what the evaluation decided (values,
  points, totals, the overrides that fired and until when, the reasons, the grade code),
  with rules, groups and overrides named by id. The static text every result of a scorecard
  version repeats (titles and provenance of every line, groups, overrides, grades) is
  `ResultParts`, stored once per scorecard digest in the table `scorecard_parts`: a taxi
  driver's row holds about 0.9 KB of result instead of 3.2 KB.
- Format 1 (`codec.result_to_dict`, whole): for a result its scorecard's parts do not
  describe exactly, and in rows written before format 2.

The text is byte for byte what `json.dumps(..., ensure_ascii=False, separators=(",", ":"),
allow_nan=False)` writes (and wrote before orjson: tests/test_rowjson.py checks both, on
every golden case and on documents the hand-written encoder stored): orjson escapes the same
characters and writes keys in the same order. Where its text would differ, a float in
exponent form (orjson `1e-7`, json `1e-07`; floats occur only in raw input values) or an
integer beyond 64 bits (which orjson refuses), the document goes through the json module.
`input_json(input)` is the canonical JSON of `codec.input_to_dict(input)` (sorted keys): its
SHA-256 is `codec.request_digest`, so one encoding gives both the stored document and the
digest.

Over 500 lines for a reason: the two formats are one document, written and read by one set of
field encoders and interning readers (`_dec`, `_title`, `_title_of`, `_grade_of`, ...): format
2 is format 1 with the static text replaced by ids into `ResultParts`. Apart, format 2 would
import format 1's private helpers and `result_from_document` (format 1's reader, which
dispatches on the format) would import format 2 back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import orjson
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
    Measure,
    Provenance,
    ProvenanceTag,
    ReasonCode,
    Scorecard,
    Subject,
    SubjectKind,
    Title,
)
from sector_credit.scorecards.semantics import override_reads
from sector_credit.scorecards.text import same_decimal

if codec.FORMAT != 1:  # pragma: no cover - a new codec format needs this module updated too
    raise ImportError(f"rowjson writes codec format 1, the codec is at format {codec.FORMAT}")


class JsonText(str):
    """A JSON document already encoded: the engine's JSON serializer stores it as it is."""

    __slots__ = ()


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def dumps(data: Any, *, sort_keys: bool = False, floats: bool = False) -> str:
    """`data` (JSON types only) as compact JSON, UTF-8 kept as it is, keys sorted when asked:
    orjson's text, or the json module's where orjson's would differ (`floats`: the document
    may hold a float) or orjson refuses the value (an integer beyond 64 bits)."""
    if not floats:
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
        except orjson.JSONEncodeError:
            pass
    return (_canonical if sort_keys else _compact)(data)


def _has_float(values: Iterable[object]) -> bool:
    return any(isinstance(v, float) for v in values)


def input_json(inp: EvaluationInput) -> tuple[JsonText, str]:
    """The stored `input` document (canonical JSON) and its SHA-256 hex, which is
    `codec.request_digest(inp)`."""
    floats = _has_float(inp.indicators.values())
    text = dumps(codec.input_to_dict(inp), sort_keys=True, floats=floats)
    return JsonText(text), hashlib.sha256(text.encode("utf-8")).hexdigest()


def _floats_in(r: EvaluationResult) -> bool:
    return _has_float(r.indicators.values()) or any(
        _has_float(v for _, v in line.values) for line in r.lines
    )


def result_json(r: EvaluationResult) -> JsonText:
    """The format-1 document: `codec.result_to_dict(r)` as compact JSON."""
    return JsonText(dumps(codec.result_to_dict(r), floats=_floats_in(r)))


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _title(t: Title) -> dict[str, str]:
    return {"zh": t.zh, "en": t.en}


def _provenance(p: Provenance) -> dict[str, str]:
    return {"tag": p.tag.value, "source": p.source, "article": p.article}


def _with_measures(data: dict[str, Any], measures: tuple[Measure, ...]) -> dict[str, Any]:
    """A grade's or an override's dict with its `measures` last, when it has any (`codec`
    writes the key only then)."""
    if measures:
        data["measures"] = [
            {"id": m.id, "title": _title(m.title), "provenance": _provenance(m.provenance)}
            for m in measures
        ]
    return data


def _grade(g: Grade) -> dict[str, Any]:
    return _with_measures(
        {
            "code": g.code,
            "title": _title(g.title),
            "provenance": _provenance(g.provenance),
            "min_score": _dec(g.min_score),
            "colour": g.colour,
        },
        g.measures,
    )


# --------------------------------------------------------------------------------------------
# Reading back: the result document as domain objects (codec.result_from_dict), with the
# static pieces interned: every stored line of a rule shares one Title and one Provenance,
# like the results the engine makes, instead of new ones (and new enum lookups) per row.


_interned: dict[tuple[Any, ...], Any] = {}
_INTERN_LIMIT = 8192


T = TypeVar("T")


def _intern(key: tuple[Any, ...], make: Callable[[], T]) -> T:
    hit: T | None = _interned.get(key)
    if hit is None:
        if len(_interned) >= _INTERN_LIMIT:
            _interned.clear()
        hit = _interned[key] = make()
    return hit


def _title_of(d: dict[str, Any]) -> Title:
    zh, en = d["zh"], d["en"]
    return _intern(("t", zh, en), lambda: Title(zh=zh, en=en))


def _provenance_of(d: dict[str, Any]) -> Provenance:
    tag, source, article = d["tag"], d["source"], d["article"]
    return _intern(
        ("p", tag, source, article),
        lambda: Provenance(tag=ProvenanceTag(tag), source=source, article=article),
    )


def _measures_of(d: dict[str, Any]) -> tuple[Measure, ...]:
    """A grade's or an override's measures (none when the document has no `measures`)."""
    found = d.get("measures")
    if not found:
        return ()
    return tuple(
        _measure_of(m["id"], _title_of(m["title"]), _provenance_of(m["provenance"])) for m in found
    )


def _measure_of(measure_id: str, title: Title, provenance: Provenance) -> Measure:
    return _intern(
        ("m", measure_id, title, provenance),
        lambda: Measure(id=measure_id, title=title, provenance=provenance),
    )


def _grade_of(d: dict[str, Any]) -> Grade:
    title, provenance = _title_of(d["title"]), _provenance_of(d["provenance"])
    code, min_score, colour = d["code"], d["min_score"], d["colour"]
    measures = _measures_of(d)
    return _intern(
        ("g", code, title, provenance, min_score, colour, measures),
        lambda: Grade(
            code=code,
            title=title,
            provenance=provenance,
            min_score=None if min_score is None else Decimal(min_score),
            colour=colour,
            measures=measures,
        ),
    )


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


def result_from_document(
    data: dict[str, Any], parts_for: Callable[[str], ResultParts | None] | None = None
) -> EvaluationResult:
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
            raise ValueError(
                f"a format-2 result needs the parts of scorecard {digest!r}; none are stored"
            )
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
            subject=Subject(
                kind=SubjectKind(s["kind"]), id=s["id"], display_name=s["display_name"]
            ),
            as_of=dt.date.fromisoformat(data["as_of"]),
            indicators={name: value(v) for name, v in data["indicators"].items()},
            score=dec(data["score"]),
            score_grade=data["score_grade"],
            grade=_grade_of(data["grade"]),
            lines=tuple(
                Line(
                    rule_id=x["rule_id"],
                    title=title_of(x["title"]),
                    group=x["group"],
                    values=tuple((name, value(v)) for name, v in x["values"]),
                    points=Decimal(x["points"]),
                    provenance=provenance_of(x["provenance"]),
                    points_before_cut=dec(x["points_before_cut"]),
                    best_points=dec(x["best_points"]),
                )
                for x in data["lines"]
            ),
            groups=tuple(
                GroupTotal(
                    id=x["id"],
                    title=title_of(x["title"]),
                    total_before_cut=Decimal(x["total_before_cut"]),
                    total=Decimal(x["total"]),
                    floor=dec(x["floor"]),
                    ceiling=dec(x["ceiling"]),
                )
                for x in data["groups"]
            ),
            overrides=tuple(
                FiredOverride(
                    id=x["id"],
                    title=title_of(x["title"]),
                    effect=EffectKind(x["effect"]),
                    grade=x["grade"],
                    steps=x["steps"],
                    until=_date_of(x["until"]),
                    provenance=provenance_of(x["provenance"]),
                    measures=_measures_of(x),
                )
                for x in data["overrides"]
            ),
            until=_date_of(data["until"]),
            reasons=tuple(_reason_of(x) for x in data["reasons"]),
            points_to_next_grade=dec(data["points_to_next_grade"]),
            next_grade=data["next_grade"],
            base=dec(data.get("base")),
            score_before_cut=dec(data.get("score_before_cut")),
            evidence=codec.evidence_from_list(data.get("records")),
        )
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return codec.result_from_dict(data, base)  # the codec's own error (or its result)
    return result if "base" in data else codec.with_base(result, base)


def _reason_of(x: dict[str, Any]) -> ReasonCode:
    kind = x["kind"]
    if kind not in ("override", "rule"):
        raise ValueError(f"unknown reason kind {kind!r}")
    return ReasonCode(
        code=x["code"],
        kind=kind,
        title=_title_of(x["title"]),
        points_lost=_decimal_of(x["points_lost"]),
    )


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
    # the card these parts were made of (`result_parts`), None for parts read back: a result
    # this card's engine made is described by them by construction (`result_json_compact`)
    card: Scorecard | None = field(default=None, compare=False, repr=False)
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
        scorecard_id=card.id,
        version=card.version,
        digest=card.digest,
        lines=tuple(
            Line(
                r.id,
                r.title,
                r.group,
                ((r.indicator, None),),
                zero,
                r.provenance,
                None,
                best_points(r, inds[r.indicator]),
            )
            for r in card.rules
        ),
        groups=tuple(
            GroupTotal(g.id, g.title, zero, zero, g.floor, g.ceiling) for g in card.groups
        ),
        overrides={
            o.id: FiredOverride(
                o.id,
                o.title,
                o.effect,
                o.grade,
                o.steps,
                None,
                o.provenance,
                o.measures,
                override_reads(o),
            )
            for o in card.overrides
        },
        grades={g.code: g for g in card.grades},
        base=None if card.base is None else shown_decimal(card.base),
        card=card,
    )


def result_parts_json(p: ResultParts) -> str:
    """The stored form of the parts (column `scorecard_parts.parts`)."""
    return dumps(
        {
            "format": RESULT_PARTS_FORMAT,
            "scorecard_id": p.scorecard_id,
            "version": p.version,
            "digest": p.digest,
            "lines": [
                {
                    "rule_id": x.rule_id,
                    "title": _title(x.title),
                    "group": x.group,
                    "indicator": x.values[0][0],
                    "provenance": _provenance(x.provenance),
                    "best_points": _dec(x.best_points),
                }
                for x in p.lines
            ],
            "groups": [
                {
                    "id": g.id,
                    "title": _title(g.title),
                    "floor": _dec(g.floor),
                    "ceiling": _dec(g.ceiling),
                }
                for g in p.groups
            ],
            "overrides": [
                _with_measures(
                    {
                        "id": o.id,
                        "title": _title(o.title),
                        "effect": o.effect.value,
                        "grade": o.grade,
                        "steps": o.steps,
                        "provenance": _provenance(o.provenance),
                    },
                    o.measures,
                )
                for o in p.overrides.values()
            ],
            "grades": [_grade(g) for g in p.grades.values()],
            "base": _dec(p.base),
        }
    )


def result_parts_from_document(data: dict[str, Any]) -> ResultParts:
    """The parts stored by `result_parts_json`; ValueError for anything else."""
    try:
        if data["format"] != RESULT_PARTS_FORMAT:
            raise ValueError(f"unknown result parts format {data['format']!r}")
        zero = Decimal(0)
        grades = [_grade_of(g) for g in data["grades"]]
        return ResultParts(
            scorecard_id=data["scorecard_id"],
            version=data["version"],
            digest=data["digest"],
            lines=tuple(
                Line(
                    x["rule_id"],
                    _title_of(x["title"]),
                    x["group"],
                    ((x["indicator"], None),),
                    zero,
                    _provenance_of(x["provenance"]),
                    None,
                    _decimal_of(x["best_points"]),
                )
                for x in data["lines"]
            ),
            groups=tuple(
                GroupTotal(
                    g["id"],
                    _title_of(g["title"]),
                    zero,
                    zero,
                    _decimal_of(g["floor"]),
                    _decimal_of(g["ceiling"]),
                )
                for g in data["groups"]
            ),
            overrides={
                o["id"]: FiredOverride(
                    o["id"],
                    _title_of(o["title"]),
                    EffectKind(o["effect"]),
                    o["grade"],
                    o["steps"],
                    None,
                    _provenance_of(o["provenance"]),
                    _measures_of(o),
                )
                for o in data["overrides"]
            },
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
        if (
            line.rule_id != part.rule_id
            or line.group != part.group
            or (a is not b and a != b)
            or (c is not d and c != d)
            or (e is not f and not same_decimal(e, f))
        ):
            return False
        values = line.values
        name = part.values[0][0]
        if len(values) != 1 or values[0][0] != name or values[0][1] is not indicators.get(name):
            return False
    for g, part_g in zip(r.groups, p.groups):
        if (
            g.id != part_g.id
            or not _same(g.title, part_g.title)
            or not same_decimal(g.floor, part_g.floor)
            or not same_decimal(g.ceiling, part_g.ceiling)
        ):
            return False
    for o in r.overrides:
        part_o = p.overrides.get(o.id)
        if (
            part_o is None
            or not _same(o.title, part_o.title)
            or o.effect is not part_o.effect
            or o.grade != part_o.grade
            or o.steps != part_o.steps
            or not _same(o.provenance, part_o.provenance)
            or not _same(o.measures, part_o.measures)
        ):
            return False
    if r.reasons:
        titles = p.reason_titles
        for x in r.reasons:
            t = titles.get((x.code, x.kind))
            if x.title is not t and x.title != t:
                return False
    return True


def result_json_compact(
    r: EvaluationResult, parts: ResultParts | None, made_by: Scorecard | None = None
) -> JsonText:
    """The format-2 document of `r` when `parts` (of its digest) describe it exactly, else the
    whole format-1 document (`result_json`).

    `made_by`: the card whose engine made `r`, as the caller knows (the servicer, of the
    result it just evaluated). When `parts` are that card's own (`result_parts(made_by)`),
    `r` is not checked against them (`_fits`, a walk of every line): the engine builds every
    line, group, override, reason and the grade of the card's objects, and from nothing else
    (tests/test_rowjson.py pins this on every golden case). Any other result, or parts read
    back from the store, is checked."""
    if parts is None or parts.digest != r.digest:
        return result_json(r)
    if (made_by is None or parts.card is not made_by) and not _fits(r, parts):
        return result_json(r)
    s = r.subject
    return JsonText(
        dumps(
            {
                "format": 2,
                "scorecard_id": r.scorecard_id,
                "version": r.version,
                "digest": r.digest,
                "subject": {"kind": s.kind.value, "id": s.id, "display_name": s.display_name},
                "as_of": r.as_of.isoformat(),
                "indicators": codec.indicators_to_dict(r.indicators),
                "score": _dec(r.score),
                "score_grade": r.score_grade,
                "grade": r.grade.code,
                "lines": [[x.rule_id, str(x.points), _dec(x.points_before_cut)] for x in r.lines],
                "groups": [[g.id, str(g.total_before_cut), str(g.total)] for g in r.groups],
                "overrides": [[o.id, _date(o.until)] for o in r.overrides],
                "until": _date(r.until),
                "reasons": [[x.code, x.kind, _dec(x.points_lost)] for x in r.reasons],
                "points_to_next_grade": _dec(r.points_to_next_grade),
                "next_grade": r.next_grade,
                "score_before_cut": _dec(r.score_before_cut),
                **({"records": codec.evidence_to_list(r.evidence)} if r.evidence else {}),
            },
            floats=_has_float(r.indicators.values()),
        )
    )


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
        lines.append(
            Line(
                rule_id,
                part.title,
                part.group,
                ((name, indicators.get(name)),),
                Decimal(points),
                part.provenance,
                dec(before),
                part.best_points,
            )
        )
    groups = []
    for part_g, (group_id, before, total) in zip(parts.groups, data["groups"], strict=True):
        if group_id != part_g.id:
            raise ValueError(f"group {group_id!r} where the scorecard has group {part_g.id!r}")
        groups.append(
            GroupTotal(
                group_id,
                part_g.title,
                Decimal(before),
                Decimal(total),
                part_g.floor,
                part_g.ceiling,
            )
        )
    overrides = []
    for override_id, until in data["overrides"]:
        o = parts.overrides[override_id]
        overrides.append(
            FiredOverride(
                o.id,
                o.title,
                o.effect,
                o.grade,
                o.steps,
                _date_of(until),
                o.provenance,
                o.measures,
                o.reads,
            )
        )
    titles = parts.reason_titles
    reasons = []
    for code, kind, lost in data["reasons"]:
        if kind not in ("override", "rule"):
            raise ValueError(f"unknown reason kind {kind!r}")
        reasons.append(ReasonCode(code, kind, titles[(code, kind)], dec(lost)))
    result = EvaluationResult(
        scorecard_id=data["scorecard_id"],
        version=data["version"],
        digest=data["digest"],
        subject=Subject(kind=SubjectKind(s["kind"]), id=s["id"], display_name=s["display_name"]),
        as_of=dt.date.fromisoformat(data["as_of"]),
        indicators=indicators,
        score=dec(data["score"]),
        score_grade=data["score_grade"],
        grade=parts.grades[data["grade"]],
        lines=tuple(lines),
        groups=tuple(groups),
        overrides=tuple(overrides),
        until=_date_of(data["until"]),
        reasons=tuple(reasons),
        points_to_next_grade=dec(data["points_to_next_grade"]),
        next_grade=data["next_grade"],
        base=parts.base,
        score_before_cut=dec(data.get("score_before_cut")),
        evidence=codec.evidence_from_list(data.get("records")),
    )
    # a row written before results carried the score before the cut: derived from the base
    return result if "score_before_cut" in data else codec.with_base(result, parts.base)
