"""What overrides the score and what follows from a result: `[[overrides]]` (force, cap or
downgrade when a condition holds, until a date indicator plus N years) and `[[measures]]`
(the linked rewards and punishments each grade and override carries).
"""

from __future__ import annotations

import dataclasses

from ..model import EffectKind, Grade, Indicator, IndicatorType, Measure, Override, Until
from .checker import Checker
from .conditions import read_condition

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


def read_overrides(
    c: Checker,
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
        oid = c.item_id(
            spec,
            path,
            i,
            "an override",
            seen,
            "duplicate id {id} (override and rule ids share one namespace: they are reason codes)",
            rule_ids,
        )
        title = c.title(spec.get("title"), f"{path}.title")
        prov = c.provenance(spec.get("provenance"), f"{path}.provenance")
        if "when" not in spec:
            c.bad(f"{path}.when", "missing: the condition under which the override fires")
        when = read_condition(
            c, spec.get("when"), f"{path}.when", inds, group_ids, allow_group=scored
        )
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


def read_measures(
    c: Checker, raw: object, grades: list[Grade], overrides: list[Override]
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
        mid = c.item_id(spec, path, i, "a measure", seen, "duplicate measure id {id}")
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
