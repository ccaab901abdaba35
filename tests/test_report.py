"""The credit report (clients/report.py): a strict HTML5 parse of the page, and what it says,
for a clean driver, a barred candidate and a firm on a coloured card. Built from evaluations
the engine makes here (the same messages the server sends), so no server is needed; the
`credit report` command is run against a real server in test_whatif_service.py."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import html5lib
import pytest
from sector_credit.clients.report import COLOURS, render_report
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


def page(cid: str, subject: Subject, indicators: dict[str, Any]) -> tuple[str, Evaluation]:
    """The report of one evaluation as the CLI would write it from the server's messages."""
    explored = explore(COMPILED[cid], subject, indicators, AS_OF)
    message = convert.evaluation_to_proto(explored.result, evaluation_id="0190b1d2-0000-7000-8000-00000000abcd",
                                          create_time=MADE, caller="report-test (ipv4:127.0.0.1:1)")
    evaluation = Evaluation.from_proto(message)
    card = Scorecard.from_proto(convert.scorecard_to_proto(BUILTIN_CARDS[cid], [BUILTIN_CARDS[cid]], full=True))
    return render_report(evaluation, card, Exploration.from_proto(convert.whatif_to_proto(explored, message))), evaluation


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


@pytest.mark.parametrize(("cid", "subject", "indicators"), [
    pytest.param("transport.taxi_driver", PERSON, TAXI, id="a driver"),
    pytest.param("civil_servant.recruitment", PERSON, BARRED, id="a barred candidate"),
    pytest.param("environment.enterprise", ORG, ENV_EXAMPLE, id="a firm on a coloured card"),
])
def test_the_page_parses_strictly_and_is_self_contained(cid: str, subject: Subject, indicators: dict[str, Any]) -> None:
    html, _ = page(cid, subject, indicators)
    root = parse(html)
    assert root.get("lang") == "zh-Hans"
    # nothing loaded from elsewhere: no script, stylesheet link, image or external reference
    for tag in ("script", "link", "img", "iframe"):
        assert root.findall(f".//h:{tag}", NS) == []
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_a_driver_report_has_the_grade_lines_chart_whatif_and_record() -> None:
    html, ev = page("transport.taxi_driver", PERSON, TAXI)
    root = parse(html)
    assert text(by_id(root, "grade")) == "AA"
    assert text(by_id(root, "score")) == "14.00"
    # the personal id and name masked, never whole
    assert text(by_id(root, "subject")) == "个人 person 1101************2X (张**)"
    assert "11010519491231002X" not in html and "张三丰" not in html
    # the chart: one bar per rule that lost points, most first: bonus 8 (10 - 2), then 5, then 3
    bars = by_id(root, "points-lost")
    assert bars is not None
    labels = [text(t) for t in bars.findall(".//svg:text", NS)]
    assert labels == ["加分，最多10分", "−8.00", "计5分的违规行为，每次扣5分", "−5.00", "计3分的违规行为，每次扣3分", "−3.00"]
    assert [text(t).split(":")[0] for t in bars.findall(".//svg:title", NS)][1:] == [
        "bonus_points", "violations_5pt", "violations_3pt"]  # the first is the chart's own title
    widths = [int(r.get("width", "0")) for r in bars.findall(".//svg:rect", NS)]
    assert widths == [360, 225, 135]  # 360 × 8/8, × 5/8, × 3/8
    lines = by_id(root, "lines")
    assert lines is not None and len(lines.findall(".//h:tbody/h:tr", NS)) == len(ev.lines)
    whatif = text(by_id(root, "whatif"))
    assert "AAA 优良 Excellent" in whatif and "bonus_points 2 → 8.00" in whatif
    record = text(by_id(root, "record"))
    assert ev.scorecard_digest in record and "evaluations/0190b1d2-0000-7000-8000-00000000abcd" in record
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


def test_the_grade_has_the_colour_the_regulation_uses() -> None:
    html, ev = page("environment.enterprise", ORG, ENV_EXAMPLE)
    root = parse(html)
    assert ev.grade.code == "YELLOW" and ev.score == Decimal("74.70")
    box = root.find(".//h:div[@class='grade']", NS)
    assert box is not None and COLOURS["yellow"] in box.get("style", "")
    # an organization's credit code is public: shown whole
    assert "91350100M000100Y43" in text(by_id(root, "subject"))
