"""Load and validate scorecard TOML files (format: docs/scorecard-format.md).

Every problem is collected and reported together as `file: path: reason`; a scorecard is
either loaded whole or refused with `InvalidScorecard`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeGuard

from . import kinds, limits
from .intervals import indicator_domain
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DateTest,
    DefinitionProblem,
    EffectKind,
    GoldenCase,
    Grade,
    Group,
    Indicator,
    IndicatorType,
    InvalidScorecard,
    Measure,
    Not,
    Override,
    Provenance,
    ProvenanceTag,
    Rule,
    RuleKind,
    Scorecard,
    SubjectKind,
    Title,
    Until,
)
from .records import FromRecords, record_from_case
from .records import Measure as RecordMeasure  # how a derived value is read; not model.Measure

ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
HUNDRED = Decimal(100)
OPS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "≠": "!=",
    "<": "<",
    "<=": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "≥": ">=",
    "in": "in",
}
NUMERIC_TYPES = (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT)

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
INDICATOR_KEYS = {
    "type",
    "title",
    "description",
    "min",
    "max",
    "default",
    "required",
    "choices",
    "past",
    "required_when",
    "places",
    "actionable",
    "from_records",
}
# the keys every rule has; each kind reads its own others (kinds.py)
RULE_KEYS = {"id", "title", "kind", "indicator", "group", "provenance", "description"}
_BUILTIN_KINDS = {k.value for k in RuleKind}
GRADE_KEYS = {"code", "title", "min", "colour", "provenance"}
OVERRIDE_KEYS = {
    "id",
    "title",
    "when",
    "effect",
    "grade",
    "steps",
    "until",
    "provenance",
    "description",
}
MEASURE_KEYS = {"id", "title", "provenance", "grades", "overrides"}
EXPECT_KEYS = {
    "score",
    "grade",
    "score_grade",
    "points_to_next_grade",
    "next_grade",
    "base",
    "score_before_cut",
    "overrides",
    "until",
    "reasons",
    "lines",
    "measures",
    "error",
}


def _is_number(v: object) -> TypeGuard[int | Decimal]:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


class _Checker:
    """Collects problems for one file while building the model."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[DefinitionProblem] = []

    def bad(self, path: str, reason: str) -> None:
        self.problems.append(DefinitionProblem(self.file, path, reason))

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], path: str) -> None:
        for k in table:
            if k not in allowed:
                self.bad(
                    f"{path}.{k}" if path else k,
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )

    def table(self, v: object, path: str) -> dict[str, Any]:
        if isinstance(v, dict):
            return v
        self.bad(path, "must be a table")
        return {}

    def title(self, v: object, path: str) -> Title:
        if (
            isinstance(v, dict)
            and isinstance(v.get("zh"), str)
            and isinstance(v.get("en"), str)
            and v["zh"].strip()
            and v["en"].strip()
        ):
            extra = set(v) - {"zh", "en"}
            if extra:
                self.bad(path, f"unknown keys {sorted(extra)} (a title has zh and en)")
            return Title(v["zh"], v["en"])
        self.bad(path, 'must be { zh = "…", en = "…" } with both texts non-empty')
        return Title("", "")

    def number(self, v: object, path: str) -> Decimal | None:
        if _is_number(v):
            d = Decimal(v)
            if d.is_finite():
                return d
        self.bad(path, f"must be a finite number, not {v!r}")
        return None

    def provenance(self, v: object, path: str) -> Provenance:
        if not isinstance(v, dict):
            self.bad(
                path,
                "missing: every rule, grade, override and measure needs { tag, source, article }",
            )
            return Provenance(ProvenanceTag.DESIGN, "")
        extra = set(v) - {"tag", "source", "article"}
        if extra:
            self.bad(path, f"unknown keys {sorted(extra)}")
        try:
            tag = ProvenanceTag(v.get("tag"))
        except ValueError:
            self.bad(
                f"{path}.tag",
                f"must be one of {[t.value for t in ProvenanceTag]}, not {v.get('tag')!r}",
            )
            tag = ProvenanceTag.DESIGN
        source = v.get("source")
        if not isinstance(source, str) or not source.strip():
            self.bad(
                f"{path}.source", "must name the source (a regulation title, or the design note)"
            )
            source = ""
        article = v.get("article", "")
        if not isinstance(article, str):
            self.bad(f"{path}.article", "must be a string")
            article = ""
        return Provenance(tag, source, article)


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
    c = _Checker(file)
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

    indicators = _indicators(c, data.get("indicators", {}))
    if len(indicators) > limits.MAX_INDICATORS:  # a request could never give them all
        c.bad(
            "indicators",
            f"{len(indicators)} indicators; a scorecard has at most {limits.MAX_INDICATORS}",
        )
    by_name = {i.name: i for i in indicators}
    groups = _groups(c, data.get("groups", {}))
    group_ids = {g.id for g in groups}
    rules = _rules(c, data.get("rules", []), by_name, group_ids, base is not None)
    grades = _grades(c, data.get("grades", []), base is not None, score_min)
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
    overrides = _overrides(
        c, data.get("overrides", []), by_name, group_ids, grade_codes, base is not None, rule_ids
    )
    grades, overrides = _measures(c, data.get("measures", []), grades, overrides)
    cases = _cases(c, data.get("cases", []))

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


# --------------------------------------------------------------------------------------------
# Sections


def accepted_bounds(ind: Indicator) -> tuple[Decimal | None, Decimal | None]:
    """The inclusive bounds a numeric indicator's input is held to: its domain, within the
    service's limits (a count at most `limits.MAX_COUNT`, a number's magnitude at most
    `limits.MAX_NUMBER`). The domain itself (best points, band coverage) stays as declared."""
    dom = indicator_domain(ind)
    cap = Decimal(limits.MAX_COUNT) if ind.type is IndicatorType.COUNT else limits.MAX_NUMBER
    lo = dom.low if dom.low is not None and dom.low > -cap else -cap
    hi = dom.high if dom.high is not None and dom.high < cap else cap
    return lo, hi


def accepted_places(ind: Indicator) -> int:
    """Decimal places a number or percent value of `ind` may have."""
    return limits.DEFAULT_PLACES if ind.places is None else ind.places


def _indicators(c: _Checker, raw: object) -> list[Indicator]:
    out: list[Indicator] = []
    table = c.table(raw, "indicators")
    pending_when: list[tuple[int, str, object]] = []
    for name, spec_raw in table.items():
        path = f"indicators.{name}"
        if not NAME_RE.match(name) or name == "score":
            c.bad(path, "an indicator name is lowercase letters, digits and _ (and not 'score')")
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, INDICATOR_KEYS, path)
        try:
            itype = IndicatorType(spec.get("type"))
        except ValueError:
            c.bad(
                f"{path}.type",
                f"must be one of {[t.value for t in IndicatorType]}, not {spec.get('type')!r}",
            )
            continue
        title = c.title(spec.get("title"), f"{path}.title")
        minimum = maximum = None
        if "min" in spec or "max" in spec:
            if itype not in NUMERIC_TYPES:
                c.bad(path, f"min/max apply to count, number and percent, not {itype.value}")
            else:
                if "min" in spec:
                    minimum = c.number(spec["min"], f"{path}.min")
                if "max" in spec:
                    maximum = c.number(spec["max"], f"{path}.max")
                if minimum is not None and maximum is not None and minimum > maximum:
                    c.bad(path, f"min {minimum} is above max {maximum}")
                if itype is IndicatorType.PERCENT and (
                    (minimum is not None and minimum < 0)
                    or (maximum is not None and maximum > HUNDRED)
                ):
                    c.bad(path, "a percent lies within [0, 100]")
                if itype is IndicatorType.COUNT and minimum is not None and minimum < 0:
                    c.bad(f"{path}.min", "a count is never negative")
        choices: tuple[str, ...] = ()
        if itype is IndicatorType.CHOICE:
            ch = spec.get("choices")
            if not isinstance(ch, list) or not ch or not all(isinstance(x, str) and x for x in ch):
                c.bad(f"{path}.choices", 'a choice indicator lists its codes: choices = ["a", "b"]')
            elif len(set(ch)) != len(ch):
                c.bad(f"{path}.choices", "duplicate codes")
            else:
                choices = tuple(ch)
        elif "choices" in spec:
            c.bad(f"{path}.choices", "only a choice indicator has choices")
        past = spec.get("past", False)
        if past is not False and (itype is not IndicatorType.DATE or past is not True):
            c.bad(f"{path}.past", "past = true applies to date indicators only")
            past = False
        required = spec.get("required")
        if required is not None and not isinstance(required, bool):
            c.bad(f"{path}.required", "must be true or false")
            required = None
        default = spec.get("default")
        if default is not None:
            default = _check_value(c, itype, default, minimum, maximum, choices, f"{path}.default")
            if required:
                c.bad(path, "an indicator with a default is not required")
        implicit = {IndicatorType.COUNT: 0, IndicatorType.FLAG: False}.get(itype)
        if default is None and implicit is not None and not required:
            default = implicit
        if required is None:
            required = default is None and itype in (
                IndicatorType.NUMBER,
                IndicatorType.PERCENT,
                IndicatorType.CHOICE,
            )
        if "required_when" in spec:
            if required:
                c.bad(
                    f"{path}.required_when", "an always-required indicator needs no required_when"
                )
            pending_when.append((len(out), path, spec["required_when"]))
        places = spec.get("places")
        if places is not None:
            if itype not in (IndicatorType.NUMBER, IndicatorType.PERCENT):
                c.bad(f"{path}.places", "places applies to number and percent indicators only")
                places = None
            elif type(places) is not int or not 0 <= places <= limits.MAX_PLACES:
                c.bad(
                    f"{path}.places",
                    f"a whole number of decimal places in [0, {limits.MAX_PLACES}]",
                )
                places = None
        if (
            isinstance(default, Decimal)
            and itype is not IndicatorType.COUNT
            and limits.places_of(default) > (limits.DEFAULT_PLACES if places is None else places)
        ):
            c.bad(f"{path}.default", f"{default} has more decimal places than the indicator takes")
        actionable = spec.get("actionable", False)
        if not isinstance(actionable, bool):
            c.bad(f"{path}.actionable", "must be true or false")
            actionable = False
        elif actionable and itype is IndicatorType.DATE:
            c.bad(
                f"{path}.actionable",
                "a date records when something happened: it is never actionable",
            )
            actionable = False
        desc = spec.get("description", "")
        from_records = _from_records(c, spec, itype, path)
        out.append(
            Indicator(
                name,
                itype,
                title,
                bool(required),
                default,
                minimum,
                maximum,
                choices,
                bool(past),
                None,
                desc if isinstance(desc, str) else "",
                places,
                actionable,
                from_records,
            )
        )
    by_name = {i.name: i for i in out}
    for idx, path, cond_raw in pending_when:
        cond = _condition(c, cond_raw, f"{path}.required_when", by_name, set(), allow_group=False)
        ind = out[idx]
        out[idx] = Indicator(
            ind.name,
            ind.type,
            ind.title,
            ind.required,
            ind.default,
            ind.minimum,
            ind.maximum,
            ind.choices,
            ind.past,
            cond,
            ind.description,
            ind.places,
            ind.actionable,
            ind.from_records,
        )
    return out


_MEASURE_TYPES = {
    RecordMeasure.ACTIVE: IndicatorType.FLAG,
    RecordMeasure.COUNT_WITHIN: IndicatorType.COUNT,
    RecordMeasure.LATEST_DATE: IndicatorType.DATE,
    RecordMeasure.END_OF_RESTRICTION: IndicatorType.DATE,
}


def _from_records(
    c: _Checker, spec: dict[str, Any], itype: IndicatorType, path: str
) -> FromRecords | None:
    """`from_records = {kinds = [...], measure = "..."}`: the server fills the value from
    credit records (scorecards/records.py); the measure fixes the indicator's type."""
    if "from_records" not in spec:
        return None
    try:
        parsed = FromRecords.parse(spec["from_records"])
    except ValueError as exc:
        c.bad(f"{path}.from_records", str(exc))
        return None
    wanted = _MEASURE_TYPES[parsed.measure]
    if itype is not wanted:
        c.bad(
            f"{path}.from_records",
            f"measure {parsed.text!r} gives a {wanted.value}, not a {itype.value}",
        )
        return None
    return parsed


def _check_value(
    c: _Checker,
    itype: IndicatorType,
    v: object,
    lo: Decimal | None,
    hi: Decimal | None,
    choices: tuple[str, ...],
    path: str,
) -> Any:
    if itype is IndicatorType.FLAG:
        if not isinstance(v, bool):
            c.bad(path, "must be true or false")
        return v
    if itype is IndicatorType.CHOICE:
        if v not in choices:
            c.bad(path, f"must be one of {list(choices)}")
        return v
    if itype is IndicatorType.DATE:
        if not isinstance(v, dt.date):
            c.bad(path, "must be a date")
        return v
    if itype is IndicatorType.COUNT and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        c.bad(path, "must be a whole number ≥ 0")
        return v
    d = c.number(v, path)
    if d is not None:
        if (lo is not None and d < lo) or (hi is not None and d > hi):
            c.bad(path, f"{d} is outside [{lo}, {hi}]")
        if itype is IndicatorType.PERCENT and not (0 <= d <= HUNDRED):
            c.bad(path, "a percent lies within [0, 100]")
    return v if itype is IndicatorType.COUNT else d  # number and percent values are Decimals


def _groups(c: _Checker, raw: object) -> list[Group]:
    out = []
    for gid, spec_raw in c.table(raw, "groups").items():
        path = f"groups.{gid}"
        if not NAME_RE.match(gid):
            c.bad(path, "a group id is lowercase letters, digits and _")
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, {"title", "floor", "ceiling", "description"}, path)
        floor = c.number(spec["floor"], f"{path}.floor") if "floor" in spec else None
        ceiling = c.number(spec["ceiling"], f"{path}.ceiling") if "ceiling" in spec else None
        if floor is not None and ceiling is not None and floor > ceiling:
            c.bad(path, f"floor {floor} is above ceiling {ceiling}")
        out.append(Group(gid, c.title(spec.get("title"), f"{path}.title"), floor, ceiling))
    return out


def _rules(
    c: _Checker, raw: object, inds: dict[str, Indicator], group_ids: set[str], scored: bool
) -> list[Rule]:
    if not isinstance(raw, list):
        c.bad("rules", "must be an array of tables ([[rules]])")
        return []
    if raw and not scored:
        c.bad("rules", "an eligibility card (no base) has no rules")
    out: list[Rule] = []
    seen: set[str] = set()
    weighted_total = Decimal(0)
    any_weighted = False
    for i, spec_raw in enumerate(raw):
        path = f"rules[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, RULE_KEYS | kinds.all_keys(), path)
        rid = spec.get("id")
        if not isinstance(rid, str) or not NAME_RE.match(rid):
            c.bad(f"{path}.id", "a rule id is lowercase letters, digits and _")
            rid = f"#{i}"
        elif rid in seen:
            c.bad(f"{path}.id", f"duplicate rule id {rid!r}")
        seen.add(rid)
        title = c.title(spec.get("title"), f"{path}.title")
        prov = c.provenance(spec.get("provenance"), f"{path}.provenance")
        kind_name = spec.get("kind")
        known = kinds.known()
        kind = known.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            c.bad(f"{path}.kind", f"unknown rule kind {kind_name!r}; kinds: {list(known)}")
            continue
        iname = spec.get("indicator")
        ind = inds.get(iname) if isinstance(iname, str) else None
        if ind is None:
            c.bad(f"{path}.indicator", f"unknown indicator {iname!r}")
            continue
        if ind.type not in kind.types:
            c.bad(
                f"{path}.indicator",
                f"a {kind.name} rule cannot score a {ind.type.value} indicator ({iname})",
            )
            continue
        if not ind.required and ind.default is None:
            c.bad(
                f"{path}.indicator",
                f"{iname} may be absent (neither required nor with a default): a rule needs a"
                f" value to score",
            )
            continue
        group = spec.get("group")
        if group is not None and group not in group_ids:
            c.bad(f"{path}.group", f"unknown group {group!r}")
        fields, used = kind.parse(c, spec, path, ind)
        for key in sorted((set(spec) & kinds.all_keys()) - used):
            c.bad(
                f"{path}.{key}",
                f"does not apply to a {kind.name} rule on a {ind.type.value} indicator",
            )
        if "weight" in used:  # the weights of a card's weighted rules add up to 100
            any_weighted = True
            weighted_total += fields.get("weight") or 0
        out.append(
            Rule(
                rid,
                title,
                RuleKind(kind.name) if kind.name in _BUILTIN_KINDS else kind.name,
                ind.name,
                prov,
                group,
                **fields,
            )
        )
    if any_weighted and weighted_total != HUNDRED:
        c.bad("rules", f"the weights of the weighted rules add up to {weighted_total}, not 100")
    return out


def _grades(c: _Checker, raw: object, scored: bool, score_min: Decimal | None) -> list[Grade]:
    if not isinstance(raw, list) or not raw:
        c.bad("grades", "at least one grade ([[grades]]), best first")
        return []
    out: list[Grade] = []
    seen: set[str] = set()
    last_min: Decimal | None = None
    for i, spec_raw in enumerate(raw):
        path = f"grades[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, GRADE_KEYS, path)
        code = spec.get("code")
        if not isinstance(code, str) or not re.match(r"^[A-Z0-9][A-Z0-9_]*$", code):
            c.bad(f"{path}.code", "a grade code is uppercase letters, digits and _")
            code = f"#{i}"
        elif code in seen:
            c.bad(f"{path}.code", f"duplicate grade {code!r}")
        seen.add(code)
        minimum = None
        if "min" in spec:
            if not scored:
                c.bad(f"{path}.min", "an eligibility card has no score, so no grade has a min")
            else:
                minimum = c.number(spec["min"], f"{path}.min")
                if minimum is not None and last_min is not None and minimum >= last_min:
                    c.bad(
                        f"{path}.min",
                        f"grades are listed best first: min {minimum} must be below the previous"
                        f" grade's {last_min}",
                    )
                if minimum is not None:
                    last_min = minimum
        colour = spec.get("colour", "")
        if not isinstance(colour, str):
            c.bad(f"{path}.colour", "must be a string")
            colour = ""
        out.append(
            Grade(
                code,
                c.title(spec.get("title"), f"{path}.title"),
                c.provenance(spec.get("provenance"), f"{path}.provenance"),
                minimum,
                colour,
            )
        )
    if scored:
        if last_min is None:
            c.bad("grades", "a scored card needs at least one grade with a min")
        elif score_min is not None and last_min > score_min:
            c.bad(
                "grades",
                f"the lowest grade's min {last_min} is above score.min {score_min}: some scores"
                f" would have no grade",
            )
    return out


def _condition(
    c: _Checker,
    raw: object,
    path: str,
    inds: dict[str, Indicator],
    group_ids: set[str],
    allow_group: bool = True,
) -> Condition:
    fallback = AllOf(())
    if not isinstance(raw, dict):
        c.bad(path, 'a condition is a table such as { indicator = "x", op = ">=", value = 1 }')
        return fallback
    if "all" in raw or "any" in raw:
        key = "all" if "all" in raw else "any"
        c.unknown_keys(raw, {key}, path)
        items = raw[key]
        if not isinstance(items, list) or not items:
            c.bad(f"{path}.{key}", "a non-empty list of conditions")
            return fallback
        subs = tuple(
            _condition(c, x, f"{path}.{key}[{i}]", inds, group_ids, allow_group)
            for i, x in enumerate(items)
        )
        return AllOf(subs) if key == "all" else AnyOf(subs)
    if "not" in raw:
        c.unknown_keys(raw, {"not"}, path)
        return Not(_condition(c, raw["not"], f"{path}.not", inds, group_ids, allow_group))
    date_tests = [k for k in ("within_years", "after_as_of", "on_or_before_as_of") if k in raw]
    if date_tests:
        c.unknown_keys(raw, {"indicator", *date_tests}, path)
        name = raw.get("indicator")
        ind = inds.get(name) if isinstance(name, str) else None
        if ind is None or ind.type is not IndicatorType.DATE:
            c.bad(f"{path}.indicator", f"a date test needs a date indicator, not {name!r}")
        if len(date_tests) > 1:
            c.bad(path, "one date test per condition")
        test = date_tests[0]
        years = 0
        if test == "within_years":
            years = raw["within_years"]
            if not isinstance(years, int) or isinstance(years, bool) or years < 1:
                c.bad(f"{path}.within_years", "a whole number of years ≥ 1")
                years = 1
        elif raw[test] is not True:
            c.bad(f"{path}.{test}", "write it as = true")
        return DateTest(str(name), test, years)  # type: ignore[arg-type]
    refs = [k for k in ("indicator", "sum", "group", "score") if k in raw]
    c.unknown_keys(raw, {"indicator", "sum", "group", "score", "op", "value"}, path)
    if len(refs) != 1:
        c.bad(
            path,
            "name exactly one of indicator, sum, group, score, or use all/any/not or a date test",
        )
        return fallback
    op = OPS.get(op_name) if isinstance(op_name := raw.get("op"), str) else None
    if op is None:
        c.bad(f"{path}.op", f"one of =, !=, <, <=, >, >=, in; not {raw.get('op')!r}")
        return fallback
    value = raw.get("value")
    ref_kind = refs[0]
    ref: tuple[str, ...]
    numeric = True
    if ref_kind == "indicator":
        ind = inds.get(raw["indicator"]) if isinstance(raw["indicator"], str) else None
        if ind is None:
            c.bad(f"{path}.indicator", f"unknown indicator {raw['indicator']!r}")
            return fallback
        ref = ("indicator", ind.name)
        numeric = ind.type in NUMERIC_TYPES
        if ind.type is IndicatorType.DATE:
            c.bad(path, "compare dates with within_years, after_as_of or on_or_before_as_of")
        elif op == "in":
            if not isinstance(value, list) or not value:
                c.bad(f"{path}.value", "`in` takes a non-empty list")
                return fallback
            for i, v in enumerate(value):
                _check_operand(c, ind, v, f"{path}.value[{i}]")
            value = tuple(Decimal(v) if _is_number(v) else v for v in value)
        else:
            _check_operand(c, ind, value, f"{path}.value")
            if ind.type in (IndicatorType.FLAG, IndicatorType.CHOICE) and op not in ("=", "!="):
                c.bad(f"{path}.op", f"a {ind.type.value} is compared with = or != (or in)")
    elif ref_kind == "sum":
        names = raw["sum"]
        if not isinstance(names, list) or len(names) < 2:
            c.bad(f"{path}.sum", "a list of two or more numeric indicators")
            return fallback
        for i, n in enumerate(names):
            ind = inds.get(n) if isinstance(n, str) else None
            if ind is None or ind.type not in NUMERIC_TYPES:
                c.bad(f"{path}.sum[{i}]", f"not a numeric indicator: {n!r}")
        ref = ("sum", *[str(n) for n in names])
    elif ref_kind == "group":
        if not allow_group:
            c.bad(f"{path}.group", "only overrides test group totals")
        elif raw["group"] not in group_ids:
            c.bad(f"{path}.group", f"unknown group {raw['group']!r}")
        ref = ("group", str(raw["group"]))
    else:
        if not allow_group:
            c.bad(f"{path}.score", "only overrides test the score")
        if raw["score"] is not True:
            c.bad(f"{path}.score", "write it as score = true")
        ref = ("score",)
    if numeric and ref_kind != "indicator" or (ref_kind == "indicator" and numeric and op != "in"):
        if op == "in":
            c.bad(f"{path}.op", "`in` applies to an indicator")
        elif not _is_number(value):
            c.bad(f"{path}.value", f"must be a number, not {value!r}")
        else:
            value = Decimal(value)
    return Compare(ref, op, value)  # type: ignore[arg-type]


def _check_operand(c: _Checker, ind: Indicator, v: object, path: str) -> None:
    if ind.type is IndicatorType.FLAG and not isinstance(v, bool):
        c.bad(path, f"{ind.name} is a flag: compare with true or false")
    elif ind.type is IndicatorType.CHOICE and v not in ind.choices:
        c.bad(path, f"{v!r} is not a choice of {ind.name}: {list(ind.choices)}")
    elif ind.type in NUMERIC_TYPES and not _is_number(v):
        c.bad(path, f"{ind.name} is numeric: compare with a number")


def _overrides(
    c: _Checker,
    raw: object,
    inds: dict[str, Indicator],
    group_ids: set[str],
    grade_codes: list[str],
    scored: bool,
    rule_ids: set[str],
) -> list[Override]:
    if not isinstance(raw, list):
        c.bad("overrides", "must be an array of tables ([[overrides]])")
        return []
    out: list[Override] = []
    seen: set[str] = set()
    for i, spec_raw in enumerate(raw):
        path = f"overrides[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, OVERRIDE_KEYS, path)
        oid = spec.get("id")
        if not isinstance(oid, str) or not NAME_RE.match(oid):
            c.bad(f"{path}.id", "an override id is lowercase letters, digits and _")
            oid = f"#{i}"
        elif oid in seen or oid in rule_ids:
            c.bad(
                f"{path}.id",
                f"duplicate id {oid!r} (override and rule ids share one namespace: they are reason"
                f" codes)",
            )
        seen.add(oid)
        title = c.title(spec.get("title"), f"{path}.title")
        prov = c.provenance(spec.get("provenance"), f"{path}.provenance")
        if "when" not in spec:
            c.bad(f"{path}.when", "missing: the condition under which the override fires")
        when = _condition(c, spec.get("when"), f"{path}.when", inds, group_ids, allow_group=scored)
        try:
            effect = EffectKind(spec.get("effect"))
        except ValueError:
            c.bad(f"{path}.effect", f"one of force, cap, downgrade; not {spec.get('effect')!r}")
            continue
        grade = spec.get("grade")
        steps = spec.get("steps", 0)
        if effect is EffectKind.DOWNGRADE:
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                c.bad(f"{path}.steps", "a downgrade moves a whole number of grades ≥ 1")
            if grade is not None:
                c.bad(f"{path}.grade", "a downgrade names steps, not a grade")
            grade = None
        else:
            if grade not in grade_codes:
                c.bad(f"{path}.grade", f"unknown grade {grade!r}; grades: {grade_codes}")
            if "steps" in spec:
                c.bad(f"{path}.steps", f"steps belong to a downgrade, not a {effect.value}")
            steps = 0
        until = None
        if "until" in spec:
            u = c.table(spec["until"], f"{path}.until")
            c.unknown_keys(u, {"indicator", "years"}, f"{path}.until")
            ind = inds.get(ind_name) if isinstance(ind_name := u.get("indicator"), str) else None
            if ind is None or ind.type is not IndicatorType.DATE:
                c.bad(
                    f"{path}.until.indicator",
                    f"until needs a date indicator, not {u.get('indicator')!r}",
                )
            years = u.get("years", 0)
            if not isinstance(years, int) or isinstance(years, bool) or years < 0:
                c.bad(f"{path}.until.years", "a whole number of years ≥ 0")
                years = 0
            until = Until(str(u.get("indicator")), years)
        out.append(
            Override(
                oid,
                title,
                when,
                effect,
                prov,
                grade,
                int(steps) if isinstance(steps, int) else 0,
                until,
            )
        )
    return out


def _measures(
    c: _Checker, raw: object, grades: list[Grade], overrides: list[Override]
) -> tuple[list[Grade], list[Override]]:
    """`[[measures]]`: each names the grades and overrides it follows from; the grades and
    overrides get their measures, in file order. A measure cites a published rule: the
    Shanghai credit regulation (art 32) allows no measure that is not published, so a
    `design` provenance is refused."""
    if not isinstance(raw, list):
        c.bad("measures", "must be an array of tables ([[measures]])")
        return grades, overrides
    grade_codes = [g.code for g in grades]
    override_ids = [o.id for o in overrides]
    of_grade: dict[str, list[Measure]] = {}
    of_override: dict[str, list[Measure]] = {}
    seen: set[str] = set()
    for i, spec_raw in enumerate(raw):
        path = f"measures[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, MEASURE_KEYS, path)
        mid = spec.get("id")
        if not isinstance(mid, str) or not NAME_RE.match(mid):
            c.bad(f"{path}.id", "a measure id is lowercase letters, digits and _")
            mid = f"#{i}"
        elif mid in seen:
            c.bad(f"{path}.id", f"duplicate measure id {mid!r}")
        seen.add(mid)
        measure = Measure(
            mid,
            c.title(spec.get("title"), f"{path}.title"),
            c.provenance(spec.get("provenance"), f"{path}.provenance"),
        )
        if isinstance(spec.get("provenance"), dict) and spec["provenance"].get("tag") == "design":
            c.bad(
                f"{path}.provenance.tag",
                "a measure follows from a published rule "
                "(上海市社会信用条例 art 32: unpublished measures may not be applied); "
                "'design' is not a source",
            )
        for key, known, into in (
            ("grades", grade_codes, of_grade),
            ("overrides", override_ids, of_override),
        ):
            names = spec.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                c.bad(f"{path}.{key}", 'a list of ids: ["A", "B"]')
                continue
            what = "grade" if key == "grades" else "override"
            taken: set[str] = set()
            for j, name in enumerate(names):
                if name in taken:
                    c.bad(f"{path}.{key}[{j}]", f"{what} {name!r} is listed twice")
                elif name not in known:
                    c.bad(f"{path}.{key}[{j}]", f"unknown {what} {name!r}; {key}: {known}")
                else:
                    into.setdefault(name, []).append(measure)
                taken.add(name)
        if not spec.get("grades") and not spec.get("overrides"):
            c.bad(
                path,
                "a measure follows from at least one grade or override: "
                "grades = [...] and/or overrides = [...]",
            )
    grades = [
        dataclasses.replace(g, measures=tuple(of_grade[g.code])) if g.code in of_grade else g
        for g in grades
    ]
    overrides = [
        dataclasses.replace(o, measures=tuple(of_override[o.id])) if o.id in of_override else o
        for o in overrides
    ]
    return grades, overrides


def _cases(c: _Checker, raw: object) -> list[GoldenCase]:
    if not isinstance(raw, list):
        c.bad("cases", "must be an array of tables ([[cases]])")
        return []
    out = []
    for i, spec_raw in enumerate(raw):
        path = f"cases[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, {"name", "as_of", "subject", "indicators", "expect", "records"}, path)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            c.bad(f"{path}.name", "every case has a name")
            name = path
        inds = spec.get("indicators", {})
        if not isinstance(inds, dict):
            c.bad(f"{path}.indicators", "must be a table")
            inds = {}
        expect = spec.get("expect")
        if not isinstance(expect, dict) or not expect:
            c.bad(f"{path}.expect", 'a case expects something: { grade = "…", … }')
            expect = {}
        c.unknown_keys(expect, EXPECT_KEYS, f"{path}.expect")
        as_of = spec.get("as_of")
        if as_of is not None and (not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime)):
            c.bad(f"{path}.as_of", "must be a date")
            as_of = None
        subject = spec.get("subject")
        if subject is not None and not isinstance(subject, dict):
            c.bad(f"{path}.subject", "must be a table { kind, id }")
            subject = None
        records = []
        raw_records = spec.get("records", [])
        if not isinstance(raw_records, list):
            c.bad(f"{path}.records", "must be an array of tables")
            raw_records = []
        sid = str((subject or {}).get("id", ""))
        for k, r in enumerate(raw_records):
            try:  # the subject's kind and id are settled when the case runs (golden.py)
                records.append(record_from_case(r, k, SubjectKind.ORGANIZATION, sid))
            except ValueError as exc:
                c.bad(f"{path}.records[{k}]", str(exc))
        out.append(GoldenCase(name, dict(inds), dict(expect), as_of, subject, tuple(records)))
    return out
