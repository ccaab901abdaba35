"""Engine benchmark: evaluations per second, with full explanation, in one process.

    .venv/bin/python bench/engine_bench.py            # 7 timed repetitions (about 20 s)
    .venv/bin/python bench/engine_bench.py --quick    # 3 shorter repetitions
    make bench-engine

Contestants, all fed the same pool of pre-built raw inputs (ints and floats, as a JSON client
would send them; keys left out where a default applies):

- engine / transport.taxi_driver and engine / environment.enterprise: our engine,
  `CompiledScorecard.evaluate(subject, indicators, as_of)` (validation of subject id and every
  indicator, scoring, explanation lines, reasons), the cards loaded from the built-in plugin.
- zen / taxi: the same taxi card as a GoRules JDM decision graph (one decision table per
  indicator computing its points, an expression node summing and clamping, a grade decision
  table with the veto first), evaluated with `zen-engine`; the graph is parsed once.
- hand-written / taxi: a plain Python function of the taxi card that builds the same
  `EvaluationResult` (lines, group totals, override, reasons, points to next grade) but
  validates nothing. It is the speed a generic engine is measured against.

Before timing, every pooled input is checked: zen gives the same score and grade as our
engine, and the hand-written function gives a result equal to our engine's, field by field
(and the same repr, so the same Decimal exponents).

Method: warm-up, then R repetitions; in each, every contestant runs a timed loop over the pool
(enough passes for about `--block` seconds), contestants interleaved and their order rotated
per repetition so machine noise hits all alike. Reported: the median evals/s per contestant and
the ratios of the medians (and, as a check on noise, the median of the ratios within each
repetition). Garbage collection stays on (as in the service); `time.perf_counter`.

Over 500 lines for a reason: one script run by path, holding its contestants side by side
(the engine, zen-engine's decision tables and a hand-written taxi evaluator) so each can be
read against the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards.engine import CompiledScorecard, ReferenceScorecard
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationResult,
    FiredOverride,
    GroupTotal,
    Line,
    ReasonCode,
    Scorecard,
    Subject,
    SubjectKind,
)
from sector_credit.scorecards.registry import ScorecardRegistry

TAXI = "transport.taxi_driver"
ENV = "environment.enterprise"
TARGET_VS_ZEN = 3.0
TARGET_VS_HAND = 0.5

# --------------------------------------------------------------------------------------------
# Realistic, varied inputs

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_REGIONS = (
    "110105",
    "310101",
    "310115",
    "440305",
    "440106",
    "350102",
    "330106",
    "510107",
    "420111",
    "320102",
    "610113",
    "210202",
)


def resident_id(rng: random.Random) -> str:
    """A valid 18-character resident id (GB 11643 check digit)."""
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(40 * 365))
    body = f"{rng.choice(_REGIONS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11]


def uscc(rng: random.Random) -> str:
    """A valid 18-character unified social credit code (GB 32100 check character)."""
    body = "91" + rng.choice(_REGIONS) + "".join(rng.choice(_USCC_CHARS[:-5]) for _ in range(9))
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


def _count(rng: random.Random, weights: tuple[float, ...]) -> int:
    return rng.choices(range(len(weights)), weights)[0]


def taxi_inputs(rng: random.Random) -> dict[str, object]:
    """Most drivers have a clean or nearly clean cycle; a few lose the whole 20."""
    ind: dict[str, object] = {}
    for name, weights in (
        ("violations_1pt", (55, 25, 10, 5, 3, 2)),
        ("violations_3pt", (65, 22, 8, 3, 2)),
        ("violations_5pt", (75, 18, 5, 2)),
        ("violations_10pt", (88, 10, 2)),
        ("violations_20pt", (95, 5)),
    ):
        n = _count(rng, weights)
        if n or rng.random() < 0.5:  # integrators often leave zero counts out
            ind[name] = n
    r = rng.random()
    if r < 0.45:
        pass  # no bonus: default 0
    elif r < 0.55:
        ind["bonus_points"] = 0
    elif r < 0.85:
        ind["bonus_points"] = rng.randint(1, 10)
    else:
        ind["bonus_points"] = rng.randrange(1, 100) / 10  # 0.1 .. 9.9, a float as JSON sends
    return ind


_VETOES = (
    "environmental_crime",
    "eia_not_approved_construction",
    "facilities_not_accepted_in_production",
    "major_change_without_eia",
    "emission_quota_exceeded",
    "hidden_discharge",
    "illegal_hazardous_waste_disposal",
    "major_environmental_incident",
    "falsified_monitoring_data",
)


def _pct(rng: random.Random, lo: float) -> float:
    return (
        round(100 - (100 - lo) * rng.random() ** 2, 1)
        if rng.random() < 0.9
        else round(rng.uniform(0, 100), 1)
    )


def env_inputs(rng: random.Random) -> dict[str, object]:
    ind: dict[str, object] = {
        "emission_compliance_min_pct": _pct(rng, 70),
        "solid_waste_treated_pct": _pct(rng, 80),
        "hazardous_waste_rating": rng.choices(
            ("compliant", "basically_compliant", "non_compliant"), (70, 22, 8)
        )[0],
        "noise_exceedance_db": 0 if rng.random() < 0.75 else round(rng.uniform(0.1, 12), 1),
        "siting_compliant": rng.random() < 0.95,
        "risk_management_complete": rng.random() < 0.8,
        "other_indicators_score": round(rng.uniform(55, 100), 1),
    }
    pen = _count(rng, (80, 12, 5, 3))
    if pen or rng.random() < 0.5:
        ind["administrative_penalties"] = pen
    for v in _VETOES:
        r = rng.random()
        if r < 0.008:
            ind[v] = True
        elif r < 0.3:
            ind[v] = False
    inc = _count(rng, (93, 6, 1))
    if inc or rng.random() < 0.3:
        ind["general_environmental_incidents"] = inc
    return ind


Case = tuple[Subject, dict[str, object], dt.date]


def build_pool(
    n: int, seed: int, kind: SubjectKind, make: Callable[[random.Random], dict[str, object]]
) -> list[Case]:
    rng = random.Random(seed)
    as_ofs = [dt.date(2025, 1, 1) + dt.timedelta(days=30 * i) for i in range(18)]
    pool = []
    for i in range(n):
        sid = resident_id(rng) if kind is SubjectKind.PERSON else uscc(rng)
        name = f"驾驶员{i:04d}" if kind is SubjectKind.PERSON else f"企业{i:04d}"
        pool.append((Subject(kind, sid, name), make(rng), rng.choice(as_ofs)))
    return pool


# --------------------------------------------------------------------------------------------
# Contestant: GoRules zen-engine, the taxi card as a JDM decision graph

_TAXI_UNITS = (
    ("violations_1pt", 1),
    ("violations_3pt", 3),
    ("violations_5pt", 5),
    ("violations_10pt", 10),
    ("violations_20pt", 20),
)


def taxi_jdm() -> dict[str, Any]:
    """Input → one decision table per indicator (points) → expression node (sums, floor,
    ceiling, clamp) → grade decision table (veto first, then bands best first) → output."""
    pos = {"x": 0, "y": 0}
    nodes: list[dict[str, Any]] = [
        {"id": "request", "type": "inputNode", "name": "Request", "position": pos}
    ]
    edges: list[dict[str, Any]] = []

    def table(node_id: str, field: str, out: str, rows: list[tuple[str, str]]) -> None:
        nodes.append(
            {
                "id": node_id,
                "type": "decisionTableNode",
                "name": node_id,
                "position": pos,
                "content": {
                    "hitPolicy": "first",
                    "inputs": [{"id": "in", "name": field, "field": field}],
                    "outputs": [{"id": "points", "name": "points", "field": out}],
                    "rules": [
                        {"_id": f"{node_id}_{i}", "in": cond, "points": expr}
                        for i, (cond, expr) in enumerate(rows)
                    ],
                },
            }
        )
        edges.append(
            {"id": f"request_{node_id}", "sourceId": "request", "targetId": node_id, "type": "edge"}
        )
        edges.append(
            {"id": f"{node_id}_sum", "sourceId": node_id, "targetId": "sum", "type": "edge"}
        )

    for name, per in _TAXI_UNITS:
        # an absent count is 0; otherwise −per points for each event
        table(f"t_{name}", name, f"points.{name}", [("null", "0"), ("", f"-{per} * {name}")])
    table(
        "t_bonus_points",
        "bonus_points",
        "points.bonus_points",
        [("null", "0"), ("", "bonus_points")],
    )
    deductions = " + ".join(f"points.{n}" for n, _ in _TAXI_UNITS)
    nodes.append(
        {
            "id": "sum",
            "type": "expressionNode",
            "name": "sum",
            "position": pos,
            "content": {
                "expressions": [
                    {"id": "e1", "key": "deductions_before_cut", "value": deductions},
                    {
                        "id": "e2",
                        "key": "deductions",
                        "value": "max([$.deductions_before_cut, -20])",
                    },
                    {"id": "e3", "key": "bonus", "value": "min([points.bonus_points, 10])"},
                    {
                        "id": "e4",
                        "key": "score",
                        "value": "min([max([20 + $.deductions + $.bonus, 0]), 30])",
                    },
                ]
            },
        }
    )
    nodes.append(
        {
            "id": "grade",
            "type": "decisionTableNode",
            "name": "grade",
            "position": pos,
            "content": {
                "hitPolicy": "first",
                "passThrough": True,
                "inputs": [
                    {"id": "d", "name": "deductions before cut", "field": "deductions_before_cut"},
                    {"id": "s", "name": "score", "field": "score"},
                ],
                "outputs": [{"id": "g", "name": "grade", "field": "grade"}],
                "rules": [
                    {"_id": "whole_20_lost", "d": "<= -20", "s": "", "g": '"B"'},
                    {"_id": "AAA", "d": "", "s": ">= 20", "g": '"AAA"'},
                    {"_id": "AA", "d": "", "s": ">= 11", "g": '"AA"'},
                    {"_id": "A", "d": "", "s": ">= 1", "g": '"A"'},
                    {"_id": "B", "d": "", "s": "", "g": '"B"'},
                ],
            },
        }
    )
    nodes.append({"id": "response", "type": "outputNode", "name": "Response", "position": pos})
    edges.append({"id": "sum_grade", "sourceId": "sum", "targetId": "grade", "type": "edge"})
    edges.append(
        {"id": "grade_response", "sourceId": "grade", "targetId": "response", "type": "edge"}
    )
    return {"contentType": "application/vnd.gorules.decision", "nodes": nodes, "edges": edges}


ZEN_KEY = "transport.taxi_driver.json"


def zen_taxi(path: str) -> Callable[[Case], dict[str, Any]]:
    """The taxi graph in zen, three ways; each parses the graph once:
    - "static":   ZenEngine with its static (in-memory) loader, `engine.evaluate(key, ctx)`;
    - "callback": ZenEngine with a Python loader returning a cached `ZenDecisionContent`,
                  `engine.evaluate(key, ctx)`;
    - "decision": `engine.get_decision(key)` once, then `decision.evaluate(ctx)`.
    """
    import zen

    graph = taxi_jdm()
    if path == "static":
        engine = zen.ZenEngine({"loader": {"type": "static", "content": {ZEN_KEY: graph}}})
    else:

        @cache
        def loader(key: str) -> Any:
            assert key == ZEN_KEY
            return zen.ZenDecisionContent(json.dumps(graph))

        engine = zen.ZenEngine({"loader": loader})
    if path == "decision":
        decision = engine.get_decision(ZEN_KEY)

        def run(case: Case) -> dict[str, Any]:
            return decision.evaluate(case[1])["result"]
    else:
        evaluate = engine.evaluate

        def run(case: Case) -> dict[str, Any]:
            return evaluate(ZEN_KEY, case[1])["result"]

    run.engine = engine  # type: ignore[attr-defined]  # keep it alive
    return run


# --------------------------------------------------------------------------------------------
# Contestant: the taxi card written by hand (no validation)

Q2 = Decimal("0.01")


def hand_taxi(card: Scorecard) -> Callable[[Case], EvaluationResult]:
    """The taxi card's arithmetic and explanation written out by hand. Titles, provenance and
    grades are taken from the loaded card once (they are text, not logic)."""
    rules = {r.id: r for r in card.rules}
    groups = {g.id: g for g in card.groups}
    grades = {g.code: g for g in card.grades}
    veto = card.overrides[0]
    count_default = card.indicator("violations_1pt").default  # type: ignore[union-attr]
    bonus_default = card.indicator("bonus_points").default  # type: ignore[union-attr]
    AAA, AA, A, B = grades["AAA"], grades["AA"], grades["A"], grades["B"]
    units = [(n, rules[n], Decimal(-per)) for n, per in _TAXI_UNITS]
    r_bonus = rules["bonus_points"]
    g_ded, g_bonus = groups["deductions"], groups["bonus"]
    FLOOR, CEILING, BASE = Decimal(-20), Decimal(10), Decimal(20)
    ZERO, MIN, MAX = Decimal(0), Decimal(0), Decimal(30)
    BEST_UNIT, BEST_BONUS, ZERO_00, BASE_00 = (
        Decimal("0.00"),
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("20.00"),
    )
    fired_veto = (
        FiredOverride(
            veto.id, veto.title, EffectKind.FORCE, "B", 0, None, veto.provenance, veto.measures
        ),
    )
    veto_reason = ReasonCode(veto.id, "override", veto.title)
    meta = (card.id, card.version, card.digest)

    def run(case: Case) -> EvaluationResult:
        subject, raw, as_of = case
        values: dict[str, Any] = {}
        pts: list[Decimal] = []
        for name, _r, per in units:
            n: Any = raw.get(name)
            if n is None:
                n = count_default
            values[name] = n
            pts.append((per * n).quantize(Q2, ROUND_HALF_UP) if n else ZERO_00)  # not -0.00
        b = raw.get("bonus_points")
        bonus: Any = (
            bonus_default if b is None else Decimal(repr(b)) if type(b) is float else Decimal(b)
        )  # type: ignore[arg-type]
        values["bonus_points"] = bonus
        before = list(pts)
        ded_raw = sum(pts, ZERO)
        ded = ded_raw
        if ded < FLOOR:  # take the cut from the later lines first
            ded = FLOOR
            cut = FLOOR - ded_raw
            for i in range(4, -1, -1):
                if cut == 0:
                    break
                if pts[i] < 0:
                    take = min(cut, -pts[i])
                    pts[i] += take
                    cut -= take
        bonus_pts = Decimal(bonus).quantize(Q2, ROUND_HALF_UP)
        bonus_before = bonus_pts
        bonus_total = min(bonus_pts, CEILING)
        bonus_line = bonus_total  # one line in the group: it takes the whole cut
        lines = tuple(
            Line(
                r.id,
                r.title,
                "deductions",
                ((name, values[name]),),
                pts[i],
                r.provenance,
                before[i] if pts[i] != before[i] else None,
                BEST_UNIT,
            )
            for i, (name, r, _per) in enumerate(units)
        ) + (
            Line(
                r_bonus.id,
                r_bonus.title,
                "bonus",
                (("bonus_points", bonus),),
                bonus_line,
                r_bonus.provenance,
                bonus_before if bonus_line != bonus_before else None,
                BEST_BONUS,
            ),
        )
        uncut = (BASE + ded + bonus_total).quantize(Q2, ROUND_HALF_UP)
        score = min(max(uncut, MIN), MAX).quantize(Q2, ROUND_HALF_UP)
        if score >= 20:
            score_grade, nxt = AAA, None
        elif score >= 11:
            score_grade, nxt = AA, AAA
        elif score >= 1:
            score_grade, nxt = A, AA
        else:
            score_grade, nxt = B, A
        forced = ded_raw <= FLOOR
        grade = B if forced else score_grade
        # absent when the force fired, or the grade is the best
        ptn = None if forced or nxt is None else (nxt.min_score - score).quantize(Q2, ROUND_HALF_UP)
        losses = []
        for i, line in enumerate(lines):
            lost = line.best_points - line.points
            if lost > 0:
                losses.append((-lost, i, line.rule_id, line.title, lost))
        losses.sort()
        reasons = tuple(
            ReasonCode(rid, "rule", title, lost) for _, _, rid, title, lost in losses[:4]
        )
        return EvaluationResult(
            scorecard_id=meta[0],
            version=meta[1],
            digest=meta[2],
            subject=subject,
            as_of=as_of,
            indicators=values,
            score=score,
            score_grade=score_grade.code,
            grade=grade,
            lines=lines,
            groups=(
                GroupTotal("deductions", g_ded.title, ded_raw, ded, FLOOR, None),
                GroupTotal("bonus", g_bonus.title, bonus_before, bonus_total, None, CEILING),
            ),
            overrides=fired_veto if forced else (),
            until=None,
            reasons=(veto_reason, *reasons) if forced else reasons,
            points_to_next_grade=ptn,
            next_grade=None if ptn is None else nxt.code,  # type: ignore[union-attr]
            base=BASE_00,
            score_before_cut=None if uncut == score else uncut,
        )

    return run


# --------------------------------------------------------------------------------------------
# Checks and timing


def engine_runner(
    compiled: CompiledScorecard | ReferenceScorecard,
) -> Callable[[Case], EvaluationResult]:
    evaluate = compiled.evaluate

    def run(case: Case) -> EvaluationResult:
        return evaluate(case[0], case[1], case[2])

    return run


def check_agreement(
    pool: list[Case],
    ours: Callable[[Case], EvaluationResult],
    zens: list[tuple[str, Callable[[Case], dict[str, Any]]]],
    hand: Callable[[Case], EvaluationResult],
) -> None:
    for i, case in enumerate(pool):
        mine = ours(case)
        for name, zen_run in zens:
            z = zen_run(case)
            zscore = (
                Decimal(repr(z["score"])) if isinstance(z["score"], float) else Decimal(z["score"])
            )
            if zscore != mine.score or z["grade"] != mine.grade.code:
                sys.exit(
                    f"{name} disagrees on pool input {i} {case[1]}: zen score {z['score']} grade "
                    f"{z['grade']}, engine score {mine.score} grade {mine.grade.code}"
                )
        h = hand(case)
        if h != mine or repr(h) != repr(mine):  # repr: the same Decimal exponents too
            sys.exit(
                f"hand-written disagrees on pool input {i} {case[1]}:\n  hand   {h}\n  engine"
                f" {mine}"
            )


def _timed(fn: Callable[[Case], Any], pool: list[Case], passes: int) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(passes):
        for case in pool:
            fn(case)
    return time.perf_counter() - t0


def machine() -> list[str]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    load = os.getloadavg()
    try:
        zen_version = importlib.metadata.version("zen-engine")
    except importlib.metadata.PackageNotFoundError:
        zen_version = "?"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [
        f"machine : {platform.system()} {platform.release()}, {cpu}",
        f"nproc   : {affinity} (os.cpu_count {os.cpu_count()})",
        f"python  : {platform.python_implementation()} {platform.python_version()}, zen-engine"
        f" {zen_version}",
        f"load    : {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at start)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 short repetitions instead of 7")
    ap.add_argument("--reps", type=int, help="timed repetitions (default 7, quick 3)")
    ap.add_argument("--block", type=float, help="seconds per timed loop (default 0.4, quick 0.15)")
    ap.add_argument(
        "--pool", type=int, default=1000, help="pre-built inputs per card (default 1000)"
    )
    ap.add_argument("--seed", type=int, default=20260101)
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 7)
    block = args.block or (0.15 if args.quick else 0.4)

    print("engine benchmark: evaluations per second, full explanation, single process")
    for line in machine():
        print(line)

    reg = ScorecardRegistry()
    reg.load_plugins(get_plugin_manager())
    taxi = reg.resolve(TAXI)
    env = reg.resolve(ENV)
    taxi_pool = build_pool(args.pool, args.seed, SubjectKind.PERSON, taxi_inputs)
    env_pool = build_pool(args.pool, args.seed + 1, SubjectKind.ORGANIZATION, env_inputs)
    for compiled, pool in ((taxi, taxi_pool), (env, env_pool)):
        results = [compiled.evaluate(*case) for case in pool]  # raises if an input were invalid
        spread = sorted(
            {r.grade.code for r in results}, key=[g.code for g in compiled.card.grades].index
        )
        print(
            f"pool    : {len(pool)} inputs for {compiled.id} {compiled.version}, grades"
            f" {', '.join(spread)}, "
            f"{sum(1 for r in results if r.overrides)} with an override"
        )

    ours_taxi = engine_runner(taxi)
    zens = [(f"zen {path}", zen_taxi(path)) for path in ("static", "callback", "decision")]
    contestants: list[tuple[str, str, Callable[[Case], Any], list[Case]]] = [
        ("engine", TAXI, ours_taxi, taxi_pool),
        ("zen, static loader, engine.evaluate", TAXI, zens[0][1], taxi_pool),
        ("zen, cached callback loader", TAXI, zens[1][1], taxi_pool),
        ("zen, get_decision + decision.evaluate", TAXI, zens[2][1], taxi_pool),
        ("hand-written (no validation)", TAXI, hand_taxi(taxi.card), taxi_pool),
        ("engine", ENV, engine_runner(env), env_pool),
        # the reference evaluator (engine.ReferenceScorecard), the test oracle: what the
        # generated code is worth is engine / reference
        ("reference evaluator", TAXI, engine_runner(taxi.reference), taxi_pool),
        ("reference evaluator", ENV, engine_runner(env.reference), env_pool),
    ]
    ZEN, HAND = 1, 4  # the fastest zen path is the reference for the target
    check_agreement(taxi_pool, ours_taxi, zens, contestants[HAND][2])
    print(
        f"check   : on all {len(taxi_pool)} pooled taxi inputs, each zen path gives the same score "
        f"and grade as the engine, and the hand-written result equals the engine's field by field"
        f" (same repr)"
    )

    # warm-up, and size each timed loop to about `block` seconds
    passes = []
    for _name, _card, fn, pool in contestants:
        _timed(fn, pool, 1)
        t = _timed(fn, pool, 1)
        passes.append(max(1, round(block / t)))

    rates: list[list[float]] = [[] for _ in contestants]
    print(
        "evals/s  "
        + " ".join(
            f"{c:>8}"
            for c in ("engine", "zen-st", "zen-cb", "zen-dec", "hand", "env", "ref", "ref-env")
        )
    )
    for rep in range(reps):
        order = list(range(len(contestants)))
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for k in order:
            fn, pool = contestants[k][2], contestants[k][3]
            secs = _timed(fn, pool, passes[k])
            rates[k].append(passes[k] * len(pool) / secs)
        print(
            f"rep {rep + 1}/{reps} "
            + " ".join(f"{rates[k][-1]:>8,.0f}" for k in range(len(contestants))),
            flush=True,
        )

    med = [statistics.median(r) for r in rates]
    print()
    print(
        f"{'contestant':<38} {'card':<23} {'median/s':>9} {'µs/eval':>8} {'min/s':>8} {'max/s':>8} "
        f"{'engine÷':>8}"
    )
    for (name, card, _fn, _pool), m, r in zip(contestants, med, rates):
        rel = (
            f"{med[0] / m:.2f}x"
            if card == TAXI
            else f"{med[5] / m:.2f}x"
            if name != "engine"
            else ""
        )
        print(
            f"{name:<38} {card:<23} {m:>9,.0f} {1e6 / m:>8.1f} {min(r):>8,.0f} {max(r):>8,.0f}"
            f" {rel:>8}"
        )
    print()
    print("ratio (taxi)                        of medians  median of per-rep  target")
    for label, k, target in (
        ("engine / zen (fastest path)", ZEN, TARGET_VS_ZEN),
        ("engine / hand-written", HAND, TARGET_VS_HAND),
    ):
        ratio = med[0] / med[k]
        paired = statistics.median(a / b for a, b in zip(rates[0], rates[k]))
        print(
            f"{label:<35} {ratio:>9.2f}x {paired:>17.2f}x  ≥ {target}x  "
            f"{'met' if ratio >= target else 'MISSED'}"
        )
    for label, k, ref in (
        ("generated / reference (taxi)", 0, 6),
        ("generated / reference (env)", 5, 7),
    ):
        paired = statistics.median(a / b for a, b in zip(rates[k], rates[ref]))
        print(f"{label:<35} {med[k] / med[ref]:>9.2f}x {paired:>17.2f}x")
    print(
        f"(reps {reps}, pool {len(taxi_pool)} per card, passes per timed loop {passes}, "
        f"load at end {os.getloadavg()[0]:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
