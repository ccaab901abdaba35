"""`[indicators]`: each indicator's type, title, bounds, choices, default, whether it is
required (always, or `required_when` a condition holds), its decimal places, whether what-if
may vary it (`actionable`) and whether the server derives it from credit records
(`from_records`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .. import limits
from ..model import Indicator, IndicatorType
from ..records import FromRecords
from ..records import Measure as RecordMeasure  # how a derived value is read; not model.Measure
from .checker import HUNDRED, NAME_RE, NUMERIC_TYPES, Checker
from .conditions import read_condition

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


def read_indicators(c: Checker, raw: object) -> list[Indicator]:
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
            default = check_value(c, itype, default, minimum, maximum, choices, f"{path}.default")
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
        cond = read_condition(
            c, cond_raw, f"{path}.required_when", by_name, set(), allow_group=False
        )
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
    c: Checker, spec: dict[str, Any], itype: IndicatorType, path: str
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


def check_value(
    c: Checker,
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
