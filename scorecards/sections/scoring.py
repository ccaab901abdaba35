"""What gives points and grades: `[groups]` (floors and ceilings), `[[rules]]` (the keys every
rule has; each kind reads its own through `kinds.py`, and the weights of weighted rules add up
to 100) and `[[grades]]` (best first, each `min` below the one before).
"""

from __future__ import annotations

import re
from decimal import Decimal

from .. import kinds
from ..model import Grade, Group, Indicator, Rule, RuleKind
from .checker import HUNDRED, NAME_RE, Checker

# the keys every rule has; each kind reads its own others (kinds.py)
RULE_KEYS = {"id", "title", "kind", "indicator", "group", "provenance", "description"}
_BUILTIN_KINDS = {k.value for k in RuleKind}
GRADE_KEYS = {"code", "title", "min", "colour", "provenance"}


def read_groups(c: Checker, raw: object) -> list[Group]:
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


def read_rules(
    c: Checker, raw: object, inds: dict[str, Indicator], group_ids: set[str], scored: bool
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
        rid = c.item_id(spec, path, i, "a rule", seen, "duplicate rule id {id}")
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


def read_grades(c: Checker, raw: object, scored: bool, score_min: Decimal | None) -> list[Grade]:
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
