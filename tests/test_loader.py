"""The scorecard loader (docs/scorecard-format.md): a broken card is refused whole, with every
problem reported as `file: path: reason`; a valid card loads with a stable content digest."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from sector_credit.scorecards import loader
from sector_credit.scorecards.model import InvalidScorecard, RuleKind

# A small valid card. Each broken case below is this text with one edit.
VALID = """
id = "test.small"
version = "1"
effective_from = 2020-01-01
subject_kind = "person"
title = { zh = "小测试", en = "Small test" }
base = 20
score = { min = 0, max = 30 }

[indicators.late]
type = "count"
title = { zh = "迟到次数", en = "Late arrivals" }

[indicators.rating]
type = "percent"
title = { zh = "满意度", en = "Satisfaction" }

[indicators.bonus]
type = "number"
min = 0
max = 10
default = 0
title = { zh = "加分", en = "Bonus" }

[groups.deductions]
title = { zh = "扣分", en = "Deductions" }
floor = -20

[[rules]]
id = "late"
title = { zh = "迟到扣分", en = "Late: -2 each" }
kind = "per_unit"
indicator = "late"
points = -2
group = "deductions"
provenance = { tag = "design", source = "test card" }

[[rules]]
id = "rating"
title = { zh = "满意度", en = "Satisfaction bands" }
kind = "bands"
indicator = "rating"
bands = [
  { range = "[90, 100]", points = 2 },
  { range = "[60, 90)", points = 0 },
  { range = "[0, 60)", points = -2 },
]
provenance = { tag = "secondary", source = "a quoted page", article = "art. 3" }

[[rules]]
id = "bonus"
title = { zh = "加分", en = "Bonus" }
kind = "direct"
indicator = "bonus"
provenance = { tag = "unverified", source = "recalled" }

[[grades]]
code = "A"
title = { zh = "优", en = "Good" }
min = 20
provenance = { tag = "design", source = "test card" }

[[grades]]
code = "B"
title = { zh = "良", en = "Fair" }
min = 10
provenance = { tag = "design", source = "test card" }

[[grades]]
code = "C"
title = { zh = "差", en = "Poor" }
min = 0
provenance = { tag = "design", source = "test card" }

[[grades]]
code = "X"
title = { zh = "除名", en = "Struck off" }
provenance = { tag = "design", source = "test card" }

[[overrides]]
id = "always_late"
title = { zh = "经常迟到", en = "Always late" }
when = { indicator = "late", op = ">=", value = 10 }
effect = "force"
grade = "X"
provenance = { tag = "design", source = "test card" }
"""

WEIGHTED = """
id = "test.weighted"
version = "1"
effective_from = 2020-01-01
subject_kind = "organization"
title = { zh = "加权", en = "Weighted" }
base = 0
score = { min = 0, max = 100 }

[indicators.quality]
type = "percent"
title = { zh = "质量", en = "Quality" }

[indicators.on_time]
type = "flag"
required = true
title = { zh = "按时", en = "On time" }

[[rules]]
id = "quality"
title = { zh = "质量", en = "Quality" }
kind = "weighted"
indicator = "quality"
weight = 60
provenance = { tag = "design", source = "test card" }

[[rules]]
id = "on_time"
title = { zh = "按时", en = "On time" }
kind = "weighted"
indicator = "on_time"
weight = 40
flag_points = { true = 100, false = 0 }
provenance = { tag = "design", source = "test card" }

[[grades]]
code = "OK"
title = { zh = "合格", en = "OK" }
min = 0
provenance = { tag = "design", source = "test card" }
"""


def edited(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the edit {old!r} must match exactly once"
    return text.replace(old, new)


def problems_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidScorecard) as info:
        loader.load_text(text, file="card.toml")
    return [(p.path, p.reason) for p in info.value.problems]


# (case, card text, path, fragment of the reason): each card has exactly this one problem
BROKEN = [
    (
        "unknown rule kind",
        edited(VALID, 'kind = "direct"', 'kind = "linear"'),
        "rules[2].kind",
        "unknown rule kind 'linear'",
    ),
    (
        "unknown indicator in a rule",
        edited(VALID, 'indicator = "bonus"', 'indicator = "bonuses"'),
        "rules[2].indicator",
        "unknown indicator 'bonuses'",
    ),
    (
        "a rule kind that cannot score its indicator type",
        edited(VALID, 'kind = "direct"', 'kind = "flag"\npoints = 1'),
        "rules[2].indicator",
        "a flag rule cannot score a number indicator",
    ),
    (
        "bands with a gap",
        edited(VALID, '"[60, 90)"', '"[60, 85)"'),
        "rules[1].bands",
        "gap: the values [85, 90) are in no band",
    ),
    ("bands that overlap", edited(VALID, '"[0, 60)"', '"[0, 65)"'), "rules[1].bands", "overlaps"),
    (
        "bands that stop short of the domain's end",
        edited(VALID, '"[90, 100]"', '"[90, 100)"'),
        "rules[1].bands",
        "not covered to its end",
    ),
    (
        "bands on a count that miss a whole number",
        edited(
            VALID,
            'kind = "per_unit"\nindicator = "late"\npoints = -2',
            'kind = "bands"\nindicator = "late"\n'
            'bands = [{ range = "[0, 1)", points = 0 }, { range = "[2, +inf)", points = -5 }]',
        ),
        "rules[0].bands",
        "gap before [2, +inf): 1 is in no band",
    ),
    (
        "a band range that is not an interval",
        edited(VALID, '"[60, 90)"', '"60 to 90"'),
        "rules[1].bands[1].range",
        "is not an interval",
    ),
    (
        "grades out of order",
        edited(VALID, "min = 10", "min = 25"),
        "grades[1].min",
        "grades are listed best first",
    ),
    (
        "lowest grade above the score minimum",
        edited(VALID, "score = { min = 0, max = 30 }", "score = { min = -5, max = 30 }"),
        "grades",
        "some scores would have no grade",
    ),
    (
        "an override naming an unknown grade",
        edited(VALID, 'grade = "X"', 'grade = "Z"'),
        "overrides[0].grade",
        "unknown grade 'Z'",
    ),
    (
        "an override testing an unknown indicator",
        edited(VALID, 'when = { indicator = "late"', 'when = { indicator = "lateness"'),
        "overrides[0].when.indicator",
        "unknown indicator 'lateness'",
    ),
    (
        "an override with an unknown effect",
        edited(VALID, 'effect = "force"', 'effect = "ban"'),
        "overrides[0].effect",
        "one of force, cap, downgrade",
    ),
    (
        "weighted weights not totalling 100",
        edited(WEIGHTED, "weight = 40", "weight = 30"),
        "rules",
        "add up to 90, not 100",
    ),
    (
        "duplicate rule ids",
        edited(VALID, 'id = "bonus"', 'id = "rating"'),
        "rules[2].id",
        "duplicate rule id 'rating'",
    ),
    (
        "an override id that repeats a rule id",
        edited(VALID, 'id = "always_late"', 'id = "late"'),
        "overrides[0].id",
        "duplicate id 'late' (override and rule ids share one namespace: they are reason codes)",
    ),
    (
        "an override id that is not lowercase",
        edited(VALID, 'id = "always_late"', 'id = "Always-late"'),
        "overrides[0].id",
        "an override id is lowercase letters, digits and _",
    ),
    (
        "a rule id that is not lowercase",
        edited(VALID, 'id = "bonus"', 'id = "Bonus"'),
        "rules[2].id",
        "a rule id is lowercase letters, digits and _",
    ),
    (
        "duplicate grade codes",
        edited(VALID, 'code = "B"', 'code = "A"'),
        "grades[1].code",
        "duplicate grade 'A'",
    ),
    (
        "missing provenance",
        edited(VALID, 'provenance = { tag = "unverified", source = "recalled" }\n', ""),
        "rules[2].provenance",
        "missing",
    ),
    (
        "bad provenance tag",
        edited(VALID, 'tag = "unverified"', 'tag = "hearsay"'),
        "rules[2].provenance.tag",
        "must be one of ['verified', 'secondary', 'unverified', 'design']",
    ),
    (
        "provenance without a source",
        edited(VALID, 'source = "recalled"', 'source = ""'),
        "rules[2].provenance.source",
        "must name the source",
    ),
    (
        "unknown top-level key",
        edited(VALID, "base = 20", 'base = 20\ncolour = "red"'),
        "colour",
        "unknown key",
    ),
    (
        "unknown key in a rule",
        edited(VALID, "points = -2\n", "points = -2\npionts = -2\n"),
        "rules[0].pionts",
        "unknown key",
    ),
    (
        "unknown key in an indicator",
        edited(VALID, "max = 10", "maximum = 10"),
        "indicators.bonus.maximum",
        "unknown key",
    ),
    (
        "unknown indicator type",
        edited(
            VALID,
            "[groups.deductions]",
            '[indicators.ratio]\ntype = "ratio"\ntitle = { zh = "比", en = "Ratio"'
            " }\n\n[groups.deductions]",
        ),
        "indicators.ratio.type",
        "must be one of",
    ),
    (
        "a default outside the indicator's range",
        edited(VALID, "default = 0", "default = 11"),
        "indicators.bonus.default",
        "11 is outside [0, 10]",
    ),
    (
        "a title missing its English text",
        edited(VALID, 'title = { zh = "小测试", en = "Small test" }', 'title = { zh = "小测试" }'),
        "title",
        "both texts non-empty",
    ),
    (
        "a rule scoring an indicator that may be absent",
        edited(VALID, "max = 10\ndefault = 0", "max = 10\nrequired = false"),
        "rules[2].indicator",
        "bonus may be absent (neither required nor with a default)",
    ),
    (
        "a rule naming an unknown group",
        edited(VALID, 'group = "deductions"', 'group = "penalties"'),
        "rules[0].group",
        "unknown group 'penalties'",
    ),
    (
        "an id that is not lowercase dotted",
        edited(VALID, 'id = "test.small"', 'id = "Test Small"'),
        "id",
        "lowercase dotted id",
    ),
    (
        "a default grade on a scored card",
        edited(VALID, "base = 20\n", 'base = 20\ndefault_grade = "A"\n'),
        "default_grade",
        "only an eligibility card (no base) has a default grade",
    ),
    (
        "places on a count",
        edited(
            VALID,
            "[groups.deductions]",
            '[indicators.extra]\ntype = "count"\nplaces = 2\n'
            'title = { zh = "计", en = "Count" }\n\n[groups.deductions]',
        ),
        "indicators.extra.places",
        "number and percent indicators only",
    ),
    (
        "places outside [0, 6]",
        edited(VALID, "max = 10\ndefault = 0", "max = 10\ndefault = 0\nplaces = 7"),
        "indicators.bonus.places",
        "in [0, 6]",
    ),
    (
        "a default with more places than the indicator takes",
        edited(VALID, "max = 10\ndefault = 0", "max = 10\ndefault = 0.125"),
        "indicators.bonus.default",
        "more decimal places than the indicator takes",
    ),
    (
        "actionable that is not true or false",
        edited(VALID, "max = 10\ndefault = 0", 'max = 10\ndefault = 0\nactionable = "yes"'),
        "indicators.bonus.actionable",
        "must be true or false",
    ),
    (
        "an actionable date",
        edited(
            VALID,
            "[groups.deductions]",
            '[indicators.when]\ntype = "date"\nactionable = true\n'
            'title = { zh = "日", en = "Day" }\n\n[groups.deductions]',
        ),
        "indicators.when.actionable",
        "never actionable",
    ),
    (
        "more indicators than a request may give",
        edited(
            VALID,
            "[groups.deductions]",
            "".join(
                f'[indicators.x{i}]\ntype = "flag"\ntitle = {{ zh = "旗", en = "Flag" }}\n\n'
                for i in range(256)
            )
            + "[groups.deductions]",
        ),
        "indicators",
        "a scorecard has at most 256",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "reason"), [pytest.param(t, p, r, id=case) for case, t, p, r in BROKEN]
)
def test_broken_card_reports_its_problem(text: str, path: str, reason: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    got_path, got_reason = problems[0]
    assert got_path == path
    assert reason in got_reason


def test_every_problem_is_reported_together() -> None:
    text = VALID
    for old, new in [
        ('kind = "direct"', 'kind = "linear"'),  # rules[2].kind
        ('"[60, 90)"', '"[60, 85)"'),  # rules[1].bands
        ('code = "B"', 'code = "A"'),  # grades[1].code
        ('grade = "X"', 'grade = "Z"'),  # overrides[0].grade
        ("points = -2\n", "pionts = -2\n"),  # rules[0].pionts, and then rules[0].points is missing
    ]:
        text = edited(text, old, new)
    with pytest.raises(InvalidScorecard) as info:
        loader.load_text(text, file="small.toml")
    paths = [p.path for p in info.value.problems]
    assert paths == [
        "rules[0].pionts",
        "rules[0].points",
        "rules[1].bands",
        "rules[2].kind",
        "grades[1].code",
        "overrides[0].grade",
    ]
    message = str(info.value)
    assert "small.toml: rules[1].bands: gap" in message
    assert "small.toml: overrides[0].grade: unknown grade 'Z'" in message
    assert len(message.splitlines()) == len(paths)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("id = ", id="a value missing"),
        pytest.param('id = "a"\nid = "b"', id="a key twice"),
        pytest.param("[[rules]\nid = 'x'", id="an unclosed table header"),
        pytest.param(VALID.replace("base = 20", "base = 20 20"), id="two values on one line"),
    ],
)
def test_invalid_toml_text(text: str) -> None:
    ((path, reason),) = problems_of(text)
    assert path == ""
    assert reason.startswith("not valid TOML")


def test_invalid_toml_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('id = "test.small"\nversion = \n', encoding="utf-8")
    with pytest.raises(InvalidScorecard) as info:
        loader.load_file(bad)
    (problem,) = info.value.problems
    assert problem.file == str(bad)
    assert problem.reason.startswith("not valid TOML")
    assert str(problem).startswith(f"{bad}: : not valid TOML")


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(InvalidScorecard) as info:
        loader.load_file(tmp_path / "nowhere.toml")
    assert "cannot read" in info.value.problems[0].reason


# --------------------------------------------------------------------------------------------
# A valid card


def test_valid_card_loads() -> None:
    card = loader.load_text(VALID, file="small.toml")
    assert (card.id, card.version, card.subject_kind.value) == ("test.small", "1", "person")
    assert [r.id for r in card.rules] == ["late", "rating", "bonus"]
    assert [r.kind for r in card.rules] == [RuleKind.PER_UNIT, RuleKind.BANDS, RuleKind.DIRECT]
    assert [(g.code, g.min_score) for g in card.grades] == [
        ("A", Decimal(20)),
        ("B", Decimal(10)),
        ("C", Decimal(0)),
        ("X", None),
    ]
    assert card.rules[1].provenance.article == "art. 3"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", card.digest)


def test_decimals_are_read_exactly() -> None:
    card = loader.load_text(
        edited(WEIGHTED, "weight = 60", "weight = 60.15").replace("weight = 40", "weight = 39.85")
    )
    assert [r.weight for r in card.rules] == [Decimal("60.15"), Decimal("39.85")]


# Same content, written differently: indicators, groups and grades' keys in another order,
# an inline table's keys swapped, comments and blank lines added.
REORDERED = (
    VALID.replace(
        '[indicators.late]\ntype = "count"\ntitle = { zh = "迟到次数", en = "Late arrivals" }\n\n',
        "",
    )
    .replace(
        "[groups.deductions]",
        '[indicators.late]\ntitle = { en = "Late arrivals", zh = "迟到次数" }\ntype = "count"\n\n'
        "# comments are not content\n[groups.deductions]",
    )
    .replace(
        'code = "A"\ntitle = { zh = "优", en = "Good" }\nmin = 20',
        'min = 20\ncode = "A"\n\ntitle = { en = "Good", zh = "优" }',
    )
    .replace("score = { min = 0, max = 30 }", "score = { max = 30, min = 0 }")
)

CASES = """
[[cases]]
name = "clean"
indicators = {}
expect = { score = "20", grade = "A" }
"""


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        pytest.param(REORDERED, True, id="same content reordered"),
        pytest.param(VALID + CASES, True, id="golden cases added"),
        pytest.param(
            VALID.replace('source = "recalled" }', 'source = "recalled" }  # why'),
            True,
            id="a comment added",
        ),
        pytest.param(
            edited(VALID, "points = -2\n", "points = -2.00\n"),
            True,
            id="the same number spelled -2.00",
        ),
        pytest.param(
            edited(VALID, "points = -2\n", "points = -3\n"), False, id="a rule's points changed"
        ),
        pytest.param(edited(VALID, "min = 10", "min = 11"), False, id="a grade's min changed"),
        pytest.param(
            edited(VALID, '"[60, 90)"', '"[60, 90]"').replace('"[90, 100]"', '"(90, 100]"'),
            False,
            id="a band edge moved",
        ),
        pytest.param(
            edited(VALID, "max = 10\ndefault = 0", "max = 10\ndefault = 0\nactionable = true"),
            True,
            id="an indicator marked actionable (what-if guidance only)",
        ),
        pytest.param(
            edited(VALID, 'en = "Fair"', 'en = "Fair enough"'), False, id="a title changed"
        ),
        pytest.param(
            edited(VALID, 'article = "art. 3"', 'article = "art. 4"'),
            False,
            id="a provenance changed",
        ),
    ],
)
def test_digest(variant: str, same: bool) -> None:
    original = loader.load_text(VALID, file="a.toml")
    other = loader.load_text(variant, file="b.toml")
    assert (other.digest == original.digest) is same


def test_digest_is_stable_across_loads() -> None:
    assert loader.load_text(VALID).digest == loader.load_text(VALID).digest
