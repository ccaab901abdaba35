"""JSON-safe dictionaries for evaluation inputs and results, and back, exactly.

The audit store keeps what went into an evaluation and what came out as JSON (JSONB on
PostgreSQL), so an auditor can read a row without this code and the service can rebuild the
domain objects from it. Pure functions over `model.py`; no I/O, no SQLAlchemy, no gRPC.

Encoding:
- Decimals are strings (`str(Decimal)`, so "74.70" keeps its trailing zero), dates are ISO
  `YYYY-MM-DD`, enums are their values, tuples are lists.
- Indicator values can be any of int, Decimal, bool, str and date, so a bare string would be
  ambiguous (a choice code "1.5" against a Decimal 1.5). JSON's own types carry int, bool,
  str (and float, for raw input) as themselves; a Decimal is `{"decimal": "97.5"}` and a date
  `{"date": "2024-05-01"}`.
- Each top-level dictionary carries `"format": 1`, so a later change of shape can be read
  next to rows written before it.

JSON objects are mappings: PostgreSQL's JSONB does not keep key order, so the order of the
`indicators` mapping may differ after a trip through the database (everything whose order
means something, such as lines and reasons, is a list).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .exact import q2
from .model import (
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
    RecordEvidence,
    Subject,
    SubjectKind,
    Title,
)

FORMAT = 1
"""The version of the dictionary shape written by this module. (`base` and
`score_before_cut` were added to results later, and the `measures` of a grade or an override,
written only when there are some; a result without them still reads.)"""

JsonDict = dict[str, Any]

__all__ = [
    "FORMAT",
    "canonical_json",
    "indicators_from_dict",
    "indicators_to_dict",
    "input_from_dict",
    "input_to_dict",
    "request_digest",
    "result_from_dict",
    "result_to_dict",
    "value_from_json",
    "value_to_json",
    "with_base",
]


# --------------------------------------------------------------------------------------------
# Single values


def value_to_json(value: object) -> Any:
    """One indicator value (validated, or raw as received) as a JSON-safe value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):  # a datetime is a date too; refuse to drop its time
        raise TypeError(f"a datetime is not an indicator value: {value!r}")
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a non-finite number has no JSON form: {value!r}")
        return value
    raise TypeError(f"cannot encode an indicator value of type {type(value).__name__}")


def value_from_json(data: Any) -> Any:
    """The inverse of `value_to_json`."""
    if data is None or isinstance(data, (bool, int, str, float)):
        return data
    if isinstance(data, dict) and len(data) == 1:
        if "decimal" in data:
            return Decimal(data["decimal"])
        if "date" in data:
            return dt.date.fromisoformat(data["date"])
    raise ValueError(f"not an encoded indicator value: {data!r}")


def indicators_to_dict(indicators: Mapping[str, object]) -> JsonDict:
    """Indicator values by name (the validated values of a result, or raw input)."""
    return {name: value_to_json(value) for name, value in indicators.items()}


def indicators_from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `indicators_to_dict`."""
    return {name: value_from_json(value) for name, value in data.items()}


# --------------------------------------------------------------------------------------------
# Small pieces


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec_back(data: str | None) -> Decimal | None:
    return None if data is None else Decimal(data)


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date_back(data: str | None) -> dt.date | None:
    return None if data is None else dt.date.fromisoformat(data)


def _title(t: Title) -> JsonDict:
    return {"zh": t.zh, "en": t.en}


def _title_back(d: Mapping[str, Any]) -> Title:
    return Title(zh=d["zh"], en=d["en"])


def _provenance(p: Provenance) -> JsonDict:
    return {"tag": p.tag.value, "source": p.source, "article": p.article}


def _provenance_back(d: Mapping[str, Any]) -> Provenance:
    return Provenance(tag=ProvenanceTag(d["tag"]), source=d["source"], article=d["article"])


def _subject(s: Subject) -> JsonDict:
    return {"kind": s.kind.value, "id": s.id, "display_name": s.display_name}


def _subject_back(d: Mapping[str, Any]) -> Subject:
    return Subject(kind=SubjectKind(d["kind"]), id=d["id"], display_name=d["display_name"])


def _measure(m: Measure) -> JsonDict:
    return {"id": m.id, "title": _title(m.title), "provenance": _provenance(m.provenance)}


def _measures_back(d: Mapping[str, Any]) -> tuple[Measure, ...]:
    """A grade's or an override's measures; none in a document written before they existed
    (or of a scorecard that has none: the key is written only when there are some)."""
    return tuple(
        Measure(
            id=m["id"], title=_title_back(m["title"]), provenance=_provenance_back(m["provenance"])
        )
        for m in d.get("measures", ())
    )


def _grade(g: Grade) -> JsonDict:
    data: JsonDict = {
        "code": g.code,
        "title": _title(g.title),
        "provenance": _provenance(g.provenance),
        "min_score": _dec(g.min_score),
        "colour": g.colour,
    }
    if g.measures:
        data["measures"] = [_measure(m) for m in g.measures]
    return data


def _grade_back(d: Mapping[str, Any]) -> Grade:
    return Grade(
        code=d["code"],
        title=_title_back(d["title"]),
        provenance=_provenance_back(d["provenance"]),
        min_score=_dec_back(d["min_score"]),
        colour=d["colour"],
        measures=_measures_back(d),
    )


def _line(line: Line) -> JsonDict:
    return {
        "rule_id": line.rule_id,
        "title": _title(line.title),
        "group": line.group,
        "values": [[name, value_to_json(value)] for name, value in line.values],
        "points": str(line.points),
        "provenance": _provenance(line.provenance),
        "points_before_cut": _dec(line.points_before_cut),
        "best_points": _dec(line.best_points),
    }


def _line_back(d: Mapping[str, Any]) -> Line:
    return Line(
        rule_id=d["rule_id"],
        title=_title_back(d["title"]),
        group=d["group"],
        values=tuple((name, value_from_json(value)) for name, value in d["values"]),
        points=Decimal(d["points"]),
        provenance=_provenance_back(d["provenance"]),
        points_before_cut=_dec_back(d["points_before_cut"]),
        best_points=_dec_back(d["best_points"]),
    )


def _group(g: GroupTotal) -> JsonDict:
    return {
        "id": g.id,
        "title": _title(g.title),
        "total_before_cut": str(g.total_before_cut),
        "total": str(g.total),
        "floor": _dec(g.floor),
        "ceiling": _dec(g.ceiling),
    }


def _group_back(d: Mapping[str, Any]) -> GroupTotal:
    return GroupTotal(
        id=d["id"],
        title=_title_back(d["title"]),
        total_before_cut=Decimal(d["total_before_cut"]),
        total=Decimal(d["total"]),
        floor=_dec_back(d["floor"]),
        ceiling=_dec_back(d["ceiling"]),
    )


def _override(o: FiredOverride) -> JsonDict:
    data: JsonDict = {
        "id": o.id,
        "title": _title(o.title),
        "effect": o.effect.value,
        "grade": o.grade,
        "steps": o.steps,
        "until": _date(o.until),
        "provenance": _provenance(o.provenance),
    }
    if o.measures:
        data["measures"] = [_measure(m) for m in o.measures]
    return data


def _override_back(d: Mapping[str, Any]) -> FiredOverride:
    return FiredOverride(
        id=d["id"],
        title=_title_back(d["title"]),
        effect=EffectKind(d["effect"]),
        grade=d["grade"],
        steps=d["steps"],
        until=_date_back(d["until"]),
        provenance=_provenance_back(d["provenance"]),
        measures=_measures_back(d),
    )


def _reason(r: ReasonCode) -> JsonDict:
    return {
        "code": r.code,
        "kind": r.kind,
        "title": _title(r.title),
        "points_lost": _dec(r.points_lost),
    }


def _reason_back(d: Mapping[str, Any]) -> ReasonCode:
    kind = d["kind"]
    if kind not in ("override", "rule"):
        raise ValueError(f"unknown reason kind {kind!r}")
    return ReasonCode(
        code=d["code"],
        kind=kind,
        title=_title_back(d["title"]),
        points_lost=_dec_back(d["points_lost"]),
    )


def _check_format(data: Mapping[str, Any], what: str) -> None:
    found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
    if found != FORMAT:
        raise ValueError(f"not an encoded {what} of format {FORMAT}: found {found!r}")


# --------------------------------------------------------------------------------------------
# Results


def result_to_dict(result: EvaluationResult) -> JsonDict:
    """An evaluation result as a JSON-safe dict; `result_from_dict` gives it back exactly."""
    return {
        "format": FORMAT,
        "scorecard_id": result.scorecard_id,
        "version": result.version,
        "digest": result.digest,
        "subject": _subject(result.subject),
        "as_of": result.as_of.isoformat(),
        "indicators": indicators_to_dict(result.indicators),
        "score": _dec(result.score),
        "score_grade": result.score_grade,
        "grade": _grade(result.grade),
        "lines": [_line(x) for x in result.lines],
        "groups": [_group(x) for x in result.groups],
        "overrides": [_override(x) for x in result.overrides],
        "until": _date(result.until),
        "reasons": [_reason(x) for x in result.reasons],
        "points_to_next_grade": _dec(result.points_to_next_grade),
        "next_grade": result.next_grade,
        "base": _dec(result.base),
        "score_before_cut": _dec(result.score_before_cut),
        **({"records": evidence_to_list(result.evidence)} if result.evidence else {}),
    }


def evidence_to_list(evidence: tuple[RecordEvidence, ...]) -> list[dict[str, str]]:
    """The credit records a result used (issue 10); a result without any has no key."""
    return [
        {
            "indicator": e.indicator,
            "record": e.record,
            "kind": e.kind,
            "basis": e.basis,
            "decision_date": e.decision_date.isoformat(),
            "state": e.state,
        }
        for e in evidence
    ]


def evidence_from_list(data: Any) -> tuple[RecordEvidence, ...]:
    return tuple(
        RecordEvidence(
            e["indicator"],
            e["record"],
            e["kind"],
            e["basis"],
            dt.date.fromisoformat(e["decision_date"]),
            e["state"],
        )
        for e in data or ()
    )


def result_from_dict(data: Mapping[str, Any], base: Decimal | None = None) -> EvaluationResult:
    """The inverse of `result_to_dict`; ValueError when `data` is not an encoded result.

    A document written before results carried their base has no `base` key: `base` (the
    scorecard's, when known) completes it (`with_base`)."""
    _check_format(data, "evaluation result")
    try:
        result = EvaluationResult(
            scorecard_id=data["scorecard_id"],
            version=data["version"],
            digest=data["digest"],
            subject=_subject_back(data["subject"]),
            as_of=dt.date.fromisoformat(data["as_of"]),
            indicators=indicators_from_dict(data["indicators"]),
            score=_dec_back(data["score"]),
            score_grade=data["score_grade"],
            grade=_grade_back(data["grade"]),
            lines=tuple(_line_back(x) for x in data["lines"]),
            groups=tuple(_group_back(x) for x in data["groups"]),
            overrides=tuple(_override_back(x) for x in data["overrides"]),
            until=_date_back(data["until"]),
            reasons=tuple(_reason_back(x) for x in data["reasons"]),
            points_to_next_grade=_dec_back(data["points_to_next_grade"]),
            next_grade=data["next_grade"],
            base=_dec_back(data.get("base")),
            score_before_cut=_dec_back(data.get("score_before_cut")),
            evidence=evidence_from_list(data.get("records")),
        )
        return result if "base" in data else with_base(result, base)
    except (KeyError, TypeError, ArithmeticError) as exc:  # decimal.InvalidOperation too
        raise ValueError(f"not an encoded evaluation result: {exc!r}") from exc


def with_base(result: EvaluationResult, base: Decimal | None) -> EvaluationResult:
    """A result stored before results carried their base (SCORECARDS.md §1), completed: the
    scorecard's `base`, and the score before the cut, which is base + group totals + ungrouped
    points where that differs from the score. Unchanged when the base is not known (its
    scorecard is not) or the result has no score."""
    if base is None or result.score is None:
        return result
    uncut = q2(
        base
        + sum(g.total for g in result.groups)
        + sum(x.points for x in result.lines if x.group is None)
    )
    return dataclasses.replace(
        result, base=base, score_before_cut=None if uncut == result.score else uncut
    )


# --------------------------------------------------------------------------------------------
# Inputs


def input_to_dict(inp: EvaluationInput) -> JsonDict:
    """The input as received (raw indicator values) as a JSON-safe dict."""
    return {
        "format": FORMAT,
        "scorecard_id": inp.scorecard_id,
        "version": inp.version,
        "subject": _subject(inp.subject),
        "as_of": _date(inp.as_of),
        "indicators": indicators_to_dict(inp.indicators),
    }


def input_from_dict(data: Mapping[str, Any]) -> EvaluationInput:
    """The inverse of `input_to_dict`; ValueError when `data` is not an encoded input."""
    _check_format(data, "evaluation input")
    try:
        return EvaluationInput(
            scorecard_id=data["scorecard_id"],
            subject=_subject_back(data["subject"]),
            indicators=indicators_from_dict(data["indicators"]),
            as_of=_date_back(data["as_of"]),
            version=data["version"],
        )
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"not an encoded evaluation input: {exc!r}") from exc


def canonical_json(data: Any) -> str:
    """One text per value: sorted keys, no blanks, UTF-8 kept as is."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def request_digest(inp: EvaluationInput | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical input (an `EvaluationInput` or its `input_to_dict`):
    a retry with the same request id must give the same digest."""
    data = input_to_dict(inp) if isinstance(inp, EvaluationInput) else inp
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
