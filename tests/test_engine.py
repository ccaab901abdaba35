"""The engine against SCORECARDS.md §1, with small cards written here (not the built-ins).

Each section is a table of cases: the inputs and what §1 says comes out.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from string import Template
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sector_credit.scorecards import loader
from sector_credit.scorecards.engine import (
    CompiledScorecard,
    add_years,
    compile_reference,
    compile_scorecard,
)
from sector_credit.scorecards.model import (
    EffectKind,
    EvaluationResult,
    InvalidInput,
    Subject,
    SubjectKind,
)

AS_OF = dt.date(2026, 1, 1)
PERSON = Subject(SubjectKind.PERSON, "11010519491231002X")
ORGANIZATION = Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43")
D = Decimal

T = 'title = { zh = "测试", en = "Test" }'
P = 'provenance = { tag = "design", source = "test card" }'


def card(
    body: str, *, head: str = "base = 0\nscore = { min = -1000, max = 1000 }", kind: str = "person"
) -> CompiledScorecard:
    """Compile a small card: `body` may use $T (a title) and $P (a provenance)."""
    text = f"""
id = "test.card"
version = "1"
effective_from = 2020-01-01
subject_kind = "{kind}"
{T}
{head}
""" + Template(body).substitute(T=T, P=P)
    return compile_scorecard(loader.load_text(text, file="test.toml"))


def run(
    compiled: CompiledScorecard,
    as_of: dt.date = AS_OF,
    /,
    subject: Subject = PERSON,
    **indicators: Any,
) -> EvaluationResult:
    return compiled.evaluate(subject, indicators, as_of)


def line(result: EvaluationResult, rule_id: str) -> tuple[Decimal, Decimal | None]:
    (ln,) = [ln for ln in result.lines if ln.rule_id == rule_id]
    return ln.points, ln.points_before_cut


def grade_tables(*codes_and_mins: str) -> str:
    """[[grades]] tables: 'A:20' is a grade with min 20, 'X' an override-only grade."""
    out = []
    for spec in codes_and_mins:
        code, _, minimum = spec.partition(":")
        out.append(
            f'[[grades]]\ncode = "{code}"\n$T\n$P\n' + (f"min = {minimum}\n" if minimum else "")
        )
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Exact arithmetic: 0.15 × 70 is 10.50 and a score of exactly 80 is in the band starting at 80

EXACT = card(
    """
[indicators.rate]
type = "percent"
$T
[indicators.share]
type = "number"
min = 0
max = 1
places = 4
$T
[indicators.rest]
type = "percent"
$T

[[rules]]
id = "rate"
$T
$P
kind = "weighted"
indicator = "rate"
weight = 15

[[rules]]
id = "rest"
$T
$P
kind = "weighted"
indicator = "rest"
weight = 85

[[rules]]
id = "share"
$T
$P
kind = "per_unit"
indicator = "share"
points = 100
"""
    + grade_tables("A:80", "B:57", "C:0"),
    head="base = 0\nscore = { min = 0, max = 300 }",
)


@pytest.mark.parametrize(
    ("indicators", "rule", "points", "score", "grade"),
    [
        ({"rate": 70, "rest": 0, "share": 0}, "rate", "10.50", "10.50", "C"),
        ({"rate": 70.0, "rest": 0, "share": 0}, "rate", "10.50", "10.50", "C"),  # a float input
        ({"rate": "70", "rest": 0, "share": 0}, "rate", "10.50", "10.50", "C"),  # a decimal string
        ({"rate": 33.3, "rest": 0, "share": 0}, "rate", "5.00", "5.00", "C"),  # 4.995 to 2 places
        ({"rate": 0, "rest": 0, "share": 0.57}, "share", "57.00", "57.00", "B"),  # float 56.99999…
        ({"rate": 0, "rest": 0, "share": 0.8}, "share", "80.00", "80.00", "A"),  # exactly 80 is A
        ({"rate": 0, "rest": 0, "share": D("0.7999")}, "share", "79.99", "79.99", "B"),
        ({"rate": 100, "rest": 70, "share": 0.1}, "rest", "59.50", "84.50", "A"),  # 15 + 59.5 + 10
    ],
)
def test_exact_decimals(
    indicators: dict[str, Any], rule: str, points: str, score: str, grade: str
) -> None:
    r = run(EXACT, **indicators)
    assert str(line(r, rule)[0]) == points  # the text, not just the value: exactly 2 places
    assert str(r.score) == score
    assert r.grade.code == grade


# --------------------------------------------------------------------------------------------
# Points by rule kind

KINDS = card(
    """
[indicators.late]
type = "count"
$T
[indicators.hours]
type = "number"
min = 0
max = 100
default = 0
$T
[indicators.rating]
type = "percent"
default = 75
$T
[indicators.certified]
type = "flag"
$T
[indicators.trained]
type = "flag"
$T
[indicators.tier]
type = "choice"
choices = ["gold", "silver", "bronze"]
default = "bronze"
$T
[indicators.section]
type = "number"
min = -5
max = 50
default = 0
$T

[[rules]]
id = "late"
$T
$P
kind = "per_unit"
indicator = "late"
points = -2

[[rules]]
id = "hours"
$T
$P
kind = "per_unit"
indicator = "hours"
points = 0.5

[[rules]]
id = "rating"
$T
$P
kind = "bands"
indicator = "rating"
bands = [
  { range = "[90, 100]", points = 2 },
  { range = "[60, 90)", points = 0 },
  { range = "[0, 60)", points = -2 },
]

[[rules]]
id = "certified"
$T
$P
kind = "flag"
indicator = "certified"
points = 3

[[rules]]
id = "trained"
$T
$P
kind = "flag"
indicator = "trained"
points = -5
when = false

[[rules]]
id = "tier"
$T
$P
kind = "choice"
indicator = "tier"
points = { gold = 5, silver = 2.5 }

[[rules]]
id = "section"
$T
$P
kind = "direct"
indicator = "section"
"""
    + grade_tables("A:0", "B:-1000")
)


@pytest.mark.parametrize(
    ("indicators", "rule", "points"),
    [
        # per_unit: points × value, of a count or a number
        ({"late": 0}, "late", "0"),
        ({"late": 3}, "late", "-6"),
        ({"hours": D("2.5")}, "hours", "1.25"),
        ({"hours": "0.01"}, "hours", "0.01"),  # 0.005 rounds half up to 2 places
        # bands: the first band whose range holds the value; [from, to) unless stated
        ({"rating": 100}, "rating", "2"),
        ({"rating": 90}, "rating", "2"),
        ({"rating": D("89.99")}, "rating", "0"),
        ({"rating": 60}, "rating", "0"),
        ({"rating": D("59.99")}, "rating", "-2"),
        ({"rating": 0}, "rating", "-2"),
        # flag: points when the flag is true, or false as stated
        ({"certified": True}, "certified", "3"),
        ({"certified": False}, "certified", "0"),
        ({"trained": False}, "trained", "-5"),
        ({"trained": True}, "trained", "0"),
        # choice: points per code; a code the rule does not list scores 0
        ({"tier": "gold"}, "tier", "5"),
        ({"tier": "silver"}, "tier", "2.5"),
        ({"tier": "bronze"}, "tier", "0"),
        # direct: the value is the points
        ({"section": D("47.5")}, "section", "47.5"),
        ({"section": -5}, "section", "-5"),
    ],
)
def test_rule_points(indicators: dict[str, Any], rule: str, points: str) -> None:
    r = run(KINDS, **indicators)
    assert line(r, rule) == (D(points), None)


def test_score_is_base_plus_every_line() -> None:
    r = run(
        KINDS, late=1, hours=4, rating=95, certified=True, trained=False, tier="gold", section=10
    )
    assert [ln.points for ln in r.lines] == [D(-2), D(2), D(2), D(3), D(-5), D(5), D(10)]
    assert r.score == D(15)


WEIGHTED = card(
    """
[indicators.emission]
type = "percent"
$T
[indicators.hazard]
type = "choice"
choices = ["compliant", "basically_compliant", "non_compliant"]
$T
[indicators.siting]
type = "flag"
required = true
$T
[indicators.noise_db]
type = "number"
min = 0
$T
[indicators.other]
type = "number"
min = 0
max = 100
$T

[[rules]]
id = "emission"
$T
$P
kind = "weighted"
indicator = "emission"
weight = 15
bands = [
  { range = "[90, 100]", points = 100 },
  { range = "[75, 90)", points = 70 },
  { range = "[0, 75)", points = 0 },
]

[[rules]]
id = "hazard"
$T
$P
kind = "weighted"
indicator = "hazard"
weight = 5
points = { compliant = 100, basically_compliant = 70, non_compliant = 30 }

[[rules]]
id = "siting"
$T
$P
kind = "weighted"
indicator = "siting"
weight = 2
flag_points = { true = 100, false = 0 }

[[rules]]
id = "noise"
$T
$P
kind = "weighted"
indicator = "noise_db"
weight = 4
bands = [
  { range = "[0, 0]", points = 100 },
  { range = "(0, 5]", points = 65 },
  { range = "(5, +inf)", points = 30 },
]

[[rules]]
id = "other"
$T
$P
kind = "weighted"
indicator = "other"
weight = 74
"""
    + grade_tables("GREEN:95", "RED:0"),
    head="base = 0\nscore = { min = 0, max = 100 }",
    kind="organization",
)

WEIGHTED_BASE = {
    "emission": 100,
    "hazard": "compliant",
    "siting": True,
    "noise_db": 0,
    "other": 100,
}


@pytest.mark.parametrize(
    ("changes", "rule", "points"),
    [
        ({"emission": 85}, "emission", "10.50"),  # 70 × 15%
        ({"emission": 90}, "emission", "15.00"),
        ({"emission": 74}, "emission", "0.00"),
        ({"hazard": "basically_compliant"}, "hazard", "3.50"),  # 70 × 5%
        ({"siting": False}, "siting", "0.00"),
        ({"siting": True}, "siting", "2.00"),
        ({"noise_db": 0}, "noise", "4.00"),
        ({"noise_db": 3}, "noise", "2.60"),  # 65 × 4%
        ({"noise_db": 5}, "noise", "2.60"),
        ({"noise_db": D("5.01")}, "noise", "1.20"),
        ({"other": 90}, "other", "66.60"),  # the value itself × 74%
    ],
)
def test_weighted_points(changes: dict[str, Any], rule: str, points: str) -> None:
    r = run(WEIGHTED, subject=ORGANIZATION, **{**WEIGHTED_BASE, **changes})
    assert str(line(r, rule)[0]) == points


def test_weighted_score_is_the_sum() -> None:
    r = run(
        WEIGHTED,
        subject=ORGANIZATION,
        emission=85,
        hazard="compliant",
        siting=True,
        noise_db=3,
        other=90,
    )
    assert r.score == D("10.50") + D(5) + D(2) + D("2.60") + D("66.60")
    assert str(r.score) == "86.70"
    assert r.grade.code == "RED"


# --------------------------------------------------------------------------------------------
# Groups: a floor and/or a ceiling on the group's total; the cut comes from the later lines

GROUPS = card(
    """
[indicators.a]
type = "count"
$T
[indicators.b]
type = "count"
$T
[indicators.c]
type = "count"
$T
[indicators.x]
type = "number"
min = 0
max = 10
default = 0
$T
[indicators.y]
type = "number"
min = 0
max = 10
default = 0
$T
[indicators.free]
type = "count"
$T

[groups.deductions]
$T
floor = -20
[groups.bonus]
$T
ceiling = 10

[[rules]]
id = "a"
$T
$P
kind = "per_unit"
indicator = "a"
points = -10
group = "deductions"

[[rules]]
id = "x"
$T
$P
kind = "direct"
indicator = "x"
group = "bonus"

[[rules]]
id = "b"
$T
$P
kind = "per_unit"
indicator = "b"
points = -5
group = "deductions"

[[rules]]
id = "free"
$T
$P
kind = "per_unit"
indicator = "free"
points = -1

[[rules]]
id = "c"
$T
$P
kind = "per_unit"
indicator = "c"
points = -1
group = "deductions"

[[rules]]
id = "y"
$T
$P
kind = "direct"
indicator = "y"
group = "bonus"
"""
    + grade_tables("A:0", "B:-100"),
    head="base = 20\nscore = { min = -100, max = 100 }",
)


@pytest.mark.parametrize(
    ("indicators", "lines", "groups", "score"),
    [
        # exactly at the floor: nothing is cut, no points_before_cut
        (
            {"a": 2},
            {"a": ("-20", None), "b": ("0", None), "c": ("0", None)},
            {"deductions": ("-20", "-20")},
            "0",
        ),
        # the cut is taken from the later line
        (
            {"a": 1, "b": 3},
            {"a": ("-10", None), "b": ("-10", "-15")},
            {"deductions": ("-25", "-20")},
            "0",
        ),
        (
            {"a": 1, "b": 2, "c": 5},
            {"a": ("-10", None), "b": ("-10", None), "c": ("0", "-5")},
            {"deductions": ("-25", "-20")},
            "0",
        ),
        (
            {"a": 1, "b": 3, "c": 4},
            {"a": ("-10", None), "b": ("-10", "-15"), "c": ("0", "-4")},
            {"deductions": ("-29", "-20")},
            "0",
        ),
        # one line alone beyond the floor is cut itself
        ({"a": 3}, {"a": ("-20", "-30")}, {"deductions": ("-30", "-20")}, "0"),
        # a ceiling: the later bonus line loses what is above it
        ({"x": 8, "y": 5}, {"x": ("8", None), "y": ("2", "5")}, {"bonus": ("13", "10")}, "30"),
        ({"x": 10, "y": 10}, {"x": ("10", None), "y": ("0", "10")}, {"bonus": ("20", "10")}, "30"),
        # ungrouped points are never cut
        (
            {"a": 3, "free": 30},
            {"a": ("-20", "-30"), "free": ("-30", None)},
            {"deductions": ("-30", "-20")},
            "-30",
        ),
    ],
)
def test_group_floor_and_ceiling(
    indicators: dict[str, Any],
    lines: dict[str, tuple[str, str | None]],
    groups: dict[str, tuple[str, str]],
    score: str,
) -> None:
    r = run(GROUPS, **indicators)
    for rule_id, (points, before) in lines.items():
        assert line(r, rule_id) == (D(points), None if before is None else D(before)), rule_id
    totals = {g.id: (g.total_before_cut, g.total) for g in r.groups}
    for gid, (before, total) in groups.items():
        assert totals[gid] == (D(before), D(total))
    assert r.score == D(score)
    # the lines add up to the score: the explanation is the arithmetic
    assert D(20) + sum(ln.points for ln in r.lines) == r.score


# --------------------------------------------------------------------------------------------
# Rounding (SCORECARDS.md §1 "Exact arithmetic"): each line rounded to 2 places half away from
# zero where it is computed; a group total is the sum of its shown lines, the score the sum of
# what the explanation shows

ROUNDING = card(
    """
[indicators.a]
type = "number"
min = -100
max = 100
$T
[indicators.b]
type = "number"
min = -100
max = 100
$T
[indicators.n]
type = "count"
$T
[indicators.m]
type = "count"
$T
[indicators.w]
type = "number"
min = 0
max = 100
$T
[indicators.f]
type = "flag"
$T

[groups.g]
$T

[[rules]]
id = "a"
$T
$P
kind = "per_unit"
indicator = "a"
points = 0.5

[[rules]]
id = "b"
$T
$P
kind = "per_unit"
indicator = "b"
points = 0.5

[[rules]]
id = "n"
$T
$P
kind = "per_unit"
indicator = "n"
group = "g"
points = -0.125

[[rules]]
id = "m"
$T
$P
kind = "per_unit"
indicator = "m"
group = "g"
points = -0.125

[[rules]]
id = "w"
$T
$P
kind = "weighted"
indicator = "w"
weight = 44

[[rules]]
id = "f"
$T
$P
kind = "weighted"
indicator = "f"
weight = 56
flag_points = { true = 100, false = 0 }
"""
    + grade_tables("A:0", "B:-1000")
)


@pytest.mark.parametrize(
    ("indicators", "lines", "group_total", "score"),
    [
        # a half hundredth goes away from zero, both ways
        ({"a": "0.01"}, {"a": "0.01"}, "0.00", "0.01"),  # 0.005
        ({"a": "-0.01"}, {"a": "-0.01"}, "0.00", "-0.01"),  # -0.005
        ({"a": "0.03"}, {"a": "0.02"}, "0.00", "0.02"),  # 0.015
        ({"a": "-0.03"}, {"a": "-0.02"}, "0.00", "-0.02"),  # -0.015
        # the score is the sum of the shown lines (0.01 + 0.01), not the rounded exact sum (0.01)
        ({"a": "0.01", "b": "0.01"}, {"a": "0.01", "b": "0.01"}, "0.00", "0.02"),
        ({"a": "-0.01", "b": "-0.01"}, {"a": "-0.01", "b": "-0.01"}, "0.00", "-0.02"),
        # a count times points with 3 places; the group total is the sum of its shown lines
        ({"n": 1}, {"n": "-0.13"}, "-0.13", "-0.13"),  # -0.125
        ({"n": 3}, {"n": "-0.38"}, "-0.38", "-0.38"),  # -0.375
        ({"n": 1, "m": 1}, {"n": "-0.13", "m": "-0.13"}, "-0.26", "-0.26"),  # not -0.25
        # a weighted line: 44% x 88.63 = 38.9972 shows as 39.00, and the score counts 39.00
        ({"w": "88.63"}, {"w": "39.00"}, "0.00", "39.00"),
        ({"w": "88.63", "f": True}, {"w": "39.00", "f": "56.00"}, "0.00", "95.00"),
        ({"w": "0.01"}, {"w": "0.00"}, "0.00", "0.00"),  # 0.0044
        ({"w": "0.02"}, {"w": "0.01"}, "0.00", "0.01"),  # 0.0088
    ],
)
def test_each_line_rounded_where_computed_and_sums_of_what_is_shown(
    indicators: dict[str, Any], lines: dict[str, str], group_total: str, score: str
) -> None:
    values = {"a": 0, "b": 0, "w": 0, **indicators}
    for evaluator in (ROUNDING, compile_reference(ROUNDING.card)):
        r = evaluator.evaluate(PERSON, values, AS_OF)
        shown = {ln.rule_id: str(ln.points) for ln in r.lines if ln.rule_id in lines}
        assert shown == lines  # the text too: 2 places
        (g,) = r.groups
        assert str(g.total) == group_total
        assert str(r.score) == score
        assert r.score == r.base + sum(x.total for x in r.groups) + sum(
            ln.points for ln in r.lines if ln.group is None
        )


# --------------------------------------------------------------------------------------------
# Score clamped to [min, max]; grade bands; override-only grades

CLAMPED = card(
    """
[indicators.s]
type = "number"
$T

[[rules]]
id = "s"
$T
$P
kind = "direct"
indicator = "s"
"""
    + grade_tables("A:20", "B:11", "C:1", "D:0", "X"),
    head="base = 10\nscore = { min = 0, max = 30 }",
)


@pytest.mark.parametrize(
    ("s", "score", "grade"),
    [
        (-50, "0", "D"),  # clamped up to min
        (-10, "0", "D"),
        (D("-9.99"), "0.01", "D"),
        (-9, "1", "C"),
        (0, "10", "C"),
        (1, "11", "B"),
        (D("9.99"), "19.99", "B"),
        (10, "20", "A"),
        (20, "30", "A"),
        (50, "30", "A"),  # clamped down to max
    ],
)
def test_score_clamp_and_grade_bands(s: Any, score: str, grade: str) -> None:
    r = run(CLAMPED, s=s)
    assert (r.score, r.grade.code, r.score_grade) == (D(score), grade, grade)
    assert line(r, "s")[0] == D(s)  # the line keeps its points; only the score is clamped


@pytest.mark.parametrize(
    ("s", "score", "score_before_cut"),
    [
        (-50, "0.00", "-40.00"),  # base 10 + -50, cut up to the minimum 0
        (-10, "0.00", None),  # exactly the minimum: nothing cut
        (D("-10.01"), "0.00", "-0.01"),
        (0, "10.00", None),
        (20, "30.00", None),  # exactly the maximum
        (D("20.01"), "30.00", "30.01"),
        (50, "30.00", "60.00"),  # cut down to the maximum
    ],
)
def test_the_result_carries_the_base_and_the_score_before_the_cut(
    s: Any, score: str, score_before_cut: str | None
) -> None:
    for evaluator in (CLAMPED, compile_reference(CLAMPED.card)):
        r = evaluator.evaluate(PERSON, {"s": s}, AS_OF)
        assert str(r.base) == "10.00"
        assert str(r.score) == score
        assert (None if r.score_before_cut is None else str(r.score_before_cut)) == score_before_cut
        # base + lines = the score before the cut, or the score when nothing was cut
        uncut = r.base + sum(ln.points for ln in r.lines)
        assert uncut == (r.score if r.score_before_cut is None else r.score_before_cut)


def test_no_score_reaches_an_override_only_grade() -> None:
    grades = {run(CLAMPED, s=s).grade.code for s in range(-20, 30)}
    assert grades == {"A", "B", "C", "D"}


# --------------------------------------------------------------------------------------------
# Eligibility: no points, no score; the default grade unless an override decides

ELIGIBILITY = card(
    """
default_grade = "ELIGIBLE"

[indicators.criminal_record]
type = "flag"
$T

[[grades]]
code = "ELIGIBLE"
$T
$P

[[grades]]
code = "BARRED"
$T
$P

[[overrides]]
id = "criminal_record"
$T
$P
when = { indicator = "criminal_record", op = "=", value = true }
effect = "force"
grade = "BARRED"
""",
    head="",
)


@pytest.mark.parametrize(
    ("criminal_record", "grade", "overrides"),
    [(False, "ELIGIBLE", []), (True, "BARRED", ["criminal_record"])],
)
def test_eligibility_card(criminal_record: bool, grade: str, overrides: list[str]) -> None:
    r = run(ELIGIBILITY, criminal_record=criminal_record)
    assert r.score is None and r.score_grade is None
    assert r.lines == () and r.groups == ()
    assert r.grade.code == grade
    assert [o.id for o in r.overrides] == overrides
    assert [c.code for c in r.reasons] == overrides
    assert r.points_to_next_grade is None and r.next_grade is None


# --------------------------------------------------------------------------------------------
# Overrides: downgrade, then cap, then force; several forces: the lowest grade wins

OVERRIDES = card(
    """
[indicators.s]
type = "number"
min = 0
max = 40
$T
"""
    + "".join(
        f'[indicators.{f}]\ntype = "flag"\n$T\n'
        for f in ("down1", "down2", "cap_b", "cap_c", "force_a", "force_c", "force_x")
    )
    + """
[[rules]]
id = "s"
$T
$P
kind = "direct"
indicator = "s"
"""
    + grade_tables("A:30", "B:20", "X", "C:10", "D:0", "Z")
    + """
[[overrides]]
id = "down1"
$T
$P
when = { indicator = "down1", op = "=", value = true }
effect = "downgrade"
steps = 1

[[overrides]]
id = "down2"
$T
$P
when = { indicator = "down2", op = "=", value = true }
effect = "downgrade"
steps = 2

[[overrides]]
id = "cap_b"
$T
$P
when = { indicator = "cap_b", op = "=", value = true }
effect = "cap"
grade = "B"

[[overrides]]
id = "cap_c"
$T
$P
when = { indicator = "cap_c", op = "=", value = true }
effect = "cap"
grade = "C"

[[overrides]]
id = "force_a"
$T
$P
when = { indicator = "force_a", op = "=", value = true }
effect = "force"
grade = "A"

[[overrides]]
id = "force_c"
$T
$P
when = { indicator = "force_c", op = "=", value = true }
effect = "force"
grade = "C"

[[overrides]]
id = "force_x"
$T
$P
when = { indicator = "force_x", op = "=", value = true }
effect = "force"
grade = "X"
""",
    head="base = 0\nscore = { min = 0, max = 40 }",
)


@pytest.mark.parametrize(
    ("s", "flags", "grade"),
    [
        (35, [], "A"),
        # downgrade N: N grades lower (override-only grades listed between are not steps)
        (35, ["down1"], "B"),
        (25, ["down1"], "C"),
        (35, ["down2"], "C"),
        (35, ["down1", "down2"], "D"),  # downgrades add up
        (15, ["down2"], "D"),  # not below the lowest grade a score can reach
        (5, ["down1"], "D"),
        # cap: no better than the grade; a cap never raises
        (35, ["cap_b"], "B"),
        (15, ["cap_b"], "C"),
        (35, ["cap_b", "cap_c"], "C"),  # the lowest cap holds
        # downgrade first, then cap: A → (2 lower) C → capped at B stays C
        (35, ["down2", "cap_b"], "C"),
        # cap first would give B → 1 lower C; downgrade first gives B → capped at B: B
        (35, ["down1", "cap_b"], "B"),
        # force last: that grade whatever the score, downgrades and caps
        (35, ["force_c"], "C"),
        (5, ["force_a"], "A"),
        (35, ["down2", "cap_c", "force_a"], "A"),
        (35, ["force_x"], "X"),  # an override-only grade
        # several forces: the lowest grade wins
        (35, ["force_a", "force_c"], "C"),
        (35, ["force_x", "force_c"], "C"),
        (35, ["force_a", "force_x"], "X"),
    ],
)
def test_override_effects_and_order(s: int, flags: list[str], grade: str) -> None:
    r = run(OVERRIDES, s=s, **{f: True for f in flags})
    assert r.grade.code == grade
    assert [o.id for o in r.overrides] == [
        o
        for o in ("down1", "down2", "cap_b", "cap_c", "force_a", "force_c", "force_x")
        if o in flags
    ]


def test_fired_override_carries_effect_and_provenance() -> None:
    r = run(OVERRIDES, s=35, down2=True, cap_b=True)
    assert [(o.id, o.effect, o.grade, o.steps) for o in r.overrides] == [
        ("down2", EffectKind.DOWNGRADE, None, 2),
        ("cap_b", EffectKind.CAP, "B", 0),
    ]
    assert all(o.provenance.source == "test card" for o in r.overrides)
    assert r.score_grade == "A"


# --------------------------------------------------------------------------------------------
# until: the first day an override no longer applies; the latest is reported, none beats a date

UNTIL = card(
    """
[indicators.offence_date]
type = "date"
past = true
$T
[indicators.ban_end]
type = "date"
$T
[indicators.listed]
type = "flag"
$T
[indicators.warned]
type = "flag"
$T
[indicators.warning_date]
type = "date"
$T
"""
    + grade_tables("OK:-10", "REFUSED")
    + """
[[overrides]]
id = "recent_offence"
$T
$P
when = { indicator = "offence_date", within_years = 3 }
effect = "force"
grade = "REFUSED"
until = { indicator = "offence_date", years = 3 }

[[overrides]]
id = "banned"
$T
$P
when = { indicator = "ban_end", after_as_of = true }
effect = "force"
grade = "REFUSED"
until = { indicator = "ban_end" }

[[overrides]]
id = "listed"
$T
$P
when = { indicator = "listed", op = "=", value = true }
effect = "force"
grade = "REFUSED"

[[overrides]]
id = "warned"
$T
$P
when = { indicator = "warned", op = "=", value = true }
effect = "force"
grade = "REFUSED"
until = { indicator = "warning_date", years = 1 }
""",
    head="base = 0\nscore = { min = -10, max = 10 }",
    kind="organization",
)


@pytest.mark.parametrize(
    ("indicators", "overrides", "until"),
    [
        ({}, [], None),
        ({"offence_date": dt.date(2024, 6, 1)}, ["recent_offence"], dt.date(2027, 6, 1)),
        ({"ban_end": dt.date(2026, 5, 1)}, ["banned"], dt.date(2026, 5, 1)),
        # several forces: the latest until is reported
        (
            {"offence_date": dt.date(2024, 6, 1), "ban_end": dt.date(2026, 5, 1)},
            ["recent_offence", "banned"],
            dt.date(2027, 6, 1),
        ),
        (
            {"offence_date": dt.date(2024, 6, 1), "ban_end": dt.date(2030, 1, 1)},
            ["recent_offence", "banned"],
            dt.date(2030, 1, 1),
        ),
        # one with no until beats any date
        ({"ban_end": dt.date(2030, 1, 1), "listed": True}, ["banned", "listed"], None),
        ({"listed": True}, ["listed"], None),
        # 29 February + 3 years = 28 February
        ({"offence_date": dt.date(2024, 2, 29)}, ["recent_offence"], dt.date(2027, 2, 28)),
        # an until that has come no longer applies (the condition alone would still hold)
        ({"warned": True, "warning_date": dt.date(2025, 6, 1)}, ["warned"], dt.date(2026, 6, 1)),
        ({"warned": True, "warning_date": dt.date(2025, 1, 1)}, [], None),  # until == as_of
        ({"warned": True, "warning_date": dt.date(2024, 6, 1)}, [], None),
        # an until whose date is absent: it lasts while the condition holds
        ({"warned": True}, ["warned"], None),
    ],
)
def test_until(indicators: dict[str, Any], overrides: list[str], until: dt.date | None) -> None:
    r = run(UNTIL, subject=ORGANIZATION, **indicators)
    assert [o.id for o in r.overrides] == overrides
    assert r.grade.code == ("REFUSED" if overrides else "OK")
    assert r.until == until


# --------------------------------------------------------------------------------------------
# Date tests: within_years N is `date ≤ as_of < date + N years`; after_as_of is `date > as_of`;
# an absent date makes every test on it false


@pytest.mark.parametrize(
    ("date", "years", "result"),
    [
        (dt.date(2024, 2, 29), 1, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), 4, dt.date(2028, 2, 29)),
        (dt.date(2020, 2, 29), 5, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 28), 1, dt.date(2025, 2, 28)),
        (dt.date(2023, 3, 1), 1, dt.date(2024, 3, 1)),
        (dt.date(2025, 12, 31), 3, dt.date(2028, 12, 31)),
        (dt.date(2024, 2, 29), 0, dt.date(2024, 2, 29)),
        (dt.date(9998, 6, 1), 5, dt.date(9999, 12, 31)),  # past the calendar's end: its last day
    ],
)
def test_add_years(date: dt.date, years: int, result: dt.date) -> None:
    assert add_years(date, years) == result


DATES = card(
    """
[indicators.event]
type = "date"
$T
[indicators.leap_event]
type = "date"
$T
[indicators.ban_end]
type = "date"
$T
"""
    + grade_tables("OK:0", "WITHIN", "AFTER", "LEAP", "NOT_BEFORE")
    + """
[[overrides]]
id = "within"
$T
$P
when = { indicator = "event", within_years = 3 }
effect = "force"
grade = "WITHIN"

[[overrides]]
id = "after"
$T
$P
when = { indicator = "ban_end", after_as_of = true }
effect = "force"
grade = "AFTER"

[[overrides]]
id = "leap"
$T
$P
when = { indicator = "leap_event", within_years = 2 }
effect = "force"
grade = "LEAP"

[[overrides]]
id = "not_before"
$T
$P
when = { not = { indicator = "ban_end", on_or_before_as_of = true } }
effect = "force"
grade = "NOT_BEFORE"
""",
    head="base = 0\nscore = { min = 0, max = 0 }",
)


@pytest.mark.parametrize(
    ("as_of", "indicators", "fired"),
    [
        # within_years 3, as_of 2026-01-01 (an absent ban_end: `not on_or_before` holds)
        ("2026-01-01", {"event": "2026-01-01"}, ["within", "not_before"]),  # the day itself
        ("2026-01-01", {"event": "2026-01-02"}, ["not_before"]),  # a future date is not within
        ("2026-01-01", {"event": "2023-01-02"}, ["within", "not_before"]),  # the last day within
        ("2026-01-01", {"event": "2023-01-01"}, ["not_before"]),  # as_of = date + 3 years: over
        ("2026-01-01", {"event": "2020-06-01"}, ["not_before"]),
        # 29 February + 2 years = 28 February 2026: the first day it no longer holds
        ("2026-02-27", {"leap_event": "2024-02-29"}, ["leap", "not_before"]),
        ("2026-02-28", {"leap_event": "2024-02-29"}, ["not_before"]),
        # after_as_of: strictly after; on_or_before_as_of: the complement when present
        ("2026-01-01", {"ban_end": "2026-01-02"}, ["after", "not_before"]),
        ("2026-01-01", {"ban_end": "2026-01-01"}, []),
        ("2026-01-01", {"ban_end": "2025-12-31"}, []),
        # an absent date makes every test on it false (so `not` of a test on it is true)
        ("2026-01-01", {}, ["not_before"]),
    ],
)
def test_date_tests(as_of: str, indicators: dict[str, Any], fired: list[str]) -> None:
    r = run(DATES, dt.date.fromisoformat(as_of), **indicators)
    assert [o.id for o in r.overrides] == [
        o for o in ("within", "after", "leap", "not_before") if o in fired
    ]


# --------------------------------------------------------------------------------------------
# Reason codes: the overrides first, then ≤ 4 rules by points lost against their best
# (ties in definition order; rules that lost nothing are not reasons)

REASONS = card(
    """
"""
    + "".join(f'[indicators.c{i}]\ntype = "count"\n$T\n' for i in range(1, 6))
    + """
[indicators.bonus]
type = "number"
min = 0
max = 10
default = 10
$T
[indicators.flagged]
type = "flag"
$T

[groups.deductions]
$T
floor = -20
"""
    + "".join(
        f"""
[[rules]]
id = "r{i}"
$T
$P
kind = "per_unit"
indicator = "c{i}"
points = -1
group = "deductions"
"""
        for i in range(1, 6)
    )
    + """
[[rules]]
id = "bonus"
$T
$P
kind = "direct"
indicator = "bonus"
"""
    + grade_tables("A:50", "B:0")
    + """
[[overrides]]
id = "flagged"
$T
$P
when = { indicator = "flagged", op = "=", value = true }
effect = "cap"
grade = "B"
""",
    head="base = 40\nscore = { min = 0, max = 60 }",
)


@pytest.mark.parametrize(
    ("indicators", "reasons"),
    [
        ({}, []),  # nothing lost: no reasons
        (
            {"c2": 5, "c1": 2, "c3": 2, "c4": 1},
            [("r2", "5"), ("r1", "2"), ("r3", "2"), ("r4", "1")],
        ),
        # ties in definition order; at most 4 rules
        (
            {"c1": 1, "c2": 1, "c3": 1, "c4": 1, "c5": 1, "bonus": 9},
            [("r1", "1"), ("r2", "1"), ("r3", "1"), ("r4", "1")],
        ),
        ({"c5": 3, "bonus": 7}, [("r5", "3"), ("bonus", "3")]),  # ties: r5 is defined first
        ({"bonus": 0}, [("bonus", "10")]),
        # the points lost are those after the group's cut
        ({"c1": 30, "c2": 4}, [("r1", "20")]),  # r1 -30 cut to -20; r2 cut to 0 lost nothing
        # the overrides first
        ({"flagged": True, "c3": 1}, [("flagged", None), ("r3", "1")]),
        ({"flagged": True}, [("flagged", None)]),
    ],
)
def test_reason_codes(indicators: dict[str, Any], reasons: list[tuple[str, str | None]]) -> None:
    r = run(REASONS, **indicators)
    assert [(c.code, c.points_lost) for c in r.reasons] == [
        (code, None if lost is None else D(lost)) for code, lost in reasons
    ]
    assert [c.kind for c in r.reasons] == [
        "override" if c == "flagged" else "rule" for c, _ in reasons
    ]


# --------------------------------------------------------------------------------------------
# points_to_next_grade: how far below the next better grade (absent when an override changed
# the grade, or the grade is the best)


@pytest.mark.parametrize(
    ("s", "flags", "grade", "to_next", "next_grade"),
    [
        (0, [], "D", "10", "C"),
        (14, [], "C", "6", "B"),
        (D("19.5"), [], "C", "0.5", "B"),
        (20, [], "B", "10", "A"),
        (30, [], "A", None, None),  # the best grade
        (40, [], "A", None, None),
        # next_grade is the grade the result would then have, under the same caps and downgrades
        (35, ["down1"], "B", None, None),  # A is the best score grade: no points lift B
        (35, ["cap_b"], "B", None, None),
        (25, ["force_c"], "C", None, None),  # a force: never a next grade
        (15, ["force_c"], "C", None, None),  # even a force to the grade the score gives
        (14, ["cap_b"], "C", "6", "B"),  # a cap above the grade: B at 20 is allowed
        (25, ["cap_b"], "B", None, None),  # capped at B already: A at 30 would still be B
        (5, ["down1"], "D", "15", "C"),  # C at 10 would still be D; B at 20 gives C
        (22, ["down1"], "C", "8", "B"),  # A at 30, one grade down, gives B
        (12, ["down2"], "D", "18", "C"),  # B at 20 would be D; A at 30 gives C
        (14, ["down1", "cap_c"], "D", "6", "C"),  # B at 20: down to C, the cap allows C
        (5, ["down1", "cap_b"], "D", "15", "C"),
    ],
)
def test_points_to_next_grade(
    s: Any, flags: list[str], grade: str, to_next: str | None, next_grade: str | None
) -> None:
    r = run(OVERRIDES, s=s, **{f: True for f in flags})
    assert r.grade.code == grade
    assert r.points_to_next_grade == (None if to_next is None else D(to_next))
    assert r.next_grade == next_grade
    # the reference evaluator follows the same rule
    assert (
        compile_reference(OVERRIDES.card).evaluate(
            PERSON, {"s": s, **{f: True for f in flags}}, AS_OF
        )
        == r
    )


# --------------------------------------------------------------------------------------------
# Validation: bad input is rejected whole, with every problem named

VALIDATED = card(
    """
[indicators.late]
type = "count"
max = 50
$T
[indicators.bonus_points]
type = "number"
min = 0
max = 10
default = 0
$T
[indicators.rate]
type = "percent"
$T
[indicators.certified]
type = "flag"
$T
[indicators.trained]
type = "flag"
required = true
$T
[indicators.tier]
type = "choice"
choices = ["gold", "silver", "bronze"]
$T
[indicators.incident_date]
type = "date"
past = true
$T
[indicators.ban_end]
type = "date"
$T
[indicators.misconduct]
type = "choice"
choices = ["none", "minor", "major"]
default = "none"
$T
[indicators.misconduct_date]
type = "date"
past = true
required_when = { indicator = "misconduct", op = "!=", value = "none" }
$T
[indicators.small_accidents]
type = "count"
$T
[indicators.large_accidents]
type = "count"
$T
[indicators.accident_date]
type = "date"
required_when = { sum = ["small_accidents", "large_accidents"], op = ">=", value = 1 }
$T

[[rules]]
id = "late"
$T
$P
kind = "per_unit"
indicator = "late"
points = -1
"""
    + grade_tables("A:0", "B:-1000")
)

GOOD = {"rate": 80, "trained": True, "tier": "gold"}
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("changes", "violations"),
    [
        # unknown indicator, with a did-you-mean hint
        ({"bonus_point": 1}, {"indicators.bonus_point": "did you mean 'bonus_points'?"}),
        ({"colour": "red"}, {"indicators.colour": "not an indicator of test.card"}),
        # missing required: number/percent/choice without a default; a flag marked required
        ({"rate": None}, {"indicators.rate": "required percent indicator is missing"}),
        ({"trained": None}, {"indicators.trained": "required flag indicator is missing"}),
        ({"tier": None}, {"indicators.tier": "required choice indicator is missing"}),
        # wrong type
        ({"rate": "high"}, {"indicators.rate": "expected a number within [0, 100], not 'high'"}),
        ({"bonus_points": [1]}, {"indicators.bonus_points": "expected a number"}),
        ({"certified": "true"}, {"indicators.certified": "expected true or false"}),
        ({"certified": 1}, {"indicators.certified": "expected true or false"}),
        ({"late": True}, {"indicators.late": "not a flag"}),  # a bool is not a count
        ({"bonus_points": False}, {"indicators.bonus_points": "not a flag"}),
        ({"late": D("1.5")}, {"indicators.late": "a count is a whole number"}),
        ({"late": 2.5}, {"indicators.late": "a count is a whole number"}),
        ({"incident_date": "yesterday"}, {"indicators.incident_date": "expected a date"}),
        ({"incident_date": "2025-02-30"}, {"indicators.incident_date": "expected a date"}),
        # out of range
        ({"late": -1}, {"indicators.late": "a count is a whole number ≥ 0"}),
        ({"late": 51}, {"indicators.late": "above the maximum 50"}),
        ({"bonus_points": D("10.01")}, {"indicators.bonus_points": "outside [0, 10]"}),
        ({"bonus_points": -1}, {"indicators.bonus_points": "outside [0, 10]"}),
        ({"rate": 100.5}, {"indicators.rate": "outside [0, 100]"}),
        # NaN and Infinity, as a float, a Decimal and a string
        ({"rate": NAN}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": INF}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": -INF}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": D("NaN")}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": D("sNaN")}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": D("Infinity")}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"rate": "NaN"}, {"indicators.rate": "NaN and Infinity are not numbers here"}),
        ({"bonus_points": "Infinity"}, {"indicators.bonus_points": "NaN and Infinity"}),
        ({"bonus_points": "-inf"}, {"indicators.bonus_points": "NaN and Infinity"}),
        ({"late": NAN}, {"indicators.late": "NaN and Infinity"}),
        # a past date after as_of
        (
            {"incident_date": dt.date(2026, 1, 2)},
            {"indicators.incident_date": "2026-01-02 is after as_of 2026-01-01"},
        ),
        ({"incident_date": "2026-06-01"}, {"indicators.incident_date": "must be in the past"}),
        # a choice outside its list
        (
            {"tier": "platinum"},
            {"indicators.tier": "'platinum' is not one of: gold, silver, bronze"},
        ),
        ({"tier": "Gold"}, {"indicators.tier": "is not one of"}),
        # required_when
        (
            {"misconduct": "major"},
            {"indicators.misconduct_date": "required when misconduct != none"},
        ),
        (
            {"large_accidents": 1},
            {"indicators.accident_date": "required when small_accidents + large_accidents"},
        ),
        # a bad value inside a required_when test is reported, never a crash
        ({"small_accidents": "two"}, {"indicators.small_accidents": "expected a whole number"}),
        (
            {"small_accidents": "two", "large_accidents": 1},
            {"indicators.small_accidents": "expected a whole number"},
        ),
        # limits (scorecards/limits.py): counts at most 10^6 whatever carries them, in ASCII digits
        (
            {"small_accidents": 10**6 + 1},
            {"indicators.small_accidents": "above the maximum 1000000"},
        ),
        ({"small_accidents": 2**62}, {"indicators.small_accidents": "above the maximum 1000000"}),
        ({"small_accidents": D("1e19")}, {"indicators.small_accidents": "outside [0, 1000000]"}),
        ({"small_accidents": 1e308}, {"indicators.small_accidents": "outside [0, 1000000]"}),
        ({"small_accidents": "١٢٣"}, {"indicators.small_accidents": "with the digits 0-9"}),
        ({"small_accidents": "𝟙𝟚𝟛"}, {"indicators.small_accidents": "with the digits 0-9"}),
        ({"small_accidents": "1_0"}, {"indicators.small_accidents": "with the digits 0-9"}),
        ({"small_accidents": " 5 "}, {"indicators.small_accidents": "with the digits 0-9"}),
        ({"rate": " 12.5 "}, {"indicators.rate": "expected a number within [0, 100]"}),
        ({"rate": "1_2"}, {"indicators.rate": "expected a number within [0, 100]"}),
        # at most 2 decimal places unless the indicator declares more; never rounded
        (
            {"rate": D("12.345")},
            {"indicators.rate": "has 3 decimal places; this indicator takes at most 2"},
        ),
        ({"rate": "12.345"}, {"indicators.rate": "has 3 decimal places"}),
        ({"rate": 0.1 + 0.2}, {"indicators.rate": "has 17 decimal places"}),
        (
            {"bonus_points": D("1.0000000000000000000000000000001")},
            {"indicators.bonus_points": "has 31 decimal places"},
        ),
        # dates within the calendar years of limits.py
        (
            {"incident_date": dt.date(1899, 12, 31)},
            {"indicators.incident_date": "the year 1899 is outside [1900, 2199]"},
        ),
        (
            {"incident_date": "2024-3-1"},
            {"indicators.incident_date": "expected a date (YYYY-MM-DD)"},
        ),
        (
            {"incident_date": "２０２４-03-01"},
            {"indicators.incident_date": "expected a date (YYYY-MM-DD)"},
        ),
        # echoed values are cut
        ({"tier": "x" * 10_000}, {"indicators.tier": "x" * 64 + "…' is not one of"}),
        # every problem is collected, not only the first
        (
            {
                "bonus_point": 1,
                "rate": NAN,
                "tier": None,
                "late": True,
                "misconduct": "minor",
                "incident_date": "2027-01-01",
            },
            {
                "indicators.bonus_point": "did you mean",
                "indicators.rate": "NaN",
                "indicators.tier": "missing",
                "indicators.late": "not a flag",
                "indicators.incident_date": "after as_of",
                "indicators.misconduct_date": "required when",
            },
        ),
    ],
)
def test_invalid_indicators(changes: dict[str, Any], violations: dict[str, str]) -> None:
    indicators = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(InvalidInput) as info:
        VALIDATED.evaluate(PERSON, indicators, AS_OF)
    got = {v.field: v.description for v in info.value.violations}
    assert set(got) == set(violations)
    for field, fragment in violations.items():
        assert fragment in got[field], (field, got[field])


@pytest.mark.parametrize(
    ("subject", "violations"),
    [
        (
            Subject(SubjectKind.PERSON, "110105194912310021"),
            {"subject.id": "the check character is 1, GB 11643 gives X"},
        ),
        (Subject(SubjectKind.PERSON, "1101051949"), {"subject.id": "18 characters"}),
        (Subject(SubjectKind.PERSON, "  "), {"subject.id": "required"}),
        (
            Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43"),
            {"subject.kind": "test.card evaluates a person"},
        ),
    ],
)
def test_invalid_subject(subject: Subject, violations: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as info:
        VALIDATED.evaluate(subject, GOOD, AS_OF)
    got = {v.field: v.description for v in info.value.violations}
    assert set(got) == set(violations)
    for field, fragment in violations.items():
        assert fragment in got[field]


def test_subject_and_indicator_problems_are_reported_together() -> None:
    with pytest.raises(InvalidInput) as info:
        VALIDATED.evaluate(
            Subject(SubjectKind.PERSON, "110105194912310021"), {**GOOD, "rate": 101}, AS_OF
        )
    assert [v.field for v in info.value.violations] == ["subject.id", "indicators.rate"]
    assert "subject.id: " in str(info.value) and "indicators.rate: " in str(info.value)


@pytest.mark.parametrize(
    ("changes", "name", "value"),
    [
        ({}, "late", 0),  # defaults: count 0, flag false, choice its default
        ({}, "certified", False),
        ({}, "misconduct", "none"),
        ({}, "bonus_points", D(0)),
        ({"late": 2.0}, "late", 2),  # a whole float is a count
        ({"late": D("3")}, "late", 3),
        ({"rate": 0.15}, "rate", D("0.15")),  # a float is read by its shortest repr
        ({"rate": D("12.500")}, "rate", D("12.500")),  # trailing zeros are no decimal places
        ({"rate": "12.50"}, "rate", D("12.50")),
        ({"late": "50"}, "late", 50),  # a count in ASCII digits, at its maximum
        (
            {"small_accidents": 10**6, "accident_date": "2025-01-01"},
            "small_accidents",
            10**6,
        ),  # the limit
        ({"incident_date": "2025-12-31"}, "incident_date", dt.date(2025, 12, 31)),
        ({"incident_date": dt.date(2026, 1, 1)}, "incident_date", dt.date(2026, 1, 1)),  # as_of
        ({"ban_end": "2030-01-01"}, "ban_end", dt.date(2030, 1, 1)),  # not past: may be future
        (
            {"misconduct": "major", "misconduct_date": "2025-01-01"},
            "misconduct_date",
            dt.date(2025, 1, 1),
        ),
    ],
)
def test_accepted_values(changes: dict[str, Any], name: str, value: Any) -> None:
    r = VALIDATED.evaluate(PERSON, {**GOOD, **changes}, AS_OF)
    assert r.indicators[name] == value
    assert type(r.indicators[name]) is type(value)


def test_absent_date_stays_absent() -> None:
    r = VALIDATED.evaluate(PERSON, GOOD, AS_OF)
    assert "incident_date" not in r.indicators


def test_subject_id_is_normalized() -> None:
    r = VALIDATED.evaluate(Subject(SubjectKind.PERSON, " 11010519491231002x"), GOOD, AS_OF)
    assert r.subject.id == "11010519491231002X"


# --------------------------------------------------------------------------------------------
# The explanation: lines carry values, points and provenance; the result carries the digest


def test_explanation_lines_and_digest() -> None:
    r = run(GROUPS, a=1, b=3)
    (a_line,) = [ln for ln in r.lines if ln.rule_id == "a"]
    assert a_line.values == (("a", 1),)
    assert a_line.group == "deductions"
    assert a_line.provenance.source == "test card"
    assert a_line.title.en == "Test"
    assert [ln.rule_id for ln in r.lines] == ["a", "x", "b", "free", "c", "y"]  # definition order
    assert (r.scorecard_id, r.version, r.digest) == ("test.card", "1", GROUPS.card.digest)
    assert r.digest.startswith("sha256:")


# --------------------------------------------------------------------------------------------
# Property: for any valid taxi-like input, base + the lines, clamped, is the score; the same
# input gives an equal result

TAXI_LIKE = card(
    """
[indicators.violations_1pt]
type = "count"
$T
[indicators.violations_3pt]
type = "count"
$T
[indicators.violations_5pt]
type = "count"
$T
[indicators.violations_10pt]
type = "count"
$T
[indicators.violations_20pt]
type = "count"
$T
[indicators.bonus_points]
type = "number"
min = 0
max = 10
default = 0
$T

[groups.deductions]
$T
floor = -20
[groups.bonus]
$T
ceiling = 10
"""
    + "".join(
        f"""
[[rules]]
id = "violations_{n}pt"
$T
$P
kind = "per_unit"
indicator = "violations_{n}pt"
points = -{n}
group = "deductions"
"""
        for n in (1, 3, 5, 10, 20)
    )
    + """
[[rules]]
id = "bonus_points"
$T
$P
kind = "direct"
indicator = "bonus_points"
group = "bonus"
"""
    + grade_tables("AAA:20", "AA:11", "A:1", "B:0")
    + """
[[overrides]]
id = "whole_20_lost"
$T
$P
when = { group = "deductions", op = "<=", value = -20 }
effect = "force"
grade = "B"
""",
    head="base = 20\nscore = { min = 0, max = 30 }",
)

counts = st.integers(min_value=0, max_value=25)
taxi_inputs = st.fixed_dictionaries(
    {f"violations_{n}pt": counts for n in (1, 3, 5, 10, 20)},
    optional={
        "bonus_points": st.one_of(
            st.decimals(min_value=0, max_value=10, places=2, allow_nan=False, allow_infinity=False),
            st.integers(min_value=0, max_value=10),
            st.floats(min_value=0, max_value=10, allow_nan=False).map(lambda f: round(f, 2)),
        )
    },
)


@settings(max_examples=300, deadline=None)
@given(taxi_inputs)
def test_lines_add_up_to_the_score_and_results_reproduce(indicators: dict[str, Any]) -> None:
    r = TAXI_LIKE.evaluate(PERSON, indicators, AS_OF)
    total = D(20) + sum((ln.points for ln in r.lines), D(0))
    assert r.score == min(max(total, D(0)), D(30))
    assert r.score == r.score.quantize(D("0.01"))  # exact to 2 places
    for g in r.groups:
        assert sum((ln.points for ln in r.lines if ln.group == g.id), D(0)) == g.total
        assert (
            sum(
                (
                    (ln.points if ln.points_before_cut is None else ln.points_before_cut)
                    for ln in r.lines
                    if ln.group == g.id
                ),
                D(0),
            )
            == g.total_before_cut
        )
    deductions = next(g for g in r.groups if g.id == "deductions")
    assert (
        (r.grade.code == "B")
        if deductions.total_before_cut <= -20
        else (r.grade.code == r.score_grade)
    )
    # the same input, and the same input on a freshly compiled card, give an equal result
    assert TAXI_LIKE.evaluate(PERSON, dict(indicators), AS_OF) == r
    assert compile_scorecard(TAXI_LIKE.card).evaluate(PERSON, dict(indicators), AS_OF) == r


MIN_COUNT = card(
    """
[indicators.inspections]
type = "count"
min = 2
$T

[[rules]]
id = "inspections"
$T
$P
kind = "per_unit"
indicator = "inspections"
points = 1
"""
    + grade_tables("A:-1000")
)


@pytest.mark.parametrize("value", [1, "1", 1.0, Decimal("1")])
def test_a_count_below_its_stated_minimum_is_refused_however_it_is_sent(value: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        run(MIN_COUNT, inspections=value)
    (violation,) = refused.value.violations
    assert violation.field == "indicators.inspections"
    assert violation.description in ("1 is below the minimum 2", f"{value} is outside [2, 1000000]")
