"""Load and validate scorecard TOML files (format: docs/scorecard-format.md).

Every problem is collected and reported together as `file: path: reason`; a scorecard is
either loaded whole or refused with `InvalidScorecard`.

This module reads the file (TOML, numbers as exact Decimals), checks the top-level keys,
computes the digest and assembles the `Scorecard`; each section is parsed by its module in
`sections/` (indicators, conditions, groups/rules/grades, overrides/measures, golden cases).
`accepted_bounds`, `accepted_places` (`limits.py`) and `indicator_domain` (`intervals.py`) are
re-exported here for the callers that import them from the loader.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import limits
from .intervals import indicator_domain
from .limits import accepted_bounds, accepted_places
from .model import DefinitionProblem, InvalidScorecard, Scorecard, SubjectKind
from .sections.cases import read_cases
from .sections.checker import ID_RE, Checker
from .sections.indicators import read_indicators
from .sections.overrides import read_measures, read_overrides
from .sections.scoring import read_grades, read_groups, read_rules

TOP_KEYS = {
    "id",
    "version",
    "effective_from",
    "subject_kind",
    "title",
    "description",
    "base",
    "score",
    "default_grade",
    "indicators",
    "groups",
    "rules",
    "grades",
    "overrides",
    "measures",
    "cases",
}


def _canonical(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_canonical(x) for x in obj]
    if isinstance(obj, (int, Decimal)) and not isinstance(obj, bool):
        # 20, 20.0 and 20.00 are the same number, so the same definition
        d = Decimal(obj)
        return {"$decimal": f"{d.normalize():f}" if d != 0 else "0"}
    if isinstance(obj, (dt.date, dt.datetime, dt.time)):
        return {"$date": obj.isoformat()}
    return obj


def digest_of(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical definition: every key but `cases` and the indicators'
    `actionable` marks (what-if guidance, never part of what decides a grade, so marking an
    indicator leaves stored evaluations reproducible under the same digest), keys sorted,
    numbers exact."""
    body = {k: v for k, v in data.items() if k != "cases"}
    inds = body.get("indicators")
    if isinstance(inds, dict):
        body["indicators"] = {
            name: (
                {k: v for k, v in spec.items() if k != "actionable"}
                if isinstance(spec, dict)
                else spec
            )
            for name, spec in inds.items()
        }
    text = json.dumps(_canonical(body), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_file(path: str | Path) -> Scorecard:
    """Load one scorecard file; raises InvalidScorecard listing every problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InvalidScorecard(
            [DefinitionProblem(str(p), "", f"cannot read: {e.strerror}")]
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidScorecard([DefinitionProblem(str(p), "", f"not valid TOML: {e}")]) from None
    return load_data(data, str(p))


def load_text(text: str, file: str = "<text>") -> Scorecard:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise InvalidScorecard([DefinitionProblem(file, "", f"not valid TOML: {e}")]) from None
    return load_data(data, file)


def iter_scorecard_files(path: str | Path) -> Iterator[Path]:
    """A file itself, or every `*.toml` below a folder, in name order."""
    p = Path(path)
    if p.is_dir():
        yield from sorted(p.rglob("*.toml"))
    else:
        yield p


def load_data(data: dict[str, Any], file: str) -> Scorecard:
    c = Checker(file)
    c.unknown_keys(data, TOP_KEYS, "")

    sid = data.get("id")
    if not isinstance(sid, str) or not ID_RE.match(sid):
        c.bad("id", f"must be a lowercase dotted id such as 'transport.taxi_driver', not {sid!r}")
        sid = str(sid)
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        c.bad("version", "must be a non-empty string")
        version = str(version)
    eff = data.get("effective_from")
    if not isinstance(eff, dt.date) or isinstance(eff, dt.datetime):
        c.bad("effective_from", "must be a TOML date such as 2024-01-01")
        eff = dt.date.min
    try:
        kind = SubjectKind(data.get("subject_kind"))
    except ValueError:
        c.bad(
            "subject_kind", f"must be 'person' or 'organization', not {data.get('subject_kind')!r}"
        )
        kind = SubjectKind.PERSON
    title = c.title(data.get("title"), "title")
    description = data.get("description", "")

    base: Decimal | None = None
    score_min = score_max = None
    if "base" in data:
        base = c.number(data["base"], "base")
        score = c.table(data.get("score"), "score")
        c.unknown_keys(score, {"min", "max"}, "score")
        score_min = c.number(score.get("min"), "score.min")
        score_max = c.number(score.get("max"), "score.max")
        if score_min is not None and score_max is not None and score_min > score_max:
            c.bad("score", f"min {score_min} is above max {score_max}")
    elif "score" in data:
        c.bad("score", "a score range needs a base (omit both for an eligibility card)")

    indicators = read_indicators(c, data.get("indicators", {}))
    if len(indicators) > limits.MAX_INDICATORS:  # a request could never give them all
        c.bad(
            "indicators",
            f"{len(indicators)} indicators; a scorecard has at most {limits.MAX_INDICATORS}",
        )
    by_name = {i.name: i for i in indicators}
    groups = read_groups(c, data.get("groups", {}))
    group_ids = {g.id for g in groups}
    rules = read_rules(c, data.get("rules", []), by_name, group_ids, base is not None)
    grades = read_grades(c, data.get("grades", []), base is not None, score_min)
    grade_codes = [g.code for g in grades]

    default_grade = data.get("default_grade")
    if base is None:
        if default_grade not in grade_codes:
            c.bad(
                "default_grade",
                f"an eligibility card needs a default grade among {grade_codes}, not"
                f" {default_grade!r}",
            )
    elif default_grade is not None:
        c.bad("default_grade", "only an eligibility card (no base) has a default grade")
        default_grade = None

    rule_ids = {r.id for r in rules}
    overrides = read_overrides(
        c, data.get("overrides", []), by_name, group_ids, grade_codes, base is not None, rule_ids
    )
    grades, overrides = read_measures(c, data.get("measures", []), grades, overrides)
    cases = read_cases(c, data.get("cases", []))

    if c.problems:
        raise InvalidScorecard(c.problems)
    return Scorecard(
        id=sid,
        version=version,
        effective_from=eff,
        title=title,
        subject_kind=kind,
        indicators=tuple(indicators),
        rules=tuple(rules),
        groups=tuple(groups),
        grades=tuple(grades),
        overrides=tuple(overrides),
        base=base,
        score_min=score_min,
        score_max=score_max,
        default_grade=default_grade if base is None else None,
        description=description if isinstance(description, str) else "",
        digest=digest_of(data),
        source_path=file,
        cases=tuple(cases),
    )


__all__ = [
    "TOP_KEYS",
    "accepted_bounds",
    "accepted_places",
    "digest_of",
    "indicator_domain",
    "iter_scorecard_files",
    "load_data",
    "load_file",
    "load_text",
]
