"""What-if: the smallest changes of actionable indicators that reach each better grade, and the
days on which time-bound overrides stop applying. Pure: no I/O, no grpc; the method is in
docs/whatif.md.

The search is exact, not sampled. With every other indicator fixed, a scorecard's grade is a
step function of one indicator: it can change only where a rule's points change (band edges,
choice codes, flag values), where an override's comparison on the indicator flips, or where a
linear rule (per_unit, direct, weighted without bands) carries a group total across a floor,
a ceiling or an override's threshold, or the score across a grade's minimum, an override's
threshold or the score range. `_candidates` lists exactly those values (each solved point with
its neighbours on the indicator's grid, since every line is rounded to 2 places); the engine
itself then scores every candidate, so what is proposed is what an evaluation would give.
Combinations of two and three indicators are searched the same way, each further indicator's
candidates taken with the earlier ones already changed.

It is one module of over 500 lines on purpose: the candidate finder and the search are one
algorithm (docs/whatif.md) sharing the thresholds read from the card and the memo of scored
values; apart, each half would need the other's state.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from .limits import accepted_bounds, accepted_places
from .model import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    EffectKind,
    EvaluationResult,
    Grade,
    Indicator,
    IndicatorType,
    IndicatorValue,
    Not,
    Scorecard,
    Subject,
)

NUMERIC = (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT)
MAX_CHANGES = 3  # indicators changed together, at most
PER_GRADE = 5  # proposals listed per grade, at most
ONE = Decimal(1)

Values = dict[str, IndicatorValue]


class Scorer(Protocol):
    """What what-if needs of a compiled scorecard (engine.CompiledScorecard or the reference)."""

    card: Scorecard

    def validate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> tuple[Subject, Values]: ...

    def score(self, subject: Subject, values: Values, as_of: dt.date) -> EvaluationResult: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One indicator changed: from its value in the evaluation to the proposed one."""

    indicator: str
    before: IndicatorValue
    after: IndicatorValue
    distance: Decimal  # |after - before| for a number, 1 for a flag or a choice


@dataclass(frozen=True, slots=True)
class Proposal:
    """A set of changes and what the same evaluation gives with them."""

    changes: tuple[Change, ...]
    grade: str
    score: Decimal | None

    @property
    def distance(self) -> Decimal:
        return sum((c.distance for c in self.changes), Decimal(0))


@dataclass(frozen=True, slots=True)
class GradeTarget:
    """A grade better than the evaluation's and the smallest ways to reach it (or better);
    none when no change of at most `MAX_CHANGES` actionable indicators reaches it."""

    grade: Grade
    proposals: tuple[Proposal, ...]


@dataclass(frozen=True, slots=True)
class OverrideEnd:
    """A fired override with an end: on `until` it no longer applies, and the same indicators
    then give `grade` (and `score`)."""

    override_id: str
    until: dt.date
    grade: str
    score: Decimal | None


@dataclass(frozen=True, slots=True)
class WhatIf:
    result: EvaluationResult  # the evaluation explored, as the engine gives it
    actionable: tuple[str, ...]  # the indicators varied, in definition order
    targets: tuple[GradeTarget, ...]  # the better grades, best first
    override_ends: tuple[OverrideEnd, ...]  # earliest first


def explore(
    scorer: Scorer,
    subject: Subject,
    indicators: Mapping[str, object],
    as_of: dt.date,
    max_changes: int = MAX_CHANGES,
    per_grade: int = PER_GRADE,
) -> WhatIf:
    """Explore one evaluation; raises InvalidInput (every problem named) as evaluation does."""
    subject, values = scorer.validate(subject, indicators, as_of)
    return _Explorer(scorer, subject, values, as_of).run(max_changes, per_grade)


def explore_values(
    scorer: Scorer,
    subject: Subject,
    values: Values,
    as_of: dt.date,
    max_changes: int = MAX_CHANGES,
    per_grade: int = PER_GRADE,
) -> WhatIf:
    """Explore validated values (a stored evaluation's, or `validate`'s)."""
    return _Explorer(scorer, subject, dict(values), as_of).run(max_changes, per_grade)


# --------------------------------------------------------------------------------------------


def _walk(cond: Condition | None) -> Iterator[Compare]:
    if cond is None:
        return
    if isinstance(cond, (AllOf, AnyOf)):
        for c in cond.items:
            yield from _walk(c)
    elif isinstance(cond, Not):
        yield from _walk(cond.item)
    elif isinstance(cond, Compare):
        yield cond


def _refs(cond: Condition) -> set[str] | None:
    """The indicators a condition reads; None when it also reads a group total or the score."""
    if isinstance(cond, (AllOf, AnyOf)):
        out: set[str] = set()
        for c in cond.items:
            r = _refs(c)
            if r is None:
                return None
            out |= r
        return out
    if isinstance(cond, Not):
        return _refs(cond.item)
    if isinstance(cond, Compare):
        if cond.ref[0] == "indicator":
            return {cond.ref[1]}
        if cond.ref[0] == "sum":
            return set(cond.ref[1:])
        return None
    return {cond.indicator}


def _numbers(v: object) -> list[Decimal]:
    items = v if isinstance(v, tuple) else (v,)
    return [Decimal(x) for x in items if isinstance(x, (int, Decimal)) and not isinstance(x, bool)]


def _group_total(gid: str) -> Callable[[EvaluationResult], Decimal | None]:
    def total(r: EvaluationResult) -> Decimal | None:
        return next((g.total_before_cut for g in r.groups if g.id == gid), None)

    return total


def _uncut(r: EvaluationResult) -> Decimal | None:
    return r.score_before_cut if r.score_before_cut is not None else r.score


class _Explorer:
    def __init__(self, scorer: Scorer, subject: Subject, values: Values, as_of: dt.date):
        card = scorer.card
        self.card = card
        self.scorer = scorer
        self.subject = subject
        self.values = values
        self.as_of = as_of
        self.rank = {g.code: i for i, g in enumerate(card.grades)}
        self.inds = {i.name: i for i in card.indicators}
        # actionable indicators with a value to start from (an absent optional one is left alone)
        self.actionable = tuple(
            i.name for i in card.indicators if i.actionable and i.name in values
        )
        compares = [c for o in card.overrides for c in _walk(o.when)]
        compares += [c for i in card.indicators for c in _walk(i.required_when)]
        # thresholds on each group's total before its cut, on the score, on each indicator
        self.group_thresholds: dict[str, set[Decimal]] = {}
        for g in card.groups:
            self.group_thresholds[g.id] = {x for x in (g.floor, g.ceiling) if x is not None}
        self.score_thresholds: set[Decimal] = {
            g.min_score for g in card.grades if g.min_score is not None
        }
        self.score_thresholds |= {x for x in (card.score_min, card.score_max) if x is not None}
        self.indicator_thresholds: dict[str, set[Decimal]] = {}
        self.sum_thresholds: list[tuple[tuple[str, ...], Decimal]] = []
        for c in compares:
            kind = c.ref[0]
            if kind == "group":
                self.group_thresholds.setdefault(c.ref[1], set()).update(_numbers(c.value))
            elif kind == "score":
                self.score_thresholds.update(_numbers(c.value))
            elif kind == "indicator":
                self.indicator_thresholds.setdefault(c.ref[1], set()).update(_numbers(c.value))
            elif kind == "sum":
                self.sum_thresholds.extend((c.ref[1:], t) for t in _numbers(c.value))
        self.summed = {n for names, _ in self.sum_thresholds for n in names}
        self.rules_on: dict[str, list[int]] = {}
        for i, rule in enumerate(card.rules):
            self.rules_on.setdefault(rule.indicator, []).append(i)
        self.band_edges: dict[str, set[Decimal]] = {}
        for rule in card.rules:
            for b in rule.bands:
                self.band_edges.setdefault(rule.indicator, set()).update(
                    x for x in (b.range.low, b.range.high) if x is not None
                )
        self._memo: dict[tuple[tuple[str, IndicatorValue], ...], EvaluationResult] = {}
        self._candidates: dict[
            tuple[str, bool, tuple[tuple[str, IndicatorValue], ...]], list[IndicatorValue]
        ] = {}

    # -- scoring ------------------------------------------------------------------------

    def score(self, changed: Mapping[str, IndicatorValue]) -> EvaluationResult:
        key = tuple(sorted(changed.items()))
        r = self._memo.get(key)
        if r is None:
            vals = dict(self.values)
            vals.update(changed)
            r = self.scorer.score(self.subject, vals, self.as_of)
            self._memo[key] = r
        return r

    # -- candidate values of one indicator ----------------------------------------------

    def _grid(self, ind: Indicator) -> tuple[Decimal, Decimal, Decimal]:
        """The indicator's step and inclusive bounds."""
        lo, hi = accepted_bounds(ind)
        assert lo is not None and hi is not None
        step = ONE if ind.type is IndicatorType.COUNT else Decimal(1).scaleb(-accepted_places(ind))
        return step, lo, hi

    def _on_grid(self, ind: Indicator, x: Decimal, spread: int) -> list[Decimal]:
        """`x` rounded down to the grid, with `spread` grid steps either side, within bounds."""
        step, lo, hi = self._grid(ind)
        base = (x / step).to_integral_value(rounding=ROUND_FLOOR) * step
        out = []
        for k in range(-spread, spread + 2):
            y = base + k * step
            if lo <= y <= hi:
                out.append(y)
        return out

    def candidates(
        self, name: str, changed: Mapping[str, IndicatorValue], last: bool = True
    ) -> list[IndicatorValue]:
        """Every value of `name` (other than its present one) at which, with `changed` applied,
        the grade may differ from its neighbours' (the module doc). Not `last` (other indicators
        of the combination still to come): only the values where its own pieces bend (bounds,
        band edges, thresholds on it, a group's floor or ceiling reached), since a smallest
        combination has every indicator but the last at such a value (docs/whatif.md)."""
        key = (name, last, tuple(sorted(changed.items())))
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = self._find_candidates(name, changed, last)
        return found

    def _find_candidates(
        self, name: str, changed: Mapping[str, IndicatorValue], last: bool
    ) -> list[IndicatorValue]:
        ind = self.inds[name]
        current = changed.get(name, self.values[name])
        if ind.type is IndicatorType.FLAG:
            return [not current]
        if ind.type is IndicatorType.CHOICE:
            return [c for c in ind.choices if c != current]
        assert ind.type in NUMERIC
        step, lo, hi = self._grid(ind)
        cur = Decimal(current)  # type: ignore[arg-type]
        points: set[Decimal] = {lo, hi, cur}
        for edge in self.band_edges.get(name, set()) | self.indicator_thresholds.get(name, set()):
            points.update(self._on_grid(ind, edge, 1))
        vals = dict(self.values)
        vals.update(changed)
        for names, t in self.sum_thresholds:
            if name in names and all(n in vals for n in names):
                rest = sum((Decimal(vals[n]) for n in names if n != name), Decimal(0))  # type: ignore[arg-type]
                points.update(self._on_grid(ind, t - rest, 1))

        def at(x: Decimal) -> EvaluationResult:
            return self.score({**changed, name: self._typed(ind, x)})

        # the linear pieces: group totals first (their floors and ceilings bend the score), then
        # the score itself, each solved between consecutive points found so far
        for quantity, thresholds in self._quantities(last):
            ordered = sorted(points)
            for a, b in itertools.pairwise(ordered):
                qa, qb = quantity(at(a)), quantity(at(b))
                if qa is None or qb is None or qa == qb:
                    continue
                for t in thresholds:
                    if min(qa, qb) <= t <= max(qa, qb):
                        x = a + (t - qa) * (b - a) / (qb - qa)
                        points.update(y for y in self._on_grid(ind, x, 2) if a <= y <= b)
        # two values the rules and conditions on the indicator cannot tell apart give the same
        # result in any combination: only the nearer one is a candidate, and none that is the
        # present value's twin
        seen = {self._signature(name, cur, at(cur))}
        out: list[IndicatorValue] = []
        for x in sorted(points, key=lambda x: (abs(x - cur), x)):
            sig = self._signature(name, x, at(x))
            if sig not in seen:
                seen.add(sig)
                out.append(self._typed(ind, x))
        return out

    def _signature(self, name: str, x: Decimal, r: EvaluationResult) -> tuple[object, ...]:
        """What of `name`'s value the evaluation can see: the points of the rules on it (before
        any group cut), which side of each threshold of a condition on it the value is, and the
        value itself when a condition adds it to others."""
        lines = r.lines
        pts = tuple(
            lines[i].points if lines[i].points_before_cut is None else lines[i].points_before_cut
            for i in self.rules_on.get(name, ())
        )
        sides = tuple((x < t, x == t) for t in sorted(self.indicator_thresholds.get(name, ())))
        return (pts, sides, x if name in self.summed else None)

    def _quantities(
        self, last: bool
    ) -> list[tuple[Callable[[EvaluationResult], Decimal | None], set[Decimal]]]:
        out: list[tuple[Callable[[EvaluationResult], Decimal | None], set[Decimal]]] = []
        for gid, ts in self.group_thresholds.items():
            if ts:
                out.append((_group_total(gid), ts))
        if self.score_thresholds and last:
            out.append((_uncut, self.score_thresholds))
        return out

    @staticmethod
    def _typed(ind: Indicator, x: Decimal) -> IndicatorValue:
        return int(x) if ind.type is IndicatorType.COUNT else x

    # -- the search ---------------------------------------------------------------------

    def _distance(self, name: str, after: IndicatorValue) -> Decimal:
        before = self.values[name]
        if self.inds[name].type in NUMERIC:
            return abs(Decimal(after) - Decimal(before))  # type: ignore[arg-type]
        return ONE

    def _assignments(
        self, names: tuple[str, ...], changed: dict[str, IndicatorValue]
    ) -> Iterator[dict[str, IndicatorValue]]:
        """Every assignment of candidate values to `names` in this order, each indicator's
        candidates taken with the earlier ones changed; a partial change is extended only when
        it `_helps`."""
        if not names:
            yield dict(changed)
            return
        first, rest = names[0], names[1:]
        for x in self.candidates(first, changed, last=not rest):
            step = {**changed, first: x}
            if rest and not self._helps(step):
                continue
            yield from self._assignments(rest, step)

    def _helps(self, changed: Mapping[str, IndicatorValue]) -> bool:
        """Whether the changes so far, alone, leave the score no lower and the grade no worse
        or change the overrides that fire: only such a change can be part of a smallest
        combination, since the points of the rules on it can only have dropped (docs/whatif.md)."""
        r, base = self.score(changed), self.result
        if self.rank[r.grade.code] > self.rank[base.grade.code]:
            return False
        return (
            r.score is None
            or base.score is None
            or r.score >= base.score
            or {o.id for o in r.overrides} != {o.id for o in base.overrides}
        )

    def run(self, max_changes: int, per_grade: int) -> WhatIf:
        self.result = base = self.score({})
        here = self.rank[base.grade.code]
        better = [g for g in self.card.grades[:here]]
        # a force or cap that fired on facts no actionable change touches bounds every proposal
        bound = self._fixed_bound(base)
        search = [g for g in better if self.rank[g.code] >= bound]
        # best proposal per indicator set and per target grade (rank)
        best: dict[int, dict[tuple[str, ...], Proposal]] = {self.rank[g.code]: {} for g in search}
        for k in range(1, max(0, min(max_changes, len(self.actionable))) + 1):
            open_targets = [t for t in best if len(best[t]) < per_grade]
            if not open_targets:
                break
            for names in itertools.combinations(self.actionable, k):
                wanted = open_targets
                for order in _orders(names):
                    for assign in self._assignments(order, {}):
                        if set(assign) != set(names):
                            continue
                        r = self.score(assign)
                        reached = self.rank[r.grade.code]
                        p = None
                        for t in wanted:
                            if reached <= t:
                                if p is None:
                                    p = Proposal(
                                        tuple(
                                            Change(
                                                n,
                                                self.values[n],
                                                assign[n],
                                                self._distance(n, assign[n]),
                                            )
                                            for n in names
                                        ),
                                        r.grade.code,
                                        r.score,
                                    )
                                old = best[t].get(names)
                                if old is None or _better(p, old, self.rank):
                                    best[t][names] = p
            # a set is worth proposing for a grade only when it changes less than every smaller
            # set within it that reaches the grade
            for t in open_targets:
                for names, p in list(best[t].items()):
                    if len(names) == k and any(
                        sub in best[t] and best[t][sub].distance <= p.distance
                        for j in range(1, k)
                        for sub in itertools.combinations(names, j)
                    ):
                        del best[t][names]
        targets = []
        for g in better:
            found = sorted(
                best.get(self.rank[g.code], {}).items(), key=lambda kv: _key(kv[1], self.rank)
            )
            targets.append(GradeTarget(g, tuple(p for _, p in found[:per_grade])))
        return WhatIf(base, self.actionable, tuple(targets), self._override_ends(base))

    def _fixed_bound(self, base: EvaluationResult) -> int:
        """The rank of the best grade any change of actionable indicators can reach, as far as
        the forces and caps that fired on other indicators alone decide (0: no such bound)."""
        actionable = set(self.actionable)
        fixed = set()
        for o in self.card.overrides:
            reads = _refs(o.when)
            if reads is not None and not reads & actionable:
                fixed.add(o.id)
        bound = 0
        for fo in base.overrides:
            if (
                fo.id in fixed
                and fo.grade is not None
                and fo.effect in (EffectKind.FORCE, EffectKind.CAP)
            ):
                bound = max(bound, self.rank[fo.grade])
        return bound

    def _override_ends(self, base: EvaluationResult) -> tuple[OverrideEnd, ...]:
        ends = []
        for fo in base.overrides:
            if fo.until is None:
                continue
            then = self.scorer.score(self.subject, dict(self.values), fo.until)
            ends.append(OverrideEnd(fo.id, fo.until, then.grade.code, then.score))
        return tuple(sorted(ends, key=lambda e: (e.until, e.override_id)))


def _orders(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The orders a set of indicators is searched in: each one last once (the last one's
    candidates are solved with all the others changed), the others in definition order."""
    if len(names) == 1:
        return [names]
    return [tuple(n for n in names if n != last) + (last,) for last in names]


def _key(p: Proposal, rank: Mapping[str, int]) -> tuple[object, ...]:
    """Fewer indicators first, then the smaller distance, then the better grade and score."""
    score = -p.score if p.score is not None else Decimal(0)
    return (len(p.changes), p.distance, rank[p.grade], score, tuple(c.indicator for c in p.changes))


def _better(p: Proposal, q: Proposal, rank: Mapping[str, int]) -> bool:
    return _key(p, rank) < _key(q, rank)


__all__ = [
    "Change",
    "GradeTarget",
    "OverrideEnd",
    "Proposal",
    "WhatIf",
    "explore",
    "explore_values",
]
