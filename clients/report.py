"""The credit report: one evaluation, or one subject's history, as a self-contained HTML page
a person can read and print.

`credit report evaluations/…` (cli.py) fetches the evaluation, its scorecard version and its
what-if (ExploreEvaluation) and renders `report_templates/report.html.j2`: bilingual, the grade
in its regulation's colour, an inline SVG chart of the points lost per rule, the lines,
overrides with their end dates, the measures that follow (a grade's, a fired override's), the
sources, version and digest, who asked and when, and what would change the grade.
`credit report --history SUBJECT --scorecard ID` lists the subject's evaluations against one
scorecard and renders `history.html.j2`: the grades over time as an inline SVG chart, and the
list. No external file, script or font: the page is one file.
A person's id and name are shown as the server sent them: masked (`subject_masked`) unless
the caller's reader grant may see them whole (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from sector_credit.scorecards.text import decimal_text

from .render import value_text
from .resources import Evaluation, Exploration, Grade, Provenance, Scorecard, Title

# the colours a regulation names (environment.enterprise: 绿 蓝 黄 红), as print-safe hex
COLOURS = {"green": "#2e7d32", "blue": "#1565c0", "yellow": "#b58900", "red": "#c62828"}
NEUTRAL = "#37474f"
TAG_TITLES = {
    "verified": Title("法规原文", "verified in the regulation"),
    "secondary": Title("转引", "read on a page quoting it"),
    "unverified": Title("未核实", "recalled, not confirmed"),
    "design": Title("本项目设定", "chosen by this project"),
}
BAR_WIDTH = 360  # pixels of the longest bar


LABEL_CHARS = 16  # of a rule's Chinese title beside its bar (the whole title is in the lines)


@dataclass(frozen=True)
class Bar:
    rule_id: str
    title: Title
    lost: Decimal
    width: int
    y: int

    @property
    def label(self) -> str:
        zh = self.title.zh
        return zh if len(zh) <= LABEL_CHARS else zh[: LABEL_CHARS - 1] + "…"


def _environment() -> jinja2.Environment:
    folder = resources.files("sector_credit.clients.report_templates")

    def load(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dec"] = lambda d: decimal_text(d) if d is not None else ""
    env.filters["signed"] = lambda d: (
        ("+" if d is not None and d > 0 else "") + (decimal_text(d) if d is not None else "")
    )
    env.filters["value"] = value_text
    return env


def points_lost(ev: Evaluation) -> list[Bar]:
    """The rules that lost points against their best, most first (ties in definition order)."""
    lost = [
        (line.best_points - line.points, i, line)
        for i, line in enumerate(ev.lines)
        if line.best_points is not None and line.best_points > line.points
    ]
    lost.sort(key=lambda t: (-t[0], t[1]))
    if not lost:
        return []
    top = lost[0][0]
    return [
        Bar(line.rule_id, line.title, amount, max(2, int(BAR_WIDTH * amount / top)), 28 * k)
        for k, (amount, _, line) in enumerate(lost)
    ]


def render_report(ev: Evaluation, card: Scorecard | None, explored: Exploration | None) -> str:
    """The report page of one evaluation (`card`: its scorecard version, for the titles and
    grade bands; `explored`: its what-if; either may be None when the server has neither)."""
    sources: dict[tuple[str, str], int] = {}
    source_list: list[tuple[int, Provenance]] = []

    def cite(p: Provenance) -> int:
        key = (p.source, p.article)
        if key not in sources:
            sources[key] = len(sources) + 1
            source_list.append((sources[key], p))
        return sources[key]

    bars = points_lost(ev)
    colour = COLOURS.get(ev.grade.colour, NEUTRAL)
    context: dict[str, Any] = {
        "ev": ev,
        "card": card,
        "explored": explored,
        "grade_colour": colour,
        "bars": bars,
        "bar_width": BAR_WIDTH,
        "chart_height": 28 * len(bars),
        "cite": cite,
        "sources": source_list,
        "tags": TAG_TITLES,
        "colours": COLOURS,
        "neutral": NEUTRAL,
    }
    return _environment().get_template("report.html.j2").render(context)


# -- a subject's history ----------------------------------------------------------------------

ROW_HEIGHT = 34  # pixels per grade on the history chart
PLOT_LEFT, PLOT_RIGHT = (
    190,
    670,
)  # the x range of the points (viewBox 720 wide: room for a date label)
MIN_TICK_GAP = 70  # pixels between two date labels on the x axis


@dataclass(frozen=True)
class GradeRow:
    code: str
    title: Title
    y: int  # the row's centre


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    colour: str
    ev: Evaluation


@dataclass(frozen=True)
class Tick:
    x: int
    label: str


@dataclass(frozen=True)
class HistoryChart:
    rows: list[GradeRow]
    points: list[Point]  # oldest first
    ticks: list[Tick]
    height: int  # of the plot; the date labels are below it

    @property
    def path(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)


def _grade_scale(evaluations: list[Evaluation], card: Scorecard | None) -> list[Grade]:
    """The grades best first: the scorecard's, then any an older version gave that it lacks."""
    grades = list(card.grades) if card else []
    known = {g.code for g in grades}
    for ev in sorted(evaluations, key=lambda e: e.as_of or dt.date.min, reverse=True):
        if ev.grade.code not in known:
            known.add(ev.grade.code)
            grades.append(ev.grade)
    return grades


def _when(ev: Evaluation) -> tuple[dt.date, dt.datetime]:
    """The order of a history: the day an evaluation speaks for, then when it was made."""
    return ev.as_of or dt.date.min, ev.create_time or dt.datetime.min.replace(tzinfo=dt.UTC)


def history_chart(evaluations: list[Evaluation], card: Scorecard | None) -> HistoryChart:
    """The grades over time: one row per grade (best on top), one point per evaluation at
    its as_of, in the grade's colour where the regulation names one."""
    grades = _grade_scale(evaluations, card)
    rows = [
        GradeRow(g.code, g.title, ROW_HEIGHT * k + ROW_HEIGHT // 2) for k, g in enumerate(grades)
    ]
    row_of = {r.code: r for r in rows}
    colour_of = {g.code: COLOURS.get(g.colour, NEUTRAL) for g in grades}
    dated = sorted((e for e in evaluations if e.as_of is not None), key=_when)
    if not dated:
        return HistoryChart(rows, [], [], ROW_HEIGHT * len(rows))
    first, last = dated[0].as_of, dated[-1].as_of
    assert first is not None and last is not None
    span = (last - first).days

    def x_of(day: dt.date) -> int:
        if span == 0:
            return (PLOT_LEFT + PLOT_RIGHT) // 2
        return PLOT_LEFT + round((PLOT_RIGHT - PLOT_LEFT) * (day - first).days / span)

    points = [
        Point(x_of(e.as_of), row_of[e.grade.code].y, colour_of[e.grade.code], e)
        for e in dated
        if e.as_of is not None
    ]
    ticks = [Tick(x_of(first), first.isoformat())]
    if span:
        ends = [x_of(first), x_of(last)]
        for year in range(first.year + 1, last.year + 1):
            x = x_of(dt.date(year, 1, 1))
            if all(abs(x - t) >= MIN_TICK_GAP for t in ends + [t.x for t in ticks[1:]]):
                ticks.append(Tick(x, str(year)))
        ticks.append(Tick(x_of(last), last.isoformat()))
    return HistoryChart(rows, points, ticks, ROW_HEIGHT * len(rows))


def render_history(
    evaluations: list[Evaluation], card: Scorecard | None, scorecard_id: str, made: dt.datetime
) -> str:
    """The history page of one subject against one scorecard. `evaluations`: at least one, in
    any order (the page lists them by as_of, latest first; the subject is shown as the server
    sent it, masked or whole); `card`: the scorecard in force, for its title and grades;
    `made`: when the page was made."""
    if not evaluations:
        raise ValueError("a history report needs at least one evaluation")
    # by the day each speaks for, latest first (ListEvaluations orders by when each was made)
    evaluations = sorted(evaluations, key=_when, reverse=True)
    newest = evaluations[0]
    context: dict[str, Any] = {
        "evaluations": evaluations,
        "card": card,
        "scorecard_id": scorecard_id,
        "subject": newest.subject,
        "masked": newest.subject_masked,
        "chart": history_chart(evaluations, card),
        "row_height": ROW_HEIGHT,
        "colours": COLOURS,
        "neutral": NEUTRAL,
        "made": made,
        "first": min((e.as_of for e in evaluations if e.as_of), default=None),
        "last": max((e.as_of for e in evaluations if e.as_of), default=None),
    }
    return _environment().get_template("history.html.j2").render(context)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT_S = 120


class PdfUnavailable(Exception):
    """No headless browser to print the page with, or it failed."""


def write_pdf(html: str, pdf: Path) -> None:
    """Print the page to `pdf` with a headless Chromium from PATH (Debian: `apt-get install
    chromium`): the same page, so the PDF says exactly what the HTML says."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise PdfUnavailable(
            "no Chromium on PATH (" + ", ".join(BROWSERS) + "): the PDF is printed by one"
        )
    with tempfile.TemporaryDirectory(prefix="credit-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        try:
            done = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-pdf-header-footer",
                    f"--user-data-dir={tmp}/profile",
                    f"--print-to-pdf={pdf.resolve()}",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=PDF_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(
                f"{browser} did not print the page within {PDF_TIMEOUT_S} s"
            ) from None
    if done.returncode != 0 or not pdf.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PdfUnavailable(f"{browser} could not print the page (exit {done.returncode}): {last}")
