"""The rule kinds: one entry per kind, and everything else derives from this table.

Each kind (`RuleKindSpec`) declares, in one place:

- `types`: the indicator types it may score;
- `parse(c, spec, path, ind)`: reads and checks its own keys of a `[[rules]]` table (the
  loader has read the common ones: id, title, kind, indicator, group, provenance) and returns
  the `Rule` fields it sets plus the keys it used (a key it did not use is refused as one that
  "does not apply");
- `points(rule, ind)`: a function of the validated value giving the line's points (Decimal,
  before rounding): what the reference evaluator calls;
- `best(rule, ind)`: the best points a line can have (None: unbounded), before rounding;
- `emit(rule, ind, w)`: the Python lines of the generated evaluator that set `p_<rule id>`,
  the line's points in whole hundredths, from `v_<indicator>` (`w.const(value, hint)` names a
  constant of the generated module). A kind without `emit` gets `emit_by_points`: the
  generated code calls its `points` function and rounds, so a plugin's kind needs no code
  generation to run in both evaluators;
- `describe(rule)`: how the rule computes its points, as `credit scorecards show` and
  GetScorecard (`Rule.description`) give it.

The loader (`loader.py`, `sections/`), both evaluators (`reference.py`, `codegen.py`), the wire form
(`server/convert/scorecards.py`) and the CLI text (through `Rule.description`) look kinds up here
(`get`); none switches on a kind. The shape is jsonschema's keyword registry: one function
per keyword, a validator class built from the mapping, extended by adding entries.

A plugin adds kinds through the `register_rule_kinds(register)` hook (docs/plugins.md), which
calls `register` here. Kinds are process-wide, as the loader that reads them is; registering the
same spec again is a no-op, another spec under a taken name is refused.

This module is over 500 lines on purpose: adding a rule kind is meant to touch one module
(issue 14), so each kind's parse, points, best points, generated code and description stay
side by side here, with the few pieces only the kinds share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from .exact import q2
from .intervals import coverage_problems, indicator_domain, parse_interval
from .model import Band, Indicator, IndicatorType, IndicatorValue, Interval, Rule, RuleKind
from .text import decimal_text

ZERO = Decimal(0)
HUNDRED = Decimal(100)
NUMERIC = (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT)

PointsFn = Callable[[IndicatorValue], Decimal]


class Checker(Protocol):
    """What `parse` may ask of the loader: record a problem, read a number."""

    def bad(self, path: str, reason: str) -> None: ...

    def number(self, v: object, path: str) -> Decimal | None: ...

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], path: str) -> None: ...


class Writer(Protocol):
    """What `emit` may ask of the code generator: a name for a constant of the module."""

    def const(self, value: object, hint: str) -> str: ...


Parsed = tuple[dict[str, Any], set[str]]  # (Rule fields, keys used)


@dataclass(frozen=True)
class RuleKindSpec:
    """One rule kind (see the module doc). `name` is what a scorecard file writes as `kind`."""

    name: str
    types: tuple[IndicatorType, ...]
    parse: Callable[[Checker, dict[str, Any], str, Indicator], Parsed]
    points: Callable[[Rule, Indicator], PointsFn]
    best: Callable[[Rule, Indicator], Decimal | None]
    describe: Callable[[Rule], str]
    emit: Callable[[Rule, Indicator, Writer], list[str]] | None = None
    keys: frozenset[str] = frozenset()  # every key `parse` may use
    # the generated code gives `emit` the value in hundredths as `c_<indicator>` (number and
    # percent indicators: known without Decimal arithmetic when the value came as an int)
    reads_hundredths: bool = False

    def code(self, rule: Rule, ind: Indicator, w: Writer) -> list[str]:
        return (self.emit or emit_by_points)(rule, ind, w)


_KINDS: dict[str, RuleKindSpec] = {}


def register(spec: RuleKindSpec) -> None:
    """Add a kind; the same spec again is a no-op, another spec under a taken name raises."""
    if not isinstance(spec, RuleKindSpec):
        raise TypeError(f"register() takes a RuleKindSpec, not {type(spec).__name__}")
    held = _KINDS.get(spec.name)
    if held is not None and held != spec:
        raise ValueError(f"rule kind {spec.name!r} is already registered")
    if not spec.name or not spec.types:
        raise ValueError(f"rule kind {spec.name!r}: a name and at least one indicator type")
    _KINDS[spec.name] = spec


def get(name: str) -> RuleKindSpec:
    return _KINDS[name]


def known() -> Mapping[str, RuleKindSpec]:
    return dict(_KINDS)


def all_keys() -> set[str]:
    """Every key some kind reads (the loader refuses any other as unknown)."""
    return set().union(*(k.keys for k in _KINDS.values()))


def best_points(rule: Rule, ind: Indicator) -> Decimal | None:
    """The rule's best possible points (None: unbounded), rounded as the lines are."""
    best = get(rule.kind).best(rule, ind)
    return None if best is None else q2(best)


def param(rule: Rule, name: str) -> Decimal:
    """A parameter a kind keeps in `Rule.params`."""
    return dict(rule.params)[name]


# --------------------------------------------------------------------------------------------
# Pieces the kinds share


def signed(x: Decimal | None) -> str:
    if x is None:
        return ""
    text = decimal_text(x)
    return f"+{text}" if x > 0 else text


def h(x: Decimal) -> int:
    """A table entry in whole hundredths, rounded as the reference rounds a line."""
    return int(q2(x).scaleb(2))


def exact_in_hundredths(x: Decimal | None) -> bool:
    return x is None or (x * 100) == (x * 100).to_integral_value()


def int_test(expr: str, op: str, target: Decimal) -> str:
    """`expr op target` for an integer `expr` and any Decimal `target`, as integer arithmetic:
    x < 2.5 is x <= 2, x >= 2.5 is x >= 3, x = 2.5 is never true."""
    if target == target.to_integral_value():
        n = int(target)
        return {"=": f"{expr} == {n}", "!=": f"{expr} != {n}"}.get(op, f"{expr} {op} {n}")
    lo, hi = math.floor(target), math.ceil(target)
    return {
        "<": f"{expr} <= {lo}",
        "<=": f"{expr} <= {lo}",
        ">": f"{expr} >= {hi}",
        ">=": f"{expr} >= {hi}",
        "=": "False",
        "!=": "True",
    }[op]


def interval_test(
    expr: str, rng: Interval, integer: bool, const: Callable[[object, str], str]
) -> str:
    """`rng.contains(expr)` as comparisons with constant bounds."""
    parts = []
    if rng.low is not None:
        parts.append(
            int_test(expr, ">=" if rng.low_inclusive else ">", rng.low)
            if integer
            else f"{expr} {'>=' if rng.low_inclusive else '>'} {const(rng.low, 'BOUND')}"
        )
    if rng.high is not None:
        parts.append(
            int_test(expr, "<=" if rng.high_inclusive else "<", rng.high)
            if integer
            else f"{expr} {'<=' if rng.high_inclusive else '<'} {const(rng.high, 'BOUND')}"
        )
    return " and ".join(parts) or "True"


def emit_by_points(rule: Rule, ind: Indicator, w: Writer) -> list[str]:
    """The generated lines of a kind without an `emit` of its own: its `points` function,
    rounded to hundredths."""
    fn = w.const(get(rule.kind).points(rule, ind), "POINTS_FN")
    return [f"p_{rule.id} = to_hundredths({fn}(v_{rule.indicator}))"]


def _num(v: object) -> Decimal:
    return v if type(v) is Decimal else Decimal(v)  # type: ignore[arg-type]


def _choice_best(table: tuple[tuple[str, Decimal], ...], ind: Indicator) -> Decimal:
    """The best of a choice table; a code not listed scores 0."""
    return max([p for _, p in table] + ([ZERO] if len(table) < len(ind.choices) else []))


def _band_fn(rule: Rule) -> Callable[[Decimal], Decimal]:
    ranges = [(b.range, b.points) for b in rule.bands]

    def points(x: Decimal) -> Decimal:
        for rng, pts in ranges:
            if rng.contains(x):
                return pts
        # the loader proved the bands cover the domain; reaching here is a bug
        raise AssertionError(f"rule {rule.id}: no band holds {x}")

    return points


def _emit_bands(
    rule: Rule, ind: Indicator, w: Writer, scale: Callable[[Decimal], Decimal]
) -> list[str]:
    p, v = f"p_{rule.id}", f"v_{rule.indicator}"
    out = []
    for i, band in enumerate(rule.bands):
        test = interval_test(v, band.range, ind.type is IndicatorType.COUNT, w.const)
        out += [
            f"{'if' if i == 0 else 'elif'} {test}:  # {band.range}: {decimal_text(band.points)}",
            f"    {p} = {h(scale(band.points))}",
        ]
    # the loader proved the bands cover the domain; reaching here is a bug, as in the reference
    return out + ["else:", f"    raise AssertionError('rule {rule.id}: no band holds ' + str({v}))"]


def parse_bands(
    c: Checker, raw: object, path: str, ind: Indicator, score_0_100: bool
) -> tuple[Band, ...]:
    """`bands = [ { range = "[a, b)", points = n }, … ]`, covering the indicator's domain."""
    if not isinstance(raw, list) or not raw:
        c.bad(path, 'bands = [ { range = "[a, b)", points = n }, … ] with at least one band')
        return ()
    bands: list[Band] = []
    for i, b in enumerate(raw):
        bp = f"{path}[{i}]"
        if not isinstance(b, dict):
            c.bad(bp, 'a band is { range = "[a, b)", points = n }')
            continue
        c.unknown_keys(b, {"range", "points"}, bp)
        try:
            iv = parse_interval(rng if isinstance(rng := b.get("range"), str) else "")
        except ValueError as e:
            c.bad(f"{bp}.range", str(e) if b.get("range") else 'missing range, e.g. "[0, 70)"')
            continue
        pts = c.number(b.get("points"), f"{bp}.points")
        if pts is None:
            continue
        if score_0_100 and not (0 <= pts <= HUNDRED):
            c.bad(f"{bp}.points", f"a weighted band scores within [0, 100], not {pts}")
        bands.append(Band(iv, pts))
    if len(bands) == len(raw):
        for msg in coverage_problems(
            [b.range for b in bands], indicator_domain(ind), ind.type is IndicatorType.COUNT
        ):
            c.bad(path, msg)
    return tuple(bands)


def parse_choice_points(
    c: Checker, raw: object, path: str, ind: Indicator, score_0_100: bool
) -> tuple[tuple[str, Decimal], ...]:
    """`points = { code = n, … }` over the indicator's choices."""
    if not isinstance(raw, dict) or not raw:
        c.bad(path, "points = { code = n, … } for a choice rule")
        return ()
    out = []
    for code, v in raw.items():
        if code not in ind.choices:
            c.bad(f"{path}.{code}", f"not a choice of {ind.name}: {list(ind.choices)}")
        pts = c.number(v, f"{path}.{code}")
        if pts is not None:
            if score_0_100 and not (0 <= pts <= HUNDRED):
                c.bad(f"{path}.{code}", f"a weighted choice scores within [0, 100], not {pts}")
            out.append((code, pts))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# per_unit: points x value


def _per_unit_parse(c: Checker, spec: dict[str, Any], path: str, ind: Indicator) -> Parsed:
    return {"points": c.number(spec.get("points"), f"{path}.points")}, {"points"}


def _per_unit_points(rule: Rule, ind: Indicator) -> PointsFn:
    pts = rule.points
    assert pts is not None
    return lambda x: pts * x  # type: ignore[operator]


def _per_unit_best(rule: Rule, ind: Indicator) -> Decimal | None:
    assert rule.points is not None
    dom = indicator_domain(ind)
    edge = dom.high if rule.points > 0 else dom.low
    return None if edge is None else rule.points * edge


def _per_unit_emit(rule: Rule, ind: Indicator, w: Writer) -> list[str]:
    assert rule.points is not None
    p, v = f"p_{rule.id}", f"v_{rule.indicator}"
    if ind.type is IndicatorType.COUNT and exact_in_hundredths(rule.points):
        return [f"{p} = {int(rule.points * 100)} * {v}"]  # a whole product: no rounding
    return [f"{p} = to_hundredths({w.const(rule.points, 'POINTS')} * {v})"]


PER_UNIT = RuleKindSpec(
    RuleKind.PER_UNIT.value,
    NUMERIC,
    _per_unit_parse,
    _per_unit_points,
    _per_unit_best,
    lambda r: f"{signed(r.points)} per unit",
    _per_unit_emit,
    frozenset({"points"}),
)


# --------------------------------------------------------------------------------------------
# bands: the band holding the value gives its points


def _bands_parse(c: Checker, spec: dict[str, Any], path: str, ind: Indicator) -> Parsed:
    return {"bands": parse_bands(c, spec.get("bands"), f"{path}.bands", ind, False)}, {"bands"}


BANDS = RuleKindSpec(
    RuleKind.BANDS.value,
    NUMERIC,
    _bands_parse,
    lambda r, i: _band_fn(r),  # type: ignore[arg-type, return-value]
    lambda r, i: max(b.points for b in r.bands),
    lambda r: "\n".join(f"{b.range} {signed(b.points)}" for b in r.bands),
    lambda r, i, w: _emit_bands(r, i, w, lambda x: x),
    frozenset({"bands"}),
)


# --------------------------------------------------------------------------------------------
# flag: points when the flag equals `when` (default true), else 0


def _flag_parse(c: Checker, spec: dict[str, Any], path: str, ind: Indicator) -> Parsed:
    points = c.number(spec.get("points"), f"{path}.points")
    when = spec.get("when", True)
    if not isinstance(when, bool):
        c.bad(f"{path}.when", "must be true or false")
        when = True
    return {"points": points, "when": when}, {"points", "when"}


def _flag_points(rule: Rule, ind: Indicator) -> PointsFn:
    pts, when = rule.points, rule.when
    assert pts is not None
    return lambda x: pts if x is when else ZERO


def _flag_emit(rule: Rule, ind: Indicator, w: Writer) -> list[str]:
    assert rule.points is not None
    return [f"p_{rule.id} = {h(rule.points)} if v_{rule.indicator} is {rule.when} else 0"]


FLAG = RuleKindSpec(
    RuleKind.FLAG.value,
    (IndicatorType.FLAG,),
    _flag_parse,
    _flag_points,
    lambda r, i: max(r.points, ZERO),  # type: ignore[type-var]
    lambda r: f"{signed(r.points)} when {'true' if r.when else 'false'}",
    _flag_emit,
    frozenset({"points", "when"}),
)


# --------------------------------------------------------------------------------------------
# choice: the points of the code (a code not listed: 0)


def _choice_parse(c: Checker, spec: dict[str, Any], path: str, ind: Indicator) -> Parsed:
    return {
        "choice_points": parse_choice_points(c, spec.get("points"), f"{path}.points", ind, False)
    }, {"points"}


def _choice_fn(rule: Rule, factor: Decimal | None = None) -> PointsFn:
    table = dict(rule.choice_points)
    if factor is None:
        return lambda x: table.get(x, ZERO)  # type: ignore[arg-type]
    return lambda x: table.get(x, ZERO) * factor  # type: ignore[arg-type]


def _emit_choice(rule: Rule, w: Writer, scale: Callable[[Decimal], Decimal]) -> list[str]:
    table = {code: h(scale(pts)) for code, pts in rule.choice_points}  # a code not listed: 0
    return [f"p_{rule.id} = {w.const(table, 'POINTS_BY_CHOICE')}.get(v_{rule.indicator}, 0)"]


def _choice_text(rule: Rule) -> list[str]:
    return [f"{choice} {signed(points)}" for choice, points in rule.choice_points]


CHOICE = RuleKindSpec(
    RuleKind.CHOICE.value,
    (IndicatorType.CHOICE,),
    _choice_parse,
    lambda r, i: _choice_fn(r),
    lambda r, i: _choice_best(r.choice_points, i),
    lambda r: "\n".join(_choice_text(r)),
    lambda r, i, w: _emit_choice(r, w, lambda x: x),
    frozenset({"points"}),
)


# --------------------------------------------------------------------------------------------
# direct: the value itself


def _direct_emit(rule: Rule, ind: Indicator, w: Writer) -> list[str]:
    v = rule.indicator
    return [
        f"p_{rule.id} = 100 * v_{v}" if ind.type is IndicatorType.COUNT else f"p_{rule.id} = c_{v}"
    ]


DIRECT = RuleKindSpec(
    RuleKind.DIRECT.value,
    NUMERIC,
    lambda c, s, p, i: ({}, set()),
    lambda r, i: _num,
    lambda r, i: indicator_domain(i).high,
    lambda r: "the value",
    _direct_emit,
    reads_hundredths=True,
)


# --------------------------------------------------------------------------------------------
# weighted: a 0-100 score from bands, choice points, flag points (true, false) or the value
# itself, times `weight` percent (the weights of a card's weighted rules add up to 100)


def _weighted_parse(c: Checker, spec: dict[str, Any], path: str, ind: Indicator) -> Parsed:
    out: dict[str, Any] = {}
    used = {"weight"}
    weight = out["weight"] = c.number(spec.get("weight"), f"{path}.weight")
    if weight is not None and weight <= 0:
        c.bad(f"{path}.weight", "a weight is a positive percent")
    if ind.type is IndicatorType.CHOICE:
        out["choice_points"] = parse_choice_points(
            c, spec.get("points"), f"{path}.points", ind, True
        )
        used.add("points")
    elif ind.type is IndicatorType.FLAG:
        used.add("flag_points")
        fp = spec.get("flag_points")
        if not isinstance(fp, dict) or set(fp) != {"true", "false"}:
            c.bad(f"{path}.flag_points", "flag_points = { true = n, false = m }")
        else:
            t = c.number(fp["true"], f"{path}.flag_points.true")
            f = c.number(fp["false"], f"{path}.flag_points.false")
            if t is not None and f is not None:
                for v, k in ((t, "true"), (f, "false")):
                    if not 0 <= v <= HUNDRED:
                        c.bad(f"{path}.flag_points.{k}", "a weighted flag scores within [0, 100]")
                out["flag_points"] = (t, f)
    elif "bands" in spec:
        out["bands"] = parse_bands(c, spec.get("bands"), f"{path}.bands", ind, True)
        used.add("bands")
    else:
        dom = indicator_domain(ind)
        if dom.low is None or dom.high is None or dom.low < 0 or dom.high > HUNDRED:
            c.bad(
                f"{path}.indicator",
                f"a weighted rule scoring the value itself needs an indicator within [0, 100];"
                f" {ind.name} is {dom}",
            )
    return out, used


def _factor(rule: Rule) -> Decimal:
    assert rule.weight is not None
    return rule.weight / HUNDRED


def _weighted_points(rule: Rule, ind: Indicator) -> PointsFn:
    factor = _factor(rule)
    if ind.type is IndicatorType.CHOICE:
        return _choice_fn(rule, factor)
    if ind.type is IndicatorType.FLAG:
        assert rule.flag_points is not None
        t, f = rule.flag_points
        return lambda x: (t if x is True else f) * factor
    if rule.bands:
        bp = _band_fn(rule)
        return lambda x: bp(x) * factor  # type: ignore[arg-type]
    return lambda x: _num(x) * factor


def _weighted_best(rule: Rule, ind: Indicator) -> Decimal:
    factor = _factor(rule)
    if ind.type is IndicatorType.CHOICE:
        return _choice_best(rule.choice_points, ind) * factor
    if ind.type is IndicatorType.FLAG:
        assert rule.flag_points is not None
        return max(rule.flag_points) * factor
    if rule.bands:
        return max(b.points for b in rule.bands) * factor
    high = indicator_domain(ind).high
    assert high is not None
    return high * factor


def _weighted_emit(rule: Rule, ind: Indicator, w: Writer) -> list[str]:
    factor = _factor(rule)

    def scale(x: Decimal) -> Decimal:
        return x * factor

    head = [f"# score x {decimal_text(rule.weight)}%"]
    if ind.type is IndicatorType.CHOICE:
        return head + _emit_choice(rule, w, scale)
    if ind.type is IndicatorType.FLAG:
        assert rule.flag_points is not None
        t, f = rule.flag_points
        return head + [
            f"p_{rule.id} = {h(scale(t))} if v_{rule.indicator} is True else {h(scale(f))}"
        ]
    if rule.bands:
        return head + _emit_bands(rule, ind, w, scale)
    return head + [f"p_{rule.id} = to_hundredths(v_{rule.indicator} * {w.const(factor, 'FACTOR')})"]


def _weighted_text(rule: Rule) -> str:
    parts = [f"{b.range} {signed(b.points)}" for b in rule.bands] + _choice_text(rule)
    if rule.flag_points is not None:
        parts += [
            f"true {decimal_text(rule.flag_points[0])}",
            f"false {decimal_text(rule.flag_points[1])}",
        ]
    head = f"× {decimal_text(rule.weight)}% of:"
    return "\n".join([head, *parts]) if parts else f"{head} the value"


WEIGHTED = RuleKindSpec(
    RuleKind.WEIGHTED.value,
    (*NUMERIC, IndicatorType.FLAG, IndicatorType.CHOICE),
    _weighted_parse,
    _weighted_points,
    _weighted_best,
    _weighted_text,
    _weighted_emit,
    frozenset({"weight", "points", "bands", "flag_points"}),
)


for _spec in (PER_UNIT, BANDS, FLAG, CHOICE, DIRECT, WEIGHTED):
    register(_spec)

__all__ = ["Checker", "RuleKindSpec", "Writer", "best_points", "get", "known", "param", "register"]
